// User story: backup and rollback, through the real binary. Deploy (the
// first disk is created), the app writes data, snapshot, the data changes,
// restore the snapshot onto a new disk and attach it (redeploy; the old
// PV/PVC pair is released once the rollout is ready), roll back to the
// previous disk, delete old disks (never the current one). Checksums of the
// disk trees prove which data the app sees at every step. Then the refusals:
// each exits 1 with one paragraph and changes nothing on disk or in the cluster.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ANN_DISK_CURRENT, ANN_DISK_PREVIOUS } from '../../src/domain/model.js';
import { appNamespace, pvName, pvcName } from '../../src/domain/names.js';
import { STACK_LINE } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { snapshotOfTree, writeSampleTree } from '../providers/k3s-fixtures.js';
import {
  claimsOf,
  hostFs,
  kompoxops,
  namespaceOf,
  oneParagraph,
  treeDigest,
  volumeBindings,
  step,
  writeProject,
  type Run,
} from './lifecycle-support.js';

interface DiskJson {
  name: string;
  id: string;
  current: boolean;
}

test('story: backup and rollback (binary, K3s on temp dirs, fake API server with its controllers)', async (t) => {
  let fake: FakeKube;
  let dir: string;
  const ns = appNamespace({ service: { name: 'ops' }, provider: { name: 'k3s1', service: 'ops', driver: 'k3s', settings: {} }, app: { name: 'web' } as never });
  const ok = (r: Run) => assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.out}\nstderr: ${r.err}`);
  const refused = (r: Run, re: RegExp) => {
    assert.equal(r.code, 1, `exit ${r.code}\nstdout: ${r.out}\nstderr: ${r.err}`);
    assert.ok(oneParagraph(r.err), `not one paragraph: ${JSON.stringify(r.err)}`);
    assert.match(r.err, re);
    assert.doesNotMatch(r.err, STACK_LINE);
    assert.equal(r.out, '');
  };
  const disks = async (): Promise<DiskJson[]> => {
    const r = await kompoxops(dir, ['disk', 'list', '-o', 'json']);
    ok(r);
    return JSON.parse(r.out) as DiskJson[];
  };
  const disk = async (name: string) => (await disks()).find((d) => d.name === name)!;
  const record = () => {
    const a = namespaceOf(fake, ns)!.annotations;
    return { current: a[ANN_DISK_CURRENT], previous: a[ANN_DISK_PREVIOUS] };
  };
  // digests of the data at each step
  let original = '';
  let changed = '';
  let first: DiskJson;

  t.after(async () => {
    await fake?.close();
    if (dir) await hostFs.rm(dir);
  });
  // set-up: the fake runs the controllers (Deployment, scheduler, kubelet, PV binder)
  fake = await startFakeKube();
  dir = await mkdtemp(join(tmpdir(), 'kompox-lifecycle-backup-'));
  await writeProject(dir, { diskRoot: join(dir, 'disks'), snapshotRoot: join(dir, 'snapshots'), kubeconfig: fake.kubeconfigPath });

  await step('first deploy creates and records an empty disk; the app writes data into it', async () => {
    const r = await kompoxops(dir, ['app', 'deploy', '--timeout', '30s']);
    ok(r);
    assert.match(r.out, /deployed: deployment web: 1\/1 ready/);
    assert.match(r.err, /volume default: created empty disk default-\d{14} \(10 GiB, \/\S+\/data\)/);
    const list = await disks();
    assert.equal(list.length, 1);
    first = list[0]!;
    assert.equal(first.current, true);
    assert.deepEqual(record(), { current: first.id, previous: undefined });
    assert.deepEqual(claimsOf(fake, ns, 'web'), [pvcName('default', first.id)]);
    await writeSampleTree(first.id);
    original = await treeDigest(first.id);
  });

  await step('snapshot, then the data changes', async () => {
    const s = await kompoxops(dir, ['snapshot', 'create', '-N', 'snap1']);
    ok(s);
    assert.match(s.err, /note: k3s snapshots copy the disk file by file/); // the app is running
    const list = JSON.parse((await kompoxops(dir, ['snapshot', 'list', '-o', 'json'])).out) as Array<{ name: string; sourceDiskId: string; sha256: string }>;
    assert.deepEqual(
      list.map((x) => [x.name, x.sourceDiskId]),
      [['snap1', first.id]],
    );
    assert.match(list[0]!.sha256, /^[0-9a-f]{64}$/);
    await writeFile(join(first.id, 'binary.bin'), 'overwritten by a bad migration');
    await writeFile(join(first.id, 'new.txt'), 'written after the snapshot\n');
    changed = await treeDigest(first.id);
    assert.notEqual(changed, original);
  });

  await step('restore --attach: a new disk with the snapshot data, the Deployment claims it, the old PV/PVC pair is released after the rollout', async () => {
    const oldBinding = { pv: pvName(ns, 'default', first.id), pvc: pvcName('default', first.id) };
    assert.deepEqual(volumeBindings(fake, ns), { pvs: [oldBinding.pv], pvcs: [oldBinding.pvc] });
    const r = await kompoxops(dir, ['snapshot', 'restore', '-N', 'snap1', '--disk-name', 'r1', '--attach', '--timeout', '30']);
    ok(r);
    assert.match(r.out, new RegExp(`attached disk r1 to volume default \\(previous: ${first.name}\\)`));
    assert.match(r.out, /deployed: deployment web: 1\/1 ready/);
    assert.match(r.err, new RegExp(`released PersistentVolumeClaim ${ns}/${oldBinding.pvc}`));
    assert.match(r.err, new RegExp(`released PersistentVolume ${oldBinding.pv} \\(reclaim policy Retain: the disk is kept\\)`));
    const r1 = await disk('r1');
    assert.equal(r1.current, true);
    assert.deepEqual(claimsOf(fake, ns, 'web'), [pvcName('default', r1.id)]);
    assert.deepEqual(volumeBindings(fake, ns), { pvs: [pvName(ns, 'default', r1.id)], pvcs: [pvcName('default', r1.id)] });
    assert.deepEqual(record(), { current: r1.id, previous: first.id });
    // the restored disk holds the snapshot's data; the old disk is kept as it was
    assert.equal(await treeDigest(r1.id), original);
    assert.equal(await treeDigest(first.id), changed);
  });

  await step('disk list shows the current disk; the table marks it', async () => {
    const t = await kompoxops(dir, ['disk', 'list']);
    ok(t);
    const lines = t.out.trimEnd().split('\n');
    assert.match(lines[0]!, /^NAME\s+CURRENT\s+SIZE\s+USED\s+CREATED\s+ID$/);
    assert.match(t.out, new RegExp(`^${first.name}\\s+previous\\s+10Gi`, 'm'));
    assert.match(t.out, /^r1\s+\*\s+10Gi\s+[\d.]+KiB\s/m);
    assert.equal(t.err, '');
  });

  await step('refusals exit 1 with one paragraph and change nothing (disk tree, snapshot tree, namespace annotations)', async () => {
    const r1 = await disk('r1');
    const exported = await kompoxops(dir, ['disk', 'export', '-N', 'r1', '-O', 'good.tar.gz']);
    ok(exported);
    const good = await readFile(join(dir, 'good.tar.gz'));
    const flipped = Buffer.from(good);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
    await writeFile(join(dir, 'corrupt.tar.gz'), flipped);
    await writeFile(join(dir, 'short.tar.gz'), good.subarray(0, Math.floor(good.length * 0.7)));
    await writeFile(join(dir, 'sidecar.tar.gz'), good);
    await writeFile(join(dir, 'sidecar.tar.gz.sha256'), `${'0'.repeat(64)}  sidecar.tar.gz\n`);
    const before = { tree: await snapshotOfTree(dir), ns: namespaceOf(fake, ns)!.json, bindings: volumeBindings(fake, ns), claims: claimsOf(fake, ns, 'web') };

    refused(await kompoxops(dir, ['disk', 'delete', '-N', 'r1']), /disk "r1" is the current disk of volume default; refusing to delete it\. Attach another disk first/);
    refused(await kompoxops(dir, ['disk', 'delete', '-N', 'r1', '--force']), /current disk .*--force does not override this/);
    refused(await kompoxops(dir, ['snapshot', 'restore', '-N', 'snap1', '--disk-name', first.name]), /already exists for volume default; a restore always makes a new disk/);
    refused(await kompoxops(dir, ['snapshot', 'restore', '-N', 'snap1', '--disk-name', 'r1', '--attach']), /disk "r1" already exists/);
    refused(await kompoxops(dir, ['disk', 'import', 'corrupt.tar.gz', '-N', 'bad1']), /corrupt\.tar\.gz: .*no disk was created/);
    refused(await kompoxops(dir, ['disk', 'import', 'short.tar.gz', '-N', 'bad2']), /short\.tar\.gz: .*no disk was created/);
    refused(await kompoxops(dir, ['disk', 'import', 'good.tar.gz', '-N', 'bad3', '--sha256', 'a'.repeat(64)]), /good\.tar\.gz: .*SHA-256 is [0-9a-f]{64}, expected a{64}; no disk was created/);
    refused(await kompoxops(dir, ['disk', 'import', 'sidecar.tar.gz', '-N', 'bad4']), /sidecar\.tar\.gz: .*expected 0{64}; no disk was created/);
    refused(await kompoxops(dir, ['disk', 'import', '-', '-N', 'bad5'], flipped), /^error: stdin: .*no disk was created/);
    refused(await kompoxops(dir, ['disk', 'import', '-', '-N', 'bad6'], good.subarray(0, 1000)), /^error: stdin: .*no disk was created/);
    refused(await kompoxops(dir, ['disk', 'import', '-', '-N', 'bad7', '--sha256', 'b'.repeat(64)], good), /^error: stdin: .*expected b{64}; no disk was created/);

    assert.deepEqual(await snapshotOfTree(dir), before.tree);
    assert.equal(namespaceOf(fake, ns)!.json, before.ns);
    assert.deepEqual(volumeBindings(fake, ns), before.bindings);
    assert.deepEqual(claimsOf(fake, ns, 'web'), before.claims);
    assert.equal(await treeDigest(r1.id), original);
  });

  await step('disk attach of the previous disk rolls back (redeploys onto it and releases the restored disk binding)', async () => {
    const r1 = await disk('r1');
    const r = await kompoxops(dir, ['disk', 'attach', '-N', first.name, '--timeout', '30']);
    ok(r);
    assert.match(r.out, new RegExp(`attached disk ${first.name} to volume default \\(previous: r1\\)`));
    assert.match(r.out, /deployed: deployment web: 1\/1 ready/);
    assert.deepEqual(claimsOf(fake, ns, 'web'), [pvcName('default', first.id)]);
    assert.deepEqual(volumeBindings(fake, ns), { pvs: [pvName(ns, 'default', first.id)], pvcs: [pvcName('default', first.id)] });
    assert.deepEqual(record(), { current: first.id, previous: r1.id });
    const list = (await disks()) as Array<DiskJson & { previous: boolean }>;
    assert.deepEqual(
      list.map((d) => [d.name, d.current, d.previous]),
      [
        [first.name, true, false],
        ['r1', false, true],
      ],
    );
    assert.equal(await treeDigest(first.id), changed);
    assert.equal(await treeDigest(r1.id), original);
  });

  await step('old disks can be deleted (the previous one with --force), the current one never', async () => {
    ok(await kompoxops(dir, ['snapshot', 'restore', '-N', 'snap1', '--disk-name', 'r2']));
    const r2 = await disk('r2');
    assert.equal(await treeDigest(r2.id), original);
    const del = await kompoxops(dir, ['disk', 'delete', '-N', 'r2']);
    ok(del);
    assert.match(del.out, /^deleted disk r2 \(\S+\/r2\/data\)\n$/);
    assert.equal(await hostFs.lstat(r2.id), undefined);
    refused(await kompoxops(dir, ['disk', 'delete', '-N', 'r1']), /previous disk of volume default \(the rollback target\); refusing to delete it\. Add --force/);
    const forced = await kompoxops(dir, ['disk', 'delete', '-N', 'r1', '--force']);
    ok(forced);
    refused(await kompoxops(dir, ['disk', 'delete', '-N', first.name, '--force']), /current disk/);
    assert.deepEqual(
      (await disks()).map((d) => [d.name, d.current]),
      [[first.name, true]],
    );
    assert.equal(await treeDigest(first.id), changed);
    // the snapshot outlives the disks it was restored into
    const again = await kompoxops(dir, ['snapshot', 'restore', '-N', 'snap1', '--disk-name', 'r3']);
    ok(again);
    assert.equal(await treeDigest((await disk('r3')).id), original);
  });
});
