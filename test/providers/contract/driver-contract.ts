// The driver contract: what every ProviderDriver must do with disks and
// snapshots, run against a DriverHarness (./harness.ts). test/providers/
// contract.test.ts runs it against the K3s driver and the in-memory
// reference driver; each cloud driver runs it against its own fake.
//
// Pure driver behaviour is tested through the port (driver.disks / .snapshots);
// what a use case adds (the current-disk refusal, the PV check, the app's
// zone, restore always into a new disk) is tested through the use case, so a
// driver cannot pass by implementing it differently. A part a driver does not
// offer is skipped with the reason in the test's name and skip message; a
// part it says it does not support must fail with the typed `unsupported`
// error. Every test makes its own app: none builds on another.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { after, before, describe, it, type TestContext } from 'node:test';
import { KompoxError } from '../../../src/domain/errors.js';
import type { KompoxEvent, Op } from '../../../src/domain/events.js';
import { TAG_APP, TAG_ATTACHED_AT, TAG_CREATED_AT, TAG_NAME, TAG_VOLUME, type AppContext, type Disk } from '../../../src/domain/model.js';
import { appId } from '../../../src/domain/names.js';
import { pvZones } from '../../../src/domain/placement.js';
import { DISK_ATTACHED, NO_CLUSTER_FACTS } from '../../../src/domain/ports/driver.js';
import { attachDisk, createDisk, deleteDisk, exportDisk, importDisk, listDisks } from '../../../src/usecases/disk.js';
import { readClusterFacts } from '../../../src/usecases/pv-sources.js';
import { createSnapshot, exportSnapshot, restoreSnapshot } from '../../../src/usecases/snapshot.js';
import type { DriverHarness, DriverWorld, Files } from './harness.js';

/** A KompoxError of `kind` (and `code`, when given). */
function typed(kind: string, code?: string) {
  return (e: unknown) => {
    assert.ok(e instanceof KompoxError, `expected a KompoxError ${kind}${code ? ` ${code}` : ''}, got ${String((e as Error)?.stack ?? e)}`);
    assert.equal(e.kind, kind, `${e.code}: ${e.message}`);
    if (code !== undefined) assert.equal(e.code, code, e.message);
    return true;
  };
}

/** Names, sorted: lists are ordered by creation time, which a fast test cannot tell apart (seconds). */
const names = (xs: { name: string }[]) => xs.map((x) => x.name).sort();

/**
 * Content big enough that every driver reports progress before the end
 * (several files, a few MiB of incompressible bytes), so a cancel lands in
 * the middle of the operation.
 */
function bulkFiles(): Files {
  const out: Files = { 'small.txt': 'small\n' };
  for (let i = 0; i < 4; i++) out[`blob-${i}.bin`] = randomBytes(768 * 1024).toString('base64');
  return out;
}

/**
 * An Op whose signal is aborted at the first progress event that reports
 * work done but not the end: the operation is cancelled mid-way.
 * `fired()` proves that it was.
 */
function abortMidway(): { op: Op; fired(): boolean } {
  const ac = new AbortController();
  let fired = false;
  const events = (e: KompoxEvent) => {
    if (!fired && e.type === 'progress' && e.done > 0 && !e.end) {
      fired = true;
      ac.abort();
    }
  };
  return { op: { signal: ac.signal, events }, fired: () => fired };
}

