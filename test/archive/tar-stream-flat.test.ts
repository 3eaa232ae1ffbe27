// packTarStream in bounded memory (issue 11: flat memory whatever the file
// count): entries come in the tar's order (the filesystem's) and are sorted
// for the manifest, duplicates and hard links are checked in that sorted
// pass. These tests craft tar streams (out of order, with duplicates and
// hard links the real tar programs would not write) and force the entry
// lists to spill with small spool limits.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { manifestBody, unpackArchive } from '../../src/archive/archive.js';
import { ManifestLog } from '../../src/archive/manifest-log.js';
import { headerBlocks } from '../../src/archive/tar-header.js';
import { packTarStream, type PackTarOptions } from '../../src/archive/tar-stream.js';
import { KompoxError } from '../../src/domain/errors.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { collect } from '../support/collect.js';

type Item = { path: string; type: 'File' | 'Directory' | 'SymbolicLink' | 'Link'; body?: string; linkpath?: string };

/** A plain tar stream of `items`, in the order given (`Link`: a hard link, tar's type `1`). */
function tarOf(items: Item[]): Buffer {
  const out: Buffer[] = [];
  for (const it of items) {
    const body = Buffer.from(it.body ?? '');
    const type = it.type === 'Link' ? 'SymbolicLink' : it.type;
    const blocks = headerBlocks({ path: it.path, type, mode: it.type === 'Directory' ? 0o755 : 0o644, uid: 0, gid: 0, size: body.length, mtime: new Date(1_700_000_000_000), ...(it.linkpath !== undefined ? { linkpath: it.linkpath } : {}) });
    if (it.type === 'Link') {
      // the ustar block is the last 512 bytes: typeflag `1`, checksum again
      const last = Buffer.from(blocks[blocks.length - 1]!);
      const u = last.subarray(last.length - 512);
      u[156] = 0x31;
      u.fill(0x20, 148, 156);
      let sum = 0;
      for (const b of u) sum += b;
      u.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
      blocks[blocks.length - 1] = last;
    }
    out.push(...blocks, body);
    if (body.length % 512) out.push(Buffer.alloc(512 - (body.length % 512)));
  }
  out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const isIntegrity = (re: RegExp) => (e: unknown) => e instanceof KompoxError && e.kind === 'integrity' && re.test(e.message);
const pack = (tar: Buffer, opts: PackTarOptions = {}) => packTarStream(Readable.from([tar]), new PassThrough().resume(), { createdAt: '2026-01-01T00:00:00Z', ...opts });
/** Spool limits small enough that the entry lists and the manifest log go through their temporary files. */
const SMALL = { memoryBytes: 4096, runBytes: 4096 };

describe('packTarStream in bounded memory', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'tar-stream-flat-'));
  });
  after(async () => rm(root, { recursive: true, force: true }));

  test('a path the stream holds twice, even far apart and out of order, is refused (integrity), with small spools too', async () => {
    const items: Item[] = [{ path: './', type: 'Directory' }];
    for (let i = 0; i < 500; i++) items.push({ path: `./f${String(999 - i).padStart(4, '0')}`, type: 'File', body: `${i}` });
    const twice = [...items.slice(0, 200), { path: './f0900', type: 'File' as const, body: 'again' }, ...items.slice(200)];
    for (const spool of [undefined, SMALL]) {
      await assert.doesNotReject(pack(tarOf(items), { spool }));
      await assert.rejects(pack(tarOf(twice), { spool }), isIntegrity(/^the tar stream contains data\/f0900 twice$/));
    }
    // an empty lost+found is left out of the archive, but not out of this check
    const lf = [{ path: './', type: 'Directory' as const }, { path: './lost+found/', type: 'Directory' as const }, { path: './a', type: 'File' as const }];
    await assert.doesNotReject(pack(tarOf(lf)));
    await assert.rejects(pack(tarOf([...lf, { path: './lost+found/', type: 'Directory' }])), isIntegrity(/contains data\/lost\+found twice/));
    // a directory and a file of the same name count too
    await assert.rejects(pack(tarOf([{ path: './', type: 'Directory' }, { path: './x/', type: 'Directory' }, { path: './a', type: 'File' }, { path: './x', type: 'File' }])), isIntegrity(/contains data\/x twice/));
  });

  test('a large stream out of order gives the manifest (byte for byte) and the archive content of the same stream in order, with small spools', async () => {
    const items: Item[] = [{ path: './', type: 'Directory' }];
    for (let d = 0; d < 30; d++) {
      items.push({ path: `./d${d}/`, type: 'Directory' });
      for (let f = 0; f < 100; f++) items.push({ path: `./d${d}/file-${f}.txt`, type: 'File', body: `content ${d}/${f}` });
      items.push({ path: `./d${d}/link`, type: 'SymbolicLink', linkpath: `file-${d}.txt` });
    }
    const inOrder = [...items].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    // the filesystem's order: parents before children, otherwise scrambled
    const shuffled = [items[0]!];
    for (let d = 29; d >= 0; d--) {
      const group = items.filter((x) => x.path.startsWith(`./d${d}/`));
      shuffled.push(group[0]!, ...group.slice(1).reverse());
    }
    const a = await pack(tarOf(inOrder));
    let b!: Awaited<ReturnType<typeof packTarStream>>;
    const bytes = await collect(async (out) => (b = await packTarStream(Readable.from([tarOf(shuffled)]), out, { createdAt: '2026-01-01T00:00:00Z', spool: SMALL })));
    assert.equal(b.manifest.fileCount, 3000);
    assert.equal(b.manifest.entries.length, 1 + 30 * 102);
    assert.deepEqual(manifestBody(b.manifest), manifestBody(a.manifest));
    assert.equal(b.manifest.treeDigest, a.manifest.treeDigest);
    // and the archive is valid: every file and the tree digest verify on import
    const dest = join(root, 'shuffled');
    const u = await unpackArchive(new LocalHostFs(), Readable.from([bytes]), dest, { expectedSha256: b.sha256 });
    assert.equal(u.manifest.treeDigest, a.manifest.treeDigest);
  });

  describe('hard links', () => {
    let src: string;
    before(async () => {
      src = join(root, 'src');
      await mkdir(src, { recursive: true });
      await writeFile(join(src, 'target'), 'the content');
      await writeFile(join(src, 'longer'), 'a longer content than the header says');
    });
    const reads: string[] = [];
    const readLinkTarget = async (p: string) => {
      reads.push(p);
      return Readable.from([await import('node:fs/promises').then((f) => f.readFile(join(src, p)))]);
    };

    test('a link to a file the stream holds becomes a file with that content (read twice without a size, once with linkTargetSize)', async () => {
      // the link comes first in path order, its target later: the check does not depend on the order
      const tar = tarOf([
        { path: './', type: 'Directory' },
        { path: './target', type: 'File', body: 'the content' },
        { path: './a-second-name', type: 'Link', linkpath: './target' },
      ]);
      reads.length = 0;
      const r = await pack(tar, { readLinkTarget, spool: SMALL });
      const e = r.manifest.entries.find((x) => x.path === 'data/a-second-name');
      assert.deepEqual(e, { path: 'data/a-second-name', type: 'file', mode: 0o644, size: 11, sha256: sha('the content') });
      assert.deepEqual(reads, ['./target', './target'], 'once to learn the size, once for the content');
      reads.length = 0;
      const r2 = await pack(tar, { readLinkTarget, linkTargetSize: async () => 11 });
      assert.deepEqual(reads, ['./target']);
      assert.deepEqual(manifestBody(r2.manifest), manifestBody(r.manifest));
    });

    test('a link whose file changed size since the stat is cut to the size learnt first, and its entry says what was sent', async () => {
      const tar = tarOf([
        { path: './', type: 'Directory' },
        { path: './longer', type: 'File', body: 'short' },
        { path: './z', type: 'Link', linkpath: './longer' },
      ]);
      const bytes = await collect((out) => packTarStream(Readable.from([tar]), out, { readLinkTarget, linkTargetSize: async () => 8 }));
      const u = await unpackArchive(new LocalHostFs(), Readable.from([bytes]), join(root, 'cut'));
      assert.deepEqual(
        u.manifest.entries.find((x) => x.path === 'data/z'),
        { path: 'data/z', type: 'file', mode: 0o644, size: 8, sha256: sha('a longer') },
      );
    });

    const refused = /^the tar stream holds data\/(\S+) as a hard link to data\/(\S+), which it does not contain as a file$/;
    for (const [name, items] of [
      ['a target the stream lacks', [{ path: './', type: 'Directory' }, { path: './target', type: 'Link', linkpath: './gone' }]],
      // (on the host still, so it is read: only the stream lacks it)
      ['a target the stream lacks, after every entry in path order', [{ path: './', type: 'Directory' }, { path: './a', type: 'Link', linkpath: './longer' }]],
      ['a target the stream lacks, between two entries in path order', [{ path: './', type: 'Directory' }, { path: './x', type: 'File' }, { path: './y', type: 'Link', linkpath: './longer' }]],
      ['a target that is a directory', [{ path: './', type: 'Directory' }, { path: './target/', type: 'Directory' }, { path: './l', type: 'Link', linkpath: './target' }]],
      ['a target that is a symlink', [{ path: './', type: 'Directory' }, { path: './s', type: 'SymbolicLink', linkpath: 'target' }, { path: './target', type: 'Link', linkpath: './s' }]],
      ['a link to itself', [{ path: './', type: 'Directory' }, { path: './target', type: 'Link', linkpath: './target' }]],
      ['two links to each other (no file among them)', [{ path: './', type: 'Directory' }, { path: './target', type: 'Link', linkpath: './longer' }, { path: './longer', type: 'Link', linkpath: './target' }]],
    ] as [string, Item[]][]) {
      test(`refused (integrity): ${name}`, async () => {
        for (const spool of [undefined, SMALL]) await assert.rejects(pack(tarOf(items), { readLinkTarget, spool }), isIntegrity(refused));
      });
    }

    test('refused without a way to read the target; a target gone from the host is the same refusal', async () => {
      const tar = tarOf([{ path: './', type: 'Directory' }, { path: './target', type: 'File', body: 'the content' }, { path: './l', type: 'Link', linkpath: './target' }]);
      await assert.rejects(pack(tar), isIntegrity(refused));
      await assert.rejects(pack(tar, { readLinkTarget, linkTargetSize: async () => undefined }), isIntegrity(refused));
      const gone = tarOf([{ path: './', type: 'Directory' }, { path: './vanished', type: 'File', body: 'x' }, { path: './l', type: 'Link', linkpath: './vanished' }]);
      await assert.rejects(pack(gone, { readLinkTarget: async (p) => (await import('node:fs')).createReadStream(join(src, p)) }), isIntegrity(refused));
    });
  });

  test('a path or symlink target over 64 KiB is a KompoxError naming the start of the path', () => {
    const log = new ManifestLog();
    const long = `data/${'a'.repeat(70 * 1024)}`;
    assert.throws(
      () => log.add({ path: long, type: 'dir', mode: 0o755, size: 0 }),
      (e: unknown) => e instanceof KompoxError && e.kind === 'integrity' && e.message.includes(`"data/aaaa`) && e.message.length < 400,
    );
    assert.throws(
      () => new ManifestLog().add({ path: 'data/s', type: 'symlink', mode: 0o777, size: 0, linkpath: 'x'.repeat(70 * 1024) }),
      (e: unknown) => e instanceof KompoxError && e.kind === 'integrity' && /symlink target of "data\/s"/.test(e.message),
    );
    log.close();
  });
});
