// Commands that reach a K3s node over SSH (K3S_SSH) must release the
// connection when they are done: an open SSH socket keeps the CLI process
// alive after its work is finished. Real sshd on 127.0.0.1, fake API server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { sshdMissing, startSshd, type Sshd } from '../support/sshd.js';
import { hostFs } from './lifecycle-support.js';

const skip = sshdMissing();

describe('kompoxops with K3S_SSH exits when done (driver released)', { skip }, () => {
  let sshd: Sshd;
  let fake: FakeKube;
  let dir: string;
  before(async () => {
    sshd = await startSshd();
    fake = await startFakeKube();
    dir = await mkdtemp(join(tmpdir(), 'kompox-ssh-cli-'));
    await writeFile(
      join(dir, 'kompoxops.yml'),
      [
        'version: 1',
        'service: { name: ops }',
        'provider:',
        '  name: k3s1',
        '  driver: k3s',
        '  settings:',
        `    K3S_SSH: ${sshd.target}`,
        `    K3S_SSH_KEY: ${sshd.keyPath}`,
        `    K3S_SSH_KNOWN_HOSTS: ${sshd.knownHostsPath}`,
        `    K3S_DISK_ROOT: ${join(dir, 'disks')}`,
        `    K3S_SNAPSHOT_ROOT: ${join(dir, 'snapshots')}`,
        'cluster:',
        '  name: k3s',
        `  auth: { type: kubectl, kubeconfig: ${fake.kubeconfigPath} }`,
        '  domain: example.com',
        'app:',
        '  name: web',
        '  compose: compose.yml',
        '',
      ].join('\n'),
    );
    await writeFile(join(dir, 'compose.yml'), 'services:\n  web:\n    image: nginx:1.27\n    volumes: [data:/usr/share/nginx/html]\nvolumes:\n  data: {}\n');
  });
  after(async () => {
    await fake?.close();
    await sshd?.close();
    if (dir) await hostFs.rm(dir);
  });

  // Killed after 20 s: a process still holding the SSH connection never exits on its own.
  const run = (args: string[]) => runCli(['-C', dir, ...args], { timeoutMs: 20_000 });

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
