// zstd on every CPU with Node's built-in zlib (archive format version 2).
//
// Compression: the tar stream is cut into frames of ZSTD_FRAME bytes, each
// compressed into one zstd frame by one of a few long-lived streaming
// compressors (ZstdSlot, one per CPU) on libuv's thread pool, results written
// in order. Concatenated frames are one valid zstd stream (as pzstd and
// zstd -T write); each frame has its own checksum. Node's streaming
// compressor cannot use zstd's own threads: with ZSTD_c_nbWorkers it emits
// data after its end (nodejs/node#59899; still so in Node 24.21). Cutting
// costs little: a frame only loses matches reaching back into the previous
// one: 1 MiB frames make the benchmark disk's archive 0.36% larger than 4 MiB
// frames did (still 0.9% smaller than `tar | gzip -6`) and keep 10 MiB less
// in flight (issue 11's memory goal).
//
// Decompression: the frames of a Kompox archive are found by walking their
// headers and block headers (a few bytes per 128 KiB block, no decoding) and
// decompressed whole, one per CPU in flight, in order. A frame bigger than
// PARALLEL_FRAME_MAX (by its header, or by its count of blocks of at most
// 128 KiB each: zstd's command line tool writes one frame for a whole
// stream) makes the rest of the stream go through zlib's streaming
// decompressor instead, which reads any valid zstd stream in bounded memory.
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import type { Transform } from 'node:stream';
import { constants as zc, createZstdCompress, createZstdDecompress } from 'node:zlib';
import { KompoxError } from '../domain/errors.js';

/** Input bytes per zstd frame that Kompox writes. */
export const ZSTD_FRAME = 1024 * 1024;
/** zstd frames needing a larger window (more memory) are refused: 2^24 = 16 MiB covers every level up to 19. */
export const ZSTD_WINDOW_LOG_MAX = 24;
/** Frames whose content is at most this big are decompressed whole, in parallel. */
const PARALLEL_FRAME_MAX = 16 * 1024 * 1024;
/**
 * Size of the output buffers of the zstd streams (compressors and
 * decompressors alike). Their output comes as slices of such a buffer, which
 * is freed only once every slice has been written and a GC has run: 256 KiB
 * buffers keep less of that in flight than 1 MiB ones (3-6 MiB less peak RSS
 * in export and import, issue 11), at the same CPU; the bytes are the same.
 */
const STREAM_CHUNK = 256 * 1024;
/** zstd's largest block (Block_Maximum_Size). */
const BLOCK_MAX = 128 * 1024;

/** Jobs in flight at once: one per CPU (the thread pool runs them; the main thread has its own work). */
export function zstdParallelism(): number {
  return Math.max(1, availableParallelism());
}

/**
 * The compression settings of Kompox's archives: zstd level 5 (the fastest
 * level whose archives stay smaller than gzip -6 on the benchmark disk; see
 * docs/benchmarks.md) with a minimum match of 6 bytes (as long as level 5's
 * default search finds, fewer short matches to try: smaller output on text
 * and logs at the same speed).
 */
export const ZSTD_LEVEL = 5;
const ZSTD_MIN_MATCH = 6;

function compressParams(level: number): Record<number, number> {
  return {
    [zc.ZSTD_c_compressionLevel]: level,
    [zc.ZSTD_c_checksumFlag]: 1,
    ...(level === ZSTD_LEVEL ? { [zc.ZSTD_c_minMatch]: ZSTD_MIN_MATCH } : {}),
  };
}

/** One long-lived zstd compressor (see FrameStream) that turns each input into one complete frame with its checksum. */
export class ZstdSlot {
  private readonly f: FrameStream;
  constructor(level: number) {
    this.f = new FrameStream(createZstdCompress({ chunkSize: STREAM_CHUNK, params: compressParams(level) }));
  }
  /** The compressed frame of `input`, in pieces; `input` may be reused once this resolves. */
  compress(input: Buffer): Promise<Buffer[]> {
    // ZSTD_e_end ends the frame; the next write starts a new one. The
    // stream itself is never ended (that would add an empty frame).
    return this.f.run(input, zc.ZSTD_e_end);
  }
  close(): void {
    this.f.close();
  }
}

/**
 * A long-lived zstd stream (compressor or decompressor) that takes one
 * whole frame at a time and gives back its output in CHUNK-sized pieces.
 * Its working memory (context, window) is allocated once and reused for
 * every frame: a fresh one-shot call per frame costs a new context and a
 * frame-sized output buffer each time, which the process keeps long after
 * (about 40 MiB more peak RSS in our runs).
 */
