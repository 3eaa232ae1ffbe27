// Secrets kept out of the compose files: the app's registry credentials (a
// kubernetes.io/dockerconfigjson Secret its pods pull with) and per-service
// environment overrides (a Secret the service's container reads with
// envFrom). They are stored in the app's namespace, labelled as stored
// secrets: user data, like disks, that app deploy never prunes and app destroy
// keeps.
//
// Shaped for any front end: the secret material comes in as values (a
// config.json's text, a map of variables), never as file paths, and only
// names come back (Secret names, registries, variable names). A server can
// keep the same values as write-only App fields and call the same functions.
import { KompoxError } from '../domain/errors.js';
import { logEvent, type Op } from '../domain/events.js';
import type { AppContext } from '../domain/model.js';
import {
  ANN_SECRET_REGISTRIES,
  ANN_SECRET_SERVICE,
  PULL_SECRET_NAME,
  STORED_SECRET_LABEL,
  appLabels,
  appNamespace,
  envOverrideSecretName,
  shortHash,
} from '../domain/names.js';
import type { KubeClient, KubeObject, ObjectRef } from '../domain/ports/kube.js';
import { DOCKER_CONFIG_JSON_KEY, DOCKER_CONFIG_JSON_TYPE, dockerConfigRegistries, parseDockerConfig } from '../domain/registry.js';
import type { AppSecretRefs } from '../convert/types.js';
import { ensureAppNamespace } from './volumes.js';

/** What is stored for the app: names only. */
export interface StoredSecrets {
  /** The registry credentials: the Secret and its registries (the config's `auths` keys). */
  pull?: { secret: string; registries: string[] };
  /** Environment overrides per service: the Secret and its variable names, sorted by service. */
  env: { service: string; secret: string; keys: string[] }[];
  /** Changes whenever a stored secret does (their names and resourceVersions, hashed); absent when nothing is stored. */
  revision?: string;
}

const ref = (ctx: AppContext, name: string): ObjectRef => ({ apiVersion: 'v1', kind: 'Secret', name, namespace: appNamespace(ctx) });

/** The stored secrets of the app, read from its namespace (an app not deployed yet has none). Never returns a value. */
export async function readStoredSecrets(ctx: AppContext, kube: KubeClient): Promise<StoredSecrets> {
  const namespace = appNamespace(ctx);
  const ns = await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: namespace });
  const out: StoredSecrets = { env: [] };
  if (!ns) return out;
  const secrets = (await kube.list('v1', 'Secret', { namespace, labelSelector: STORED_SECRET_LABEL })).filter((s) => !s.metadata.deletionTimestamp);
  const versions: string[] = [];
  for (const s of secrets.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const kind = s.metadata.labels?.[STORED_SECRET_LABEL];
    const data = (s.data ?? {}) as Record<string, string>;
    if (kind === 'pull' && s.metadata.name === PULL_SECRET_NAME) {
      const registries = s.metadata.annotations?.[ANN_SECRET_REGISTRIES]?.split(',').filter(Boolean) ??
        dockerConfigRegistries(Buffer.from(data[DOCKER_CONFIG_JSON_KEY] ?? '', 'base64').toString('utf8')) ?? [];
      out.pull = { secret: s.metadata.name, registries };
    } else if (kind === 'env' && s.metadata.annotations?.[ANN_SECRET_SERVICE]) {
      out.env.push({ service: s.metadata.annotations[ANN_SECRET_SERVICE], secret: s.metadata.name, keys: Object.keys(data).sort() });
    } else continue;
    versions.push(`${s.metadata.name}@${s.metadata.resourceVersion ?? ''}`);
  }
  out.env.sort((a, b) => a.service.localeCompare(b.service));
  if (versions.length) out.revision = shortHash(versions.join('\n'), 12);
  return out;
}

/** The converter's input (plain names) for what is stored. */
export function secretRefs(stored: StoredSecrets): AppSecretRefs {
  const refs: AppSecretRefs = {};
  if (stored.pull) refs.pull = stored.pull.secret;
  if (stored.env.length) refs.env = Object.fromEntries(stored.env.map((e) => [e.service, { secret: e.secret, keys: e.keys }]));
  if (stored.revision) refs.revision = stored.revision;
  return refs;
}

/** A Secret of that name that Kompox did not store must not be overwritten. */
async function refuseForeign(kube: KubeClient, r: ObjectRef, kind: 'pull' | 'env'): Promise<KubeObject | undefined> {
  const live = await kube.get(r);
  if (live && live.metadata.labels?.[STORED_SECRET_LABEL] !== kind) {
    throw new KompoxError('conflict', `Secret ${r.namespace}/${r.name} exists and was not stored by Kompox; nothing was changed`, {
      code: 'secret.foreign',
      details: { secret: r.name, namespace: r.namespace },
      hint: 'Rename or delete that Secret (Kompox keeps this name for the stored secret).',
    });
  }
  return live;
}

function secretObject(ctx: AppContext, name: string, kind: 'pull' | 'env', body: { type: string; data: Record<string, string>; annotations: Record<string, string> }): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: body.type,
    metadata: { name, namespace: appNamespace(ctx), labels: { ...appLabels(ctx), [STORED_SECRET_LABEL]: kind }, annotations: body.annotations },
    data: body.data,
  };
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

export interface StoreResult {
  namespace: string;
  secret: string;
  /** False when the same content was stored already. */
  changed: boolean;
}

/**
 * Stores the app's registry credentials from a Docker config.json's text
 * (checked and reduced to its `auths`), replacing earlier ones. `file` names
 * the input in messages. Returns the registries, never a credential.
 */
