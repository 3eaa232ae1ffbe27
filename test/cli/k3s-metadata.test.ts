// The K3s driver's metadata files, damaged or left alone, through the real
// CLI (the K3s node is local): a corrupt kompox-disk.json of the current disk
// is one message naming the file (exit 1, no stack, nothing changed), never
// "no longer exists" with another disk made current; a snapshot's .json whose
// archive was moved away is refused truthfully and `snapshot delete` frees
// its name.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { runCli, type CliResult } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { ONE_VOLUME_COMPOSE, k3sOpsYaml } from '../support/ops-yaml.js';

describe('K3s metadata files through the CLI (local node)', { concurrency: 1 /* one workspace: one command at a time */ }, () => {
  let fake: FakeKube;
  let dir = '';
  let diskVolDir = '';
  let snapVolDir = '';

  const run = (args: string[]): Promise<CliResult> => runCli(args, { cwd: dir, timeoutMs: 60_000 });
  async function ok(args: string[]): Promise<string> {
    const r = await run(args);
    assert.equal(r.code, 0, `kompoxops ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }
  /** A refusal: exit 1, one message naming `file`, no internal-error text or stack. */
  async function refused(args: string[], file: string, re: RegExp): Promise<string> {
    const r = await run(args);
    assert.equal(r.code, 1, `kompoxops ${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.includes(file), r.stderr);
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /unexpected|\n\s+at |no longer exists/, r.stderr);
    return r.stderr;
  }
  const tree = () => ({ disks: readdirSync(diskVolDir).sort(), snapshots: existsSync(snapVolDir) ? readdirSync(snapVolDir).sort() : [] });

  before(async () => {
    fake = await startFakeKube({ controllers: false });
    dir = mkdtempSync(join(tmpdir(), 'kompox-meta-'));
    for (const d of ['disks', 'snapshots']) mkdirSync(join(dir, d));
    copyFileSync(fake.kubeconfigPath, join(dir, 'kubeconfig'));
    writeFileSync(join(dir, 'kompoxops.yml'), k3sOpsYaml(dir, { app: 'meta', domain: 'example.com', clusterSettings: { ACME_EMAIL: 'admin@example.com' }, volumes: [{ name: 'default', size: '1Gi' }] }));
    writeFileSync(join(dir, 'compose.yml'), ONE_VOLUME_COMPOSE);
    const base = JSON.parse(await ok(['disk', 'create', '-N', 'base', '-o', 'json'])) as { id: string };
    writeFileSync(join(base.id, 'old.txt'), 'old data\n');
    await ok(['disk', 'attach', '-N', 'base']);
    const s1 = JSON.parse(await ok(['disk', 'create', '-N', 's1', '-o', 'json'])) as { id: string };
    writeFileSync(join(s1.id, 'new.txt'), 'new data\n');
    await ok(['disk', 'attach', '-N', 's1']);
    diskVolDir = join(base.id, '..', '..');
    snapVolDir = diskVolDir.replace(join(dir, 'disks'), join(dir, 'snapshots'));
  });

  after(async () => {
    await fake?.close();
    if (dir) await new LocalHostFs().rm(dir);
  });

  test('a corrupt kompox-disk.json of the current disk: every command refuses naming it; base never takes its place', async () => {
    const meta = join(diskVolDir, 's1', 'kompox-disk.json');
    const good = readFileSync(meta);
    writeFileSync(meta, '{');
    try {
      const before = tree();
      const said = await refused(['disk', 'list'], meta, /is not valid JSON \(.*\); nothing was changed/);
      assert.match(said, /Restore that file/);
      await refused(['snapshot', 'create', '-N', 'cur-snap'], meta, /is not valid JSON/);
      await refused(['disk', 'delete', '-N', 'base'], meta, /is not valid JSON/);
      assert.deepEqual(tree(), before);
    } finally {
      writeFileSync(meta, good);
    }
    const list = JSON.parse(await ok(['disk', 'list', '-o', 'json'])) as { name: string; current?: boolean }[] | { disks: { name: string; current?: boolean }[] };
    const disks = Array.isArray(list) ? list : list.disks;
    assert.deepEqual(disks.filter((d) => d.current).map((d) => d.name), ['s1']);
  });

  test('a snapshot .json without its archive: create says so and names the .json; snapshot delete frees the name', async () => {
    await ok(['snapshot', 'create', '-N', 'race1']);
    rmSync(join(snapVolDir, 'race1.tar.zst'));
    const said = await refused(['snapshot', 'create', '-N', 'race1'], join(snapVolDir, 'race1.json'), /race1\.tar\.zst\) is missing/);
    assert.match(said, /snapshot delete -N race1/);
    assert.doesNotMatch(said, /already exists/);
    await ok(['snapshot', 'delete', '-N', 'race1']);
    assert.deepEqual(tree().snapshots, []);
    await ok(['snapshot', 'create', '-N', 'race1']);
    assert.deepEqual(tree().snapshots, ['race1.json', 'race1.tar.zst']);
  });
});