class FrameStream {
  private parts: Buffer[] = [];
  private failure?: Error;
  private readonly waiting = new Set<(e: Error) => void>();
  constructor(private readonly z: Transform) {
    // Flowing: the stream pushes each piece before it calls back.
    z.on('data', (b: Buffer) => this.parts.push(b));
    z.on('error', (e: Error) => {
      this.failure = e;
      for (const reject of this.waiting) reject(e);
      this.waiting.clear();
    });
  }
  /** All the output of `input` (`input` may be reused once this resolves); `end` ends a compressor's frame. */
  run(input: Buffer, end?: number): Promise<Buffer[]> {
    return new Promise<Buffer[]>((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.waiting.add(reject);
      this.z.write(input);
      // flush() calls back once everything written before it has come out.
      (this.z as unknown as { flush(kind: number | undefined, cb: () => void): void }).flush(end, () => {
        this.waiting.delete(reject);
        if (this.failure) return reject(this.failure);
        const out = this.parts;
        this.parts = [];
        resolve(out);
      });
    });
  }
  close(): void {
    this.z.destroy();
  }
}

/** The streaming decompressor (any zstd stream, bounded memory). */
export function zstdStreamDecompressor(): Transform {
  return createZstdDecompress({ chunkSize: STREAM_CHUNK, params: { [zc.ZSTD_d_windowLogMax]: ZSTD_WINDOW_LOG_MAX } });
}

/** Jobs started in order and finished in order; failures are kept until taken (never unhandled). */
export class InOrder<T> {
  private readonly queue: Array<Promise<T>> = [];
  get size(): number {
    return this.queue.length;
  }
  push(job: Promise<T>): void {
    job.catch(() => undefined);
    this.queue.push(job);
  }
  /** The oldest job's result. */
  shift(): Promise<T> {
    return this.queue.shift()!;
  }
  /** Forgets every job (after a failure). */
  clear(): void {
    this.queue.length = 0;
  }
}

function invalid(message: string): KompoxError {
  return new KompoxError('integrity', `the archive is not a valid zstd stream (${message}): it is truncated or corrupt`, {
    hint: 'The archive is damaged or incomplete; export it again from the source, or check the copy.',
  });
}

const FRAME_MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;

type Scanned =
  /** A whole frame and its content size (or a bound on it): decompress it on its own. */
  | { kind: 'frame'; bytes: Buffer; contentSize: number; exact: boolean }
  /** A frame that must be streamed: these bytes and everything after go to the streaming decompressor. */
  | { kind: 'rest' };

/**
 * Finds frame boundaries in a zstd stream from the headers alone (RFC 8878:
 * frame header, then 3-byte block headers with each block's size, then the
 * optional checksum). Bytes are added with push(); next() gives a frame once
 * all its bytes are there.
 */
class FrameScanner {
  private chunks: Buffer[] = [];
  /** Bytes in `chunks`. */
  private length = 0;
  /** Where the frame being scanned has got to (bytes from the start of chunks). */
  private pos = 0;
  /** The frame being scanned: its content size (-1: not in the header), whether a checksum ends it, its blocks so far. */
  private frame?: { contentSize: number; checksum: boolean; blocks: number };

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.length += b.length;
  }

  /** Everything not yet given out as a frame (for the streaming decompressor). */
  takeRest(): Buffer[] {
    const rest = this.chunks;
    this.chunks = [];
    this.length = 0;
    this.pos = 0;
    return rest;
  }

  get pending(): number {
    return this.length;
  }

  private byte(at: number): number {
    for (const c of this.chunks) {
      if (at < c.length) return c[at]!;
      at -= c.length;
    }
    throw new Error('FrameScanner: read past the data');
  }

  private uint(at: number, n: number): number {
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + this.byte(at + i);
    return v;
  }

  /** Removes and returns the first `n` bytes (no copy when they lie in one chunk). */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let off = 0;
      while (off < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, n - off);
        c.copy(out, off, 0, k);
        off += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.length -= n;
    this.pos -= n;
    return out;
  }

  /** The next complete frame, `rest` when the stream must be streamed from here, or undefined when more bytes are needed. */
  next(): Scanned | undefined {
    for (;;) {
      if (!this.frame) {
        if (this.length < 4) return undefined;
        const magic = this.uint(0, 4);
        if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
          if (this.length < 8) return undefined;
          const size = 8 + this.uint(4, 4);
          if (this.length < size) return undefined;
          this.take(size);
          continue;
        }
        if (magic !== FRAME_MAGIC) throw invalid('unknown frame magic');
        if (this.length < 5) return undefined;
        const fhd = this.byte(4);
        if (fhd & 0x08) throw invalid('reserved bit set in a frame header');
        const singleSegment = (fhd & 0x20) !== 0;
        const fcsFlag = fhd >>> 6;
        const didSize = [0, 1, 2, 4][fhd & 3]!;
        const fcsSize = fcsFlag === 0 ? (singleSegment ? 1 : 0) : [0, 2, 4, 8][fcsFlag]!;
        const headerSize = 5 + (singleSegment ? 0 : 1) + didSize + fcsSize;
        if (this.length < headerSize) return undefined;
        let contentSize = -1;
        if (fcsSize > 0) {
          const at = headerSize - fcsSize;
          contentSize = fcsSize === 2 ? this.uint(at, 2) + 256 : this.uint(at, fcsSize);
        }
        if (contentSize > PARALLEL_FRAME_MAX || didSize > 0) return { kind: 'rest' };
        this.frame = { contentSize, checksum: (fhd & 0x04) !== 0, blocks: 0 };
        this.pos = headerSize;
      }
      // Blocks.
      for (;;) {
        if (this.length < this.pos + 3) return undefined;
        const h = this.uint(this.pos, 3);
        const last = (h & 1) === 1;
        const type = (h >>> 1) & 3;
        const size = h >>> 3;
        if (type === 3) throw invalid('reserved block type');
        if (size > BLOCK_MAX) throw invalid('block larger than 128 KiB');
        const body = type === 1 ? 1 : size;
        const end = this.pos + 3 + body + (last && this.frame.checksum ? 4 : 0);
        if (this.length < end) return undefined;
        this.pos = end;
        this.frame.blocks++;
        // A block holds at most 128 KiB: a frame that does not say its size
        // (Kompox's: a streaming compressor wrote it) is decompressed whole
        // while its blocks bound it to PARALLEL_FRAME_MAX, and streamed beyond.
        const bound = this.frame.contentSize >= 0 ? this.frame.contentSize : this.frame.blocks * BLOCK_MAX;
        if (bound > PARALLEL_FRAME_MAX) {
          this.frame = undefined;
          this.pos = 0;
          return { kind: 'rest' };
        }
        if (!last) continue;
        const exact = this.frame.contentSize >= 0;
        this.frame = undefined;
        const bytes = this.take(end);
        this.pos = 0;
        return { kind: 'frame', bytes, contentSize: bound, exact };
      }
    }
  }
}

