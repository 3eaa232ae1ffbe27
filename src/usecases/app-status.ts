// `app status`: what the cluster says about the app — namespace, deployment
// readiness, pods and containers (ready, restarts, image, last state), ingress
// URLs, the current disk, and recent warning events. Read-only; returns data.
import { KompoxError } from '../domain/errors.js';
import { ANN_APP, ANN_DISK_CURRENT, ANN_DISK_PREVIOUS, type AppContext } from '../domain/model.js';
import { appNamespace, appSelector } from '../domain/names.js';
import { NODE_POOL_LABEL, ZONE_LABEL } from '../domain/placement.js';
import type { KubeClient, KubeObject } from '../domain/ports/kube.js';
import { assessDeployment, selectorString } from '../kube/rollout.js';
import { appVolumes, diskAnnotationKeys } from './volumes.js';
import { podContainers, type ContainerKind } from './app-logs.js';
import { readVolumeBindings, type VolumeBinding } from './volume-bindings.js';
import { describeLiveness, quiesceLiveness, quiesceRecord, type QuiesceRecord } from './app-scale.js';

export interface ContainerStatus {
  name: string;
  image: string;
  ready: boolean;
  restarts: number;
  state: string;
  lastState?: { reason?: string; exitCode?: number; finishedAt?: string };
  /** Set for init containers: a sidecar (a depends_on dependency, runs next to the app) or a run-to-completion init container. */
  kind?: 'sidecar' | 'init';
}

export interface PodStatus {
  name: string;
  phase: string;
  node?: string;
  /** The node's kompox.dev/node-pool and topology.kubernetes.io/zone labels, when the node can be read. */
  pool?: string;
  zone?: string;
  containers: ContainerStatus[];
}

export interface AppStatus {
  app: string;
  namespace: string;
  exists: boolean;
  appId?: string;
  deployments: { name: string; ready: string; state: string; message: string }[];
  pods: PodStatus[];
  urls: string[];
  /** current/previous: the primary volume's disk; volumes: the current disk per app volume; annotations: all disk annotations. */
  disks: { current?: string; previous?: string; volumes: Record<string, string | undefined>; annotations: Record<string, string> };
  events: { type: string; reason: string; object: string; message: string; count: number; lastTimestamp?: string }[];
  /** Secrets stored for the app outside its compose files: names only (Secrets, registries, variable names), never a value. */
  secrets?: { pull?: { secret: string; registries: string[] }; env: { service: string; secret: string; keys: string[] }[] };
  /**
   * Deployments a quiesced snapshot or export stopped and has not started
   * again: one still running (`live`: it renewed its record within the
   * staleness threshold), or one that was interrupted (killed, its connection
   * lost: no renewal since). `liveness` says which in words (`running
   * (renewed 12s ago)`, `interrupted (not renewed since T)`). `replicas` is
   * what the next quiesce or a deploy gives back. `aheadS`: its time is that
   * far ahead of this clock (LIVE by its writer's clock alone: a deploy or a
   * quiesce watches it before going over it).
   */
  quiesced?: ({ deployment: string; live: boolean; liveness: string; aheadS?: number } & QuiesceRecord)[];
  /** The maintenance box, when there is one (also one left behind by an interrupted command). */
  box?: import('./box.js').BoxState;
  /** Each volume's claim and PersistentVolume: phases, whether they point at each other, and what is wrong (volume-bindings.ts). */
  volumeBindings: VolumeBinding[];
}

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function containerState(cs: Any): string {
  if (cs.state?.running) return 'running';
  if (cs.state?.waiting) return `waiting: ${cs.state.waiting.reason ?? ''}`.trim();
  if (cs.state?.terminated) return `terminated: ${cs.state.terminated.reason ?? ''} (exit ${cs.state.terminated.exitCode})`;
  return 'not started';
}

/** Containers of the pod: the regular ones, then the init containers (sidecars and one-shots) in start order. */
export function podStatus(p: KubeObject): PodStatus {
  const st = (p.status as Any) ?? {};
  const one = (c: { name: string; image?: string; kind: ContainerKind }, statuses: Any[]): ContainerStatus => {
    const cs = statuses.find((s) => s.name === c.name) ?? {};
    const last = cs.lastState?.terminated;
    const out: ContainerStatus = { name: c.name, image: c.image ?? '', ready: Boolean(cs.ready), restarts: cs.restartCount ?? 0, state: containerState(cs) };
    if (last) out.lastState = { reason: last.reason, exitCode: last.exitCode, finishedAt: last.finishedAt };
    if (c.kind !== 'container') out.kind = c.kind;
    return out;
  };
  return {
    name: p.metadata.name,
    phase: p.metadata.deletionTimestamp ? 'Terminating' : (st.phase ?? 'Pending'),
    node: (p.spec as Any)?.nodeName,
    containers: podContainers(p).map((c) => one(c, c.kind === 'container' ? (st.containerStatuses ?? []) : (st.initContainerStatuses ?? []))),
  };
}

/** URLs from Ingress rules: https when the host is in a TLS section (or Traefik websecure), else http. */
export function ingressUrls(ingresses: KubeObject[]): string[] {
  const urls = new Set<string>();
  for (const ing of ingresses) {
    const spec = (ing.spec as Any) ?? {};
    const tlsHosts = new Set<string>(((spec.tls as Any[]) ?? []).flatMap((t) => t.hosts ?? []));
    const entry = String(ing.metadata.annotations?.['traefik.ingress.kubernetes.io/router.entrypoints'] ?? '');
    for (const rule of (spec.rules as Any[]) ?? []) {
      if (!rule.host) continue;
      const https = tlsHosts.has(rule.host) || entry.includes('websecure') || ing.metadata.annotations?.['traefik.ingress.kubernetes.io/router.tls'] === 'true';
      urls.add(`${https ? 'https' : 'http'}://${rule.host}/`);
    }
  }
  return [...urls].sort();
}

