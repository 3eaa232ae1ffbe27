// The read-back check after an import through the cluster
// (compareWithManifest): a merge of the listing and the manifest in path
// order, with no table of either, reporting what the Map-based check did.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { buildManifest, type ArchiveManifest, type ManifestEntry } from '../../src/archive/archive.js';
import { KompoxError } from '../../src/domain/errors.js';
import { compareWithManifest, type ListedEntry } from '../../src/usecases/transfer.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const tree: ManifestEntry[] = [
  { path: 'data', type: 'dir', mode: 0o755, size: 0 },
  { path: 'data/a', type: 'dir', mode: 0o750, size: 0 },
  { path: 'data/a-b', type: 'file', mode: 0o644, size: 1, sha256: sha('1') },
  { path: 'data/a/x', type: 'file', mode: 0o600, size: 2, sha256: sha('22') },
  { path: 'data/l', type: 'symlink', mode: 0o777, size: 0, linkpath: 'a/x' },
];
const manifest = (entries = tree): ArchiveManifest => buildManifest(entries, 'tar.zst', {});
/** The listing in an order find might give (not path order). */
const listing = (): ListedEntry[] => [tree[0]!, tree[1]!, tree[3]!, tree[2]!, tree[4]!].map((e) => ({ ...e }));
/** The listing in path order, as the read-back's join hands it over. */
const check = (l: ListedEntry[], m: ArchiveManifest) => compareWithManifest([...l].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)), m);
const mismatch = (re: RegExp) => (e: unknown) => e instanceof KompoxError && e.kind === 'integrity' && e.code === 'transfer.verify.mismatch' && re.test(e.message);

describe('compareWithManifest', () => {
  it('accepts the same tree, with the manifest in path order or not, and an empty lost+found', () => {
    check(listing(), manifest());
    check(listing().reverse(), manifest([...tree].reverse()));
    check([...listing(), { path: 'data/lost+found', type: 'dir', mode: 0o700, size: 0 }], manifest());
  });

  it('refuses the first difference', () => {
    const edit = (path: string, change: Partial<ListedEntry>) => listing().map((e) => (e.path === path ? { ...e, ...change } : e));
    assert.throws(() => check(listing().filter((e) => e.path !== 'data/a-b'), manifest()), mismatch(/data\/a-b is missing/));
    assert.throws(() => check([...listing(), { path: 'data/zz', type: 'other', mode: 0, size: 0 }], manifest()), mismatch(/data\/zz is not in the archive/));
    assert.throws(() => check(edit('data/a', { mode: 0o700 }), manifest()), mismatch(/data\/a has mode 700, the archive 750/));
    assert.throws(() => check(edit('data/a/x', { type: 'dir' }), manifest()), mismatch(/data\/a\/x is a dir, the archive has a file/));
    assert.throws(() => check(edit('data/a/x', { sha256: sha('xx') }), manifest()), mismatch(/file data\/a\/x has 2 bytes/));
    assert.throws(() => check(edit('data/l', { linkpath: 'b' }), manifest()), mismatch(/symlink data\/l points to b/));
    // a lost+found with something in it is data the archive does not have
    const lf: ListedEntry[] = [{ path: 'data/lost+found', type: 'dir', mode: 0o700, size: 0 }, { path: 'data/lost+found-2', type: 'dir', mode: 0o700, size: 0 }, { path: 'data/lost+found/#12', type: 'file', mode: 0o600, size: 0 }];
    assert.throws(() => check([...listing(), ...lf], manifest()), mismatch(/data\/lost\+found is not in the archive/));
    // the manifest's entries first: a missing one is reported before an extra one
    assert.throws(() => check([...listing().filter((e) => e.path !== 'data/l'), { path: 'data/b', type: 'file', mode: 0o644, size: 0 }], manifest()), mismatch(/data\/l is missing/));
    // a digest that is not the entries' (a manifest that lies about it)
    assert.throws(() => check(listing(), { ...manifest(), treeDigest: sha('other') }), mismatch(/its tree digest is/));
  });

  it('takes the listing in path order only (the join sorts it; anything else is a bug, not a mismatch)', () => {
    assert.throws(
      () => compareWithManifest([...tree, { path: 'data/a-a', type: 'file', mode: 0o644, size: 0 }], manifest()),
      (e: unknown) => !(e instanceof KompoxError) && /not in path order at "data\/a-a"/.test((e as Error).message),
    );
  });
});
