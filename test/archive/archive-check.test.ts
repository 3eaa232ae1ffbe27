// Archives checked against their manifests in memory that does not grow with
// the file count (src/archive/archive-check.ts): the entries wait for the
// manifest sorted and spilled, and every reader (unpackArchive, archiveToTar,
// transcodeArchive) refuses the same damage, in path order (packTree) and in
// a tar's depth-first order (packTarStream, exports over SSH and through the
// cluster). Spool limits are tiny here so that everything spills.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { zstdCompressSync } from 'node:zlib';
import { buildManifest, digestTree, manifestBlocks, packTree, readManifest, transcodeArchive, unpackArchive, type ArchiveManifest, type ManifestEntry } from '../../src/archive/archive.js';
import { OpenDirs, entriesOf } from '../../src/archive/archive-check.js';
import { archiveToTar, packTarStream } from '../../src/archive/tar-stream.js';
import { headerBlocks } from '../../src/archive/tar-header.js';
import { KompoxError } from '../../src/domain/errors.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { sandbox, type Sandbox } from '../providers/k3s-fixtures.js';
import { collect } from '../support/collect.js';

const fs = new LocalHostFs();
const SPILL = { memoryBytes: 1024, runBytes: 4096 };
const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

function tarOf(dir: string): Readable {
  return spawn('tar', ['-c', '-f', '-', '-C', dir, '.'], { stdio: ['ignore', 'pipe', 'inherit'] }).stdout;
}

async function tarExtract(dir: string, data: Buffer): Promise<void> {
  await mkdir(dir, { recursive: true });
  const child = spawn('tar', ['-x', '-f', '-', '-C', dir], { stdio: ['pipe', 'inherit', 'inherit'] });
  child.stdin.end(data);
  assert.equal(await new Promise((r) => child.on('close', r)), 0);
}

const refusedWith = (re: RegExp) => (e: unknown) => e instanceof KompoxError && e.kind === 'integrity' && re.test(e.message);

