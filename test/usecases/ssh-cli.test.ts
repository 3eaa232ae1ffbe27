// Commands that reach a K3s node over SSH (K3S_SSH) must release the
// connection when they are done: an open SSH socket keeps the CLI process
// alive after its work is finished. Real sshd on 127.0.0.1, fake API server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { sshdMissing, startSshd, type Sshd } from '../support/sshd.js';
import { hostFs, writeProject } from './lifecycle-support.js';
import { measureTree } from '../../src/archive/archive.js';
import { writeSampleTree } from '../providers/k3s-fixtures.js';

const skip = sshdMissing();

describe('kompoxops with K3S_SSH exits when done (driver released)', { skip }, () => {
  let sshd: Sshd;
  let fake: FakeKube;
  let dir: string;
  before(async () => {
    sshd = await startSshd();
    fake = await startFakeKube();
    dir = await mkdtemp(join(tmpdir(), 'kompox-ssh-cli-'));
    await writeProject(dir, {
      diskRoot: join(dir, 'disks'),
      snapshotRoot: join(dir, 'snapshots'),
      kubeconfig: fake.kubeconfigPath,
      settings: { K3S_SSH: sshd.target, K3S_SSH_KEY: sshd.keyPath, K3S_SSH_KNOWN_HOSTS: sshd.knownHostsPath },
    });
  });
  after(async () => {
    await fake?.close();
    await sshd?.close();
    if (dir) await hostFs.rm(dir);
  });

  // A process still holding the SSH connection never exits on its own: it is killed after a guard
  // time (exit code null). The guard is generous, so a slow, busy machine is not mistaken for a hang.
  const run = (args: string[]) => runCli(['-C', dir, ...args], { timeoutMs: 120_000 });

  test('app deploy (disk created over SSH), disk list, app destroy', async () => {
    const d = await run(['app', 'deploy', '--no-wait']);
    assert.equal(d.code, 0, `app deploy: exit ${d.code}\n${d.stderr}`);
    assert.match(d.stderr, /created empty disk/);
    const l = await run(['disk', 'list', '-o', 'json']);
    assert.equal(l.code, 0, `disk list: exit ${l.code}\n${l.stderr}`);
    assert.equal((JSON.parse(l.stdout) as unknown[]).length, 1);
    const x = await run(['app', 'destroy', '--yes']);
    assert.equal(x.code, 0, `app destroy: exit ${x.code}\n${x.stderr}`);
  });

  test('-o json over SSH: disk export, snapshot create and snapshot export end with the transfer summary of the files on the node', async () => {
    type Transfer = { bytes: number; files: number; seconds: number; mbPerSecond: number };
    const ok = (r: { code: number | null; stderr: string }, what: string) => assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stderr}`);
    ok(await run(['disk', 'create', '-N', 'remote-1']), 'disk create');
    const d = (JSON.parse((await run(['disk', 'list', '-o', 'json'])).stdout) as Array<{ name: string; id: string }>).find((x) => x.name === 'remote-1');
    await writeSampleTree(d!.id); // the "node" is this machine
    const size = await measureTree(hostFs, d!.id);
    const want = { bytes: size.totalBytes, files: size.fileCount };
    const runs: Array<[string, string[]]> = [
      ['disk export', ['disk', 'export', '-N', 'remote-1', '-O', join(dir, 'remote-1.tar.zst'), '-o', 'json']],
      ['snapshot create', ['snapshot', 'create', '-N', 'remote-s1', '--disk', 'remote-1', '-o', 'json']],
      ['snapshot export', ['snapshot', 'export', '-N', 'remote-s1', '-O', join(dir, 'remote-s1.tar.zst'), '-o', 'json']],
    ];
    for (const [what, args] of runs) {
      const r = await run(args);
      ok(r, what);
      const t = (JSON.parse(r.stdout) as { transfer: Transfer | null }).transfer;
      assert.ok(t, `${what}: a transfer summary`);
      assert.deepEqual({ bytes: t.bytes, files: t.files }, want, what);
      assert.ok(t.seconds >= 0 && t.mbPerSecond >= 0, what);
    }
  });
});
