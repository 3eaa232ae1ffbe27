// Snapshot use cases: list, create (crash-consistent, or quiesced by scaling
// the app to zero), restore (always into a NEW disk: disks.create from the
// snapshot), export, delete.
import { KompoxError } from '../domain/errors.js';
import { interruptedSaying, logEvent, phaseEvent, type Op } from '../domain/events.js';
import type { AppContext, AppVolume, Disk, Snapshot } from '../domain/model.js';
import { APP_SELECTOR_LABEL, appNamespace, nowRfc3339, timestampName } from '../domain/names.js';
import type { KubeClient } from '../domain/ports/kube.js';
import { requirePart, type ArchiveExportOptions, type ProviderDriver, type SnapshotCreateSpec } from '../domain/ports/driver.js';
import { attachDisk, checkDiskName, deletedMeanwhile, diskZone, exportThrough, findDisk, sourceDeleted, type AttachResult, type ExportResult, type VolumeOption } from './disk.js';
import { defaultDiskName, describeChoice, GENERATED_NAME_TAKEN, disksWithCurrent, selectVolume } from './volumes.js';
import { boxBlocksQuiesce, findBox } from './box.js';
import { appReplicas, DEFAULT_QUIESCE_RENEW_MS, DEFAULT_QUIESCE_STALE_MS, QUIESCE_BOX_UNDONE, renewQuiesce, startApp, stopApp, waitAppStopped, type QuiesceOwner } from './app-scale.js';

export async function listSnapshots(
  ctx: AppContext,
  driver: ProviderDriver,
  _kube: KubeClient | undefined,
  opts: VolumeOption = {},
  op: Op = {},
): Promise<{ volume: string; snapshots: Snapshot[] }> {
  const volume = selectVolume(ctx, opts.volume);
  return { volume: volume.name, snapshots: await driver.snapshots.list(ctx, volume, op) };
}

async function findSnapshot(ctx: AppContext, driver: ProviderDriver, volumeName: string | undefined, name: string, op: Op) {
  const volume = selectVolume(ctx, volumeName);
  const all = await driver.snapshots.list(ctx, volume, op);
  const snapshot = all.find((s) => s.name === name);
  if (!snapshot) {
    throw new KompoxError('notfound', `snapshot "${name}" not found for volume ${volume.name} of app ${ctx.app.name}`, {
      code: 'snapshot.notfound',
      details: { snapshot: name, volume: volume.name, snapshots: all.map((s) => s.name) },
      hint: all.length ? `Snapshots: ${all.map((s) => s.name).join(', ')}.` : 'The volume has no snapshots.',
    });
  }
  return { volume, snapshot };
}

export interface SnapshotCreateOptions extends VolumeOption {
  name?: string;
  /** Snapshot this disk instead of the current one. */
  disk?: string;
  /** Stop the app (scale to 0) for the snapshot, then start it again. */
  quiesce?: boolean;
  /** How long to wait for the app's pod to stop (default 120 s). */
  stopTimeoutMs?: number;
  /** How long to wait for the app to be running and ready again afterwards (default 5 minutes). */
  startTimeoutMs?: number;
  /** With quiesce: how often its record on the stopped Deployments is renewed (default 30 s; shorter in tests). */
  renewMs?: number;
  /** With quiesce: after how long without a renewal another quiesce's record counts as interrupted (default 3 renewal periods); it is then watched for 2 renewal periods before it is taken over. */
  staleMs?: number;
  /**
   * zstd level of the snapshot's archive, for drivers whose snapshots are
   * archives (capabilities.archiveSnapshots): 1 is the fastest (the shortest
   * stop of a quiesced app), 8 the smallest; default the archives' level.
   */
  level?: number;
}

/**
 * Snapshots a disk of the volume (the current one by default). Cancelling
 * (the Op's signal) while the app is stopped for a quiesced snapshot starts
 * it again at once and fails with `interrupted`.
 */
