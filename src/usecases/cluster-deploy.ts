// `cluster deploy` / `cluster undeploy`: install (or, on K3s, configure) the
// Traefik ingress controller with Let's Encrypt resolvers and the default
// wildcard certificate. Takes plain parameters and a KubeClient, returns what
// it did; progress goes to the Op's event stream.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { KompoxError } from '../domain/errors.js';
import { logEvent, throwIfAborted, type Op } from '../domain/events.js';
import { certResolverFor } from '../domain/ingress.js';
import type { Cluster } from '../domain/model.js';
import type { KubeClient, KubeObject, ObjectRef } from '../domain/ports/kube.js';
import { checkWildcardCertificate, type CertificateInfo } from '../ingress/certificate.js';
import { buildIngressObjects, type DefaultCertificate, type IngressSpec } from '../ingress/index.js';
import {
  ACME_PVC_NAME,
  ANN_DEFAULT_CLASS,
  INGRESS_CLASS,
  INGRESS_CONTROLLER,
  INGRESS_SELECTOR,
  K3S_ACME_PVC_NAME,
  K3S_HELM_CHART_CONFIG,
  LABEL_PART_OF,
  PART_OF,
  SETTING_ACME_EMAIL,
  SETTING_TLS_CERT_FILE,
  SETTING_TLS_KEY_FILE,
  SETTING_TLS_SECRET,
  defaultDomain,
} from '../ingress/names.js';
import { NEVER_PRUNE, classify, refKey, refString, sortForApply, sortForDelete, toRef } from './plan.js';
import { readIngressSettings, type IngressSettings, type Locate, type TlsSource } from '../ingress/settings.js';

export interface ClusterIngressInput {
  cluster: Cluster;
  /** provider.driver: `k3s` configures K3s's bundled Traefik. */
  driver: string;
  /** Directory of kompoxops.yml; relative certificate paths resolve against it. */
  configDir: string;
  /** Source positions of kompoxops.yml fields, for error messages. */
  locate?: Locate;
}

export type ApplyAction = 'created' | 'configured' | 'unchanged' | 'pruned';

export interface AppliedObject extends ObjectRef {
  action: ApplyAction;
}

export interface ClusterDeployOptions {
  /** Server-side dry run: nothing is stored. */
  dryRun?: boolean;
  now?: Date;
}

export interface ClusterDeployResult {
  variant: IngressSettings['variant'];
  namespace: string;
  objects: AppliedObject[];
  warnings: string[];
  /** Whether our IngressClass is the cluster default (generic variant). */
  defaultIngressClass?: boolean;
  certificate?: CertificateInfo & { secret: string };
  /** The resolver app Ingresses use for custom hosts (ACME_STAGING picks staging). */
  certResolver: string;
  dryRun: boolean;
}

function hashOf(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 16);
}

function expandPath(p: string, base: string): string {
  if (p === '~' || p.startsWith('~/')) return resolve(homedir(), p.slice(2));
  return isAbsolute(p) ? p : resolve(base, p);
}

