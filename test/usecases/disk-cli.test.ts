// The disk and snapshot verbs end to end through the real binary
// (node bin/kompoxops.mjs): a kompoxops.yml with driver k3s whose disk and
// snapshot roots are temp dirs, and the fake API server's kubeconfig. The
// steps build on each other (the disks and snapshots of one are the input of
// the next), so they are one test.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { STACK_LINE } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { snapshotOfTree, writeSampleTree } from '../providers/k3s-fixtures.js';
import { hostFs, kompoxops, step, treeDigest, writeProject, type Run } from './lifecycle-support.js';

test('kompoxops disk / snapshot (binary, K3s driver on temp dirs, fake API server)', async (t) => {
  let fake: FakeKube;
  let dir: string;
  let diskRoot: string;
  const ok = (r: Run) => assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.out}\nstderr: ${r.err}`);
  const refused = (r: Run, re: RegExp) => {
    assert.equal(r.code, 1, `exit ${r.code}\nstderr: ${r.err}`);
    assert.match(r.err, /^error: /);
    assert.match(r.err, re);
    assert.doesNotMatch(r.err, STACK_LINE);
  };
  const disks = async () => JSON.parse((await kompoxops(dir, ['disk', 'list', '-o', 'json'])).out) as Array<{ name: string; id: string; current: boolean }>;

  t.after(async () => {
    await fake?.close();
    if (dir) await hostFs.rm(dir);
  });
  // set-up; no controllers: a redeploy is applied but never becomes ready (see attach --deploy)
    fake = await startFakeKube({ controllers: false });
    dir = await mkdtemp(join(tmpdir(), 'kompox-disk-cli-'));
    diskRoot = join(dir, 'disks');
    await writeProject(dir, { diskRoot, snapshotRoot: join(dir, 'snapshots'), kubeconfig: fake.kubeconfigPath, cluster: 'k3s' });

  await step('create, list, attach', async () => {
    const empty = await kompoxops(dir, ['disk', 'list']);
    ok(empty);
    assert.equal(empty.out, 'NAME  CURRENT  SIZE  USED  CREATED  ID\n');
    ok(await kompoxops(dir, ['disk', 'create', '-N', 'd1', '--size', '3Gi']));
    const list = await kompoxops(dir, ['disk', 'list']);
    ok(list);
    assert.match(list.out, /^d1\s+\*\s+3Gi\s+0B\s+\S+Z\s+\/.*\/d1\/data$/m);
    assert.match(list.err, /no current disk is recorded; using the newest disk d1/);
    const att = await kompoxops(dir, ['disk', 'attach', '-N', 'd1']);
    ok(att);
    assert.match(att.out, /attached disk d1 to volume default/);
    assert.match(att.err, /the app is not deployed/);
    const again = await kompoxops(dir, ['disk', 'list']);
    assert.doesNotMatch(again.err, /no current disk/);
  });

  await step('snapshot → change → restore --attach → export → import: checksums prove no byte is lost', async () => {
    const [d1] = await disks();
    await writeSampleTree(d1!.id);
    const original = await treeDigest(d1!.id);
    ok(await kompoxops(dir, ['snapshot', 'create', '-N', 's1']));
    const sl = await kompoxops(dir, ['snapshot', 'list', '-o', 'yaml']);
    ok(sl);
    assert.match(sl.out, /name: s1/);
    await writeFile(join(d1!.id, 'binary.bin'), 'changed');

    const rs = await kompoxops(dir, ['snapshot', 'restore', '-N', 's1', '--disk-name', 'r1', '--attach']);
    ok(rs);
    assert.match(rs.out, /attached disk r1 to volume default \(previous: d1\)/);
    const after = await disks();
    const r1 = after.find((d) => d.name === 'r1')!;
    assert.equal(r1.current, true);
    assert.equal(await treeDigest(r1.id), original);

    const file = join(dir, 'r1.tar.gz');
    const ex = await kompoxops(dir, ['disk', 'export', '-N', 'r1', '-O', 'r1.tar.gz']);
    ok(ex);
    // a zstd archive under a .tar.gz name: imported all the same, but said
    assert.match(ex.err, /warning: r1\.tar\.gz is named as a tar\.gz archive but is written as tar\.zst \(the default; give --format tar\.gz for gzip\)/);
    const sum = (await readFile(`${file}.sha256`, 'utf8')).split(' ')[0]!;
    assert.match(ex.out, new RegExp(`sha256 ${sum}`));
    ok(await kompoxops(dir, ['disk', 'import', 'r1.tar.gz', '-N', 'i1']));
    assert.equal(await treeDigest((await disks()).find((d) => d.name === 'i1')!.id), original);

    // stdout → stdin
    const piped = await kompoxops(dir, ['disk', 'export', '-N', 'r1', '-O', '-']);
    ok(piped);
    assert.match(piped.err, /exported disk r1: \d+ bytes, sha256 [0-9a-f]{64}/);
    const pipedSum = /sha256 ([0-9a-f]{64})/.exec(piped.err)![1]!;
    ok(await kompoxops(dir, ['disk', 'import', '-', '-N', 'i2', '--sha256', pipedSum], piped.stdout));
    assert.equal(await treeDigest((await disks()).find((d) => d.name === 'i2')!.id), original);

    // snapshot export is the stored archive
    const sx = await kompoxops(dir, ['snapshot', 'export', '-N', 's1', '-O', 's1.tar.gz']);
    ok(sx);
    // stored as tar.zst: its .tar.gz name is said as disk export says it; one stored as tar.gz under that name is not
    assert.match(sx.err, /warning: s1\.tar\.gz is named as a tar\.gz archive but is written as tar\.zst/);
    const gz = await kompoxops(dir, ['snapshot', 'export', '-N', 's1', '--format', 'tar.gz', '-O', 's1-gz.tar.gz']);
    ok(gz);
    assert.doesNotMatch(gz.err, /warning/);
    ok(await kompoxops(dir, ['disk', 'import', 's1.tar.gz', '-N', 'i3']));
    assert.equal(await treeDigest((await disks()).find((d) => d.name === 'i3')!.id), original);
  });

  await step('refusals exit non-zero with one clear message and change nothing', async () => {
    const good = await readFile(join(dir, 'r1.tar.gz'));
    const flipped = Buffer.from(good);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x40;
    await writeFile(join(dir, 'corrupt.tar.gz'), flipped);
    await writeFile(join(dir, 'short.tar.gz'), good.subarray(0, good.length - 64));
    // every entry as listed, but the manifest's totals claim one file more
    const work = await mkdtemp(join(tmpdir(), 'kompox-totals-'));
    const zstd = good[0] === 0x28; // (the magic of a zstd frame; else gzip)
    execFileSync('sh', ['-c', `${zstd ? 'zstd -dc -q' : 'gzip -dc'} < "$1" | tar -x -f - -C "$2"`, 'sh', join(dir, 'r1.tar.gz'), work]);
    const m = JSON.parse(await readFile(join(work, 'kompox-archive.json'), 'utf8')) as { fileCount: number };
    await writeFile(join(work, 'kompox-archive.json'), JSON.stringify({ ...m, fileCount: m.fileCount + 1 }));
    execFileSync('sh', ['-c', `cd "$1" && tar -c -f - --format=pax data kompox-archive.json | ${zstd ? 'zstd -q -c' : 'gzip -c'} > "$2"`, 'sh', work, join(dir, 'totals.tar.gz')]);
    await rm(work, { recursive: true });
    const before = await snapshotOfTree(dir);

    refused(await kompoxops(dir, ['disk', 'delete', '-N', 'r1']), /current disk of volume default; refusing to delete it/);
    refused(await kompoxops(dir, ['disk', 'delete', '-N', 'r1', '--force']), /current disk/);
    refused(await kompoxops(dir, ['disk', 'delete', '-N', 'd1']), /previous disk .*Add --force/);
    refused(await kompoxops(dir, ['snapshot', 'restore', '-N', 's1', '--disk-name', 'i1']), /disk "i1" already exists .* a restore always makes a new disk/);
    refused(await kompoxops(dir, ['disk', 'create', '-N', 'i1']), /already exists/);
    refused(await kompoxops(dir, ['disk', 'import', 'corrupt.tar.gz', '-N', 'bad1']), /corrupt\.tar\.gz: the archive .*; no disk was created/);
    refused(await kompoxops(dir, ['disk', 'import', 'short.tar.gz', '-N', 'bad2']), /short\.tar\.gz: .*(truncated|gzip).*no disk was created/);
    refused(await kompoxops(dir, ['disk', 'import', 'r1.tar.gz', '-N', 'bad3', '--sha256', 'f'.repeat(64)]), /SHA-256 is [0-9a-f]{64}, expected f{64}; no disk was created/);
    refused(await kompoxops(dir, ['disk', 'import', '-', '-N', 'bad4'], flipped), /^error: stdin: the archive/);
    refused(
      await kompoxops(dir, ['disk', 'import', 'totals.tar.gz', '-N', 'bad6']),
      new RegExp(`^error: \\S*/totals\\.tar\\.gz: the manifest says the archive holds ${m.fileCount + 1} files, but it holds ${m.fileCount}; no disk was created`),
    );
    const badSum = await kompoxops(dir, ['disk', 'import', 'r1.tar.gz', '-N', 'bad5', '--sha256', 'xyz']);
    assert.equal(badSum.code, 2);
    assert.match(badSum.err, /--sha256 "xyz" is not a SHA-256/);
    refused(await kompoxops(dir, ['disk', 'export', '-N', 'nope', '-O', 'nope.tar.gz']), /disk "nope" not found/);
    refused(await kompoxops(dir, ['disk', 'export', '-N', 'r1', '-O', 'r1.tar.gz']), /r1\.tar\.gz already exists; refusing to overwrite it/);
    const usage = await kompoxops(dir, ['disk', 'list', '-V', 'other']);
    assert.equal(usage.code, 2);
    assert.match(usage.err, /app web has no volume "other"\. Volumes: default\./);
    assert.deepEqual(await snapshotOfTree(dir), before);
  });

  await step('--zone on the K3s driver (no zones): the typed unsupported error, exit 1, nothing created', async () => {
    const before = await snapshotOfTree(dir);
    refused(await kompoxops(dir, ['disk', 'create', '-N', 'z1', '--zone', 'zone-a']), /^error: disk create in a zone is not supported by the k3s driver$/m);
    refused(await kompoxops(dir, ['snapshot', 'restore', '-N', 'any', '--zone', 'zone-a']), /^error: snapshot restore into a zone is not supported by the k3s driver$/m);
    const bad = await kompoxops(dir, ['disk', 'create', '-N', 'z2', '--zone', 'not a zone']);
    assert.equal(bad.code, 2, bad.err);
    assert.match(bad.err, /^error: zone "not a zone" may contain only letters.*--zone japaneast-1/);
    assert.deepEqual(await snapshotOfTree(dir), before);
  });

  await step('attach --deploy redeploys onto the disk: the PV is a local volume at the disk id, pinned to K3S_NODE; the old PV stays until the new pod runs', async () => {
    const { connectKubeconfig } = await import('../../src/kube/index.js');
    const kube = await connectKubeconfig({ path: fake.kubeconfigPath });
    const first = await kompoxops(dir, ['disk', 'attach', '-N', 'i1', '--deploy', '--timeout', '1']);
    // the fake API server runs no controllers: applied, but never ready
    assert.equal(first.code, 3, first.err);
    assert.match(first.out, /attached disk i1 to volume default \(previous: r1\)/);
    assert.match(first.out, /applied, but not ready within 1s/);
    assert.match(first.err, /old PersistentVolume\/PersistentVolumeClaim are kept/);
    const i1 = (await disks()).find((d) => d.name === 'i1')!;
    const pvs = await kube.list('v1', 'PersistentVolume');
    const pv = pvs.find((p) => (p.spec as { local?: { path?: string } }).local?.path === i1.id);
    assert.ok(pv, `no PV for ${i1.id}: ${JSON.stringify(pvs.map((p) => p.spec))}`);
    const spec = pv!.spec as { nodeAffinity: { required: { nodeSelectorTerms: Array<{ matchExpressions: Array<{ values: string[] }> }> } }; persistentVolumeReclaimPolicy: string };
    assert.deepEqual(spec.nodeAffinity.required.nodeSelectorTerms[0]!.matchExpressions[0]!.values, ['node1']);
    assert.equal(spec.persistentVolumeReclaimPolicy, 'Retain');
    // the disk bound to the PV cannot be deleted, even after swapping back
    const back = await kompoxops(dir, ['disk', 'attach', '-N', 'r1', '--timeout', '1']); // deployed: redeploys by itself
    assert.equal(back.code, 3, back.err);
    assert.match(back.out, /attached disk r1 to volume default \(previous: i1\)/);
    refused(await kompoxops(dir, ['disk', 'delete', '-N', 'i1', '--force']), /still bound to PersistentVolume/);
  });

  await step('deletes a non-current disk and a snapshot', async () => {
    const d = await kompoxops(dir, ['disk', 'delete', '-N', 'i3']);
    ok(d);
    assert.match(d.out, /deleted disk i3/);
    ok(await kompoxops(dir, ['snapshot', 'delete', '-N', 's1']));
    assert.equal((await kompoxops(dir, ['snapshot', 'list'])).out, 'NAME  SIZE  CREATED  SOURCE  ID\n');
    assert.ok(!(await disks()).some((x) => x.name === 'i3'));
  });
});

test('disk export and import on the host path (K3s) never reach the cluster: they work with its API server down; disk list, which needs it, says so', async (t) => {
  const fake = await startFakeKube({ controllers: false });
  const dir = await mkdtemp(join(tmpdir(), 'kompox-disk-nokube-'));
  t.after(async () => {
    await fake.close();
    await hostFs.rm(dir);
  });
  const roots = { diskRoot: join(dir, 'disks'), snapshotRoot: join(dir, 'snapshots'), cluster: 'k3s' };
  const up = join(dir, 'up');
  const down = join(dir, 'down');
  await mkdir(up);
  await mkdir(down);
  await writeProject(up, { ...roots, kubeconfig: fake.kubeconfigPath });
  const deadConfig = join(dir, 'dead.kubeconfig');
  // nothing listens on the discard port of loopback: every request is refused
  await writeFile(
    deadConfig,
    'apiVersion: v1\nkind: Config\nclusters: [{ name: c, cluster: { server: "https://127.0.0.1:9", insecure-skip-tls-verify: true } }]\nusers: [{ name: u, user: { token: t } }]\ncontexts: [{ name: x, context: { cluster: c, user: u } }]\ncurrent-context: x\n',
  );
  await writeProject(down, { ...roots, kubeconfig: deadConfig });
  const run = (d: string, args: string[]) => kompoxops(d, args);
  const ok = (r: Run, what: string) => assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.err}`);
  ok(await run(up, ['disk', 'create', '-N', 'd1']), 'disk create');
  const id = (JSON.parse((await run(up, ['disk', 'list', '-o', 'json'])).out) as Array<{ name: string; id: string }>).find((x) => x.name === 'd1')!.id;
  await writeSampleTree(id);

  const archive = join(dir, 'd1.tar.zst');
  ok(await run(down, ['disk', 'export', '-N', 'd1', '-O', archive]), 'disk export with the API server down');
  ok(await run(down, ['disk', 'import', archive, '-N', 'd2']), 'disk import with the API server down');
  const d2 = (JSON.parse((await run(up, ['disk', 'list', '-o', 'json'])).out) as Array<{ name: string; id: string }>).find((x) => x.name === 'd2');
  assert.ok(d2, 'the imported disk is listed');
  assert.equal(await treeDigest(d2.id), await treeDigest(id));
  // the same project's command that does need the cluster fails: the API server really is down
  const list = await run(down, ['disk', 'list']);
  assert.equal(list.code, 1, list.err);
  assert.match(list.err, /^error: /);
});
