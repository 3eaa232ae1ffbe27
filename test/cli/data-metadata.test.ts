// Which metadata a disk keeps on this machine's data path (docs/disks-and-
// snapshots.md, "Portable archive format": the table's first row and the
// list above it), through the real CLI with a local K3s node: a tree of odd
// cases (setuid/setgid/sticky and 0000 modes, ids without a passwd entry up
// to 4294967294, mtimes before 1970 and far ahead with milliseconds, an
// empty directory, a symlink stored and not followed, a hard link, a sparse
// file) goes through disk export + disk import, snapshot create + snapshot
// restore and a disk copy (disk create -S). Each keeps every mode bit, the
// numeric owners, file, symlink and directory mtimes to the millisecond and
// the symlink's target; a hard link comes out as two files, and a sparse
// file whole (its size and bytes kept, its holes filled).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, symlinkSync, truncateSync, writeFileSync, writeSync, closeSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { runCli, type CliResult } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { ONE_VOLUME_COMPOSE, k3sOpsYaml } from '../support/ops-yaml.js';

const SPARSE_SIZE = 256 * 1024 * 1024;
const NOT_ROOT = process.getuid?.() !== 0 ? 'owners other than the test user are set by root only: run the tests as root' : false;

interface Entry {
  path: string;
  type: string;
  mode: string;
  uid: number;
  gid: number;
  size: number;
  mtimeMs: number;
  target?: string;
  sha256?: string;
}

/** A time in ns to the nearest millisecond (archives hold milliseconds; a time set from one lands within a microsecond of it). */
function roundedMs(ns: bigint): number {
  const half = ns < 0n ? -500_000n : 500_000n;
  return Number((ns + half) / 1_000_000n);
}

/** Every entry under `root` with what the docs say is kept (mtime to the millisecond). */
function listing(root: string): Entry[] {
  const out: Entry[] = [];
  const walk = (rel: string) => {
    const abs = rel ? join(root, rel) : root;
    const st = lstatSync(abs, { bigint: true });
    const type = st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : 'file';
    const e: Entry = { path: rel || '.', type, mode: (Number(st.mode) & 0o7777).toString(8), uid: Number(st.uid), gid: Number(st.gid), size: type === 'file' ? Number(st.size) : 0, mtimeMs: roundedMs(st.mtimeNs) };
    if (type === 'symlink') e.target = readlinkSync(abs);
    if (type === 'file') e.sha256 = createHash('sha256').update(readFileSync(abs)).digest('hex');
    out.push(e);
    if (type === 'dir') for (const n of readdirSync(abs).sort()) walk(rel ? join(rel, n) : n);
  };
  walk('');
  return out;
}

