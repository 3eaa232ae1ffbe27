// Freeing buffers without a GC (src/archive/memory.ts releaseBuffer,
// markReleasable, releaseMarked): a buffer is freed only when it is the whole
// of its memory or its producer handed it over, and a reader frees a chunk
// only once the caller has asked for the next bytes (ByteReader's release).
// packTarStream frees the exec stream's messages as it finishes them, and the
// archive it writes is the same as from a stream nobody frees.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { after, before, describe, mock, test } from 'node:test';
import { ByteReader, CopyingCoalescer, packTree, TarReader } from '../../src/archive/archive.js';
import { GarbagePacer, isReleasable, markReleasable, pacedGarbageLeft, pacingPipe, releaseBuffer, releaseMarked } from '../../src/archive/memory.js';
import { archiveToTar, packTarStream } from '../../src/archive/tar-stream.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';

const KiB = 1024;

/** A buffer that is all of its memory (as Buffer.allocUnsafe gives one of this size). */
function whole(n: number, fill = 7): Buffer {
  return Buffer.from(new ArrayBuffer(n)).fill(fill);
}

/** A WebSocket message as exec-stream gets it: its own buffer, the channel byte first; the view after it. */
function message(payload: Buffer): Buffer {
  const m = Buffer.from(new ArrayBuffer(payload.length + 1));
  m[0] = 1;
  payload.copy(m, 1);
  return m.subarray(1);
}

test('releaseBuffer frees a buffer that is all of its memory, and nothing that shares memory', () => {
  const b = whole(64 * KiB);
  assert.equal(releaseBuffer(b), true);
  assert.equal(b.length, 0, 'freed: the view is empty, never a window on freed memory');
  assert.equal(b.buffer.byteLength, 0);

  const parent = whole(128 * KiB);
  const slice = parent.subarray(0, 64 * KiB);
  assert.equal(releaseBuffer(slice), false, 'a slice: the rest of its memory may be in use');
  assert.equal(parent.length, 128 * KiB);
  assert.equal(parent[100], 7);

  const small = whole(4 * KiB);
  assert.equal(releaseBuffer(small), false, 'small buffers are left to the GC');
  assert.equal(small.length, 4 * KiB);
  const pooled = Buffer.from('pooled');
  assert.equal(releaseBuffer(pooled), false);
  assert.equal(pooled.toString(), 'pooled');
});

test('a handed-over buffer is freed by releaseMarked, through any view of it; an unmarked one is not', () => {
  const m = message(whole(64 * KiB, 9));
  assert.equal(isReleasable(m), false);
  assert.equal(releaseMarked(m), false, 'not handed over: left alone');
  assert.equal(m.length, 64 * KiB);
  markReleasable(m);
  assert.equal(isReleasable(m), true);
  const rest = m.subarray(1000);
  assert.equal(isReleasable(rest), true, 'a view of handed-over memory');
  assert.equal(releaseMarked(rest), true);
  assert.equal(m.length, 0, 'the whole memory is freed');

  const tiny = message(whole(KiB));
  markReleasable(tiny);
  assert.equal(isReleasable(tiny), false, 'too small to be worth it: never marked');
});

test('a pacing pipe with readableChunks gives out the chunks as they came (no concatenated copy) and counts handed-over ones one buffer less', async () => {
  const a = message(whole(32 * KiB, 1));
  const b = whole(32 * KiB, 2);
  const c = message(whole(32 * KiB, 3));
  markReleasable(a);
  markReleasable(c);
  new GarbagePacer(1).note(1); // a paced GC: the budget starts afresh
  const left = pacedGarbageLeft();
  const pipe = pacingPipe(new GarbagePacer(), 2, { highWaterMark: 256 * KiB, readableChunks: 4 });
  // all three buffered before anything reads
  pipe.write(a);
  pipe.write(b);
  pipe.write(c);
  pipe.end();
  const got: Buffer[] = [];
  for await (const chunk of pipe) got.push(chunk as Buffer);
  assert.equal(got.length, 3);
  assert.ok(got[0] === a && got[1] === b && got[2] === c, 'the same buffers, one by one');
  assert.equal(left - pacedGarbageLeft(), 32 * KiB * (1 + 2 + 1), 'a and c count one byte per byte, b two');

  // a byte stream's reader gets what is buffered as one new buffer: nothing left to free
  const bytes = new PassThrough();
  bytes.write(whole(32 * KiB));
  bytes.write(whole(32 * KiB));
  bytes.end();
  const merged: Buffer[] = [];
  for await (const chunk of bytes) merged.push(chunk as Buffer);
  assert.equal(merged.length, 1, 'why readableChunks: concatenated');
});

