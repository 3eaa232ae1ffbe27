import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile, rm, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { PersistentVolume } from 'kubernetes-models/v1';
import type { AppContext, Disk } from '../../src/domain/model.js';
import { appNamespace } from '../../src/domain/names.js';
import { loadDriver } from '../../src/providers/index.js';
import type { KompoxEvent } from '../../src/domain/events.js';
import { NO_CLUSTER_FACTS, requireClusterOp, requirePart } from '../../src/domain/ports/driver.js';
import { KompoxError } from '../../src/domain/errors.js';
import { K3sDriver } from '../../src/providers/k3s/index.js';
import { measureTree, packTree } from '../../src/archive/archive.js';
import { shellCommand, tarExtractArgv } from '../../src/archive/tar-command.js';
import { LocalHostFs, type HostUntarStream } from '../../src/providers/k3s/hostfs.js';
import { appCtx, sandbox, snapshotOfTree, writeSampleTree, type Sandbox } from './k3s-fixtures.js';
import { rejectsWith } from '../support/assertions.js';
import { collect } from '../support/collect.js';

describe('K3s driver on the local filesystem', () => {
  let sb: Sandbox;
  let driver: K3sDriver;
  before(async () => {
    driver = (await loadDriver('k3s', { env: {} })) as K3sDriver;
  });
  after(async () => driver.close());
  // Each test has disk and snapshot roots of its own and makes the disks it needs: none builds on another.
  beforeEach(async () => {
    sb = await sandbox();
  });
  afterEach(async () => sb.cleanup());
  /** The app's disk "disk-a" (3 GiB), with the sample tree when `data`. */
  async function diskA(ctx: AppContext, data = false): Promise<Disk> {
    const d = await driver.disks.create(ctx, ctx.app.volumes[0]!, { name: 'disk-a', sizeGiB: 3 }, {});
    if (data) await writeSampleTree(d.id);
    return d;
  }

  it('creates an empty disk under {root}/{namespace}/{volume}/{name}, with tags, and lists it', async () => {
    const ctx = appCtx(sb);
    const vol = ctx.app.volumes[0]!;
    const d = await driver.disks.create(ctx, vol, { name: 'disk-a', sizeGiB: 3 }, {});
    assert.equal(d.id, join(sb.diskRoot, appNamespace(ctx), 'default', 'disk-a', 'data'));
    assert.equal(d.sizeGiB, 3);
    assert.equal(d.tags['kompox-app'], 'ops/k3s1/node1/my-app');
    assert.equal(d.tags['kompox-volume'], 'default');
    assert.equal(d.tags['kompox-name'], 'disk-a');
    assert.match(d.tags['kompox-created-at']!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const meta = JSON.parse(await readFile(join(sb.diskRoot, appNamespace(ctx), 'default', 'disk-a', 'kompox-disk.json'), 'utf8'));
    assert.equal(meta.tags['kompox-app'], 'ops/k3s1/node1/my-app');
    const list = await driver.disks.list(ctx, vol, {}, {});
    assert.deepEqual(list.map((x) => x.name), ['disk-a']);
    assert.equal(list[0]!.usedBytes, undefined, 'usage is measured only when asked');
    await writeFile(join(d.id, 'five'), '12345');
    assert.equal((await driver.disks.list(ctx, vol, { usage: true }, {}))[0]!.usedBytes, 5);
    await rm(join(d.id, 'five'));
  });

  it('refuses an existing or invalid disk name, leaving the root unchanged', async () => {
    const ctx = appCtx(sb);
    await diskA(ctx);
    const before = await snapshotOfTree(sb.dir);
    await rejectsWith(driver.disks.create(ctx, ctx.app.volumes[0]!, { name: 'disk-a' }, {}), 'conflict', /disk "disk-a" already exists/);
    await rejectsWith(driver.disks.create(ctx, ctx.app.volumes[0]!, { name: 'Disk_A' }, {}), 'usage', /must be lower case/);
    assert.deepEqual(await snapshotOfTree(sb.dir), before);
  });

  it('a --from-id source that is no disk or archive (a FIFO, a symlink, a relative or missing path) is refused with its own code, before anything is made and without blocking on the FIFO', async () => {
    const ctx = appCtx(sb);
    const vol = ctx.app.volumes[0]!;
    const fifo = join(sb.dir, 'a-fifo');
    await new Promise<void>((resolve, reject) => spawn('mkfifo', [fifo]).on('error', reject).on('close', (c) => (c === 0 ? resolve() : reject(new Error(`mkfifo: ${c}`)))));
    const link = join(sb.dir, 'a-link');
    const { symlink } = await import('node:fs/promises');
    await symlink(sb.dir, link);
    const before = await snapshotOfTree(sb.diskRoot);
    const refused = async (id: string, kind: string, code: string) =>
      assert.rejects(driver.disks.create(ctx, vol, { name: 'from-id', source: { kind: 'native', id } }, {}), (e: unknown) => {
        assert.ok(e instanceof KompoxError, String(e));
        assert.deepEqual([e.kind, e.code], [kind, code], e.message);
        assert.equal(e.details?.source, id);
        return true;
      });
    await refused(fifo, 'usage', 'disk.source.not-a-disk');
    await rejectsWith(driver.disks.create(ctx, vol, { name: 'from-id', source: { kind: 'native', id: fifo } }, {}), 'usage', /a-fifo is neither a directory nor an archive file \(it is a FIFO, socket or device\)/);
    await refused(link, 'usage', 'disk.source.not-a-disk');
    await refused('relative/path', 'usage', 'disk.source.invalid-id');
    await refused(join(sb.dir, 'nothing-here'), 'notfound', 'disk.source.missing');
    assert.deepEqual(await snapshotOfTree(sb.diskRoot), before);
  });

  it('finds the app\'s disks from another cluster of the same provider, but not other apps\' disks', async () => {
    await diskA(appCtx(sb));
    const moved = appCtx(sb, { cluster: 'node2' });
    assert.deepEqual((await driver.disks.list(moved, moved.app.volumes[0]!, {}, {})).map((d) => d.name), ['disk-a']);
    const other = appCtx(sb, { app: 'other-app' });
    assert.deepEqual(await driver.disks.list(other, other.app.volumes[0]!, {}, {}), []);
  });

  it('snapshot → change → restore into a new disk → export → import: tree digests prove no byte is lost', async () => {
    const ctx = appCtx(sb);
    const vol = ctx.app.volumes[0]!;
    const disk = await diskA(ctx, true);
    const original = await driver.diskDigest(ctx, disk!);

    const snap = await driver.snapshots.create(ctx, vol, disk!, 'snap-1', {});
    assert.equal(snap.id, join(sb.snapshotRoot, appNamespace(ctx), 'default', 'snap-1.tar.zst'));
    assert.equal(snap.sha256, createHash('sha256').update(await readFile(snap.id)).digest('hex'));
    assert.equal(snap.tags['kompox-app'], 'ops/k3s1/node1/my-app');
    assert.deepEqual((await driver.snapshots.list(ctx, vol, {})).map((s) => s.name), ['snap-1']);

    // change the live disk after the snapshot
    await writeFile(join(disk!.id, 'binary.bin'), 'overwritten');
    await rm(join(disk!.id, 'empty-dir'), { recursive: true });
    assert.notEqual(await driver.diskDigest(ctx, disk!), original);

    const restored = await driver.disks.create(ctx, vol, { name: 'restored-1', source: { kind: 'snapshot', id: snap.id } }, {});
    assert.equal(await driver.diskDigest(ctx, restored), original);
    assert.equal(restored.sizeGiB, disk!.sizeGiB);

    const exported = await collect((out) => driver.hostTransfer.exportDisk(ctx, vol, restored, out, {}));
    const imported = await driver.hostTransfer.importDisk(ctx, vol, { name: 'imported-1' }, { stream: Readable.from([exported]), expectedSha256: createHash('sha256').update(exported).digest('hex') }, {});
    assert.equal(await driver.diskDigest(ctx, imported), original);
    assert.equal(imported.sizeGiB, 3, 'the archive carries the source disk size');

    // snapshot export streams the stored archive byte for byte
    const snapBytes = await collect((out) => driver.hostTransfer.exportSnapshot(ctx, vol, snap, out, {}));
    assert.equal(createHash('sha256').update(snapBytes).digest('hex'), snap.sha256);
    const fromSnapExport = await driver.hostTransfer.importDisk(ctx, vol, { name: 'imported-2' }, { stream: Readable.from([snapBytes]) }, {});
    assert.equal(await driver.diskDigest(ctx, fromSnapExport), original);

    // copy by provider id: a disk directory, and a snapshot archive; a copy of a disk
    const copy = await driver.disks.create(ctx, vol, { name: 'copy-1', source: { kind: 'native', id: imported.id } }, {});
    assert.equal(await driver.diskDigest(ctx, copy), original);
    const fromSnapId = await driver.disks.create(ctx, vol, { name: 'copy-2', source: { kind: 'native', id: snap.id } }, {});
    assert.equal(await driver.diskDigest(ctx, fromSnapId), original);
    const ofDisk = await driver.disks.create(ctx, vol, { name: 'copy-3', source: { kind: 'disk', id: copy.id } }, {});
    assert.equal(await driver.diskDigest(ctx, ofDisk), original);
    await driver.disks.delete(ctx, vol, ofDisk, {});
  });

  it('refuses corrupt, truncated and wrongly-checksummed imports and restore over an existing name; nothing changes', async () => {
    const ctx = appCtx(sb);
    const vol = ctx.app.volumes[0]!;
    const snap = await driver.snapshots.create(ctx, vol, await diskA(ctx, true), 'snap-1', {});
    await driver.disks.create(ctx, vol, { name: 'restored-1', source: { kind: 'snapshot', id: snap.id } }, {});
    const good = await readFile(snap!.id);
    const flipped = Buffer.from(good);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
    const before = await snapshotOfTree(sb.dir);

    await rejectsWith(driver.hostTransfer.importDisk(ctx, vol, { name: 'bad-1' }, { stream: Readable.from([flipped]) }, {}), 'integrity', /./);
    await rejectsWith(driver.hostTransfer.importDisk(ctx, vol, { name: 'bad-2' }, { stream: Readable.from([good.subarray(0, Math.floor(good.length * 0.7))]) }, {}), 'integrity', /truncated|zstd/);
    await rejectsWith(
      driver.hostTransfer.importDisk(ctx, vol, { name: 'bad-3' }, { stream: Readable.from([good]), expectedSha256: 'ab'.repeat(32) }, {}),
      'integrity',
      /expected abab/,
    );
    await rejectsWith(driver.disks.create(ctx, vol, { name: 'restored-1', source: { kind: 'snapshot', id: snap!.id } }, {}), 'conflict', /already exists/);
    await rejectsWith(driver.snapshots.create(ctx, vol, (await driver.disks.list(ctx, vol, {}, {}))[0]!, 'snap-1', {}), 'conflict', /snapshot "snap-1" already exists/);
    assert.deepEqual(await snapshotOfTree(sb.dir), before);

    // a snapshot archive damaged on the node is detected at restore time
    await writeFile(snap!.id, flipped);
    await rejectsWith(driver.disks.create(ctx, vol, { name: 'from-damaged', source: { kind: 'snapshot', id: snap!.id } }, {}), 'integrity', /./);
    await writeFile(snap!.id, good);
    assert.deepEqual(await snapshotOfTree(sb.dir), before);
  });

  it('deletes disks and snapshots idempotently, and never outside its roots', async () => {
    const ctx = appCtx(sb);
    const vol = ctx.app.volumes[0]!;
    const first = await driver.snapshots.create(ctx, vol, await diskA(ctx, true), 'snap-1', {});
    await driver.disks.create(ctx, vol, { name: 'copy-2', source: { kind: 'native', id: first.id } }, {});
    const disks = await driver.disks.list(ctx, vol, {}, {});
    const source = disks.find((d) => d.name === 'disk-a')!;
    const victim = disks.find((d) => d.name === 'copy-2')!;
    await driver.disks.delete(ctx, vol, victim, {});
    await driver.disks.delete(ctx, vol, victim, {}); // already gone = success
    assert.ok(!(await driver.disks.list(ctx, vol, {}, {})).some((d) => d.name === 'copy-2'));
    await rejectsWith(driver.disks.delete(ctx, vol, { ...victim, id: '/etc/data' }, {}), 'conflict', /not under the disk root/);
    const [snap] = await driver.snapshots.list(ctx, vol, {});
    const events: KompoxEvent[] = [];
    const s2 = await driver.snapshots.create(ctx, vol, source, 'snap-2', { events: (e) => events.push(e) });
    const used = (await driver.disks.list(ctx, vol, { usage: true }, {})).find((d) => d.name === source.name)!.usedBytes!;
    const progress = events.filter((e) => e.type === 'progress');
    assert.ok(progress.length >= 2);
    assert.deepEqual(progress[0], { type: 'progress', id: progress[0]!.id, label: 'snapshot snap-2', done: 0, total: used, unit: 'bytes' });
    const files = (await measureTree(new LocalHostFs(), source.id)).fileCount;
    assert.deepEqual(progress.at(-1), { type: 'progress', id: progress[0]!.id, label: 'snapshot snap-2', done: used, total: used, unit: 'bytes', end: true, counts: { files, bytes: used } });
    assert.ok(progress.every((e) => e.id === progress[0]!.id), 'one transfer');
    await driver.snapshots.delete(ctx, vol, s2, {});
    await driver.snapshots.delete(ctx, vol, s2, {});
    assert.deepEqual((await driver.snapshots.list(ctx, vol, {})).map((s) => s.name), [snap!.name]);
    const left = await readdir(join(sb.snapshotRoot, appNamespace(ctx), 'default'));
    assert.deepEqual(left.sort(), ['snap-1.json', 'snap-1.tar.zst']);
  });

  it('an archive left without its metadata (a create killed between the two) is never listed, holds its name with snapshot.leftover, and is swept once old', async () => {
    const ctx = appCtx(sb);
    const vol = ctx.app.volumes[0]!;
    const disk = await diskA(ctx, true);
    const s1 = await driver.snapshots.create(ctx, vol, disk, 'snap-1', {});
    const dir = join(sb.snapshotRoot, appNamespace(ctx), 'default');
    // what the crash leaves: the archive renamed into place, its metadata never written
    const orphan = join(dir, 'snap-x.tar.zst');
    await writeFile(orphan, await readFile(s1.id));
    assert.deepEqual((await driver.snapshots.list(ctx, vol, {})).map((s) => s.name), ['snap-1']);
    await rejectsWith(driver.snapshots.create(ctx, vol, disk, 'snap-x', {}), 'conflict', /snap-x\.tar\.zst is the archive of a snapshot create or delete that was interrupted/);
    await assert.rejects(driver.snapshots.create(ctx, vol, disk, 'snap-x', {}), (e: unknown) => e instanceof KompoxError && e.code === 'snapshot.leftover');
    // young: kept (it could be a create in its last milliseconds)
    await driver.snapshots.create(ctx, vol, disk, 'snap-2', {});
    assert.ok((await readdir(dir)).includes('snap-x.tar.zst'));
    const { utimes } = await import('node:fs/promises');
    const { LEFTOVER_AGE_MS } = await import('../../src/providers/k3s/driver.js');
    const old = new Date(Date.now() - 2 * LEFTOVER_AGE_MS);
    await utimes(orphan, old, old);
    await driver.snapshots.create(ctx, vol, disk, 'snap-3', {});
    assert.ok(!(await readdir(dir)).includes('snap-x.tar.zst'), 'swept once old');
    await driver.snapshots.create(ctx, vol, disk, 'snap-x', {});
    assert.deepEqual((await driver.snapshots.list(ctx, vol, {})).map((s) => s.name).sort(), ['snap-1', 'snap-2', 'snap-3', 'snap-x']);
  });

  it('a damaged disk or snapshot metadata file is refused by name (*.meta.damaged), never left out of a list or replaced by another disk; nothing changes', async () => {
    const ctx = appCtx(sb);
    const vol = ctx.app.volumes[0]!;
    const older = await diskA(ctx, true);
    const current = await driver.disks.create(ctx, vol, { name: 'disk-b' }, {});
    await driver.disks.markAttached!(ctx, vol, older, '2026-01-01T00:00:00.000Z', {});
    const metaFile = join(sb.diskRoot, appNamespace(ctx), 'default', 'disk-b', 'kompox-disk.json');
    const good = await readFile(metaFile);
    const damaged = async (p: Promise<unknown>, code: string, file: string, re: RegExp) =>
      assert.rejects(p, (e: unknown) => {
        assert.ok(e instanceof KompoxError, String(e));
        assert.equal(e.code, code);
        assert.ok(e.message.includes(file), e.message);
        assert.match(e.message, re);
        return true;
      });
    // corrupt, not a disk's, a directory in its place (unreadable); a missing one is a directory made
    // outside Kompox (the driver contract: never listed)
    const cases: [() => Promise<void>, RegExp][] = [
      [() => writeFile(metaFile, '{'), /is not valid JSON/],
      [() => writeFile(metaFile, '{"kind":"kompox-disk","name":"disk-b"}'), /lacks volume, createdAt, sizeGiB, tags/],
      [() => writeFile(metaFile, '[]'), /does not hold a JSON object/],
      [() => mkdir(metaFile).then(() => undefined), /cannot be read/],
    ];
    for (const [damage, re] of cases) {
      await rm(metaFile, { recursive: true, force: true });
      await damage();
      const before = await snapshotOfTree(sb.dir);
      // not listed without it (or with disk-a, attached last, taken for the current disk): refused, naming the file
      await damaged(driver.disks.list(ctx, vol, {}, {}), 'disk.meta.damaged', metaFile, re);
      await damaged(driver.disks.list(ctx, vol, { usage: true }, {}), 'disk.meta.damaged', metaFile, re);
      await damaged(driver.disks.delete(ctx, vol, current, {}), 'disk.meta.damaged', metaFile, re);
      assert.deepEqual(await snapshotOfTree(sb.dir), before);
    }
    await rm(metaFile, { recursive: true, force: true });
    await writeFile(metaFile, good);
    assert.deepEqual((await driver.disks.list(ctx, vol, {}, {})).map((d) => d.name), ['disk-a', 'disk-b']);

    // a snapshot's: not left out of the list, and its archive never restored unchecked
    const snap = await driver.snapshots.create(ctx, vol, older, 'snap-1', {});
    const snapMeta = snap.id.replace(/\.tar\.zst$/, '.json');
    const goodSnap = await readFile(snapMeta);
    const noSha = JSON.parse(goodSnap.toString('utf8'));
    delete noSha.sha256;
    for (const [text, re] of [['{not json', /is not valid JSON/], [JSON.stringify(noSha), /lacks sha256/]] as const) {
      await writeFile(snapMeta, text);
      const before = await snapshotOfTree(sb.dir);
      await damaged(driver.snapshots.list(ctx, vol, {}), 'snapshot.meta.damaged', snapMeta, re);
      await damaged(driver.disks.create(ctx, vol, { name: 'from-snap', source: { kind: 'snapshot', id: snap.id } }, {}), 'snapshot.meta.damaged', snapMeta, re);
      await damaged(driver.disks.create(ctx, vol, { name: 'from-id', source: { kind: 'native', id: snap.id } }, {}), 'snapshot.meta.damaged', snapMeta, re);
      assert.deepEqual(await snapshotOfTree(sb.dir), before);
    }
    await writeFile(snapMeta, goodSnap);
    assert.deepEqual((await driver.snapshots.list(ctx, vol, {})).map((s) => s.name), ['snap-1']);
    // an archive imported by its path outside the root: a JSON file beside it that is not a snapshot's is no metadata
    const outside = join(sb.dir, 'elsewhere.tar.zst');
    await writeFile(outside, await readFile(snap.id));
    await writeFile(join(sb.dir, 'elsewhere.json'), '{"unrelated": true');
    const imported = await driver.disks.create(ctx, vol, { name: 'from-outside', source: { kind: 'native', id: outside } }, {});
    assert.equal(await driver.diskDigest(ctx, imported), await driver.diskDigest(ctx, older));
  });

  it('a snapshot whose archive was moved away: its name is refused truthfully (snapshot.archive.missing, naming the .json), and snapshot delete frees it', async () => {
    const ctx = appCtx(sb);
    const vol = ctx.app.volumes[0]!;
    const disk = await diskA(ctx, true);
    const s1 = await driver.snapshots.create(ctx, vol, disk, 'snap-1', {});
    const metaPath = s1.id.replace(/\.tar\.zst$/, '.json');
    await rm(s1.id); // moved elsewhere by hand
    assert.deepEqual(await driver.snapshots.list(ctx, vol, {}), []);
    const before = await snapshotOfTree(sb.dir);
    await assert.rejects(driver.snapshots.create(ctx, vol, disk, 'snap-1', {}), (e: unknown) => {
      assert.ok(e instanceof KompoxError, String(e));
      assert.equal(e.code, 'snapshot.archive.missing');
      assert.ok(e.message.includes(metaPath), e.message);
      assert.match(e.message, /archive \(.*snap-1\.tar\.zst\) is missing/);
      assert.doesNotMatch(e.message, /already exists/);
      return true;
    });
    assert.deepEqual(await snapshotOfTree(sb.dir), before);
    const { deleteSnapshot } = await import('../../src/usecases/snapshot.js');
    const logs: KompoxEvent[] = [];
    await rejectsWith(deleteSnapshot(ctx, driver, undefined, { name: 'snap-2' }, {}), 'notfound', /snapshot "snap-2" not found/);
    const gone = await deleteSnapshot(ctx, driver, undefined, { name: 'snap-1' }, { events: (e) => logs.push(e) });
    assert.equal(gone.name, 'snap-1');
    assert.ok(logs.some((e) => e.type === 'log' && /snap-1 had lost its data/.test(JSON.stringify(e))), JSON.stringify(logs));
    assert.deepEqual(await readdir(join(sb.snapshotRoot, appNamespace(ctx), 'default')), []);
    await driver.snapshots.create(ctx, vol, disk, 'snap-1', {});
    assert.deepEqual((await driver.snapshots.list(ctx, vol, {})).map((s) => s.name), ['snap-1']);
  });

  it('concurrent creates of one snapshot name: the losers get snapshot.exists (not "interrupted", not an internal error), and leave nothing', async () => {
    const ctx = appCtx(sb);
    const vol = ctx.app.volumes[0]!;
    const disk = await diskA(ctx, true);
    const exists = (e: unknown) => {
      assert.ok(e instanceof KompoxError, String((e as Error)?.stack ?? e));
      assert.equal(e.code, 'snapshot.exists', e.message);
      assert.match(e.message, /snapshot "race-\d" already exists/);
      return true;
    };
    const dir = join(sb.snapshotRoot, appNamespace(ctx), 'default');
    // 1. the faster create between its two renames: its archive there, its metadata a moment later
    const s0 = await driver.snapshots.create(ctx, vol, disk, 'race-0', {});
    await writeFile(join(dir, 'race-1.tar.zst'), await readFile(s0.id));
    const meta1 = (await readFile(join(dir, 'race-0.json'), 'utf8')).replaceAll('race-0', 'race-1');
    const late = setTimeout(() => void writeFile(join(dir, 'race-1.json'), meta1), 300);
    try {
      await assert.rejects(driver.snapshots.create(ctx, vol, disk, 'race-1', {}), exists);
    } finally {
      clearTimeout(late);
    }
    // 2. the faster create renamed its archive into place while this one packed
    class Beaten extends LocalHostFs {
      override async rename(from: string, to: string): Promise<void> {
        if (/\/\.tmp-race-2-[^/]*\.tar\.zst$/.test(from)) await writeFile(to, 'the other create\'s archive');
        return super.rename(from, to);
      }
    }
    const beaten = new K3sDriver({ env: {} }, (async () => new Beaten()) as never);
    try {
      await assert.rejects(beaten.snapshots.create(ctx, vol, disk, 'race-2', {}), exists);
    } finally {
      await beaten.close();
    }
    assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('.')), [], 'no temp left');
    // 3. for real: three at once, one wins
    const all = await Promise.allSettled([1, 2, 3].map(() => driver.snapshots.create(ctx, vol, disk, 'race-3', {})));
    assert.equal(all.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of all) if (r.status === 'rejected') exists(r.reason);
    const made = (await driver.snapshots.list(ctx, vol, {})).find((s) => s.name === 'race-3')!;
    assert.equal(made.sha256, createHash('sha256').update(await readFile(made.id)).digest('hex'));
  });

  it('gives a valid local PersistentVolume source with node affinity, and a marked placeholder without a disk', async () => {
    const ctx = appCtx(sb, { settings: { K3S_NODE: 'k3s-server' } });
    const vol = ctx.app.volumes[0]!;
    await diskA(ctx);
    const [disk] = await driver.disks.list(ctx, vol, {}, {});
    const spec = driver.pvSource(ctx, vol, disk, NO_CLUSTER_FACTS);
    assert.equal((spec.source as { local: { path: string } }).local.path, disk!.id);
    const pv = new PersistentVolume({
      metadata: { name: 'pv1' },
      spec: { capacity: { storage: `${disk!.sizeGiB}Gi` }, accessModes: spec.accessModes as Array<'ReadWriteOnce'>, storageClassName: spec.storageClassName, persistentVolumeReclaimPolicy: 'Retain', ...spec.source },
    });
    pv.validate();
    assert.deepEqual(pv.spec!.nodeAffinity!.required!.nodeSelectorTerms[0]!.matchExpressions![0]!.values, ['k3s-server']);
    const ph = driver.pvSource(ctx, vol, undefined, NO_CLUSTER_FACTS);
    assert.equal(ph.placeholder, true);
    // without K3S_NODE the host name recorded on the disk is the node
    const plain = appCtx(sb);
    const s2 = driver.pvSource(plain, vol, disk, NO_CLUSTER_FACTS);
    assert.deepEqual((s2.source as any).nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values, [disk!.zone]);
    assert.equal(driver.volumeClass(plain, vol).minGiB, 1);
    // without K3S_NODE, a cluster with one node names it (facts read by the use case; the driver keeps no state)
    const single = driver.pvSource(plain, vol, disk, { nodes: [{ name: 'the-node', labels: {} }] });
    assert.deepEqual((single.source as any).nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values, ['the-node']);
  });

  it('says what it does not support, as the typed unsupported error: zones, disk options, node pools', async () => {
    const ctx = appCtx(sb);
    const vol = ctx.app.volumes[0]!;
    const before = await snapshotOfTree(sb.dir);
    const unsupported = (re: RegExp) => (e: unknown) => e instanceof KompoxError && e.kind === 'unsupported' && e.code === 'driver.unsupported' && re.test(e.message);
    await assert.rejects(driver.disks.create(ctx, vol, { name: 'zoned', zone: 'z1' }, {}), unsupported(/^disk create in a zone is not supported by the k3s driver$/));
    await assert.rejects(driver.disks.create(ctx, vol, { name: 'sku', options: { sku: 'Premium_LRS' } }, {}), unsupported(/^disk option sku is not supported by the k3s driver$/));
    assert.throws(() => requirePart(driver, 'nodePools', 'node pool list'), unsupported(/^node pool list is not supported by the k3s driver$/));
    assert.throws(() => requireClusterOp(driver, 'provision', 'cluster provision'), unsupported(/^cluster provision is not supported by the k3s driver$/));
    assert.equal(await requireClusterOp(driver, 'kubeconfig', 'cluster kubeconfig')(ctx, {}), undefined, 'present operations are returned, bound');
    assert.deepEqual(driver.capabilities, { atomicSnapshots: false, zones: false, nodePools: false, hostTransfer: true, archiveSnapshots: true });
    assert.deepEqual(await snapshotOfTree(sb.dir), before);
  });

  it('a cancelled import stops, leaves no disk (not even a temp dir) and fails as interrupted', async () => {
    const ctx = appCtx(sb);
    const vol = ctx.app.volumes[0]!;
    const snap = await driver.snapshots.create(ctx, vol, await diskA(ctx, true), 'snap-1', {});
    const good = await readFile(snap!.id);
    const before = await snapshotOfTree(sb.dir);
    const ac = new AbortController();
    // half the archive arrives, then the stream stalls until the operation is cancelled
    const stalled = new PassThrough();
    stalled.write(good.subarray(0, Math.floor(good.length / 2)));
    const importing = driver.hostTransfer.importDisk(ctx, vol, { name: 'cancelled' }, { stream: stalled }, { signal: ac.signal });
    await new Promise((r) => setImmediate(r));
    ac.abort();
    await assert.rejects(importing, (e: unknown) => e instanceof KompoxError && e.kind === 'interrupted' && e.exitCode === 130);
    assert.deepEqual(await snapshotOfTree(sb.dir), before);
    // an operation cancelled before it starts does nothing
    await assert.rejects(driver.disks.create(ctx, vol, { name: 'never', source: { kind: 'snapshot', id: snap!.id } }, { signal: AbortSignal.abort() }), (e: unknown) => e instanceof KompoxError && e.kind === 'interrupted');
    assert.deepEqual(await snapshotOfTree(sb.dir), before);
  });

  it('reports bad settings with the field to fix', async () => {
    const ctx = appCtx(sb, { settings: { K3S_DISK_ROOT: 'relative/path' } });
    await rejectsWith(driver.disks.list(ctx, ctx.app.volumes[0]!, {}, {}), 'config', /K3S_DISK_ROOT must be an absolute path/);
  });
});

