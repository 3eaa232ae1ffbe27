// `--via` through the real binary (node bin/kompoxops.mjs): the K3s driver on
// temp dirs and the fake API server with its controllers, whose kubelet runs
// the helper pod's tar for real. An archive exported through the cluster
// imports on the host path and the other way round, a snapshot exported
// through the cluster (a temporary disk) leaves no disk listed, and a bad
// --via is a usage error naming the flag's values.
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { STACK_LINE } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { isHelperTar, writeSampleTree } from '../providers/k3s-fixtures.js';
import { hostFs, kompoxops, treeDigest, writeProject, type Run } from './lifecycle-support.js';

test('kompoxops disk export / import / snapshot export --via cluster|host (binary, fake kubelet runs the helper)', async (t) => {
  let fake: FakeKube | undefined;
  let dir: string | undefined;
  t.after(async () => {
    await fake?.close();
    if (dir) await hostFs.rm(dir);
  });
  const ok = (r: Run) => assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.out}\nstderr: ${r.err}`);
  fake = await startFakeKube();
  dir = await mkdtemp(join(tmpdir(), 'kompox-transfer-cli-'));
  await writeProject(dir, { diskRoot: join(dir, 'disks'), snapshotRoot: join(dir, 'snapshots'), kubeconfig: fake.kubeconfigPath });
  const disks = async () => JSON.parse((await kompoxops(dir!, ['disk', 'list', '-o', 'json'])).out) as Array<{ name: string; id: string }>;

  ok(await kompoxops(dir, ['disk', 'create', '-N', 'd1']));
  const d1 = (await disks()).find((d) => d.name === 'd1')!;
  await writeSampleTree(d1.id);
  const original = await treeDigest(d1.id);

  const ex = await kompoxops(dir, ['disk', 'export', '-N', 'd1', '-O', 'c.tar.zst', '--via', 'cluster']);
  ok(ex);
  assert.match(ex.out, /exported disk d1 to c\.tar\.zst \(\d+ bytes, sha256 [0-9a-f]{64}/);
  assert.ok(fake.hostExecs.some((x) => isHelperTar(x.command, '-c') && x.exitCode === 0), 'tar -c ran in a helper pod');
  ok(await kompoxops(dir, ['disk', 'import', 'c.tar.zst', '-N', 'on-host', '--via', 'host']));
  ok(await kompoxops(dir, ['disk', 'export', '-N', 'd1', '-O', 'h.tar.zst']));
  ok(await kompoxops(dir, ['disk', 'import', 'h.tar.zst', '-N', 'via-cluster', '--via', 'cluster']));
  ok(await kompoxops(dir, ['snapshot', 'create', '-N', 's1', '--disk', 'd1']));
  ok(await kompoxops(dir, ['snapshot', 'export', '-N', 's1', '-O', 's.tar.gz', '--format', 'tar.gz', '--via', 'cluster']));
  ok(await kompoxops(dir, ['disk', 'import', 's.tar.gz', '-N', 'from-snap']));
  const after = await disks();
  for (const name of ['on-host', 'via-cluster', 'from-snap']) {
    const d = after.find((x) => x.name === name);
    assert.ok(d, `disk ${name} is listed`);
    assert.equal(await treeDigest(d.id), original, `disk ${name} holds the same tree`);
  }
  assert.deepEqual(after.map((d) => d.name).sort(), ['d1', 'from-snap', 'on-host', 'via-cluster'], 'no temporary disk is listed');

  const bad = await kompoxops(dir, ['disk', 'export', '-N', 'd1', '-O', 'x.tar.zst', '--via', 'teleport']);
  assert.equal(bad.code, 2, bad.err);
  assert.match(bad.err, /^error: --via "teleport" is not host, cluster or auto/);
  assert.match(bad.err, /--via host/);
  assert.doesNotMatch(bad.err, STACK_LINE);
});
