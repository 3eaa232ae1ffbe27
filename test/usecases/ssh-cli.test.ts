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
});