describe('K3s driver: cluster credentials and status', () => {
  let sb: Sandbox;
  const driver = new K3sDriver();
  const k3sYaml = [
    'apiVersion: v1',
    'clusters:',
    '- cluster:',
    '    certificate-authority-data: AAAA',
    '    server: https://127.0.0.1:6443',
    '  name: default',
    'kind: Config',
    '',
  ].join('\n');
  before(async () => {
    sb = await sandbox();
    await writeFile(join(sb.dir, 'k3s.yaml'), k3sYaml);
  });
  after(async () => {
    await driver.close();
    await sb.cleanup();
  });

  it('supplies the node\'s kubeconfig only for cluster.auth.type k3s, with the server address rewritten', async () => {
    const ctx = appCtx(sb, { settings: { K3S_KUBECONFIG: join(sb.dir, 'k3s.yaml') } });
    assert.equal(await driver.cluster.kubeconfig!(ctx, {}), undefined, 'auth type kubectl: use cluster.auth');
    ctx.cluster.auth = { type: 'k3s' };
    assert.equal(await driver.cluster.kubeconfig!(ctx, {}), k3sYaml, 'local, no K3S_API_SERVER: unchanged');
    ctx.provider.settings.K3S_API_SERVER = 'https://k3s.example.com:6443';
    assert.match((await driver.cluster.kubeconfig!(ctx, {}))!, /^ {4}server: https:\/\/k3s\.example\.com:6443$/m);
    ctx.provider.settings.K3S_API_SERVER = '10.0.0.5';
    assert.match((await driver.cluster.kubeconfig!(ctx, {}))!, /^ {4}server: https:\/\/10\.0\.0\.5:6443$/m);
    ctx.provider.settings.K3S_KUBECONFIG = join(sb.dir, 'missing.yaml');
    await rejectsWith(driver.cluster.kubeconfig!(ctx, {}), 'auth', /cannot read the K3s kubeconfig .*missing\.yaml/);
  });

  it('reports the public address from the settings or the SSH host', async () => {
    const ctx = appCtx(sb, { settings: { K3S_SSH: 'root@203.0.113.7:2222', K3S_NODE: 'n1' } });
    assert.deepEqual(await driver.cluster.status!(ctx, {}), {
      diskRoot: sb.diskRoot,
      snapshotRoot: sb.snapshotRoot,
      access: 'ssh root@203.0.113.7:2222',
      node: 'n1',
      ingressIP: '203.0.113.7',
    });
    const named = appCtx(sb, { settings: { K3S_SSH: 'root@k3s.example.com', K3S_PUBLIC_IP: '198.51.100.1' } });
    const st = await driver.cluster.status!(named, {});
    assert.equal(st.ingressFQDN, 'k3s.example.com');
    assert.equal(st.ingressIP, '198.51.100.1');
  });
});

