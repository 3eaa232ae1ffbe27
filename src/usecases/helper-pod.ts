// Running a helper pod (src/convert/helper-pod.ts): its PV/PVC pairs and the
// pod are created in the app's namespace, the pod is waited for (with the
// reasons a pod does not start, from its status and events), the caller's
// work runs with exec into it, and everything is deleted again afterwards,
// whatever happened (also after a cancel), waiting until the pod has really
// gone so the disk is free (detached) for what comes next. Leftovers of a
// crashed run (a pod past its deadline, pairs without their pod) are swept
// at the next start.
import { randomBytes } from 'node:crypto';
import { KompoxError } from '../domain/errors.js';
import { logEvent, sleep, statusEvent, warningEvent, type Op } from '../domain/events.js';
import { helperImage } from '../domain/images.js';
import type { AppContext, AppVolume, Disk } from '../domain/model.js';
import { appNamespace } from '../domain/names.js';
import type { ProviderDriver } from '../domain/ports/driver.js';
import { refString, toRef, type ExecOutcome, type ExecStreams, type KubeClient, type KubeObject, type ObjectRef } from '../domain/ports/kube.js';
import { HELPER_CONTAINER, HELPER_IDLE_CHECKS, HELPER_IDLE_CHECK_S, HELPER_LABEL, HELPER_POD_LABEL, helperPodObjects, type HelperPodOptions } from '../convert/helper-pod.js';
import { podProblem } from '../kube/rollout.js';
import { readClusterFacts } from './pv-sources.js';
import { ensureAppNamespace } from './volumes.js';

export interface HelperPodRequest {
  /** What the pod is for (its `kompox.dev/helper` label): `transfer`, `box`. */
  purpose: string;
  disks: { volume: AppVolume; disk: Disk; readOnly: boolean }[];
  capabilities?: readonly string[];
  user?: HelperPodOptions['user'];
  /** Only on this node. */
  node?: string;
  description?: string;
  /** How long the pod may take to start (image pull, attach): default 5 minutes. */
  startTimeoutMs?: number;
  deadlineSeconds?: number;
}

export interface RunningHelper {
  namespace: string;
  pod: string;
  container: string;
  /** Where each requested disk is mounted, in request order. */
  mountPaths: string[];
  /** The node the pod runs on. */
  node?: string;
  /** Runs a command in the helper (binary streams, exit status); the Op's signal ends it. */
  exec(command: string[], io: ExecStreams, op: Op): Promise<ExecOutcome>;
}

const POLL_MS = 250;
/** How long cleanup waits for each kind of object to go (bounded: cleanup must end). */
const GONE_TIMEOUT_MS = 120_000;
/** A pair older than this whose pod is gone is a leftover of a crash. */
const LEFTOVER_AGE_MS = 10 * 60_000;

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function randomId(): string {
  // DNS-safe, no vowels (like generateName)
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return [...randomBytes(8)].map((b) => alphabet[b % alphabet.length]).join('');
}

/**
 * Starts a helper pod mounting the requested disks, runs `fn` with it and
 * always removes it (pod, claims, volumes; never the disks) afterwards.
 */
export async function withHelperPod<T>(ctx: AppContext, driver: ProviderDriver, kube: KubeClient, req: HelperPodRequest, op: Op, fn: (h: RunningHelper) => Promise<T>): Promise<T> {
  await ensureAppNamespace(kube, ctx);
  await sweepHelperLeftovers(kube, ctx, op);
  const facts = await readClusterFacts(kube);
  const objs = helperPodObjects(ctx, {
    purpose: req.purpose,
    id: randomId(),
    image: helperImage(ctx.cluster.settings),
    disks: req.disks.map((d) => ({ ...d, source: driver.pvSource(ctx, d.volume, d.disk, facts) })),
    ...(req.capabilities ? { capabilities: req.capabilities } : {}),
    ...(req.user ? { user: req.user } : {}),
    ...(req.node ? { node: req.node } : {}),
    ...(req.description ? { description: req.description } : {}),
    ...(req.deadlineSeconds ? { deadlineSeconds: req.deadlineSeconds } : {}),
  });
  const ns = appNamespace(ctx);
  const podName = objs.pod.metadata.name;
  const created: KubeObject[] = [];
  // cleanup runs after a cancel too: it gets the events, never the (aborted) signal
  const quiet: Op = op.events ? { events: op.events } : {};
  try {
    logEvent(op, `starting helper pod ${ns}/${podName} (${req.description ?? req.purpose})`);
    for (const o of [...objs.pvs, ...objs.pvcs, objs.pod]) {
      await kube.apply(o);
      created.push(o);
    }
    const node = await waitForHelper(kube, ns, podName, req, op);
    const helper: RunningHelper = {
      namespace: ns,
      pod: podName,
      container: HELPER_CONTAINER,
      mountPaths: objs.mountPaths,
      ...(node ? { node } : {}),
      exec: (command, io, o) => kube.execStream(ns, podName, HELPER_CONTAINER, command, io, o.signal ? { signal: o.signal } : {}),
    };
    try {
      return await fn(helper);
    } catch (e) {
      // The pod's end ends every exec in it (its commands are killed: exit 137, or the stream is cut), and
      // the transfer's own error then says only that tar failed: the pod's status says what happened to it.
      if (op.signal?.aborted) throw e;
      throw (await helperDeath(kube, ns, podName, req.description ?? req.purpose, e)) ?? e;
    }
  } finally {
    await removeHelper(kube, created, quiet);
  }
}

