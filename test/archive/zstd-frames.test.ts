// decompressZstd (src/archive/zstd.ts) on zstd streams Kompox did not write:
// frames of other tools concatenated (`cat a.zst big.zst c.zst`), where a
// frame too big to decompress whole (over 16 MiB) sits between frames that
// state their content size. Every frame must come out, in order, whatever
// the input's chunking; a big frame must decode in bounded memory however
// well it compresses; damage must be an integrity error. Frames come from
// node:zlib, the zstd CLI, and by hand (raw and RLE blocks).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, test } from 'node:test';
import { Writable } from 'node:stream';
import { constants as zc, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { frameSink } from '../../src/archive/archive.js';
import { LINK_ZSTD_JOBS, ZSTD_FRAME, ZSTD_JOBS, decompressZstd, zstdParallelism } from '../../src/archive/zstd.js';
import { KompoxError } from '../../src/domain/errors.js';
import { prng } from '../support/prng.js';

const MiB = 1024 * 1024;
const BIG = 17 * MiB + 12345;

/** Text-like bytes: 64 KiB windows of a 256 KiB word salad, each stamped with its number (compresses about 20:1). */
function content(n: number, seed: number): Buffer {
  const rnd = prng(seed);
  const words = Array.from({ length: 64 }, (_, i) => `w${(i * 7919 + seed).toString(36)}`);
  const lines: string[] = [];
  for (let len = 0; len < 256 * 1024; ) {
    const line = `${words[Math.floor(rnd() * 64)]} ${words[Math.floor(rnd() * 64)]} ${Math.floor(rnd() * 1000)}\n`;
    lines.push(line);
    len += line.length;
  }
  const base = Buffer.from(lines.join(''));
  const out = Buffer.allocUnsafe(n);
  for (let at = 0, k = 0; at < n; k++) {
    const stamp = Buffer.from(`#${k}#`);
    at += stamp.copy(out, at);
    const from = Math.floor(rnd() * (base.length - 64 * 1024));
    at += base.copy(out, at, from, from + 64 * 1024);
  }
  return out;
}

/** `zstd` (the CLI) with these arguments on `input`: from stdin, it writes no content size unless told. */
function zstdCli(args: string[], input: Buffer | string): Buffer {
  const r = spawnSync('sh', ['-c', `zstd -q -c ${args.join(' ')}`], { input, maxBuffer: 1 << 30 });
  assert.equal(r.status, 0, String(r.stderr));
  return r.stdout;
}

/** Where a frame header's content size field is and how many bytes it has (RFC 8878). */
function sizeField(frame: Buffer): { at: number; bytes: number } {
  const fhd = frame[4]!;
  const single = (fhd & 0x20) !== 0;
  const bytes = fhd >>> 6 === 0 ? (single ? 1 : 0) : [0, 2, 4, 8][fhd >>> 6]!;
  return { at: 5 + (single ? 0 : 1) + [0, 1, 2, 4][fhd & 3]!, bytes };
}

/** The content size a frame header states, if any. */
function statedSize(frame: Buffer): number | undefined {
  const { at, bytes } = sizeField(frame);
  if (bytes === 0) return undefined;
  return bytes === 2 ? frame.readUInt16LE(at) + 256 : bytes === 8 ? Number(frame.readBigUInt64LE(at)) : frame.readUIntLE(at, bytes);
}

function skippable(payload: string): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(0x184d2a5a, 0);
  head.writeUInt32LE(payload.length, 4);
  return Buffer.concat([head, Buffer.from(payload)]);
}

/** `input` as chunks of `size` bytes (a number), or of seeded random sizes up to 70 000 ('random'). */
async function* chunked(input: Buffer, size: number | 'random'): AsyncGenerator<Buffer> {
  const rnd = prng(7);
  for (let at = 0; at < input.length; ) {
    const n = size === 'random' ? 1 + Math.floor(rnd() * 70_000) : size;
    yield input.subarray(at, at + n);
    at += n;
  }
}