/**
 * A host whose untarStream runs SCRIPT (given the target dir) with sh on this
 * machine: the driver's tar -x path without an SSH server, and a command
 * that fails the way a node's tar does (a full disk).
 */
class ScriptedUntarFs extends LocalHostFs {
  calls = 0;
  constructor(private readonly script: (dir: string) => string) {
    super();
  }
  async untarStream(dir: string): Promise<HostUntarStream> {
    this.calls++;
    const child = spawn('sh', ['-c', this.script(dir)], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => undefined); // writes after the command ended: `finished` says why
    const finished = new Promise<void>((resolve, reject) =>
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar -x into ${dir} failed (exit code ${code}): ${stderr.trim()}`)))),
    );
    finished.catch(() => undefined);
    return { stream: child.stdin, compressed: false, finished, stop: () => child.stdin.destroy() };
  }
}

describe('K3s import through the host\'s tar -x (a local sh and GNU tar standing in for the node)', () => {
  let sb: Sandbox;
  beforeEach(async () => {
    sb = await sandbox();
  });
  afterEach(async () => sb.cleanup());
  const withHost = (fs: LocalHostFs) => new K3sDriver({ env: {} }, async () => fs);
  const archiveOf = async (dir: string) => collect((out) => packTree(new LocalHostFs(), dir, out));

  it('extracts with one tar -x: the tree digest of the source', async () => {
    const host = new ScriptedUntarFs((dir) => shellCommand(tarExtractArgv(dir, 'gnu')));
    const driver = withHost(host);
    try {
      const ctx = appCtx(sb);
      const vol = ctx.app.volumes[0]!;
      const src = await driver.disks.create(ctx, vol, { name: 'src' }, {});
      await writeSampleTree(src.id);
      const d = await driver.hostTransfer.importDisk(ctx, vol, { name: 'back' }, { stream: Readable.from([await archiveOf(src.id)]) }, {});
      assert.equal(host.calls, 1);
      assert.equal(await driver.diskDigest(ctx, d), await driver.diskDigest(ctx, src));
    } finally {
      await driver.close();
    }
  });

  it('a tar -x that fails (a full disk) fails the import with its message, as unavailable; nothing is left', async () => {
    // reads a little, then fails as GNU tar does when the disk is full
    const host = new ScriptedUntarFs((dir) => `head -c 4096 >/dev/null; echo 'tar: ${dir}/binary.bin: Cannot write: No space left on device' >&2; exit 2`);
    const driver = withHost(host);
    try {
      const ctx = appCtx(sb);
      const vol = ctx.app.volumes[0]!;
      const src = await driver.disks.create(ctx, vol, { name: 'src' }, {});
      await writeSampleTree(src.id);
      const { randomBytes } = await import('node:crypto');
      await writeFile(join(src.id, 'big.bin'), randomBytes(4 * 1024 * 1024)); // more than any pipe buffer: the writer must notice
      const archive = await archiveOf(src.id);
      const before = await snapshotOfTree(sb.dir);
      await rejectsWith(driver.hostTransfer.importDisk(ctx, vol, { name: 'full' }, { stream: Readable.from([archive]) }, {}), 'unavailable', /No space left on device/);
      assert.equal(host.calls, 1);
      assert.deepEqual(await snapshotOfTree(sb.dir), before);
    } finally {
      await driver.close();
    }
  });
});
