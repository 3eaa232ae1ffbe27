// The size walk that gives a node-side or pod-side transfer its progress
// total (src/archive/tar-command.ts): the argv run by the shells and tools a
// helper pod (busybox) or a K3s node (GNU) has, and the parse of its output.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { measureTree } from '../../src/archive/archive.js';
import { parseTreeBytes, treeBytesArgv } from '../../src/archive/tar-command.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { writeSampleTree } from '../providers/k3s-fixtures.js';

const BUSYBOX = '/usr/bin/busybox';

/** Runs argv with PATH set to `path` (undefined: this machine's); stdout and exit code. */
async function run(argv: string[], path?: string): Promise<{ out: string; code: number | null }> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: path !== undefined ? { PATH: path } : process.env });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.resume();
  const code = await new Promise<number | null>((r) => child.on('close', r));
  return { out, code };
}

describe('the size walk (treeBytesArgv / parseTreeBytes)', () => {
  let root: string;
  let src: string;
  /** A PATH holding only busybox applets (sh, find, stat, awk): the helper image's tools. */
  let busyboxPath: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'tree-bytes-'));
    src = join(root, 'a dir with spaces');
    await mkdir(src);
    await writeSampleTree(src);
    await writeFile(join(src, "it's quoted $HOME.txt"), 'x'.repeat(12345));
    await link(join(src, 'run.sh'), join(src, 'sub', 'second-name.sh')); // tar sends it twice too (packTarStream reads it again)
    await symlink('/etc/passwd', join(src, 'not-followed'));
    busyboxPath = join(root, 'bin');
    await mkdir(busyboxPath);
    if (existsSync(BUSYBOX)) for (const a of ['sh', 'find', 'stat', 'awk']) await symlink(BUSYBOX, join(busyboxPath, a));
  });
  after(async () => rm(root, { recursive: true, force: true }));

  test('parses `BYTES FILES`; anything else is no total', () => {
    assert.deepEqual(parseTreeBytes('1234 5\n'), { bytes: 1234, files: 5 });
    assert.deepEqual(parseTreeBytes('0 0'), { bytes: 0, files: 0 });
    assert.deepEqual(parseTreeBytes(' 123456789012345 3 \n'), { bytes: 123456789012345, files: 3 });
    for (const bad of ['', '1.2e+11 3', '12', 'sh: find: not found', '-1 2', '99999999999999999999 1']) assert.equal(parseTreeBytes(bad), undefined, JSON.stringify(bad));
  });

  test('the directory is one argument, never shell text', () => {
    const argv = treeBytesArgv("/x/it's $(rm -rf /)");
    assert.equal(argv[argv.length - 1], "/x/it's $(rm -rf /)");
    assert.ok(!argv[2]!.includes('rm -rf'), 'the script does not contain the path');
  });

  const shells = [
    { name: 'GNU find/stat/awk', path: undefined as string | undefined, skip: undefined as string | undefined },
    { name: 'busybox sh/find/stat/awk', path: 'busybox', skip: existsSync(BUSYBOX) ? undefined : `${BUSYBOX} is not installed (apt-get install busybox)` },
  ];
  for (const sh of shells) {
    test(`${sh.name}: the bytes and files packTree's size walk counts (hard links counted per name, symlinks not followed)`, { skip: sh.skip }, async () => {
      const want = await measureTree(new LocalHostFs(), src);
      const r = await run(treeBytesArgv(src), sh.path === 'busybox' ? busyboxPath : undefined);
      assert.equal(r.code, 0);
      assert.deepEqual(parseTreeBytes(r.out), { bytes: want.totalBytes, files: want.fileCount });
    });
  }

  test('a missing tool is no total (exit 3), not a false 0', { skip: existsSync(BUSYBOX) ? undefined : `${BUSYBOX} is not installed` }, async () => {
    const onlySh = join(root, 'only-sh');
    await mkdir(onlySh);
    await symlink(BUSYBOX, join(onlySh, 'sh'));
    const r = await run([join(onlySh, 'sh'), ...treeBytesArgv(src).slice(1)], onlySh);
    assert.equal(r.code, 3);
    assert.equal(parseTreeBytes(r.out), undefined);
  });

  test('a directory that does not exist gives 0 files (find fails; the transfer itself reports that)', async () => {
    const r = await run(treeBytesArgv(join(root, 'missing')));
    assert.deepEqual(parseTreeBytes(r.out), { bytes: 0, files: 0 });
  });
});