export async function setPullSecret(ctx: AppContext, kube: KubeClient, input: { dockerConfigJson: string; file?: string }, op: Op = {}): Promise<StoreResult & { registries: string[] }> {
  const config = parseDockerConfig(input.dockerConfigJson, input.file ?? 'the registry credentials');
  const r = ref(ctx, PULL_SECRET_NAME);
  await ensureAppNamespace(kube, ctx);
  const live = await refuseForeign(kube, r, 'pull');
  const stored = await kube.apply(
    secretObject(ctx, PULL_SECRET_NAME, 'pull', { type: DOCKER_CONFIG_JSON_TYPE, data: { [DOCKER_CONFIG_JSON_KEY]: b64(config.json) }, annotations: { [ANN_SECRET_REGISTRIES]: config.registries.join(',') } }),
  );
  const changed = stored.metadata.resourceVersion !== live?.metadata.resourceVersion;
  logEvent(op, `${changed ? 'stored' : 'unchanged:'} registry credentials for ${config.registries.join(', ')} in Secret ${r.namespace}/${r.name}`);
  return { namespace: r.namespace!, secret: r.name, changed, registries: config.registries };
}

/** Removes the app's registry credentials; deleted false when none were stored. */
export async function deletePullSecret(ctx: AppContext, kube: KubeClient, op: Op = {}): Promise<{ namespace: string; secret: string; deleted: boolean }> {
  const r = ref(ctx, PULL_SECRET_NAME);
  const live = await kube.get(r);
  if (live && live.metadata.labels?.[STORED_SECRET_LABEL] !== 'pull') return { namespace: r.namespace!, secret: r.name, deleted: false };
  const deleted = live ? await kube.delete(r) : false;
  if (deleted) logEvent(op, `deleted Secret ${r.namespace}/${r.name}`);
  return { namespace: r.namespace!, secret: r.name, deleted };
}

/**
 * Environment overrides from dotenv text (the compose loader's parser, with
 * the rules of env_file: quotes, escapes, `#` comments, `${VAR}` from earlier
 * lines of the same text, never from the environment). Messages name lines
 * and variables, never values. `file` names the input in messages.
 */
export async function parseEnvOverrides(text: string, file: string): Promise<Record<string, string>> {
  const { parseDotenv } = await import('../compose/dotenv.js');
  return parseDotenv(text, { file, redact: true });
}

/** Checks `service` against the compose project's services when the caller knows them. */
function checkService(service: string, services: readonly string[] | undefined): void {
  if (!services || services.includes(service)) return;
  throw new KompoxError('notfound', `service "${service}" is not defined in the compose project`, {
    code: 'secret.env.service',
    details: { service, services: [...services] },
    hint: services.length ? `Services: ${services.join(', ')}.` : 'The compose project defines no services.',
  });
}

/**
 * Stores `values` as the environment overrides of `service` (replacing the
 * earlier set: a variable left out is no longer overridden). They win over
 * the compose `environment:` from the next deploy on. `services`: the compose
 * project's services, to refuse a typo. Returns the variable names only.
 */
export async function setEnvOverrides(
  ctx: AppContext,
  kube: KubeClient,
  input: { service: string; values: Record<string, string>; services?: readonly string[] },
  op: Op = {},
): Promise<StoreResult & { service: string; keys: string[] }> {
  checkService(input.service, input.services);
  const keys = Object.keys(input.values).sort();
  if (!keys.length) {
    throw new KompoxError('usage', `no variables given for service ${input.service}; nothing was changed`, {
      code: 'secret.env.empty',
      hint: 'Give NAME=value lines; to remove the overrides, delete them instead.',
    });
  }
  const bad = keys.filter((k) => !/^[-._a-zA-Z0-9]+$/.test(k));
  if (bad.length) {
    throw new KompoxError('usage', `variable names ${bad.join(', ')} cannot be stored in a Secret (letters, digits, "-", "_" and "." only); nothing was changed`, { code: 'secret.env.key' });
  }
  const name = envOverrideSecretName(input.service);
  const r = ref(ctx, name);
  await ensureAppNamespace(kube, ctx);
  const live = await refuseForeign(kube, r, 'env');
  const stored = await kube.apply(
    secretObject(ctx, name, 'env', { type: 'Opaque', data: Object.fromEntries(keys.map((k) => [k, b64(input.values[k]!)])), annotations: { [ANN_SECRET_SERVICE]: input.service } }),
  );
  const changed = stored.metadata.resourceVersion !== live?.metadata.resourceVersion;
  logEvent(op, `${changed ? 'stored' : 'unchanged:'} ${keys.length} environment override${keys.length === 1 ? '' : 's'} for service ${input.service} in Secret ${r.namespace}/${name} (${keys.join(', ')})`);
  return { namespace: r.namespace!, secret: name, changed, service: input.service, keys };
}

/** Removes the environment overrides of `service`; deleted false when there were none. */
export async function deleteEnvOverrides(ctx: AppContext, kube: KubeClient, input: { service: string }, op: Op = {}): Promise<{ namespace: string; secret: string; service: string; deleted: boolean }> {
  const name = envOverrideSecretName(input.service);
  const r = ref(ctx, name);
  const live = await kube.get(r);
  const ours = live?.metadata.labels?.[STORED_SECRET_LABEL] === 'env';
  const deleted = ours ? await kube.delete(r) : false;
  if (deleted) logEvent(op, `deleted Secret ${r.namespace}/${name}`);
  return { namespace: r.namespace!, secret: name, service: input.service, deleted };
}
