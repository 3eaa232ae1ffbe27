// Disk use cases: list, create, attach (swap), delete, export, import. Plain
// parameters in, data out; notes and progress go to the Op's event stream, and
// the Op's signal cancels. The rules that keep data safe live here, not in the
// drivers:
//   - the current disk is never deleted (not even with force);
//   - the previous disk (the rollback target) is deleted only with force;
//   - an existing disk name is never reused;
//   - imports are verified (per-file and, when known, whole-archive SHA-256)
//     before the new disk becomes visible.
// Files are the front end's business: export writes to a stream it is given,
// import reads one (the CLI opens files, a server its request bodies).
import { KompoxError, unsupported } from '../domain/errors.js';
import { interruptedSaying, logEvent, type Op } from '../domain/events.js';
import type { AppContext, AppVolume, Disk, Snapshot } from '../domain/model.js';
import type { AppSource } from '../domain/source.js';
import { dnsLabelProblem, labelValueProblem } from '../domain/names.js';
import { describePlacement, pvZones } from '../domain/placement.js';
import { refString, type KubeClient } from '../domain/ports/kube.js';
import { NO_CLUSTER_FACTS, diskSizeDefaults, requirePart, type ArchiveExportOptions, type ArchiveInput, type DiskSource, type ProviderDriver } from '../domain/ports/driver.js';
import { appDiskZone, appZoneNote, defaultDiskName, GENERATED_NAME_TAKEN, describeChoice, disksWithCurrent, markAttached, readDiskRecord, recordCurrentDisk, revertCurrentDisk, selectVolume, type DiskRecord } from './volumes.js';

export interface VolumeOption {
  /** The app volume; default the only one. */
  volume?: string;
}

export function checkDiskName(name: string, what: 'disk' | 'snapshot' = 'disk'): void {
  const problem = dnsLabelProblem(name);
  if (problem) {
    throw new KompoxError('usage', `${what} name "${name}" ${problem}`, {
      code: `${what}.name.invalid`,
      hint: `${what === 'disk' ? 'Disk' : 'Snapshot'} names are DNS labels: lower-case letters, digits and '-', at most 63 characters.`,
    });
  }
}

/** A SHA-256 given by the user (hex); `field` names where it came from. */
export function checkSha256(hex: string, field = 'sha256'): string {
  const h = hex.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(h)) throw new KompoxError('usage', `${field} "${hex}" is not a SHA-256 (64 hex digits)`, { code: 'usage.sha256' });
  return h;
}

function requireKube(kube: KubeClient | undefined, what: string): KubeClient {
  if (!kube) {
    throw new KompoxError('unavailable', `${what} needs the cluster: the current disk is recorded on the app's namespace`, {
      hint: "Check the cluster's credentials (cluster.auth).",
    });
  }
  return kube;
}

export interface DiskListResult {
  volume: string;
  disks: Disk[];
  record: DiskRecord;
}

export async function listDisks(ctx: AppContext, driver: ProviderDriver, kube: KubeClient | undefined, opts: VolumeOption = {}, op: Op = {}): Promise<DiskListResult> {
  const volume = selectVolume(ctx, opts.volume);
  const { disks, choice, record } = await disksWithCurrent(ctx, driver, kube, volume, { usage: true }, op);
  const note = describeChoice(volume, choice);
  if (note) logEvent(op, note);
  return { volume: volume.name, disks, record };
}

export async function findDisk(ctx: AppContext, driver: ProviderDriver, kube: KubeClient | undefined, volume: AppVolume, name: string, op: Op = {}) {
  // an empty name names no disk: the option was given empty (-N '', a variable unset in a script)
  if (name.trim() === '') throw new KompoxError('usage', 'the disk name is empty', { code: 'disk.name.empty', field: 'name', hint: 'Give the name of a disk (the disk list shows them).' });
  const all = await disksWithCurrent(ctx, driver, kube, volume, {}, op);
  const disk = all.disks.find((d) => d.name === name);
  if (!disk) {
    throw new KompoxError('notfound', `disk "${name}" not found for volume ${volume.name} of app ${ctx.app.name}`, {
      code: 'disk.notfound',
      details: { disk: name, volume: volume.name, disks: all.disks.map((d) => d.name) },
      hint: all.disks.length ? `Disks: ${all.disks.map((d) => d.name).join(', ')}.` : 'The volume has no disks yet.',
    });
  }
  return { ...all, disk };
}