async function readSettingFile(input: ClusterIngressInput, key: string, path: string): Promise<string> {
  const abs = expandPath(path, input.configDir);
  try {
    return await readFile(abs, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new KompoxError('config', `cannot read cluster.settings.${key} ${abs}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`, {
      field: `cluster.settings.${key}`,
      location: input.locate?.(['cluster', 'settings', key]),
      hint: 'Paths are relative to the directory of kompoxops.yml.',
      cause: e,
    });
  }
}

interface ResolvedCertificate {
  cert?: DefaultCertificate;
  info?: CertificateInfo;
  warnings: string[];
}

async function readCertificateFiles(
  input: ClusterIngressInput,
  tls: Extract<TlsSource, { kind: 'files' }>,
  now: Date,
): Promise<ResolvedCertificate> {
  const domain = defaultDomain(input.cluster)!;
  const certPem = await readSettingFile(input, SETTING_TLS_CERT_FILE, tls.certFile);
  const keyPem = await readSettingFile(input, SETTING_TLS_KEY_FILE, tls.keyFile);
  const check = checkWildcardCertificate(
    certPem,
    keyPem,
    domain,
    {
      certLabel: `cluster.settings.${SETTING_TLS_CERT_FILE} (${tls.certFile})`,
      keyLabel: `cluster.settings.${SETTING_TLS_KEY_FILE} (${tls.keyFile})`,
      certLocation: input.locate?.(['cluster', 'settings', SETTING_TLS_CERT_FILE]),
      keyLocation: input.locate?.(['cluster', 'settings', SETTING_TLS_KEY_FILE]),
    },
    now,
  );
  return {
    cert: { secretName: tls.secretName, pem: { cert: certPem, key: keyPem }, contentHash: hashOf(certPem, keyPem) },
    info: check.info,
    warnings: check.warnings,
  };
}

/** The default certificate: from files (validated, put into a Secret we own) or an existing Secret. */
async function resolveDefaultCertificate(
  input: ClusterIngressInput,
  settings: IngressSettings,
  kube: KubeClient,
  now: Date,
): Promise<ResolvedCertificate> {
  const domain = defaultDomain(input.cluster);
  const tls = settings.tls;
  if (tls.kind === 'none') {
    return {
      warnings: [
        `no wildcard certificate configured: Traefik serves its self-signed default certificate for the automatic hosts${
          domain ? ` (*.${domain})` : ''
        }; set cluster.settings.${SETTING_TLS_CERT_FILE}/${SETTING_TLS_KEY_FILE} or ${SETTING_TLS_SECRET}`,
      ],
    };
  }
  if (tls.kind === 'files') return readCertificateFiles(input, tls, now);
  // An existing Secret: it must be in Traefik's namespace to be mounted.
  const secret = await kube.get({ apiVersion: 'v1', kind: 'Secret', name: tls.secretName, namespace: settings.namespace });
  const data = (secret?.data ?? {}) as Record<string, string>;
  const field = `cluster.settings.${SETTING_TLS_SECRET}`;
  if (!secret) {
    throw new KompoxError('notfound', `Secret ${settings.namespace}/${tls.secretName} (${field}) does not exist`, {
      field,
      location: input.locate?.(['cluster', 'settings', SETTING_TLS_SECRET]),
      hint: `Create it first: kubectl -n ${settings.namespace} create secret tls ${tls.secretName} --cert=FILE --key=FILE`,
    });
  }
  if (!data['tls.crt'] || !data['tls.key']) {
    throw new KompoxError('config', `Secret ${settings.namespace}/${tls.secretName} (${field}) has no tls.crt/tls.key`, {
      field,
      location: input.locate?.(['cluster', 'settings', SETTING_TLS_SECRET]),
      hint: 'Use a Secret of type kubernetes.io/tls (kubectl create secret tls).',
    });
  }
  const certPem = Buffer.from(data['tls.crt'], 'base64');
  const keyPem = Buffer.from(data['tls.key'], 'base64');
  if (!domain) {
    throw new KompoxError('config', `${field} is set but cluster.domain is not`, {
      field: 'cluster.domain',
      location: input.locate?.(['cluster']),
      hint: 'The certificate is for *.{cluster}.{domain}; set cluster.domain.',
    });
  }
  const label = `Secret ${settings.namespace}/${tls.secretName} (${field})`;
  const check = checkWildcardCertificate(certPem, keyPem, domain, { certLabel: label, keyLabel: label }, now);
  return {
    cert: { secretName: tls.secretName, contentHash: hashOf(certPem, keyPem) },
    info: check.info,
    warnings: check.warnings,
  };
}

function isOurs(o: KubeObject | undefined): boolean {
  return o?.metadata.labels?.[LABEL_PART_OF] === PART_OF;
}

/**
 * Whether our IngressClass is the cluster default: decided once (only when no
 * other class is default) and kept on re-deploy, so a later-installed default
 * class does not flip ours, and ours does not silently stop being default.
 */
async function decideDefaultIngressClass(kube: KubeClient, warnings: string[]): Promise<boolean> {
  const classes = await kube.list('networking.k8s.io/v1', 'IngressClass');
  const ours = classes.find((c) => c.metadata.name === INGRESS_CLASS);
  if (ours && !isOurs(ours)) {
    const controller = (ours.spec as { controller?: string } | undefined)?.controller;
    if (controller !== INGRESS_CONTROLLER) {
      throw new KompoxError('conflict', `IngressClass ${INGRESS_CLASS} already exists for controller ${controller ?? '(none)'} and was not created by Kompox`, {
        hint: 'Another ingress controller uses the class name "traefik"; remove it (or that controller) before running cluster deploy.',
      });
    }
    warnings.push(`IngressClass ${INGRESS_CLASS} exists and was not created by Kompox; taking it over (same controller ${INGRESS_CONTROLLER})`);
  }
  if (ours && isOurs(ours)) return ours.metadata.annotations?.[ANN_DEFAULT_CLASS] === 'true';
  return !classes.some((c) => c.metadata.name !== INGRESS_CLASS && c.metadata.annotations?.[ANN_DEFAULT_CLASS] === 'true');
}

/** K3s: the HelmChartConfig must be servable and not be someone else's. */
async function checkK3sPreconditions(kube: KubeClient, namespace: string): Promise<void> {
  let existing: KubeObject | undefined;
  try {
    existing = await kube.get({ apiVersion: 'helm.cattle.io/v1', kind: 'HelmChartConfig', name: K3S_HELM_CHART_CONFIG, namespace });
  } catch (e) {
    if (e instanceof KompoxError && (e.kind === 'auth' || e.kind === 'unavailable')) throw e;
    throw new KompoxError('config', `this cluster does not serve helm.cattle.io/v1 HelmChartConfig: ${(e as Error).message}`, {
      field: 'provider.driver',
      hint: 'provider.driver k3s expects a K3s cluster with its bundled Traefik; use the driver of your cluster.',
      cause: e,
    });
  }
  if (existing && !isOurs(existing)) {
    throw new KompoxError('conflict', `HelmChartConfig ${namespace}/${K3S_HELM_CHART_CONFIG} already exists and was not created by Kompox`, {
      hint: 'Kompox will not overwrite your Traefik configuration; delete it (kubectl -n kube-system delete helmchartconfig traefik) or merge its values by hand.',
    });
  }
}

/** Server-side applies the objects in order; reports created / configured / unchanged per object. */
async function applyAll(kube: KubeClient, objects: KubeObject[], dryRun: boolean, op: Op): Promise<AppliedObject[]> {
  const log = (line: string) => logEvent(op, line);
  const out: AppliedObject[] = [];
  const missingNamespaces = new Set<string>();
  for (const obj of sortForApply(objects)) {
    const ref = toRef(obj);
    throwIfAborted(op, `cluster deploy stopped before ${refString(ref, ' ')}; deploying again converges`);
    const before = await kube.get(ref);
    let action: ApplyAction;
    if (dryRun && ref.namespace && missingNamespaces.has(ref.namespace)) {
      // The server cannot dry-run into a namespace that a dry run did not create.
      action = 'created';
    } else {
      let after: KubeObject;
      try {
        after = await kube.apply(obj, { dryRun, force: true, fieldManager: 'kompox' });
      } catch (e) {
        if (out.length > 0 && e instanceof KompoxError) {
          const done = out.map((o) => refString(o, ' ')).join(', ');
          throw new KompoxError(e.kind, `${e.message} (while applying ${refString(ref, ' ')}; already applied: ${done})`, {
            code: e.code,
            details: e.details,
            hint: e.hint ?? 'Fix the cause and deploy the cluster ingress again: it converges.',
            cause: e,
          });
        }
        throw e;
      }
      // Same rule as app deploy: equal resourceVersion after a real apply, equal fields after a dry run.
      const change = classify(after, before, { dryRun });
      action = change.action === 'create' ? 'created' : change.action === 'change' ? 'configured' : 'unchanged';
    }
    if (obj.kind === 'Namespace' && !before && dryRun) missingNamespaces.add(obj.metadata.name);
    out.push({ ...ref, action });
    log(`${refString(ref, ' ')} ${action}${dryRun ? ' (dry run)' : ''}`);
  }
  return out;
}

/**
 * The checks of cluster deploy that need no cluster: settings (ACME_EMAIL
 * required) and, when given as files, the wildcard certificate. The CLI runs
 * them before connecting so a config mistake is reported as such.
 */
export async function checkClusterIngressConfig(input: ClusterIngressInput, now: Date = new Date()): Promise<IngressSettings> {
  const settings = requireDeploySettings(input);
  if (settings.tls.kind === 'files') await readCertificateFiles(input, settings.tls, now);
  return settings;
}

function requireDeploySettings(input: ClusterIngressInput): IngressSettings & { acmeEmail: string } {
  const settings = readIngressSettings(input.cluster, input.driver, input.locate);
  if (!settings.acmeEmail) {
    throw new KompoxError('config', `cluster.settings.${SETTING_ACME_EMAIL} is not set`, {
      field: `cluster.settings.${SETTING_ACME_EMAIL}`,
      location: input.locate?.(['cluster', 'settings']) ?? input.locate?.(['cluster']),
      hint: `Let's Encrypt needs an account e-mail for the custom hosts' certificates: add ${SETTING_ACME_EMAIL}: you@example.com under cluster.settings.`,
    });
  }
  return settings as IngressSettings & { acmeEmail: string };
}

/** Builds the desired ingress objects for this cluster (reads the cluster for decisions; applies nothing). */
export async function planClusterIngress(
  input: ClusterIngressInput,
  kube: KubeClient,
  opts: { now?: Date } = {},
): Promise<{ spec: IngressSpec; objects: KubeObject[]; warnings: string[]; certificate?: CertificateInfo & { secret: string } }> {
  const settings = requireDeploySettings(input);
  const warnings: string[] = [];
  if (!input.cluster.domain) {
    warnings.push('cluster.domain is not set: apps get no automatic hosts ({app}.{cluster}.{domain}), only their custom hosts');
  }
  if (settings.variant === 'k3s') await checkK3sPreconditions(kube, settings.namespace);
  const tls = await resolveDefaultCertificate(input, settings, kube, opts.now ?? new Date());
  warnings.push(...tls.warnings);
  const defaultIngressClass = settings.variant === 'traefik' ? await decideDefaultIngressClass(kube, warnings) : false;

  const ns = await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: settings.namespace });
  if (ns?.metadata.deletionTimestamp) {
    throw new KompoxError('conflict', `namespace ${settings.namespace} is being deleted (an earlier undeploy with purge?)`, {
      code: 'kube.terminating',
      details: { namespace: settings.namespace },
      hint: 'Wait until it is gone (kubectl get namespace), then deploy the cluster ingress again.',
    });
  }

  // A PVC's storage class cannot change after creation. Always apply the live
  // one: the default-class admission plugin fills it in on create, and
  // leaving it out of a later apply would ask the server to remove it.
  let storageClass = settings.storageClass;
  const pvcName = settings.variant === 'k3s' ? K3S_ACME_PVC_NAME : ACME_PVC_NAME;
  const pvc = await kube.get({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: pvcName, namespace: settings.namespace });
  const liveClass = (pvc?.spec as { storageClassName?: string } | undefined)?.storageClassName;
  if (pvc && liveClass) {
    if (storageClass && liveClass !== storageClass) {
      warnings.push(
        `the ACME volume ${settings.namespace}/${pvcName} uses storage class ${liveClass}; INGRESS_STORAGE_CLASS ${storageClass} applies only to a new volume (undeploy the ingress with purge first to move it)`,
      );
    }
    storageClass = liveClass;
  }

  const spec: IngressSpec = {
    variant: settings.variant,
    namespace: settings.namespace,
    acmeEmail: settings.acmeEmail,
    ...(storageClass ? { storageClass } : {}),
    defaultIngressClass,
    ...(tls.cert ? { defaultCertificate: tls.cert } : {}),
    // A namespace the user created (e.g. to hold INGRESS_TLS_SECRET) stays theirs.
    ...(ns && !isOurs(ns) ? { manageNamespace: false } : {}),
  };
  return {
    spec,
    objects: buildIngressObjects(spec),
    warnings,
    ...(tls.info && tls.cert ? { certificate: { ...tls.info, secret: `${settings.namespace}/${tls.cert.secretName}` } } : {}),
  };
}

