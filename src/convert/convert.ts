// The converter: a compose project + app context → the app's Kubernetes
// objects, in apply order. Pure (no fs, no network, no clock): the same input
// always gives the same objects, so re-running never rolls the pod spuriously.
import { ANN_APP, ANN_PROVIDER } from '../domain/model.js';
import { helperImage } from '../domain/images.js';
import { appId, appLabels, appNamespace, appSelector } from '../domain/names.js';
import type { KubeObject } from '../domain/ports/kube.js';
import { containerBasics } from './container.js';
import { Diagnostics, sortDiagnostics } from './diagnostics.js';
import { convertEnv } from './env.js';
import { contentHash } from './files.js';
import { dnsLabel } from './naming.js';
import { hostAliases } from './host-aliases.js';
import { checkService } from './service-checks.js';
import { buildIngresses, buildNetworkPolicy, buildService, collectPorts } from './network.js';
import { applyKeyPolicy } from './policy.js';
import { byKey, PodState, sortedByName, type VolumeMount } from './pod-state.js';
import { convertHealthcheck } from './probes.js';
import { convertResources } from './resources.js';
import { convertServiceFiles } from './service-files.js';
import { convertPlacement } from './placement.js';
import { planStorage } from './storage.js';
import { INIT_CONTAINER, initContainer } from './init-container.js';
import { planStartup } from './startup-order.js';
import type { ConvertInput, ConvertResult } from './types.js';
import { parseDuration, wholeSeconds } from './units.js';
import { convertServiceVolumes, type VolumeContext } from './volumes.js';

export const ANN_CONFIG_HASH = 'kompox.dev/config-hash';
/** Pod template annotation: the revision of the app's stored secrets (a change restarts the pod: envFrom is read at container start). */
export const ANN_SECRETS_REVISION = 'kompox.dev/stored-secrets-revision';

function appVolumesIndex(ctx: ConvertInput['ctx'], name: string): number {
  return (ctx.app.volumes ?? []).findIndex((v) => v.name === name);
}