describe('metadata kept on this machine\'s data path (real CLI, local node)', { skip: NOT_ROOT, concurrency: 1 /* one workspace */ }, () => {
  let fake: FakeKube;
  let dir = '';
  let src = '';
  let expected: Entry[] = [];
  const ids = new Map<string, string>();

  const run = (args: string[]): Promise<CliResult> => runCli(args, { cwd: dir, timeoutMs: 60_000 });
  async function ok(args: string[]): Promise<string> {
    const r = await run(args);
    assert.equal(r.code, 0, `kompoxops ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  before(async () => {
    fake = await startFakeKube({ controllers: false });
    dir = mkdtempSync(join(tmpdir(), 'kompox-metadata-'));
    for (const d of ['disks', 'snapshots', 'out']) mkdirSync(join(dir, d));
    copyFileSync(fake.kubeconfigPath, join(dir, 'kubeconfig'));
    writeFileSync(join(dir, 'kompoxops.yml'), k3sOpsYaml(dir, { app: 'meta', domain: 'example.com', clusterSettings: { ACME_EMAIL: 'admin@example.com' }, volumes: [{ name: 'default', size: '1Gi' }] }));
    writeFileSync(join(dir, 'compose.yml'), ONE_VOLUME_COMPOSE);
    src = (JSON.parse(await ok(['disk', 'create', '-N', 'src', '-o', 'json'])) as { id: string }).id;

    const at = (iso: string) => new Date(iso);
    mkdirSync(join(src, 'sub', 'empty'), { recursive: true });
    writeFileSync(join(src, 'setuid'), 'run me\n');
    chmodSync(join(src, 'setuid'), 0o4755);
    writeFileSync(join(src, 'setgid'), 'group\n');
    chmodSync(join(src, 'setgid'), 0o2750);
    mkdirSync(join(src, 'sticky'));
    chmodSync(join(src, 'sticky'), 0o1777);
    writeFileSync(join(src, 'sub', 'nobody'), 'owned by ids no passwd lists\n');
    lchownSync(join(src, 'sub', 'nobody'), 4294967294, 4294967294);
    writeFileSync(join(src, 'sub', 'locked'), 'mode 0000\n');
    chmodSync(join(src, 'sub', 'locked'), 0o000);
    lchownSync(join(src, 'sub', 'locked'), 12345, 54321);
    writeFileSync(join(src, 'a.txt'), 'linked twice\n');
    linkSync(join(src, 'a.txt'), join(src, 'hard'));
    symlinkSync('../a.txt', join(src, 'sub', 'link'));
    symlinkSync('/nowhere/at/all', join(src, 'dangling'));
    // 256 MiB of which 4 bytes are data, at 128 MiB
    const fd = openSync(join(src, 'sparse'), 'w');
    writeSync(fd, Buffer.from('data'), 0, 4, SPARSE_SIZE / 2);
    closeSync(fd);
    truncateSync(join(src, 'sparse'), SPARSE_SIZE);
    // times, deepest first (writing into a directory changes its mtime)
    utimesSync(join(src, 'sub', 'nobody'), at('1969-06-01T00:00:00.123Z'), at('1969-06-01T00:00:00.123Z'));
    utimesSync(join(src, 'a.txt'), at('2400-02-29T12:34:56.789Z'), at('2400-02-29T12:34:56.789Z'));
    lutimesSync(join(src, 'sub', 'link'), at('2001-02-03T04:05:06.007Z'), at('2001-02-03T04:05:06.007Z'));
    utimesSync(join(src, 'sub', 'empty'), at('1999-12-31T23:59:59.999Z'), at('1999-12-31T23:59:59.999Z'));
    chmodSync(join(src, 'sub', 'empty'), 0o000);
    utimesSync(join(src, 'sub'), at('2030-01-01T12:00:00.456Z'), at('2030-01-01T12:00:00.456Z'));
    utimesSync(src, at('2020-05-05T05:05:05.505Z'), at('2020-05-05T05:05:05.505Z'));
    expected = listing(src);
    assert.equal(lstatSync(join(src, 'hard')).nlink, 2);
    assert.ok(lstatSync(join(src, 'sparse')).blocks * 512 < 1024 * 1024, 'the source is sparse');

    await ok(['disk', 'export', '-N', 'src', '-O', 'out/src.tar.zst']);
    ids.set('export + import', (JSON.parse(await ok(['disk', 'import', '-N', 'imported', 'out/src.tar.zst', '-o', 'json'])) as { id: string }).id);
    await ok(['snapshot', 'create', '-N', 'snap', '--disk', 'src']);
    ids.set('snapshot + restore', (JSON.parse(await ok(['snapshot', 'restore', '-N', 'snap', '--disk-name', 'restored', '-o', 'json'])) as { id: string }).id);
    ids.set('copy (disk create -S)', (JSON.parse(await ok(['disk', 'create', '-N', 'copied', '-S', 'src', '-o', 'json'])) as { id: string }).id);
  });

  after(async () => {
    await fake?.close();
    if (dir) await new LocalHostFs().rm(dir);
  });

  for (const how of ['export + import', 'snapshot + restore', 'copy (disk create -S)']) {
    test(`${how}: every mode bit, numeric owner, millisecond mtime (files, symlinks, directories) and symlink target kept; a hard link two files; a sparse file whole`, () => {
      const id = ids.get(how)!;
      const got = listing(id);
      assert.deepEqual(got.map((e) => e.path), expected.map((e) => e.path));
      for (const [i, e] of expected.entries()) assert.deepEqual(got[i], e, e.path);
      assert.equal(lstatSync(join(id, 'a.txt')).nlink, 1, 'a hard link becomes a copy');
      assert.equal(lstatSync(join(id, 'hard')).nlink, 1, 'a hard link becomes a copy');
      const sparse = lstatSync(join(id, 'sparse'));
      assert.equal(sparse.size, SPARSE_SIZE);
      assert.ok(sparse.blocks * 512 >= SPARSE_SIZE, `a sparse file comes out whole (${sparse.blocks * 512} bytes allocated)`);
    });
  }
});
