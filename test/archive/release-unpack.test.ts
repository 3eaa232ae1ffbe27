// An import frees the decompressed stream as it goes (runReader's `spent`):
// each chunk once the tar reader has read past it and every write of it is
// done (ReleaseAfterWrites), a zlib output buffer split between two chunks
// once both are spent (spendPiece), and what the tar reader keeps beyond a
// read (a small file's parts, the manifest's unparsed rest) stays valid.
// A chunk freed too early reads as empty: the file written from it would be
// short while its SHA-256, taken before the write, still matched; so these
// tests compare the extracted files with the source, byte for byte.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { zstdDecompressSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { ByteReader, compressingWriter, packTree, ReleaseAfterWrites, unpackArchive, writeAll } from '../../src/archive/archive.js';
import { archiveToTar } from '../../src/archive/tar-stream.js';
import { freeSpent, markHandedOverInPieces, spendPiece } from '../../src/archive/memory.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { ManifestStream } from '../../src/archive/manifest-stream.js';

const KiB = 1024;

function whole(n: number, fill = 7): Buffer {
  return Buffer.from(new ArrayBuffer(n)).fill(fill);
}

test('spendPiece frees memory handed over in pieces once all of it is spent, never before', () => {
  const mem = whole(256 * KiB, 5);
  const a = mem.subarray(0, 4234);
  const b = mem.subarray(4234);
  assert.equal(spendPiece(a), false, 'not handed over: the caller counts it');
  markHandedOverInPieces(a);
  assert.equal(spendPiece(a), true);
  assert.equal(mem.length, 256 * KiB, 'half spent: the rest is still being read');
  assert.equal(b[0], 5);
  assert.equal(spendPiece(b), true);
  assert.equal(mem.buffer.byteLength, 0, 'all spent: freed');

  const small = whole(8 * KiB);
  markHandedOverInPieces(small);
  assert.equal(spendPiece(small), false, 'small memory is left to the GC');
  assert.equal(small.length, 8 * KiB);

  const w = whole(64 * KiB);
  assert.equal(freeSpent(w), true, 'a whole buffer');
  assert.equal(w.length, 0);
  const shared = whole(64 * KiB);
  assert.equal(freeSpent(shared.subarray(0, 32 * KiB)), false, 'a slice of memory nobody handed over');
  assert.equal(shared[0], 7);
});

test('a ByteReader releases each chunk whole, even one it handed out in parts', async () => {
  const chunks = [whole(64 * KiB, 1), whole(64 * KiB, 2)];
  const released: Buffer[] = [];
  const r = new ByteReader(
    (async function* () {
      yield* chunks;
    })(),
    (b) => released.push(b),
  );
  await r.read(512);
  await r.readSome(1 << 20); // the rest of chunk 0
  await r.read(10);
  assert.equal(released.length, 1);
  assert.equal(released[0], chunks[0], 'the chunk as it came, not the view of its rest');
});

test('a held ByteReader releases nothing until unheld (TarReader.withParts)', async () => {
  const chunks = [whole(32 * KiB, 1), whole(32 * KiB, 2), whole(32 * KiB, 3)];
  const released: Buffer[] = [];
  const r = new ByteReader(
    (async function* () {
      yield* chunks;
    })(),
    (b) => released.push(b),
  );
  r.hold();
  assert.equal(r.releases, false, 'held: what reads return stays valid');
  await r.read(32 * KiB);
  await r.read(32 * KiB);
  await r.read(10);
  assert.equal(released.length, 0);
  r.unhold();
  assert.equal(r.releases, true);
  await r.read(10);
  assert.deepEqual(released, chunks.slice(0, 2));
});

test('ReleaseAfterWrites frees a spent chunk only once every write of it is done', () => {
  const freed: Buffer[] = [];
  const w = new ReleaseAfterWrites((c) => freed.push(c));
  const a = whole(64 * KiB);
  const b = whole(64 * KiB);
  const doneA1 = w.writing(a.subarray(0, 100));
  const doneA2 = w.writing(a.subarray(100));
  w.spent(a);
  w.spent(b);
  assert.deepEqual(freed, [b], 'b has no write in flight: at once');
  doneA1();
  assert.equal(freed.length, 1, 'one write of a still in flight');
  doneA2();
  doneA2(); // a callback called twice counts once
  assert.deepEqual(freed, [b, a]);
  const c = whole(64 * KiB);
  w.writing(c)();
  w.spent(c);
  assert.deepEqual(freed, [b, a, c], 'all its writes done before it was spent: at once');
});