export async function createSnapshot(ctx: AppContext, driver: ProviderDriver, kube: KubeClient | undefined, opts: SnapshotCreateOptions = {}, op: Op = {}): Promise<Snapshot> {
  const spec = await snapshotSpec(driver, opts);
  const volume = selectVolume(ctx, opts.volume);
  const name = opts.name ?? defaultDiskName(volume.name);
  checkDiskName(name, 'snapshot');
  if ((await driver.snapshots.list(ctx, volume, op)).some((s) => s.name === name)) {
    throw new KompoxError('conflict', `snapshot "${name}" already exists for volume ${volume.name}`, {
      code: 'snapshot.exists',
      details: { snapshot: name, volume: volume.name, ...(opts.name === undefined ? { generated: true } : {}) },
      hint: opts.name === undefined ? GENERATED_NAME_TAKEN : 'Choose another name.',
    });
  }
  let disk: Disk;
  // the app's pod writes to the current disk; another disk (a spare, a restore, the previous one) sits still
  let appsDisk = true;
  if (opts.disk) {
    disk = (await findDisk(ctx, driver, kube, volume, opts.disk, op)).disk;
    appsDisk = disk.current === true;
  } else {
    const { choice } = await disksWithCurrent(ctx, driver, kube, volume, {}, op);
    const note = describeChoice(volume, choice);
    if (note) logEvent(op, note);
    if (!choice.disk) {
      throw new KompoxError('notfound', `volume ${volume.name} of app ${ctx.app.name} has no disk to snapshot`, { code: 'disk.notfound', hint: 'Deploy the app or create a disk first.' });
    }
    disk = choice.disk;
  }
  if (!opts.quiesce) {
    if (!driver.capabilities.atomicSnapshots && kube && (await appRunning(kube, ctx)) && appsDisk) {
      logEvent(op, `note: ${driver.name} snapshots copy the disk file by file while the app keeps writing; quiesce the app (stop it for the snapshot) for a consistent snapshot of a running app`);
    }
    return driver.snapshots.create(ctx, volume, disk, name, op, spec).catch(async (e: unknown) => {
      throw interruptedSaying(await sourceDeleted(e, ctx, driver, volume, disk, `snapshot ${name} was being taken of it`, 'no snapshot was taken', op), 'no snapshot was taken');
    });
  }
  if (!kube) throw new KompoxError('unavailable', 'quiescing the app needs the cluster (to stop and start the app)');
  return withAppStopped(kube, ctx, { ...opts, by: `snapshot ${name}`, done: `snapshot ${name} was taken` }, op, (inner) =>
    driver.snapshots.create(ctx, volume, disk, name, inner, spec).catch(async (e: unknown) => {
      throw await sourceDeleted(e, ctx, driver, volume, disk, `snapshot ${name} was being taken of it`, 'no snapshot was taken', inner);
    }),
  );
}

/** The driver's part of a snapshot's options, checked before anything runs (a level only where snapshots are archives, and one of tar.zst's). */
async function snapshotSpec(driver: ProviderDriver, opts: SnapshotCreateOptions): Promise<SnapshotCreateSpec> {
  if (opts.level === undefined) return {};
  if (!driver.capabilities.archiveSnapshots) {
    throw new KompoxError('usage', `level: ${driver.name} snapshots are the cloud's own copies of the disk, not archives Kompox compresses`, {
      code: 'snapshot.level.unsupported',
      details: { field: 'level', driver: driver.name },
      hint: 'Leave out the level: it applies to snapshots that are archives (K3s). An export sets the compression of the archive it writes.',
    });
  }
  (await import('../archive/archive.js')).checkExportOptions({ format: 'tar.zst', level: opts.level });
  return { level: opts.level };
}

async function appRunning(kube: KubeClient, ctx: AppContext): Promise<boolean> {
  const ns = appNamespace(ctx);
  const pods = await kube.list('v1', 'Pod', { namespace: ns, labelSelector: `${APP_SELECTOR_LABEL}=${ns}` });
  return pods.length > 0;
}

/** How long withAppStopped waits for the app to be ready again by default. */
export const DEFAULT_START_TIMEOUT_MS = 5 * 60_000;

/**
 * Scales the app's Deployments to 0, waits until its pods are gone, runs
 * `fn`, and always restores the replica counts (also when `fn` or the wait
 * fails), so a failed snapshot never leaves the app down. The counts to
 * restore are recorded on each Deployment in the patch that stops it (and
 * removed in the one that starts it), so a process that dies in between
 * leaves the app stopped but says so (app status), and the next quiesce
 * restores those counts, not the 0 it finds. Then it waits until
 * the app is running and ready again and says so (`log`); when it is not
 * within `startTimeoutMs`, a successful `fn` still fails, with what keeps the
 * app from starting (e.g. the scheduler's FailedScheduling message), and a
 * failed one says it before its own error. A cancel starts the app again at
 * once, without waiting for `fn`'s copy; it then waits for `fn` to end (told
 * through the same signal, it cleans up after itself: a helper pod removed, a
 * temp archive deleted, a node command killed) but not for the app to be
 * ready: the front end ends the process on an interrupt, and a cleanup cut
 * short leaves what it was removing (a helper pod keeps the disk attached
 * until its deadline). A second Ctrl-C leaves at once.
 */
