import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { buildManifest, digestTree, manifestBody, packTree, treeDigestOf, type ManifestEntry } from '../../src/archive/archive.js';
import { ManifestLog } from '../../src/archive/manifest-log.js';
import { TreeWalker } from '../../src/archive/tree-walk.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { sandbox, type Sandbox } from '../providers/k3s-fixtures.js';
import { prng } from '../support/prng.js';

const fs = new LocalHostFs();

/** Entries with the awkward parts of real trees: escapes, non-ASCII, symlinks, large sizes, paths sharing prefixes. */
function sampleEntries(n: number, seed: number): ManifestEntry[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const names = ['a', 'a-b', 'a.txt', 'a b', 'Ab', 'ü/ø', 'quote"d', 'back\\slash', 'tab\there', 'nl\nname', '日本語', 'x'.repeat(200), '😀'];
  const out: ManifestEntry[] = [{ path: 'data', type: 'dir', mode: 0o755, size: 0 }];
  for (let i = 0; i < n; i++) {
    const path = `data/d${Math.floor(i / 100)}/${pick(names)}-${i}`;
    const kind = rnd();
    if (kind < 0.1) out.push({ path, type: 'dir', mode: 0o700, size: 0 });
    else if (kind < 0.2) out.push({ path, type: 'symlink', mode: 0o777, size: 0, linkpath: `../${pick(names)}` });
    else {
      const sha256 = Array.from({ length: 64 }, () => '0123456789abcdef'[Math.floor(rnd() * 16)]).join('');
      out.push({ path, type: 'file', mode: pick([0o644, 0o600, 0o4755, 0o7777]), size: pick([0, 1, 511, 2 ** 31 + 5, 2 ** 40 + 3]), sha256 });
    }
  }
  return out;
}

/** The pieces copied as they come (each is valid only until the next). */
const concat = (pieces: Iterable<Buffer>) => {
  const out: Buffer[] = [];
  for (const p of pieces) out.push(Buffer.from(p));
  return Buffer.concat(out);
};

describe('ManifestLog', () => {
  const head = (entries: ManifestEntry[]) => {
    const m = buildManifest(entries, 'tar.zst', { createdAt: '2026-12-02T00:00:00Z', source: { disk: 'd', sizeGiB: 3 } });
    const { entries: _ignored, ...rest } = m;
    return { m, rest };
  };

  for (const [label, n] of [
    ['no entries', 0],
    ['one entry', 1],
    ['entries over several chunks', 12000],
  ] as const) {
    it(`writes the manifest byte for byte as JSON.stringify does, and gives the entries back (${label})`, () => {
      const entries = n === 0 ? [] : sampleEntries(n, 7).slice(0, Math.max(1, n));
      const ordered = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      for (const list of [ordered, entries]) {
        const log = new ManifestLog();
        for (const e of list) log.add(e);
        const { m, rest } = head(list);
        assert.equal(log.treeDigest(), treeDigestOf(list), 'the tree digest, whether streamed (in order) or sorted');
        const body = log.body({ ...rest, treeDigest: log.treeDigest() });
        const got = concat(body.pieces());
        const want = manifestBody(m);
        assert.equal(body.length, want.length, 'the length announced up front');
        assert.ok(got.equals(want), 'the same bytes');
        assert.deepEqual([...log.entries()], list);
        assert.deepEqual(log.manifest({ ...rest }).entries, list);
        assert.equal(log.fileCount, m.fileCount);
        assert.equal(log.totalBytes, m.totalBytes);
      }
    });
  }

  it('holds a typical file in well under 100 bytes (the front-coded path and the raw SHA-256)', () => {
    const log = new ManifestLog();
    const n = 50_000;
    for (let i = 0; i < n; i++) {
      log.add({ path: `data/var/lib/app/uploads/2026/12/attachment-${String(i).padStart(6, '0')}.png`, type: 'file', mode: 0o644, size: 123456, sha256: 'ab'.repeat(32) });
    }
    const perEntry = log.storedBytes / n;
    assert.ok(perEntry < 60, `${perEntry.toFixed(1)} bytes per entry`);
  });

  it('refuses what is not a SHA-256 (a bug, never an archive)', () => {
    assert.throws(() => new ManifestLog().add({ path: 'data/f', type: 'file', mode: 0o644, size: 1, sha256: 'zz' }), /not a SHA-256/);
  });
});

describe('TreeWalker', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await sandbox();
  });
  after(() => sb.cleanup());

  it('walks in archive path order ("a-b" and "a.txt" before "a/x"), parents first, one directory in memory at a time', async () => {
    const root = join(sb.dir, 'order');
    await mkdir(join(root, 'a', 'x'), { recursive: true });
    await mkdir(join(root, 'a.d'), { recursive: true });
    for (const f of ['a-b', 'a.txt', 'a b', 'ab', 'a/x/y', 'a/x-1', 'a.d/z', 'B', '~']) await writeFile(join(root, f), f);
    await symlink('a/x/y', join(root, 'a0'));
    const w = new TreeWalker(fs, root, 'data');
    const paths: string[] = [];
    for (let e = await w.next(); e; e = await w.next()) paths.push(e.rel);
    const sorted = [...paths].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    assert.deepEqual(paths, sorted);
    assert.deepEqual(paths.slice(0, 6), ['data', 'data/B', 'data/a', 'data/a b', 'data/a-b', 'data/a.d']);
    for (const p of paths.slice(1)) assert.ok(paths.indexOf(p.slice(0, p.lastIndexOf('/'))) < paths.indexOf(p), `${p} after its directory`);
  });

  it("packTree's manifest lists the tree in path order with the digest a digestTree of it gives", async () => {
    const root = join(sb.dir, 'order');
    const out = new PassThrough();
    out.resume();
    const r = await packTree(fs, root, out, { createdAt: '2026-12-02T00:00:00Z' });
    const paths = r.manifest.entries.map((e) => e.path);
    assert.deepEqual(paths, [...paths].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    assert.equal(r.manifest.treeDigest, (await digestTree(fs, root)).treeDigest);
    assert.equal(r.manifest.fileCount, 9);
  });
});
