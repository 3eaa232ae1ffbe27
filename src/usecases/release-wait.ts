// Waiting until deleted objects are really gone. Deleting a pod, claim,
// volume or namespace only marks it: a pod stops within its grace period (a
// process that ignores SIGTERM takes all of it), pvc-protection holds a claim
// until no pod uses it, pv-protection a volume until it is unbound, the
// namespace controller a namespace until its content is gone. `app destroy`
// waits for that so that a deploy right after it finds nothing in its way,
// and `app deploy` waits for its own app's objects that are still going
// (never for, or on, anything that is not its own). Bounded, cancellable, with
// the current state as a `status` event whenever it changes.
import { formatDuration } from '../compose/duration.js';
import { KompoxError } from '../domain/errors.js';
import { sleep, statusEvent, type Op } from '../domain/events.js';
import { refString, type KubeClient, type KubeObject, type ObjectRef } from '../domain/ports/kube.js';
import { claimRefOf } from './volume-bindings.js';
import { MANAGED_BY, isOurs } from './plan.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface GoneWaitOptions {
  timeoutMs: number;
  pollMs?: number;
}

export interface GoneWaitResult {
  done: boolean;
  /** What was still there when the wait ended (empty when done). */
  remaining: string[];
}

const finalizersOf = (o: KubeObject) => (Array.isArray(o.metadata.finalizers) ? (o.metadata.finalizers as string[]) : []);

/** Claim names the pod mounts. */
export function podClaims(pod: KubeObject): string[] {
  return (((pod.spec as Any | undefined)?.volumes ?? []) as Any[]).map((v) => v.persistentVolumeClaim?.claimName).filter((n): n is string => typeof n === 'string');
}

/** `pod web-1 (stopping: grace period 30s)` or `pod web-1 (Running)`. */
export function describePod(pod: KubeObject): string {
  if (pod.metadata.deletionTimestamp) {
    const grace = pod.metadata.deletionGracePeriodSeconds;
    return `pod ${pod.metadata.name} (stopping${typeof grace === 'number' ? `: grace period ${grace}s` : ''})`;
  }
  return `pod ${pod.metadata.name} (${String((pod.status as Any | undefined)?.phase ?? 'Pending')})`;
}

/** An object being deleted and what holds it: its finalizers, and for a claim the pods that still use it. */
export function describeHeld(o: KubeObject, pods: KubeObject[] = []): string {
  const why: string[] = [];
  const f = finalizersOf(o);
  if (f.length) why.push(`finalizers: ${f.join(', ')}`);
  if (o.kind === 'PersistentVolumeClaim') {
    const users = pods.filter((p) => p.metadata.namespace === o.metadata.namespace && podClaims(p).includes(o.metadata.name)).map((p) => p.metadata.name);
    if (users.length) why.push(`used by pod ${users.join(', ')}`);
  }
  return `${refString(o, ' ')} (${o.metadata.deletionTimestamp ? 'Terminating' : 'still there'}${why.length ? `; ${why.join('; ')}` : ''})`;
}

/**
 * Polls `left` (what is still there, one phrase each) until it is empty or
 * `timeoutMs` has passed. `what` leads each status line (`waiting for ...`).
 * Cancelling ends the wait with the `interrupted` error.
 */
export async function waitUntilGone(left: () => Promise<string[]>, opts: GoneWaitOptions, op: Op = {}): Promise<GoneWaitResult> {
  const deadline = Date.now() + opts.timeoutMs;
  let last = '';
  for (;;) {
    const remaining = await left();
    if (!remaining.length) return { done: true, remaining };
    const line = `${remaining.join(', ')}`;
    if (line !== last) {
      statusEvent(op, line);
      last = line;
    }
    if (Date.now() >= deadline) return { done: false, remaining };
    await sleep(Math.min(opts.pollMs ?? 1000, Math.max(0, deadline - Date.now())), op);
  }
}

/** Kinds a finalizer holds after deletion, which an apply must not land on while they go. */
export const HELD_BY_FINALIZERS = new Set(['Namespace', 'PersistentVolume', 'PersistentVolumeClaim']);