/** `generated`: Kompox chose the name (the volume's and the time to the second), none was given. */
async function refuseExistingName(ctx: AppContext, driver: ProviderDriver, volume: AppVolume, name: string, generated: boolean, op: Op): Promise<void> {
  checkDiskName(name);
  if ((await driver.disks.list(ctx, volume, {}, op)).some((d) => d.name === name)) {
    throw new KompoxError('conflict', `disk "${name}" already exists for volume ${volume.name}`, {
      code: 'disk.exists',
      details: { disk: name, volume: volume.name, ...(generated ? { generated } : {}) },
      hint: generated ? GENERATED_NAME_TAKEN : 'Choose another name (or leave the name out for a timestamped one).',
    });
  }
}

/** The largest disk a size may ask for: 64 TiB, the largest managed disk of the clouds Kompox drives. */
const MAX_DISK_GIB = 64 * 1024;

function sizeFor(ctx: AppContext, driver: ProviderDriver, volume: AppVolume, sizeGiB: number | undefined, op: Op): number | undefined {
  if (sizeGiB === undefined) return undefined;
  const { minGiB } = diskSizeDefaults(ctx, driver.volumeClass(ctx, volume), volume);
  if (!Number.isInteger(sizeGiB)) throw new KompoxError('usage', `size ${sizeGiB} is not a whole number of GiB`, { code: 'usage.size', hint: 'Write e.g. 10 (GiB).' });
  if (sizeGiB < 1) throw new KompoxError('usage', `size ${sizeGiB} GiB is too small: a disk holds at least 1 GiB`, { code: 'usage.size', hint: 'Write e.g. 10 (GiB).' });
  // no cloud disk is larger (Azure's and AWS's largest are 64 TiB); beyond it a typo, recorded as 1e+22
  if (sizeGiB > MAX_DISK_GIB) throw new KompoxError('usage', `size ${sizeGiB} GiB is larger than any disk (at most ${MAX_DISK_GIB} GiB, 64 TiB)`, { code: 'usage.size', hint: 'Write e.g. 10 (GiB) or 2Ti.' });
  if (sizeGiB < minGiB) {
    logEvent(op, `${sizeGiB} GiB is below the ${driver.name} minimum; using ${minGiB} GiB`);
    return minGiB;
  }
  return sizeGiB;
}

/** A size as users write it: `10`, `10G`, `10Gi`, `10GiB` (GiB), or `1T`/`1Ti` (TiB). */
export function parseSizeGiB(s: string): number {
  const m = /^(\d+)\s*(G|Gi|GiB|GB|T|Ti|TiB|TB)?$/i.exec(s.trim());
  if (!m) throw new KompoxError('usage', `size "${s}" is not understood`, { code: 'usage.size', hint: 'Write a whole number of GiB, e.g. 10 or 10Gi.' });
  const n = Number(m[1]);
  return /^t/i.test(m[2] ?? '') ? n * 1024 : n;
}

/**
 * The zone a new disk goes into: the one asked for (checked: a label value,
 * and a driver with zones, else the typed `unsupported` error naming
 * `operation`), else the app's zone (the first of app.deployment.zone) on
 * drivers with zones. A zone outside the app's zones is allowed (a copy for
 * a move) and noted: attaching it needs app.deployment.zone to include it.
 */
export function diskZone(ctx: AppContext, driver: ProviderDriver, asked: string | undefined, operation: string, op: Op): string | undefined {
  if (asked === undefined) return appDiskZone(ctx, driver);
  const problem = labelValueProblem(asked);
  if (problem) {
    throw new KompoxError('usage', `zone "${asked}" ${problem}`, {
      code: 'usage.zone',
      details: { zone: asked },
      hint: "Give the zone as the nodes' topology.kubernetes.io/zone label shows it, e.g. japaneast-1 or us-east-1a.",
    });
  }
  if (!driver.capabilities.zones) throw unsupported(operation, driver.name);
  const zones = ctx.app.deployment?.zones;
  if (zones?.length && !zones.includes(asked)) {
    logEvent(op, `note: zone ${asked} is not in app.deployment.zone (${zones.join(', ')}); the app can use this disk only after app.deployment.zone includes it`);
  }
  return asked;
}