/** Everything decompressZstd gives (an error ends it, the output so far is kept), and whether onInput saw each chunk once. */
async function decode(input: Buffer, size: number | 'random'): Promise<{ out: Buffer; error?: unknown; fed: Buffer[]; seen: Buffer[] }> {
  const out: Buffer[] = [];
  const fed: Buffer[] = [];
  const seen: Buffer[] = [];
  async function* source(): AsyncGenerator<Buffer> {
    for await (const c of chunked(input, size)) {
      fed.push(c);
      yield c;
    }
  }
  try {
    for await (const b of decompressZstd(source(), { onInput: (c) => seen.push(c) })) out.push(b);
  } catch (error) {
    return { out: Buffer.concat(out), error, fed, seen };
  }
  return { out: Buffer.concat(out), fed, seen };
}

function isIntegrity(e: unknown, message?: RegExp): boolean {
  return e instanceof KompoxError && e.kind === 'integrity' && (!message || message.test(e.message));
}

describe('decompressZstd: a frame over 16 MiB between frames that state their size', () => {
  const a = content(300_000, 1);
  const big = content(BIG, 2);
  const c1 = content(100_000, 3);
  const c2 = content(5000, 4);
  // node:zlib's one-shot compressor and `zstd FILE` state the content size; `zstd` from a pipe does not.
  const frameA = zstdCompressSync(a);
  const bigSized = zstdCompressSync(big, { params: { [zc.ZSTD_c_checksumFlag]: 1 } });
  const bigUnsized = zstdCli(['-3'], big);
  const frameC1 = zstdCompressSync(c1);
  const frameC2 = zstdCli([`--stream-size=${c2.length}`], c2);

  test('the frames are what the cases need', () => {
    assert.equal(statedSize(frameA), a.length);
    assert.equal(statedSize(bigSized), BIG);
    assert.equal(statedSize(bigUnsized), undefined);
    assert.ok(bigUnsized[4]! & 0x04, 'the CLI frame has a checksum');
    assert.equal(statedSize(frameC1), c1.length);
    assert.equal(statedSize(frameC2), c2.length);
    // Small enough to feed 7 bytes at a time in a few seconds.
    assert.ok(bigSized.length < MiB && bigUnsized.length < MiB, `compressible (${bigSized.length}, ${bigUnsized.length} bytes)`);
  });

  const cases: { name: string; frames: Buffer[]; plain: Buffer[] }[] = [
    { name: 'the big frame states its content size', frames: [frameA, skippable('note'), bigSized, frameC1, frameC2], plain: [a, big, c1, c2] },
    { name: 'the big frame does not state it (zstd from a pipe)', frames: [frameA, bigUnsized, frameC1, skippable(''), frameC2], plain: [a, big, c1, c2] },
    { name: 'two big frames back to back', frames: [frameA, bigUnsized, bigSized, frameC2, frameC1], plain: [a, big, big, c2, c1] },
  ];
  for (const { name, frames, plain } of cases) {
    test(`${name}: every frame comes out in order, whatever the chunks`, async () => {
      const input = Buffer.concat(frames);
      const want = Buffer.concat(plain);
      // 7 bytes: every header split across chunks; 65 537 and 1 MiB + 3: frames start inside a chunk.
      for (const size of [7, 4099, 65_537, MiB + 3, 'random'] as const) {
        const r = await decode(input, size);
        assert.equal(r.error, undefined, `chunks of ${size}: ${String(r.error)}`);
        assert.equal(r.out.length, want.length, `chunks of ${size}: output length`);
        assert.ok(r.out.equals(want), `chunks of ${size}: output differs from the input`);
        assert.equal(r.seen.length, r.fed.length, `chunks of ${size}: onInput saw every chunk once`);
        assert.ok(r.seen.every((c, i) => c === r.fed[i]), `chunks of ${size}: onInput saw the chunks in order`);
      }
    });
  }

  test('a stated content size that is wrong is an integrity error (one more, one less)', async () => {
    const field = sizeField(bigSized);
    assert.equal(field.bytes, 4);
    for (const delta of [1, -1]) {
      const bad = Buffer.from(bigSized);
      bad.writeUInt32LE(BIG + delta, field.at);
      const r = await decode(Buffer.concat([frameA, bad, frameC1]), 65_537);
      assert.ok(isIntegrity(r.error), `content size ${BIG + delta}: ${String(r.error)}`);
      assert.ok(r.out.length <= a.length + BIG && r.out.equals(Buffer.concat([a, big]).subarray(0, r.out.length)), 'what came out before is right');
    }
  });

  test('a stream cut inside the big frame is an integrity error (unexpected end of file)', async () => {
    const want = Buffer.concat([a, big]);
    for (const frame of [bigSized, bigUnsized]) {
      const rnd = prng(11);
      const cuts = [6, 200, Math.floor(rnd() * frame.length), Math.floor(rnd() * frame.length), frame.length - 4, frame.length - 1];
      for (const cut of cuts) {
        const r = await decode(Buffer.concat([frameA, frame.subarray(0, cut)]), 65_537);
        assert.ok(isIntegrity(r.error, /unexpected end of file/), `cut at ${cut} of ${frame.length}: ${String(r.error)}`);
        assert.ok(r.out.equals(want.subarray(0, r.out.length)), `cut at ${cut}: what came out before is right`);
      }
    }
  });

  test('a bit flipped in the big frame (with its checksum) is an integrity error', async () => {
    const rnd = prng(12);
    for (let i = 0; i < 6; i++) {
      const at = 16 + Math.floor(rnd() * (bigUnsized.length - 16));
      const bad = Buffer.from(bigUnsized);
      bad[at]! ^= 1 << Math.floor(rnd() * 8);
      const r = await decode(Buffer.concat([frameA, bad, frameC1]), 65_537);
      assert.ok(isIntegrity(r.error), `bit flipped at ${at}: ${String(r.error)}`);
    }
  });

  test('a frame that needs a dictionary is an integrity error', async () => {
    // Give frame C1 a 4-byte dictionary ID (header: magic, descriptor, [window descriptor], dictionary ID, content size).
    const fhd = frameC1[4]!;
    const idAt = fhd & 0x20 ? 5 : 6;
    const withId = Buffer.concat([frameC1.subarray(0, 4), Buffer.from([fhd | 3]), frameC1.subarray(5, idAt), Buffer.from([1, 2, 3, 4]), frameC1.subarray(idAt)]);
    const r = await decode(Buffer.concat([frameA, withId]), 4099);
    assert.ok(isIntegrity(r.error, /dictionary/), String(r.error));
  });
});