/** How long a failed exec waits for the pod's status to show why it ended (the kubelet reports it shortly after). */
const DEATH_SETTLE_MS = 5_000;

/**
 * What ended the helper pod under a failed exec, as an error that says so,
 * or undefined when the pod still runs (the command failed on its own).
 * A command killed with the pod (exit 137) or cut off may come before the
 * pod's status shows it: those wait a few seconds for a sign.
 */
async function helperDeath(kube: KubeClient, ns: string, name: string, work: string, failure: unknown): Promise<KompoxError | undefined> {
  const details = (failure as { details?: { exitCode?: unknown } } | undefined)?.details;
  const killed = details?.exitCode === 137 || (failure instanceof KompoxError && failure.code === 'kube.exec.lost');
  const deadline = Date.now() + (killed ? DEATH_SETTLE_MS : 0);
  const ref: ObjectRef = { apiVersion: 'v1', kind: 'Pod', name, namespace: ns };
  for (;;) {
    try {
      const pod = await kube.get(ref);
      const events = pod ? [] : (await kube.list('v1', 'Event', { namespace: ns }).catch(() => [] as KubeObject[])).filter((e) => (e.involvedObject as Any | undefined)?.name === name);
      const fate = helperPodFate(pod, events, `${ns}/${name}`, work, failure);
      if (fate) return fate;
    } catch {
      // the API server cannot tell: the transfer's own error stands
      return undefined;
    }
    if (Date.now() >= deadline) return undefined;
    await sleep(POLL_MS);
  }
}

/**
 * Why a helper pod is gone or ending, from its status (Kubernetes' shapes:
 * a container `terminated` with reason OOMKilled; phase Failed with reason
 * Evicted or DeadlineExceeded; a DisruptionTarget condition; a
 * deletionTimestamp) or, once the object is gone, its events. Undefined
 * while it runs as it should. `work` is what it was doing (`export of disk
 * x`); `failure`, the work's own error, is kept as the cause.
 */
