// Disk use cases: list, create, attach (swap), delete, export, import. Plain
// parameters in, data out; progress and notes go through callbacks. The rules
// that keep data safe live here, not in the drivers:
//   - the current disk is never deleted (not even with force);
//   - the previous disk (the rollback target) is deleted only with force;
//   - an existing disk name is never reused;
//   - imports are verified (per-file and, when known, whole-archive SHA-256)
//     before the new disk becomes visible.
import { createReadStream, promises as fsp } from 'node:fs';
import { basename, dirname } from 'node:path';
import { KompoxError } from '../domain/errors.js';
import type { AppContext, AppVolume, Disk, Snapshot } from '../domain/model.js';
import { dnsLabelProblem } from '../domain/names.js';
import type { KubeClient } from '../kube/types.js';
import type { ProgressSink, ProviderDriver } from '../providers/driver.js';
import type { ArchiveFormat } from '../archive/archive.js';
import { defaultDiskName, describeChoice, disksWithCurrent, markAttached, readDiskRecord, recordCurrentDisk, selectVolume, type DiskRecord } from './volumes.js';

export interface VolumeOption {
  /** `-V`: default the only volume. */
  volume?: string;
  /** Notes for the user (e.g. which disk was taken as current). */
  log?: (line: string) => void;
}

export function checkDiskName(name: string, what: 'disk' | 'snapshot' = 'disk'): void {
  const problem = dnsLabelProblem(name);
  if (problem) {
    throw new KompoxError('usage', `${what} name "${name}" ${problem}`, {
      hint: `${what === 'disk' ? 'Disk' : 'Snapshot'} names are DNS labels: lower-case letters, digits and '-', at most 63 characters.`,
    });
  }
}

export function checkSha256(hex: string, field = '--sha256'): string {
  const h = hex.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(h)) throw new KompoxError('usage', `${field} "${hex}" is not a SHA-256 (64 hex digits)`);
  return h;
}

function requireKube(kube: KubeClient | undefined, what: string): KubeClient {
  if (!kube) {
    throw new KompoxError('unavailable', `${what} needs the cluster: the current disk is recorded on the app's namespace`, {
      hint: 'Check cluster.auth in kompoxops.yml.',
    });
  }
  return kube;
}

export interface DiskListResult {
  volume: string;
  disks: Disk[];
  record: DiskRecord;
}

export async function listDisks(ctx: AppContext, driver: ProviderDriver, kube: KubeClient | undefined, opts: VolumeOption = {}): Promise<DiskListResult> {
  const volume = selectVolume(ctx, opts.volume);
  const { disks, choice, record } = await disksWithCurrent(ctx, driver, kube, volume, { usage: true });
  const note = describeChoice(volume, choice);
  if (note) opts.log?.(note);
  return { volume: volume.name, disks, record };
}

export async function findDisk(ctx: AppContext, driver: ProviderDriver, kube: KubeClient | undefined, volume: AppVolume, name: string) {
  const all = await disksWithCurrent(ctx, driver, kube, volume);
  const disk = all.disks.find((d) => d.name === name);
  if (!disk) {
    throw new KompoxError('notfound', `disk "${name}" not found for volume ${volume.name} of app ${ctx.app.name}`, {
      hint: all.disks.length ? `Disks: ${all.disks.map((d) => d.name).join(', ')}.` : 'The volume has no disks yet (`kompoxops disk list`).',
    });
  }
  return { ...all, disk };
}

async function refuseExistingName(ctx: AppContext, driver: ProviderDriver, volume: AppVolume, name: string): Promise<void> {
  checkDiskName(name);
  if ((await driver.diskList(ctx, volume)).some((d) => d.name === name)) {
    throw new KompoxError('conflict', `disk "${name}" already exists for volume ${volume.name}`, {
      hint: 'Choose another name with -N (or leave -N out for a timestamped name).',
    });
  }
}

