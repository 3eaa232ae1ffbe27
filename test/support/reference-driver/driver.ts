// The reference block-storage driver: the ProviderDriver port implemented the
// way a cloud driver implements it, over the in-memory cloud (./cloud.ts).
// It is what the driver contract suite (test/providers/contract/) runs
// against besides K3s, and the model for AKS/EKS/GKE/OKE:
//   - stateless: every answer is read back from the cloud (tags); the driver
//     object holds only the cloud client;
//   - deterministic resource names (volume scope hash + Kompox name), so a
//     name is taken in the cloud itself and a retry finds what it made;
//   - ownership by tags (kompox-app, -volume, -name, -created-at); lists
//     filter them (tag filters cannot express "any cluster of this app");
//   - a disk or snapshot being made carries TAG_PENDING until complete: lists
//     never show it, a failure or a cancel deletes it, so nothing half-made
//     is ever visible (a pending disk asked for by DiskCreateSpec.pending
//     keeps the tag until reveal);
//   - zones are given in the node label notation (refregion-1) and mapped to
//     the cloud's ("1"); options are the SKU only; everything else a cloud
//     refuses becomes a KompoxError naming what to change;
//   - no hostTransfer: a cloud driver cannot read a disk's files itself;
//     export and import go through the cluster (src/usecases/transfer.ts).
import { KompoxError, interruptedError, unsupported } from '../../../src/domain/errors.js';
import { emit, throwIfAborted, type Op } from '../../../src/domain/events.js';
import { TAG_APP, TAG_ATTACHED_AT, TAG_NAME, TAG_PENDING, TAG_VOLUME, lookupSetting, type AppContext, type AppVolume, type Disk, type DriverName, type Snapshot } from '../../../src/domain/model.js';
import { dnsLabelProblem, nowRfc3339, ownershipTags, shortHash, tagMatchesApp } from '../../../src/domain/names.js';
import {
  DISK_ATTACHED,
  diskSizeDefaults,
  type DiskCreateSpec,
  type DiskListOptions,
  type DisksPart,
  type DriverVolumes,
  type NodePoolsPart,
  type ProviderDriver,
  type SnapshotsPart,
} from '../../../src/domain/ports/driver.js';
import { CloudError, type CloudDisk, type CloudOperation, type CloudSnapshot, type ReferenceCloud } from './cloud.js';
import { referenceVolumes } from './volume.js';

/** Provider setting naming the resource group Kompox keeps the provider's disks and snapshots in. */
export const RESOURCE_GROUP_SETTING = 'REFERENCE_RESOURCE_GROUP';
/** The option a disk create accepts (the cloud's SKU); any other option is `unsupported`. */
export const SKU_OPTION = 'sku';

export interface ReferenceDriverOptions {
  /** The driver slot it stands in (DriverName is closed); default `aks`. Messages name it. */
  name?: DriverName;
  /** The node pools part (test/support/reference-nodepools.ts); absent: not supported. */
  nodePools?: NodePoolsPart;
  /** Volume facts; default the reference ones (./volume.ts). */
  volumes?: DriverVolumes;
}

let progressIds = 0;

function withoutPending(tags: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(tags).filter(([k]) => k !== TAG_PENDING));
}