export interface DecompressOptions {
  /** Called with each compressed input chunk as it is consumed (hashing, progress, memory pacing). */
  onInput?: (chunk: Buffer) => void;
}

/**
 * The decompressed bytes of a zstd stream, in order: Kompox's frames in
 * parallel on the thread pool, anything else streamed (see the top of this
 * file). Errors of the compressed data are KompoxErrors of kind integrity.
 */
export async function* decompressZstd(source: AsyncIterable<Buffer>, opts: DecompressOptions = {}): AsyncGenerator<Buffer> {
  const scanner = new FrameScanner();
  const inflight = new InOrder<Buffer[]>();
  // One long-lived decompressor per CPU, frames handed out round robin.
  const slots = Array.from({ length: zstdParallelism() }, () => new FrameStream(zstdStreamDecompressor()));
  let next = 0;
  const it = source[Symbol.asyncIterator]();
  let streamFrom: Buffer[] | undefined;
  try {
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
      opts.onInput?.(chunk);
      scanner.push(chunk);
      for (let s = scanner.next(); s; s = scanner.next()) {
        if (s.kind === 'rest') {
          streamFrom = scanner.takeRest();
          break;
        }
        // A slot's previous frame has left `inflight` before it gets the next.
        while (inflight.size >= slots.length) yield* await inflight.shift();
        const { contentSize, exact } = s;
        inflight.push(
          slots[next]!.run(s.bytes).then((out) => {
            // The frame came out whole (a decoder that stopped short would take the next frame as its rest).
            const n = out.reduce((a, b) => a + b.length, 0);
            if (exact ? n !== contentSize : n > contentSize) throw invalid('a frame decompressed to the wrong size');
            return out;
          }),
        );
        next = (next + 1) % slots.length;
      }
      if (streamFrom) break;
    }
    while (inflight.size > 0) yield* await inflight.shift();
    if (!streamFrom) {
      if (scanner.pending > 0) throw invalid('unexpected end of file');
      return;
    }
  } catch (e) {
    inflight.clear();
    throw asIntegrity(e);
  } finally {
    for (const s of slots) s.close();
  }
  yield* streamRest(streamFrom, it, opts);
}

/** The rest of a stream through zlib's streaming decompressor (with backpressure: a 1000:1 frame never piles up). */
async function* streamRest(head: Buffer[], it: AsyncIterator<Buffer>, opts: DecompressOptions): AsyncGenerator<Buffer> {
  const z = zstdStreamDecompressor();
  const feed = async (): Promise<void> => {
    for (const b of head) if (!z.write(b)) await once(z, 'drain');
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
      opts.onInput?.(chunk);
      if (!z.write(chunk)) await once(z, 'drain');
    }
    z.end();
  };
  const feeding = feed().catch((e: unknown) => {
    z.destroy(e as Error);
    throw e;
  });
  feeding.catch(() => undefined); // surfaced through the decompressor, or awaited below
  try {
    for await (const b of z as AsyncIterable<Buffer>) yield b;
    await feeding;
  } catch (e) {
    throw asIntegrity(e);
  } finally {
    z.destroy();
  }
}

function asIntegrity(e: unknown): unknown {
  if (e instanceof KompoxError) return e;
  const code = String((e as { code?: unknown })?.code ?? '');
  const message = String((e as Error)?.message ?? e);
  if (code.startsWith('ZSTD_') || code.startsWith('Z_') || /zstd|unexpected end of file|corrupt|checksum|frame|window/i.test(message)) return invalid(message);
  return e;
}
