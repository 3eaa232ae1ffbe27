// Stopping the app (its Deployments scaled to 0, waiting until its pods are
// gone) and starting it again with the replica counts it had: the steps of a
// maintenance box, which spans commands (the counts are recorded in between),
// and of snapshot.ts's withAppStopped, which does them within one call.
//
// A quiesce (withAppStopped) records the count to give back on each
// Deployment, in the patch that stops it, and removes the record in the patch
// that starts it again: a process killed in between (SIGKILL, a crash, the
// laptop asleep, the connection lost so the start fails) leaves the app
// stopped, and only the cluster can say so and what to restore. The next
// quiesce, a box, app status and app deploy read the record.
import { KompoxError } from '../domain/errors.js';
import { logEvent, sleep, throwIfAborted, type Op } from '../domain/events.js';
import type { AppContext } from '../domain/model.js';
import { APP_SELECTOR_LABEL, appNamespace, nowRfc3339 } from '../domain/names.js';
import type { KubeClient, KubeObject } from '../domain/ports/kube.js';

/** Deployment annotation: the replica count a quiesce gives back when it starts the Deployment again. */
export const ANN_QUIESCED_REPLICAS = 'kompox.dev/quiesced-replicas';
/** Deployment annotation: when the quiesce stopped it (RFC 3339). */
export const ANN_QUIESCED_SINCE = 'kompox.dev/quiesced-since';
/** Deployment annotation: what stopped it, e.g. `snapshot quiet` (a quiesced snapshot) or `export of disk d1`. */
export const ANN_QUIESCED_BY = 'kompox.dev/quiesced-by';
const QUIESCE_ANNOTATIONS = [ANN_QUIESCED_REPLICAS, ANN_QUIESCED_SINCE, ANN_QUIESCED_BY] as const;

/** A quiesce's record on a Deployment it stopped. */
export interface QuiesceRecord {
  /** The replica count to give back. */
  replicas: number;
  /** When it was stopped (RFC 3339; empty when the annotation is missing). */
  since: string;
  /** What stopped it: `snapshot NAME` or `export of disk NAME` (quiesced). */
  by: string;
}

const deploymentRef = (ctx: AppContext, name: string) => ({ apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: appNamespace(ctx) });

const replicasOf = (d: KubeObject): number => (d.spec as { replicas?: number } | undefined)?.replicas ?? 1;

/** Whether any of the quiesce annotations is on the Deployment (also a stale one on a running Deployment). */
export function hasQuiesceAnnotations(d: KubeObject): boolean {
  const a = d.metadata.annotations ?? {};
  return QUIESCE_ANNOTATIONS.some((k) => a[k] !== undefined);
}

/**
 * The record of a quiesce that stopped this Deployment and has not started it
 * again: a quiesce still running, or one that was interrupted (the cluster
 * cannot tell them apart). A record on a Deployment that runs (replicas > 0:
 * someone started it since) is stale and ignored, as is an unreadable count.
 */
export function quiesceRecord(d: KubeObject): QuiesceRecord | undefined {
  const a = d.metadata.annotations ?? {};
  const count = Number(a[ANN_QUIESCED_REPLICAS]);
  if (replicasOf(d) !== 0 || a[ANN_QUIESCED_REPLICAS] === undefined || !Number.isInteger(count) || count < 1) return undefined;
  return { replicas: count, since: a[ANN_QUIESCED_SINCE] ?? '', by: a[ANN_QUIESCED_BY] ?? 'an operation' };
}

/** The app's Deployments, by name (sorted). */
export async function appDeployments(kube: KubeClient, ctx: AppContext): Promise<Map<string, KubeObject>> {
  const ns = appNamespace(ctx);
  const deps = await kube.list('apps/v1', 'Deployment', { namespace: ns, labelSelector: `app.kubernetes.io/instance=${ns}` });
  return new Map(deps.map((d) => [d.metadata.name, d] as const).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** How a Deployment stopped by a quiesce that did not start it again is described (log lines, app status). */
export function describeQuiesced(name: string, r: QuiesceRecord): string {
  return `${name} was stopped${r.since ? ` at ${r.since}` : ''} by the quiesced ${r.by}`;
}

/**
 * The app's Deployments and the replica counts to give back, by name: the
 * count now, except for a Deployment a quiesce stopped and did not start
 * again, which counts with the count it recorded (its count now, 0, would
 * keep the app stopped for good). Such a one is said in a log event.
 */
export async function appReplicas(kube: KubeClient, ctx: AppContext, op?: Op): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [name, d] of await appDeployments(kube, ctx)) {
    const record = quiesceRecord(d);
    if (record) logEvent(op, `${describeQuiesced(name, record)}, which has not started it again (interrupted, unless it is still running); it will be started again with replicas ${record.replicas}`);
    out[name] = record ? record.replicas : replicasOf(d);
  }
  return out;
}

