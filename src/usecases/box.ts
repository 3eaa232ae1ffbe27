// The maintenance box: a pod in the app's namespace that mounts the current
// disk of every app volume read-write (box-pod.ts), for a shell on the data,
// commands, and rsync in and out through a port-forward.
//
// Unless it is live, the app is stopped first (scaled to 0, its pods gone)
// and started again when the box goes. What must be undone is recorded on the
// app's namespace before anything changes (annotation kompox.dev/box: the
// replica counts to restore), so a box left behind by a crash is found (app
// status, box deploy), and box destroy always finishes the job. A failed or
// cancelled deploy undoes itself. A session (a command that needs a box when
// none is deployed) deploys one, uses it and removes it, also when cancelled.
import { KompoxError, type Diagnostic } from '../domain/errors.js';
import { logEvent, sleep, throwIfAborted, warningEvent, type Op } from '../domain/events.js';
import { SETTING_BOX_IMAGE, boxImage, parseImageRef } from '../domain/images.js';
import { appVolumes, type AppContext } from '../domain/model.js';
import { APP_SELECTOR_LABEL, BOX_LABEL, BOX_POD_NAME, appNamespace, nowRfc3339, pvcName } from '../domain/names.js';
import type { KubeClient, KubeObject, ObjectRef } from '../domain/ports/kube.js';
import { appReplicas, describeQuiesced, quiesceBoxAdvice, startApp, stopApp, waitAppStopped } from './app-scale.js';
import { ANN_BOX_MODE, ANN_BOX_SESSION, BOX_CONTAINER, BOX_DATA_DIR, BOX_RSYNC_FILE, BOX_RSYNC_PORT, boxPod } from './box-pod.js';
import { readDiskRecord } from './volumes.js';

/** Namespace annotation: the box's record (what to undo), written before anything changes. */
export const ANN_BOX = 'kompox.dev/box';

interface BoxRecord {
  mode: 'stopped' | 'live';
  /** Replica counts the app had, restored when the box goes (empty for a live box). */
  replicas: Record<string, number>;
  since: string;
  session: boolean;
}

export interface BoxState {
  /** stopped: the app was scaled to 0 for the box; live: the app kept running. */
  mode: 'stopped' | 'live';
  /** Made by a session command (shell, rsync, exec without a deployed box): one still here was left by an interrupted session. */
  session: boolean;
  since?: string;
  /** What box destroy gives the app back. */
  replicas: Record<string, number>;
  pod?: { name: string; phase: string; ready: boolean; node?: string; image?: string };
  /** Mounts: app volume → path in the box. */
  mounts: Record<string, string>;
  /** The record or the pod is missing (a crash mid-way): box destroy finishes the job. */
  incomplete: boolean;
}

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const nsRef = (ctx: AppContext): ObjectRef => ({ apiVersion: 'v1', kind: 'Namespace', name: appNamespace(ctx) });
const podRef = (ctx: AppContext): ObjectRef => ({ apiVersion: 'v1', kind: 'Pod', name: BOX_POD_NAME, namespace: appNamespace(ctx) });

function parseRecord(text: string | undefined): BoxRecord | undefined {
  if (!text) return undefined;
  try {
    const r = JSON.parse(text) as Partial<BoxRecord>;
    return { mode: r.mode === 'live' ? 'live' : 'stopped', replicas: r.replicas && typeof r.replicas === 'object' ? r.replicas : {}, since: String(r.since ?? ''), session: Boolean(r.session) };
  } catch {
    return { mode: 'stopped', replicas: {}, since: '', session: false };
  }
}

function mountsOf(pod: KubeObject | undefined): Record<string, string> {
  const c = ((pod?.spec as Any)?.containers as Any[] | undefined)?.find((x) => x.name === BOX_CONTAINER);
  return Object.fromEntries(((c?.volumeMounts ?? []) as Any[]).map((m) => [String(m.mountPath).slice(BOX_DATA_DIR.length + 1), String(m.mountPath)]));
}

