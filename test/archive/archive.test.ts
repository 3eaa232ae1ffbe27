import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, lstat, readlink, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createZstdCompress, gzipSync, gunzipSync, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { Header, Pax } from 'tar';
import { KompoxError } from '../../src/domain/errors.js';
import {
  ChecksumWriter,
  MANIFEST_NAME,
  detectArchiveFormat,
  digestTree,
  measureTree,
  packTree,
  parseArchiveFormat,
  readManifest,
  transcodeArchive,
  unpackArchive,
  type ArchiveFormat,
} from '../../src/archive/archive.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { sandbox, writeSampleTree, type Sandbox } from '../providers/k3s-fixtures.js';
import { collect } from '../support/collect.js';

const fs = new LocalHostFs();

async function packToBuffer(dir: string, format?: ArchiveFormat) {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (c: Buffer) => chunks.push(c));
  const r = await packTree(fs, dir, sink, { source: { disk: 'src' }, format });
  sink.end();
  return { buf: Buffer.concat(chunks), ...r };
}

/** The tar stream inside an archive of either format. */
function tarOf(buf: Buffer): Buffer {
  return detectArchiveFormat(buf) === 'tar.gz' ? gunzipSync(buf) : zstdDecompressSync(buf);
}

/** A hand-made tar.gz with the given entries (to test refusals of hostile archives). */
function craft(
  entries: Array<{ path: string; type: 'File' | 'Directory' | 'SymbolicLink'; body?: string; linkpath?: string }>,
  compress: (tar: Buffer) => Buffer = gzipSync,
): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    parts.push(new Pax({ path: e.path, linkpath: e.linkpath }).encode());
    const h = new Header({ path: e.path, type: e.type, mode: 0o644, size: body.length, mtime: new Date(), linkpath: e.linkpath ?? '' });
    h.encode();
    parts.push(h.block!);
    if (body.length) {
      parts.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
  }
  parts.push(Buffer.alloc(1024));
  return compress(Buffer.concat(parts));
}

async function expectIntegrity(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof KompoxError, `expected KompoxError, got ${String(e)}`);
    assert.equal(e.kind, 'integrity');
    assert.match(e.message, re);
    return true;
  });
}