export function driverContract(h: DriverHarness): void {
  describe(`driver contract: ${h.label}`, () => {
    let w: DriverWorld;
    before(async () => {
      w = await h.start();
    });
    after(async () => w?.close());

    const vol = (ctx: AppContext) => ctx.app.volumes[0]!;
    const list = (ctx: AppContext, o: { pending?: boolean } = {}) => w.driver.disks.list(ctx, vol(ctx), o, {});
    const make = (ctx: AppContext, name: string, over: Partial<Parameters<DriverWorld['driver']['disks']['create']>[2]> = {}, op: Op = {}) =>
      w.driver.disks.create(ctx, vol(ctx), { name, ...over }, op);
    /** A disk holding `files`. */
    async function filled(ctx: AppContext, name: string, files: Files): Promise<Disk> {
      const d = await make(ctx, name);
      await w.write(d, files);
      return d;
    }

    // ------------------------------------------------------------ facts

    it('capabilities match the parts offered; the volume class and the PV source are plain data that agree', async () => {
      const d = w.driver;
      assert.equal(d.capabilities.hostTransfer, Boolean(d.hostTransfer));
      assert.equal(d.capabilities.nodePools, Boolean(d.nodePools));
      const ctx = w.app();
      const cls = d.volumeClass(ctx, vol(ctx));
      assert.deepEqual(JSON.parse(JSON.stringify(cls)), cls, 'the volume class is data');
      assert.ok(cls.minGiB >= 1 && cls.minGiB <= cls.defaultGiB, `sizes ${cls.minGiB}..${cls.defaultGiB}`);
      const facts = await readClusterFacts(w.kube);
      const disk = await make(ctx, 'pv');
      const spec = d.pvSource(ctx, vol(ctx), disk, facts);
      assert.deepEqual(JSON.parse(JSON.stringify(spec)), spec, 'the PV source is data');
      assert.equal(spec.storageClassName, cls.storageClassName);
      assert.ok(!spec.placeholder);
      if (cls.csiDriver) {
        const csi = spec.source.csi as { driver?: string; volumeHandle?: string } | undefined;
        assert.equal(csi?.driver, cls.csiDriver);
        assert.equal(csi?.volumeHandle, disk.id, 'the PV names the disk by its provider id');
      }
      assert.ok(JSON.stringify(spec.source).includes(JSON.stringify(disk.id)), 'the PV source names the disk');
      assert.equal(d.pvSource(ctx, vol(ctx), undefined, facts).placeholder, true, 'without a disk: a marked placeholder');
    });

    // ------------------------------------------------------------ disks

    describe('disks', () => {
      it('list is empty for a new app; an empty disk is listed with its size, time and ownership tags', async () => {
        const ctx = w.app();
        assert.deepEqual(await list(ctx), []);
        const d = await make(ctx, 'disk-a', { sizeGiB: 3 });
        assert.equal(d.name, 'disk-a');
        assert.equal(d.volume, vol(ctx).name);
        assert.ok(d.sizeGiB >= 3, `size ${d.sizeGiB}`);
        assert.deepEqual(await w.read(d), {}, 'a new disk is empty');
        const [listed, ...rest] = await list(ctx);
        assert.equal(rest.length, 0);
        assert.equal(listed!.id, d.id);
        assert.equal(listed!.sizeGiB, d.sizeGiB);
        assert.ok(!listed!.pending);
        assert.match(listed!.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
        assert.equal(listed!.tags[TAG_APP], appId(ctx));
        assert.equal(listed!.tags[TAG_VOLUME], vol(ctx).name);
        assert.equal(listed!.tags[TAG_NAME], 'disk-a');
        assert.ok(listed!.tags[TAG_CREATED_AT]);
        // without a size: the class default (never below the minimum)
        const cls = w.driver.volumeClass(ctx, vol(ctx));
        const dflt = await make(ctx, 'disk-b');
        assert.equal(dflt.sizeGiB, Math.max(cls.defaultGiB, cls.minGiB));
        assert.deepEqual(names(await list(ctx)), ['disk-a', 'disk-b']);
      });

      it('lists only this app\'s disks of this volume: other apps and volumes are left out, another cluster of the app sees them', async () => {
        const ctx = w.app({ volumes: ['data', 'logs'] });
        const other = w.app();
        await make(ctx, 'mine');
        await w.driver.disks.create(ctx, ctx.app.volumes[1]!, { name: 'logs-disk' }, {});
        await make(other, 'theirs');
        assert.deepEqual(names(await list(ctx)), ['mine']);
        assert.deepEqual(names(await w.driver.disks.list(ctx, ctx.app.volumes[1]!, {}, {})), ['logs-disk']);
        assert.deepEqual(names(await list(other)), ['theirs']);
        const moved = w.app({ app: ctx.app.name, cluster: 'elsewhere', volumes: ['data', 'logs'] });
        assert.deepEqual(names(await list(moved)), ['mine'], 'disks belong to the app, not the cluster');
        assert.deepEqual(names(await w.driver.snapshots.list(other, vol(other), {})), []);
      });

      it('idempotent by name: a repeated create is refused (disk.exists) and leaves the disk as it was; an invalid name makes nothing', async () => {
        const ctx = w.app();
        const d = await filled(ctx, 'same', { 'a.txt': 'one' });
        const before = await w.residue();
        await assert.rejects(make(ctx, 'same'), typed('conflict', 'disk.exists'));
        await assert.rejects(make(ctx, 'same', { source: { kind: 'disk', id: d.id } }), typed('conflict', 'disk.exists'));
        await assert.rejects(make(ctx, 'Not_A_Label'), typed('usage'));
        assert.deepEqual(await w.residue(), before);
        const [again] = await list(ctx);
        assert.equal(again!.id, d.id);
        assert.deepEqual(await w.read(again!), { 'a.txt': 'one' });
      });

      it('copies a disk: same content, independent of the source, at least the source size', async () => {
        const ctx = w.app();
        const files = { 'x/y.txt': 'deep\n', 'top.txt': 'top\n' };
        const src = await make(ctx, 'src', { sizeGiB: 2 });
        await w.write(src, files);
        const copy = await make(ctx, 'copy', { source: { kind: 'disk', id: src.id } });
        assert.notEqual(copy.id, src.id);
        assert.ok(copy.sizeGiB >= src.sizeGiB, `copy ${copy.sizeGiB} GiB < source ${src.sizeGiB} GiB`);
        assert.deepEqual(await w.read(copy), files);
        await w.write(copy, { 'top.txt': 'changed\n' });
        assert.deepEqual(await w.read(src), files, 'the source is not touched by writes to the copy');
        assert.deepEqual(names(await list(ctx)), ['copy', 'src']);
      });

      it('copies a disk made outside Kompox by its native id; that disk is never listed, nor deleted', async () => {
        const ctx = w.app();
        const nativeId = await w.foreignDisk(ctx, vol(ctx), { 'legacy.txt': 'from before Kompox\n' });
        assert.deepEqual(await list(ctx), []);
        const d = await make(ctx, 'migrated', { source: { kind: 'native', id: nativeId } });
        assert.deepEqual(await w.read(d), { 'legacy.txt': 'from before Kompox\n' });
        const foreign: Disk = { name: 'legacy', volume: vol(ctx).name, id: nativeId, sizeGiB: 1, createdAt: d.createdAt, tags: {} };
        await assert.rejects(w.driver.disks.delete(ctx, vol(ctx), foreign, {}), typed('conflict'));
        assert.deepEqual(await w.read(foreign), { 'legacy.txt': 'from before Kompox\n' });
        await assert.rejects(make(ctx, 'nothing', { source: { kind: 'disk', id: `${d.id}-no-such-disk` } }), (e: unknown) => e instanceof KompoxError && ['notfound', 'usage'].includes(e.kind));
        assert.deepEqual(names(await list(ctx)), ['migrated']);
      });

      it('a pending disk is not listed and keeps its name taken until reveal; reveal is idempotent', async () => {
        const ctx = w.app();
        const p = await make(ctx, 'incoming', { pending: true });
        assert.equal(p.pending, true);
        await w.write(p, { 'f.txt': 'filled while pending' });
        assert.deepEqual(await list(ctx), []);
        const pend = await list(ctx, { pending: true });
        assert.deepEqual(names(pend), ['incoming']);
        assert.equal(pend[0]!.pending, true);
        await assert.rejects(make(ctx, 'incoming'), typed('conflict', 'disk.exists'));
        const shown = await w.driver.disks.reveal(ctx, vol(ctx), p, {});
        assert.ok(!shown.pending);
        assert.deepEqual(names(await list(ctx)), ['incoming']);
        assert.deepEqual(await list(ctx, { pending: true }), []);
        assert.deepEqual(await w.read(shown), { 'f.txt': 'filled while pending' });
        const again = await w.driver.disks.reveal(ctx, vol(ctx), shown, {});
        assert.equal(again.id, shown.id);
        // a pending disk can be dropped (a failed import)
        const q = await make(ctx, 'dropped', { pending: true });
        await w.driver.disks.delete(ctx, vol(ctx), q, {});
        assert.deepEqual(await list(ctx, { pending: true }), []);
        await make(ctx, 'dropped');
      });

      it('delete removes the disk and is idempotent (a disk already gone is success)', async () => {
        const ctx = w.app();
        const d = await make(ctx, 'gone');
        const keep = await make(ctx, 'kept');
        await w.driver.disks.delete(ctx, vol(ctx), d, {});
        assert.deepEqual(names(await list(ctx)), ['kept']);
        await w.driver.disks.delete(ctx, vol(ctx), d, {});
        assert.deepEqual(names(await list(ctx)), ['kept']);
        await make(ctx, 'gone'); // the name is free again
        assert.equal((await list(ctx)).find((x) => x.name === 'kept')!.id, keep.id);
      });

      it('delete refuses a disk attached to a node (disk.delete.attached) and keeps it', async (t: TestContext) => {
        if (!w.attach) {
          t.skip(`the ${h.label} driver's disks have no attachment a delete could run into; the use case's PersistentVolume check covers disks in use (tested below)`);
          return;
        }
        const ctx = w.app();
        const d = await filled(ctx, 'busy', { 'f.txt': 'in use' });
        const detach = await w.attach(d);
        await assert.rejects(w.driver.disks.delete(ctx, vol(ctx), d, {}), typed('conflict', DISK_ATTACHED));
        assert.deepEqual(names(await list(ctx)), ['busy']);
        assert.deepEqual(await w.read(d), { 'f.txt': 'in use' });
        await detach();
        await w.driver.disks.delete(ctx, vol(ctx), d, {});
        assert.deepEqual(await list(ctx), []);
      });

      it('markAttached records when a disk was made current (kompox-attached-at), read back by list', async (t: TestContext) => {
        const mark = w.driver.disks.markAttached;
        if (!mark) {
          t.skip(`markAttached is optional and the ${h.label} driver does not offer it (the newest disk is picked after a move)`);
          return;
        }
        const ctx = w.app();
        const d = await make(ctx, 'marked');
        const at = '2026-01-02T03:04:05.678Z';
        await mark(ctx, vol(ctx), d, at, {});
        assert.equal((await list(ctx))[0]!.tags[TAG_ATTACHED_AT], at);
      });

      it('options: an unknown option is the typed `unsupported` error; a known one is honoured, a bad value refused; nothing is made by a refusal', async () => {
        const ctx = w.app();
        const before = await w.residue();
        await assert.rejects(make(ctx, 'opt', { options: { 'no-such-option': 'x' } }), typed('unsupported', 'driver.unsupported'));
        if (w.option) {
          await assert.rejects(make(ctx, 'opt', { options: { [w.option.key]: w.option.invalid } }), typed('usage'));
        }
        assert.deepEqual(await w.residue(), before);
        assert.deepEqual(await list(ctx), []);
        if (w.option) {
          const d = await make(ctx, 'opt', { options: { [w.option.key]: w.option.valid } });
          assert.equal(await w.option.read(d), w.option.valid);
        }
      });
    });

    // ------------------------------------------------------------ zones

    describe('zones', () => {
      it('a disk goes into the zone asked for (its PV keeps pods there); a copy and a restore can go into another zone; an unknown zone makes nothing', async (t: TestContext) => {
        if (!w.driver.capabilities.zones) {
          t.skip(`the ${h.label} driver has no zones (capabilities.zones false); the next test checks that it says so`);
          return;
        }
        assert.ok(w.zones.length >= 2, 'the harness names at least two zones');
        const [z1, z2] = w.zones as [string, string];
        const ctx = w.app();
        const zoneOf = (d: Disk) => pvZones(w.driver.pvSource(ctx, vol(ctx), d, NO_CLUSTER_FACTS).source);
        const a = await make(ctx, 'in-z1', { zone: z1 });
        await w.write(a, { 'z.txt': 'zonal' });
        assert.deepEqual(zoneOf(a), [z1]);
        assert.deepEqual(zoneOf((await list(ctx))[0]!), [z1], 'the listed disk says its zone too');
        const b = await make(ctx, 'copy-z2', { zone: z2, source: { kind: 'disk', id: a.id } });
        assert.deepEqual(zoneOf(b), [z2]);
        assert.deepEqual(await w.read(b), { 'z.txt': 'zonal' });
        const s = await w.driver.snapshots.create(ctx, vol(ctx), a, 'snap-z', {});
        const r = await make(ctx, 'restore-z2', { zone: z2, source: { kind: 'snapshot', id: s.id } });
        assert.deepEqual(zoneOf(r), [z2]);
        assert.deepEqual(await w.read(r), { 'z.txt': 'zonal' });
        const before = await w.residue();
        await assert.rejects(make(ctx, 'nowhere', { zone: 'no-such-zone-9' }), typed('usage'));
        assert.deepEqual(await w.residue(), before);
      });

      it('a driver without zones refuses a zone with the typed `unsupported` error, through the port and the use cases, and makes nothing', async (t: TestContext) => {
        if (w.driver.capabilities.zones) {
          t.skip(`the ${h.label} driver has zones (tested above)`);
          return;
        }
        const ctx = w.app();
        const d = await make(ctx, 'plain');
        const s = await w.driver.snapshots.create(ctx, vol(ctx), d, 'plain-snap', {});
        const before = await w.residue();
        await assert.rejects(make(ctx, 'zoned', { zone: 'zone-a' }), typed('unsupported', 'driver.unsupported'));
        await assert.rejects(createDisk(ctx, w.driver, w.kube, { name: 'zoned', zone: 'zone-a' }), typed('unsupported', 'driver.unsupported'));
        await assert.rejects(restoreSnapshot(ctx, w.driver, w.kube, { name: s.name, diskName: 'zoned', zone: 'zone-a' }), typed('unsupported', 'driver.unsupported'));
        assert.deepEqual(await w.residue(), before);
      });

      it('use cases put new disks, copies from another app and restores into the app\'s zone (the first of app.deployment.zone)', async (t: TestContext) => {
        if (!w.driver.capabilities.zones) {
          t.skip(`the ${h.label} driver has no zones: new disks go where the driver puts them`);
          return;
        }
        const [z1, z2] = w.zones as [string, string];
        const ctx = w.app({ zones: [z2, z1] });
        const zoneOf = (d: Disk) => pvZones(w.driver.pvSource(ctx, vol(ctx), d, NO_CLUSTER_FACTS).source);
        const d = await createDisk(ctx, w.driver, w.kube, { name: 'uc-new' });
        assert.deepEqual(zoneOf(d), [z2]);
        const other = w.app();
        const theirs = await make(other, 'theirs', { zone: z1 });
        const copied = await importDisk(ctx, w.driver, w.kube, { name: 'uc-copied', fromApp: { app: appId(other), disk: theirs.name } });
        assert.deepEqual(zoneOf(copied), [z2]);
        await w.driver.snapshots.create(ctx, vol(ctx), d, 'uc-snap', {});
        const r = await restoreSnapshot(ctx, w.driver, w.kube, { name: 'uc-snap', diskName: 'uc-restored' });
        assert.deepEqual(zoneOf(r), [z2]);
        const elsewhere = await restoreSnapshot(ctx, w.driver, w.kube, { name: 'uc-snap', diskName: 'uc-elsewhere', zone: z1 });
        assert.deepEqual(zoneOf(elsewhere), [z1]);
      });
    });

    // ------------------------------------------------------------ snapshots

    describe('snapshots', () => {
      it('create, list (this app only), refuse a repeated name, delete (idempotent)', async () => {
        const ctx = w.app();
        const other = w.app();
        const d = await filled(ctx, 'src', { 'f.txt': 'v1' });
        assert.deepEqual(await w.driver.snapshots.list(ctx, vol(ctx), {}), []);
        const s = await w.driver.snapshots.create(ctx, vol(ctx), d, 'snap-1', {});
        assert.equal(s.name, 'snap-1');
        assert.equal(s.sourceDiskId, d.id);
        assert.ok(s.sizeGiB >= 1);
        const [listed, ...rest] = await w.driver.snapshots.list(ctx, vol(ctx), {});
        assert.equal(rest.length, 0);
        assert.equal(listed!.id, s.id);
        assert.equal(listed!.tags[TAG_APP], appId(ctx));
        assert.equal(listed!.tags[TAG_VOLUME], vol(ctx).name);
        assert.equal(listed!.tags[TAG_NAME], 'snap-1');
        assert.deepEqual(await w.driver.snapshots.list(other, vol(other), {}), []);
        const before = await w.residue();
        await assert.rejects(w.driver.snapshots.create(ctx, vol(ctx), d, 'snap-1', {}), typed('conflict', 'snapshot.exists'));
        assert.deepEqual(await w.residue(), before);
        await w.driver.snapshots.delete(ctx, vol(ctx), s, {});
        assert.deepEqual(await w.driver.snapshots.list(ctx, vol(ctx), {}), []);
        await w.driver.snapshots.delete(ctx, vol(ctx), s, {});
        assert.deepEqual(names(await list(ctx)), ['src'], 'deleting a snapshot leaves its disk');
      });

      it('restore makes a new disk with the content at snapshot time, also after the source disk is gone', async () => {
        const ctx = w.app();
        const d = await filled(ctx, 'src', { 'f.txt': 'at snapshot time' });
        const s = await w.driver.snapshots.create(ctx, vol(ctx), d, 'point', {});
        await w.write(d, { 'f.txt': 'later', 'new.txt': 'later' });
        const r = await make(ctx, 'restored', { source: { kind: 'snapshot', id: s.id } });
        assert.notEqual(r.id, d.id);
        assert.ok(r.sizeGiB >= s.sizeGiB);
        assert.deepEqual(await w.read(r), { 'f.txt': 'at snapshot time' });
        await w.driver.disks.delete(ctx, vol(ctx), d, {});
        const r2 = await make(ctx, 'restored-2', { source: { kind: 'snapshot', id: s.id } });
        assert.deepEqual(await w.read(r2), { 'f.txt': 'at snapshot time' });
      });

      it('restore through the use case always makes a new disk: an existing name is refused and left as it was', async () => {
        const ctx = w.app();
        const d = await filled(ctx, 'live', { 'f.txt': 'live data' });
        await createSnapshot(ctx, w.driver, w.kube, { name: 'snap', disk: 'live' });
        await assert.rejects(restoreSnapshot(ctx, w.driver, w.kube, { name: 'snap', diskName: 'live' }), typed('conflict', 'disk.exists'));
        assert.deepEqual(await w.read(d), { 'f.txt': 'live data' });
        const r = await restoreSnapshot(ctx, w.driver, w.kube, { name: 'snap' });
        assert.match(r.name, /^snap-restored-\d{14}$/);
        assert.deepEqual(await w.read(r), { 'f.txt': 'live data' });
      });
    });

    // ------------------------------------------------------------ refusals the use cases add

    describe('delete through the use case', () => {
      it('refuses the current disk (even with force), the previous one without force, and a disk a PersistentVolume uses', async () => {
        const ctx = w.app();
        await make(ctx, 'first');
        await make(ctx, 'second');
        await attachDisk(ctx, w.driver, w.kube, { name: 'first' });
        await attachDisk(ctx, w.driver, w.kube, { name: 'second' });
        await assert.rejects(deleteDisk(ctx, w.driver, w.kube, { name: 'second', force: true }), typed('conflict', 'disk.delete.current'));
        await assert.rejects(deleteDisk(ctx, w.driver, w.kube, { name: 'first' }), typed('conflict', 'disk.delete.previous'));
        assert.deepEqual(names(await list(ctx)), ['first', 'second']);
        await deleteDisk(ctx, w.driver, w.kube, { name: 'first', force: true });
        // a disk the cluster still has a PersistentVolume for (the driver's own PV source)
        const bound = await make(ctx, 'bound');
        const spec = w.driver.pvSource(ctx, vol(ctx), bound, await readClusterFacts(w.kube));
        const pvName = `contract-${ctx.app.name}`;
        await w.kube.apply({
          apiVersion: 'v1',
          kind: 'PersistentVolume',
          metadata: { name: pvName },
          spec: { capacity: { storage: `${bound.sizeGiB}Gi` }, accessModes: ['ReadWriteOnce'], storageClassName: spec.storageClassName, persistentVolumeReclaimPolicy: 'Retain', ...spec.source },
        });
        await assert.rejects(deleteDisk(ctx, w.driver, w.kube, { name: 'bound', force: true }), typed('conflict', 'disk.delete.bound'));
        assert.deepEqual(names((await listDisks(ctx, w.driver, w.kube)).disks), ['bound', 'second']);
        await w.kube.delete({ apiVersion: 'v1', kind: 'PersistentVolume', name: pvName });
        await deleteDisk(ctx, w.driver, w.kube, { name: 'bound' });
        assert.deepEqual(names(await list(ctx)), ['second']);
      });
    });

    // ------------------------------------------------------------ cancellation

    describe('cancellation', () => {
      it('an operation whose signal is already aborted is `interrupted` and makes nothing', async () => {
        const ctx = w.app();
        const d = await filled(ctx, 'src', { 'f.txt': 'x' });
        const s = await w.driver.snapshots.create(ctx, vol(ctx), d, 'snap', {});
        const before = await w.residue();
        const aborted: Op = { signal: AbortSignal.abort() };
        await assert.rejects(make(ctx, 'empty', {}, aborted), typed('interrupted'));
        await assert.rejects(make(ctx, 'copy', { source: { kind: 'disk', id: d.id } }, aborted), typed('interrupted'));
        await assert.rejects(make(ctx, 'restored', { source: { kind: 'snapshot', id: s.id } }, aborted), typed('interrupted'));
        await assert.rejects(w.driver.snapshots.create(ctx, vol(ctx), d, 'snap-2', aborted), typed('interrupted'));
        assert.deepEqual(await w.residue(), before);
      });

      for (const kind of ['copy of a disk', 'restore of a snapshot', 'snapshot'] as const) {
        it(`a ${kind} cancelled mid-way is \`interrupted\`, leaves nothing behind (not even pending) and frees the name`, async () => {
          const ctx = w.app();
          const src = await filled(ctx, 'src', bulkFiles());
          const snap = kind === 'restore of a snapshot' ? await w.driver.snapshots.create(ctx, vol(ctx), src, 'snap', {}) : undefined;
          const before = await w.residue();
          const { op, fired } = abortMidway();
          const run = () =>
            kind === 'snapshot'
              ? w.driver.snapshots.create(ctx, vol(ctx), src, 'cut', op)
              : make(ctx, 'cut', { source: snap ? { kind: 'snapshot', id: snap.id } : { kind: 'disk', id: src.id } }, op);
          await assert.rejects(run(), typed('interrupted'));
          assert.ok(fired(), 'the operation reported progress before its end, and was cancelled then');
          assert.deepEqual(await w.residue(), before, 'nothing of the cancelled operation remains');
          assert.deepEqual(names(await list(ctx)), ['src']);
          assert.deepEqual(await list(ctx, { pending: true }), []);
          assert.deepEqual(names(await w.driver.snapshots.list(ctx, vol(ctx), {})), snap ? ['snap'] : []);
          // the name is free: the same operation completes when not cancelled
          if (kind === 'snapshot') await w.driver.snapshots.create(ctx, vol(ctx), src, 'cut', {});
          else assert.deepEqual(await w.read(await make(ctx, 'cut', { source: snap ? { kind: 'snapshot', id: snap.id } : { kind: 'disk', id: src.id } })), await w.read(src));
        });
      }
    });

    // ------------------------------------------------------------ export and import

    describe('export and import', () => {
      it('through the host (hostTransfer): export a disk and a snapshot, import them as new disks with the same content; a wrong checksum makes nothing', async (t: TestContext) => {
        if (!w.driver.hostTransfer) {
          t.skip(`hostTransfer part skipped: the ${h.label} driver cannot read disks itself; its export and import go through the cluster path (helper pod); the reference cloud keeps disk content in memory, not in directories the fake kubelet could mount (fake.registerCsiDriver), so that path runs for K3s only (test/usecases/transfer.test.ts)`);
          return;
        }
        const ctx = w.app();
        const files = { 'a.txt': 'exported\n', 'dir/b.bin': randomBytes(4096).toString('base64') };
        await filled(ctx, 'src', files);
        const chunks: Buffer[] = [];
        const out = new PassThrough();
        out.on('data', (c: Buffer) => chunks.push(c));
        const ex = await exportDisk(ctx, w.driver, w.kube, { name: 'src', out });
        const archive = Buffer.concat(chunks);
        assert.equal(ex.bytes, archive.length);
        const imported = await importDisk(ctx, w.driver, w.kube, { name: 'imported', archive: { stream: PassThrough.from([archive]) as unknown as NodeJS.ReadableStream, expectedSha256: ex.sha256 } });
        assert.deepEqual(await w.read(imported), files);
        await createSnapshot(ctx, w.driver, w.kube, { name: 'snap', disk: 'src' });
        const schunks: Buffer[] = [];
        const sout = new PassThrough();
        sout.on('data', (c: Buffer) => schunks.push(c));
        await exportSnapshot(ctx, w.driver, w.kube, { name: 'snap', out: sout });
        const fromSnap = await importDisk(ctx, w.driver, w.kube, { name: 'from-snap', archive: { stream: PassThrough.from([Buffer.concat(schunks)]) as unknown as NodeJS.ReadableStream } });
        assert.deepEqual(await w.read(fromSnap), files);
        const before = await w.residue();
        await assert.rejects(
          importDisk(ctx, w.driver, w.kube, { name: 'bad', archive: { stream: PassThrough.from([archive]) as unknown as NodeJS.ReadableStream, expectedSha256: '0'.repeat(64) } }),
          typed('integrity'),
        );
        assert.deepEqual(await w.residue(), before);
      });

      it('a driver without hostTransfer says export and import on the host path are not supported (typed), and makes nothing', async (t: TestContext) => {
        if (w.driver.hostTransfer) {
          t.skip(`the ${h.label} driver offers hostTransfer (tested above)`);
          return;
        }
        const ctx = w.app();
        await make(ctx, 'src');
        const before = await w.residue();
        await assert.rejects(exportDisk(ctx, w.driver, w.kube, { name: 'src', out: new PassThrough(), via: 'host' }), typed('unsupported', 'driver.unsupported'));
        await assert.rejects(
          importDisk(ctx, w.driver, w.kube, { name: 'imp', archive: { stream: PassThrough.from([Buffer.alloc(0)]) as unknown as NodeJS.ReadableStream }, via: 'host' }),
          typed('unsupported', 'driver.unsupported'),
        );
        assert.deepEqual(await w.residue(), before);
      });
    });
  });
}
