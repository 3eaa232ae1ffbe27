// What the data commands draw on a terminal, through the real binary on a
// pseudo-terminal (script(1)) with a local K3s node: progress bars with a
// total (percentage, ETA) where the size is known up front.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { canRunOnTty, runCli, runCliOnTty } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { ONE_VOLUME_COMPOSE, k3sOpsYaml } from '../support/ops-yaml.js';

const tty = canRunOnTty();

describe('data commands on a terminal (real binary, local K3s node)', { skip: tty ? false : 'no pseudo-terminal here (script(1) failed)', concurrency: 1 }, () => {
  let fake: FakeKube;
  let dir = '';
  let archive = '';

  async function ok(args: string[]): Promise<string> {
    const r = await runCli(args, { cwd: dir, timeoutMs: 60_000 });
    assert.equal(r.code, 0, `kompoxops ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  before(async () => {
    fake = await startFakeKube({ controllers: false });
    dir = mkdtempSync(join(tmpdir(), 'kompox-progress-'));
    for (const d of ['disks', 'snapshots']) mkdirSync(join(dir, d));
    copyFileSync(fake.kubeconfigPath, join(dir, 'kubeconfig'));
    writeFileSync(join(dir, 'kompoxops.yml'), k3sOpsYaml(dir, { app: 'bars', domain: 'example.com', clusterSettings: { ACME_EMAIL: 'admin@example.com' }, volumes: [{ name: 'default', size: '1Gi' }] }));
    writeFileSync(join(dir, 'compose.yml'), ONE_VOLUME_COMPOSE);
    const d1 = JSON.parse(await ok(['disk', 'create', '-N', 'd1', '-o', 'json'])) as { id: string };
    writeFileSync(join(d1.id, 'sample.bin'), randomBytes(256 * 1024)); // incompressible: the archive is as large
    archive = join(dir, 'd1.tar.zst');
    await ok(['disk', 'export', '-N', 'd1', '-O', archive]);
  });

  after(async () => {
    await fake?.close();
    if (dir) await new LocalHostFs().rm(dir);
  });

  test('disk import - < FILE: stdin redirected from a file has a size, so the bar has its total, as with FILE', async () => {
    const r = await runCliOnTty(['disk', 'import', '-', '-N', 'from-stdin'], { cwd: dir, stdinFile: archive });
    assert.equal(r.code, 0, r.screen);
    assert.match(r.screen, /\rimport from-stdin \[\.{24}\]   0% 0 B\/[\d.]+ KiB 0 B\/s\x1b\[K/, r.screen);
    assert.match(r.screen, /\rimport from-stdin \[#{24}\] 100% ([\d.]+ KiB)\/\1 [\d.]+ \S+\/s\x1b\[K/, r.screen);
    // the same total as the file itself gives
    const f = await runCliOnTty(['disk', 'import', archive, '-N', 'from-file'], { cwd: dir });
    assert.equal(f.code, 0, f.screen);
    const total = (s: string, name: string) => new RegExp(`\\rimport ${name} \\[\\.{24}\\]   0% 0 B/([\\d.]+ KiB)`).exec(s)?.[1];
    assert.equal(total(r.screen, 'from-stdin'), total(f.screen, 'from-file'));
  });

  test('a terminal that reports no size (script(1), CI runners): $COLUMNS is its width, else 100', async () => {
    const name = 'default-20261206232857'; // as long as a default disk name
    const line = (screen: string) => [...screen.matchAll(/\r([^\r\n]*?)\x1b\[K/g)].map((m) => m[1]!).filter((l) => l.startsWith(`import ${name}`));
    const narrow = await runCliOnTty(['disk', 'import', archive, '-N', name], { cwd: dir, env: { COLUMNS: '40' } });
    assert.equal(narrow.code, 0, narrow.screen);
    const lines = line(narrow.screen);
    assert.ok(lines.length >= 2, narrow.screen);
    for (const l of lines) assert.ok(l.length <= 39, `wider than 40 columns: ${JSON.stringify(l)}`);
    assert.match(lines.at(-1)!, new RegExp(`^import ${name} 100%$`));
    const wide = await runCliOnTty(['disk', 'import', archive, '-N', `${name}-2`], { cwd: dir, env: { COLUMNS: undefined } });
    assert.equal(wide.code, 0, wide.screen);
    assert.match(wide.screen, new RegExp(`\\rimport ${name}-2 \\[#{24}\\] 100% `));
  });

  test('TERM=dumb (an editor shell: no cursor control): nothing drawn in place, no escapes; the result as off a terminal', async () => {
    const r = await runCliOnTty(['disk', 'import', archive, '-N', 'dumb'], { cwd: dir, columns: 120, env: { TERM: 'dumb' } });
    assert.equal(r.code, 0, r.screen);
    assert.doesNotMatch(r.screen, /\x1b|\r(?!\n)/, JSON.stringify(r.screen));
    assert.match(r.screen, /^NAME +CURRENT/m);
  });
});