function sizeFor(ctx: AppContext, driver: ProviderDriver, volume: AppVolume, sizeGiB: number | undefined, log?: (l: string) => void): number | undefined {
  if (sizeGiB === undefined) return undefined;
  const { minGiB } = driver.diskSizeDefaults(ctx, volume);
  if (!Number.isInteger(sizeGiB) || sizeGiB < 1) throw new KompoxError('usage', `size ${sizeGiB} is not a whole number of GiB`, { hint: 'Write e.g. --size 10 (GiB).' });
  if (sizeGiB < minGiB) {
    log?.(`${sizeGiB} GiB is below the ${driver.driver} minimum; using ${minGiB} GiB`);
    return minGiB;
  }
  return sizeGiB;
}

/** `--size`: `10`, `10G`, `10Gi`, `10GiB` (GiB), or `1T`/`1Ti` (TiB). */
export function parseSizeGiB(s: string): number {
  const m = /^(\d+)\s*(G|Gi|GiB|GB|T|Ti|TiB|TB)?$/i.exec(s.trim());
  if (!m) throw new KompoxError('usage', `size "${s}" is not understood`, { hint: 'Write a whole number of GiB, e.g. --size 10 or --size 10Gi.' });
  const n = Number(m[1]);
  return /^t/i.test(m[2] ?? '') ? n * 1024 : n;
}

export interface DiskCreateUseOptions extends VolumeOption {
  name?: string;
  sizeGiB?: number;
  /** `-S`: a disk or snapshot name of this volume, or a provider-native id. */
  source?: string;
}

export async function createDisk(ctx: AppContext, driver: ProviderDriver, _kube: KubeClient | undefined, opts: DiskCreateUseOptions): Promise<Disk> {
  const volume = selectVolume(ctx, opts.volume);
  const name = opts.name ?? defaultDiskName(volume.name);
  await refuseExistingName(ctx, driver, volume, name);
  let sourceId: string | undefined;
  if (opts.source) {
    const disk = (await driver.diskList(ctx, volume)).find((d) => d.name === opts.source);
    const snap = disk ? undefined : (await driver.snapshotList(ctx, volume)).find((s) => s.name === opts.source);
    sourceId = disk?.id ?? snap?.id ?? opts.source;
  }
  return driver.diskCreate(ctx, volume, { name, sizeGiB: sizeFor(ctx, driver, volume, opts.sizeGiB, opts.log), sourceId });
}

export interface AttachResult {
  volume: string;
  disk: Disk;
  /** The disk that was current before (now recorded as previous). */
  previous?: Disk;
  /** False when the disk already was the current one. */
  changed: boolean;
}

/**
 * Makes `name` the volume's current disk (the spec's 差し替え). The previous
 * current disk is recorded as previous (rollback target). Redeploying, so the
 * pod actually uses it, is the caller's next step (see attachAndRedeploy in
 * the CLI / deployApp).
 */
export async function attachDisk(
  ctx: AppContext,
  driver: ProviderDriver,
  kube: KubeClient | undefined,
  opts: VolumeOption & { name: string },
): Promise<AttachResult> {
  const k = requireKube(kube, 'disk attach');
  const volume = selectVolume(ctx, opts.volume);
  const { disk, disks, choice } = await findDisk(ctx, driver, k, volume, opts.name);
  const before = await readDiskRecord(k, ctx, volume);
  if (before.currentId === disk.id) return { volume: volume.name, disk: { ...disk, current: true }, changed: false };
  // Nothing recorded yet (migration): the disk the app would have used is the
  // one being replaced, so it becomes the rollback target.
  const replaced = before.currentId ? disks.find((d) => d.id === before.currentId) : choice.disk;
  if (!before.currentId && replaced && replaced.id !== disk.id) await recordCurrentDisk(k, ctx, volume, replaced.id);
  await recordCurrentDisk(k, ctx, volume, disk.id);
  await markAttached(ctx, driver, volume, disk, opts.log);
  const r: AttachResult = { volume: volume.name, disk: { ...disk, current: true }, changed: true };
  if (replaced && replaced.id !== disk.id) r.previous = { ...replaced, current: false };
  return r;
}

