// Snapshot use cases: list, create (crash-consistent, or quiesced by scaling
// the app to zero), restore (always into a NEW disk), export, delete.
import { KompoxError } from '../domain/errors.js';
import type { AppContext, Disk, Snapshot } from '../domain/model.js';
import { APP_SELECTOR_LABEL, appNamespace, timestampName } from '../domain/names.js';
import type { KubeClient, KubeObject } from '../kube/types.js';
import type { ProgressSink, ProviderDriver } from '../providers/driver.js';
import type { ArchiveFormat } from '../archive/archive.js';
import { attachDisk, checkDiskName, findDisk, outputClosed, type AttachResult, type ExportResult, type VolumeOption } from './disk.js';
import { defaultDiskName, describeChoice, disksWithCurrent, selectVolume } from './volumes.js';

export async function listSnapshots(ctx: AppContext, driver: ProviderDriver, _kube: KubeClient | undefined, opts: VolumeOption = {}): Promise<{ volume: string; snapshots: Snapshot[] }> {
  const volume = selectVolume(ctx, opts.volume);
  return { volume: volume.name, snapshots: await driver.snapshotList(ctx, volume) };
}

async function findSnapshot(ctx: AppContext, driver: ProviderDriver, volumeName: string | undefined, name: string) {
  const volume = selectVolume(ctx, volumeName);
  const all = await driver.snapshotList(ctx, volume);
  const snapshot = all.find((s) => s.name === name);
  if (!snapshot) {
    throw new KompoxError('notfound', `snapshot "${name}" not found for volume ${volume.name} of app ${ctx.app.name}`, {
      hint: all.length ? `Snapshots: ${all.map((s) => s.name).join(', ')}.` : 'The volume has no snapshots (`kompoxops snapshot list`).',
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
  /** With quiesce: aborting (e.g. Ctrl-C) stops waiting, starts the app again and fails. */
  signal?: AbortSignal;
  progress?: ProgressSink;
}

export async function createSnapshot(ctx: AppContext, driver: ProviderDriver, kube: KubeClient | undefined, opts: SnapshotCreateOptions = {}): Promise<Snapshot> {
  const volume = selectVolume(ctx, opts.volume);
  const name = opts.name ?? defaultDiskName(volume.name);
  checkDiskName(name, 'snapshot');
  if ((await driver.snapshotList(ctx, volume)).some((s) => s.name === name)) {
    throw new KompoxError('conflict', `snapshot "${name}" already exists for volume ${volume.name}`, { hint: 'Choose another name with -N.' });
  }
  let disk: Disk;
  if (opts.disk) {
    disk = (await findDisk(ctx, driver, kube, volume, opts.disk)).disk;
  } else {
    const { choice } = await disksWithCurrent(ctx, driver, kube, volume);
    const note = describeChoice(volume, choice);
    if (note) opts.log?.(note);
    if (!choice.disk) {
      throw new KompoxError('notfound', `volume ${volume.name} of app ${ctx.app.name} has no disk to snapshot`, { hint: 'Deploy the app or create a disk first.' });
    }
    disk = choice.disk;
  }
  if (!opts.quiesce) {
    if (driver.atomicSnapshots === false && kube && (await appRunning(kube, ctx))) {
      opts.log?.(
        `note: ${driver.driver} snapshots copy the disk file by file while the app keeps writing; use --quiesce for a consistent snapshot of a running app`,
      );
    }
    return driver.snapshotCreate(ctx, volume, disk, name, opts.progress);
  }
  if (!kube) throw new KompoxError('unavailable', '--quiesce needs the cluster (to stop and start the app)');
  return withAppStopped(kube, ctx, opts, () => driver.snapshotCreate(ctx, volume, disk, name, opts.progress));
}

async function appRunning(kube: KubeClient, ctx: AppContext): Promise<boolean> {
  const ns = appNamespace(ctx);
  const pods = await kube.list('v1', 'Pod', { namespace: ns, labelSelector: `${APP_SELECTOR_LABEL}=${ns}` });
  return pods.length > 0;
}

/**
 * Scales the app's Deployments to 0, waits until its pods are gone, runs
 * `fn`, and always restores the replica counts (also when `fn` or the wait
 * fails), so a failed snapshot never leaves the app down.
 */
export async function withAppStopped<T>(
  kube: KubeClient,
  ctx: AppContext,
  opts: { log?: (l: string) => void; stopTimeoutMs?: number; signal?: AbortSignal },
  fn: () => Promise<T>,
): Promise<T> {
  const ns = appNamespace(ctx);
  const deps = await kube.list('apps/v1', 'Deployment', { namespace: ns, labelSelector: `app.kubernetes.io/instance=${ns}` });
  const saved = deps
    .map((d: KubeObject) => ({ name: d.metadata.name, replicas: ((d.spec as { replicas?: number } | undefined)?.replicas ?? 1) as number }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const ref = (name: string) => ({ apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: ns });
  try {
    for (const d of saved) {
      if (d.replicas > 0) {
        opts.log?.(`stopping ${d.name} (replicas ${d.replicas} → 0)`);
        await kube.mergePatch(ref(d.name), { spec: { replicas: 0 } });
      }
    }
    const deadline = Date.now() + (opts.stopTimeoutMs ?? 120_000);
    for (;;) {
      if (opts.signal?.aborted) throw interrupted();
      const pods = await kube.list('v1', 'Pod', { namespace: ns, labelSelector: `${APP_SELECTOR_LABEL}=${ns}` });
      if (pods.length === 0) break;
      if (Date.now() > deadline) {
        throw new KompoxError('timeout', `the app's pod did not stop in time (${pods.map((p) => p.metadata.name).join(', ')} still there)`, {
          hint: 'No snapshot was taken and the app was started again; retry, or snapshot without --quiesce (crash-consistent).',
        });
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    if (!opts.signal) return await fn();
    // An interrupt does not wait for the snapshot: the app is started again
    // at once; the caller ends the process, and the driver's half-written
    // temp snapshot is swept later (never listed).
    const signal = opts.signal;
    let onAbort = () => {};
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(interrupted());
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([fn(), aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  } finally {
    for (const d of saved) {
      if (d.replicas > 0) {
        await kube.mergePatch(ref(d.name), { spec: { replicas: d.replicas } });
        opts.log?.(`started ${d.name} again (replicas ${d.replicas})`);
      }
    }
  }
}

function interrupted(): KompoxError {
  return new KompoxError('interrupted', 'interrupted: no snapshot was taken; the app was started again', { exitCode: 130 });
}

export interface SnapshotRestoreOptions extends VolumeOption {
  name: string;
  /** Name of the new disk; default `{snapshot}-restored-{yyyymmddhhmmss}`. */
  diskName?: string;
  progress?: ProgressSink;
}

/** `{snapshot}-restored-{timestamp}`, shortened to fit a DNS label. */
export function restoredDiskName(snapshot: string, d: Date = new Date()): string {
  const tail = timestampName('restored', d);
  const head = snapshot.slice(0, 63 - tail.length - 1).replace(/-+$/, '');
  return `${head}-${tail}`;
}

/** Restores a snapshot into a new disk (never over an existing one). Attaching it is a separate step. */
export async function restoreSnapshot(ctx: AppContext, driver: ProviderDriver, _kube: KubeClient | undefined, opts: SnapshotRestoreOptions): Promise<Disk> {
  const { volume, snapshot } = await findSnapshot(ctx, driver, opts.volume, opts.name);
  const diskName = opts.diskName ?? restoredDiskName(snapshot.name);
  checkDiskName(diskName);
  if ((await driver.diskList(ctx, volume)).some((d) => d.name === diskName)) {
    throw new KompoxError('conflict', `disk "${diskName}" already exists for volume ${volume.name}; a restore always makes a new disk`, {
      hint: 'Choose another name with --disk-name (or leave it out for a timestamped name).',
    });
  }
  return driver.snapshotRestore(ctx, volume, snapshot, diskName, opts.progress);
}

/** Restore, then attach the new disk (record it as current). */
export async function restoreAndAttach(ctx: AppContext, driver: ProviderDriver, kube: KubeClient | undefined, opts: SnapshotRestoreOptions): Promise<AttachResult> {
  const disk = await restoreSnapshot(ctx, driver, kube, opts);
  return attachDisk(ctx, driver, kube, { volume: opts.volume, name: disk.name, log: opts.log });
}

export async function exportSnapshot(
  ctx: AppContext,
  driver: ProviderDriver,
  _kube: KubeClient | undefined,
  opts: VolumeOption & { name: string; out: NodeJS.WritableStream; progress?: ProgressSink; format?: ArchiveFormat },
): Promise<ExportResult & { snapshot: Snapshot }> {
  const { volume, snapshot } = await findSnapshot(ctx, driver, opts.volume, opts.name);
  const { ChecksumWriter } = await import('../archive/archive.js');
  const w = new ChecksumWriter(opts.out);
  let transcoded = false;
  try {
    transcoded = (await driver.snapshotExport(ctx, volume, snapshot, w, opts.progress, { format: opts.format }))?.transcoded ?? false;
    await new Promise<void>((resolve, reject) => w.end((err?: Error | null) => (err ? reject(err) : resolve())));
  } catch (e) {
    throw outputClosed(e, `snapshot ${snapshot.name}`);
  }
  const sha256 = w.sha256();
  // A re-compressed export differs from the stored bytes by design; the
  // driver checked those against the recorded SHA-256 while reading them.
  if (snapshot.sha256 && !transcoded && snapshot.sha256 !== sha256) {
    throw new KompoxError('integrity', `snapshot ${snapshot.name} no longer matches its recorded SHA-256 (${snapshot.sha256}); the exported bytes hash to ${sha256}`, {
      hint: 'The stored snapshot is damaged; do not rely on this export.',
    });
  }
  return { snapshot, sha256, bytes: w.bytes };
}

export async function deleteSnapshot(ctx: AppContext, driver: ProviderDriver, _kube: KubeClient | undefined, opts: VolumeOption & { name: string }): Promise<Snapshot> {
  const { volume, snapshot } = await findSnapshot(ctx, driver, opts.volume, opts.name);
  await driver.snapshotDelete(ctx, volume, snapshot);
  return snapshot;
}
