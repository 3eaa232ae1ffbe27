// Waiting for a Deployment to become ready, and saying why it does not. The
// assessment is pure (deployment, its replica sets, pods and events in; a
// verdict out) so every reason is unit-tested; the wait loop polls the API
// server. Reasons come from pod status and events, never from guessing: on a
// cluster without nodes or controllers the report says exactly what it saw.
import { KompoxError } from '../domain/errors.js';
import { sleep, statusEvent, type Op } from '../domain/events.js';
import type { KubeClient, KubeObject } from '../domain/ports/kube.js';

export type RolloutState = 'ready' | 'progressing' | 'failed';

export interface RolloutVerdict {
  state: RolloutState;
  /** One line for the progress display / final report. */
  message: string;
}

/** Container waiting reasons that will not resolve by waiting. */
export const FATAL_REASONS = new Set([
  'ImagePullBackOff',
  'ErrImagePull',
  'InvalidImageName',
  'ErrImageNeverPull',
  'CreateContainerConfigError',
  'CreateContainerError',
  'CrashLoopBackOff',
  'RunContainerError',
]);

const REVISION = 'deployment.kubernetes.io/revision';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function ownedBy(o: KubeObject, owner: KubeObject): boolean {
  const refs = (o.metadata.ownerReferences as Any[] | undefined) ?? [];
  return refs.some((r) => r.uid === owner.metadata.uid || (r.kind === owner.kind && r.name === owner.metadata.name));
}

function latestEvent(events: KubeObject[], kind: string, name: string): KubeObject | undefined {
  return events
    .filter((e) => (e.involvedObject as Any)?.kind === kind && (e.involvedObject as Any)?.name === name)
    .sort((a, b) => String(b.lastTimestamp ?? b.eventTime ?? '').localeCompare(String(a.lastTimestamp ?? a.eventTime ?? '')))[0];
}

function oneLine(s: unknown): string {
  return String(s ?? '').replace(/\s+/g, ' ').trim();
}

/** What a container status belongs to: a regular container, a sidecar (init container with restartPolicy Always) or a run-to-completion init container. */
type ContainerKind = 'container' | 'sidecar' | 'init';

function label(kind: ContainerKind, name: string): string {
  return `${kind === 'container' ? 'container' : kind === 'sidecar' ? 'sidecar' : 'init container'} ${name}`;
}

/** Container statuses of the pod, init containers first (in start order), each with its kind from the pod spec. */
function podStatuses(pod: KubeObject): { cs: Any; kind: ContainerKind }[] {
  const status = (pod.status as Any) ?? {};
  const sidecars = new Set<string>((((pod.spec as Any)?.initContainers as Any[]) ?? []).filter((c) => c.restartPolicy === 'Always').map((c) => c.name));
  return [
    ...((status.initContainerStatuses as Any[]) ?? []).map((cs) => ({ cs, kind: (sidecars.has(cs.name) ? 'sidecar' : 'init') as ContainerKind })),
    ...((status.containerStatuses as Any[]) ?? []).map((cs) => ({ cs, kind: 'container' as ContainerKind })),
  ];
}

/** A run-to-completion init container is done when it exited 0; a sidecar once it has started. */
function initDone(cs: Any, kind: ContainerKind): boolean {
  if (kind === 'init') return cs.state?.terminated?.exitCode === 0;
  return cs.started === true || Boolean(cs.state?.running && cs.ready);
}