export async function deleteDisk(
  ctx: AppContext,
  driver: ProviderDriver,
  kube: KubeClient | undefined,
  opts: VolumeOption & { name: string; force?: boolean },
): Promise<Disk> {
  const volume = selectVolume(ctx, opts.volume);
  const { disk, record } = await findDisk(ctx, driver, requireKube(kube, 'disk delete'), volume, opts.name);
  if (disk.current) {
    throw new KompoxError('conflict', `disk "${disk.name}" is the current disk of volume ${volume.name}; refusing to delete it`, {
      hint: 'Attach another disk first (kompoxops disk attach -N OTHER); --force does not override this.',
    });
  }
  if (record.previousId === disk.id && !opts.force) {
    throw new KompoxError('conflict', `disk "${disk.name}" is the previous disk of volume ${volume.name} (the rollback target); refusing to delete it`, {
      hint: 'Add --force to delete it anyway.',
    });
  }
  const pv = await persistentVolumeUsing(kube!, disk.id);
  if (pv) {
    throw new KompoxError('conflict', `disk "${disk.name}" is still bound to PersistentVolume ${pv} in the cluster; refusing to delete it`, {
      hint: 'Redeploy the app (kompoxops app deploy) so it lets go of the disk, then delete it; --force does not override this.',
    });
  }
  await driver.diskDelete(ctx, volume, disk);
  return disk;
}

/** The PersistentVolume whose source is this disk (local path, CSI handle or host path), if any. */
async function persistentVolumeUsing(kube: KubeClient, diskId: string): Promise<string | undefined> {
  for (const pv of await kube.list('v1', 'PersistentVolume')) {
    const spec = (pv.spec ?? {}) as { local?: { path?: string }; csi?: { volumeHandle?: string }; hostPath?: { path?: string } };
    if (spec.local?.path === diskId || spec.csi?.volumeHandle === diskId || spec.hostPath?.path === diskId) return pv.metadata.name;
  }
  return undefined;
}

export interface ExportResult {
  /** SHA-256 (hex) of the archive bytes as written. */
  sha256: string;
  bytes: number;
}

/** Streams the disk as a portable archive into `out` (not ended). */
export async function exportDisk(
  ctx: AppContext,
  driver: ProviderDriver,
  kube: KubeClient | undefined,
  opts: VolumeOption & { name: string; out: NodeJS.WritableStream; progress?: ProgressSink; format?: ArchiveFormat },
): Promise<ExportResult & { disk: Disk }> {
  const volume = selectVolume(ctx, opts.volume);
  const { disk } = await findDisk(ctx, driver, kube, volume, opts.name);
  const { ChecksumWriter } = await import('../archive/archive.js');
  const w = new ChecksumWriter(opts.out);
  try {
    await driver.diskExport(ctx, volume, disk, w, opts.progress, { format: opts.format });
    await new Promise<void>((resolve, reject) => w.end((err?: Error | null) => (err ? reject(err) : resolve())));
  } catch (e) {
    throw outputClosed(e, `disk ${disk.name}`);
  }
  return { disk, sha256: w.sha256(), bytes: w.bytes };
}

/** A reader that went away (`| head`, a dropped connection) is the user's business, not a bug. */
export function outputClosed(e: unknown, what: string): unknown {
  const code = (e as { code?: string }).code;
  if (code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || /output was closed/.test(String((e as Error)?.message))) {
    return new KompoxError('unavailable', `the output was closed before the export of ${what} was complete; the archive is incomplete`, { cause: e });
  }
  return e;
}

/**
 * Writes an archive to `path` atomically (temp file, then rename) and a
 * `path.sha256` beside it in `sha256sum` format. Nothing is left on failure.
 */