/**
 * A frame made by hand (RFC 8878): 128 KiB window, its content size stated,
 * no checksum, and `blocks` of raw bytes or of one byte repeated (RLE).
 */
function handMadeFrame(blocks: { raw?: Buffer; rle?: { byte: number; n: number } }[], statedSize?: number): { frame: Buffer; plain: Buffer } {
  const parts: Buffer[] = [];
  const plain: Buffer[] = [];
  for (const [i, b] of blocks.entries()) {
    const last = i === blocks.length - 1 ? 1 : 0;
    const head = Buffer.alloc(3);
    if (b.raw) {
      head.writeUIntLE(last | (0 << 1) | (b.raw.length << 3), 0, 3);
      parts.push(head, b.raw);
      plain.push(b.raw);
    } else {
      const { byte, n } = b.rle!;
      head.writeUIntLE(last | (1 << 1) | (n << 3), 0, 3);
      parts.push(head, Buffer.from([byte]));
      plain.push(Buffer.alloc(n, byte));
    }
  }
  const content = Buffer.concat(plain);
  const header = Buffer.alloc(10);
  header.writeUInt32LE(0xfd2fb528, 0);
  header[4] = 0x80; // a 4-byte content size, a window descriptor, no checksum, no dictionary
  header[5] = 7 << 3; // window 2^(10+7) = 128 KiB
  header.writeUInt32LE(statedSize ?? content.length, 6);
  return { frame: Buffer.concat([header, ...parts]), plain: content };
}