export function helperPodFate(pod: KubeObject | undefined, events: KubeObject[], ref: string, work: string, failure?: unknown): KompoxError | undefined {
  const it = `the helper pod ${ref}`;
  const during = `during the ${work}`;
  const opts = (code: string, hint: string, extra: Record<string, unknown> = {}) => ({ code, hint, details: { pod: ref, ...extra }, ...(failure !== undefined ? { cause: failure } : {}) });
  const retry = `Run the ${work.split(' ')[0]} again.`;
  const deadlineHint = 'A helper pod may run a day at most: move less data at a time, or use the host path where the driver has one.';
  if (!pod) {
    const ev = events.find((e) => e.reason === 'Evicted' || e.reason === 'DeadlineExceeded');
    if (ev?.reason === 'Evicted') return new KompoxError('unavailable', `${it} was evicted ${during}: ${String(ev.message ?? '').trim()}`, opts('helper.evicted', `Its node ran short of resources or was drained. ${retry}`));
    if (ev) return new KompoxError('timeout', `${it} reached its deadline (activeDeadlineSeconds) ${during}`, opts('helper.deadline', deadlineHint));
    return new KompoxError('unavailable', `${it} was deleted ${during} (by someone, a node drain or a controller)`, opts('helper.deleted', `Leave Kompox's helper pods alone while they run, then ${retry.toLowerCase()}`));
  }
  const status = (pod.status ?? {}) as Any;
  const cs = ((status.containerStatuses ?? []) as Any[]).find((c) => c.name === HELPER_CONTAINER);
  const term = cs?.state?.terminated ?? cs?.lastState?.terminated;
  if (term?.reason === 'OOMKilled') {
    const limit = ((pod.spec as Any | undefined)?.containers as Any[] | undefined)?.find((c) => c.name === HELPER_CONTAINER)?.resources?.limits?.memory;
    return new KompoxError('unavailable', `${it} was killed for using more memory than its limit${limit ? ` (${String(limit)})` : ''} ${during} (OOMKilled)`, opts('helper.oom', `${retry} The helper's commands stream their data and should stay within the limit (no setting raises it): report it if it happens again.`, limit ? { memoryLimit: limit } : {}));
  }
  if (status.reason === 'Evicted') return new KompoxError('unavailable', `${it} was evicted ${during}${status.message ? `: ${String(status.message).trim()}` : ''}`, opts('helper.evicted', `Its node ran short of resources. ${retry}`));
  if (status.reason === 'DeadlineExceeded') {
    const s = (pod.spec as Any | undefined)?.activeDeadlineSeconds;
    return new KompoxError('timeout', `${it} reached its deadline${s ? ` of ${String(s)} s` : ''} (activeDeadlineSeconds) ${during}`, opts('helper.deadline', deadlineHint));
  }
  const disruption = ((status.conditions ?? []) as Any[]).find((c) => c.type === 'DisruptionTarget' && c.status === 'True');
  if (disruption?.reason === 'EvictionByEvictionAPI') return new KompoxError('unavailable', `${it} was evicted ${during} (its node drained?)${disruption.message ? `: ${String(disruption.message).trim()}` : ''}`, opts('helper.evicted', `Its node is being drained (the helper then starts on another). ${retry}`));
  if (pod.metadata.deletionTimestamp || disruption) {
    const why = disruption?.message ? `: ${String(disruption.message).trim()}` : ' (by someone, a node drain or a controller)';
    return new KompoxError('unavailable', `${it} was deleted ${during}${why}`, opts('helper.deleted', `Leave Kompox's helper pods alone while they run, then ${retry.toLowerCase()}`));
  }
  // its wait's own end (exit 0: the pod Succeeded): nothing had run in it for its idle time (convert/helper-pod.ts)
  if (status.phase === 'Succeeded' || term?.exitCode === 0) {
    return new KompoxError('unavailable', `${it} ended by itself ${during}: nothing had run in it for ${(HELPER_IDLE_CHECK_S * HELPER_IDLE_CHECKS) / 60} minutes (a helper ends so once the Kompox that started it is gone)`, opts('helper.idle', `${retry} If this Kompox was running all along, report it: its helper should never have been idle that long.`));
  }
  if (status.phase === 'Failed' || status.phase === 'Succeeded' || term) {
    return new KompoxError('unavailable', `${it} ended ${during} (${String(status.reason ?? term?.reason ?? status.phase)}${status.message ?? term?.message ? `: ${String(status.message ?? term?.message).trim()}` : ''})`, opts('helper.ended', `See the pod's events for the reason. ${retry}`));
  }
  return undefined;
}

/** Waits until the helper runs; a reason it never will is an error naming it. Returns its node. */
async function waitForHelper(kube: KubeClient, ns: string, name: string, req: HelperPodRequest, op: Op): Promise<string | undefined> {
  const deadline = Date.now() + (req.startTimeoutMs ?? 5 * 60_000);
  let last = '';
  for (;;) {
    const pod = await kube.get({ apiVersion: 'v1', kind: 'Pod', name, namespace: ns });
    if (!pod) throw new KompoxError('unavailable', `the helper pod ${ns}/${name} vanished before it started`, { code: 'helper.gone' });
    const status = (pod.status ?? {}) as Any;
    const cs = ((status.containerStatuses ?? []) as Any[]).find((c) => c.name === HELPER_CONTAINER);
    if (status.phase === 'Running' && cs?.state?.running) return (pod.spec as Any | undefined)?.nodeName as string | undefined;
    const events = (await kube.list('v1', 'Event', { namespace: ns }).catch(() => [] as KubeObject[])).filter(
      (e) => (e.involvedObject as Any | undefined)?.kind === 'Pod' && (e.involvedObject as Any | undefined)?.name === name,
    );
    const attach = events.find((e) => e.reason === 'FailedAttachVolume' && /Multi-Attach/i.test(String(e.message)));
    if (attach) {
      const disks = req.disks.map((d) => d.disk.name).join(', ');
      throw new KompoxError('conflict', `disk ${disks} is attached to another node (${String(attach.message).trim()}); a ReadWriteOnce disk can be mounted on one node at a time`, {
        code: 'helper.disk.attached',
        details: { disks: req.disks.map((d) => d.disk.name), pod: `${ns}/${name}` },
        hint: 'Stop what uses the disk (quiesce the app) and try again.',
      });
    }
    const problem = podProblem(pod, events);
    if (problem?.state === 'failed' || status.phase === 'Failed' || status.phase === 'Succeeded') {
      const msg = problem?.message ?? `pod ${name} ${String(status.phase)}`;
      throw new KompoxError('unavailable', `the helper pod could not start: ${msg}`, {
        code: 'helper.start',
        details: { pod: `${ns}/${name}` },
        hint: /Image|image/.test(msg)
          ? 'The helper image must be pullable from the cluster: set cluster.settings KOMPOX_HELPER_IMAGE (or KOMPOX_REGISTRY_MIRROR) to an image the nodes can pull.'
          : 'See the pod\'s events (kubectl describe pod) for the reason.',
      });
    }
    last = problem?.message ?? `pod ${name} ${String(status.phase ?? 'Pending')}`;
    statusEvent(op, `waiting for the helper pod: ${last}`);
    if (Date.now() > deadline) {
      throw new KompoxError('timeout', `the helper pod ${ns}/${name} did not start within ${Math.round((req.startTimeoutMs ?? 300_000) / 1000)} s: ${last}`, {
        code: 'helper.timeout',
        details: { pod: `${ns}/${name}` },
        hint: 'The cluster may lack capacity in the disk\'s zone, or cannot attach the disk; see the pod\'s events.',
      });
    }
    await sleep(POLL_MS, op);
  }
}

