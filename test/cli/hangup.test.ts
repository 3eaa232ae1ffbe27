// An export or import over SSH cut short, through the real CLI against a
// real sshd on 127.0.0.1 (the "node" is this machine), while the node's
// command is held by the stream (a zstd that reads nothing):
//   - its terminal closed (SIGHUP: the window closed, the SSH session it ran
//     in lost). The CLI died of the signal at once: the export's temp file
//     stayed beside -O, the half-made disk of an import on the node, and
//     the node's held command ran on. Now a hang-up is a cancel, as Ctrl-C
//     is: exit 130, "interrupted", nothing left here or on the node.
//   - the SSH connection lost (the node's sshd killed). Requests on the SFTP
//     session after the loss were queued forever by ssh2: the export's look
//     whether its disk was deleted meanwhile never returned, and the CLI
//     exited with code 13 ("unsettled top-level await"), no error, its temp
//     file left. Now it fails with its error, exit 1, nothing left. And the
//     error says the connection was lost (not "exit code none", nor a tar
//     that "did not finish" with advice about the files it may read), for a
//     snapshot's archive too (its cat's "exit code none" was unexpected),
//     with its stable code, k3s.ssh.lost (an export packed on the node and an
//     import extracted there gave the bare kind, unavailable).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { BIN, runCli } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { ONE_VOLUME_COMPOSE, k3sOpsYaml } from '../support/ops-yaml.js';
import { sshdMissing, startSshd, type Sshd } from '../support/sshd.js';

const NO_STACK = /Unhandled|node:events|^\s+at /m;