describe('decompressZstd: frames of many blocks', () => {
  const rnd = prng(21);
  const blocks = Array.from({ length: 300 }, (_, i) =>
    i % 3 === 0 ? { rle: { byte: i & 255, n: 1000 + i } } : { raw: Buffer.from(Array.from({ length: 500 }, () => Math.floor(rnd() * 256))) },
  );
  const small = zstdCompressSync(Buffer.from('after the frame of many blocks\n'));

  test('a frame of more blocks than one decompressed whole may have (streamed) comes out exactly; a wrong stated size is an integrity error', async () => {
    const { frame, plain } = handMadeFrame(blocks);
    const want = Buffer.concat([plain, Buffer.from('after the frame of many blocks\n')]);
    for (const size of [5, 4099, 65_537]) {
      const r = await decode(Buffer.concat([frame, small]), size);
      assert.equal(r.error, undefined, `chunks of ${size}: ${String(r.error)}`);
      assert.ok(r.out.equals(want), `chunks of ${size}: output differs`);
    }
    for (const delta of [1, -1]) {
      const bad = handMadeFrame(blocks, plain.length + delta).frame;
      const r = await decode(Buffer.concat([bad, small]), 4099);
      assert.ok(isIntegrity(r.error), `stated size off by ${delta}: ${String(r.error)}`);
    }
  });

  test('a frame of RLE blocks (4 bytes each for 128 KiB) comes out exactly', async () => {
    const BLOCK = 128 * 1024;
    const { frame } = handMadeFrame(Array.from({ length: 400 }, (_, i) => ({ rle: { byte: i & 255, n: BLOCK } })));
    let total = 0;
    for await (const b of decompressZstd(chunked(frame, 65_536))) {
      // Block i holds the byte i & 255; a chunk may span blocks.
      for (let at = 0; at < b.length; ) {
        const block = Math.floor((total + at) / BLOCK);
        const n = Math.min(b.length - at, (block + 1) * BLOCK - (total + at));
        assert.ok(b.subarray(at, at + n).equals(Buffer.alloc(n, block & 255)), `block ${block}`);
        at += n;
      }
      total += b.length;
    }
    assert.equal(total, 400 * BLOCK);
  });
});

describe('decompressZstd: a 200 MiB frame of zeros (1000:1 and more)', () => {
  const N = 200 * MiB;
  // Peak memory after full GCs: the output must not pile up (the whole frame would be 200 MiB).
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  for (const [name, args] of [
    ['without a content size', ['-1']],
    ['with its content size', ['-1', `--stream-size=${N}`]],
  ] as const) {
    test(`${name}: decoded lazily in bounded memory`, async () => {
      const r = spawnSync('sh', ['-c', `head -c ${N} /dev/zero | zstd -q -c ${args.join(' ')}`], { maxBuffer: 1 << 30 });
      assert.equal(r.status, 0, String(r.stderr));
      const frame = r.stdout;
      assert.equal(statedSize(frame), name === 'with its content size' ? N : undefined);
      const zeros = Buffer.alloc(MiB);
      gc();
      const base = process.memoryUsage().arrayBuffers;
      let total = 0;
      let peak = 0;
      let sinceGc = 0;
      let yields = 0;
      for await (const b of decompressZstd(chunked(frame, 65_536))) {
        assert.ok(b.length <= MiB, `a chunk of ${b.length} bytes`);
        assert.ok(b.equals(zeros.subarray(0, b.length)), 'zeros');
        total += b.length;
        yields++;
        sinceGc += b.length;
        if (sinceGc >= 8 * MiB) {
          sinceGc = 0;
          gc();
          peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
        }
      }
      assert.equal(total, N);
      assert.ok(yields >= N / MiB, `${yields} chunks`);
      assert.ok(peak < 32 * MiB, `peak ${(peak / MiB).toFixed(1)} MiB of buffers for a ${N / MiB} MiB frame`);
    });
  }
});