/** Why one pod is not ready, or undefined when it is. */
export function podProblem(pod: KubeObject, events: KubeObject[]): RolloutVerdict | undefined {
  const name = pod.metadata.name;
  const status = (pod.status as Any) ?? {};
  const all = podStatuses(pod);
  const statuses: Any[] = all.map((s) => s.cs);
  for (const { cs, kind } of all) {
    const w = cs.state?.waiting;
    if (w?.reason && FATAL_REASONS.has(w.reason)) {
      const last = cs.lastState?.terminated;
      const lastInfo = last ? `; last exit code ${last.exitCode}${last.reason ? ` (${last.reason})` : ''}` : '';
      const reason = kind === 'container' ? w.reason : `Init:${w.reason}`;
      return { state: 'failed', message: `pod ${name}: ${label(kind, cs.name)}: ${reason}${w.message ? `: ${oneLine(w.message)}` : ''}${lastInfo}` };
    }
    // A run-to-completion init container that exited non-zero (kubectl: Init:Error) blocks the pod: a
    // failed migration or setup step does not fix itself, so say so now instead of waiting for the timeout.
    if (kind === 'init' && cs.state?.terminated?.exitCode !== 0) {
      const t = cs.state?.terminated ?? cs.lastState?.terminated;
      if (t && t.exitCode !== 0) {
        const detail = t.message ? `: ${oneLine(t.message)}` : '';
        return {
          state: 'failed',
          message: `pod ${name}: ${label(kind, cs.name)} failed: Init:${t.reason ?? 'Error'}, exit code ${t.exitCode}${detail}${cs.restartCount ? ` (${cs.restartCount} restarts)` : ''}`,
        };
      }
    }
  }
  const phase = status.phase ?? 'Pending';
  if (phase === 'Failed') return { state: 'failed', message: `pod ${name} failed${status.reason ? `: ${status.reason}` : ''}${status.message ? `: ${oneLine(status.message)}` : ''}` };
  const conds: Any[] = status.conditions ?? [];
  const sched = conds.find((c) => c.type === 'PodScheduled');
  if (phase === 'Pending') {
    if (sched?.status === 'False') return { state: 'progressing', message: `pod ${name} Pending: ${oneLine(sched.message || sched.reason)}` };
    const ev = latestEvent(events, 'Pod', name);
    if (ev && ev.type === 'Warning') return { state: 'progressing', message: `pod ${name} Pending: ${ev.reason}: ${oneLine(ev.message)}` };
    // init containers start one by one: the first one not done yet is what the pod waits for
    const initing = all.find(({ cs, kind }) => kind !== 'container' && !initDone(cs, kind));
    if (initing) {
      const { cs, kind } = initing;
      const why = cs.state?.waiting ? (cs.state.waiting.reason ?? 'waiting') : cs.state?.running ? (kind === 'sidecar' ? 'started, waiting for its startup probe' : 'running') : 'not started';
      return { state: 'progressing', message: `pod ${name} Pending: ${label(kind, cs.name)} ${why}` };
    }
    const waiting = statuses.find((cs) => cs.state?.waiting);
    if (waiting) return { state: 'progressing', message: `pod ${name} Pending: container ${waiting.name} ${waiting.state.waiting.reason ?? 'waiting'}` };
    if (!(pod.spec as Any)?.nodeName) return { state: 'progressing', message: `pod ${name} Pending: not scheduled to a node yet (is a scheduler running?)` };
    return { state: 'progressing', message: `pod ${name} Pending` };
  }
  // a completed run-to-completion init container is not "not ready"
  const notReady = all.filter(({ cs, kind }) => !cs.ready && !(kind === 'init' && initDone(cs, kind)));
  if (phase === 'Running' && notReady.length === 0 && statuses.length > 0) return undefined;
  if (notReady.length) {
    const { cs, kind } = notReady[0]!;
    const w = cs.state?.waiting;
    const t = cs.state?.terminated;
    const why = w ? `${w.reason ?? 'waiting'}` : t ? `terminated with exit code ${t.exitCode}${t.reason ? ` (${t.reason})` : ''}` : 'running, not ready (readiness probe)';
    return { state: 'progressing', message: `pod ${name} ${phase}: ${label(kind, cs.name)} ${why}${cs.restartCount ? `, ${cs.restartCount} restarts` : ''}` };
  }
  return { state: 'progressing', message: `pod ${name} ${phase}` };
}