/** The app's own object: its labels, or (a PersistentVolume) Kompox's label and a claimRef into the app namespace. */
function ownObject(o: KubeObject, namespace: string): boolean {
  if (isOurs(o, namespace)) return true;
  return o.kind === 'PersistentVolume' && o.metadata.labels?.[MANAGED_BY] === 'kompox' && claimRefOf(o)?.namespace === namespace;
}

export interface TerminatingWaitOptions extends GoneWaitOptions {
  /** A dry run does not wait: it says what a deploy would wait for. */
  dryRun?: boolean;
}

/**
 * Before a deploy writes anything: of the objects it is about to apply (only
 * the kinds finalizers hold), those still being deleted are waited for when
 * they are the app's own (an `app destroy` just before, a swapped disk's
 * binding), until they are gone; one that is not the app's is refused at once.
 * Nothing is written here. Fails with `kube.terminating` when they are still
 * there after `timeoutMs` (nothing was changed).
 */
export async function awaitOwnTerminating(kube: KubeClient, namespace: string, refs: ObjectRef[], opts: TerminatingWaitOptions, op: Op = {}): Promise<void> {
  const held = refs.filter((r) => HELD_BY_FINALIZERS.has(r.kind));
  const read = (r: ObjectRef) =>
    // an identity that may not read it cannot tell: the apply reports what it is missing
    kube.get(r).catch((e: unknown) => {
      if (e instanceof KompoxError && e.kind === 'auth') return undefined;
      throw e;
    });
  const waiting: ObjectRef[] = [];
  for (const r of held) {
    const live = await read(r);
    if (!live?.metadata.deletionTimestamp) continue;
    if (!ownObject(live, namespace)) {
      const f = finalizersOf(live);
      throw new KompoxError('conflict', `${refString(r)} is being deleted (Terminating since ${live.metadata.deletionTimestamp}${f.length ? `, finalizers: ${f.join(', ')}` : ''}) and was not created by Kompox for this app; nothing was changed`, {
        code: 'kube.terminating',
        details: { object: refString(r), finalizers: f, foreign: true },
        hint: 'Whoever deleted it must let it go first; deploy again once it is gone.',
      });
    }
    waiting.push(r);
  }
  if (!waiting.length) return;
  const describeAll = async (): Promise<{ text: string[]; objects: KubeObject[] }> => {
    const objects: KubeObject[] = [];
    for (const r of waiting) {
      const live = await read(r);
      // gone, or made again by someone else in the meantime (no longer being deleted)
      if (live?.metadata.deletionTimestamp) objects.push(live);
    }
    const pods = objects.some((o) => o.kind === 'PersistentVolumeClaim') ? await kube.list('v1', 'Pod', { namespace }).catch(() => [] as KubeObject[]) : [];
    return { text: objects.map((o) => describeHeld(o, pods)), objects };
  };
  if (opts.dryRun) {
    const { text } = await describeAll();
    if (text.length) statusEvent(op, `a deploy would first wait for: ${text.join(', ')}`);
    return;
  }
  let lastObjects: KubeObject[] = [];
  const r = await waitUntilGone(
    async () => {
      const { text, objects } = await describeAll();
      lastObjects = objects;
      return text.map((t) => `${t} to be deleted`);
    },
    opts,
    op,
  );
  if (r.done) return;
  const first = lastObjects[0]!;
  throw new KompoxError('conflict', `still being deleted after waiting ${formatDuration(opts.timeoutMs * 1e6)}: ${r.remaining.map((t) => t.replace(/ to be deleted$/, '')).join(', ')}; nothing was changed`, {
    code: 'kube.terminating',
    details: { object: refString(first), objects: lastObjects.map((o) => refString(o)), finalizers: finalizersOf(first) },
    hint:
      first.kind === 'Namespace'
        ? 'Wait until the namespace is gone, then deploy again. Without a running controller manager it never finishes; ask the cluster administrator.'
        : 'The controller manager removes it once no pod uses the volume; wait and deploy again. If it stays Terminating, the cluster runs no controller manager: ask the cluster administrator to remove the finalizer (the disk is kept: reclaim policy Retain).',
  });
}
