// Which disk is current for each app volume. The record lives on the app's
// namespace (spec): kompox.dev/disk-current-id and kompox.dev/disk-previous-id
// hold provider disk ids. For an app with several volumes, the primary volume
// (the one named `default`, else the first listed) uses exactly the spec keys;
// every other volume uses `kompox.dev/disk-current-id.{volume}` /
// `kompox.dev/disk-previous-id.{volume}`.
//
// When nothing is recorded (new namespace, new cluster: a migration), the
// current disk is the one made current last (kompox-attached-at tag on the
// disk), else the newest disk of the volume found by tag, and the caller is
// told which one was chosen. The record is written with a JSON merge patch,
// never with server-side apply, so that applying the app's manifest (which
// owns the namespace's other fields) never removes it.
import { KompoxError } from '../domain/errors.js';
import { ANN_APP, ANN_DISK_CURRENT, ANN_DISK_PREVIOUS, ANN_PROVIDER, DEFAULT_VOLUME, TAG_ATTACHED_AT, type AppContext, type AppVolume, type Disk } from '../domain/model.js';
import { appId, appLabels, appNamespace, shortHash, timestampName } from '../domain/names.js';
import type { KubeClient, KubeObject } from '../kube/types.js';
import type { ProviderDriver } from '../providers/driver.js';

export interface ResolveDisksOptions {
  /** Create and record an empty disk for a volume that has none (first deploy). */
  createMissing: boolean;
  /** Log progress lines (e.g. "created disk ..."). */
  log?: (line: string) => void;
}

/** `{volume}-{yyyymmddhhmmss}`, the volume part shortened so the name stays a DNS label. */
export function defaultDiskName(volume: string, d: Date = new Date()): string {
  return timestampName(volume.slice(0, 63 - 15).replace(/-+$/, ''), d);
}

/** The app's volumes; an app that lists none has one volume named `default`. */
export function appVolumes(ctx: AppContext): AppVolume[] {
  return ctx.app.volumes.length ? ctx.app.volumes : [{ name: DEFAULT_VOLUME, options: {} }];
}

/** `-V VOLUME`: the named volume, or the only one; an error listing them when there are several. */
export function selectVolume(ctx: AppContext, name?: string): AppVolume {
  const vols = appVolumes(ctx);
  if (name !== undefined) {
    const v = vols.find((x) => x.name === name);
    if (!v) {
      throw new KompoxError('usage', `app ${ctx.app.name} has no volume "${name}"`, { hint: `Volumes: ${vols.map((x) => x.name).join(', ')}.` });
    }
    return v;
  }
  if (vols.length > 1) {
    throw new KompoxError('usage', `app ${ctx.app.name} has ${vols.length} volumes; say which one with -V`, {
      hint: `Volumes: ${vols.map((x) => x.name).join(', ')}.`,
    });
  }
  return vols[0]!;
}

/** The volume whose disk ids use the spec's annotation keys. */
export function primaryVolume(ctx: AppContext): AppVolume {
  const vols = appVolumes(ctx);
  return vols.find((v) => v.name === DEFAULT_VOLUME) ?? vols[0]!;
}

/** Namespace annotation keys that record the current and previous disk of `volume`. */
export function diskAnnotationKeys(ctx: AppContext, volume: AppVolume): { current: string; previous: string } {
  if (volume.name === primaryVolume(ctx).name) return { current: ANN_DISK_CURRENT, previous: ANN_DISK_PREVIOUS };
  // An annotation name (after the prefix) has at most 63 characters.
  const suffix = `disk-previous-id.${volume.name}`.length > 63 ? shortHash(volume.name, 8) : volume.name;
  return { current: `${ANN_DISK_CURRENT}.${suffix}`, previous: `${ANN_DISK_PREVIOUS}.${suffix}` };
}

function namespaceRef(ctx: AppContext) {
  return { apiVersion: 'v1', kind: 'Namespace', name: appNamespace(ctx) };
}