export async function writeArchiveFile(path: string, write: (out: NodeJS.WritableStream) => Promise<ExportResult>): Promise<ExportResult> {
  const { createWriteStream } = await import('node:fs');
  // Never replace an earlier export: it may be the only backup.
  const taken = async () =>
    new KompoxError('conflict', `${path} already exists; refusing to overwrite it`, { hint: 'Choose another file name, or move the old archive away first.' });
  if (await fsp.lstat(path).then(() => true, () => false)) throw await taken();
  const tmp = `${dirname(path)}/.${basename(path)}.tmp-${process.pid}-${Date.now().toString(36)}`;
  const ws = createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  try {
    await opened.catch((e: NodeJS.ErrnoException) => {
      throw new KompoxError('usage', `cannot write ${path}: ${e.code === 'ENOENT' ? 'its directory does not exist' : e.message}`);
    });
    const r = await write(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('error', reject);
      ws.once('close', () => resolve());
      ws.end();
    });
    // link() fails when `path` appeared meanwhile: no-clobber, atomically.
    try {
      await fsp.link(tmp, path);
      await fsp.rm(tmp, { force: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw await taken();
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
      // No hard links on this filesystem: check, then rename.
      if (await fsp.lstat(path).then(() => true, () => false)) throw await taken();
      await fsp.rename(tmp, path);
    }
    await fsp.writeFile(`${path}.sha256`, `${r.sha256}  ${basename(path)}\n`);
    return r;
  } catch (e) {
    ws.destroy();
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}

/** The checksum in `FILE.sha256` (sha256sum format) when that file exists. */
export async function sidecarSha256(path: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(`${path}.sha256`, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^([0-9a-fA-F]{64})\b/.exec(text.trim());
  if (!m) throw new KompoxError('integrity', `${path}.sha256 does not hold a SHA-256`, { hint: 'Remove it, or pass the right value with --sha256.' });
  return m[1]!.toLowerCase();
}

/** `--from-app service/provider/cluster/app`: the other app's context, on this app's driver. */
export function otherAppContext(ctx: AppContext, id: string, volumeName: string): AppContext {
  const parts = id.split('/');
  if (parts.length !== 4 || parts.some((p) => dnsLabelProblem(p) !== undefined)) {
    throw new KompoxError('usage', `--from-app "${id}" is not service/provider/cluster/app`, { hint: 'For example ops/k3s1/node1/other-app (its kompox-app tag).' });
  }
  const [service, provider, cluster, app] = parts as [string, string, string, string];
  return {
    service: { name: service },
    provider: { ...ctx.provider, name: provider },
    cluster: { ...ctx.cluster, name: cluster },
    app: { ...ctx.app, name: app, volumes: [{ name: volumeName, options: {} }] },
  };
}

export interface DiskImportUseOptions extends VolumeOption {
  name?: string;
  sizeGiB?: number;
  /** An archive stream (file or stdin) with what is known about it. */
  archive?: { stream: NodeJS.ReadableStream; expectedSha256?: string; totalBytes?: number; /** for messages: the file, or `stdin` */ label?: string };
  /** A provider-native disk or snapshot id. */
  fromId?: string;
  /** A disk or snapshot of another app on the same provider. */
  fromApp?: { app: string; disk?: string; snapshot?: string; volume?: string };
  progress?: ProgressSink;
}

/** Creates a new disk from an archive, a provider id, or another app's disk or snapshot. */
export async function importDisk(ctx: AppContext, driver: ProviderDriver, _kube: KubeClient | undefined, opts: DiskImportUseOptions): Promise<Disk> {
  const volume = selectVolume(ctx, opts.volume);
  const name = opts.name ?? defaultDiskName(volume.name);
  const sources = [opts.archive, opts.fromId, opts.fromApp].filter((x) => x !== undefined).length;
  if (sources !== 1) {
    throw new KompoxError('usage', 'disk import needs exactly one source', { hint: 'Give FILE (or - for stdin), --from-id ID, or --from-app APP with --from-disk/--from-snapshot.' });
  }
  await refuseExistingName(ctx, driver, volume, name);
  const sizeGiB = sizeFor(ctx, driver, volume, opts.sizeGiB, opts.log);
  if (opts.archive) {
    const a = opts.archive;
    try {
      return await driver.diskImport(ctx, volume, name, a.stream, opts.progress, { expectedSha256: a.expectedSha256, totalBytes: a.totalBytes, sizeGiB });
    } catch (e) {
      // Name the archive; say that nothing was created.
      if (e instanceof KompoxError && e.kind === 'integrity') {
        throw new KompoxError('integrity', `${a.label ? `${a.label}: ` : ''}${e.message}; no disk was created`, { hint: e.hint, cause: e });
      }
      throw e;
    }
  }
  if (opts.fromId) return driver.diskCreate(ctx, volume, { name, sizeGiB, sourceId: opts.fromId });
  const from = opts.fromApp!;
  if (Boolean(from.disk) === Boolean(from.snapshot)) {
    throw new KompoxError('usage', '--from-app needs exactly one of --from-disk NAME or --from-snapshot NAME');
  }
  const other = otherAppContext(ctx, from.app, from.volume ?? volume.name);
  const otherVol = other.app.volumes[0]!;
  let source: Disk | Snapshot | undefined;
  if (from.disk) source = (await driver.diskList(other, otherVol)).find((d) => d.name === from.disk);
  else source = (await driver.snapshotList(other, otherVol)).find((s) => s.name === from.snapshot);
  if (!source) {
    throw new KompoxError('notfound', `${from.disk ? 'disk' : 'snapshot'} "${from.disk ?? from.snapshot}" of app ${from.app} (volume ${otherVol.name}) not found`, {
      hint: 'List them with kompoxops against that app, or name the volume with --from-volume.',
    });
  }
  return driver.diskCreate(ctx, volume, { name, sizeGiB: sizeGiB ?? source.sizeGiB, sourceId: source.id });
}

/** Opens an archive file for import: stream, size, and the checksum from FILE.sha256 when present. */
export async function openArchiveFile(
  path: string,
  expectedSha256?: string,
): Promise<{ stream: NodeJS.ReadableStream; expectedSha256?: string; totalBytes: number; label: string }> {
  let st;
  try {
    st = await fsp.stat(path);
  } catch {
    throw new KompoxError('notfound', `archive file ${path} does not exist`);
  }
  if (!st.isFile()) throw new KompoxError('usage', `${path} is not a file`);
  const expected = expectedSha256 ? checkSha256(expectedSha256) : await sidecarSha256(path);
  return { stream: createReadStream(path, { highWaterMark: 1024 * 1024 }), expectedSha256: expected, totalBytes: st.size, label: path };
}

export interface AttachDeployOptions extends VolumeOption {
  name: string;
  /** Redeploy even when the app does not look deployed. */
  deploy?: boolean;
  /** Rollout timeout (ms) for the redeploy. */
  timeoutMs?: number;
  onProgress?: (message: string) => void;
}

export interface AttachDeployResult extends AttachResult {
  /** Set when the app was redeployed onto the disk. */
  deploy?: { exitCode: number; message: string };
  /** PV/PVC pairs of the old disk that were removed (the disk itself is kept). */
  released: string[];
}

/**
 * `disk attach [--deploy]`: records the disk as current and, when asked or
 * when the app is deployed, redeploys. The converter names PV/PVC after the
 * disk, so the Deployment's claim changes and the Recreate strategy stops the
 * old pod before the new one mounts the disk; once the new pod is ready the
 * old PV/PVC pair is removed (reclaim policy Retain keeps the disk).
 */
export async function attachAndDeploy(ctx: AppContext, driver: ProviderDriver, kube: KubeClient | undefined, opts: AttachDeployOptions): Promise<AttachDeployResult> {
  const r = await attachDisk(ctx, driver, kube, opts);
  const k = kube!;
  const { appNamespace } = await import('../domain/names.js');
  const deployed = await k.get({ apiVersion: 'apps/v1', kind: 'Deployment', name: ctx.app.name, namespace: appNamespace(ctx) });
  if (!opts.deploy && !deployed) {
    opts.log?.(`the app is not deployed; the disk will be used by the next \`kompoxops app deploy\``);
    return { ...r, released: [] };
  }
  const { deployApp, releaseOldVolumeBindings } = await import('./app-deploy.js');
  const d = await deployApp(ctx, k, driver, { log: opts.log, onProgress: opts.onProgress, timeoutMs: opts.timeoutMs });
  const out: AttachDeployResult = { ...r, deploy: { exitCode: d.exitCode, message: d.message }, released: [] };
  if (d.exitCode !== 0) {
    opts.log?.('the old PersistentVolume/PersistentVolumeClaim are kept until the app runs on the new disk');
    return out;
  }
  const keep = d.changes
    .filter((c) => c.action !== 'prune' && (c.ref.kind === 'PersistentVolume' || c.ref.kind === 'PersistentVolumeClaim'))
    .map((c) => c.ref);
  const released = await releaseOldVolumeBindings(k, ctx, keep, { log: opts.log });
  out.released = released.map((x) => `${x.kind} ${x.namespace ? `${x.namespace}/` : ''}${x.name}`);
  return out;
}