export function referenceDriver(cloud: ReferenceCloud, opts: ReferenceDriverOptions = {}): ProviderDriver {
  const name: DriverName = opts.name ?? 'aks';
  const volumes = opts.volumes ?? referenceVolumes(cloud.region);

  const resourceGroup = (ctx: AppContext): string => lookupSetting(ctx, RESOURCE_GROUP_SETTING)?.value ?? `kompox-${ctx.provider.name}`;
  /** The cloud name of a Kompox disk or snapshot: the same for every cluster of the app, so it is found again after a move. */
  const resourceName = (ctx: AppContext, volume: AppVolume, kompoxName: string): string =>
    `k4x-${shortHash(`${ctx.service.name}/${ctx.provider.name}/${ctx.app.name}/${volume.name}`, 10)}-${kompoxName}`;

  const owned = (ctx: AppContext, volume: AppVolume, tags: Record<string, string>): boolean => tagMatchesApp(tags[TAG_APP], ctx) && tags[TAG_VOLUME] === volume.name;

  /** Node label notation (refregion-1) → the cloud's ("1"). */
  const cloudZone = (zone: string): string => {
    const prefix = `${cloud.region}-`;
    const z = zone.startsWith(prefix) ? zone.slice(prefix.length) : undefined;
    if (z === undefined || !cloud.zones.includes(z)) {
      throw new KompoxError('usage', `zone "${zone}" is not a zone of region ${cloud.region}`, {
        code: 'disk.zone.unknown',
        details: { zone, zones: cloud.zones.map((x) => prefix + x) },
        hint: `Zones: ${cloud.zones.map((x) => prefix + x).join(', ')}.`,
      });
    }
    return z;
  };

  const toDisk = (d: CloudDisk): Disk => {
    const disk: Disk = { name: d.tags[TAG_NAME] ?? d.name, volume: d.tags[TAG_VOLUME] ?? '', id: d.id, sizeGiB: d.sizeGiB, createdAt: d.tags['kompox-created-at'] ?? nowRfc3339(new Date(d.timeCreated)), tags: { ...d.tags } };
    if (d.zone !== undefined) disk.zone = `${cloud.region}-${d.zone}`;
    if (d.tags[TAG_PENDING] !== undefined) disk.pending = true;
    return disk;
  };

  const toSnapshot = (s: CloudSnapshot): Snapshot => ({
    name: s.tags[TAG_NAME] ?? s.name,
    volume: s.tags[TAG_VOLUME] ?? '',
    id: s.id,
    sizeGiB: s.sizeGiB,
    createdAt: s.tags['kompox-created-at'] ?? nowRfc3339(new Date(s.timeCreated)),
    sourceDiskId: s.sourceDiskId,
    tags: { ...s.tags },
  });

  const sortByCreated = <T extends { createdAt: string; name: string }>(xs: T[]): T[] =>
    xs.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.name < b.name ? -1 : 1));

  const checkName = (what: 'disk' | 'snapshot', n: string): void => {
    const problem = dnsLabelProblem(n);
    if (problem) throw new KompoxError('usage', `${what} name "${n}" ${problem}`, { code: `${what}.name.invalid` });
  };

  /** Cloud refusals as the errors users act on. */
  const cloudFailure = (e: unknown, what: { disk?: string; snapshot?: string; volume: string }): unknown => {
    if (!(e instanceof CloudError)) return e;
    const subject = what.snapshot !== undefined ? `snapshot "${what.snapshot}"` : `disk "${what.disk}"`;
    switch (e.code) {
      case 'ResourceExists':
        return new KompoxError('conflict', `${subject} already exists for volume ${what.volume}`, {
          code: what.snapshot !== undefined ? 'snapshot.exists' : 'disk.exists',
          details: { ...what },
          hint: 'Choose another name.',
          cause: e,
        });
      case 'SourceNotFound':
        return new KompoxError('notfound', `the source of ${subject} does not exist in the ${name} cloud (${e.message})`, { code: 'disk.source.notfound', cause: e });
      case 'SourceNotReady':
        return new KompoxError('conflict', `the source of ${subject} is still being created; retry when it is complete`, { code: 'disk.source.notready', cause: e });
      case 'InvalidSku':
        return new KompoxError('usage', `${subject}: ${e.message}`, { code: 'disk.option.invalid', details: { option: SKU_OPTION }, cause: e });
      case 'InvalidSize':
        return new KompoxError('usage', `${subject}: ${e.message}`, { code: 'usage.size', cause: e });
      case 'InvalidZone':
        return new KompoxError('usage', `${subject}: ${e.message}`, { code: 'disk.zone.unknown', cause: e });
      case 'VolumeInUse':
        return new KompoxError('conflict', `${subject} is still attached to a node; refusing to delete it`, {
          code: DISK_ATTACHED,
          details: { ...what },
          hint: 'Stop what uses it (redeploy or destroy the app) and retry once it is detached.',
          cause: e,
        });
      default:
        return new KompoxError('unavailable', `the ${name} cloud refused: ${e.message}`, { cause: e });
    }
  };

  /**
   * Polls a long-running operation to its end, with progress events. A
   * cancel stops waiting and deletes what the operation was making (it
   * carries TAG_PENDING until then: never listed meanwhile).
   */
  const complete = async (operation: CloudOperation, label: string, op: Op, remove: () => Promise<void>): Promise<void> => {
    const id = `ref${++progressIds}`;
    try {
      for (;;) {
        throwIfAborted(op, `${label} was not made`);
        const state = await operation.poll();
        const end = state === 'Succeeded';
        emit(op, { type: 'progress', id, label, done: operation.done, total: operation.total, unit: 'items', ...(end ? { end: true } : {}) });
        if (end) return;
      }
    } catch (e) {
      await remove().catch(() => undefined);
      throw e instanceof KompoxError ? e : op.signal?.aborted ? interruptedError(`interrupted: ${label} was not made`, { cause: e }) : e;
    }
  };

  const findSource = async (spec: DiskCreateSpec): Promise<{ sizeGiB: number; zone?: string; id: string } | undefined> => {
    const src = spec.source;
    if (!src) return undefined;
    const wantDisk = src.kind === 'disk' || src.kind === 'native';
    const wantSnapshot = src.kind === 'snapshot' || src.kind === 'native';
    const found =
      (wantDisk ? await cloud.getDisk(src.id).catch(() => undefined) : undefined) ??
      (wantSnapshot ? await cloud.getSnapshot(src.id).catch(() => undefined) : undefined);
    if (!found) {
      throw new KompoxError('notfound', `${src.kind === 'native' ? 'source' : src.kind} ${src.id} does not exist in the ${name} cloud`, {
        code: 'disk.source.notfound',
        details: { source: src.id },
        hint: 'Give the id a disk or snapshot list shows (or the cloud\'s own id of a disk or snapshot).',
      });
    }
    return { id: found.id, sizeGiB: found.sizeGiB, ...('zone' in found && found.zone !== undefined ? { zone: found.zone } : {}) };
  };

  const disks: DisksPart = {
    async list(ctx, volume, listOpts: DiskListOptions, op) {
      throwIfAborted(op);
      const all = await cloud.listDisks(resourceGroup(ctx));
      const out = all.filter((d) => owned(ctx, volume, d.tags) && (listOpts.pending ? d.tags[TAG_PENDING] !== undefined : d.tags[TAG_PENDING] === undefined));
      return sortByCreated(out.map(toDisk));
    },

    async create(ctx, volume, spec, op) {
      checkName('disk', spec.name);
      throwIfAborted(op, `disk ${spec.name} was not made`);
      for (const key of Object.keys(spec.options ?? {})) if (key !== SKU_OPTION) throw unsupported(`disk option ${key}`, name);
      const zone = spec.zone !== undefined ? cloudZone(spec.zone) : undefined;
      const source = await findSource(spec);
      const cls = volumes.volumeClass(ctx, volume);
      const { defaultGiB, minGiB } = diskSizeDefaults(ctx, cls, volume);
      const sizeGiB = Math.max(spec.sizeGiB ?? source?.sizeGiB ?? defaultGiB, minGiB);
      const createdAt = nowRfc3339();
      const tags = { ...ownershipTags(ctx, volume.name, spec.name, createdAt), [TAG_PENDING]: createdAt };
      const what = { disk: spec.name, volume: volume.name };
      let operation: CloudOperation;
      try {
        operation = await cloud.beginCreateDisk(resourceGroup(ctx), {
          name: resourceName(ctx, volume, spec.name),
          sku: spec.options?.[SKU_OPTION] ?? cls.parameters.skuName ?? cloud.skus[0]!,
          sizeGiB,
          tags,
          ...(zone !== undefined ? { zone } : source?.zone !== undefined ? { zone: source.zone } : {}),
          ...(source ? { sourceId: source.id } : {}),
        });
      } catch (e) {
        throw cloudFailure(e, what);
      }
      const id = operation.resourceId;
      await complete(operation, `disk ${spec.name}`, op, () => cloud.deleteDisk(id));
      if (spec.pending) return toDisk(await cloud.getDisk(id));
      const visible = withoutPending(tags);
      try {
        return toDisk(await cloud.updateDiskTags(id, visible));
      } catch (e) {
        await cloud.deleteDisk(id).catch(() => undefined);
        throw cloudFailure(e, what);
      }
    },

    async reveal(ctx, volume, disk, op) {
      throwIfAborted(op);
      const d = await cloud.getDisk(disk.id).catch(() => undefined);
      if (!d || !owned(ctx, volume, d.tags)) throw new KompoxError('notfound', `disk ${disk.name} (${disk.id}) no longer exists`, { code: 'disk.notfound' });
      if (d.tags[TAG_PENDING] === undefined) return toDisk(d);
      return toDisk(await cloud.updateDiskTags(d.id, withoutPending(d.tags)));
    },

    async delete(_ctx, volume, disk, op) {
      throwIfAborted(op, `disk ${disk.name} was not deleted`);
      const d = await cloud.getDisk(disk.id).catch((e: unknown) => {
        if (e instanceof CloudError && e.status === 404) return undefined;
        throw e;
      });
      if (!d) return; // already gone
      if (d.tags[TAG_APP] === undefined) {
        throw new KompoxError('conflict', `${disk.id} has no ${TAG_APP} tag; it is not a Kompox disk, refusing to delete it`, { code: 'disk.delete.foreign', details: { id: disk.id } });
      }
      try {
        await cloud.deleteDisk(d.id);
      } catch (e) {
        if (e instanceof CloudError && e.status === 404) return;
        throw cloudFailure(e, { disk: disk.name, volume: volume.name });
      }
    },

    async markAttached(_ctx, _volume, disk, at, op) {
      throwIfAborted(op);
      const d = await cloud.getDisk(disk.id).catch(() => undefined);
      if (!d) throw new KompoxError('notfound', `disk ${disk.name} (${disk.id}) no longer exists`, { code: 'disk.notfound' });
      await cloud.updateDiskTags(d.id, { ...d.tags, [TAG_ATTACHED_AT]: at });
    },
  };

  const snapshots: SnapshotsPart = {
    async list(ctx, volume, op) {
      throwIfAborted(op);
      const all = await cloud.listSnapshots(resourceGroup(ctx));
      return sortByCreated(all.filter((s) => owned(ctx, volume, s.tags) && s.tags[TAG_PENDING] === undefined).map(toSnapshot));
    },

    async create(ctx, volume, disk, snapName, op) {
      checkName('snapshot', snapName);
      throwIfAborted(op, `snapshot ${snapName} was not made`);
      const createdAt = nowRfc3339();
      const tags = { ...ownershipTags(ctx, volume.name, snapName, createdAt), [TAG_PENDING]: createdAt };
      const what = { snapshot: snapName, volume: volume.name };
      let operation: CloudOperation;
      try {
        operation = await cloud.beginCreateSnapshot(resourceGroup(ctx), { name: resourceName(ctx, volume, snapName), sourceDiskId: disk.id, tags });
      } catch (e) {
        throw cloudFailure(e, what);
      }
      const id = operation.resourceId;
      await complete(operation, `snapshot ${snapName}`, op, () => cloud.deleteSnapshot(id));
      const visible = withoutPending(tags);
      return toSnapshot(await cloud.updateSnapshotTags(id, visible));
    },

    async delete(_ctx, _volume, snapshot, op) {
      throwIfAborted(op, `snapshot ${snapshot.name} was not deleted`);
      await cloud.deleteSnapshot(snapshot.id).catch((e: unknown) => {
        if (e instanceof CloudError && e.status === 404) return; // already gone
        throw e;
      });
    },
  };

  return {
    name,
    capabilities: { atomicSnapshots: true, zones: true, nodePools: Boolean(opts.nodePools), hostTransfer: false, archiveSnapshots: false },
    cluster: {},
    ...(opts.nodePools ? { nodePools: opts.nodePools } : {}),
    volumeClass: (ctx, volume) => volumes.volumeClass(ctx, volume),
    pvSource: (ctx, volume, disk, facts) => volumes.pvSource(ctx, volume, disk, facts),
    disks,
    snapshots,
  };
}
