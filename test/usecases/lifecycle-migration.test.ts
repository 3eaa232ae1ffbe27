// User story: migration / failover, through the real binary. The app runs on
// cluster A (with a rollback in its history, a spare disk and a restored one,
// so the newest disk is NOT the app's data); the same kompoxops.yml pointed
// at cluster B (another API server, another cluster.name) deploys there onto
// the disk the app used last, found by tag — no new disk — and says which
// one it chose. Then the data moves to another app through an exported
// archive, by file and by pipe, verified by checksums.
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ANN_DISK_CURRENT, ANN_DISK_PREVIOUS } from '../../src/domain/model.js';
import { appNamespace, pvcName } from '../../src/domain/names.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { writeSampleTree } from '../providers/k3s-fixtures.js';
import { claimsOf, hostFs, kompoxops, namespaceOf, treeDigest, step, writeProject, type Run } from './lifecycle-support.js';

interface DiskJson {
  name: string;
  id: string;
  current: boolean;
  tags: Record<string, string>;
}

const provider = { name: 'k3s1', service: 'ops', driver: 'k3s' as const, settings: {} };
const nsOf = (app: string) => appNamespace({ service: { name: 'ops' }, provider, app: { name: app } as never });

test('story: migration to another cluster, and moving data to another app (binary, two fake API servers)', async (t) => {
  let fakeA: FakeKube;
  let fakeB: FakeKube;
  let root: string;
  let dirA: string;
  let dirB: string;
  let dirOther: string;
  const ns = nsOf('web');
  const ok = (r: Run) => assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.out}\nstderr: ${r.err}`);
  const disks = async (dir: string): Promise<DiskJson[]> => {
    const r = await kompoxops(dir, ['disk', 'list', '-o', 'json']);
    ok(r);
    return JSON.parse(r.out) as DiskJson[];
  };
  let used: DiskJson;
  let usedDigest = '';

  t.after(async () => {
    await fakeA?.close();
    await fakeB?.close();
    if (root) await hostFs.rm(root);
  });
  // set-up: two clusters, each running its controllers
    fakeA = await startFakeKube();
    fakeB = await startFakeKube();
    root = await mkdtemp(join(tmpdir(), 'kompox-lifecycle-migration-'));
    const roots = { diskRoot: join(root, 'disks'), snapshotRoot: join(root, 'snapshots') };
    dirA = join(root, 'a');
    dirB = join(root, 'b');
    dirOther = join(root, 'other');
    for (const d of [dirA, dirB, dirOther]) await mkdir(d);
    await writeProject(dirA, { ...roots, kubeconfig: fakeA.kubeconfigPath, cluster: 'cluster-a' });
    await writeProject(dirB, { ...roots, kubeconfig: fakeB.kubeconfigPath, cluster: 'cluster-b' });
    await writeProject(dirOther, { ...roots, kubeconfig: fakeA.kubeconfigPath, cluster: 'cluster-a', app: 'other' });

  await step('on cluster A: deploy, data, a spare disk, a restore attached and rolled back', async () => {
    ok(await kompoxops(dirA, ['app', 'deploy', '--timeout', '30s']));
    const [d0] = await disks(dirA);
    await writeSampleTree(d0!.id);
    ok(await kompoxops(dirA, ['snapshot', 'create', '-N', 's1']));
    ok(await kompoxops(dirA, ['disk', 'create', '-N', 'spare']));
    ok(await kompoxops(dirA, ['snapshot', 'restore', '-N', 's1', '--disk-name', 'r1', '--attach', '--timeout', '30']));
    ok(await kompoxops(dirA, ['disk', 'attach', '-N', d0!.name, '--timeout', '30'])); // rollback
    const list = await disks(dirA);
    used = list.find((d) => d.current)!;
    assert.equal(used.name, d0!.name);
    // the app's disk is neither the newest disk nor the last one created
    assert.deepEqual(list.map((d) => d.name).sort(), [d0!.name, 'r1', 'spare'].sort());
    assert.ok(list.some((d) => d.name === 'r1' && d.tags['kompox-created-at']! >= used.tags['kompox-created-at']!));
    assert.match(used.tags['kompox-attached-at']!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(used.tags['kompox-attached-at']! > list.find((d) => d.name === 'r1')!.tags['kompox-attached-at']!);
    assert.equal(list.find((d) => d.name === 'spare')!.tags['kompox-attached-at'], undefined);
    await hostFs.rm(join(used.id, 'empty.txt')); // the app keeps writing
    usedDigest = await treeDigest(used.id);
  });

  await step('on cluster B (same kompoxops.yml, another cluster): deploy finds the disk by tag, creates none, records it, says which', async () => {
    const diskDirs = async () => (await readdir(join(root, 'disks', ns, 'default'))).sort();
    const before = await diskDirs();
    assert.equal(namespaceOf(fakeB, ns), undefined);
    const r = await kompoxops(dirB, ['app', 'deploy', '--timeout', '30s']);
    ok(r);
    assert.match(r.err, new RegExp(`volume default: no current disk is recorded; using the disk attached last, ${used.name} \\(attached \\S+, ${used.id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`));
    assert.doesNotMatch(r.err, /created empty disk/);
    assert.match(r.out, /deployed: deployment web: 1\/1 ready/);
    assert.deepEqual(await diskDirs(), before);
    // same namespace name on both clusters; B records the chosen disk
    const nsB = namespaceOf(fakeB, ns);
    assert.ok(nsB, `namespace ${ns} missing on cluster B`);
    assert.equal(nsB!.annotations[ANN_DISK_CURRENT], used.id);
    assert.equal(nsB!.annotations[ANN_DISK_PREVIOUS], undefined);
    assert.equal(namespaceOf(fakeA, ns)!.annotations[ANN_DISK_CURRENT], used.id);
    assert.deepEqual(claimsOf(fakeB, ns, 'web'), [pvcName('default', used.id)]);
    // the disk tag keeps the cluster it was made on; listing on B still finds every disk
    const onB = await kompoxops(dirB, ['disk', 'list', '-o', 'json']);
    ok(onB);
    assert.equal(onB.err, '');
    const listB = JSON.parse(onB.out) as DiskJson[];
    assert.deepEqual(listB.map((d) => [d.name, d.current]).sort(), (await disks(dirA)).map((d) => [d.name, d.current]).sort());
    assert.match(listB.find((d) => d.current)!.tags['kompox-app']!, /^ops\/k3s1\/cluster-a\/web$/);
    assert.equal(await treeDigest(used.id), usedDigest);
    // a second deploy on B reads its own record: no note
    const again = await kompoxops(dirB, ['app', 'deploy', '--timeout', '30s']);
    ok(again);
    assert.doesNotMatch(again.err, /no current disk is recorded/);
  });

  await step('export on A, import into another app by file and by pipe: checksums verified, data identical', async () => {
    const ex = await kompoxops(dirA, ['disk', 'export', '-N', used.name, '-O', join(root, 'web.tar.gz')]);
    ok(ex);
    const sum = (await readFile(join(root, 'web.tar.gz.sha256'), 'utf8')).split(' ')[0]!;
    assert.match(ex.out, new RegExp(`sha256 ${sum}`));

    const byFile = await kompoxops(dirOther, ['disk', 'import', join(root, 'web.tar.gz'), '-N', 'from-file', '-o', 'json']);
    ok(byFile);
    const f = JSON.parse(byFile.out) as DiskJson;
    assert.equal(f.tags['kompox-app'], 'ops/k3s1/cluster-a/other');
    assert.ok(f.id.includes(`/${nsOf('other')}/default/from-file/`), f.id);
    assert.equal(await treeDigest(f.id), usedDigest);

    const piped = await kompoxops(dirA, ['disk', 'export', '-N', used.name, '-O', '-']);
    ok(piped);
    const pipedSum = /sha256 ([0-9a-f]{64})/.exec(piped.err)![1]!;
    const byPipe = await kompoxops(dirOther, ['disk', 'import', '-', '-N', 'from-pipe', '--sha256', pipedSum, '-o', 'json'], piped.stdout);
    ok(byPipe);
    assert.equal(await treeDigest((JSON.parse(byPipe.out) as DiskJson).id), usedDigest);

    // the other app sees only its own disks; web's are untouched
    assert.deepEqual((await disks(dirOther)).map((d) => d.name), ['from-file', 'from-pipe']);
    assert.ok(!(await disks(dirA)).some((d) => d.name.startsWith('from-')));
    // first deploy of the other app attaches the newest of its disks (none was ever attached)
    const dep = await kompoxops(dirOther, ['app', 'deploy', '--no-wait']);
    ok(dep);
    assert.match(dep.err, /using the newest disk from-pipe/);
  });
});