describe('decompressZstd: frames and pieces copied out of small input chunks (input over SSH comes 32 KiB at a time)', () => {
  test('reuse a few copy buffers, and every byte comes out right with a consumer that lags', async () => {
    const rnd = prng(33);
    const random = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));
    // Kompox-like frames of incompressible data (1 MiB in raw blocks), then a frame of the zstd CLI over 16 MiB (streamed in pieces)
    const frames = Array.from({ length: 6 }, () => random(MiB));
    const big = Buffer.concat([random(2 * MiB), content(BIG, 4)]);
    const stream = Buffer.concat([...frames.map((f) => zstdCompressSync(f, { params: { [zc.ZSTD_c_checksumFlag]: 1 } })), zstdCli(['-3', '--no-content-size'], big)]);
    const want = Buffer.concat([...frames, big]);
    // big buffers allocated while it runs, however (Buffer.concat does not go through Buffer.allocUnsafe)
    const realAlloc = Buffer.allocUnsafe;
    const realConcat = Buffer.concat;
    let copies = 0;
    Buffer.allocUnsafe = ((n: number) => {
      if (n >= 512 * 1024) copies++;
      return realAlloc(n);
    }) as typeof Buffer.allocUnsafe;
    Buffer.concat = ((list: readonly Uint8Array[], n?: number) => {
      const b = realConcat(list, n);
      if (b.length >= 512 * 1024) copies++;
      return b;
    }) as typeof Buffer.concat;
    const out: Buffer[] = [];
    try {
      for await (const b of decompressZstd(chunked(stream, 32 * 1024))) {
        // a consumer that takes its time: the next jobs run meanwhile, and must not write into a buffer still being read
        await new Promise((r) => setImmediate(r));
        out.push(Buffer.from(b));
      }
    } finally {
      Buffer.allocUnsafe = realAlloc;
      Buffer.concat = realConcat;
    }
    assert.ok(Buffer.concat(out).equals(want), 'the output differs');
    // 6 frames and 20 pieces or more, each spanning several input chunks: the copies go into at most three buffers
    assert.ok(copies <= 3, `${copies} buffers of 512 KiB or more allocated (a fresh one for each frame or piece copied is 8 or more here)`);
  });
});

describe('jobs in flight are bounded, not one per CPU (issue 11: 100 MiB on a machine of any size)', () => {
  test('zstdParallelism is one per CPU up to its cap', () => {
    assert.equal(zstdParallelism(ZSTD_JOBS, 64), ZSTD_JOBS);
    assert.equal(zstdParallelism(LINK_ZSTD_JOBS, 64), LINK_ZSTD_JOBS);
    assert.ok(LINK_ZSTD_JOBS <= ZSTD_JOBS && ZSTD_JOBS <= 4, 'at most libuv\'s 4 threads');
    assert.equal(zstdParallelism(ZSTD_JOBS, 2), 2);
    assert.equal(zstdParallelism(ZSTD_JOBS, 1), 1);
    assert.equal(zstdParallelism(ZSTD_JOBS, 0), 1);
  });

  test('decompressZstd reads no more frames ahead than its jobs', async () => {
    const frames = Array.from({ length: 8 }, (_, i) => zstdCompressSync(content(256 * 1024, 40 + i), { params: { [zc.ZSTD_c_checksumFlag]: 1 } }));
    /** Chunks the decoder had taken (one frame each) when it gave its first output. */
    const aheadAtFirstOutput = async (jobs: number): Promise<number> => {
      let pulled = 0;
      async function* source(): AsyncGenerator<Buffer> {
        for (const f of frames) {
          pulled++;
          yield f;
        }
      }
      const it = decompressZstd(source(), { jobs });
      const first = await it.next();
      assert.equal(first.done, false);
      const at = pulled;
      await it.return(undefined);
      return at - 1; // the frame that found every job busy
    };
    assert.equal(await aheadAtFirstOutput(1), 1);
    assert.equal(await aheadAtFirstOutput(64), zstdParallelism(64));
    assert.equal(await aheadAtFirstOutput(ZSTD_JOBS), zstdParallelism(ZSTD_JOBS));
  });

  test('frameSink with one job: the caller fills the next frame while the last one compresses (frames written in order, never two on one compressor)', async () => {
    const written: Buffer[] = [];
    const out = new Writable({
      write(chunk: Buffer, _enc, cb) {
        written.push(chunk);
        cb();
      },
    });
    const sink = frameSink('tar.zst', out, 3, undefined, 1);
    const frames = [content(ZSTD_FRAME, 71), content(ZSTD_FRAME, 72), content(ZSTD_FRAME / 2, 73)];
    await sink.write([frames[0]!]);
    assert.equal(written.length, 0, 'the first frame was handed to the compressor, not waited for');
    await sink.write([frames[1]!]);
    const afterTwo = Buffer.concat(written);
    assert.ok(afterTwo.length > 0, "the second frame waited for the compressor to be free, and the first frame's output went out");
    assert.deepEqual(zstdDecompressSync(afterTwo), frames[0], 'exactly the first frame so far');
    await sink.write([frames[2]!]);
    await sink.end();
    assert.deepEqual(zstdDecompressSync(Buffer.concat(written)), Buffer.concat(frames));
  });
});