export async function deployClusterIngress(
  input: ClusterIngressInput,
  kube: KubeClient,
  opts: ClusterDeployOptions = {},
  op: Op = {},
): Promise<ClusterDeployResult> {
  const plan = await planClusterIngress(input, kube, { now: opts.now });
  const objects = await applyAll(kube, plan.objects, Boolean(opts.dryRun), op);
  objects.push(...(await pruneStale(kube, plan.spec.variant, plan.objects, Boolean(opts.dryRun), op)));
  return {
    variant: plan.spec.variant,
    namespace: plan.spec.namespace,
    objects,
    warnings: plan.warnings,
    ...(plan.spec.variant === 'traefik' ? { defaultIngressClass: plan.spec.defaultIngressClass } : {}),
    ...(plan.certificate ? { certificate: plan.certificate } : {}),
    certResolver: certResolverFor(input.cluster),
    dryRun: Boolean(opts.dryRun),
  };
}

// ---- undeploy ----

/** Kinds cluster deploy creates, in apply order (undeploy deletes in reverse); tests list what is left with them. */
export const GENERIC_KINDS: ReadonlyArray<readonly [string, string]> = [
  ['v1', 'Namespace'],
  ['v1', 'ServiceAccount'],
  ['rbac.authorization.k8s.io/v1', 'ClusterRole'],
  ['rbac.authorization.k8s.io/v1', 'ClusterRoleBinding'],
  ['networking.k8s.io/v1', 'IngressClass'],
  ['v1', 'Secret'],
  ['v1', 'ConfigMap'],
  ['v1', 'PersistentVolumeClaim'],
  ['apps/v1', 'Deployment'],
  ['v1', 'Service'],
];
export const K3S_KINDS: ReadonlyArray<readonly [string, string]> = [
  ['v1', 'Secret'],
  ['v1', 'PersistentVolumeClaim'],
  ['helm.cattle.io/v1', 'HelmChartConfig'],
];

