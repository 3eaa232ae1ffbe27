// LocalHostFs.rm's removal of a tree: everything goes, symlinks are not
// followed, read-only directories are opened up on the way, and the walk
// holds a bounded number of directories and unlinks at once, whatever the
// number of files (fs.promises.rm started them all: 485 MiB of RSS for
// 200,000 files).
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile, chmod, lstat } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { LONG_PATH, UNLINKS, removeTree, type RemoveTreeFs } from '../../src/providers/k3s/remove-tree.js';

describe('removing a tree on this machine (LocalHostFs.rm)', () => {
  let base: string;
  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'kompox-rmtree-'));
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('removes files, nested and read-only directories and symlinks, never what a symlink points at; a missing path is no error', async () => {
    const outside = join(base, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'keep.txt'), 'keep');
    const tree = join(base, 'tree');
    await mkdir(join(tree, 'a', 'b', 'c'), { recursive: true });
    for (const d of ['', 'a', 'a/b', 'a/b/c']) for (let i = 0; i < 5; i++) await writeFile(join(tree, d, `f${i}`), `${d}${i}`);
    await symlink(outside, join(tree, 'a', 'to-outside'));
    await symlink(join(outside, 'keep.txt'), join(tree, 'to-file'));
    await symlink(join(base, 'nowhere'), join(tree, 'dangling'));
    // a directory its owner may not write (a mode restored from an archive), inside one it may not search either
    await mkdir(join(tree, 'ro', 'inner'), { recursive: true });
    await writeFile(join(tree, 'ro', 'inner', 'x'), 'x');
    await chmod(join(tree, 'ro', 'inner'), 0o500);
    await chmod(join(tree, 'ro'), 0o400);

    await new LocalHostFs().rm(tree);
    await assert.rejects(lstat(tree), { code: 'ENOENT' });
    assert.equal(await readFile(join(outside, 'keep.txt'), 'utf8'), 'keep', 'the symlinks were removed, not followed');

    await new LocalHostFs().rm(tree); // gone already
    const file = join(base, 'single');
    await writeFile(file, 'x');
    await new LocalHostFs().rm(file);
    await assert.rejects(lstat(file), { code: 'ENOENT' });
  });

  it('removes names that are not UTF-8 (a file, a directory and what is in it, a symlink), by their bytes', async () => {
    const { mkdirSync, writeFileSync, symlinkSync } = await import('node:fs');
    const tree = join(base, 'latin1');
    const b = (s: string) => Buffer.from(s, 'latin1');
    mkdirSync(b(join(tree, 'dir\xfe', 'sub\xe9')), { recursive: true });
    writeFileSync(b(join(tree, 'bad\xff')), 'x');
    writeFileSync(b(join(tree, 'dir\xfe', 'sub\xe9', 'in\xff')), 'y');
    writeFileSync(join(tree, 'ok'), 'z');
    symlinkSync(b('nowhere\xff'), b(join(tree, 'dir\xfe', 'link\xff')));
    await removeTree(tree);
    await assert.rejects(lstat(tree), { code: 'ENOENT' });
  });

  it('holds at most UNLINKS unlinks and one open directory per level at once, however many files a directory has', async () => {
    const tree = join(base, 'wide');
    const dirs = ['', 'd1', 'd1/d2', 'd3'];
    for (const d of dirs) {
      await mkdir(join(tree, d), { recursive: true });
      for (let i = 0; i < 300; i++) await writeFile(join(tree, d, `f${i}`), '');
    }
    let unlinking = 0;
    let maxUnlinking = 0;
    let open = 0;
    let maxOpen = 0;
    let unlinked = 0;
    // node:fs/promises, counted; each unlink takes a little while, so that a walk that did not wait would pile them up
    const counted: RemoveTreeFs = {
      lstat: (p) => fsp.lstat(p),
      chmod: (p, m) => fsp.chmod(p, m),
      rmdir: (p) => fsp.rmdir(p),
      rename: (a, b) => fsp.rename(a, b),
      async opendir(p, o) {
        const dir = await fsp.opendir(p, o);
        maxOpen = Math.max(maxOpen, ++open);
        const close = dir.close.bind(dir);
        const it = dir[Symbol.asyncIterator].bind(dir);
        // for-await closes it through the iterator's return (at its end too)
        return Object.assign(dir, {
          close,
          [Symbol.asyncIterator]: async function* () {
            try {
              yield* it();
            } finally {
              open--;
            }
          },
        });
      },
      async unlink(p) {
        maxUnlinking = Math.max(maxUnlinking, ++unlinking);
        try {
          await new Promise((r) => setTimeout(r, 1));
          await fsp.unlink(p);
          unlinked++;
        } finally {
          unlinking--;
        }
      },
    };
    await removeTree(tree, counted);
    await assert.rejects(lstat(tree), { code: 'ENOENT' });
    assert.equal(unlinked, dirs.length * 300);
    assert.ok(maxUnlinking <= UNLINKS, `${maxUnlinking} unlinks at once`);
    assert.ok(maxUnlinking > 1, 'unlinks overlap');
    assert.ok(maxOpen <= 3, `${maxOpen} directories open at once (the tree is 3 levels deep)`);
  });

  it('removes a tree deeper than PATH_MAX (an app made it one level at a time, as `rm -rf` removes it), and what it moves up stays within the tree', async () => {
    const tree = join(base, 'deep');
    await mkdir(tree);
    await writeFile(join(base, 'beside.txt'), 'keep');
    // 24 levels of 200 bytes: past PATH_MAX (4096) from the tree's top; `cd -P` enters each by its relative name
    const seg = 'd'.repeat(200);
    const made = spawnSync('sh', ['-c', `for i in $(seq 1 24); do mkdir ${seg} && cd -P ${seg} || exit 1; echo x > f; mkdir -p e/${seg}; done; echo lost > ${'f'.repeat(100)}`], { cwd: tree });
    assert.equal(made.status, 0, String(made.stderr));
    assert.ok(24 * 201 > 4096 && LONG_PATH < 4096 - 256);
    const moves: string[] = [];
    const watched: RemoveTreeFs = {
      lstat: (p) => fsp.lstat(p),
      chmod: (p, m) => fsp.chmod(p, m),
      rmdir: (p) => fsp.rmdir(p),
      opendir: (p, o) => fsp.opendir(p, o),
      unlink: (p) => fsp.unlink(p),
      rename: async (a, b) => {
        moves.push(String(b));
        await fsp.rename(a, b);
      },
    };
    await removeTree(tree, watched);
    await assert.rejects(lstat(tree), /ENOENT/);
    assert.ok(moves.length > 0 && moves.every((m) => m.startsWith(`${tree}/.kompox-rm-`)), JSON.stringify(moves));
    assert.equal(await readFile(join(base, 'beside.txt'), 'utf8'), 'keep');
  });

  it('fails with the error of a file it cannot remove, and leaves no unlink running', async () => {
    const tree = join(base, 'stuck');
    await mkdir(tree);
    for (let i = 0; i < 100; i++) await writeFile(join(tree, `f${i}`), '');
    let running = 0;
    const failing: RemoveTreeFs = {
      lstat: (p) => fsp.lstat(p),
      chmod: (p, m) => fsp.chmod(p, m),
      rmdir: (p) => fsp.rmdir(p),
      rename: (a, b) => fsp.rename(a, b),
      opendir: (p, o) => fsp.opendir(p, o),
      async unlink(p) {
        running++;
        try {
          await new Promise((r) => setTimeout(r, 1));
          if (String(p).endsWith('/f50')) throw Object.assign(new Error(`EACCES: permission denied, unlink '${p}'`), { code: 'EACCES' });
          await fsp.unlink(p);
        } finally {
          running--;
        }
      },
    };
    await assert.rejects(removeTree(tree, failing), { code: 'EACCES' });
    assert.equal(running, 0, 'no unlink of the call still running once it has failed');
    assert.ok((await lstat(join(tree, 'f50'))).isFile(), 'the file it could not remove is still there');
  });
});