/** The app's box, from its record and its pod; undefined when there is none. */
export async function findBox(ctx: AppContext, kube: KubeClient): Promise<BoxState | undefined> {
  const ns = await kube.get(nsRef(ctx));
  if (!ns) return undefined;
  const record = parseRecord(ns.metadata.annotations?.[ANN_BOX]);
  const pods = await kube.list('v1', 'Pod', { namespace: appNamespace(ctx), labelSelector: `${BOX_LABEL}=${appNamespace(ctx)}` });
  const pod = pods.find((p) => p.metadata.name === BOX_POD_NAME) ?? pods[0];
  if (!record && !pod) return undefined;
  const ann = pod?.metadata.annotations ?? {};
  const st = (pod?.status as Any) ?? {};
  return {
    mode: record?.mode ?? (ann[ANN_BOX_MODE] === 'live' ? 'live' : 'stopped'),
    session: record?.session ?? ann[ANN_BOX_SESSION] === 'true',
    ...(record?.since ? { since: record.since } : {}),
    replicas: record?.replicas ?? {},
    ...(pod
      ? {
          pod: {
            name: pod.metadata.name,
            phase: pod.metadata.deletionTimestamp ? 'Terminating' : String(st.phase ?? 'Pending'),
            ready: ((st.conditions ?? []) as Any[]).some((c) => c.type === 'Ready' && c.status === 'True'),
            ...((pod.spec as Any)?.nodeName ? { node: String((pod.spec as Any).nodeName) } : {}),
            image: String(((pod.spec as Any)?.containers as Any[] | undefined)?.[0]?.image ?? ''),
          },
        }
      : {}),
    mounts: mountsOf(pod),
    incomplete: !record || !pod,
  };
}

/** Deploying the app while a box holds its disks (the app stopped) would start the app next to the box: refused. */
export function boxBlocksDeploy(ctx: AppContext, box: BoxState | undefined): void {
  if (!box || box.mode === 'live') return;
  throw new KompoxError('conflict', `a maintenance box holds the disks of app ${ctx.app.name} (the app is stopped for it${box.since ? ` since ${box.since}` : ''}); nothing was changed`, {
    code: 'box.active',
    details: { app: ctx.app.name, session: box.session },
    hint: 'Remove the box first: that starts the app again.',
  });
}

/**
 * A quiesce (snapshot create --quiesce, disk export --quiesce; `by` is what it
 * records: `snapshot NAME`, `export of disk NAME`) while a box is deployed is
 * refused. A stopped box stops the app and starts it when it is removed: a
 * removal during the quiesce would start the app under its copy, and the
 * quiesce's own start at its end would start what the box stopped (under the
 * box). A live box writes to the disks beside the app: the copy would not be
 * quiesced. `done` says what the refusal leaves.
 */
export function boxBlocksQuiesce(ctx: AppContext, box: BoxState, by: string, done = 'nothing was changed'): KompoxError {
  const { operation, hint } = quiesceBoxAdvice(by);
  const name = box.pod?.name ?? BOX_POD_NAME;
  const state =
    box.mode === 'live' ? 'live: it writes to the disks beside the app' : `it stopped the app${box.since ? ` at ${box.since}` : ''} and starts it again when it is removed`;
  return new KompoxError('conflict', `the maintenance box ${name} of app ${ctx.app.name} is deployed (${state}); refusing to quiesce the app for the ${by}: ${done}`, {
    code: 'snapshot.quiesce.box',
    details: { app: ctx.app.name, box: name, mode: box.mode, session: box.session, by, operation },
    hint,
  });
}

/** The app volumes' current claims: the box mounts what the app mounts. */
async function currentClaims(ctx: AppContext, kube: KubeClient): Promise<Record<string, string>> {
  const claims: Record<string, string> = {};
  for (const volume of appVolumes(ctx)) {
    const { currentId } = await readDiskRecord(kube, ctx, volume);
    const claim = currentId ? pvcName(volume.name, currentId) : undefined;
    const pvc = claim ? await kube.get({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: claim, namespace: appNamespace(ctx) }) : undefined;
    if (!claim || !pvc || pvc.metadata.deletionTimestamp) {
      throw new KompoxError('notfound', `volume ${volume.name} of app ${ctx.app.name} has no ${currentId ? 'volume binding for its current disk' : 'current disk'} in the cluster; nothing was changed`, {
        code: 'box.disk.none',
        details: { volume: volume.name },
        hint: 'Deploy the app first: the box mounts the disks the app mounts.',
      });
    }
    claims[volume.name] = claim;
  }
  return claims;
}

async function writeRecord(kube: KubeClient, ctx: AppContext, record: BoxRecord | null): Promise<void> {
  await kube.mergePatch(nsRef(ctx), { metadata: { annotations: { [ANN_BOX]: record ? JSON.stringify(record) : null } } });
}

async function appPods(kube: KubeClient, ctx: AppContext): Promise<KubeObject[]> {
  const ns = appNamespace(ctx);
  return (await kube.list('v1', 'Pod', { namespace: ns, labelSelector: `${APP_SELECTOR_LABEL}=${ns}` })).filter((p) => !p.metadata.deletionTimestamp);
}

