// K3S_SSH naming a port whose server does not speak SSH-2 (an old SSH-1
// server, a service that answers with bytes that are no SSH packet), through
// the real CLI: ssh2 emits a second error as it drops the failed handshake
// ("Connection lost before handshake"), and that one, unheard, crashed the
// CLI with a stack trace after its error line. Now the first error is the
// one line told, exit 1, at once (not after ssh2's 20 s handshake timer),
// and nothing of the export is left.
// And a K3S_SSH_KEY that ssh2 cannot use (protected by a passphrase, or no
// private key): its throw was an unexpected error without the file's name.
// And a node that takes the connection but never answers: a SIGTERM (or
// Ctrl-C) was told only at ssh2's handshake timeout, 20 s later.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, runCli } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { ONE_VOLUME_COMPOSE, k3sOpsYaml } from '../support/ops-yaml.js';
import { sshdMissing } from '../support/sshd.js';

const NO_STACK = /Unhandled|node:events|^\s+at /m;

describe('K3S_SSH at a server that does not speak SSH-2 (real CLI)', { skip: sshdMissing() }, () => {
  let fake: FakeKube;
  let dir = '';
  const servers: Server[] = [];
  const sockets: Socket[] = [];

  /** A server on 127.0.0.1 that sends `greeting` to each connection and keeps it open; its port. */
  async function answering(greeting: Buffer): Promise<number> {
    const s = createServer((c) => {
      sockets.push(c);
      c.on('error', () => undefined);
      c.write(greeting);
    });
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return (s.address() as { port: number }).port;
  }

  /** A project whose node is reached over SSH at `port` (its known_hosts is never read: no handshake gets that far). */
  function project(name: string, port: number): string {
    const p = join(dir, name);
    for (const d of ['disks', 'snapshots', 'out']) mkdirSync(join(p, d), { recursive: true });
    copyFileSync(fake.kubeconfigPath, join(p, 'kubeconfig'));
    const ssh = [`    K3S_SSH: root@127.0.0.1:${port}`, `    K3S_SSH_KEY: ${join(dir, 'key')}`, `    K3S_SSH_KNOWN_HOSTS: ${join(p, 'known_hosts')}`];
    writeFileSync(join(p, 'known_hosts'), '');
    const yaml = k3sOpsYaml(p, { app: name, domain: 'example.com', volumes: [{ name: 'default', size: '1Gi' }] }).replace('    K3S_NODE: node1\n', `    K3S_NODE: node1\n${ssh.join('\n')}\n`);
    assert.match(yaml, /K3S_SSH: /);
    writeFileSync(join(p, 'kompoxops.yml'), yaml);
    writeFileSync(join(p, 'compose.yml'), ONE_VOLUME_COMPOSE);
    return p;
  }

  before(async () => {
    fake = await startFakeKube({ controllers: false });
    dir = mkdtempSync(join(tmpdir(), 'kompox-not-ssh-'));
    const kg = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'key')], { encoding: 'utf8' });
    assert.equal(kg.status, 0, kg.stderr);
  });
  after(async () => {
    for (const c of sockets) c.destroy();
    for (const s of servers) await new Promise((r) => s.close(r));
    await fake?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [what, greeting, reason] of [
    ['an SSH-1 server', Buffer.from('SSH-1.5-OpenSSH_1.2.3\r\n'), /Invalid identification string/],
    ['an SSH-2 banner, then bytes that are no SSH packet', Buffer.concat([Buffer.from('SSH-2.0-x\r\n'), Buffer.alloc(64, 0xff)]), /Bad packet length/],
  ] as const) {
    test(`${what}: disk export fails with one line naming the node and the reason, exit 1, no stack trace, nothing left beside -O`, async () => {
      const p = project(what.startsWith('an SSH-1') ? 'ssh1' : 'garbage', await answering(greeting));
      const started = Date.now();
      const r = await runCli(['disk', 'export', '-N', 'base', '-O', 'out/x.tar.zst'], { cwd: p, timeoutMs: 60_000 });
      assert.equal(r.code, 1, r.stderr);
      // not held until ssh2's handshake timer (20 s) once the error is known (it ends in about a second)
      assert.ok(Date.now() - started < 15_000, `the CLI took ${Date.now() - started} ms to end after the refused handshake`);
      assert.match(r.stderr, /^error: cannot reach the K3s node over SSH at 127\.0\.0\.1:\d+: /m);
      assert.match(r.stderr, reason);
      assert.doesNotMatch(r.stderr, NO_STACK);
      assert.deepEqual(readdirSync(join(p, 'out')), []);
    });
  }

  test('a node that takes the connection and never answers: SIGTERM ends the export at once (exit 130, interrupted), not at the 20 s handshake timeout', async () => {
    const p = project('silent', await answering(Buffer.alloc(0)));
    const child = spawn(process.execPath, [BIN.kompoxops, 'disk', 'export', '-N', 'base', '-O', 'out/x.tar.zst'], { cwd: p, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    const before = sockets.length;
    // patience on a loaded machine: returns as soon as the CLI has connected
    for (const end = Date.now() + 30_000; sockets.length === before && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
    assert.ok(sockets.length > before, `the CLI did not connect within 30 s: ${stderr}`);
    const signalled = Date.now();
    child.kill('SIGTERM');
    const code = await closed;
    clearTimeout(killer);
    // it ends in about a second; held, it took the rest of ssh2's 20 s
    assert.ok(Date.now() - signalled < 15_000, `the CLI took ${Date.now() - signalled} ms to end after SIGTERM: ${stderr}`);
    assert.equal(code, 130, stderr);
    assert.match(stderr, /^error: interrupted: connecting to the node \(ssh root@127\.0\.0\.1:\d+\)/m);
    assert.doesNotMatch(stderr, NO_STACK);
    assert.deepEqual(readdirSync(join(p, 'out')), []);
  });

  test('K3S_SSH_KEY protected by a passphrase: a config error (k3s.ssh.key) naming the file and what to do, not an unexpected one', async () => {
    const p = project('passphrase', await answering(Buffer.from('SSH-2.0-x\r\n')));
    const key = join(p, 'locked_key');
    const kg = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret', '-f', key], { encoding: 'utf8' });
    assert.equal(kg.status, 0, kg.stderr);
    writeFileSync(join(p, 'kompoxops.yml'), readFileSync(join(p, 'kompoxops.yml'), 'utf8').replace(/K3S_SSH_KEY: .*/, `K3S_SSH_KEY: ${key}`));
    const r = await runCli(['disk', 'list', '-o', 'json'], { cwd: p, timeoutMs: 60_000 });
    assert.equal(r.code, 1, r.stderr);
    const body = JSON.parse(r.stderr.slice(r.stderr.indexOf('{'))) as { error: { code: string; kind: string; message: string; hint: string } };
    assert.equal(body.error.code, 'k3s.ssh.key');
    assert.equal(body.error.kind, 'config');
    assert.match(body.error.message, new RegExp(`^cannot use the SSH key ${key.replace(/[.]/g, '\\.')} to log in to root@127\\.0\\.0\\.1:\\d+: Encrypted private OpenSSH key detected, but no passphrase given$`));
    assert.match(body.error.hint, /ssh-agent/);
  });
});
