// `disk import -` whose writer sends what is no archive and stays open (a
// producer still at work), through the real CLI (local K3s driver). The
// import failed and said why, but the open stdin kept the process waiting
// for the writer's end. Now it ends with its error, exit 1, at once, and no
// disk is listed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, runCli } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { ONE_VOLUME_COMPOSE, k3sOpsYaml } from '../support/ops-yaml.js';

const NO_STACK = /Unhandled|node:events|^\s+at /m;

describe('disk import - whose writer sends no archive and stays open (real CLI)', () => {
  let fake: FakeKube;
  let dir = '';

  /** Runs `disk import -N NAME -` fed `bytes` by a writer that does not close; resolves once the CLI has ended (killed after 30 s: code null). */
  function importHeldOpen(name: string, bytes: Buffer): Promise<{ code: number | null; stderr: string }> {
    const child = spawn(process.execPath, [BIN.kompoxops, 'disk', 'import', '-N', name, '-'], { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['pipe', 'ignore', 'pipe'] });
    // patience on a loaded machine: it ends within a second or two of reading the bad bytes
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin!.on('error', () => undefined);
    child.stdin!.write(bytes);
    return new Promise((resolve) =>
      child.on('close', (code) => {
        clearTimeout(killer);
        child.stdin!.destroy();
        resolve({ code, stderr });
      }),
    );
  }

  before(async () => {
    fake = await startFakeKube({ controllers: false });
    dir = mkdtempSync(join(tmpdir(), 'kompox-import-stdin-'));
    for (const d of ['disks', 'snapshots']) mkdirSync(join(dir, d));
    copyFileSync(fake.kubeconfigPath, join(dir, 'kubeconfig'));
    writeFileSync(join(dir, 'kompoxops.yml'), k3sOpsYaml(dir, { app: 'stdin', domain: 'example.com', volumes: [{ name: 'default', size: '1Gi' }] }));
    writeFileSync(join(dir, 'compose.yml'), ONE_VOLUME_COMPOSE);
    const r = await runCli(['disk', 'create', '-N', 'base', '-o', 'json'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await fake?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const listed = async () => {
    const l = await runCli(['disk', 'list', '-o', 'json'], { cwd: dir });
    assert.equal(l.code, 0, l.stderr);
    return (JSON.parse(l.stdout) as { name: string }[]).map((d) => d.name);
  };

  test('bytes that are no archive, all the writer had for now (less than a pipe holds): its error, exit 1, the CLI ends, no disk', async () => {
    const r = await importHeldOpen('garbage', randomBytes(20_000));
    assert.notEqual(r.code, null, `the CLI did not end while its writer stayed open: ${r.stderr}`);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: stdin: the archive is neither zstd nor gzip compressed/m);
    assert.doesNotMatch(r.stderr, NO_STACK);
    assert.deepEqual(await listed(), ['base']);
  });
});