export interface BoxDeployOptions {
  /** The box's image; default KOMPOX_BOX_IMAGE or the pinned default box image. */
  image?: string;
  /** Keep the app running (no stop): the box shares its disks. */
  live?: boolean;
  /** Deployed by a session command (removed at its end). */
  session?: boolean;
  /** How long to wait for the app's pod to stop (default 2 min). */
  stopTimeoutMs?: number;
  /** How long to wait for the box to run (default 5 min: image pull, rsync install). */
  startTimeoutMs?: number;
  /**
   * How often a quiesce renews its record (default 30 s; shorter in tests):
   * a record not renewed for 3 periods looks interrupted, and is watched for
   * 2 before the box takes it over.
   */
  quiesceRenewMs?: number;
}

export interface BoxDeployResult {
  box: BoxState;
  /** False when a box was there already (reused as it is). */
  created: boolean;
  warnings: Diagnostic[];
}

/** Waits until the box pod runs and is ready; fails at once on a state that waiting does not fix. */
async function waitBoxReady(kube: KubeClient, ctx: AppContext, timeoutMs: number, op: Op, undone = true): Promise<KubeObject> {
  const after = undone ? '; the app was started again' : '; destroying the box removes it and starts the app again';
  const { podProblem } = await import('../kube/rollout.js');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    throwIfAborted(op);
    const pod = await kube.get(podRef(ctx));
    const st = (pod?.status as Any) ?? {};
    if (pod && st.phase === 'Running' && ((st.conditions ?? []) as Any[]).some((c) => c.type === 'Ready' && c.status === 'True')) return pod;
    const events = pod ? await kube.list('v1', 'Event', { namespace: appNamespace(ctx) }).catch(() => [] as KubeObject[]) : [];
    const problem = pod ? podProblem(pod, events) : undefined;
    if (problem?.state === 'failed') throw new KompoxError('unavailable', `the box cannot start: ${problem.message}`, { code: 'box.start.failed', hint: `Check the box image (setting ${SETTING_BOX_IMAGE})${after}.` });
    if (Date.now() > deadline) {
      throw new KompoxError('timeout', `the box did not start in time${problem ? `: ${problem.message}` : ''}`, { code: 'box.start.timeout', hint: `Retry, or look at the namespace events${after}.` });
    }
    await sleep(250, op);
  }
}

/** The staleness threshold and watch of a quiesce's record for a renewal period given (the defaults when not). */
const quiesceTimings = (renewMs: number | undefined) => (renewMs ? { staleMs: 3 * renewMs, observeMs: 2 * renewMs } : {});

/**
 * Deploys the box: records what to undo, stops the app (unless live), runs
 * the box pod and waits until it is ready. A box already there is reused as
 * it is (and reported). A failure or a cancel undoes everything.
 */