/** Every object of ours on the cluster (by label), for the variant's kinds; kinds the server does not serve are skipped. */
async function listOurs(kube: KubeClient, variant: IngressSettings['variant']): Promise<KubeObject[]> {
  const found: KubeObject[] = [];
  for (const [apiVersion, kind] of variant === 'k3s' ? K3S_KINDS : GENERIC_KINDS) {
    try {
      found.push(...(await kube.list(apiVersion, kind, { labelSelector: INGRESS_SELECTOR })));
    } catch (e) {
      // A kind the server does not serve (HelmChartConfig on a non-K3s cluster) has nothing of ours.
      if (e instanceof KompoxError && e.kind === 'notfound') continue;
      throw e;
    }
  }
  return found;
}

/**
 * Deletes objects an earlier deploy created that this one no longer wants
 * (e.g. the certificate Secret and ConfigMap after switching to an existing
 * Secret, or objects left in a previous ingress namespace). Never the ACME
 * PVC or a namespace: those go only with undeploy --purge.
 */
async function pruneStale(
  kube: KubeClient,
  variant: IngressSettings['variant'],
  desired: KubeObject[],
  dryRun: boolean,
  op: Op,
): Promise<AppliedObject[]> {
  const want = new Set(desired.map((o) => refKey(toRef(o))));
  const out: AppliedObject[] = [];
  const stale = (await listOurs(kube, variant)).filter((o) => !want.has(refKey(toRef(o))) && !NEVER_PRUNE.has(o.kind) && !o.metadata.deletionTimestamp);
  for (const ref of sortForDelete(stale.map((o) => toRef(o)))) {
    if (await kube.delete(ref, { propagationPolicy: 'Background', ...(dryRun ? { dryRun: true } : {}) })) {
      out.push({ ...ref, action: 'pruned' });
      logEvent(op, `${refString(ref, ' ')} pruned${dryRun ? ' (dry run)' : ''}`);
    }
  }
  return out;
}

