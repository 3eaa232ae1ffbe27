// Disk use cases with the real K3s driver on temp dirs and the real KubeClient
// adapter against the in-process fake Kubernetes API server.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KompoxError } from '../../src/domain/errors.js';
import { appNamespace } from '../../src/domain/names.js';
import { connectKubeconfig, type KubeClient } from '../../src/kube/index.js';
import type { K3sDriver } from '../../src/providers/k3s/index.js';
import {
  attachDisk,
  createDisk,
  deleteDisk,
  exportDisk,
  importDisk,
  listDisks,
  parseSizeGiB,
} from '../../src/usecases/disk.js';
import { openArchiveFile, writeArchiveFile } from '../../src/cli/files.js';
import { defaultDiskName, diskAnnotationKeys, readDiskRecord, recordCurrentDisk, resolveCurrentDisks, selectVolume } from '../../src/usecases/volumes.js';
import { readClusterFacts } from '../../src/usecases/pv-sources.js';
import { logInto } from '../support/events.js';
import { appCtx, snapshotOfTree, startK3sCluster, writeSampleTree, type K3sCluster, type Sandbox } from '../providers/k3s-fixtures.js';
import { startFakeKube } from '../support/fake-kube/index.js';
import { rejectsWith } from '../support/assertions.js';

// One K3s sandbox and fake cluster; each test works on an app of its own, so none builds on another.
describe('disk use cases (K3s driver + fake API server)', () => {
  let sb: Sandbox;
  let kube: KubeClient;
  let driver: K3sDriver;
  let env: K3sCluster | undefined;
  before(async () => {
    env = await startK3sCluster();
    ({ sb, kube, driver } = env);
  });
  after(async () => env?.close());

  async function annotations(ctx = appCtx(sb)): Promise<Record<string, string>> {
    const ns = await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: appNamespace(ctx) });
    return ns?.metadata.annotations ?? {};
  }

  it('first deploy creates one empty disk, creates the namespace and records it; later calls never create another', async () => {
    const ctx = appCtx(sb);
    ctx.app.volumes[0]!.sizeGiB = 2;
    const lines: string[] = [];
    const r1 = await resolveCurrentDisks(ctx, driver, kube, { createMissing: true }, logInto(lines));
    const d1 = r1.default!;
    assert.equal(d1.sizeGiB, 2);
    assert.match(lines.join('\n'), /created empty disk default-\d{14}/);
    const ns = await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: appNamespace(ctx) });
    assert.equal(ns!.metadata.labels!['app.kubernetes.io/managed-by'], 'kompox');
    assert.equal(ns!.metadata.annotations!['kompox.dev/app'], 'ops/k3s1/node1/my-app');
    assert.equal(ns!.metadata.annotations!['kompox.dev/provider'], 'k3s');
    assert.equal(ns!.metadata.annotations!['kompox.dev/disk-current-id'], d1.id);
    const r2 = await resolveCurrentDisks(ctx, driver, kube, { createMissing: true });
    assert.equal(r2.default!.id, d1.id);
    assert.equal((await driver.disks.list(ctx, ctx.app.volumes[0]!, {}, {})).length, 1);
    // without createMissing nothing is created for a volume with no disk
    const other = appCtx(sb, { app: 'empty-app' });
    assert.deepEqual(await resolveCurrentDisks(other, driver, kube, { createMissing: false }), { default: undefined });
    assert.deepEqual(await driver.disks.list(other, other.app.volumes[0]!, {}, {}), []);
  });

  it('lists disks with the current marker; refuses an existing name; reads sizes', async () => {
    const ctx = appCtx(sb, { app: 'list-app' });
    ctx.app.volumes[0]!.sizeGiB = 2;
    await resolveCurrentDisks(ctx, driver, kube, { createMissing: true });
    await createDisk(ctx, driver, kube, { name: 'spare', sizeGiB: parseSizeGiB('5Gi') });
    const { disks } = await listDisks(ctx, driver, kube);
    assert.deepEqual(disks.map((d) => [d.name.replace(/\d{14}$/, 'TS'), d.current, d.sizeGiB]), [
      ['default-TS', true, 2],
      ['spare', false, 5],
    ]);
    await rejectsWith(createDisk(ctx, driver, kube, { name: 'spare' }), 'conflict', /already exists/);
    // a timestamped name taken by another made within the same second: the hint says so, not "leave the name out"
    const v = ctx.app.volumes[0]!;
    const have = new Set((await listDisks(ctx, driver, kube)).disks.map((d) => d.name));
    for (const ahead of [0, 1000, 2000]) {
      const name = defaultDiskName(v.name, new Date(Date.now() + ahead));
      if (!have.has(name)) await createDisk(ctx, driver, kube, { name });
    }
    const taken = await createDisk(ctx, driver, kube, {}).then(() => undefined, (e: unknown) => e as KompoxError);
    assert.equal(taken?.code, 'disk.exists');
    assert.equal(taken.details?.generated, true);
    assert.match(taken.hint!, /made in the same second: run it again, or give a name\.$/);
    const { withCliAdvice } = await import('../../src/cli/advice.js');
    assert.match(withCliAdvice(taken).hint!, /run it again, or give a name with -N\.$/);
    const named = await createDisk(ctx, driver, kube, { name: 'spare' }).then(() => undefined, (e: unknown) => e as KompoxError);
    assert.equal(named?.details?.generated, undefined);
    assert.match(withCliAdvice(named!).hint!, /leave -N out/);
    await rejectsWith(createDisk(ctx, driver, kube, { name: '-bad' }), 'usage', /must start and end/);
    // an empty name (-N '', a variable unset in a script) is a usage error, not "not found"
    await rejectsWith(deleteDisk(ctx, driver, kube, { name: '' }), 'usage', /^the disk name is empty$/);
    await rejectsWith(attachDisk(ctx, driver, kube, { name: ' ' }), 'usage', /^the disk name is empty$/);
    // sizes: at least 1 GiB, at most 64 TiB (a typo is not recorded as 1e+22)
    await rejectsWith(createDisk(ctx, driver, kube, { name: 'zero', sizeGiB: parseSizeGiB('0') }), 'usage', /^size 0 GiB is too small: a disk holds at least 1 GiB$/);
    await rejectsWith(createDisk(ctx, driver, kube, { name: 'huge', sizeGiB: parseSizeGiB('99999999999999999999') }), 'usage', /^size 100000000000000000000 GiB is larger than any disk \(at most 65536 GiB, 64 TiB\)$/);
    await rejectsWith(createDisk(ctx, driver, kube, { name: 'half', sizeGiB: 1.5 }), 'usage', /^size 1\.5 is not a whole number of GiB$/);
    // -S with a name that is no disk or snapshot: said as such, with the names there are
    await rejectsWith(createDisk(ctx, driver, kube, { name: 'from-nothing', source: 'nosuch' }), 'usage', /^no disk or snapshot of volume default is named "nosuch" \(disks: .*spare.*; snapshots: none\), nor is it a k3s id: source "nosuch" is not a K3s disk or snapshot id; no disk was created$/);
    assert.ok((await createDisk(ctx, driver, kube, { name: 'largest', sizeGiB: parseSizeGiB('64Ti') })).sizeGiB >= 65536);
    await deleteDisk(ctx, driver, kube, { name: 'largest' });
    // the PV a hand-written manifest names with a trailing slash still holds the disk (pvUsesDisk)
    const held = await createDisk(ctx, driver, kube, { name: 'held' });
    await kube.apply({ apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: 'hand-written' }, spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], local: { path: `${held.id}/` }, storageClassName: 'x',
      nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['node1'] }] }] } } } });
    await rejectsWith(deleteDisk(ctx, driver, kube, { name: 'held', force: true }), 'conflict', /still bound to PersistentVolume hand-written/);
    await kube.delete({ apiVersion: 'v1', kind: 'PersistentVolume', name: 'hand-written' });
    await deleteDisk(ctx, driver, kube, { name: 'held' });
    assert.throws(() => parseSizeGiB('ten'), /not understood/);
    assert.equal(parseSizeGiB('1Ti'), 1024);
    const long = defaultDiskName(`${'v'.repeat(60)}-x`, new Date('2025-08-11T12:34:56Z'));
    assert.equal(long, `${'v'.repeat(48)}-20250811123456`);
    assert.equal(defaultDiskName('default', new Date('2025-08-11T12:34:56Z')), 'default-20250811123456');
  });

  it('attach swaps the current disk and keeps the old one as previous; delete refuses current always and previous without --force', async () => {
    const ctx = appCtx(sb, { app: 'attach-app' });
    await resolveCurrentDisks(ctx, driver, kube, { createMissing: true });
    await createDisk(ctx, driver, kube, { name: 'spare' });
    const before = (await listDisks(ctx, driver, kube)).disks;
    const old = before.find((d) => d.current)!;
    const r = await attachDisk(ctx, driver, kube, { name: 'spare' });
    assert.equal(r.changed, true);
    assert.equal(r.previous!.id, old.id);
    const ann = await annotations(ctx);
    assert.equal(ann['kompox.dev/disk-current-id'], r.disk.id);
    assert.equal(ann['kompox.dev/disk-previous-id'], old.id);
    assert.equal((await attachDisk(ctx, driver, kube, { name: 'spare' })).changed, false);

    const tree = await snapshotOfTree(sb.diskRoot);
    await rejectsWith(deleteDisk(ctx, driver, kube, { name: 'spare' }), 'conflict', /current disk .* refusing/);
    await rejectsWith(deleteDisk(ctx, driver, kube, { name: 'spare', force: true }), 'conflict', /current disk/);
    await rejectsWith(deleteDisk(ctx, driver, kube, { name: old.name }), 'conflict', /previous disk .* rollback/);
    await rejectsWith(deleteDisk(ctx, driver, kube, { name: 'nope' }), 'notfound', /disk "nope" not found/);
    assert.deepEqual(await snapshotOfTree(sb.diskRoot), tree);

    // roll back, then the previous is "spare"; a third disk can be deleted freely
    await attachDisk(ctx, driver, kube, { name: old.name });
    await createDisk(ctx, driver, kube, { name: 'scratch' });
    await deleteDisk(ctx, driver, kube, { name: 'scratch' });
    await deleteDisk(ctx, driver, kube, { name: 'spare', force: true });
    assert.deepEqual((await listDisks(ctx, driver, kube)).disks.map((d) => d.name), [old.name]);
  });

  it('export to a file (with FILE.sha256) and import back: same bytes; corrupt files and wrong checksums change nothing', async () => {
    const ctx = appCtx(sb, { app: 'export-app' });
    await resolveCurrentDisks(ctx, driver, kube, { createMissing: true });
    const [cur] = (await listDisks(ctx, driver, kube)).disks;
    await writeSampleTree(cur!.id);
    const file = join(sb.dir, 'export.tar.gz');
    const ex = await writeArchiveFile(file, (out) => exportDisk(ctx, driver, kube, { name: cur!.name, out }));
    assert.equal((await readFile(`${file}.sha256`, 'utf8')), `${ex.sha256}  export.tar.gz\n`);
    const imported = await importDisk(ctx, driver, kube, { name: 'from-file', archive: await openArchiveFile(file) });
    assert.equal(await driver.diskDigest(ctx, imported), await driver.diskDigest(ctx, cur!));

    const tree = await snapshotOfTree(sb.dir);
    const bytes = await readFile(file);
    const bad = join(sb.dir, 'bad.tar.gz');
    const flipped = Buffer.from(bytes);
    flipped[100]! ^= 0x10;
    await writeFile(bad, flipped);
    const treeWithBad = await snapshotOfTree(sb.dir);
    await rejectsWith(importDisk(ctx, driver, kube, { name: 'bad-1', archive: await openArchiveFile(bad) }), 'integrity', /./);
    await writeFile(`${file}.sha256`, `${'0'.repeat(64)}  export.tar.gz\n`);
    await rejectsWith(importDisk(ctx, driver, kube, { name: 'bad-2', archive: await openArchiveFile(file) }), 'integrity', /expected 0{64}/);
    await writeFile(`${file}.sha256`, `${ex.sha256}  export.tar.gz\n`);
    assert.deepEqual(await snapshotOfTree(sb.dir), treeWithBad);
    assert.ok(treeWithBad.length === tree.length + 1);
    await rejectsWith(importDisk(ctx, driver, kube, { name: 'from-file', archive: await openArchiveFile(file) }), 'conflict', /already exists/);
    await rejectsWith(openArchiveFile(join(sb.dir, 'missing.tar.gz')), 'notfound', /does not exist/);
    await rejectsWith(openArchiveFile(sb.dir), 'usage', /is a directory, not an archive file$/);
  });

  it('imports from a provider id and from another app\'s disk (--from-app)', async () => {
    const ctx = appCtx(sb, { app: 'import-app' });
    await resolveCurrentDisks(ctx, driver, kube, { createMissing: true });
    const cur = (await listDisks(ctx, driver, kube)).disks.find((d) => d.current)!;
    const byId = await importDisk(ctx, driver, kube, { name: 'by-id', fromId: cur.id });
    assert.equal(await driver.diskDigest(ctx, byId), await driver.diskDigest(ctx, cur));
    const other = appCtx(sb, { app: 'other-app', cluster: 'node2' });
    const copied = await importDisk(other, driver, kube, { name: 'copied', fromApp: { app: 'ops/k3s1/node1/import-app', disk: cur.name } });
    assert.equal(await driver.diskDigest(other, copied), await driver.diskDigest(ctx, cur));
    assert.equal(copied.tags['kompox-app'], 'ops/k3s1/node2/other-app');
    await rejectsWith(importDisk(other, driver, kube, { name: 'x', fromApp: { app: 'ops/k3s1/node1/import-app', disk: 'nope' } }), 'notfound', /disk "nope" of app/);
    await rejectsWith(importDisk(other, driver, kube, { name: 'x', fromApp: { app: 'bad' , disk: 'a'} }), 'usage', /service\/provider\/cluster\/app/);
    // a bad --from-volume is said as that option's, a usage error (not as app.volumes of this app's file)
    await assert.rejects(importDisk(other, driver, kube, { name: 'x', fromApp: { app: 'ops/k3s1/node1/import-app', disk: cur.name, volume: '../..' } }), (e: unknown) => {
      assert.ok(e instanceof KompoxError, String(e));
      assert.deepEqual([e.kind, e.code, e.field], ['usage', 'usage.volume-name', 'fromApp.volume']);
      assert.match(e.message, /^source volume "\.\.\/\.\." may contain only a-z, 0-9 and '-'$/);
      return true;
    });
    await rejectsWith(importDisk(other, driver, kube, { name: 'x' }), 'usage', /exactly one source/);
  });

  it('several volumes: -V is required, per-volume annotation keys, the primary volume keeps the spec keys', async () => {
    const ctx = appCtx(sb, { app: 'multi', volumes: ['default', 'db'] });
    assert.throws(
      () => selectVolume(ctx),
      (e: unknown) =>
        e instanceof KompoxError && /has 2 volumes; say which one$/.test(e.message) && e.hint === 'Volumes: default, db.' && e.code === 'volume.ambiguous' && (e.details?.volumes as string[]).join() === 'default,db',
    );
    assert.deepEqual(diskAnnotationKeys(ctx, ctx.app.volumes[1]!), { current: 'kompox.dev/disk-current-id.db', previous: 'kompox.dev/disk-previous-id.db' });
    const r = await resolveCurrentDisks(ctx, driver, kube, { createMissing: true });
    const ann = await annotations(ctx);
    assert.equal(ann['kompox.dev/disk-current-id'], r.default!.id);
    assert.equal(ann['kompox.dev/disk-current-id.db'], r.db!.id);
    assert.notEqual(r.default!.id, r.db!.id);
  });

  it('refuses to delete a disk a PersistentVolume still uses, even with --force', async () => {
    const ctx = appCtx(sb, { app: 'bound-app' });
    await resolveCurrentDisks(ctx, driver, kube, { createMissing: true }); // another disk is the current one
    const d = await createDisk(ctx, driver, kube, { name: 'bound' });
    await kube.apply({
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: 'pv-bound' },
      spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], storageClassName: 'kompox-local', local: { path: d.id }, persistentVolumeReclaimPolicy: 'Retain',
        // a real API server requires node affinity on a local PV
        nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['node1'] }] }] } } },
    });
    await rejectsWith(deleteDisk(ctx, driver, kube, { name: 'bound', force: true }), 'conflict', /still bound to PersistentVolume pv-bound/);
    assert.ok((await listDisks(ctx, driver, kube)).disks.some((x) => x.name === 'bound'));
    await kube.delete({ apiVersion: 'v1', kind: 'PersistentVolume', name: 'pv-bound' });
    await deleteDisk(ctx, driver, kube, { name: 'bound' });
    assert.ok(!(await listDisks(ctx, driver, kube)).disks.some((x) => x.name === 'bound'));
  });

  it('the PV node is the cluster\'s only node when K3S_NODE is not set', async () => {
    const ctx = appCtx(sb, { app: 'node-app' });
    await resolveCurrentDisks(ctx, driver, kube, { createMissing: true });
    const [d] = (await listDisks(ctx, driver, kube)).disks;
    // a cluster without nodes: the fake's default node is taken away for this test
    await kube.delete({ apiVersion: 'v1', kind: 'Node', name: 'node1' });
    // the use case reads the facts from the cluster; the driver keeps nothing between calls
    assert.deepEqual((await readClusterFacts(kube)).nodes, []);
    assert.deepEqual((driver.pvSource(ctx, ctx.app.volumes[0]!, d, await readClusterFacts(kube)) as any).source.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values, [d!.zone]);
    await kube.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'k3s-server-1', labels: { 'topology.kubernetes.io/zone': 'z1' } } });
    try {
      const facts = await readClusterFacts(kube);
      assert.deepEqual(facts.nodes, [{ name: 'k3s-server-1', zone: 'z1', labels: { 'topology.kubernetes.io/zone': 'z1' } }]);
      const src = driver.pvSource(ctx, ctx.app.volumes[0]!, d, facts).source as any;
      assert.deepEqual(src.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values, ['k3s-server-1']);
      assert.equal(src.local.path, d!.id);
    } finally {
      await kube.delete({ apiVersion: 'v1', kind: 'Node', name: 'k3s-server-1' });
      env!.fake.addNode({ name: 'node1', zone: 'zone-a' });
    }
  });

  it('two operations recording a current disk at once lose no record (resourceVersion precondition, retry on 409 Conflict)', async () => {
    const ctx = appCtx(sb, { app: 'racy' });
    const vol = ctx.app.volumes[0]!;
    await recordCurrentDisk(kube, ctx, vol, '/disks/d0');
    // the fake honours the precondition: a patch computed from an old version is refused with 409 Conflict
    const ns = (await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: appNamespace(ctx) }))!;
    await kube.mergePatch({ apiVersion: 'v1', kind: 'Namespace', name: appNamespace(ctx) }, { metadata: { annotations: { touched: 'yes' } } });
    await assert.rejects(
      kube.mergePatch({ apiVersion: 'v1', kind: 'Namespace', name: appNamespace(ctx) }, { metadata: { resourceVersion: ns.metadata.resourceVersion, annotations: { stale: 'write' } } }),
      (e: unknown) => e instanceof KompoxError && e.kind === 'conflict' && e.code === 'kube.conflict' && /has been modified/.test(e.message),
    );
    // both operations read the namespace before either writes (a barrier holds the first patch until the second is ready)
    const held = holdPatches(kube, 2);
    const [a, b] = await Promise.all([recordCurrentDisk(held.kube, ctx, vol, '/disks/d1'), recordCurrentDisk(held.kube, ctx, vol, '/disks/d2')]);
    const rec = await readDiskRecord(kube, ctx, vol);
    // the one that went second saw the other's disk: that one became the previous disk, d0 is no longer recorded
    const [first, second] = rec.currentId === '/disks/d2' ? [a, b] : [b, a];
    assert.deepEqual(first, { currentId: rec.previousId, previousId: '/disks/d0' });
    assert.deepEqual(second, { currentId: rec.currentId, previousId: rec.previousId });
    assert.deepEqual(new Set([rec.currentId, rec.previousId]), new Set(['/disks/d1', '/disks/d2']));
    assert.equal(held.patches(), 3, 'the loser was refused (409) and wrote again');
  });

  it('migration: without a record (new namespace) the disk attached last is chosen and reported, not the newest', async () => {
    // History: the first disk is attached (recorded in this cluster), a newer one is never attached.
    const ctx = appCtx(sb, { app: 'migration-app' });
    await resolveCurrentDisks(ctx, driver, kube, { createMissing: true });
    await createDisk(ctx, driver, kube, { name: 'newer' });
    const disks = (await listDisks(ctx, driver, kube)).disks;
    const fresh = await startFakeKube();
    try {
      const k2 = await connectKubeconfig({ path: fresh.kubeconfigPath });
      const lines: string[] = [];
      const r = await resolveCurrentDisks(ctx, driver, k2, { createMissing: true }, logInto(lines));
      const newest = [...disks].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.name < b.name ? 1 : -1))[0]!;
      const attached = disks.filter((d) => d.tags['kompox-attached-at']).sort((a, b) => (a.tags['kompox-attached-at']! < b.tags['kompox-attached-at']! ? 1 : -1))[0]!;
      assert.ok(attached && attached.id !== newest.id, 'the fixture history makes the newest disk differ from the one attached last');
      assert.equal(r.default!.id, attached.id);
      assert.match(lines.join('\n'), new RegExp(`no current disk is recorded; using the disk attached last, ${attached.name} \\(attached `));
      assert.equal(disks.length, (await driver.disks.list(ctx, ctx.app.volumes[0]!, {}, {})).length, 'no disk created');
      const ns = await k2.get({ apiVersion: 'v1', kind: 'Namespace', name: appNamespace(ctx) });
      assert.equal(ns!.metadata.annotations!['kompox.dev/disk-current-id'], attached.id);
    } finally {
      await fresh.close();
    }
  });
});

/** A client whose first `n` merge patches wait for each other, so that all of them were computed before any is sent. */
function holdPatches(kube: KubeClient, n: number): { kube: KubeClient; patches(): number } {
  const waiting: (() => void)[] = [];
  let count = 0;
  const wrapped: KubeClient = Object.create(kube);
  wrapped.mergePatch = async (ref, patch) => {
    count++;
    if (count <= n) {
      await new Promise<void>((resolve) => {
        waiting.push(resolve);
        if (waiting.length === n) waiting.forEach((r) => r());
      });
    }
    return kube.mergePatch(ref, patch);
  };
  return { kube: wrapped, patches: () => count };
}