export async function deployBox(ctx: AppContext, kube: KubeClient, opts: BoxDeployOptions = {}, op: Op = {}): Promise<BoxDeployResult> {
  const existing = await findBox(ctx, kube);
  if (existing && existing.pod && !existing.incomplete) {
    if (opts.image && existing.pod.image !== opts.image) {
      throw new KompoxError('conflict', `a box with image ${existing.pod.image} is deployed already; nothing was changed`, {
        code: 'box.exists',
        details: { image: existing.pod.image },
        hint: 'Remove it first to use another image.',
      });
    }
    logEvent(op, `using the box deployed${existing.since ? ` at ${existing.since}` : ''}${existing.session ? ' (left by an interrupted session)' : ''}`);
    return { box: existing, created: false, warnings: [] };
  }
  const claims = await currentClaims(ctx, kube);
  const settings = { ...ctx.provider.settings, ...ctx.cluster.settings, ...ctx.app.settings };
  const image = opts.image ?? boxImage(settings);
  if (!parseImageRef(image)) throw new KompoxError('usage', `"${image}" is not an image reference; nothing was changed`, { code: 'box.image', hint: 'Write registry/repository:tag, e.g. docker.io/library/alpine:3.21.' });
  const { readStoredSecrets } = await import('./app-secrets.js');
  const pullSecret = (await readStoredSecrets(ctx, kube)).pull?.secret;
  const live = existing ? existing.mode === 'live' : Boolean(opts.live);
  const warnings: Diagnostic[] = [];
  const running = live ? (await appPods(kube, ctx)).length > 0 : false;
  if (live) {
    const w: Diagnostic = {
      level: 'warning',
      message: 'live box: the app keeps running and writing while the box mounts its disks; files the app changes meanwhile may be copied half-written',
      hint: `A ReadWriteOnce disk is attached to one node at a time, so the box runs on the app's node${running ? '' : ' (the app has no pod now: the box goes where the disk is)'}; stop the app for consistent copies.`,
    };
    warnings.push(w);
    warningEvent(op, w);
  }
  // the quiesce records the stop may take over: those confirmed dead (a live one refuses here, before anything is written)
  const timings = quiesceTimings(opts.quiesceRenewMs);
  const look = live ? undefined : await appReplicas(kube, ctx, op, timings);
  // first the record of what to undo, so a crash from here on leaves a box that is found and removed
  const record: BoxRecord = existing
    ? { mode: existing.mode, replicas: existing.replicas, since: existing.since ?? nowRfc3339(), session: existing.session }
    : { mode: live ? 'live' : 'stopped', replicas: look?.counts ?? {}, since: nowRfc3339(), session: Boolean(opts.session) };
  await writeRecord(kube, ctx, record);
  try {
    if (!live) {
      // the box's mark replaces a dead quiesce record it takes over; one that appeared or changed since the look refuses busy
      await stopApp(kube, ctx, record.replicas, op, { box: { since: record.since }, takeover: look?.takeover, ...timings });
      await waitAppStopped(kube, ctx, opts.stopTimeoutMs ?? 120_000, op, { code: 'box.stop.timeout', hint: 'No box was started and the app was started again; retry with a longer stop timeout.' });
    }
    await kube.apply(boxPod(ctx, { image, claims, live: live && running, session: record.session, ...(pullSecret ? { pullSecret } : {}) }));
    const pod = await waitBoxReady(kube, ctx, opts.startTimeoutMs ?? 300_000, op);
    logEvent(op, `box ${BOX_POD_NAME} runs${(pod.spec as Any)?.nodeName ? ` on ${(pod.spec as Any).nodeName}` : ''} with ${Object.keys(claims).sort().map((v) => `${BOX_DATA_DIR}/${v}`).join(', ')}`);
  } catch (e) {
    // undo: the box goes, the app comes back; then the original failure (or `interrupted`)
    await removeBox(ctx, kube, { stopTimeoutMs: opts.stopTimeoutMs }, {}, op).catch((u: unknown) => logEvent(op, `could not undo the box: ${(u as Error).message}`));
    if (op.signal?.aborted) throw new KompoxError('interrupted', `interrupted: no box was left${live ? '' : '; the app was started again'}`, { code: 'interrupted', cause: e });
    throw e;
  }
  return { box: (await findBox(ctx, kube))!, created: true, warnings };
}

export interface BoxDestroyResult {
  /** False when there was no box. */
  existed: boolean;
  /** The replica counts given back to the app. */
  restored: Record<string, number>;
  /** Deployments left stopped: a quiesce's record is on them (it stopped them since the box did), and it gives them back. */
  left?: { deployment: string; by: string; since: string }[];
}

/** Removes the box pod (waiting until it is gone), starts the app again with its recorded counts, then drops the record. */
async function removeBox(ctx: AppContext, kube: KubeClient, opts: { stopTimeoutMs?: number }, found: { box?: BoxState }, op: Op): Promise<BoxDestroyResult> {
  const box = found.box ?? (await findBox(ctx, kube));
  if (!box) return { existed: false, restored: {} };
  if (await kube.delete(podRef(ctx))) logEvent(op, `deleted box pod ${BOX_POD_NAME}`);
  // the app's pod must not start while the box still has the disks mounted: wait (without the caller's signal: this is the undo)
  const deadline = Date.now() + (opts.stopTimeoutMs ?? 120_000);
  while ((await kube.get(podRef(ctx))) && Date.now() < deadline) await sleep(250);
  const counts = box.mode === 'live' ? {} : box.replicas;
  // a Deployment a quiesce stopped since (its record there) is left to it: starting it would start the app under its copy
  const left = await startApp(kube, ctx, counts, op, { box: true });
  // (a box's start leaves only Deployments with a quiesce's record)
  const quiesced = left.flatMap((l) => ('record' in l ? [l] : []));
  for (const { deployment, record } of quiesced) {
    logEvent(op, `left ${deployment} stopped: ${describeQuiesced(deployment, record)} after the box did; that quiesce gives it back when it ends (if it was interrupted, app deploy or the next --quiesce does)`);
  }
  await writeRecord(kube, ctx, null);
  const restored = Object.fromEntries(Object.entries(counts).filter(([name]) => !left.some((l) => l.deployment === name)));
  return { existed: true, restored, ...(quiesced.length ? { left: quiesced.map(({ deployment, record }) => ({ deployment, by: record.by, since: record.since })) } : {}) };
}