test('a releasing ByteReader hands a chunk to release only at the read after the one that finished it', async () => {
  const chunks = [whole(100, 1), whole(100, 2), whole(100, 3)];
  const released: Buffer[] = [];
  const r = new ByteReader(
    (async function* () {
      yield* chunks;
    })(),
    (b) => released.push(b),
  );
  assert.equal(r.releases, true);
  const first = await r.read(60);
  assert.equal(first[0], 1);
  const rest = await r.readSome(100); // the rest of chunk 0
  assert.equal(rest.length, 40);
  assert.equal(released.length, 0, 'chunk 0 was just finished: its last view is still the caller’s');
  const spanning = await r.read(150); // all of chunk 1 and half of chunk 2, copied
  assert.deepEqual(
    released.map((b) => b[0]),
    [1],
    'chunk 0 at this read; chunk 1 (finished by it) waits for the next',
  );
  assert.equal(spanning[0], 2);
  assert.equal(spanning[149], 3);
  await r.read(50);
  assert.deepEqual(
    released.map((b) => b[0]),
    [1, 2],
  );
  assert.equal((await r.readSome(10)).length, 0, 'the end');
  assert.deepEqual(
    released.map((b) => b[0]),
    [1, 2, 3],
  );
  assert.equal(new ByteReader((async function* () {})()).releases, false);
});

test('a TarReader over a releasing reader keeps what outlives a read (pax bodies, the header blocks of an entry) as copies', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'release-raw-'));
  try {
    await mkdir(join(dir, 'p'.repeat(80)));
    await writeFile(join(dir, 'p'.repeat(80), 'q'.repeat(80)), 'body\n');
    await writeFile(join(dir, 'short'), 'x'.repeat(700));
    const t = spawnSync('tar', ['-c', '-f', '-', '--format=pax', '-C', dir, '.']);
    assert.equal(t.status, 0, String(t.stderr));
    const tar: Buffer = t.stdout;
    // one block per chunk, each its own memory, freed for real when released: every read ends a chunk
    const blocks: Buffer[] = [];
    for (let at = 0; at < tar.length; at += 512) {
      const b = Buffer.from(new ArrayBuffer(512));
      tar.copy(b, 0, at, at + 512);
      blocks.push(b);
    }
    const detach = (b: Buffer) => void (b.buffer as ArrayBuffer & { transfer(n: number): ArrayBuffer }).transfer(0);
    const tr = new TarReader(
      new ByteReader(
        (async function* () {
          yield* blocks;
        })(),
        detach,
      ),
    );
    let at = 0;
    let paxed = 0;
    for (let e = await tr.next(); e; e = await tr.next()) {
      const raw = Buffer.concat(e.raw);
      assert.ok(raw.length >= 512);
      assert.ok(raw.equals(tar.subarray(at, at + raw.length)), `the header bytes of ${e.path} as read`);
      if (e.raw.length > 1) paxed++;
      at += raw.length + Math.ceil(e.size / 512) * 512;
      await tr.skip(e.size, e.path);
    }
    assert.ok(paxed > 0, 'pax headers were read');
    assert.ok(blocks.slice(0, -3).every((b) => b.length === 0), 'and the blocks were freed as they were read');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

describe('packTarStream frees the chunks handed over to it, and writes the same archive', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'release-'));
    const src = join(root, 'src');
    // bodies and headers that straddle message boundaries, GNU long names and pax headers (a name over 100 bytes)
    const deep = join(src, 'd'.repeat(60), 'e'.repeat(60));
    await mkdir(deep, { recursive: true });
    await writeFile(join(deep, 'f'.repeat(90)), randomBytes(300 * KiB));
    for (let i = 0; i < 40; i++) await writeFile(join(src, `small-${i}`), `file ${i}\n`.repeat(i * 37));
    await writeFile(join(src, 'big'), randomBytes(1024 * KiB + 5));
  });
  after(async () => rm(root, { recursive: true, force: true }));

  for (const format of ['gnu', 'pax'] as const) {
    test(`${format} tar in messages of 17-70 KiB`, async (t) => {
      const src = join(root, 'src');
      const tar = spawnSync('tar', ['-c', '-f', '-', `--format=${format}`, '-C', src, '.'], { maxBuffer: 64 * 1024 * KiB });
      assert.equal(tar.status, 0);
      const data = tar.stdout;
      // the reference: the same stream from buffers nobody frees
      const createdAt = '2026-12-05T00:00:00Z';
      // the manifest's tar header carries the time it is written: the same for both archives
      mock.timers.enable({ apis: ['Date'], now: Date.parse(createdAt) });
      t.after(() => mock.timers.reset());
      const plainOut = new PassThrough();
      const plainHash = createHash('sha256');
      plainOut.on('data', (d: Buffer) => plainHash.update(d));
      const plain = await packTarStream(Readable.from([Buffer.from(data)]), plainOut, { createdAt });
      const messages: Buffer[] = [];
      let seed = 1;
      for (let at = 0; at < data.length; ) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        const n = 17 * KiB + (seed % (53 * KiB));
        const m = message(data.subarray(at, at + n));
        markReleasable(m);
        messages.push(m);
        at += n;
      }
      const pipe = pacingPipe(new GarbagePacer(), 2, { highWaterMark: 256 * KiB, readableChunks: 4 });
      const feeding = (async () => {
        for (const m of messages) if (!pipe.write(m)) await new Promise((r) => pipe.once('drain', r));
        pipe.end();
      })();
      const out = new PassThrough();
      const archive = createHash('sha256');
      out.on('data', (d: Buffer) => archive.update(d));
      const freed = await packTarStream(pipe, out, { createdAt });
      await feeding;
      // the bytes as well as the manifest: a view freed before it was copied into a frame would leave a hole
      // in the archive behind a manifest hashed from the bytes before
      assert.equal(archive.digest('hex'), plainHash.digest('hex'), 'the same archive, byte for byte');
      assert.equal(freed.manifest.treeDigest, plain.manifest.treeDigest);
      assert.deepEqual(freed.manifest.entries, plain.manifest.entries);
      assert.ok(freed.manifest.entries.some((e) => e.path.length > 200), 'a long name was read');
      const left = messages.filter((m) => m.length > 0).length;
      assert.ok(left <= 1, `every message freed as it was finished (the last may wait for a read that never came): ${left} of ${messages.length} left`);
    });
  }
});