export async function appStatus(ctx: AppContext, kube: KubeClient, opts: { maxEvents?: number } = {}): Promise<AppStatus> {
  const namespace = appNamespace(ctx);
  const ns = await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: namespace });
  const ann = ns?.metadata.annotations ?? {};
  const status: AppStatus = {
    app: ctx.app.name,
    namespace,
    exists: Boolean(ns),
    deployments: [],
    pods: [],
    urls: [],
    disks: {
      current: ann[ANN_DISK_CURRENT],
      previous: ann[ANN_DISK_PREVIOUS],
      volumes: Object.fromEntries(appVolumes(ctx).map((v) => [v.name, ann[diskAnnotationKeys(ctx, v).current]])),
      annotations: Object.fromEntries(Object.entries(ann).filter(([k]) => k.startsWith('kompox.dev/disk-')).sort(([a], [b]) => a.localeCompare(b))),
    },
    events: [],
    volumeBindings: [],
  };
  if (ann[ANN_APP]) status.appId = ann[ANN_APP];
  if (!ns) return status;
  // ReplicaSets and events only explain: a read-only identity without access to them still gets a status
  const optional = (p: Promise<KubeObject[]>) => p.catch((e: unknown) => (e instanceof KompoxError && (e.kind === 'auth' || e.kind === 'notfound') ? [] : Promise.reject(e)));
  const [deployments, replicaSets, pods, ingresses, events] = await Promise.all([
    kube.list('apps/v1', 'Deployment', { namespace }),
    optional(kube.list('apps/v1', 'ReplicaSet', { namespace })),
    kube.list('v1', 'Pod', { namespace, labelSelector: selectorString(appSelector(ctx)) }),
    kube.list('networking.k8s.io/v1', 'Ingress', { namespace }),
    optional(kube.list('v1', 'Event', { namespace })),
  ]);
  for (const d of deployments.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const sel = ((d.spec as Any)?.selector?.matchLabels ?? {}) as Record<string, string>;
    const mine = pods.filter((p) => Object.entries(sel).every(([k, v]) => p.metadata.labels?.[k] === v));
    const v = assessDeployment(d, replicaSets, mine, events);
    const st = (d.status as Any) ?? {};
    status.deployments.push({ name: d.metadata.name, ready: `${st.readyReplicas ?? 0}/${(d.spec as Any)?.replicas ?? 1}`, state: v.state, message: v.message });
    const record = quiesceRecord(d);
    if (record) {
      const l = quiesceLiveness(record);
      (status.quiesced ??= []).push({ deployment: d.metadata.name, ...record, live: l.live, liveness: describeLiveness(record, l), ...(l.aheadS ? { aheadS: l.aheadS } : {}) });
    }
  }
  status.volumeBindings = await readVolumeBindings(kube, namespace);
  status.pods = pods.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)).map(podStatus);
  // where the pod runs (app.deployment): the node's pool and zone; an identity that may not read nodes gets none
  const nodeNames = [...new Set(status.pods.map((p) => p.node).filter((n): n is string => Boolean(n)))];
  const nodes = new Map(await Promise.all(nodeNames.map(async (n) => [n, await kube.get({ apiVersion: 'v1', kind: 'Node', name: n }).catch(() => undefined)] as const)));
  for (const p of status.pods) {
    const labels = (p.node && nodes.get(p.node)?.metadata.labels) || {};
    if (labels[NODE_POOL_LABEL]) p.pool = labels[NODE_POOL_LABEL];
    if (labels[ZONE_LABEL]) p.zone = labels[ZONE_LABEL];
  }
  // stored secrets (names only) and the maintenance box; an identity that may not list them still gets a status
  const { readStoredSecrets } = await import('./app-secrets.js');
  const { findBox } = await import('./box.js');
  const stored = await readStoredSecrets(ctx, kube).catch((e: unknown) => (e instanceof KompoxError && e.kind === 'auth' ? undefined : Promise.reject(e)));
  if (stored && (stored.pull || stored.env.length)) status.secrets = { ...(stored.pull ? { pull: stored.pull } : {}), env: stored.env };
  const box = await findBox(ctx, kube).catch((e: unknown) => (e instanceof KompoxError && e.kind === 'auth' ? undefined : Promise.reject(e)));
  if (box) status.box = box;
  status.urls = ingressUrls(ingresses);
  status.events = events
    .filter((e) => e.type === 'Warning')
    .sort((a, b) => String(b.lastTimestamp ?? b.eventTime ?? '').localeCompare(String(a.lastTimestamp ?? a.eventTime ?? '')))
    .slice(0, opts.maxEvents ?? 10)
    .map((e) => ({
      type: String(e.type),
      reason: String(e.reason ?? ''),
      object: `${(e.involvedObject as Any)?.kind}/${(e.involvedObject as Any)?.name}`,
      message: String(e.message ?? '').replace(/\s+/g, ' ').trim(),
      count: Number(e.count ?? 1),
      lastTimestamp: (e.lastTimestamp ?? e.eventTime) as string | undefined,
    }));
  return status;
}