/** box destroy: removes the box and gives the app back its replica counts. Safe to repeat; finishes what a crash left. */
export async function destroyBox(ctx: AppContext, kube: KubeClient, opts: { stopTimeoutMs?: number } = {}, op: Op = {}): Promise<BoxDestroyResult> {
  return removeBox(ctx, kube, opts, {}, op);
}

/**
 * Runs `fn` with a box: the deployed one, or one deployed for the session and
 * removed afterwards, also when `fn` fails or the operation is cancelled (a
 * cancel does not wait for `fn`: the box goes at once, which ends what runs in it).
 */
export async function withBox<T>(ctx: AppContext, kube: KubeClient, opts: BoxDeployOptions, op: Op, fn: (box: BoxState) => Promise<T>): Promise<T> {
  const found = await findBox(ctx, kube);
  if (found?.pod && !found.incomplete && found.pod.phase !== 'Terminating') {
    // a box deployed by someone else (box deploy, or another session): used, never removed by this one
    if (!found.pod.ready) await waitBoxReady(kube, ctx, opts.startTimeoutMs ?? 300_000, op, false);
    return fn(found);
  }
  const { box } = await deployBox(ctx, kube, { ...opts, session: true }, op);
  try {
    const signal = op.signal;
    if (!signal) return await fn(box);
    let onAbort = () => {};
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new KompoxError('interrupted', 'interrupted: the box was removed and the app started again', { code: 'interrupted' }));
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    const work = fn(box);
    work.catch(() => undefined); // after a cancel its failure is expected
    try {
      return await Promise.race([work, aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  } finally {
    await removeBox(ctx, kube, opts, {}, op);
  }
}

/** A command in the box (the remote exit code is returned). */
export async function boxExec(
  ctx: AppContext,
  kube: KubeClient,
  io: { command: string[]; stdin?: NodeJS.ReadableStream; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream; tty?: boolean },
): Promise<number> {
  if (!io.command.length) throw new KompoxError('usage', 'no command given', { code: 'box.exec.command', hint: 'Give the command to run in the box.' });
  return kube.exec(appNamespace(ctx), BOX_POD_NAME, BOX_CONTAINER, io.command, { stdin: io.stdin, stdout: io.stdout, stderr: io.stderr, tty: io.tty });
}

/** The shell of `box shell`: bash when the image has it, else sh, in /data. */
export const BOX_SHELL = ['/bin/sh', '-c', `cd ${BOX_DATA_DIR} && if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi`];

export interface BoxRsync {
  /** Local port forwarded to the box's rsync daemon. */
  port: number;
  /** rsync://127.0.0.1:PORT/ — modules are the app volumes. */
  url: string;
  close(): Promise<void>;
}

/** Forwards a local port (127.0.0.1) to the box's rsync daemon, once the box says it runs. */
export async function openBoxRsync(ctx: AppContext, kube: KubeClient, opts: { localPort?: number } = {}): Promise<BoxRsync> {
  const { Writable } = await import('node:stream');
  const sink = () => new Writable({ write: (_c, _e, cb) => cb() });
  const has = await kube.exec(appNamespace(ctx), BOX_POD_NAME, BOX_CONTAINER, ['test', '-e', BOX_RSYNC_FILE], { stdout: sink(), stderr: sink() });
  if (has !== 0) {
    throw new KompoxError('unavailable', 'the box has no rsync daemon: its image has no rsync, and it could not be installed when the box started', {
      code: 'box.rsync.unavailable',
      hint: `Use a box image with rsync (setting ${SETTING_BOX_IMAGE}, e.g. one built FROM alpine with rsync added), or give the cluster access to the Alpine package repository.`,
    });
  }
  const f = await kube.portForward(appNamespace(ctx), BOX_POD_NAME, opts.localPort ?? 0, BOX_RSYNC_PORT);
  return { port: f.port, url: `rsync://127.0.0.1:${f.port}/`, close: () => f.close() };
}

/** rsync's arguments with every `box:VOLUME/PATH` turned into the forwarded daemon's URL. */
export function rsyncArgs(args: readonly string[], url: string): string[] {
  return args.map((a) => (a.startsWith('box:') ? `${url}${a.slice(4).replace(/^\/+/, '')}` : a));
}