describe('decompressZstd: input chunks handed back once decompressed (spentInput)', () => {
  test('each chunk once, in order, and only when no frame with bytes of it is still to be decompressed', async () => {
    // frames of 64 KiB (about 3 KiB compressed) and of 1 MiB of random bytes, in input chunks of 1-200 KiB
    // of their own: a chunk holds many frames, and frames straddle chunks
    const rnd = prng(41);
    const parts = Array.from({ length: 40 }, (_, i) => (i % 9 === 4 ? Buffer.from(Array.from({ length: MiB }, () => Math.floor(rnd() * 256))) : content(64 * 1024, i)));
    const stream = Buffer.concat(parts.map((p) => zstdCompressSync(p)));
    const chunks: Buffer[] = [];
    for (let at = 0; at < stream.length; ) {
      const n = 1024 + Math.floor(rnd() * 200 * 1024);
      chunks.push(Buffer.from(stream.subarray(at, at + n)));
      at += n;
    }
    const spent: Buffer[] = [];
    const out: Buffer[] = [];
    const spentInput = (c: Buffer) => {
      spent.push(c);
      // a chunk handed back too early (a frame of it not yet decompressed) would be decompressed as zeros
      c.fill(0);
    };
    for await (const b of decompressZstd(
      (async function* () {
        yield* chunks;
      })(),
      { spentInput },
    )) {
      await new Promise((r) => setImmediate(r));
      out.push(Buffer.from(b));
    }
    assert.ok(Buffer.concat(out).equals(Buffer.concat(parts)), 'the output differs');
    assert.equal(spent.length, chunks.length, 'every chunk handed back');
    assert.ok(
      spent.every((c, i) => c === chunks[i]),
      'each once, in order, as it came',
    );
  });
});

describe('decompressZstd keeps no input it has done with (no spentInput: nothing tracked for it)', () => {
  test('the input chunks of frames already decompressed can be collected while the stream goes on', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const parts = Array.from({ length: 60 }, (_, i) => content(64 * 1024, i));
    const stream = Buffer.concat(parts.map((p) => zstdCompressSync(p)));
    const refs: Array<WeakRef<Buffer>> = [];
    let alive = -1;
    async function* input(): AsyncGenerator<Buffer> {
      for (let at = 0; at < stream.length; at += 16 * 1024) {
        const c = Buffer.from(stream.subarray(at, at + 16 * 1024)); // each its own memory, referred to only by the decompressor
        refs.push(new WeakRef(c));
        yield c;
      }
    }
    let n = 0;
    for await (const b of decompressZstd(input())) {
      n += b.length;
      if (alive < 0 && refs.length > 20) {
        gc();
        await new Promise((r) => setImmediate(r));
        gc();
        alive = refs.slice(0, refs.length - 10).filter((r) => r.deref() !== undefined).length;
      }
    }
    assert.equal(n, 60 * 64 * 1024);
    assert.ok(alive >= 0 && alive <= 2, `${alive} of the early input chunks still held`);
  });
});
