// stdout that goes away or fails under the real binary: a reader that stops
// early (`disk export -O - | head -c 100`, `| ssh host import` failing) or a
// redirect to a full disk (`> FILE`, here /dev/full). Node emits an 'error'
// event on process.stdout that nothing listened to: the CLI died of an
// unhandled EPIPE with a stack trace. Now an export says its archive is
// incomplete, a failed output is named as such, and a command that only
// prints stops quietly when its reader is gone.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, runCli, runCliPiped } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { ONE_VOLUME_COMPOSE, k3sOpsYaml } from '../support/ops-yaml.js';

const NO_STACK = /Unhandled|node:events|^\s+at /m;

describe('kompoxops with a stdout that goes away or fails', () => {
  let fake: FakeKube;
  let dir = '';

  /** Runs the CLI with its stdout a pipe whose reader takes `keep` bytes and then closes (0: closed before it starts). */
  function withReaderGone(args: string[], keep: number): Promise<{ code: number | null; stderr: string; read: number }> {
    const child = spawn(process.execPath, [BIN.kompoxops, ...args], { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    let stderr = '';
    let read = 0;
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    if (keep === 0) child.stdout.destroy();
    else
      child.stdout.on('data', (d: Buffer) => {
        read += d.length;
        if (read >= keep) child.stdout.destroy();
      });
    return new Promise((resolve) =>
      child.on('close', (code) => {
        clearTimeout(killer);
        resolve({ code, stderr, read });
      }),
    );
  }

  /** Runs the CLI with its stdout on /dev/full (every write fails with ENOSPC). */
  function toFullDevice(args: string[]): Promise<{ code: number | null; stderr: string }> {
    const fd = openSync('/dev/full', 'w');
    const child = spawn(process.execPath, [BIN.kompoxops, ...args], { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', fd, 'pipe'] });
    closeSync(fd);
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    return new Promise((resolve) =>
      child.on('close', (code) => {
        clearTimeout(killer);
        resolve({ code, stderr });
      }),
    );
  }

  before(async () => {
    fake = await startFakeKube({ controllers: false });
    dir = mkdtempSync(join(tmpdir(), 'kompox-closed-output-'));
    for (const d of ['disks', 'snapshots']) mkdirSync(join(dir, d));
    copyFileSync(fake.kubeconfigPath, join(dir, 'kubeconfig'));
    writeFileSync(join(dir, 'kompoxops.yml'), k3sOpsYaml(dir, { app: 'closed', domain: 'example.com', clusterSettings: { ACME_EMAIL: 'admin@example.com' }, volumes: [{ name: 'default', size: '1Gi' }] }));
    writeFileSync(join(dir, 'compose.yml'), ONE_VOLUME_COMPOSE);
    const r = await runCli(['disk', 'create', '-N', 'base', '-o', 'json'], { cwd: dir, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const base = JSON.parse(r.stdout) as { id: string };
    // more than a pipe's buffer (64 KiB) of archive, incompressible: the export is still writing when its reader goes
    for (let i = 0; i < 8; i++) writeFileSync(join(base.id, `blob-${i}.bin`), Buffer.from(Array.from({ length: 1 << 18 }, () => Math.floor(Math.random() * 256))));
    // and many small files: a stream of small writes, as most disks give
    for (let i = 0; i < 3000; i++) writeFileSync(join(base.id, `note-${i}.txt`), `note ${i}\n`.repeat(20));
  });
  after(async () => {
    await fake?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('disk export -O - | head -c 100: one line saying the archive is incomplete, a failure exit, no stack trace', async () => {
    const r = await runCliPiped(['disk', 'export', '-N', 'base', '-O', '-'], 'head -c 100', { cwd: dir, timeoutMs: 60_000 });
    assert.notEqual(r.code, 0, r.stderr);
    assert.match(r.stderr, /^error: the output was closed before the export of disk base was complete; the archive is incomplete/m);
    assert.doesNotMatch(r.stderr, NO_STACK);
  });

  test('snapshot export -O - whose reader is gone before it starts: the same', async () => {
    const s = await runCli(['snapshot', 'create', '--disk', 'base', '-N', 's1'], { cwd: dir, timeoutMs: 60_000 });
    assert.equal(s.code, 0, s.stderr);
    const r = await withReaderGone(['snapshot', 'export', '-N', 's1', '-O', '-'], 0);
    assert.notEqual(r.code, 0, r.stderr);
    assert.match(r.stderr, /^error: the output was closed before the export of snapshot s1 was complete; the archive is incomplete/m);
    assert.doesNotMatch(r.stderr, NO_STACK);
  });

  test('disk export -O - > /dev/full: "cannot write the output (stdout): no space left", exit 1, no stack trace and no advice about the temp directory', async () => {
    const r = await toFullDevice(['disk', 'export', '-N', 'base', '-O', '-']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: cannot write the output \(stdout\): no space left on device; what was written is incomplete\. Check where stdout goes/m);
    assert.doesNotMatch(r.stderr, /TMPDIR/);
    assert.doesNotMatch(r.stderr, NO_STACK);
  });

  test('disk list -o json > /dev/full: the failed output is an error (exit 1, code output.failed), not a silent success', async () => {
    const r = await toFullDevice(['disk', 'list', '-o', 'json']);
    assert.equal(r.code, 1, r.stderr);
    const body = JSON.parse(r.stderr.slice(r.stderr.indexOf('{'))) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'output.failed');
    assert.match(body.error.message, /^cannot write the output \(stdout\): no space left on device/);
  });

  test('disk list whose reader is gone before it prints: exit 0, no error and no stack trace', async () => {
    const r = await withReaderGone(['disk', 'list'], 0);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /error/i);
    assert.doesNotMatch(r.stderr, NO_STACK);
  });
});