test('CopyingCoalescer copies what it is given at once, into buffers of its own handed over as they fill', () => {
  const acc = new CopyingCoalescer(64 * KiB);
  const source = Buffer.from(randomBytes(150 * KiB));
  const expected = Buffer.from(source);
  const out: Buffer[] = [];
  for (let at = 0; at < source.length; at += 10 * KiB + 7) {
    const piece = source.subarray(at, at + 10 * KiB + 7);
    out.push(...acc.add(piece));
    piece.fill(0); // the caller's memory may change (or be freed) once add() returns
  }
  assert.equal(out.length, 2);
  assert.ok(out.every((b) => b.length === 64 * KiB && isReleasable(b)), 'full buffers, handed over');
  assert.equal(acc.pending, 150 * KiB - 128 * KiB);
  out.push(acc.take());
  assert.equal(acc.pending, 0);
  assert.ok(Buffer.concat(out).equals(expected));
});

test('archiveToTar handing over: the same tar, in handed-over buffers its reader may free as it goes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'release-hand-'));
  try {
    const src = join(dir, 'src');
    await mkdir(join(src, 'sub'), { recursive: true });
    await writeFile(join(src, 'big'), randomBytes(3 * 1024 * KiB + 11));
    for (let i = 0; i < 30; i++) await writeFile(join(src, 'sub', `f${i}`), `small ${i}\n`.repeat(i * 50));
    const chunks: Buffer[] = [];
    await packTree(new LocalHostFs(), src, new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(Buffer.from(c)), cb()) }));
    const archive = Buffer.concat(chunks);
    const plain: Buffer[] = [];
    const a = await archiveToTar(Readable.from([archive]), new Writable({ write: (c: Buffer, _e, cb) => (plain.push(Buffer.from(c)), cb()) }));
    // a reader that lags, as the exec socket does: everything waits in the pipe until archiveToTar is done
    // (a view of memory freed meanwhile would come out empty)
    const pipe = new PassThrough({ readableObjectMode: true, writableHighWaterMark: 64 * 1024 * KiB, readableHighWaterMark: 100_000 });
    const b = await archiveToTar(Readable.from([archive]), pipe, { handOver: true });
    pipe.end();
    const handed: Buffer[] = [];
    let marked = 0;
    for await (const c of pipe as AsyncIterable<Buffer>) {
      handed.push(Buffer.from(c));
      // as exec-stream's stdin does: done with it once it is sent on
      if (releaseMarked(c)) marked++;
    }
    assert.equal(b.manifest.treeDigest, a.manifest.treeDigest);
    assert.ok(Buffer.concat(handed).equals(Buffer.concat(plain)), 'the same tar stream');
    assert.ok(marked >= 12, `the 3 MiB file went out in handed-over buffers, freed by the reader: ${marked} of ${handed.length}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