test('ReleaseAfterWrites frees nothing once a write has failed', () => {
  const freed: Buffer[] = [];
  const w = new ReleaseAfterWrites((c) => freed.push(c));
  const a = whole(64 * KiB);
  const b = whole(64 * KiB);
  const doneA = w.writing(a);
  const doneB = w.writing(b);
  w.spent(a);
  doneA(new Error('EIO'));
  assert.deepEqual(freed, [], 'its write failed: the stream may still be sending it');
  w.spent(b);
  doneB();
  const c = whole(64 * KiB);
  w.spent(c);
  assert.deepEqual(freed, [], 'after a failure nothing is freed: the garbage collector takes it');
});

test('a write stream that fails while still sending a chunk never sees it freed (an SFTP stream sends a big chunk in parts)', async () => {
  // ssh2's SFTP write stream: a failed request calls back every write it
  // holds with the error, while it is still sending the rest of a big one.
  let sending: Buffer | undefined;
  let sentAfterFailure: Buffer | undefined;
  const ws = new Writable({
    highWaterMark: 16,
    write(chunk: Buffer, _enc, cb) {
      sending = chunk;
      cb(new Error('Failure (SFTP status 4)'));
      setImmediate(() => {
        sentAfterFailure = Buffer.from(sending!.subarray(sending!.length - 8));
      });
    },
  });
  ws.on('error', () => undefined);
  const w = new ReleaseAfterWrites(freeSpent);
  const chunk = whole(256 * KiB, 9);
  await assert.rejects(writeAll(ws, chunk, w.writing(chunk)), /SFTP status 4/);
  w.spent(chunk);
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.equal(chunk.buffer.byteLength, 256 * KiB, 'not freed');
  assert.deepEqual(sentAfterFailure, Buffer.alloc(8, 9), 'the stream could still read what it was sending');
  // a write that never starts (the stream has failed already) still calls back, with the
  // error: ReleaseAfterWrites would otherwise count it in flight to the end
  let calledBack: Error | null | undefined;
  await assert.rejects(writeAll(ws, whole(KiB, 3), (err) => (calledBack = err)), /SFTP status 4/);
  assert.match(String(calledBack), /SFTP status 4/);
});

test('ManifestStream keeps the unparsed rest of a chunk as its own copy', () => {
  const entries = Array.from({ length: 50 }, (_, i) => ({ path: `data/f${i}`, type: 'file', mode: 0o644, size: i, sha256: 'a'.repeat(64) }));
  const text = Buffer.from(JSON.stringify({ format: 'kompox-archive', version: 2, entries }));
  const seen: string[] = [];
  const ms = new ManifestStream((e) => seen.push(e.path));
  for (let at = 0; at < text.length; at += 333) {
    const chunk = Buffer.from(text.subarray(at, at + 333));
    ms.push(chunk);
    chunk.fill(0x20); // the reader reuses or frees the chunk once pushed: its rest must not be read from it
  }
  ms.end();
  assert.deepEqual(
    seen,
    entries.map((e) => e.path),
  );
});

/** LocalHostFs whose files are written late: each write completes a little after it was given, reading the chunk only then. */
class LateWritesFs extends LocalHostFs {
  readonly given: Buffer[] = [];
  override openWrite(path: string, mode: number): Writable {
    const real = createWriteStream(path, { flags: 'wx', mode });
    const given = this.given;
    return new Writable({
      highWaterMark: 4 * 1024 * KiB,
      write(chunk: Buffer, _enc, cb) {
        given.push(chunk);
        setTimeout(() => {
          real.write(Buffer.from(chunk)); // the bytes as they are now
          cb();
        }, 1);
      },
      final(cb) {
        real.end(() => cb());
      },
    });
  }
}