export async function withAppStopped<T>(
  kube: KubeClient,
  ctx: AppContext,
  opts: {
    stopTimeoutMs?: number;
    startTimeoutMs?: number;
    pollMs?: number;
    /** What `fn` achieved, for the message when the app does not come back. */
    done?: string;
    /** What an interrupt leaves, for its message. */
    what?: string;
    /** What stops the app, recorded on its Deployments: `snapshot NAME`, `export of disk NAME`. */
    by: string;
    /** How often the record is renewed while the app is stopped (default 30 s). */
    renewMs?: number;
    /** After how long without a renewal another quiesce's record looks interrupted (default 3 renewal periods); it is then watched for 2 periods before it is taken over. */
    staleMs?: number;
  },
  op: Op,
  fn: (op: Op) => Promise<T>,
): Promise<T> {
  const ns = appNamespace(ctx);
  const renewMs = opts.renewMs ?? DEFAULT_QUIESCE_RENEW_MS;
  const staleMs = opts.staleMs ?? (opts.renewMs ? 3 * opts.renewMs : DEFAULT_QUIESCE_STALE_MS);
  // another quiesce still running (its record LIVE, or renewed while watched: 2 periods) refuses here, before anything is stopped
  const observeMs = 2 * renewMs;
  // a maintenance box of the app refuses it, before anything is stopped (boxBlocksQuiesce says why)
  const box = await findBox(ctx, kube);
  if (box) throw boxBlocksQuiesce(ctx, box, opts.by);
  const { counts: saved, takeover } = await appReplicas(kube, ctx, op, { staleMs, observeMs });
  const own = { by: opts.by, since: nowRfc3339() };
  const stopped = Object.keys(saved).filter((name) => saved[name]! > 0);
  /** Renews the record from the stop on (the wait for the pods may take minutes too) until the start. */
  let renewing: { stop(): Promise<void> } | undefined;
  const what = opts.what ?? 'no snapshot was taken; the app was started again';
  let out: { value: T } | { error: unknown };
  /** `fn`'s run, when a cancel may leave it running. */
  let work: Promise<T> | undefined;
  try {
    phaseEvent(op, 'quiesce', 'stopping the app');
    renewing = renewWhileStopped(kube, ctx, stopped, own, renewMs, op);
    await stopApp(kube, ctx, saved, op, { ...own, takeover, staleMs, observeMs });
    // A box begun since the look (it writes its record on the namespace before it stops anything): refused, and what
    // this one stopped is started again. A box whose record comes after this read stops after this quiesce's stop: its
    // stop, conditional on the records it looked at, finds this quiesce's records and refuses busy.
    const boxSince = await findBox(ctx, kube);
    if (boxSince) throw boxBlocksQuiesce(ctx, boxSince, opts.by, QUIESCE_BOX_UNDONE);
    await waitAppStopped(kube, ctx, opts.stopTimeoutMs ?? 120_000, op, {
      code: 'snapshot.quiesce.timeout',
      hint: 'No snapshot was taken and the app was started again; retry, or snapshot without quiescing (crash-consistent).',
      interrupted: what,
    });
    const signal = op.signal;
    if (!signal) {
      out = { value: await fn(op) };
    } else {
      // An interrupt does not wait for `fn`: the app is started again at once.
      let onAbort = () => {};
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => reject(new KompoxError('interrupted', `interrupted: ${what}`));
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      });
      work = fn(op);
      work.catch(() => undefined); // after an interrupt its failure is expected and unobserved
      try {
        out = { value: await Promise.race([work, aborted]) };
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
    }
  } catch (e) {
    out = { error: e };
  }
  const outcome = 'error' in out ? { failed: out.error } : { done: opts.done };
  /** After a cancel, `fn`'s cleanup (the app is started first: it is not kept down for it). */
  const cleanedUp = async () => {
    if (op.signal?.aborted) await work?.catch(() => undefined);
  };
  await renewing?.stop();
  // another quiesce's busy refusal stopped nothing: there is nothing of this one's to start
  const refused = 'error' in out && out.error instanceof KompoxError && (out.error.code === 'snapshot.quiesce.busy' || out.error.code === 'snapshot.quiesce.box');
  const left = await startApp(kube, ctx, saved, op, own).catch(async (e: unknown) => {
    await cleanedUp();
    throw notStartedAgain(e, saved, outcome);
  });
  for (const l of refused ? [] : left) {
    logEvent(
      op,
      'record' in l
        ? `left ${l.deployment} stopped: ${l.record.by} took its record over (this one's was stale) and gives it back when it ends; not waiting for it`
        : `left ${l.deployment} stopped: the maintenance box took its record over at ${l.box} (this one's was stale) and gives it back when it is removed; not waiting for it`,
    );
  }
  // interrupted: the process ends once `fn` has cleaned up; the app is starting
  if ('error' in out && (op.signal?.aborted || (out.error instanceof KompoxError && out.error.kind === 'interrupted'))) {
    await cleanedUp();
    throw out.error;
  }
  const started = stopped.filter((name) => !left.some((l) => l.deployment === name));
  if (started.length && !refused) {
    const timeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    const { waitForDeployments } = await import('../kube/rollout.js');
    const waitOp: Op = { ...op, events: (e) => op.events?.(e.type === 'status' ? { ...e, message: `waiting for the app: ${e.message}` } : e) };
    const w = await waitForDeployments(kube, ns, started, { timeoutMs, pollMs: opts.pollMs }, waitOp).catch((e: unknown) => {
      throw op.signal?.aborted ? new KompoxError('interrupted', `interrupted: ${'error' in out ? what.replace(/; the app was started again$/, '') : (opts.done ?? 'done')}; the app was started again (not waiting until it is ready)`, { cause: e }) : e;
    });
    if (w.state === 'ready') logEvent(op, `the app is running and ready again (${w.message})`);
    else if ('error' in out) logEvent(op, `the app did not come back: ${w.message}`);
    else {
      const how = w.state === 'timeout' ? `not running and ready within ${Math.round(timeoutMs / 1000)}s` : 'it cannot start';
      throw new KompoxError(w.state === 'timeout' ? 'timeout' : 'unavailable', `${opts.done ? `${opts.done}, but the app` : 'the app'} did not come back (${how}): ${w.message}`, {
        code: 'snapshot.quiesce.not-ready',
        details: { deployments: started, state: w.state },
        hint: "The app's status shows its volume binding and recent warnings; when a volume binding is Lost or misbound, deploying the app again repairs it.",
      });
    }
  }
  if ('error' in out) throw out.error;
  return out.value;
}