/** The state of one Deployment's rollout, from everything the API server shows about it. */
export function assessDeployment(dep: KubeObject, replicaSets: KubeObject[], pods: KubeObject[], events: KubeObject[]): RolloutVerdict {
  const name = dep.metadata.name;
  const spec = (dep.spec as Any) ?? {};
  const st = (dep.status as Any) ?? {};
  const want = spec.replicas ?? 1;
  const gen = dep.metadata.generation ?? 0;
  const observed = st.observedGeneration ?? 0;
  // only the pods of the current revision count: an old ReplicaSet's crashing pod is not this rollout's failure
  const revision = dep.metadata.annotations?.[REVISION];
  const current = revision ? replicaSets.find((rs) => ownedBy(rs, dep) && rs.metadata.annotations?.[REVISION] === revision) : undefined;
  const live = pods.filter((p) => !p.metadata.deletionTimestamp && (!current || ownedBy(p, current)));

  // fatal pod problems first: they are the reason, whatever the counters say
  for (const p of live) {
    const prob = podProblem(p, events);
    if (prob?.state === 'failed') return { state: 'failed', message: `deployment ${name}: ${prob.message}` };
  }
  const progressing = ((st.conditions as Any[]) ?? []).find((c) => c.type === 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded') {
    return { state: 'failed', message: `deployment ${name}: ${oneLine(progressing.message)}` };
  }
  const upToDate = observed >= gen && (st.updatedReplicas ?? 0) >= want && (st.availableReplicas ?? 0) >= want && (st.replicas ?? 0) <= want;
  if (want === 0 || (upToDate && live.every((p) => !podProblem(p, events)))) {
    return { state: 'ready', message: `deployment ${name}: ${st.readyReplicas ?? want}/${want} ready` };
  }
  const counts = `${st.readyReplicas ?? 0}/${want} ready`;
  if (live.length === 0) {
    const rss = replicaSets.filter((rs) => ownedBy(rs, dep));
    if (rss.length === 0) {
      const ev = latestEvent(events, 'Deployment', name);
      const why = ev ? `; last event: ${ev.reason}: ${oneLine(ev.message)}` : '';
      return { state: 'progressing', message: `deployment ${name}: ${counts}; no pod was created for deployment ${name} (is the controller manager running?)${why}` };
    }
    const rs = rss.sort((a, b) => String(b.metadata.creationTimestamp).localeCompare(String(a.metadata.creationTimestamp)))[0]!;
    const ev = latestEvent(events, 'ReplicaSet', rs.metadata.name);
    const failure = ((rs.status as Any)?.conditions ?? []).find((c: Any) => c.type === 'ReplicaFailure' && c.status === 'True');
    const why = failure ? oneLine(failure.message) : ev ? `${ev.reason}: ${oneLine(ev.message)}` : 'no pod yet';
    return { state: 'progressing', message: `deployment ${name}: ${counts}; replica set ${rs.metadata.name}: ${why}` };
  }
  const prob = live.map((p) => podProblem(p, events)).find(Boolean);
  return { state: 'progressing', message: `deployment ${name}: ${counts}${prob ? `; ${prob.message}` : ''}` };
}

export function selectorString(matchLabels: Record<string, string> | undefined): string {
  return Object.entries(matchLabels ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** Everything assessDeployment needs, read from the API server. */
export async function observeDeployment(kube: KubeClient, namespace: string, name: string): Promise<{ dep?: KubeObject; replicaSets: KubeObject[]; pods: KubeObject[]; events: KubeObject[] }> {
  const dep = await kube.get({ apiVersion: 'apps/v1', kind: 'Deployment', namespace, name });
  if (!dep) return { replicaSets: [], pods: [], events: [] };
  const sel = selectorString(((dep.spec as Any)?.selector as Any)?.matchLabels);
  // ReplicaSets and events only explain; an identity that may not read them still gets a verdict
  const optional = (p: Promise<KubeObject[]>) => p.catch((e: unknown) => (e instanceof KompoxError && (e.kind === 'auth' || e.kind === 'notfound') ? [] : Promise.reject(e)));
  const [replicaSets, pods, events] = await Promise.all([
    optional(kube.list('apps/v1', 'ReplicaSet', { namespace, labelSelector: sel })),
    kube.list('v1', 'Pod', { namespace, labelSelector: sel }),
    optional(kube.list('v1', 'Event', { namespace })),
  ]);
  return { dep, replicaSets, pods, events };
}

export interface WaitOptions {
  timeoutMs: number;
  pollMs?: number;
  /** For tests: a clock. */
  now?: () => number;
}

export interface WaitResult {
  state: RolloutState | 'timeout';
  /** Per deployment, the last verdict. */
  verdicts: Record<string, RolloutVerdict>;
  message: string;
}

/**
 * Polls until every deployment is ready, one fails, or the timeout passes.
 * The current state goes to the Op as a `status` event whenever it changes;
 * cancelling ends the wait with the `interrupted` error.
 */
export async function waitForDeployments(kube: KubeClient, namespace: string, names: string[], opts: WaitOptions, op: Op = {}): Promise<WaitResult> {
  const now = opts.now ?? Date.now;
  const deadline = now() + opts.timeoutMs;
  const poll = opts.pollMs ?? 2000;
  let last = '';
  for (;;) {
    const verdicts: Record<string, RolloutVerdict> = {};
    for (const n of [...names].sort()) {
      const o = await observeDeployment(kube, namespace, n);
      verdicts[n] = o.dep
        ? assessDeployment(o.dep, o.replicaSets, o.pods, o.events)
        : { state: 'failed', message: `deployment ${n} does not exist (deleted while waiting?)` };
    }
    const vs = Object.values(verdicts);
    const message = vs.map((v) => v.message).join('; ');
    if (message !== last) {
      statusEvent(op, message);
      last = message;
    }
    const failed = vs.find((v) => v.state === 'failed');
    if (failed) return { state: 'failed', verdicts, message: failed.message };
    if (vs.every((v) => v.state === 'ready')) return { state: 'ready', verdicts, message };
    if (now() >= deadline) return { state: 'timeout', verdicts, message };
    await sleep(Math.min(poll, Math.max(0, deadline - now())), op);
  }
}