export interface ClusterUndeployOptions {
  /** Also delete the ACME volume (Let's Encrypt account and certificates) and our namespace. */
  purge?: boolean;
  dryRun?: boolean;
}

export interface ClusterUndeployResult {
  variant: IngressSettings['variant'];
  deleted: ObjectRef[];
  /** Objects kept on purpose (ACME volume and its namespace without --purge). */
  kept: ObjectRef[];
  dryRun: boolean;
}

/**
 * Removes what cluster deploy created, found by our labels (so objects from an
 * earlier deploy with other names/namespaces go too). Without purge the ACME
 * PVC and the namespace holding it stay: certificates survive a re-deploy and
 * Let's Encrypt rate limits are not hit again.
 */
export async function undeployClusterIngress(
  input: Pick<ClusterIngressInput, 'cluster' | 'driver' | 'locate'>,
  kube: KubeClient,
  opts: ClusterUndeployOptions = {},
  op: Op = {},
): Promise<ClusterUndeployResult> {
  const log = (line: string) => logEvent(op, line);
  const settings = readIngressSettings(input.cluster, input.driver, input.locate);
  const found = await listOurs(kube, settings.variant);
  const deleted: ObjectRef[] = [];
  const kept: ObjectRef[] = [];
  const keptNamespaces = new Set<string>();
  // Reverse apply order: workloads before their config, PVCs before the namespace holding them.
  const byKey = new Map(found.map((o) => [refKey(toRef(o)), o] as const));
  for (const ref of sortForDelete(found.map((o) => toRef(o)))) {
    const o = byKey.get(refKey(ref))!;
    const keep = !opts.purge && (o.kind === 'PersistentVolumeClaim' || (o.kind === 'Namespace' && keptNamespaces.has(o.metadata.name)));
    if (o.kind === 'PersistentVolumeClaim' && !opts.purge && ref.namespace) keptNamespaces.add(ref.namespace);
    if (keep) {
      kept.push(ref);
      log(`${refString(ref, ' ')} kept${o.kind === 'PersistentVolumeClaim' ? ' (ACME certificates; purging deletes it)' : ' (holds the ACME volume)'}`);
      continue;
    }
    if (await kube.delete(ref, { propagationPolicy: 'Background', ...(opts.dryRun ? { dryRun: true } : {}) })) {
      deleted.push(ref);
      log(`${refString(ref, ' ')} deleted${opts.dryRun ? ' (dry run)' : ''}`);
    }
  }
  return { variant: settings.variant, deleted, kept, dryRun: Boolean(opts.dryRun) };
}