describe('archives checked in flat memory (ArchiveCheck)', () => {
  let sb: Sandbox;
  let n = 0;
  const out = () => join(sb.dir, `out${n++}`);
  before(async () => {
    sb = await sandbox();
  });
  after(async () => sb.cleanup());

  describe('a tree with names around "/" in path order, nested directory metadata, more entries than one spool chunk', () => {
    let src: string;
    let digest: string;
    /** Directories whose mode and mtime the imports must restore. */
    const dirs: Array<[string, number, number]> = [
      ['a', 0o750, 1_600_000_000],
      ['a/sub', 0o700, 1_600_000_100],
      ['a/sub/deep', 0o555, 1_600_000_200],
      ['a-b', 0o751, 1_600_000_300],
      ['a-b/x', 0o711, 1_600_000_400],
      ['a.d', 0o705, 1_600_000_500],
      ['z', 0o755, 1_600_000_600],
    ];
    before(async () => {
      src = join(sb.dir, 'src');
      for (const [d] of dirs) await mkdir(join(src, d), { recursive: true });
      await writeFile(join(src, 'a.txt'), 'a.txt\n');
      await writeFile(join(src, 'a', 'x'), 'x\n');
      await writeFile(join(src, 'a', 'sub', 'deep', 'f'), 'deep\n');
      await writeFile(join(src, 'a-b', 'x', 'y'), 'y\n');
      await symlink('../a.txt', join(src, 'a.d', 'link'));
      // ~4,500 files: ManifestLog's first chunk (256 KiB of records) is pushed to its spool, which spills at once
      for (let i = 0; i < 4500; i++) await writeFile(join(src, 'z', `file-${String(i).padStart(5, '0')}`), `${i}\n`);
      for (const [d, mode, mtime] of [...dirs].reverse()) {
        await chmod(join(src, d), mode);
        await utimes(join(src, d), mtime, mtime);
      }
      digest = (await digestTree(fs, src)).treeDigest;
    });

    async function sameTree(dest: string): Promise<void> {
      assert.equal((await digestTree(fs, dest)).treeDigest, digest);
      for (const [d, mode, mtime] of dirs) {
        const st = await lstat(join(dest, d));
        assert.equal(st.mode & 0o7777, mode, `mode of ${d}`);
        assert.equal(Math.floor(st.mtimeMs / 1000), mtime, `mtime of ${d}`);
      }
    }

    it('imports what packTree writes (path order)', async () => {
      const archive = await collect((o) => packTree(fs, src, o));
      const r = await unpackArchive(fs, Readable.from([archive]), out(), { spool: SPILL });
      await sameTree(join(sb.dir, `out${n - 1}`));
      assert.equal(r.manifest.treeDigest, digest);
      const paths = [...entriesOf(r.manifest)].map((e) => e.path);
      assert.equal(paths.length, 4500 + 13);
      assert.deepEqual(paths, [...paths].sort());
    });

    it('imports what packTarStream writes (a tar\'s depth-first order), through every reader', async () => {
      const archive = await collect((o) => packTarStream(tarOf(src), o));
      const m = await readManifest(Readable.from([archive]));
      assert.equal(m.treeDigest, digest);
      const dest = out();
      const r = await unpackArchive(fs, Readable.from([archive]), dest, { spool: SPILL });
      assert.equal(r.manifest.treeDigest, digest);
      await sameTree(dest);
      // archiveToTar: the tar a node or a helper pod extracts
      const viaTar = out();
      const plain = await collect((o) => archiveToTar(Readable.from([archive]), o, { spool: SPILL }));
      await tarExtract(viaTar, plain);
      // the archive (whose order archiveToTar keeps) is not in path order, or this test proves nothing
      const listed = spawnSync('tar', ['-t', '-f', '-'], { input: plain }).stdout.toString().split('\n').filter(Boolean);
      assert.equal(listed.length, 4500 + 13);
      assert.notDeepEqual(listed, [...listed].sort());
      assert.equal((await digestTree(fs, viaTar)).treeDigest, digest);
      // transcodeArchive: the same entries, a manifest in path order, version 1
      const gz = await collect((o) => transcodeArchive(Readable.from([archive]), o, { format: 'tar.gz', spool: SPILL }));
      const mg = await readManifest(Readable.from([gz]));
      assert.equal(mg.version, 1);
      assert.equal(mg.treeDigest, digest);
      assert.deepEqual(
        mg.entries.map((e) => e.path),
        m.entries.map((e) => e.path),
      );
      await sameTree((await unpackArchive(fs, Readable.from([gz]), out(), { spool: SPILL }), join(sb.dir, `out${n - 1}`)));
    });

    it('transcodes a path-ordered archive into the same manifest bytes as before (only the version differs)', async () => {
      const archive = await collect((o) => packTree(fs, src, o, { createdAt: '2026-01-01T00:00:00Z' }));
      const gz = await collect((o) => transcodeArchive(Readable.from([archive]), o, { format: 'tar.gz', spool: SPILL }));
      const [a, b] = [await readManifest(Readable.from([archive])), await readManifest(Readable.from([gz]))];
      assert.equal(JSON.stringify({ ...b, version: 2 }, null, 2), JSON.stringify(a, null, 2));
    });
  });

  describe('refusals, the same in every reader and either archive order', () => {
    const names = ['a', 'b', 'c'];
    type Entry = { path: string; type: 'dir' | 'file' | 'symlink'; body?: string; linkpath?: string };
    /** An archive of `entries` (in that order) whose manifest lists `listed` (default: the entries, in path order), its head changed by `head`. */
    function archive(entries: Entry[], listed?: (es: ManifestEntry[]) => ManifestEntry[], head?: (m: ArchiveManifest) => void): Buffer {
      const parts: Buffer[] = [];
      const es: ManifestEntry[] = [];
      for (const e of entries) {
        const mode = e.type === 'dir' ? 0o755 : e.type === 'symlink' ? 0o777 : 0o644;
        if (e.type === 'dir') parts.push(...headerBlocks({ path: `${e.path}/`, type: 'Directory', mode, uid: 0, gid: 0, size: 0, mtime: new Date(0) }));
        else if (e.type === 'symlink') parts.push(...headerBlocks({ path: e.path, type: 'SymbolicLink', mode, uid: 0, gid: 0, size: 0, mtime: new Date(0), linkpath: e.linkpath! }));
        else {
          const body = Buffer.from(e.body ?? e.path);
          parts.push(...headerBlocks({ path: e.path, type: 'File', mode, uid: 0, gid: 0, size: body.length, mtime: new Date(0) }), body, Buffer.alloc(512 - body.length));
        }
        es.push({ path: e.path, type: e.type, mode, size: e.type === 'file' ? Buffer.byteLength(e.path) : 0, ...(e.type === 'file' ? { sha256: sha(e.path) } : {}), ...(e.linkpath ? { linkpath: e.linkpath } : {}) });
      }
      const sorted = [...es].sort((x, y) => (x.path < y.path ? -1 : 1));
      const unique = sorted.filter((e, i) => i === 0 || sorted[i - 1]!.path !== e.path);
      const m = buildManifest(unique, 'tar.zst', {});
      m.entries = listed ? listed(unique) : unique;
      head?.(m);
      parts.push(...manifestBlocks(m));
      return zstdCompressSync(Buffer.concat(parts));
    }
    const files = (order: string[]): Entry[] => [{ path: 'data', type: 'dir' }, ...order.map((x) => ({ path: `data/${x}`, type: 'file' as const }))];
    const readers: Array<[string, (b: Buffer) => Promise<unknown>]> = [
      ['unpackArchive', (b) => unpackArchive(fs, Readable.from([b]), out(), { spool: SPILL })],
      ['archiveToTar', (b) => collect((o) => archiveToTar(Readable.from([b]), o, { spool: SPILL }))],
      ['transcodeArchive', (b) => collect((o) => transcodeArchive(Readable.from([b]), o, { format: 'tar.zst', spool: SPILL }))],
    ];

    for (const [reader, read] of readers) {
      for (const [order, list] of [
        ['path order', names],
        ['reverse order', [...names].reverse()],
      ] as const) {
        it(`${reader}, ${order}`, async () => {
          await read(archive(files(list)));
          await read(archive(files(list), (es) => [...es].reverse())); // listed depth first / backwards: older manifests
          await assert.rejects(read(archive([...files(list), { path: 'data/b', type: 'file' }])), refusedWith(/contains data\/b twice/));
          await assert.rejects(read(archive(files(list), (es) => es.filter((e) => e.path !== 'data/b'))), refusedWith(/data\/b is not listed in the manifest/));
          await assert.rejects(read(archive(files(list), (es) => [...es].reverse().filter((e) => e.path !== 'data/b'))), refusedWith(/data\/b is not listed in the manifest/));
          const extra: ManifestEntry = { path: 'data/bb', type: 'file', mode: 0o644, size: 1, sha256: sha('x') };
          await assert.rejects(read(archive(files(list), (es) => [...es, extra].sort((x, y) => (x.path < y.path ? -1 : 1)))), refusedWith(/lists data\/bb but the archive does not contain it/));
          await assert.rejects(read(archive(files(list), (es) => [...es].reverse().concat(extra))), refusedWith(/lists data\/bb but the archive does not contain it/));
          await assert.rejects(read(archive(files(list), (es) => [...es, es[1]!])), refusedWith(/lists data\/a twice/));
          await assert.rejects(read(archive(files(list), (es) => [...es, es[3]!])), refusedWith(/lists data\/c twice/));
          await assert.rejects(read(archive(files(list), (es) => [...es].reverse().concat(es[2]!))), refusedWith(/lists data\/b twice/));
          const tampered = files(list).map((e) => (e.path === 'data/c' ? { ...e, body: 'data/C' } : e));
          await assert.rejects(read(archive(tampered)), refusedWith(/file data\/c fails its SHA-256 check/));
          await assert.rejects(read(archive(tampered, (es) => [...es].reverse())), refusedWith(/file data\/c fails its SHA-256 check/));
          await assert.rejects(read(archive(files(list), (es) => es.map((e) => (e.path === 'data/a' ? { ...e, mode: 0o600 } : e)))), refusedWith(/data\/a has mode 644 but the manifest says 600/));
          // totals that are not the entries' (listed and extracted alike): more files, fewer bytes, a count missing
          await assert.rejects(read(archive(files(list), undefined, (m) => void (m.fileCount += 1))), refusedWith(/the manifest says the archive holds 4 files, but it holds 3$/));
          await assert.rejects(read(archive(files(list), (es) => [...es].reverse(), (m) => void (m.fileCount += 1))), refusedWith(/holds 4 files, but it holds 3$/));
          await assert.rejects(read(archive(files(list), undefined, (m) => void (m.totalBytes -= 1))), refusedWith(/holds 17 bytes in files, but it holds 18$/));
          await assert.rejects(read(archive(files(list), undefined, (m) => void (m.dirCount = 2))), refusedWith(/holds 2 directories, but it holds 1$/));
          await assert.rejects(read(archive(files(list), undefined, (m) => void delete (m as Partial<ArchiveManifest>).symlinkCount)), refusedWith(/holds no count of symlinks, but it holds 0$/));
        });
      }
    }

    for (const [reader, read] of readers.slice(0, 2)) {
      it(`${reader} never writes through a symlink or a file the archive made, in any order`, async () => {
        const l: Entry = { path: 'data/l', type: 'symlink', linkpath: sb.dir };
        // under a symlink, out of path order (depth first: the directory chain moved on)
        await assert.rejects(read(archive([{ path: 'data', type: 'dir' }, { path: 'data/z', type: 'dir' }, { path: 'data/z/f', type: 'file' }, l, { path: 'data/l/evil', type: 'file' }])), refusedWith(/data\/l\/evil comes before its directory/));
        // under a symlink, in path order
        await assert.rejects(read(archive([{ path: 'data', type: 'dir' }, l, { path: 'data/l/evil', type: 'file' }])), refusedWith(/data\/l\/evil comes before its directory/));
        // a directory over the symlink first, then under it
        await assert.rejects(read(archive([{ path: 'data', type: 'dir' }, l, { path: 'data/k', type: 'dir' }, { path: 'data/l', type: 'dir' }, { path: 'data/l/evil', type: 'file' }])), refusedWith(/contains data\/l twice/));
        // under a file
        await assert.rejects(read(archive([{ path: 'data', type: 'dir' }, { path: 'data/f', type: 'file' }, { path: 'data/g', type: 'dir' }, { path: 'data/f/x', type: 'file' }])), refusedWith(/data\/f\/x comes before its directory/));
        // before its directory
        await assert.rejects(read(archive([{ path: 'data', type: 'dir' }, { path: 'data/d/x', type: 'file' }, { path: 'data/d', type: 'dir' }])), refusedWith(/data\/d\/x comes before its directory/));
        await assert.rejects(read(archive([{ path: 'data/x', type: 'file' }, { path: 'data', type: 'dir' }])), refusedWith(/data\/x comes before its directory/));
        // a directory twice
        await assert.rejects(read(archive([{ path: 'data', type: 'dir' }, { path: 'data/d', type: 'dir' }, { path: 'data/d', type: 'dir' }])), refusedWith(/contains data\/d twice/));
        await assert.rejects(read(archive([{ path: 'data', type: 'dir' }, { path: 'data', type: 'dir' }])), refusedWith(/contains data twice/));
        assert.equal(await readFile(join(sb.dir, 'evil')).catch(() => 'none'), 'none');
      });
    }

    it('unpackArchive finds a parent the open directories dropped on the filesystem (an order neither path nor depth-first)', async () => {
      const dest = out();
      await unpackArchive(fs, Readable.from([archive([{ path: 'data', type: 'dir' }, { path: 'data/a', type: 'dir' }, { path: 'data/a/b', type: 'dir' }, { path: 'data/c', type: 'dir' }, { path: 'data/a/b/f', type: 'file' }, { path: 'data/a/g', type: 'file' }])]), dest, { spool: SPILL });
      assert.equal(await readFile(join(dest, 'a', 'b', 'f'), 'utf8'), 'data/a/b/f');
    });
  });

  it('OpenDirs keeps a directory until path order has passed it, and the ancestors of a depth-first walk', () => {
    const o = new OpenDirs();
    o.push('data');
    assert.ok(o.has('data', 'data/a'));
    o.push('data/a');
    assert.ok(o.has('data', 'data/a-b'));
    o.push('data/a-b');
    assert.ok(o.has('data/a-b', 'data/a-b/x'));
    assert.ok(o.has('data', 'data/a.txt'));
    assert.ok(o.has('data/a', 'data/a/x'), 'a-b and a.txt come before a/x in path order');
    assert.ok(!o.has('data/a', 'data/b/x'));
    assert.deepEqual(o.chain, ['data']);
    o.push('data/b');
    assert.throws(() => o.has('data', 'data/b'), refusedWith(/contains data\/b twice/));
  });
});