export function convertApp(input: ConvertInput): ConvertResult {
  const diags = new Diagnostics(input.locate, input.locateConfig);
  const { ctx, project } = input;
  const ns = appNamespace(ctx);
  const labels = appLabels(ctx);
  const selector = appSelector(ctx);
  const meta = { namespace: ns, labels };
  const services = Object.keys(project.services ?? {}).sort();
  if (services.length === 0) {
    diags.error({ message: 'the compose project defines no services', path: ['services'], hint: 'Add at least one service with an image.' });
    return { objects: [], warnings: sortDiagnostics(diags.warnings), errors: sortDiagnostics(diags.errors) };
  }
  const state = new PodState();
  const storage = planStorage(input, diags);
  const vc: VolumeContext = { input, storage, state, diags, meta };
  const ports = collectPorts(project, services, diags);
  // depends_on → sidecar / one-shot init containers, started in dependency order.
  const startup = planStartup(ctx, project, services, diags, input.kubernetes);
  const resources = convertResources(ctx, project, services, diags, startup);

  const containers: Record<string, unknown>[] = [];
  const initByService = new Map<string, Record<string, unknown>>();
  const names = new Map<string, string>();
  let grace: number | undefined;
  const hostnames = new Set<string>();
  for (const service of services) {
    const svc = project.services[service]!;
    applyKeyPolicy(service, svc, diags);
    const role = startup.roles.get(service) ?? 'container';
    checkService(service, svc, diags, role);
    const name = dnsLabel(service);
    if (name !== service) {
      diags.warn({ service, message: `service "${service}" is not a valid container name; its container is named ${name}` });
    }
    if (names.has(name)) diags.error({ service, message: `services "${names.get(name)}" and "${service}" map to the same container name ${name}`, hint: 'Rename one of them.' });
    names.set(name, service);

    const mounts: VolumeMount[] = [
      ...convertServiceVolumes(vc, service, svc),
      ...convertServiceFiles(vc, service, svc, 'secrets'),
      ...convertServiceFiles(vc, service, svc, 'configs'),
    ].sort(byKey((m) => m.mountPath));
    for (let i = 1; i < mounts.length; i++) {
      if (mounts[i]!.mountPath === mounts[i - 1]!.mountPath) {
        diags.error({ service, key: 'volumes', message: `service "${service}": two mounts at ${mounts[i]!.mountPath}`, hint: 'Mount each path once.' });
      }
    }
    // Stored overrides win over compose `environment:`. In Kubernetes an `env` entry beats any `envFrom` source,
    // so the overridden names are left out of `env` (names only: the converter never sees the values).
    const override = input.secrets?.env?.[service];
    const overridden = new Set(override?.keys ?? []);
    const envSvc = overridden.size ? { ...svc, environment: Object.fromEntries(Object.entries(svc.environment ?? {}).filter(([k]) => !overridden.has(k))) } : svc;
    const env = convertEnv(service, envSvc, input.envFromFile[service] ?? [], state, meta, diags);
    const basics = containerBasics(service, svc, diags);
    let probes = convertHealthcheck(service, svc.healthcheck, diags, { gate: startup.healthGated.has(service) });
    if (role === 'oneshot' && Object.keys(probes).length) {
      // The API server forbids probes on init containers that run to completion.
      diags.warn({ service, key: 'healthcheck', message: `service "${service}": healthcheck is not used: ${service} runs to completion as an init container, which cannot have probes` });
      probes = {};
    }
    const cports = ports
      .filter((p) => p.service === service)
      .map((p) => ({ containerPort: p.target, protocol: p.protocol }))
      .filter((p, i, a) => a.findIndex((q) => q.containerPort === p.containerPort && q.protocol === p.protocol) === i)
      .sort((a, b) => a.containerPort - b.containerPort || (a.protocol < b.protocol ? -1 : 1));
    const { securityContext, tty, stdin, ...head } = basics;
    const c: Record<string, unknown> = { name, ...head };
    if (env.length) c.env = env;
    if (override) c.envFrom = [{ secretRef: { name: override.secret } }];
    if (cports.length) c.ports = cports;
    const r = resources.get(service);
    if (r) c.resources = r;
    if (mounts.length) c.volumeMounts = mounts;
    Object.assign(c, probes);
    if (securityContext) c.securityContext = securityContext;
    if (tty) c.tty = tty;
    if (stdin) c.stdin = stdin;
    // A sidecar keeps running (and is restarted) next to the app; a one-shot must exit 0 before the next container starts.
    if (role === 'sidecar') c.restartPolicy = 'Always';
    if (role === 'container') containers.push(c);
    else initByService.set(service, c);

    if (svc.stop_grace_period !== undefined) {
      const s = parseDuration(svc.stop_grace_period);
      if (s === undefined) diags.error({ service, key: 'stop_grace_period', message: `service "${service}": stop_grace_period "${svc.stop_grace_period}" is not a duration`, hint: 'Write e.g. 30s or 1m.' });
      else grace = Math.max(grace ?? 0, wholeSeconds(s, 0));
    }
    if (svc.hostname) hostnames.add(svc.hostname);
  }

  // An app volume nothing mounts still gets its disk (the disk use cases create one per app volume): say so.
  const mounted = new Set([...state.volumes.keys()]);
  [...storage.volumes.values()].forEach((plan) => {
    if (!mounted.has(plan.podVolume)) {
      const i = appVolumesIndex(ctx, plan.volume.name);
      diags.warn({
        message: `app volume ${plan.volume.name} is not mounted by any service; app deploy still creates a disk for it`,
        path: i >= 0 ? ['app', 'volumes', i] : ['app'],
      });
    }
  });

  const podSpec: Record<string, unknown> = {
    // Service links would inject one env var per Service in the namespace: noise that can shadow app variables.
    enableServiceLinks: false,
    // Apps do not talk to the Kubernetes API; a token in the pod would only be a liability.
    automountServiceAccountToken: false,
    // Docker runs every container under its default seccomp profile; Kubernetes runs them unconfined
    // unless asked. RuntimeDefault is the same filter, so this keeps Docker's behaviour (and isolation).
    securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
  };
  if (hostnames.size === 1) {
    const h = [...hostnames][0]!;
    const label = h.toLowerCase();
    if (/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(label) && label.length <= 63) podSpec.hostname = label;
    else diags.warn({ message: `hostname "${h}" is not a DNS label and is ignored` });
  } else if (hostnames.size > 1) {
    diags.warn({ message: `services set different hostnames (${[...hostnames].sort().join(', ')}); a pod has one hostname, so none is set` });
  }
  for (const s of Object.keys(input.secrets?.env ?? {}).sort()) {
    if (!project.services[s]) {
      diags.warn({ message: `environment overrides are stored for service "${s}", which the compose project does not define; they are not used`, hint: `Services: ${services.join(', ')}.` });
    }
  }
  if (input.secrets?.pull) podSpec.imagePullSecrets = [{ name: input.secrets.pull }];
  const aliases = hostAliases(input, services, diags);
  if (aliases.length) podSpec.hostAliases = aliases;
  if (grace !== undefined) podSpec.terminationGracePeriodSeconds = grace;
  // app.deployment: node pools and zones (checked against the disks' zones)
  const affinity = convertPlacement(input, diags);
  if (affinity) podSpec.affinity = affinity;

  const init = initContainer(state, names.has(INIT_CONTAINER) ? `${INIT_CONTAINER}-data` : INIT_CONTAINER, helperImage(ctx.cluster.settings));
  // kompox-init first (the data directories must exist before anything mounts them), then depends_on order.
  const initContainers = [...(init ? [init] : []), ...startup.initOrder.map((s) => initByService.get(s)!)];
  if (initContainers.length) podSpec.initContainers = initContainers;
  if (containers.length === 0) {
    diags.error({ message: 'every service is a dependency of another (depends_on), so the pod would have no regular container', path: ['services'], hint: 'Remove the depends_on cycle.' });
  }
  podSpec.containers = containers.sort(byKey((c) => c.name as string));
  if (state.volumes.size) podSpec.volumes = sortedByName(state.volumes.values() as Iterable<{ name: string }>);

  const configMapObjs = [...state.configMaps.values()].sort(byKey((o) => o.metadata.name));
  const secretObjs = [...state.secrets.values()].sort(byKey((o) => o.metadata.name));
  const templateAnnotations: Record<string, string> = {};
  if (configMapObjs.length || secretObjs.length) templateAnnotations[ANN_CONFIG_HASH] = contentHash([...configMapObjs, ...secretObjs]);
  if (input.secrets?.revision) templateAnnotations[ANN_SECRETS_REVISION] = input.secrets.revision;

  const deployment: KubeObject = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: ctx.app.name, namespace: ns, labels: { ...labels } },
    spec: {
      replicas: 1,
      // Recreate: the old pod releases the RWO disk before the new one mounts it.
      strategy: { type: 'Recreate' },
      selector: { matchLabels: { ...selector } },
      template: {
        metadata: { labels: { ...labels, ...selector }, ...(Object.keys(templateAnnotations).length ? { annotations: templateAnnotations } : {}) },
        spec: podSpec,
      },
    },
  };
  const namespace: KubeObject = {
    apiVersion: 'v1',
    kind: 'Namespace',
    // disk-current-id / disk-previous-id are written by the disk use cases, never here: a server-side
    // apply of this manifest must not take ownership of them.
    metadata: { name: ns, labels: { ...labels }, annotations: { [ANN_APP]: appId(ctx), [ANN_PROVIDER]: ctx.provider.driver } },
  };
  const service = buildService(ctx, ns, labels, selector, ports);
  const ingresses = buildIngresses(ctx, ns, labels, ports, diags).sort(byKey((o) => o.metadata.name));
  const objects: KubeObject[] = [
    namespace,
    buildNetworkPolicy(ctx, ns, labels),
    ...configMapObjs,
    ...secretObjs,
    ...[...storage.objects.pvs].sort(byKey((o) => o.metadata.name)),
    ...[...storage.objects.pvcs].sort(byKey((o) => o.metadata.name)),
    deployment,
    ...(service ? [service] : []),
    ...ingresses,
  ];
  // A plain JSON tree: no shared sub-objects (YAML anchors), no undefined fields.
  return { objects: JSON.parse(JSON.stringify(objects)) as KubeObject[], warnings: sortDiagnostics(diags.warnings), errors: sortDiagnostics(diags.errors) };
}