async function listFiles(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(dir, p)));
    else out.push(p);
  }
  return out.sort();
}

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'release-unpack-'));
  const src = join(root, 'src');
  await mkdir(join(src, 'logs'), { recursive: true });
  await mkdir(join(src, 'small'), { recursive: true });
  // big files cross many of the decompressor's 256 KiB buffers; the compressible one puts several frames in one
  // input chunk, so frames straddle input chunks and their output buffers come in two pieces
  await writeFile(join(src, 'blob'), randomBytes(3 * 1024 * KiB + 77));
  const line = (i: number) => `2026-12-05T08:00:${String(i % 60).padStart(2, '0')}Z GET /api/v1/items/${i * 7919} 200 ${i % 997}ms\n`;
  await writeFile(join(src, 'logs', 'access.log'), Array.from({ length: 60000 }, (_, i) => line(i)).join(''));
  // enough small files that the manifest spans several chunks, with sizes that straddle chunk boundaries
  let seed = 7;
  for (let i = 0; i < 1500; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    await writeFile(join(src, 'small', `file-${i}.txt`), `${i}:`.repeat(seed % 1500));
  }
});
after(async () => rm(root, { recursive: true, force: true }));

test('an import that frees the decompressed stream as it goes writes every file whole', async () => {
  const src = join(root, 'src');
  const file = join(root, 'a.tar.zst');
  const out = createWriteStream(file);
  const packed = await packTree(new LocalHostFs(), src, out, { format: 'tar.zst' });
  await new Promise<void>((r) => out.end(r));
  const fs = new LateWritesFs();
  const dest = join(root, 'dest');
  const r = await unpackArchive(fs, createReadStream(file, { highWaterMark: 1024 * KiB }), dest, { expectedSha256: packed.sha256 });
  assert.equal(r.manifest.fileCount, 1502);
  const files = await listFiles(src);
  assert.deepEqual(await listFiles(dest), files);
  for (const p of files) {
    const [a, b] = await Promise.all([readFile(join(src, p)), readFile(join(dest, p))]);
    assert.equal(createHash('sha256').update(b).digest('hex'), createHash('sha256').update(a).digest('hex'), `${p} written whole`);
  }
  // and freed: what the late writes were given is empty now, the memory gone back without a GC
  const big = fs.given.filter((b) => b.byteLength === 0).length;
  assert.ok(big > 10, `chunks freed once written: ${big} of ${fs.given.length}`);
});

test('archiveToTar handing over into a compressingWriter (the SSH fallback): the same tar, every handed-over buffer freed once in a frame, the archive file freed as it is read', async () => {
  const src = join(root, 'src');
  const file = join(root, 'b.tar.zst');
  const out = createWriteStream(file);
  await packTree(new LocalHostFs(), src, out, { format: 'tar.zst' });
  await new Promise<void>((r) => out.end(r));
  const plain: Buffer[] = [];
  const a = await archiveToTar(createReadStream(file), new Writable({ write: (c: Buffer, _e, cb) => (plain.push(Buffer.from(c)), cb()) }));
  const compressed: Buffer[] = [];
  const given: Buffer[] = [];
  const writer = compressingWriter('tar.zst', new Writable({ write: (c: Buffer, _e, cb) => (compressed.push(Buffer.from(c)), cb()) }));
  const watch = new Writable({
    highWaterMark: 256 * KiB,
    write(c: Buffer, _e, cb) {
      given.push(c);
      writer.write(c, cb);
    },
  });
  // input chunks of the archive file: each its own buffer (fs.ReadStream), freed once decompressed
  const read: Buffer[] = [];
  const input = createReadStream(file, { highWaterMark: 256 * KiB });
  const push = input.push.bind(input);
  input.push = (c: unknown, enc?: BufferEncoding) => {
    if (Buffer.isBuffer(c)) read.push(c);
    return push(c, enc);
  };
  const b = await archiveToTar(input, watch, { handOver: true });
  await new Promise<void>((r) => writer.end(r));
  assert.equal(b.manifest.treeDigest, a.manifest.treeDigest);
  assert.ok(zstdDecompressSync(Buffer.concat(compressed)).equals(Buffer.concat(plain)), 'the same tar stream, through the compressor');
  const freed = given.filter((c) => c.byteLength === 0).length;
  assert.ok(freed >= 20 && freed >= given.length - 2, `handed-over buffers freed once copied into a frame: ${freed} of ${given.length}`);
  const inputFreed = read.filter((c) => c.byteLength === 0).length;
  assert.ok(inputFreed >= read.length - 1, `the archive file's chunks freed once decompressed: ${inputFreed} of ${read.length}`);
});
