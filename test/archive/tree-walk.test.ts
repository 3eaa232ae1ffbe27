// The tree walk's order and metadata are the same whether a directory is
// sorted in memory or, past DIR_IN_MEMORY entries, in spilled runs (and read
// a batch at a time): the archive order and the tree digest depend on it.
import assert from 'node:assert/strict';
import { lchown, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EntrySorter } from '../../src/archive/entry-sort.js';
import { DIR_IN_MEMORY, TreeWalker, type WalkedEntry } from '../../src/archive/tree-walk.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import type { TreeFs } from '../../src/archive/archive.js';

async function walkAll(fs: TreeFs, root: string, inMemory?: number): Promise<WalkedEntry[]> {
  const w = new TreeWalker(fs, root, 'data', inMemory);
  const out: WalkedEntry[] = [];
  for (let e = await w.next(); e; e = await w.next()) out.push(e);
  return out;
}

describe('tree walk: a big directory sorted in spilled runs', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'kompox-walk-'));
    // names whose order is not depth-first order: 'a' (a directory) < 'a-b' < 'a.b' < 'a/' (its contents) < 'a0'
    for (const n of ['a-b', 'a.b', 'a0', 'ä', 'Z', '-x', ' space']) await writeFile(join(root, n), n);
    await mkdir(join(root, 'a', 'deep'), { recursive: true });
    for (let i = 0; i < 40; i++) await writeFile(join(root, 'a', `f${i}`), 'x'.repeat(i));
    await writeFile(join(root, 'a', 'deep', 'last'), 'y');
    for (let i = 0; i < 250; i++) await writeFile(join(root, `file-${String(7919 * i % 1000).padStart(3, '0')}-${i}`), String(i));
    await symlink('a/f1', join(root, 'link'));
    await mkdir(join(root, 'empty'));
    await utimes(join(root, 'a-b'), new Date(-86_400_000), new Date(-86_400_000)); // before 1970
    if (process.getuid?.() === 0) await lchown(join(root, 'a0'), 4321, 8765);
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('gives the same entries, in the same order, with the same metadata, as the in-memory sort', async () => {
    const fs = new LocalHostFs();
    const inMemory = await walkAll(fs, root);
    assert.ok(inMemory.length > 300);
    const add = EntrySorter.prototype.add;
    let spilled = 0;
    EntrySorter.prototype.add = function (this: EntrySorter, e) {
      spilled++;
      return add.call(this, e);
    };
    let small: WalkedEntry[];
    try {
      small = await walkAll(fs, root, 16);
    } finally {
      EntrySorter.prototype.add = add;
    }
    assert.ok(spilled > 250, `the big directory went through the spilled sort (${spilled} records)`);
    assert.deepEqual(small, inMemory);
    // path order, parents first
    const rels = inMemory.map((e) => e.rel);
    assert.deepEqual(rels, [...rels].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
    assert.equal(DIR_IN_MEMORY, 10_000);
  });

  it('reads names a batch at a time where the transport can, and walks a transport without that the same way', async () => {
    const fs = new LocalHostFs();
    let whole = 0;
    const streamOnly: TreeFs = new Proxy(fs, {
      get: (t, k) => (k === 'readdir' ? async (p: string) => (whole++, t.readdir(p)) : (Reflect.get(t, k) as unknown)),
    });
    await walkAll(streamOnly, root, 16);
    assert.equal(whole, 0, 'no directory listed whole');
    const noStream: TreeFs = new Proxy(fs, { get: (t, k) => (k === 'readdirStream' ? undefined : (Reflect.get(t, k) as unknown)) });
    assert.deepEqual(await walkAll(noStream, root, 16), await walkAll(fs, root));
  });

  it('a name read twice from a big directory (it changed while read) is an integrity error naming it', async () => {
    const fs = new LocalHostFs();
    const twice: TreeFs = new Proxy(fs, {
      get: (t, k) =>
        k === 'readdirStream'
          ? function* (p: string) {
              for (const n of t.readdirStream(p)) {
                yield n;
                if (n === 'a0') yield n;
              }
            }
          : (Reflect.get(t, k) as unknown),
    });
    await assert.rejects(walkAll(twice, root, 16), (e: Error & { kind?: string }) => e.kind === 'integrity' && /changed while it was read \(a0 was listed twice\)/.test(e.message));
  });

  it('closing a walk midway releases its spilled sorts', async () => {
    const fs = new LocalHostFs();
    const close = EntrySorter.prototype.close;
    let closed = 0;
    EntrySorter.prototype.close = function (this: EntrySorter) {
      closed++;
      return close.call(this);
    };
    try {
      const w = new TreeWalker(fs, root, 'data', 16);
      await w.next();
      await w.next();
      w.close();
      w.close();
    } finally {
      EntrySorter.prototype.close = close;
    }
    assert.ok(closed >= 1, 'the big directory\'s sort was closed');
  });
});