/**
 * Renews the quiesce's record every `renewMs` until stopped (or the Op's
 * cancel), so readers see it LIVE; `stop` waits for a renewal under way, so
 * none comes after the start (it would find the record gone anyway: each is
 * conditional on the record being this quiesce's).
 */
function renewWhileStopped(kube: KubeClient, ctx: AppContext, names: readonly string[], own: QuiesceOwner, renewMs: number, op: Op): { stop(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> = Promise.resolve();
  let done = false;
  const stop = () => {
    done = true;
    clearTimeout(timer);
  };
  const next = () => {
    if (done) return;
    timer = setTimeout(() => {
      current = renewQuiesce(kube, ctx, names, own, op).then(next);
    }, renewMs);
  };
  op.signal?.addEventListener('abort', stop, { once: true });
  next();
  return {
    async stop() {
      stop();
      op.signal?.removeEventListener('abort', stop);
      await current;
    },
  };
}

/**
 * The app could not be started again (the API server unreachable, the
 * credentials gone): it stays stopped, and its Deployments keep the record of
 * the counts to give back, which the next quiesce or a deploy uses.
 */
function notStartedAgain(e: unknown, saved: Record<string, number>, outcome: { done?: string; failed?: unknown }): KompoxError {
  const deployments = Object.keys(saved).filter((name) => saved[name]! > 0);
  const message = (x: unknown) => (x instanceof Error ? x.message : String(x));
  const head = outcome.done ? `${outcome.done}, but the app` : 'the app';
  // an interrupt's own message says the app was started again: not so here
  const failed = 'failed' in outcome ? ` (after the operation had failed: ${message(outcome.failed).replace(/; the app was started again.*$/, '')})` : '';
  return new KompoxError(e instanceof KompoxError ? e.kind : 'unavailable', `${head} could not be started again: ${message(e)}${failed}`, {
    code: 'snapshot.quiesce.start-failed',
    details: { deployments },
    hint: `It stays stopped; its Deployments (${deployments.join(', ')}) record the replica counts to give back. Deploying the app again starts it, and so does the next quiesced snapshot or export.`,
    cause: e,
  });
}

export interface SnapshotRestoreOptions extends VolumeOption {
  name: string;
  /** Name of the new disk; default `{snapshot}-restored-{yyyymmddhhmmss}`. */
  diskName?: string;
  /** Zone of the new disk (drivers with zones): a copy in another zone; default the app's zone. */
  zone?: string;
}

/** `{snapshot}-restored-{timestamp}`, shortened to fit a DNS label. */
export function restoredDiskName(snapshot: string, d: Date = new Date()): string {
  const tail = timestampName('restored', d);
  const head = snapshot.slice(0, 63 - tail.length - 1).replace(/-+$/, '');
  return `${head}-${tail}`;
}

/** Restores a snapshot into a new disk (never over an existing one). Attaching it is a separate step. */
export async function restoreSnapshot(ctx: AppContext, driver: ProviderDriver, _kube: KubeClient | undefined, opts: SnapshotRestoreOptions, op: Op = {}): Promise<Disk> {
  const zone = diskZone(ctx, driver, opts.zone, 'snapshot restore into a zone', op);
  const { volume, snapshot } = await findSnapshot(ctx, driver, opts.volume, opts.name, op);
  const diskName = opts.diskName ?? restoredDiskName(snapshot.name);
  checkDiskName(diskName);
  if ((await driver.disks.list(ctx, volume, {}, op)).some((d) => d.name === diskName)) {
    throw new KompoxError('conflict', `disk "${diskName}" already exists for volume ${volume.name}; a restore always makes a new disk`, {
      code: 'disk.exists',
      details: { disk: diskName, volume: volume.name, restore: true, ...(opts.diskName === undefined ? { generated: true } : {}) },
      hint: opts.diskName === undefined ? GENERATED_NAME_TAKEN : 'Choose another name for the new disk (or leave it out for a timestamped one).',
    });
  }
  const disk = await driver.disks.create(ctx, volume, { name: diskName, sizeGiB: snapshot.sizeGiB, ...(zone !== undefined ? { zone } : {}), source: { kind: 'snapshot', id: snapshot.id } }, op).catch(async (e: unknown) => {
    const said = await snapshotDeleted(e, ctx, driver, volume, snapshot, 'it was being restored', 'no disk was created', op);
    throw storedSnapshotDamaged(interruptedSaying(said, `no disk was created (snapshot ${snapshot.name} is unchanged)`), snapshot, 'no disk was created');
  });
  if (zone !== undefined) logEvent(op, `restored snapshot ${snapshot.name} into disk ${disk.name} in zone ${zone}`);
  return disk;
}

/**
 * A stored snapshot whose archive fails its checks (damaged on the disk that
 * holds it) is said as that: which snapshot, what failed, what was not made,
 * and what to do instead. The archive's own advice ("export it again from
 * the source, or check the copy") fits an archive file, not a stored snapshot.
 */
export function storedSnapshotDamaged(e: unknown, snapshot: Snapshot, done: string): unknown {
  if (!(e instanceof KompoxError) || e.kind !== 'integrity') return e;
  return new KompoxError('integrity', `snapshot ${snapshot.name} (${snapshot.id}) is damaged: ${e.message}; ${done}`, {
    code: 'snapshot.damaged',
    details: { ...e.details, snapshot: snapshot.name, id: snapshot.id },
    hint: 'The stored snapshot cannot be used: restore another one (snapshot list), or import an exported copy of it (disk import FILE). Check the disk that holds the snapshots.',
    cause: e,
  });
}

/**
 * A command reading `snapshot` (export, restore) failed: when another command
 * deleted the snapshot meanwhile (before its archive was opened: one already
 * open is read to its end), said as that, not as an unexpected error. Damage
 * (integrity), a cancel and every other failure are returned as they are.
 */
async function snapshotDeleted(e: unknown, ctx: AppContext, driver: ProviderDriver, volume: AppVolume, snapshot: Snapshot, doing: string, nothing: string, op: Op): Promise<unknown> {
  return deletedMeanwhile(e, ['interrupted', 'usage', 'integrity'], { noun: 'snapshot', name: snapshot.name, id: snapshot.id, volume: volume.name }, () => driver.snapshots.list(ctx, volume, op), doing, nothing);
}

/** Restore, then attach the new disk (record it as current). */
export async function restoreAndAttach(ctx: AppContext, driver: ProviderDriver, kube: KubeClient | undefined, opts: SnapshotRestoreOptions, op: Op = {}): Promise<AttachResult> {
  const disk = await restoreSnapshot(ctx, driver, kube, opts, op);
  return attachDisk(ctx, driver, kube, { volume: opts.volume, name: disk.name }, op);
}

/**
 * Streams the snapshot as a portable archive into `out`: on the host path
 * as the driver stores it; through the cluster from a temporary disk
 * restored from it (transfer.ts), so the app's disk is never touched.
 */
export async function exportSnapshot(
  ctx: AppContext,
  driver: ProviderDriver,
  kube: KubeClient | undefined,
  opts: VolumeOption & ArchiveExportOptions & { name: string; out: NodeJS.WritableStream; /** `host`, `cluster` or `auto` (transfer.ts) */ via?: string },
  op: Op = {},
): Promise<ExportResult & { snapshot: Snapshot }> {
  const { transferVia, exportSnapshotThroughCluster } = await import('./transfer.js');
  // a level re-compresses the stored archive (into the format asked for, else tar.zst): refused before anything runs
  if (opts.level !== undefined) (await import('../archive/archive.js')).checkExportOptions(opts);
  const via = transferVia(ctx, driver, 'snapshot export', opts.via);
  const onHost = via === 'host' ? requirePart(driver, 'hostTransfer', 'snapshot export') : undefined;
  if (!onHost && !kube) throw new KompoxError('unavailable', 'snapshot export through the cluster needs the cluster', { hint: "Check the cluster's credentials (cluster.auth)." });
  const { volume, snapshot } = await findSnapshot(ctx, driver, opts.volume, opts.name, op);
  // through the cluster the archive is built anew: its bytes differ from any stored one
  let transcoded = !onHost;
  const r = await exportThrough(opts.out, `snapshot ${snapshot.name}`, async (w) => {
    try {
      if (onHost) transcoded = (await onHost.exportSnapshot(ctx, volume, snapshot, w, op, { format: opts.format, level: opts.level }))?.transcoded ?? false;
      else await exportSnapshotThroughCluster(ctx, driver, kube!, volume, snapshot, w, { format: opts.format, level: opts.level }, op);
    } catch (e) {
      throw storedSnapshotDamaged(await snapshotDeleted(e, ctx, driver, volume, snapshot, 'it was being exported', 'nothing was exported', op), snapshot, 'nothing was exported');
    }
  });
  // A re-compressed export differs from the stored bytes by design; the
  // driver checked those against the recorded SHA-256 while reading them.
  if (snapshot.sha256 && !transcoded && snapshot.sha256 !== r.sha256) {
    const mismatch = new KompoxError('integrity', `its archive no longer matches its recorded SHA-256 (${snapshot.sha256}): the exported bytes hash to ${r.sha256}`, {
      details: { expected: snapshot.sha256, actual: r.sha256 },
    });
    throw storedSnapshotDamaged(mismatch, snapshot, 'what was exported is not the snapshot: do not use it (an archive file is not kept)');
  }
  return { snapshot, ...r };
}

export async function deleteSnapshot(ctx: AppContext, driver: ProviderDriver, _kube: KubeClient | undefined, opts: VolumeOption & { name: string }, op: Op = {}): Promise<Snapshot> {
  const found = await findSnapshot(ctx, driver, opts.volume, opts.name, op).catch(async (e: unknown) => {
    // not listed because its data is gone (its archive moved away): deleting it frees the name
    const volume = selectVolume(ctx, opts.volume);
    const left = e instanceof KompoxError && e.code === 'snapshot.notfound' ? await driver.snapshots.remnant?.(ctx, volume, opts.name, op) : undefined;
    if (!left) throw e;
    logEvent(op, `note: snapshot ${left.name} had lost its data (${left.id} is missing); only its record is deleted`);
    return { volume, snapshot: left };
  });
  await driver.snapshots.delete(ctx, found.volume, found.snapshot, op);
  return found.snapshot;
}