/** What a log line says about where a disk was put. */
function zoneNote(ctx: AppContext, zone: string | undefined, asked: string | undefined): string {
  if (!zone) return '';
  return asked !== undefined ? ` in zone ${zone}` : ` in ${appZoneNote(ctx, zone)}`;
}

export interface DiskCreateUseOptions extends VolumeOption {
  name?: string;
  sizeGiB?: number;
  /** A disk or snapshot name of this volume, or a provider-native id, to copy. */
  source?: string;
  /** Availability zone, as the nodes' zone label shows it (drivers with zones); default the app's zone. */
  zone?: string;
  /** Provider options (SKU...). */
  options?: Record<string, string>;
}

/** What a name given as a copy source is: a disk or snapshot of the volume, else a provider-native id. */
async function resolveSource(ctx: AppContext, driver: ProviderDriver, volume: AppVolume, source: string, op: Op): Promise<{ source: DiskSource; disk?: Disk; snapshot?: Snapshot; names?: string }> {
  const disks = await driver.disks.list(ctx, volume, {}, op);
  const disk = disks.find((d) => d.name === source);
  if (disk) return { source: { kind: 'disk', id: disk.id }, disk };
  const snaps = await driver.snapshots.list(ctx, volume, op);
  const snap = snaps.find((s) => s.name === source);
  if (snap) return { source: { kind: 'snapshot', id: snap.id }, snapshot: snap };
  const list = (what: string, xs: { name: string }[]) => `${what}: ${xs.length ? xs.map((x) => x.name).join(', ') : 'none'}`;
  return { source: { kind: 'native', id: source }, names: `${list('disks', disks)}; ${list('snapshots', snaps)}` };
}

export async function createDisk(ctx: AppContext, driver: ProviderDriver, _kube: KubeClient | undefined, opts: DiskCreateUseOptions, op: Op = {}): Promise<Disk> {
  const volume = selectVolume(ctx, opts.volume);
  const name = opts.name ?? defaultDiskName(volume.name);
  const zone = diskZone(ctx, driver, opts.zone, 'disk create in a zone', op);
  await refuseExistingName(ctx, driver, volume, name, opts.name === undefined, op);
  const resolved = opts.source ? await resolveSource(ctx, driver, volume, opts.source, op) : undefined;
  const source = resolved?.source;
  const fromSnapshot = resolved?.snapshot;
  const fromDisk = resolved?.disk;
  const disk = await driver.disks
    .create(
      ctx,
      volume,
      {
        name,
        sizeGiB: sizeFor(ctx, driver, volume, opts.sizeGiB, op),
        ...(zone !== undefined ? { zone } : {}),
        ...(opts.options ? { options: opts.options } : {}),
        ...(source ? { source } : {}),
      },
      op,
    )
    .catch(async (e: unknown) => {
      // a name that is neither a disk nor a snapshot of the volume, nor an id the driver takes: said first as the name it most likely was
      if (resolved?.names && e instanceof KompoxError && e.kind === 'usage') {
        throw new KompoxError('usage', `no disk or snapshot of volume ${volume.name} is named "${opts.source}" (${resolved.names}), nor is it a ${driver.name} id: ${e.message}; no disk was created`, {
          code: 'disk.source.notfound',
          field: '-S',
          details: { source: opts.source, volume: volume.name },
          ...(e.hint ? { hint: e.hint } : {}),
          cause: e,
        });
      }
      if (fromDisk) e = await sourceDeleted(e, ctx, driver, volume, fromDisk, `disk ${name} was being copied from it`, 'no disk was created', op);
      const said = interruptedSaying(e, 'no disk was created');
      throw fromSnapshot ? (await import('./snapshot.js')).storedSnapshotDamaged(said, fromSnapshot, 'no disk was created') : said;
    });
  if (zone) logEvent(op, `created disk ${disk.name}${zoneNote(ctx, zone, opts.zone)}`);
  return disk;
}

/**
 * A disk whose PersistentVolume would pin the pod to a zone app.deployment.zone
 * does not allow cannot become current: the pod could never start next to it.
 */