/** The app's namespace, created (server-side apply, the converter's labels and annotations) when missing. */
export async function ensureAppNamespace(kube: KubeClient, ctx: AppContext): Promise<KubeObject> {
  const existing = await kube.get(namespaceRef(ctx));
  if (existing) return existing;
  return kube.apply({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: appNamespace(ctx), labels: appLabels(ctx), annotations: { [ANN_APP]: appId(ctx), [ANN_PROVIDER]: ctx.provider.driver } },
  });
}

export interface DiskRecord {
  currentId?: string;
  previousId?: string;
}

/** The recorded current/previous disk ids of a volume (empty when the namespace does not exist). */
export async function readDiskRecord(kube: KubeClient, ctx: AppContext, volume: AppVolume): Promise<DiskRecord> {
  const ns = await kube.get(namespaceRef(ctx));
  const ann = ns?.metadata.annotations ?? {};
  const keys = diskAnnotationKeys(ctx, volume);
  const r: DiskRecord = {};
  if (ann[keys.current]) r.currentId = ann[keys.current];
  if (ann[keys.previous]) r.previousId = ann[keys.previous];
  return r;
}

/**
 * Records `diskId` as the volume's current disk; the disk it replaces becomes
 * the previous one (the rollback target). Recording the current disk again
 * changes nothing.
 */
export async function recordCurrentDisk(kube: KubeClient, ctx: AppContext, volume: AppVolume, diskId: string): Promise<DiskRecord> {
  await ensureAppNamespace(kube, ctx);
  const before = await readDiskRecord(kube, ctx, volume);
  if (before.currentId === diskId) return before;
  const keys = diskAnnotationKeys(ctx, volume);
  const annotations: Record<string, string | null> = { [keys.current]: diskId };
  if (before.currentId) annotations[keys.previous] = before.currentId;
  await kube.mergePatch(namespaceRef(ctx), { metadata: { annotations } });
  return { currentId: diskId, previousId: before.currentId ?? before.previousId };
}

export interface CurrentChoice {
  disk?: Disk;
  /**
   * recorded: named by the namespace; attached: nothing (valid) recorded, the
   * disk made current last (its kompox-attached-at tag); newest: nothing
   * recorded and no disk carries that tag, the newest by creation; none: no disk.
   */
  how: 'recorded' | 'attached' | 'newest' | 'none';
  /** A recorded id that names no existing disk. */
  staleId?: string;
}

/**
 * Picks the current disk from the provider's list and the namespace record.
 * Without a record (a new cluster: migration, failover) the disk the app used
 * last wins, not the newest: after a rollback, or with a spare or restored
 * disk never attached, the newest disk is not the app's data.
 */
export function chooseCurrent(disks: Disk[], record: DiskRecord): CurrentChoice {
  if (record.currentId) {
    const d = disks.find((x) => x.id === record.currentId);
    if (d) return { disk: d, how: 'recorded' };
  }
  const desc = (a: string, b: string) => (a < b ? 1 : a > b ? -1 : 0);
  const attached = disks
    .filter((d) => d.tags[TAG_ATTACHED_AT])
    .sort((a, b) => desc(a.tags[TAG_ATTACHED_AT]!, b.tags[TAG_ATTACHED_AT]!) || desc(a.name, b.name))[0];
  const newest = [...disks].sort((a, b) => desc(a.createdAt, b.createdAt) || desc(a.name, b.name))[0];
  const choice: CurrentChoice = attached ? { disk: attached, how: 'attached' } : newest ? { disk: newest, how: 'newest' } : { how: 'none' };
  if (record.currentId) choice.staleId = record.currentId;
  return choice;
}

