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
// owns the namespace's other fields) never removes it; the patch carries the
// resourceVersion it was computed from, so two operations at once (two server
// requests) never lose a record: the later one gets 409 Conflict, reads again
// and retries.
import { KompoxError } from '../domain/errors.js';
import { logEvent, type Op } from '../domain/events.js';
import { ANN_APP, ANN_DISK_CURRENT, ANN_DISK_PREVIOUS, ANN_PROVIDER, DEFAULT_VOLUME, TAG_ATTACHED_AT, appVolumes, type AppContext, type AppVolume, type Disk } from '../domain/model.js';
import { appId, appLabels, appNamespace, shortHash, timestampName } from '../domain/names.js';
import type { KubeClient, KubeObject } from '../domain/ports/kube.js';
import { diskSizeDefaults, type ProviderDriver } from '../domain/ports/driver.js';

export interface ResolveDisksOptions {
  /** Create and record an empty disk for a volume that has none (first deploy). */
  createMissing: boolean;
}

/** The hint when a name Kompox chose from the time is taken: another was made within the same second. */
export const GENERATED_NAME_TAKEN = 'The name was made from the time to the second, and another was made in the same second: run it again, or give a name.';

/** `{volume}-{yyyymmddhhmmss}`, the volume part shortened so the name stays a DNS label. */
export function defaultDiskName(volume: string, d: Date = new Date()): string {
  return timestampName(volume.slice(0, 63 - 15).replace(/-+$/, ''), d);
}

export { appVolumes };