describe('portable archive', () => {
  let sb: Sandbox;
  let src: string;
  before(async () => {
    sb = await sandbox();
    src = join(sb.dir, 'src');
    await mkdir(src);
    await writeSampleTree(src);
  });
  after(() => sb.cleanup());

  it('round-trips a tree: content, modes, symlinks (not followed), empty dirs, unicode, mtimes', async () => {
    const { buf, sha256, bytes, manifest } = await packToBuffer(src);
    assert.equal(bytes, buf.length);
    assert.equal(sha256, createHash('sha256').update(buf).digest('hex'));
    const dest = join(sb.dir, 'rt');
    const r = await unpackArchive(fs, Readable.from([buf]), dest, { expectedSha256: sha256 });
    assert.equal(r.sha256, sha256);
    const a = await digestTree(fs, src);
    const b = await digestTree(fs, dest);
    assert.equal(b.treeDigest, a.treeDigest);
    assert.equal(manifest.treeDigest, a.treeDigest);
    assert.deepEqual(b.entries, a.entries);
    assert.equal(manifest.fileCount, a.entries.filter((e) => e.type === 'file').length);
    assert.equal(await readlink(join(dest, 'absolute-link')), '/etc/passwd');
    assert.ok((await lstat(join(dest, 'absolute-link'))).isSymbolicLink());
    assert.ok((await lstat(join(dest, 'empty-dir'))).isDirectory());
    assert.equal((await lstat(join(dest, 'run.sh'))).mode & 0o777, 0o755);
    assert.equal((await lstat(join(dest, 'secret.key'))).mode & 0o777, 0o600);
    assert.equal((await lstat(join(dest, 'read-only'))).mode & 0o777, 0o555);
    assert.equal(await readFile(join(dest, 'read-only', 'frozen.txt'), 'utf8'), 'cannot touch this\n');
    assert.equal((await lstat(join(dest, 'sub', 'deeper', 'note.txt'))).mtime.toISOString(), '2020-01-02T03:04:05.678Z');
    assert.equal((await readFile(join(dest, 'sub', '日本語-ファイル.txt'), 'utf8')), 'ユニコード\n');
  });

  it('copies uncompressed in one process: the plain tar stream, the same tree and checks; imports never take it', async () => {
    const pipe = new PassThrough();
    const chunks: Buffer[] = [];
    pipe.on('data', (c: Buffer) => chunks.push(c));
    const packed = await packTree(fs, src, pipe, { uncompressed: true, source: { disk: 'src' } });
    pipe.end();
    const stream = Buffer.concat(chunks);
    // a tar stream as it is (pax header first), ending in the end-of-archive marker; the manifest is version 2's
    assert.equal(detectArchiveFormat(stream), undefined);
    assert.equal(String.fromCharCode(stream[156]!), 'x');
    assert.ok(stream.subarray(stream.length - 1024).equals(Buffer.alloc(1024)));
    assert.equal(packed.manifest.version, 2);
    assert.equal(packed.bytes, stream.length);
    assert.equal(packed.sha256, createHash('sha256').update(stream).digest('hex'));
    const dest = join(sb.dir, 'plain');
    // in pieces that cut headers and file data anywhere
    const pieces = [stream.subarray(0, 100), stream.subarray(100, 700), stream.subarray(700, 5000), stream.subarray(5000)];
    const r = await unpackArchive(fs, Readable.from(pieces), dest, { uncompressed: true });
    assert.equal(r.sha256, packed.sha256);
    assert.equal(r.bytes, stream.length);
    assert.equal(r.format, 'tar.zst');
    assert.equal((await digestTree(fs, dest)).treeDigest, packed.manifest.treeDigest);
    // still verified against the manifest: a changed byte in a file's content is caught
    const manifestAt = stream.lastIndexOf(Buffer.from('"format": "kompox-archive"'));
    const body = stream.indexOf(Buffer.from('cannot touch this'));
    assert.ok(body > 0 && body < manifestAt);
    const bad = Buffer.from(stream);
    bad[body] = 'C'.charCodeAt(0);
    await expectIntegrity(unpackArchive(fs, Readable.from([bad]), join(sb.dir, 'plain-bad'), { uncompressed: true }), /frozen\.txt fails its SHA-256 check/);
    // without the option (every import) a plain tar is refused
    await expectIntegrity(unpackArchive(fs, Readable.from([stream]), join(sb.dir, 'plain-import')), /neither zstd nor gzip/);
  });

  for (const [format, magic, version] of [
    ['tar.zst', '28b52ffd', 2],
    ['tar.gz', '1f8b', 1],
  ] as const) {
    it(`${format} is a POSIX pax tar with the manifest as the last entry (version ${version})`, async () => {
      const { buf, format: got } = await packToBuffer(src, format);
      assert.equal(got, format);
      assert.equal(buf.subarray(0, magic.length / 2).toString('hex'), magic);
      const tar = tarOf(buf);
      // pax extended header type flag 'x' on the first entry
      assert.equal(String.fromCharCode(tar[156]!), 'x');
      const m = await readManifest(Readable.from([buf]));
      assert.equal(m.format, 'kompox-archive');
      assert.equal(m.version, version);
      assert.equal(m.entries[0]!.path, 'data');
      const text = tar.toString('latin1');
      // the manifest's header comes after every data entry (its JSON body names them again)
      assert.ok(text.indexOf(MANIFEST_NAME) > text.indexOf('data/sub/deeper/note.txt'));
      assert.ok(text.indexOf(MANIFEST_NAME) > text.indexOf('data/secret.key'));
      // the last 1024 bytes are the end-of-archive marker; the manifest ends just before
      assert.ok(tar.subarray(tar.length - 1024).equals(Buffer.alloc(1024)));
    });
  }

  it('imports version 1 (gzip) and version 2 (zstd) archives alike, and counts bytes for progress', async () => {
    const a = await digestTree(fs, src);
    const size = await measureTree(fs, src);
    assert.equal(size.fileCount, a.entries.filter((e) => e.type === 'file').length);
    assert.equal(size.totalBytes, a.entries.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0));
    for (const format of ['tar.gz', 'tar.zst'] as const) {
      const events: string[] = [];
      let advanced = 0;
      const progress = { start: (l: string, t?: number) => events.push(`start ${l} ${t}`), advance: (n: number) => (advanced += n), done: () => events.push('done') };
      const sink = new PassThrough();
      const chunks: Buffer[] = [];
      sink.on('data', (c: Buffer) => chunks.push(c));
      await packTree(fs, src, sink, { format, progress, progressLabel: 'pack' });
      assert.deepEqual(events, [`start pack ${size.totalBytes}`, 'done']);
      assert.equal(advanced, size.totalBytes, 'export progress counts the file bytes read');
      const buf = Buffer.concat(chunks);
      events.length = 0;
      advanced = 0;
      // the format is recognised even when the magic bytes arrive split
      const pieces = [buf.subarray(0, 1), buf.subarray(1, 3), buf.subarray(3, 5), buf.subarray(5)];
      const dest = join(sb.dir, `v-${format}`);
      const r = await unpackArchive(fs, Readable.from(pieces), dest, { progress, progressLabel: 'unpack', totalBytes: buf.length });
      assert.equal(r.format, format);
      assert.equal(r.bytes, buf.length);
      assert.deepEqual(events, [`start unpack ${buf.length}`, 'done']);
      assert.equal(advanced, buf.length, 'import progress counts the archive bytes read');
      assert.equal((await digestTree(fs, dest)).treeDigest, a.treeDigest);
    }
  });

  it('writes zstd as independent frames that the zstd tool reads as one stream', async () => {
    // Big enough for several 4 MiB frames, compressible and not.
    const big = join(sb.dir, 'big');
    await mkdir(big);
    const { writeFile } = await import('node:fs/promises');
    const { randomBytes } = await import('node:crypto');
    await writeFile(join(big, 'random.bin'), randomBytes(5 * 1024 * 1024 + 3));
    await writeFile(join(big, 'text.log'), Buffer.from('2025-01-01 INFO request served\n'.repeat(300_000)));
    const { buf, sha256 } = await packToBuffer(big);
    const tar = zstdDecompressSync(buf);
    assert.ok(tar.length > 13 * 1024 * 1024, 'every frame is decoded');
    const dest = join(sb.dir, 'big-out');
    await unpackArchive(fs, Readable.from([buf]), dest, { expectedSha256: sha256 });
    assert.equal((await digestTree(fs, dest)).treeDigest, (await digestTree(fs, big)).treeDigest);
  });

  it('reads a zstd stream Kompox did not cut into frames (one big frame, as the zstd tool writes from a pipe)', async () => {
    const big = join(sb.dir, 'one-frame');
    await mkdir(big);
    const { writeFile } = await import('node:fs/promises');
    const { randomBytes } = await import('node:crypto');
    // Over 16 MiB of content in one frame without a content size: too big to decompress whole, so streamed.
    await writeFile(join(big, 'random.bin'), randomBytes(17 * 1024 * 1024));
    await writeFile(join(big, 'text.log'), Buffer.from('2025-01-01 INFO request served\n'.repeat(100_000)));
    const { buf } = await packToBuffer(big);
    const z = createZstdCompress();
    const parts: Buffer[] = [];
    z.on('data', (b: Buffer) => parts.push(b));
    const ended = new Promise((r) => z.on('end', r));
    z.end(zstdDecompressSync(buf));
    await ended;
    const oneFrame = Buffer.concat(parts);
    assert.equal(oneFrame[4]! & 0xe0, 0, 'the frame header does not say its content size');
    const dest = join(sb.dir, 'one-frame-out');
    await unpackArchive(fs, Readable.from([oneFrame]), dest);
    assert.equal((await digestTree(fs, dest)).treeDigest, (await digestTree(fs, big)).treeDigest);
  });

  it('reads `cat a.zst big.zst c.zst`: frames that state their size after a frame too big to decompress whole', async () => {
    const big = join(sb.dir, 'cat-frames');
    await mkdir(big);
    const { writeFile } = await import('node:fs/promises');
    const { randomBytes } = await import('node:crypto');
    const { spawnSync } = await import('node:child_process');
    await writeFile(join(big, 'random.bin'), randomBytes(17 * 1024 * 1024));
    await writeFile(join(big, 'text.log'), Buffer.from('2025-01-01 INFO request served\n'.repeat(100_000)));
    const tar = zstdDecompressSync((await packToBuffer(big)).buf);
    // `zstd FILE` states the content size (node's one-shot compressor too); `zstd` from a pipe does not.
    const cuts = [0, 100_003, tar.length - 2_000_001, tar.length - 999, tar.length];
    const frames = cuts.slice(1).map((end, i) => {
      const part = tar.subarray(cuts[i], end);
      if (i !== 1) return zstdCompressSync(part);
      const r = spawnSync('zstd', ['-q', '-c', '-1'], { input: part, maxBuffer: 1 << 30 });
      assert.equal(r.status, 0, String(r.stderr));
      return r.stdout;
    });
    const joined = Buffer.concat(frames);
    const pieces: Buffer[] = [];
    for (let i = 0; i < joined.length; i += 65_537) pieces.push(joined.subarray(i, i + 65_537));
    const dest = join(sb.dir, 'cat-frames-out');
    await unpackArchive(fs, Readable.from(pieces), dest);
    assert.equal((await digestTree(fs, dest)).treeDigest, (await digestTree(fs, big)).treeDigest);
  });

  it('hashes an export once: ChecksumWriter takes the archive\'s own digest', async () => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const w = new ChecksumWriter(out);
    const r = await packTree(fs, src, w);
    await new Promise<void>((resolve, reject) => w.end((e?: Error | null) => (e ? reject(e) : resolve())));
    const buf = Buffer.concat(chunks);
    assert.equal(w.bytes, buf.length);
    assert.equal(w.sha256(), createHash('sha256').update(buf).digest('hex'));
    assert.equal(w.sha256(), r.sha256);
  });

  it('re-compresses a version 2 archive as version 1 (and back) without extracting it; a tampered input is refused', async () => {
    const { buf, sha256 } = await packToBuffer(src);
    const gz = await collect((out) => transcodeArchive(Readable.from([buf]), out, { format: 'tar.gz', expectedSha256: sha256 }));
    assert.equal(detectArchiveFormat(gz), 'tar.gz');
    const m1 = await readManifest(Readable.from([gz]));
    assert.equal(m1.version, 1, 'gzip archives say version 1, for releases that read only version 1');
    const back = await collect((out) => transcodeArchive(Readable.from([gz]), out, { format: 'tar.zst' }));
    assert.equal((await readManifest(Readable.from([back]))).version, 2);
    const want = (await digestTree(fs, src)).treeDigest;
    for (const [name, archive] of [['gz', gz], ['back', back]] as const) {
      const dest = join(sb.dir, `tc-${name}`);
      await unpackArchive(fs, Readable.from([archive]), dest);
      assert.equal((await digestTree(fs, dest)).treeDigest, want);
    }
    await expectIntegrity(
      collect((out) => transcodeArchive(Readable.from([buf]), out, { format: 'tar.gz', expectedSha256: '0'.repeat(64) })),
      /SHA-256 is [0-9a-f]{64}, expected 0{64}/,
    );
  });

  it('never follows a file that became a symlink after the listing (live disk): it is left out', async () => {
    const live = join(sb.dir, 'live');
    await mkdir(live);
    const { writeFile, symlink } = await import('node:fs/promises');
    await writeFile(join(live, 'kept.txt'), 'kept\n');
    await symlink('/etc/hostname', join(live, 'swapped.txt'));
    // The listing saw a regular file there; by the time it is read it is a symlink.
    const racing = Object.assign(Object.create(fs) as LocalHostFs, {
      lstat: async (p: string) => {
        const st = await fs.lstat(p);
        return p.endsWith('/swapped.txt') && st ? { ...st, kind: 'file' as const, size: 64 } : st;
      },
    });
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    const r = await packTree(racing, live, sink);
    assert.deepEqual(
      r.manifest.entries.map((e) => e.path),
      ['data', 'data/kept.txt'],
    );
    const dest = join(sb.dir, 'live-out');
    await unpackArchive(fs, Readable.from([Buffer.concat(chunks)]), dest);
    assert.equal(await readFile(join(dest, 'kept.txt'), 'utf8'), 'kept\n');
  });

  it('never follows a parent directory swapped for a symlink after the listing (O_NOFOLLOW guards the last component only): the files are left out', { skip: process.getuid?.() === 0 ? false : 'chown to another owner needs root' }, async () => {
    const { writeFile, symlink, rename, chown } = await import('node:fs/promises');
    const live = join(sb.dir, 'live-parent');
    const node = join(sb.dir, 'node-etc');
    await mkdir(join(live, 'sub'), { recursive: true });
    await mkdir(node);
    await writeFile(join(live, 'kept.txt'), 'kept\n');
    // a small file (read with synchronous calls) and one over 1 MiB (a file handle)
    await writeFile(join(live, 'sub', 'small'), 'tenant small\n');
    await writeFile(join(live, 'sub', 'big'), Buffer.alloc(1536 * 1024, 'tenant big '));
    await writeFile(join(node, 'small'), 'NODE-SECRET-SMALL\n');
    await writeFile(join(node, 'big'), Buffer.alloc(1536 * 1024, 'NODE-SECRET-BIG '));
    for (const f of ['kept.txt', 'sub', 'sub/small', 'sub/big']) await chown(join(live, f), 1234, 1234);
    for (const f of ['small', 'big']) await chown(join(node, f), 4321, 4321);
    // the listing saw sub/ as a directory; it is swapped just before the first of its files is opened
    let swap: Promise<void> | undefined;
    const racing = Object.assign(Object.create(fs) as LocalHostFs, {
      openFile: async (p: string, listed: Parameters<LocalHostFs['openFile']>[1]) => {
        // (files are opened ahead, concurrently: each waits for the one swap)
        if (p.includes('/sub/')) await (swap ??= rename(join(live, 'sub'), join(live, 'sub.away')).then(() => symlink(node, join(live, 'sub'))));
        return fs.openFile(p, listed);
      },
    });
    const bytes = await collect((out) => packTree(racing, live, out, { format: 'tar.zst', uncompressed: true }));
    assert.ok(swap);
    assert.doesNotMatch(bytes.toString('latin1'), /NODE-SECRET/, 'no node file in the archive');
    assert.match(bytes.toString('latin1'), /kept/);
  });

  it('a file replaced by a FIFO since the listing is left out at once, never waited on (in a child process: the wait blocks its event loop)', async () => {
    const { writeFile } = await import('node:fs/promises');
    const { spawnSync } = await import('node:child_process');
    const dir = join(sb.dir, 'fifo');
    await mkdir(dir);
    // a small file (synchronous open) and one over 1 MiB (a file handle)
    await writeFile(join(dir, 'small'), 'small\n');
    await writeFile(join(dir, 'big'), Buffer.alloc(1536 * 1024, 1));
    const script = [
      `import { LocalHostFs } from ${JSON.stringify(new URL('../../src/providers/k3s/hostfs.ts', import.meta.url).href)};`,
      "import { rmSync } from 'node:fs';",
      "import { execFileSync } from 'node:child_process';",
      'const fs = new LocalHostFs();',
      'const out = [];',
      "for (const name of ['small', 'big']) {",
      '  const path = `${process.argv[1]}/${name}`;',
      '  const listed = await fs.lstat(path);',
      '  rmSync(path);',
      "  execFileSync('mkfifo', [path]);",
      '  out.push((await fs.openFile(path, listed)) === undefined);',
      '}',
      'console.log(JSON.stringify(out));',
    ].join('\n');
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dir], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.error, undefined, 'the child ended within 30 s (an open of the FIFO waits for a writer)');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()!), [true, true]);
  });

  it('refuses what is neither zstd nor gzip, and an empty stream', async () => {
    await expectIntegrity(unpackArchive(fs, Readable.from([Buffer.from('PK\x03\x04 a zip file')]), join(sb.dir, 'zip')), /neither zstd nor gzip/);
    await expectIntegrity(unpackArchive(fs, Readable.from([]), join(sb.dir, 'empty')), /empty/);
    assert.equal(parseArchiveFormat('tar.gz'), 'tar.gz');
    assert.equal(parseArchiveFormat('.TAR.ZST'), 'tar.zst');
    assert.throws(() => parseArchiveFormat('zip'), (e: unknown) => e instanceof KompoxError && e.kind === 'usage' && /--format "zip"/.test(e.message));
  });

  for (const format of ['tar.zst', 'tar.gz'] as const) {
    it(`refuses a flipped byte and a truncated archive (${format})`, async () => {
      const { buf } = await packToBuffer(src, format);
      const bad = Buffer.from(buf);
      bad[Math.floor(bad.length / 2)]! ^= 0xff;
      await expectIntegrity(unpackArchive(fs, Readable.from([bad]), join(sb.dir, `flip-${format}`)), /zstd|gzip|SHA-256|checksum|digest|truncated/);
      await expectIntegrity(unpackArchive(fs, Readable.from([buf.subarray(0, buf.length - 100)]), join(sb.dir, `trunc-${format}`)), /truncated/);
    });
  }

  it('refuses a tar header the tar library cannot decode (a bad base-256 number) as an integrity error', async () => {
    for (const [name, compress] of [
      ['zst', (b: Buffer) => zstdCompressSync(b)],
      ['gz', (b: Buffer) => gzipSync(b)],
    ] as const) {
      const bad = craft([{ path: 'data/', type: 'Directory' }], (t) => {
        const b = Buffer.from(t);
        b[100] = 0x81; // the first header's mode: base-256 marked, but neither 0x80 nor 0xff
        return compress(b);
      });
      await expectIntegrity(unpackArchive(fs, Readable.from([bad]), join(sb.dir, `base256-${name}`)), /unreadable tar header/);
    }
  });

  it('refuses a wrong expected checksum', async () => {
    const { buf } = await packToBuffer(src);
    await expectIntegrity(unpackArchive(fs, Readable.from([buf]), join(sb.dir, 'wrongsum'), { expectedSha256: '0'.repeat(64) }), /SHA-256 is [0-9a-f]{64}, expected 0{64}/);
  });

  it('refuses path traversal and absolute entries', async () => {
    const evil = craft([
      { path: 'data/', type: 'Directory' },
      { path: 'data/../../evil.txt', type: 'File', body: 'x' },
    ]);
    await expectIntegrity(unpackArchive(fs, Readable.from([evil]), join(sb.dir, 'trav')), /leaves the disk/);
    const abs = craft([{ path: '/etc/evil', type: 'File', body: 'x' }]);
    await expectIntegrity(unpackArchive(fs, Readable.from([abs]), join(sb.dir, 'abs')), /absolute path/);
    const absZstd = craft([{ path: '/etc/evil', type: 'File', body: 'x' }], (t) => zstdCompressSync(t));
    await expectIntegrity(unpackArchive(fs, Readable.from([absZstd]), join(sb.dir, 'abs-zst')), /absolute path/);
  });

  it('refuses writing through a symlink in the archive', async () => {
    const evil = craft([
      { path: 'data/', type: 'Directory' },
      { path: 'data/link', type: 'SymbolicLink', linkpath: '/tmp' },
      { path: 'data/link/evil.txt', type: 'File', body: 'x' },
    ]);
    await expectIntegrity(unpackArchive(fs, Readable.from([evil]), join(sb.dir, 'through')), /parent is not a directory/);
  });

  it('refuses an archive without a manifest, and a file whose content does not match the manifest', async () => {
    const none = craft([{ path: 'data/', type: 'Directory' }]);
    await expectIntegrity(unpackArchive(fs, Readable.from([none]), join(sb.dir, 'nomani')), /without kompox-archive.json/);
    const manifest = {
      format: 'kompox-archive',
      version: 1,
      createdAt: '2025-01-01T00:00:00Z',
      source: {},
      fileCount: 1,
      dirCount: 1,
      symlinkCount: 0,
      totalBytes: 1,
      treeDigest: 'x',
      entries: [
        { path: 'data', type: 'dir', mode: 0o644, size: 0 },
        { path: 'data/a', type: 'file', mode: 0o644, size: 1, sha256: createHash('sha256').update('b').digest('hex') },
      ],
    };
    const lying = craft([
      { path: 'data/', type: 'Directory' },
      { path: 'data/a', type: 'File', body: 'a' },
      { path: MANIFEST_NAME, type: 'File', body: JSON.stringify(manifest) },
    ]);
    await expectIntegrity(unpackArchive(fs, Readable.from([lying]), join(sb.dir, 'lying')), /fails its SHA-256 check/);
  });
});