/** Explains a choice that was not simply read from the record (migration, stale record). */
export function describeChoice(volume: AppVolume, c: CurrentChoice): string | undefined {
  if (c.how === 'recorded') return undefined;
  const stale = c.staleId ? `the recorded disk ${c.staleId} no longer exists; ` : 'no current disk is recorded; ';
  if (c.how === 'none') return c.staleId ? `volume ${volume.name}: ${stale}no disk found` : undefined;
  const d = c.disk!;
  if (c.how === 'attached') return `volume ${volume.name}: ${stale}using the disk attached last, ${d.name} (attached ${d.tags[TAG_ATTACHED_AT]}, ${d.id})`;
  return `volume ${volume.name}: ${stale}using the newest disk ${d.name} (created ${d.createdAt}, ${d.id})`;
}

/**
 * Tags the disk as made current now (driver permitting). Only a hint for a
 * later move to another cluster: a failure is reported, not fatal, because
 * the namespace record, already written, is what counts here.
 */
export async function markAttached(ctx: AppContext, driver: ProviderDriver, volume: AppVolume, disk: Disk, log?: (line: string) => void): Promise<void> {
  if (!driver.diskMarkAttached) return;
  try {
    await driver.diskMarkAttached(ctx, volume, disk, new Date().toISOString());
  } catch (e) {
    log?.(`note: could not tag disk ${disk.name} as attached (${(e as Error).message}); after a move to another cluster, check which disk is chosen`);
  }
}

/** Disks of a volume, oldest first, with `current` set on the current one. */
export async function disksWithCurrent(
  ctx: AppContext,
  driver: ProviderDriver,
  kube: KubeClient | undefined,
  volume: AppVolume,
  opts: { usage?: boolean } = {},
): Promise<{ disks: Disk[]; choice: CurrentChoice; record: DiskRecord }> {
  const disks = await driver.diskList(ctx, volume, opts);
  const record = kube ? await readDiskRecord(kube, ctx, volume) : {};
  const choice = chooseCurrent(disks, record);
  const marked = disks.map((d) => ({ ...d, current: d.id === choice.disk?.id }));
  return { disks: marked, choice: { ...choice, disk: marked.find((d) => d.current) }, record };
}

/**
 * The current disk of every app volume, read from the namespace annotations
 * and the provider's disk list; with createMissing, creates an empty disk for
 * a volume that has none and records it (and records a disk chosen as the
 * newest). Never creates a disk when one exists.
 */
export async function resolveCurrentDisks(
  ctx: AppContext,
  driver: ProviderDriver,
  kube: KubeClient | undefined,
  opts: ResolveDisksOptions,
): Promise<Record<string, Disk | undefined>> {
  const out: Record<string, Disk | undefined> = {};
  // e.g. K3s learns the node name for the PVs' node affinity
  if (kube && driver.observeCluster) await driver.observeCluster(ctx, kube).catch(() => undefined);
  for (const volume of appVolumes(ctx)) {
    const { choice } = await disksWithCurrent(ctx, driver, kube, volume);
    const note = describeChoice(volume, choice);
    if (note) opts.log?.(note);
    let disk = choice.disk;
    if (!disk && opts.createMissing) {
      const { defaultGiB, minGiB } = driver.diskSizeDefaults(ctx, volume);
      const sizeGiB = Math.max(volume.sizeGiB ?? defaultGiB, minGiB);
      if (volume.sizeGiB !== undefined && volume.sizeGiB < minGiB) {
        opts.log?.(`volume ${volume.name}: ${volume.sizeGiB} GiB is below the ${driver.driver} minimum; creating ${minGiB} GiB`);
      }
      disk = await driver.diskCreate(ctx, volume, { name: defaultDiskName(volume.name), sizeGiB });
      opts.log?.(`volume ${volume.name}: created empty disk ${disk.name} (${disk.sizeGiB} GiB, ${disk.id})`);
    }
    if (disk && kube && opts.createMissing && choice.how !== 'recorded') {
      await recordCurrentDisk(kube, ctx, volume, disk.id);
      await markAttached(ctx, driver, volume, disk, opts.log);
    }
    out[volume.name] = disk ? { ...disk, current: true } : undefined;
  }
  return out;
}
