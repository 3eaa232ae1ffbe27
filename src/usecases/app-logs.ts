// `app logs`: the app pod's container logs. The pod is found by the app
// selector label (one pod per app); a running pod is preferred over one that
// is pending or terminating, the newest one among equals.
import { KompoxError } from '../domain/errors.js';
import type { AppContext } from '../domain/model.js';
import { appNamespace, appSelector } from '../domain/names.js';
import type { KubeClient, KubeObject, LogOptions } from '../domain/ports/kube.js';

function selector(ctx: Pick<AppContext, 'service' | 'provider' | 'app'>): string {
  return Object.entries(appSelector(ctx))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

function rank(p: KubeObject): number {
  if (p.metadata.deletionTimestamp) return 0;
  const phase = (p.status as { phase?: string } | undefined)?.phase;
  return phase === 'Running' ? 3 : phase === 'Pending' ? 2 : 1;
}

/** The app's pod; a clear error when there is none. */
export async function findAppPod(ctx: Pick<AppContext, 'service' | 'provider' | 'app'>, kube: KubeClient): Promise<KubeObject> {
  const namespace = appNamespace(ctx);
  const pods = await kube.list('v1', 'Pod', { namespace, labelSelector: selector(ctx) });
  const best = pods.sort(
    (a, b) => rank(b) - rank(a) || String(b.metadata.creationTimestamp ?? '').localeCompare(String(a.metadata.creationTimestamp ?? '')) || a.metadata.name.localeCompare(b.metadata.name),
  )[0];
  if (!best) {
    throw new KompoxError('notfound', `app ${ctx.app.name} has no pod in namespace ${namespace}`, {
      code: 'app.pod.notfound',
      details: { app: ctx.app.name, namespace },
      hint: "Deploy the app; the app's status shows why a pod is missing.",
    });
  }
  return best;
}

export interface AppLogsOptions extends LogOptions {
  out: NodeJS.WritableStream;
}

/** container: a regular container; sidecar: init container with restartPolicy Always (a depends_on dependency); init: runs to completion. */
export type ContainerKind = 'container' | 'sidecar' | 'init';

export interface PodContainer {
  name: string;
  image?: string;
  kind: ContainerKind;
}

type Spec = { containers?: { name: string; image?: string }[]; initContainers?: { name: string; image?: string; restartPolicy?: string }[] } | undefined;

/** Every container of the pod: the regular ones (spec order), then the init containers in start order. */
export function podContainers(pod: KubeObject): PodContainer[] {
  const spec = pod.spec as Spec;
  return [
    ...(spec?.containers ?? []).map((c) => ({ name: c.name, image: c.image, kind: 'container' as const })),
    ...(spec?.initContainers ?? []).map((c) => ({ name: c.name, image: c.image, kind: (c.restartPolicy === 'Always' ? 'sidecar' : 'init') as ContainerKind })),
  ];
}

/** The pod's container names: regular containers first, then sidecars and init containers. */
export function containerNames(pod: KubeObject): string[] {
  return podContainers(pod).map((c) => c.name);
}

/** "web, proxy; sidecars: db; init containers: kompox-init, migrate" — for hints. */
export function describeContainers(pod: KubeObject): string {
  const all = podContainers(pod);
  const of = (k: ContainerKind) => all.filter((c) => c.kind === k).map((c) => c.name).join(', ');
  return [of('container'), of('sidecar') && `sidecars: ${of('sidecar')}`, of('init') && `init containers: ${of('init')}`].filter(Boolean).join('; ');
}

/**
 * The container a command acts on: the one asked for (any regular, sidecar or init
 * container of the pod), else the first regular container — the app, not a dependency.
 */
export function chooseContainer(pod: KubeObject, wanted: string | undefined): string | undefined {
  const all = podContainers(pod);
  if (wanted !== undefined) {
    if (!all.some((c) => c.name === wanted)) {
      throw new KompoxError('usage', `pod ${pod.metadata.name} has no container "${wanted}"`, { hint: `Containers: ${describeContainers(pod)}.` });
    }
    return wanted;
  }
  return all.find((c) => c.kind === 'container')?.name ?? all[0]?.name;
}

/** The container `appLogs` reads (the one asked for, else the first regular container) and the pod's other containers. */
export async function logTarget(ctx: AppContext, kube: KubeClient, container?: string): Promise<{ pod: string; container?: string; others: string[] }> {
  const pod = await findAppPod(ctx, kube);
  const chosen = chooseContainer(pod, container);
  return { pod: pod.metadata.name, container: chosen, others: containerNames(pod).filter((n) => n !== chosen) };
}

/** Logs of one container of the app pod (sidecars and init containers too): the one asked for, else the first regular container. */
export async function appLogs(ctx: AppContext, kube: KubeClient, opts: AppLogsOptions): Promise<{ pod: string; container?: string }> {
  const pod = await findAppPod(ctx, kube);
  const { out, ...logOpts } = opts;
  const container = chooseContainer(pod, logOpts.container);
  await kube.logs(appNamespace(ctx), pod.metadata.name, { ...logOpts, container }, out);
  return { pod: pod.metadata.name, container };
}
