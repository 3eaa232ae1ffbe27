// The node's zstd SIGKILLed in the middle of an export over SSH (as the OOM
// killer ends it), through the real CLI against a real sshd on 127.0.0.1 (the
// "node" is this machine): `disk export -O FILE` fails promptly (no hang)
// saying that zstd was killed by signal 9, not that tar died of the pipe it
// left (141), and leaves neither FILE, FILE.sha256 nor a temp. The same
// export then succeeds.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { runCli } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { ONE_VOLUME_COMPOSE, k3sOpsYaml } from '../support/ops-yaml.js';
import { sshdMissing, startSshd, type Sshd } from '../support/sshd.js';

describe("disk export over SSH whose node zstd is SIGKILLed mid-stream (real CLI, real sshd)", { skip: sshdMissing() }, () => {
  let fake: FakeKube;
  let sshd: Sshd;
  let dir = '';
  let bin = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kompox-zstd-killed-'));
    bin = join(dir, 'bin');
    for (const d of ['disks', 'snapshots', 'out', 'bin']) mkdirSync(join(dir, d));
    // The node's zstd: this machine's, but while DIR/bin/kill-mid exists a compressing one (`zstd -T0 ...`)
    // passes 1 MiB of its output on and is then SIGKILLed, the process the node's pipeline runs as zstd
    // (the real one it ran dies of the pipe: its reader is gone).
    const real = spawnSync('sh', ['-c', 'command -v zstd'], { encoding: 'utf8' }).stdout.trim();
    writeFileSync(
      join(bin, 'zstd'),
      [
        '#!/bin/sh',
        `if [ "$1" = -T0 ] && [ -e "${bin}/kill-mid" ]; then`,
        `  "${real}" "$@" | { head -c 1048576; kill -KILL $$; }`,
        'fi',
        `exec "${real}" "$@"`,
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    sshd = await startSshd({ config: [`SetEnv PATH=${bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`] });
    fake = await startFakeKube({ controllers: false });
    copyFileSync(fake.kubeconfigPath, join(dir, 'kubeconfig'));
    const ssh = [`    K3S_SSH: ${sshd.target}`, `    K3S_SSH_KEY: ${sshd.keyPath}`, `    K3S_SSH_KNOWN_HOSTS: ${sshd.knownHostsPath}`];
    const yaml = k3sOpsYaml(dir, { app: 'zstd-killed', domain: 'example.com', volumes: [{ name: 'default', size: '1Gi' }] }).replace('    K3S_NODE: node1\n', `    K3S_NODE: node1\n${ssh.join('\n')}\n`);
    assert.match(yaml, /K3S_SSH: /);
    writeFileSync(join(dir, 'kompoxops.yml'), yaml);
    writeFileSync(join(dir, 'compose.yml'), ONE_VOLUME_COMPOSE);
  });

  after(async () => {
    await fake?.close();
    await sshd?.close();
    if (dir) await new LocalHostFs().rm(dir);
  });

  test('the export fails naming zstd killed by signal 9 (not tar 141), promptly, and leaves no FILE, FILE.sha256 or temp; then it succeeds', async () => {
    const created = await runCli(['disk', 'create', '-N', 'base', '-o', 'json'], { cwd: dir });
    assert.equal(created.code, 0, created.stderr);
    const disk = (JSON.parse(created.stdout) as { id: string }).id;
    // random data: the node's stream is about as big (32 MiB), so 1 MiB of it is the middle of the export
    for (let i = 0; i < 8; i++) writeFileSync(join(disk, `blob-${i}.bin`), randomBytes(4 * 1024 * 1024));

    writeFileSync(join(bin, 'kill-mid'), '');
    // a hang is the runner's kill at 60 s (code null), not a failure with a message
    const r = await runCli(['disk', 'export', '-N', 'base', '-O', 'out/x.tar.zst'], { cwd: dir, timeoutMs: 60_000 });
    assert.notEqual(r.code, null, `the export hung: ${r.stderr}`);
    assert.notEqual(r.code, 0, r.stderr);
    assert.match(r.stderr, /zstd compressing the tar stream of .* on ssh \S+ was killed by signal 9 \(SIGKILL, exit code 137\)/);
    assert.doesNotMatch(r.stderr, /tar -c|exit code 141/);
    assert.match(r.stderr, /node's zstd/, 'its advice');
    assert.deepEqual(readdirSync(join(dir, 'out')), [], 'nothing of the export left');

    rmSync(join(bin, 'kill-mid'));
    const ok = await runCli(['disk', 'export', '-N', 'base', '-O', 'out/x.tar.zst'], { cwd: dir, timeoutMs: 60_000 });
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(existsSync(join(dir, 'out', 'x.tar.zst')) && existsSync(join(dir, 'out', 'x.tar.zst.sha256')));
  });
});