/** `-V VOLUME`: the named volume, or the only one; an error listing them when there are several. */
export function selectVolume(ctx: AppContext, name?: string): AppVolume {
  const vols = appVolumes(ctx);
  if (name !== undefined) {
    const v = vols.find((x) => x.name === name);
    if (!v) {
      throw new KompoxError('usage', `app ${ctx.app.name} has no volume "${name}"`, {
        code: 'volume.notfound',
        details: { app: ctx.app.name, volume: name, volumes: vols.map((x) => x.name) },
        hint: `Volumes: ${vols.map((x) => x.name).join(', ')}.`,
      });
    }
    return v;
  }
  if (vols.length > 1) {
    throw new KompoxError('usage', `app ${ctx.app.name} has ${vols.length} volumes; say which one`, {
      code: 'volume.ambiguous',
      details: { app: ctx.app.name, volumes: vols.map((x) => x.name) },
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
  return recordOf(await kube.get(namespaceRef(ctx)), diskAnnotationKeys(ctx, volume));
}

/** How often a record update is retried after 409 Conflict (someone else wrote the namespace meanwhile). */
const RECORD_ATTEMPTS = 8;

function recordOf(ns: KubeObject | undefined, keys: { current: string; previous: string }): DiskRecord {
  const ann = ns?.metadata.annotations ?? {};
  const r: DiskRecord = {};
  if (ann[keys.current]) r.currentId = ann[keys.current];
  if (ann[keys.previous]) r.previousId = ann[keys.previous];
  return r;
}

/**
 * Records `diskId` as the volume's current disk; the disk it replaces becomes
 * the previous one (the rollback target). Recording the current disk again
 * changes nothing. The patch is conditional on the namespace's
 * resourceVersion; on 409 Conflict the record is read again and the update
 * recomputed, so a concurrent update is never lost.
 */
export async function recordCurrentDisk(kube: KubeClient, ctx: AppContext, volume: AppVolume, diskId: string): Promise<DiskRecord> {
  const keys = diskAnnotationKeys(ctx, volume);
  return retryOnRecordConflict(async () => {
    const ns = await ensureAppNamespace(kube, ctx);
    const before = recordOf(ns, keys);
    if (before.currentId === diskId) return before;
    const annotations: Record<string, string | null> = { [keys.current]: diskId };
    if (before.currentId) annotations[keys.previous] = before.currentId;
    await kube.mergePatch(namespaceRef(ctx), { metadata: { resourceVersion: ns.metadata.resourceVersion, annotations } });
    return { currentId: diskId, previousId: before.currentId ?? before.previousId };
  });
}

/** Runs `attempt` (read the record, patch it conditionally) again on 409 Conflict, up to RECORD_ATTEMPTS times. */
async function retryOnRecordConflict<T>(attempt: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (e) {
      if (!(e instanceof KompoxError && e.code === 'kube.conflict') || n >= RECORD_ATTEMPTS) throw e;
    }
  }
}

/**
 * Puts the record back to `before` if it still names `diskId` as current (an
 * attach that found its disk deleted under it); conditional on the
 * namespace's resourceVersion and retried on 409 Conflict, like
 * recordCurrentDisk. A record someone changed since is left as it is.
 */
export async function revertCurrentDisk(kube: KubeClient, ctx: AppContext, volume: AppVolume, diskId: string, before: DiskRecord): Promise<void> {
  const keys = diskAnnotationKeys(ctx, volume);
  await retryOnRecordConflict(async () => {
    const ns = await kube.get(namespaceRef(ctx));
    if (!ns || recordOf(ns, keys).currentId !== diskId) return;
    const annotations: Record<string, string | null> = { [keys.current]: before.currentId ?? null, [keys.previous]: before.previousId ?? null };
    await kube.mergePatch(namespaceRef(ctx), { metadata: { resourceVersion: ns.metadata.resourceVersion, annotations } });
  });
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
export async function markAttached(ctx: AppContext, driver: ProviderDriver, volume: AppVolume, disk: Disk, op: Op): Promise<void> {
  if (!driver.disks.markAttached) return;
  try {
    await driver.disks.markAttached(ctx, volume, disk, new Date().toISOString(), op);
  } catch (e) {
    logEvent(op, `note: could not tag disk ${disk.name} as attached (${(e as Error).message}); after a move to another cluster, check which disk is chosen`);
  }
}

/** Disks of a volume, oldest first, with `current` set on the current one. */
export async function disksWithCurrent(
  ctx: AppContext,
  driver: ProviderDriver,
  kube: KubeClient | undefined,
  volume: AppVolume,
  opts: { usage?: boolean },
  op: Op,
): Promise<{ disks: Disk[]; choice: CurrentChoice; record: DiskRecord }> {
  const disks = await driver.disks.list(ctx, volume, opts, op);
  const record = kube ? await readDiskRecord(kube, ctx, volume) : {};
  const choice = chooseCurrent(disks, record);
  const marked = disks.map((d) => ({ ...d, current: d.id === choice.disk?.id }));
  return { disks: marked, choice: { ...choice, disk: marked.find((d) => d.current) }, record };
}

/**
 * The zone a new disk of the app is created in: the first of
 * app.deployment.zone, on drivers whose disks live in zones (undefined
 * otherwise: the driver decides, e.g. a K3s disk lives on its node).
 */
export function appDiskZone(ctx: AppContext, driver: Pick<ProviderDriver, 'capabilities'>): string | undefined {
  return driver.capabilities.zones ? ctx.app.deployment?.zones?.[0] : undefined;
}

/** Where a new disk of the app goes, as a note: `zone Z` (and why, when the app names several). */
export function appZoneNote(ctx: AppContext, zone: string): string {
  const zones = ctx.app.deployment?.zones ?? [];
  return zones.length > 1 ? `zone ${zone} (the first of app.deployment.zone ${zones.join(', ')})` : `zone ${zone}`;
}

/** The current disk chosen for one app volume (read-only; see settleCurrentDisks). */
export interface VolumeChoice {
  volume: AppVolume;
  choice: CurrentChoice;
}

/**
 * Which disk is current for every app volume, read from the namespace
 * annotations and the provider's disk list; writes nothing. Notes (a
 * migration's pick, a stale record) go to the Op.
 */
export async function readCurrentDisks(ctx: AppContext, driver: ProviderDriver, kube: KubeClient | undefined, op: Op = {}): Promise<VolumeChoice[]> {
  const out: VolumeChoice[] = [];
  for (const volume of appVolumes(ctx)) {
    const { choice } = await disksWithCurrent(ctx, driver, kube, volume, {}, op);
    const note = describeChoice(volume, choice);
    if (note) logEvent(op, note);
    out.push({ volume, choice });
  }
  return out;
}

/** The chosen disks by volume name (undefined: the volume has none yet). */
export function chosenDisks(choices: VolumeChoice[]): Record<string, Disk | undefined> {
  return Object.fromEntries(choices.map(({ volume, choice }) => [volume.name, choice.disk ? { ...choice.disk, current: true } : undefined]));
}

/**
 * Settles the choices of readCurrentDisks: with createMissing, creates an
 * empty disk (in the app's zone) for a volume that has none and records it,
 * and records a disk that was chosen rather than read from the record. Never
 * creates a disk when one exists.
 */
export async function settleCurrentDisks(
  ctx: AppContext,
  driver: ProviderDriver,
  kube: KubeClient | undefined,
  choices: VolumeChoice[],
  opts: ResolveDisksOptions,
  op: Op = {},
): Promise<Record<string, Disk | undefined>> {
  const out: Record<string, Disk | undefined> = {};
  const zone = appDiskZone(ctx, driver);
  for (const { volume, choice } of choices) {
    let disk = choice.disk;
    if (!disk && opts.createMissing) {
      const { defaultGiB, minGiB } = diskSizeDefaults(ctx, driver.volumeClass(ctx, volume), volume);
      const sizeGiB = Math.max(volume.sizeGiB ?? defaultGiB, minGiB);
      if (volume.sizeGiB !== undefined && volume.sizeGiB < minGiB) {
        logEvent(op, `volume ${volume.name}: ${volume.sizeGiB} GiB is below the ${driver.name} minimum; creating ${minGiB} GiB`);
      }
      disk = await driver.disks.create(ctx, volume, { name: defaultDiskName(volume.name), sizeGiB, ...(zone ? { zone } : {}) }, op);
      logEvent(op, `volume ${volume.name}: created empty disk ${disk.name} (${disk.sizeGiB} GiB${zone ? `, ${appZoneNote(ctx, zone)}` : ''}, ${disk.id})`);
    }
    if (disk && kube && opts.createMissing && choice.how !== 'recorded') {
      await recordCurrentDisk(kube, ctx, volume, disk.id);
      await markAttached(ctx, driver, volume, disk, op);
    }
    out[volume.name] = disk ? { ...disk, current: true } : undefined;
  }
  return out;
}

/**
 * The current disk of every app volume (readCurrentDisks), and with
 * createMissing, an empty disk created and recorded for a volume that has
 * none (settleCurrentDisks).
 */
export async function resolveCurrentDisks(
  ctx: AppContext,
  driver: ProviderDriver,
  kube: KubeClient | undefined,
  opts: ResolveDisksOptions,
  op: Op = {},
): Promise<Record<string, Disk | undefined>> {
  return settleCurrentDisks(ctx, driver, kube, await readCurrentDisks(ctx, driver, kube, op), opts, op);
}