describe('an export or import over SSH cut short: a hang-up (SIGHUP), the connection lost (real CLI, real sshd)', { skip: sshdMissing() }, () => {
  let fake: FakeKube;
  let sshd: Sshd;
  let dir = '';
  let bin = '';
  let volumeDir = '';
  let archive: Buffer;

  /** The node's processes held by DIR/bin/hold (the zstd that reads nothing). */
  const held = () => spawnSync('pgrep', ['-f', '--', `tail -f ${bin}/hold`], { encoding: 'utf8' }).stdout.trim();

  /** The node's tool probes held by DIR/bin/hang-probe. */
  const probing = () => spawnSync('pgrep', ['-f', '--', `tail -f ${bin}/hang-probe`], { encoding: 'utf8' }).stdout.trim();

  /** Polls `cond` up to 30 s (patience on a loaded machine; returns as soon as it holds). */
  async function until(cond: () => boolean, what: string): Promise<void> {
    for (const end = Date.now() + 30_000; !cond(); await new Promise((r) => setTimeout(r, 50))) if (Date.now() > end) assert.fail(`${what} within 30 s`);
  }

  /** Starts the CLI; its stdin a pipe the test holds open. */
  function start(args: string[]): { child: ChildProcess; closed: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> } {
    const child = spawn(process.execPath, [BIN.kompoxops, ...args], { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['pipe', 'ignore', 'pipe'] });
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin!.on('error', () => undefined);
    const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
      child.on('close', (code, signal) => {
        clearTimeout(killer);
        resolve({ code, signal, stderr });
      }),
    );
    return { child, closed };
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kompox-hangup-'));
    bin = join(dir, 'bin');
    for (const d of ['disks', 'snapshots', 'out', 'bin']) mkdirSync(join(dir, d));
    // The node's cat: this machine's, but while DIR/bin/hold exists one streaming an archive (`cat -- X.tar.zst`)
    // that sends nothing
    const cat = spawnSync('sh', ['-c', 'command -v cat'], { encoding: 'utf8' }).stdout.trim();
    writeFileSync(
      join(bin, 'cat'),
      ['#!/bin/sh', `if [ "$1" = -- ] && [ -e "${bin}/hold" ]; then case "$2" in *.tar.zst) exec tail -f "${bin}/hold";; esac; fi`, `exec "${cat}" "$@"`, ''].join('\n'),
      { mode: 0o755 },
    );
    // The node's zstd: this machine's, but while DIR/bin/hold exists one compressing (`zstd -T0 ...`) or
    // decompressing (`zstd -dc ...`) that reads nothing and never ends (the tool probe still answers)
    const real = spawnSync('sh', ['-c', 'command -v zstd'], { encoding: 'utf8' }).stdout.trim();
    writeFileSync(
      join(bin, 'zstd'),
      ['#!/bin/sh', `case "$1" in -T0|-dc) [ -e "${bin}/hold" ] && exec tail -f "${bin}/hold";; esac`, `exec "${real}" "$@"`, ''].join('\n'),
      { mode: 0o755 },
    );
    // The node's tar: this machine's, but while DIR/bin/hang-probe exists one whose `tar --version` (the tool
    // probe) never answers, as on a node whose filesystem hangs
    const tar = spawnSync('sh', ['-c', 'command -v tar'], { encoding: 'utf8' }).stdout.trim();
    writeFileSync(join(bin, 'tar'), ['#!/bin/sh', `[ "$1" = --version ] && [ -e "${bin}/hang-probe" ] && exec tail -f "${bin}/hang-probe"`, `exec "${tar}" "$@"`, ''].join('\n'), { mode: 0o755 });
    sshd = await startSshd({ config: [`SetEnv PATH=${bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`] });
    fake = await startFakeKube({ controllers: false });
    copyFileSync(fake.kubeconfigPath, join(dir, 'kubeconfig'));
    const ssh = [`    K3S_SSH: ${sshd.target}`, `    K3S_SSH_KEY: ${sshd.keyPath}`, `    K3S_SSH_KNOWN_HOSTS: ${sshd.knownHostsPath}`];
    const yaml = k3sOpsYaml(dir, { app: 'hangup', domain: 'example.com', volumes: [{ name: 'default', size: '1Gi' }] }).replace('    K3S_NODE: node1\n', `    K3S_NODE: node1\n${ssh.join('\n')}\n`);
    assert.match(yaml, /K3S_SSH: /);
    writeFileSync(join(dir, 'kompoxops.yml'), yaml);
    writeFileSync(join(dir, 'compose.yml'), ONE_VOLUME_COMPOSE);
    const created = await runCli(['disk', 'create', '-N', 'base', '-o', 'json'], { cwd: dir });
    assert.equal(created.code, 0, created.stderr);
    const id = (JSON.parse(created.stdout) as { id: string }).id;
    volumeDir = join(id, '..', '..');
    writeFileSync(join(id, 'blob.bin'), randomBytes(1 << 20));
    const ok = await runCli(['disk', 'export', '-N', 'base', '-O', 'base.tar.zst'], { cwd: dir });
    assert.equal(ok.code, 0, ok.stderr);
    archive = readFileSync(join(dir, 'base.tar.zst'));
  });

  after(async () => {
    // what a failed test left on the node
    for (const pid of [...held().split('\n'), ...probing().split('\n')].filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
    await fake?.close();
    await sshd?.close();
    if (dir) await new LocalHostFs().rm(dir);
  });

  test('disk export -O FILE: exit 130 "interrupted", no temp beside FILE, nothing left running on the node', async () => {
    writeFileSync(join(bin, 'hold'), '');
    try {
      const { child, closed } = start(['disk', 'export', '-N', 'base', '-O', 'out/x.tar.zst']);
      await until(() => held() !== '' && readdirSync(join(dir, 'out')).length > 0, 'the export did not reach the node and write its temp');
      child.kill('SIGHUP');
      const r = await closed;
      assert.equal(r.code, 130, `${r.signal ?? ''} ${r.stderr}`);
      assert.match(r.stderr, /^error: interrupted: disk base was not exported/m);
      assert.doesNotMatch(r.stderr, NO_STACK);
      assert.deepEqual(readdirSync(join(dir, 'out')), [], 'nothing of the export left');
      await until(() => held() === '', 'the node command held by the export was not gone');
    } finally {
      rmSync(join(bin, 'hold'), { force: true });
    }
  });

  test('disk import - whose writer stays open: exit 130 "interrupted: no disk was created" (as on every path), no disk, not even a hidden one on the node', async () => {
    writeFileSync(join(bin, 'hold'), '');
    try {
      const { child, closed } = start(['disk', 'import', '-N', 'hup', '-']);
      child.stdin!.write(archive);
      await until(() => held() !== '', 'the import did not reach the node');
      child.kill('SIGHUP');
      const r = await closed;
      child.stdin!.destroy();
      assert.equal(r.code, 130, `${r.signal ?? ''} ${r.stderr}`);
      assert.match(r.stderr, /^error: interrupted: no disk was created$/m);
      assert.doesNotMatch(r.stderr, NO_STACK);
      assert.deepEqual(readdirSync(volumeDir), ['base'], 'only the disk that was there');
      await until(() => held() === '', 'the node command held by the import was not gone');
    } finally {
      rmSync(join(bin, 'hold'), { force: true });
    }
  });

  test('disk export -O FILE whose SSH connection is lost (the sshd serving it killed): its error, exit 1, no temp beside FILE', async () => {
    writeFileSync(join(bin, 'hold'), '');
    try {
      const { closed } = start(['disk', 'export', '-N', 'base', '-O', 'out/y.tar.zst', '-o', 'json']);
      await until(() => held() !== '' && readdirSync(join(dir, 'out')).length > 0, 'the export did not reach the node and write its temp');
      // the processes serving the connections: the children of the test's sshd (its PidFile)
      const listener = readFileSync(join(sshd.dir, 'sshd.pid'), 'utf8').trim();
      spawnSync('pkill', ['-KILL', '-P', listener]);
      const r = await closed;
      assert.equal(r.code, 1, `${r.signal ?? ''} ${r.stderr}`);
      // its stable code too (docs/disks-and-snapshots.md: k3s.ssh.lost), which the node's packing dropped
      const { error } = JSON.parse(r.stderr.trim().split('\n').at(-1)!) as { error: { code: string; message: string; hint: string } };
      assert.equal(error.code, 'k3s.ssh.lost', r.stderr);
      assert.match(error.message, /^the SSH connection to the node \(ssh \S+\) was lost during tar -c of \S+$/);
      assert.match(error.hint, /^Check that the node is up/);
      assert.doesNotMatch(r.stderr, /unsettled top-level await/);
      assert.doesNotMatch(r.stderr, NO_STACK);
      assert.deepEqual(readdirSync(join(dir, 'out')), [], 'nothing of the export left');
    } finally {
      rmSync(join(bin, 'hold'), { force: true });
      // nothing ends the held command once its connection is gone (its reader never closes)
      for (const pid of held().split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
    }
  });

  test('snapshot export -O - whose SSH connection is lost: said so (not an unexpected "exit code none"), exit 1', async () => {
    const snap = await runCli(['snapshot', 'create', '--disk', 'base', '-N', 's1'], { cwd: dir });
    assert.equal(snap.code, 0, snap.stderr);
    writeFileSync(join(bin, 'hold'), '');
    try {
      const { closed } = start(['snapshot', 'export', '-N', 's1', '-O', '-']);
      await until(() => held() !== '', 'the export did not reach the node');
      spawnSync('pkill', ['-KILL', '-P', readFileSync(join(sshd.dir, 'sshd.pid'), 'utf8').trim()]);
      const r = await closed;
      assert.equal(r.code, 1, `${r.signal ?? ''} ${r.stderr}`);
      assert.match(r.stderr, /^error: the SSH connection to the node \(ssh \S+\) was lost during reading \S+\.tar\.zst\. Check that the node is up/m);
      assert.doesNotMatch(r.stderr, /exit code none|no exit status|This is unexpected/);
    } finally {
      rmSync(join(bin, 'hold'), { force: true });
      for (const pid of held().split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
    }
  });

  test('disk import - whose SSH connection is lost: said so (not "exit code none"), exit 1, and no disk listed', async () => {
    writeFileSync(join(bin, 'hold'), '');
    try {
      const { child, closed } = start(['disk', 'import', '-N', 'lost', '-', '-o', 'json']);
      child.stdin!.write(archive);
      await until(() => held() !== '', 'the import did not reach the node');
      spawnSync('pkill', ['-KILL', '-P', readFileSync(join(sshd.dir, 'sshd.pid'), 'utf8').trim()]);
      const r = await closed;
      child.stdin!.destroy();
      assert.equal(r.code, 1, `${r.signal ?? ''} ${r.stderr}`);
      const { error } = JSON.parse(r.stderr.trim().split('\n').at(-1)!) as { error: { code: string; message: string } };
      assert.equal(error.code, 'k3s.ssh.lost', r.stderr);
      assert.match(error.message, /the SSH connection to the node \(ssh \S+\) was lost before its command ended$/);
      assert.doesNotMatch(r.stderr, /exit code none|no exit status/);
      const list = await runCli(['disk', 'list', '-o', 'json'], { cwd: dir });
      assert.equal(list.code, 0, list.stderr);
      assert.deepEqual((JSON.parse(list.stdout) as { name: string }[]).map((d) => d.name), ['base']);
    } finally {
      rmSync(join(bin, 'hold'), { force: true });
      for (const pid of held().split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
    }
  });

  // a node whose tools hang (its filesystem stuck): the tool probe takes no signal, and the first Ctrl-C waited for it for good
  for (const [what, args] of [
    ['disk export -O FILE', ['disk', 'export', '-N', 'base', '-O', 'out/p.tar.zst']],
    ['snapshot create (on the node)', ['snapshot', 'create', '--disk', 'base', '-N', 'probe-hung']],
  ] as const) {
    test(`${what} whose node never answers the tool probe: the first Ctrl-C ends it, exit 130 "interrupted", nothing left`, async () => {
      writeFileSync(join(bin, 'hang-probe'), '');
      try {
        const { child, closed } = start([...args]);
        await until(() => probing() !== '', 'the command did not probe the node');
        child.kill('SIGINT');
        const r = await closed;
        assert.equal(r.code, 130, `${r.signal ?? ''} ${r.stderr}`);
        assert.match(r.stderr, /^error: interrupted/m);
        assert.doesNotMatch(r.stderr, NO_STACK);
        assert.deepEqual(readdirSync(join(dir, 'out')), [], 'nothing of an export left');
        const list = await runCli(['snapshot', 'list', '-o', 'json'], { cwd: dir });
        assert.ok(!(JSON.parse(list.stdout) as { name: string }[]).some((x) => x.name === 'probe-hung'), list.stdout);
      } finally {
        rmSync(join(bin, 'hang-probe'), { force: true });
        for (const pid of probing().split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
      }
    });
  }
});