/**
 * Stops each named Deployment (replicas 0; those that no longer exist, and
 * those with nothing to give back, are skipped). With `quiesce`, the same
 * patch records the count to give back (`counts`), when and by what, so a
 * stop whose process dies is found and undone (startApp removes the record).
 */
export async function stopApp(kube: KubeClient, ctx: AppContext, counts: Record<string, number>, op: Op, quiesce?: { by: string }): Promise<void> {
  const now = await appDeployments(kube, ctx);
  const since = nowRfc3339();
  for (const [name, count] of Object.entries(counts)) {
    const d = now.get(name);
    if (!d || count === 0) continue;
    const current = replicasOf(d);
    // a Deployment stopped already (an interrupted quiesce): its record is taken over, with this operation's time and name
    if (current === 0 && !quiesce) continue;
    const annotations = quiesce ? { [ANN_QUIESCED_REPLICAS]: String(count), [ANN_QUIESCED_SINCE]: since, [ANN_QUIESCED_BY]: quiesce.by } : undefined;
    await kube.mergePatch(deploymentRef(ctx, name), { ...(annotations ? { metadata: { annotations } } : {}), spec: { replicas: 0 } });
    if (current !== 0) logEvent(op, `stopping ${name} (replicas ${current} → 0)`);
  }
}

/** Starts each named Deployment again with its count (those that no longer exist are skipped), removing a quiesce's record in the same patch. */
export async function startApp(kube: KubeClient, ctx: AppContext, counts: Record<string, number>, op: Op): Promise<void> {
  const now = await appDeployments(kube, ctx);
  for (const [name, count] of Object.entries(counts)) {
    const d = now.get(name);
    if (!d) continue;
    const current = replicasOf(d);
    const recorded = hasQuiesceAnnotations(d);
    if (current === count && !recorded) continue;
    const clear = recorded ? { metadata: { annotations: Object.fromEntries(QUIESCE_ANNOTATIONS.map((k) => [k, null])) } } : {};
    await kube.mergePatch(deploymentRef(ctx, name), { ...clear, spec: { replicas: count } });
    if (current !== count) logEvent(op, `started ${name} again (replicas ${count})`);
  }
}

/** The app's Deployments a quiesce stopped and has not started again, with its record. */
export async function quiescedDeployments(kube: KubeClient, ctx: AppContext): Promise<({ deployment: string } & QuiesceRecord)[]> {
  return [...(await appDeployments(kube, ctx))].flatMap(([name, d]) => {
    const record = quiesceRecord(d);
    return record ? [{ deployment: name, ...record }] : [];
  });
}

const CLEAR_ATTEMPTS = 5;

/**
 * Removes the quiesce records of the named Deployments that run: after app
 * deploy applied them (its replica count included, forced), a record there
 * is stale, and left in place it would make a later stop (kubectl scale)
 * look like an interrupted quiesce. Each patch is conditional on the version
 * read, retried on 409 Conflict (the controllers write status meanwhile), so
 * a quiesce that stopped the Deployment since keeps its record. Returns the
 * names it cleared.
 */
export async function clearStaleQuiesceRecords(kube: KubeClient, ctx: AppContext, names: readonly string[]): Promise<string[]> {
  const cleared: string[] = [];
  for (const name of names) {
    for (let attempt = 1; ; attempt++) {
      const d = await kube.get(deploymentRef(ctx, name));
      if (!d || !hasQuiesceAnnotations(d) || replicasOf(d) === 0) break;
      const annotations = Object.fromEntries(QUIESCE_ANNOTATIONS.map((k) => [k, null]));
      try {
        await kube.mergePatch(deploymentRef(ctx, name), { metadata: { resourceVersion: d.metadata.resourceVersion, annotations } });
        cleared.push(name);
        break;
      } catch (e) {
        if (!(e instanceof KompoxError && e.code === 'kube.conflict') || attempt >= CLEAR_ATTEMPTS) throw e;
      }
    }
  }
  return cleared;
}

/**
 * Waits until the app has no pod left (Terminating ones included); `what`
 * says, on a timeout (`code`, `hint`) or a cancel (`interrupted`), what was
 * (not) done.
 */
export async function waitAppStopped(
  kube: KubeClient,
  ctx: AppContext,
  timeoutMs: number,
  op: Op,
  what: { code: string; hint: string; interrupted?: string },
): Promise<void> {
  const ns = appNamespace(ctx);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    throwIfAborted(op, what.interrupted);
    const pods = await kube.list('v1', 'Pod', { namespace: ns, labelSelector: `${APP_SELECTOR_LABEL}=${ns}` });
    if (pods.length === 0) return;
    if (Date.now() > deadline) {
      throw new KompoxError('timeout', `the app's pod did not stop in time (${pods.map((p) => p.metadata.name).join(', ')} still there)`, { code: what.code, hint: what.hint });
    }
    await sleep(250, op).catch(() => throwIfAborted(op, what.interrupted));
  }
}