async function waitGone(kube: KubeClient, ref: ObjectRef): Promise<boolean> {
  const deadline = Date.now() + GONE_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!(await kube.get(ref).catch(() => undefined))) return true;
    await sleep(POLL_MS);
  }
  return false;
}

/** Deletes the pod, then its claims, then its volumes, each waited for; what does not go in time is reported (a later run sweeps it). */
async function removeHelper(kube: KubeClient, created: KubeObject[], op: Op): Promise<void> {
  const order = ['Pod', 'PersistentVolumeClaim', 'PersistentVolume'];
  for (const kind of order) {
    const refs = created.filter((o) => o.kind === kind).map((o) => toRef(o));
    for (const ref of refs) {
      try {
        await kube.delete(ref, kind === 'Pod' ? { gracePeriodSeconds: 5 } : {});
      } catch (e) {
        warningEvent(op, { level: 'warning', message: `could not delete ${refString(ref, ' ')}: ${(e as Error).message}; it is removed by a later transfer` });
      }
    }
    for (const ref of refs) {
      if (!(await waitGone(kube, ref))) warningEvent(op, { level: 'warning', message: `${refString(ref, ' ')} is still there after ${GONE_TIMEOUT_MS / 1000} s; it is removed by a later transfer` });
    }
  }
}

/**
 * Removes what crashed runs left in the app's namespace: helper pods that
 * have ended (their deadline passed) and PV/PVC pairs whose pod is gone,
 * once they are old enough not to belong to a run starting right now.
 * Best effort: errors are ignored (a later run tries again).
 */
export async function sweepHelperLeftovers(kube: KubeClient, ctx: AppContext, op: Op = {}): Promise<ObjectRef[]> {
  const ns = appNamespace(ctx);
  const removed: ObjectRef[] = [];
  try {
    const pods = await kube.list('v1', 'Pod', { namespace: ns, labelSelector: HELPER_LABEL });
    const alive = new Set(pods.filter((p) => !['Succeeded', 'Failed'].includes(String((p.status as Any | undefined)?.phase))).map((p) => p.metadata.name));
    const old = (o: KubeObject) => Date.now() - Date.parse(o.metadata.creationTimestamp ?? '') > LEFTOVER_AGE_MS;
    for (const p of pods.filter((x) => !alive.has(x.metadata.name))) {
      if (await kube.delete(toRef(p), { gracePeriodSeconds: 0 })) removed.push(toRef(p));
    }
    const orphan = (o: KubeObject) => {
      const owner = o.metadata.labels?.[HELPER_POD_LABEL];
      return owner !== undefined && !alive.has(owner) && old(o);
    };
    for (const c of (await kube.list('v1', 'PersistentVolumeClaim', { namespace: ns, labelSelector: HELPER_LABEL })).filter(orphan)) {
      if (await kube.delete(toRef(c))) removed.push(toRef(c));
    }
    const pvs = await kube.list('v1', 'PersistentVolume', { labelSelector: HELPER_LABEL });
    for (const v of pvs.filter((x) => (x.spec as Any | undefined)?.claimRef?.namespace === ns && orphan(x))) {
      if (await kube.delete(toRef(v))) removed.push(toRef(v));
    }
  } catch {
    // a courtesy: never the reason an operation fails
  }
  for (const r of removed) logEvent(op, `removed ${refString(r, ' ')}, left by an earlier helper pod`);
  return removed;
}