export function refuseZoneConflict(ctx: AppContext, driver: ProviderDriver, volume: AppVolume, disk: Disk): void {
  const zones = ctx.app.deployment?.zones;
  if (!zones?.length) return;
  let diskZones: string[] | undefined;
  try {
    diskZones = pvZones(driver.pvSource(ctx, volume, disk, NO_CLUSTER_FACTS).source);
  } catch {
    return; // the PV source itself cannot be built (a setting missing): app deploy reports that
  }
  if (!diskZones || diskZones.some((z) => zones.includes(z))) return;
  throw new KompoxError('conflict', `disk "${disk.name}" is in zone ${diskZones.join(' or ')}, but the app runs in ${describePlacement({ zones })} (app.deployment.zone); refusing to attach it: the pod could never start next to it`, {
    code: 'disk.zone.conflict',
    details: { disk: disk.name, volume: volume.name, diskZones, appZones: zones },
    hint: `Copy it into zone ${zones[0]} (a new disk with this disk as its source) and attach the copy, or add ${diskZones[0]} to app.deployment.zone first.`,
  });
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
 * pod actually uses it, is the caller's next step (attachAndDeploy).
 */
export async function attachDisk(ctx: AppContext, driver: ProviderDriver, kube: KubeClient | undefined, opts: VolumeOption & { name: string }, op: Op = {}): Promise<AttachResult> {
  const k = requireKube(kube, 'disk attach');
  const volume = selectVolume(ctx, opts.volume);
  const { disk, disks, choice } = await findDisk(ctx, driver, k, volume, opts.name, op);
  const before = await readDiskRecord(k, ctx, volume);
  if (before.currentId === disk.id) return { volume: volume.name, disk: { ...disk, current: true }, changed: false };
  refuseZoneConflict(ctx, driver, volume, disk);
  // Nothing recorded yet (migration): the disk the app would have used is the
  // one being replaced, so it becomes the rollback target.
  const replaced = before.currentId ? disks.find((d) => d.id === before.currentId) : choice.disk;
  if (!before.currentId && replaced && replaced.id !== disk.id) await recordCurrentDisk(k, ctx, volume, replaced.id);
  const written = await recordCurrentDisk(k, ctx, volume, disk.id);
  // A delete of this disk by another command may have run between the look above and the write (it
  // saw the disk not current): the record must never name a deleted disk. The delete checks the
  // record again just before it deletes, so one of the two always sees the other.
  if (!(await driver.disks.list(ctx, volume, {}, op)).some((d) => d.id === disk.id)) {
    // back to what it was (a migration's choice, recorded above, stays recorded as current)
    const currentId = before.currentId ?? (replaced && replaced.id !== disk.id ? replaced.id : undefined);
    await revertCurrentDisk(k, ctx, volume, disk.id, { ...(currentId ? { currentId } : {}), ...(before.previousId ? { previousId: before.previousId } : {}) });
    const still = replaced && replaced.id !== disk.id ? `the current disk is still ${replaced.name}` : 'no disk was made current';
    throw new KompoxError('conflict', `disk "${disk.name}" was deleted while it was being attached (by another command); ${still}`, {
      code: 'disk.attach.deleted',
      details: { disk: disk.name, volume: volume.name, id: disk.id, ...(replaced && replaced.id !== disk.id ? { current: replaced.name } : {}) },
      hint: 'The disk list shows the disks there are; attach one of them.',
    });
  }
  await markAttached(ctx, driver, volume, disk, op);
  const r: AttachResult = { volume: volume.name, disk: { ...disk, current: true }, changed: true };
  // what the write replaced: another attach at once may have made its disk current since the look above
  const previousId = written.currentId === disk.id && written.previousId !== disk.id ? written.previousId : undefined;
  const previous = previousId === undefined ? undefined : previousId === replaced?.id ? replaced : (await driver.disks.list(ctx, volume, {}, op)).find((d) => d.id === previousId);
  if (previous) r.previous = { ...previous, current: false };
  return r;
}

export async function deleteDisk(
  ctx: AppContext,
  driver: ProviderDriver,
  kube: KubeClient | undefined,
  opts: VolumeOption & { name: string; force?: boolean },
  op: Op = {},
): Promise<Disk> {
  const volume = selectVolume(ctx, opts.volume);
  const { disk, record } = await findDisk(ctx, driver, requireKube(kube, 'disk delete'), volume, opts.name, op);
  refuseDeleting(disk, record, volume, opts.force);
  const details = { disk: disk.name, volume: volume.name, id: disk.id };
  const pv = await persistentVolumeUsing(kube!, disk.id);
  if (pv) {
    throw new KompoxError('conflict', `disk "${disk.name}" is still bound to PersistentVolume ${pv} in the cluster; refusing to delete it`, {
      code: 'disk.delete.bound',
      details: { ...details, persistentVolume: pv },
      hint: 'Redeploy the app so it lets go of the disk, then delete it; force does not override this.',
    });
  }
  // Another command may have attached it since the look above (two operators at once): the record
  // is read again right before the delete. (An attach checks after its write that the disk still
  // exists, and puts the record back if not; what remains is an attach whose write and check both
  // fall between this read and the driver's delete, milliseconds apart.)
  refuseDeleting(disk, await readDiskRecord(kube!, ctx, volume), volume, opts.force);
  await driver.disks.delete(ctx, volume, disk, op);
  return disk;
}

/** The record's refusals of a delete: the current disk never, the previous one only with force. */
function refuseDeleting(disk: Disk, record: DiskRecord, volume: AppVolume, force: boolean | undefined): void {
  const details = { disk: disk.name, volume: volume.name, id: disk.id };
  if (disk.current || record.currentId === disk.id) {
    throw new KompoxError('conflict', `disk "${disk.name}" is the current disk of volume ${volume.name}; refusing to delete it`, {
      code: 'disk.delete.current',
      details,
      hint: 'Attach another disk first; force does not override this.',
    });
  }
  if (record.previousId === disk.id && !force) {
    throw new KompoxError('conflict', `disk "${disk.name}" is the previous disk of volume ${volume.name} (the rollback target); refusing to delete it`, {
      code: 'disk.delete.previous',
      details,
      hint: 'Delete it with force to delete it anyway.',
    });
  }
}

/**
 * A command reading `disk` (export, snapshot, copy) failed: when another
 * command deleted the disk meanwhile, the failure (a file or directory gone
 * under the reader) is said as that, not as an unexpected error. Any other
 * failure, a cancel included, is returned as it is.
 */
export async function sourceDeleted(e: unknown, ctx: AppContext, driver: ProviderDriver, volume: AppVolume, disk: Disk, doing: string, nothing: string, op: Op): Promise<unknown> {
  return deletedMeanwhile(e, ['interrupted', 'usage'], { noun: 'disk', name: disk.name, id: disk.id, volume: volume.name }, () => driver.disks.list(ctx, volume, {}, op), doing, nothing);
}

/**
 * `e`, or, when the disk or snapshot it read is no longer in `list` (another
 * command deleted it meanwhile), the `{noun}.source.deleted` error that says
 * so. Failures of the kinds in `keep` are returned as they are.
 */
export async function deletedMeanwhile(
  e: unknown,
  keep: readonly string[],
  read: { noun: 'disk' | 'snapshot'; name: string; id: string; volume: string },
  list: () => Promise<{ id: string }[]>,
  doing: string,
  nothing: string,
): Promise<unknown> {
  if (e instanceof KompoxError && keep.includes(e.kind)) return e;
  const gone = await list().then(
    (xs) => !xs.some((x) => x.id === read.id),
    () => false,
  );
  if (!gone) return e;
  return new KompoxError('conflict', `${read.noun} "${read.name}" was deleted (by another command) while ${doing}; ${nothing}`, {
    code: `${read.noun}.source.deleted`,
    details: { [read.noun]: read.name, volume: read.volume, id: read.id },
    hint: `The ${read.noun} list shows the ${read.noun}s there are.`,
    cause: e,
  });
}

/** The PersistentVolume whose source is this disk (local path, CSI handle or host path), if any. */
async function persistentVolumeUsing(kube: KubeClient, diskId: string): Promise<string | undefined> {
  const { pvUsesDisk } = await import('./transfer.js');
  return (await kube.list('v1', 'PersistentVolume')).find((pv) => pvUsesDisk(pv, diskId))?.metadata.name;
}

export interface ExportResult {
  /** SHA-256 (hex) of the archive bytes as written. */
  sha256: string;
  bytes: number;
}

/**
 * Streams `write`'s archive through a checksum into `out` (not ended by the
 * writer; ended here), for disk and snapshot export alike.
 */
export async function exportThrough(out: NodeJS.WritableStream, what: string, write: (w: NodeJS.WritableStream) => Promise<void>): Promise<ExportResult> {
  const { ChecksumWriter } = await import('../archive/archive.js');
  const w = new ChecksumWriter(out);
  // its failure (a cancel destroys it) reaches us as the writer's; no stray 'error' event
  w.on('error', () => undefined);
  try {
    await write(w);
    await new Promise<void>((resolve, reject) => w.end((err?: Error | null) => (err ? reject(err) : resolve())));
  } catch (e) {
    throw interruptedSaying(outputClosed(e, what), `${what} was not exported`);
  }
  return { sha256: w.sha256(), bytes: w.bytes };
}

export interface DiskExportOptions extends VolumeOption, ArchiveExportOptions {
  name: string;
  out: NodeJS.WritableStream;
  /** `host` (the driver reads the disk itself: K3s), `cluster` (a helper pod: any driver) or `auto`; default the setting, else auto. */
  via?: string;
  /** Through the cluster: read the disk even while the app uses it (crash-consistent). */
  live?: boolean;
  /** Stop the app (scale to 0) for the export, then start it again. */
  quiesce?: boolean;
  /** With quiesce: how long to wait for the app's pod to stop. */
  stopTimeoutMs?: number;
}

/**
 * Whether a disk export needs the cluster's API: through the cluster, or to
 * stop the app. A front end connects only then (on the host path nothing of
 * the cluster is read, and its client is several MiB of a data command).
 */
export async function exportNeedsCluster(ctx: AppContext, driver: ProviderDriver, opts: Pick<DiskExportOptions, 'via' | 'quiesce'>): Promise<boolean> {
  const { transferVia } = await import('./transfer.js');
  return exportUsesCluster(transferVia(ctx, driver, 'disk export', opts.via), opts);
}

const exportUsesCluster = (via: string, opts: Pick<DiskExportOptions, 'quiesce'>): boolean => via === 'cluster' || opts.quiesce === true;

/** Whether a disk import needs the cluster's API: an archive through the cluster (the other sources may, too). */
export async function importNeedsCluster(ctx: AppContext, driver: ProviderDriver, opts: { archive: boolean; via?: string }): Promise<boolean> {
  const { transferVia } = await import('./transfer.js');
  return !opts.archive || transferVia(ctx, driver, 'disk import from an archive', opts.via) === 'cluster';
}

/** Streams the disk as a portable archive into `out`, on the driver's host path or through the cluster. */
export async function exportDisk(ctx: AppContext, driver: ProviderDriver, kube: KubeClient | undefined, opts: DiskExportOptions, op: Op = {}): Promise<ExportResult & { disk: Disk }> {
  const { transferVia, exportDiskThroughCluster } = await import('./transfer.js');
  // refused before anything is read or stopped
  if (opts.level !== undefined) (await import('../archive/archive.js')).checkExportOptions(opts);
  const via = transferVia(ctx, driver, 'disk export', opts.via);
  const onHost = via === 'host' ? requirePart(driver, 'hostTransfer', 'disk export') : undefined;
  const k = exportUsesCluster(via, opts) ? requireKube(kube, opts.quiesce ? 'quiescing the app' : 'disk export through the cluster') : kube;
  const volume = selectVolume(ctx, opts.volume);
  const { disk } = await findDisk(ctx, driver, kube, volume, opts.name, op);
  const run = (inner: Op) =>
    exportThrough(opts.out, `disk ${disk.name}`, async (w) => {
      if (onHost) await onHost.exportDisk(ctx, volume, disk, w, inner, { format: opts.format, level: opts.level });
      else await exportDiskThroughCluster(ctx, driver, k!, volume, disk, w, { format: opts.format, level: opts.level, live: opts.live }, inner);
    }).catch(async (e: unknown) => {
      throw await sourceDeleted(e, ctx, driver, volume, disk, 'it was being exported', 'the archive is incomplete', inner);
    });
  if (!opts.quiesce) return { disk, ...(await run(op)) };
  const { withAppStopped } = await import('./snapshot.js');
  // on a cancel withAppStopped starts the app again, then waits for the export to remove its helper pod
  const exported = await withAppStopped(k!, ctx, { stopTimeoutMs: opts.stopTimeoutMs, by: `export of disk ${disk.name}`, what: 'the export is incomplete; the app was started again', done: `disk ${disk.name} was exported` }, op, run);
  return { disk, ...exported };
}

/** A reader that went away (`| head`, a dropped connection) is the user's business, not a bug. */
export function outputClosed(e: unknown, what: string): unknown {
  const code = (e as { code?: string }).code;
  if (code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || /output was closed/.test(String((e as Error)?.message))) {
    if (e instanceof KompoxError) return e;
    return new KompoxError('unavailable', `the output was closed before the export of ${what} was complete; the archive is incomplete`, { code: 'export.output-closed', cause: e });
  }
  return e;
}

/** `service/provider/cluster/app`: another app's context on this app's driver. */
export function otherAppContext(ctx: AppContext, id: string, volumeName: string): AppContext {
  const parts = id.split('/');
  if (parts.length !== 4 || parts.some((p) => dnsLabelProblem(p) !== undefined)) {
    throw new KompoxError('usage', `source app "${id}" is not service/provider/cluster/app`, {
      code: 'usage.app-id',
      details: { app: id },
      hint: 'For example ops/k3s1/node1/other-app (its kompox-app tag).',
    });
  }
  const [service, provider, cluster, app] = parts as [string, string, string, string];
  // the other app's volume comes from the command line (--from-volume), not from app.volumes: said as such
  const volumeProblem = dnsLabelProblem(volumeName);
  if (volumeProblem !== undefined) {
    throw new KompoxError('usage', `source volume "${volumeName}" ${volumeProblem}`, {
      code: 'usage.volume-name',
      field: 'fromApp.volume',
      details: { volume: volumeName },
      hint: "Give the other app's volume name as its kompoxops.yml names it (app.volumes).",
    });
  }
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
  /** An archive stream (file, stdin, request body) with what is known about it. */
  archive?: ArchiveInput & { /** for messages: the file, or `stdin` */ label?: string };
  /** A provider-native disk or snapshot id. */
  fromId?: string;
  /** A disk or snapshot of another app on the same provider. */
  fromApp?: { app: string; disk?: string; snapshot?: string; volume?: string };
  /** Data path of an archive import: `host`, `cluster` or `auto` (as for export). */
  via?: string;
}

/** Creates a new disk from an archive, a provider id, or another app's disk or snapshot. */
export async function importDisk(ctx: AppContext, driver: ProviderDriver, _kube: KubeClient | undefined, opts: DiskImportUseOptions, op: Op = {}): Promise<Disk> {
  const volume = selectVolume(ctx, opts.volume);
  const name = opts.name ?? defaultDiskName(volume.name);
  const sources = [opts.archive, opts.fromId, opts.fromApp].filter((x) => x !== undefined).length;
  if (sources !== 1) {
    throw new KompoxError('usage', 'disk import needs exactly one source', {
      code: 'disk.import.source',
      hint: "Give an archive, a provider id, or another app's disk or snapshot.",
    });
  }
  await refuseExistingName(ctx, driver, volume, name, opts.name === undefined, op);
  const sizeGiB = sizeFor(ctx, driver, volume, opts.sizeGiB, op);
  return importInto(ctx, driver, _kube, volume, name, sizeGiB, opts, op).catch((e: unknown) => {
    throw interruptedSaying(e, 'no disk was created');
  });
}

/** importDisk's copy into the new disk `name`, its source checked. */
async function importInto(ctx: AppContext, driver: ProviderDriver, _kube: KubeClient | undefined, volume: AppVolume, name: string, sizeGiB: number | undefined, opts: DiskImportUseOptions, op: Op): Promise<Disk> {
  if (opts.archive) {
    const a = opts.archive;
    const { transferVia, importDiskThroughCluster } = await import('./transfer.js');
    const via = transferVia(ctx, driver, 'disk import from an archive', opts.via);
    try {
      if (via === 'cluster') {
        // like every new disk, in the app's zone (where its pods, and so the helper, run)
        const zone = appDiskZone(ctx, driver);
        const spec = { name, ...(sizeGiB !== undefined ? { sizeGiB } : {}), ...(zone !== undefined ? { zone } : {}) };
        return await importDiskThroughCluster(ctx, driver, requireKube(_kube, 'disk import through the cluster'), volume, spec, a, op);
      }
      return await requirePart(driver, 'hostTransfer', 'disk import from an archive').importDisk(ctx, volume, { name, ...(sizeGiB !== undefined ? { sizeGiB } : {}) }, a, op);
    } catch (e) {
      // Name the archive; say that nothing was created.
      if (e instanceof KompoxError && e.kind === 'integrity') {
        throw new KompoxError('integrity', `${a.label ? `${a.label}: ` : ''}${e.message}; no disk was created`, { code: e.code, hint: e.hint, cause: e });
      }
      throw e;
    }
  }
  // a copy by provider id or from another app lands in the app's zone, like every new disk
  const zone = appDiskZone(ctx, driver);
  const where = zone !== undefined ? { zone } : {};
  if (opts.fromId) return driver.disks.create(ctx, volume, { name, sizeGiB, ...where, source: { kind: 'native', id: opts.fromId } }, op);
  const from = opts.fromApp!;
  if (Boolean(from.disk) === Boolean(from.snapshot)) {
    throw new KompoxError('usage', 'a copy from another app needs exactly one source disk or snapshot', { code: 'disk.import.from-app' });
  }
  const other = otherAppContext(ctx, from.app, from.volume ?? volume.name);
  const otherVol = other.app.volumes[0]!;
  let source: Disk | Snapshot | undefined;
  if (from.disk) source = (await driver.disks.list(other, otherVol, {}, op)).find((d) => d.name === from.disk);
  else source = (await driver.snapshots.list(other, otherVol, op)).find((s) => s.name === from.snapshot);
  if (!source) {
    throw new KompoxError('notfound', `${from.disk ? 'disk' : 'snapshot'} "${from.disk ?? from.snapshot}" of app ${from.app} (volume ${otherVol.name}) not found`, {
      code: from.disk ? 'disk.notfound' : 'snapshot.notfound',
      details: { app: from.app, volume: otherVol.name },
      hint: "List that app's disks and snapshots, or name its volume.",
    });
  }
  return driver.disks.create(ctx, volume, { name, sizeGiB: sizeGiB ?? source.sizeGiB, ...where, source: { kind: from.disk ? 'disk' : 'snapshot', id: source.id } }, op);
}

export interface AttachDeployOptions extends VolumeOption {
  name: string;
  /** Redeploy even when the app does not look deployed. */
  deploy?: boolean;
  /** Rollout timeout (ms) for the redeploy. */
  timeoutMs?: number;
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
export async function attachAndDeploy(ctx: AppContext, source: AppSource, driver: ProviderDriver, kube: KubeClient | undefined, opts: AttachDeployOptions, op: Op = {}): Promise<AttachDeployResult> {
  const r = await attachDisk(ctx, driver, kube, opts, op);
  const k = kube!;
  const { appNamespace } = await import('../domain/names.js');
  const deployed = await k.get({ apiVersion: 'apps/v1', kind: 'Deployment', name: ctx.app.name, namespace: appNamespace(ctx) });
  if (!opts.deploy && !deployed) {
    logEvent(op, 'the app is not deployed; its next deploy uses the disk');
    return { ...r, released: [] };
  }
  const { deployApp, releaseOldVolumeBindings } = await import('./app-deploy.js');
  const d = await deployApp(ctx, source, k, driver, { timeoutMs: opts.timeoutMs }, op);
  const out: AttachDeployResult = { ...r, deploy: { exitCode: d.exitCode, message: d.message }, released: [] };
  if (d.exitCode !== 0) {
    logEvent(op, 'the old PersistentVolume/PersistentVolumeClaim are kept until the app runs on the new disk');
    return out;
  }
  const keep = d.changes
    .filter((c) => c.action !== 'prune' && (c.ref.kind === 'PersistentVolume' || c.ref.kind === 'PersistentVolumeClaim'))
    .map((c) => c.ref);
  const released = await releaseOldVolumeBindings(k, ctx, keep, op);
  out.released = released.map((x) => refString(x, ' '));
  return out;
}
