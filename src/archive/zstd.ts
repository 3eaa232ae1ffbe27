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
// Decompression: the frames of any zstd stream are found by walking their
// headers and block headers (a few bytes per 128 KiB block, no decoding).
// A frame of at most PARALLEL_FRAME_MAX (by its header and by its count of
// blocks of at most 128 KiB each: Kompox's frames) is decompressed whole,
// one per CPU in flight, in order. A bigger one (the zstd command line tool
// writes one frame for a whole file or pipe), or one that names a
// dictionary, is streamed through a decompressor of its own in pieces of a
// few blocks, so a 1000:1 frame never piles up output; the frames after it
// go on as before (e.g. `cat a.zst big.zst c.zst`). No decompressor is ever
// given a write in which a frame ends and another begins: zlib's streaming
// decompressor drops the rest of such a write (Node 24.21).
import { availableParallelism } from 'node:os';
import type { Transform } from 'node:stream';
import { constants as zc, createZstdCompress, createZstdDecompress } from 'node:zlib';
import { KompoxError } from '../domain/errors.js';
import { markHandedOverInPieces } from './memory.js';

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

/**
 * Frames (de)compressed at once where the data comes from or goes to local
 * files: one per CPU, at most 3. Each job in flight holds a frame, its
 * output and a zstd context: 3.5 MiB more peak RSS per job in a local export
 * or import (forced counts on a 2-CPU machine: 87, 91, 107 and 140 MiB at 2,
 * 4, 8 and 16 jobs; docs/benchmarks.md), so one per CPU would break issue
 * 11's 100 MiB on any machine of 8 CPUs or more. 3 also leaves one of
 * libuv's 4 threads (its default pool, which runs these jobs) for the file
 * reads and writes that feed them.
 */
export const ZSTD_JOBS = 3;
/**
 * The same for streams over SSH and through the cluster (packTarStream,
 * adoptPackedStream, archiveToTar, the SSH link): their data comes at the
 * link's pace, and their base is higher (ssh2's and the exec stream's
 * buffers). Through the cluster each job added 5.5 MiB.
 */
export const LINK_ZSTD_JOBS = 2;
/**
 * The same through the cluster (the exec stream, src/usecases/transfer.ts):
 * one. Its peak with two was 100.6-103.6 MiB for an export of the scale-1
 * disk and 100.4-103.3 for an import (3 runs each, alternating); with one
 * the export 94-98 and the import 96-99 (bench/cluster.bench.ts too), the
 * export 3-12% slower against the fake, whose own tar and TLS share this
 * machine's 2 CPUs. A real API server's exec stream is the slower part
 * there (docs/benchmarks.md).
 */
export const CLUSTER_ZSTD_JOBS = 1;

/** Jobs in flight at once: one per CPU (the thread pool runs them; the main thread has its own work), at most `max`. */
export function zstdParallelism(max: number = ZSTD_JOBS, cpus: number = availableParallelism()): number {
  return Math.max(1, Math.min(cpus, max));
}

/**
 * The compression settings of Kompox's archives: zstd level 5 (the fastest
 * level whose archives stay smaller than gzip -6 on the benchmark disk; see
 * docs/benchmarks.md) with a minimum match of 6 bytes (as long as level 5's
 * default search finds, fewer short matches to try: smaller output on text
 * and logs at the same speed).
 */
export const ZSTD_LEVEL = 5;
export const ZSTD_MIN_MATCH = 6;
/**
 * A hash table of 2^18 entries instead of level 5's 2^19: a frame is 1 MiB,
 * and the smaller table keeps each compressor 1.3 MiB smaller (two of them
 * run) for archives 0.04% larger (still 1.1% smaller than Kompox's gzip
 * archives and 0.85% smaller than `tar | gzip -6` on the benchmark disk); the
 * peak of an export over SSH of 200,000 small files is what it bought room
 * for (issue 11's 100 MiB, docs/benchmarks.md).
 */
const ZSTD_HASH_LOG = 18;

function compressParams(level: number): Record<number, number> {
  return {
    [zc.ZSTD_c_compressionLevel]: level,
    [zc.ZSTD_c_checksumFlag]: 1,
    ...(level === ZSTD_LEVEL ? { [zc.ZSTD_c_minMatch]: ZSTD_MIN_MATCH, [zc.ZSTD_c_hashLog]: ZSTD_HASH_LOG } : {}),
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
  /** `handOver`: its output buffers go to one consumer, which may free them as it spends them (markHandedOverInPieces). */
  constructor(
    private readonly z: Transform,
    handOver = false,
  ) {
    // Flowing: the stream pushes each piece before it calls back.
    z.on(
      'data',
      handOver
        ? (b: Buffer) => {
            markHandedOverInPieces(b);
            this.parts.push(b);
          }
        : (b: Buffer) => this.parts.push(b),
    );
    z.on('error', (e: Error) => {
      this.failure = e;
      for (const reject of this.waiting) reject(e);
      this.waiting.clear();
    });
  }
  /** All the output of `input`, written in its pieces (reusable once this resolves); `end` ends a compressor's frame. */
  run(input: Buffer | readonly Buffer[], end?: number): Promise<Buffer[]> {
    return new Promise<Buffer[]>((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.waiting.add(reject);
      if (Buffer.isBuffer(input)) this.z.write(input);
      else for (const b of input) this.z.write(b);
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
  /** The output of `input`, the last: ends the stream, and fails if a decompressor is left inside a frame ('unexpected end of file'). */
  finish(input: readonly Buffer[]): Promise<Buffer[]> {
    return new Promise<Buffer[]>((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.waiting.add(reject);
      this.z.once('end', () => {
        this.waiting.delete(reject);
        const out = this.parts;
        this.parts = [];
        resolve(out);
      });
      for (const b of input.slice(0, -1)) this.z.write(b);
      this.z.end(input[input.length - 1]);
    });
  }
  /** Input bytes the stream has taken in. */
  get consumed(): number {
    return (this.z as unknown as { bytesWritten: number }).bytesWritten;
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

/**
 * A compressor or decompressor that could not get memory (zstd's
 * ZSTD_error_memory_allocation, zlib's Z_MEM_ERROR: a memory limit, ulimit -v,
 * a full machine) says so: it is not a damaged archive, and being told it is
 * would have the user throw a good archive away.
 */
export function outOfMemory(e: unknown, tool: 'zstd' | 'gzip'): KompoxError | undefined {
  const code = String((e as { code?: unknown })?.code ?? '');
  if (code !== 'ZSTD_error_memory_allocation' && code !== 'Z_MEM_ERROR') return undefined;
  const message = String((e as Error)?.message ?? e);
  return new KompoxError('unavailable', `${tool} could not get the memory it needs (${message}); the archive is not known to be damaged`, {
    code: 'archive.memory',
    hint: "Free memory on this machine or raise the process's memory limit (ulimit -v, a container's memory limit), then run the command again.",
    cause: e,
  });
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
  | { kind: 'frame'; bytes: Buffer[]; contentSize: number; exact: boolean; copy?: Buffer }
  /**
   * Consecutive blocks of a frame streamed instead (see StreamedFrame), cut
   * at block boundaries; `first` starts with the frame header, `last` ends
   * with the frame; contentSize is the header's (-1: not stated).
   */
  | { kind: 'piece'; bytes: Buffer[]; first: boolean; last: boolean; contentSize: number; copy?: Buffer };

/** The frame being scanned. */
interface ScannedFrame {
  /** Content size from the header (-1: not stated). */
  contentSize: number;
  /** A 4-byte checksum follows the last block. */
  checksum: boolean;
  headerSize: number;
  /** Handed out in pieces: too big to decompress whole, or it names a dictionary. */
  streamed: boolean;
  /** A piece has been handed out (the frame's first bytes are gone). */
  started: boolean;
  /** Blocks scanned: of the whole frame, or (streamed) of the piece being scanned. */
  blocks: number;
  /** End of the block whose header is at `pos` once that header has been read (-1: not yet), and whether it is the last. */
  blockEnd: number;
  last: boolean;
}

/** Input chunks a frame or piece may be handed over in without being copied into one buffer (FrameScanner.take). */
const PIECES_MAX = 2;

/**
 * Buffers that a frame or piece spanning more than PIECES_MAX input chunks is
 * copied into, reused once its decompression has consumed it. Big enough for
 * a piece (PIECE_BLOCKS blocks of at most 128 KiB, their headers, the frame's
 * header and checksum) and for a Kompox frame of incompressible data (1 MiB
 * in raw blocks); anything bigger gets a buffer of its own. Over SSH every
 * piece of the node's stream is such a copy (ssh2 hands over 32 KiB at a
 * time): a fresh 1 MiB buffer each was a quarter of an export's garbage.
 */
const COPY_BUFFER = 1152 * 1024;
/** Copy buffers kept for reuse: as many as frames or pieces are in flight at once, and one being filled. */
const COPY_POOL = 3;

class CopyPool {
  private readonly free: Buffer[] = [];
  get(n: number): Buffer {
    return n > COPY_BUFFER ? Buffer.allocUnsafe(n) : (this.free.pop() ?? Buffer.allocUnsafe(COPY_BUFFER));
  }
  /** `b`'s bytes have been consumed (its decompression has resolved). */
  release(b: Buffer | undefined): void {
    if (b && b.length === COPY_BUFFER && this.free.length < COPY_POOL) this.free.push(b);
  }
}

/** A frame with more blocks than this may decompress to more than PARALLEL_FRAME_MAX: it is streamed. */
const WHOLE_FRAME_BLOCKS = PARALLEL_FRAME_MAX / BLOCK_MAX;
/**
 * Blocks per piece of a streamed frame: at most 1 MiB of output each (as a
 * Kompox frame), however well it compresses (an RLE block is 4 bytes for
 * 128 KiB). Two pieces are in flight: 16 blocks held up to 4 MiB of output
 * at once in an export over SSH (the node's `zstd` writes one frame).
 */
const PIECE_BLOCKS = 8;

/**
 * Finds frame boundaries in a zstd stream from the headers alone (RFC 8878:
 * frame header, then 3-byte block headers with each block's size, then the
 * optional checksum). Bytes are added with push(); next() gives a frame once
 * all its bytes are there, or the next piece of a frame to be streamed.
 */
class FrameScanner {
  private chunks: Buffer[] = [];
  /** Each of `chunks` as it came (what is left of the first may be a view of it); kept only when tracking. */
  private whole: Buffer[] = [];
  /** Input chunks all of whose bytes have been taken since the last drainTaken() (when tracking). */
  private taken: Buffer[] = [];
  /** Bytes in `chunks`. */
  private length = 0;
  /** Where the frame being scanned has got to (bytes from the start of chunks). */
  private pos = 0;
  private frame?: ScannedFrame;
  /** Bytes of a skippable frame still to drop. */
  private skip = 0;
  /** chunks[cursor] starts at byte cursorAt: reads mostly go forward, so a byte is found without walking every chunk (input may come a few bytes at a time). */
  private cursor = 0;
  private cursorAt = 0;
  /** The copy buffer the last take() filled (undefined: it handed out the input chunks themselves). */
  private copied?: Buffer;

  /** `track`: the caller drains the chunks taken (drainTaken); otherwise none are kept for it. */
  constructor(
    private readonly pool: CopyPool,
    private readonly track = false,
  ) {}

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    if (this.track) this.whole.push(b);
    this.length += b.length;
  }

  /** The input chunks (as they came) all of whose bytes went into what next() returned since the last call. */
  drainTaken(): Buffer[] {
    const t = this.taken;
    this.taken = [];
    return t;
  }

  /** Whether the data so far ends exactly at a frame boundary (anything else at the end of the input is a truncated stream). */
  get complete(): boolean {
    return this.length === 0 && !this.frame && this.skip === 0;
  }

  private byte(at: number): number {
    if (at < this.cursorAt) {
      this.cursor = 0;
      this.cursorAt = 0;
    }
    for (;;) {
      const c = this.chunks[this.cursor];
      if (!c) throw new Error('FrameScanner: read past the data');
      if (at < this.cursorAt + c.length) return c[at - this.cursorAt]!;
      this.cursorAt += c.length;
      this.cursor++;
    }
  }

  /** Little-endian, as every zstd header field. */
  private uint(at: number, n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v += this.byte(at + i) * 2 ** (8 * i);
    return v;
  }

  /**
   * Removes the first `n` bytes, returned when `keep` as the pieces of the
   * input chunks they lie in when they are at most PIECES_MAX (a frame of
   * an archive read in 1 MiB chunks straddles two of them four times in
   * ten; copying those was 1-2 MiB of an import's peak), else as one copy:
   * each piece is a round trip to the thread pool, and input from a socket
   * comes in chunks of a few KiB. The copy goes into a buffer of the pool
   * (`copied`), which the consumer gives back once it is decompressed.
   */
  private take(n: number, keep = true): Buffer[] | undefined {
    const out: Buffer[] | undefined = keep ? [] : undefined;
    let off = 0;
    let i = 0;
    while (off < n) {
      const c = this.chunks[i]!;
      const k = Math.min(c.length, n - off);
      out?.push(k === c.length ? c : c.subarray(0, k));
      off += k;
      if (k === c.length) i++;
      else this.chunks[i] = c.subarray(k);
    }
    // One splice: shift() per chunk costs a copy of the list each time once it is long.
    this.chunks.splice(0, i);
    if (this.track) for (const c of this.whole.splice(0, i)) this.taken.push(c);
    this.length -= n;
    this.pos -= n;
    this.cursor = 0;
    this.cursorAt = 0;
    this.copied = undefined;
    if (!out || out.length <= PIECES_MAX) return out;
    const copy = (this.copied = this.pool.get(n));
    let at = 0;
    for (const b of out) at += b.copy(copy, at);
    return [copy.subarray(0, n)];
  }

  /** Reads a frame header at the start of the data: false when more bytes are needed. */
  private startFrame(): boolean {
    if (this.length < 5) return false;
    const fhd = this.byte(4);
    if (fhd & 0x08) throw invalid('reserved bit set in a frame header');
    const singleSegment = (fhd & 0x20) !== 0;
    const fcsFlag = fhd >>> 6;
    const didSize = [0, 1, 2, 4][fhd & 3]!;
    const fcsSize = fcsFlag === 0 ? (singleSegment ? 1 : 0) : [0, 2, 4, 8][fcsFlag]!;
    const headerSize = 5 + (singleSegment ? 0 : 1) + didSize + fcsSize;
    if (this.length < headerSize) return false;
    let contentSize = -1;
    if (fcsSize > 0) {
      const at = headerSize - fcsSize;
      contentSize = fcsSize === 2 ? this.uint(at, 2) + 256 : this.uint(at, fcsSize);
    }
    // A dictionary frame is streamed too: zlib has no dictionary, so it
    // either decodes it (it needs none) or fails, in order, either way.
    const streamed = contentSize > PARALLEL_FRAME_MAX || didSize > 0;
    this.frame = { contentSize, checksum: (fhd & 0x04) !== 0, headerSize, streamed, started: false, blocks: 0, blockEnd: -1, last: false };
    this.pos = headerSize;
    return true;
  }

  /** The next complete frame or piece of a streamed frame, or undefined when more bytes are needed. */
  next(): Scanned | undefined {
    for (;;) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, this.length);
        if (n > 0) this.take(n, false);
        this.skip -= n;
        if (this.skip > 0) return undefined;
      }
      if (!this.frame) {
        if (this.length < 4) return undefined;
        const magic = this.uint(0, 4);
        if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
          if (this.length < 8) return undefined;
          this.skip = 8 + this.uint(4, 4);
          continue;
        }
        if (magic !== FRAME_MAGIC) throw invalid('unknown frame magic');
        if (!this.startFrame()) return undefined;
      }
      const f = this.frame!;
      // Blocks.
      if (f.blockEnd < 0) {
        if (this.length < this.pos + 3) return undefined;
        const h = this.uint(this.pos, 3);
        const type = (h >>> 1) & 3;
        const size = h >>> 3;
        if (type === 3) throw invalid('reserved block type');
        if (size > BLOCK_MAX) throw invalid('block larger than 128 KiB');
        f.last = (h & 1) === 1;
        f.blockEnd = this.pos + 3 + (type === 1 ? 1 : size) + (f.last && f.checksum ? 4 : 0);
      }
      if (this.length < f.blockEnd) return undefined;
      this.pos = f.blockEnd;
      f.blockEnd = -1;
      f.blocks++;
      if (!f.streamed && f.blocks > WHOLE_FRAME_BLOCKS) {
        // A block holds at most 128 KiB: a frame whose blocks may add up to
        // more than PARALLEL_FRAME_MAX is streamed after all (most often one
        // that does not state its size: the zstd CLI writing from a pipe).
        // Its blocks are scanned again from the first, to be handed out in
        // pieces (a few header bytes read per block).
        f.streamed = true;
        f.blocks = 0;
        this.pos = f.headerSize;
        continue;
      }
      if (f.streamed) {
        if (!f.last && f.blocks < PIECE_BLOCKS) continue;
        const piece: Scanned = { kind: 'piece', bytes: this.take(this.pos)!, first: !f.started, last: f.last, contentSize: f.contentSize, copy: this.copied };
        f.started = true;
        f.blocks = 0;
        if (f.last) this.frame = undefined;
        return piece;
      }
      if (!f.last) continue;
      this.frame = undefined;
      const exact = f.contentSize >= 0;
      const bytes = this.take(this.pos)!;
      return { kind: 'frame', bytes, contentSize: exact ? f.contentSize : f.blocks * BLOCK_MAX, exact, copy: this.copied };
    }
  }
}

/**
 * A frame streamed piece by piece through its own streaming decompressor:
 * its first write starts with the frame's first byte and its last ends with
 * the frame's last, because zlib's streaming decompressor drops the rest of
 * a write after a frame that ends inside it (Node 24.21), which is why no
 * other frame ever shares its writes. Each piece is a few blocks: its output
 * (at most 2 MiB) is all that is held, however well the frame compresses.
 */
class StreamedFrame {
  private readonly f = new FrameStream(zstdStreamDecompressor(), true);
  private written = 0;
  private decoded = 0;
  /** `contentSize`: the header's, checked (-1: not stated). */
  constructor(private readonly contentSize: number) {}

  /** The output of the next piece; the last one ends the decompressor, which fails if the frame has not ended. */
  run(piece: Buffer[], last: boolean): Promise<Buffer[]> {
    for (const b of piece) this.written += b.length;
    const written = this.written;
    const job = last ? this.f.finish(piece) : this.f.run(piece);
    return job
      .then((out) => {
        // Pieces come out in order (one stream): `decoded` is the frame's output so far.
        this.decoded += out.reduce((a, b) => a + b.length, 0);
        const want = this.contentSize;
        if (want >= 0 && (this.decoded > want || (last && this.decoded !== want))) throw invalid('a frame decompressed to the wrong size');
        // A frame that ended before its last byte would have its rest dropped (see above).
        if (last && this.f.consumed !== written) throw invalid('a frame ended before its last block');
        return out;
      })
      .finally(() => {
        if (last) this.close();
      });
  }

  close(): void {
    this.f.close();
  }
}

/** Pieces of a streamed frame in flight: one decompressing while the one before is consumed (they share one decompressor). */
const PIECES_AHEAD = 2;

export interface DecompressOptions {
  /** Called with each compressed input chunk as it is consumed (hashing, progress, memory pacing). */
  onInput?: (chunk: Buffer) => void;
  /**
   * Called with each input chunk (as it came) once no decompression refers
   * to it any more: every frame with bytes of it has been decompressed (the
   * caller may free it, or count it as garbage, then).
   */
  spentInput?: (chunk: Buffer) => void;
  /** Most frames decompressed at once (zstdParallelism); default ZSTD_JOBS. */
  jobs?: number;
}

/**
 * The decompressed bytes of a zstd stream, in order: frames of up to
 * PARALLEL_FRAME_MAX in parallel on the thread pool, bigger ones streamed
 * piece by piece (see the top of this file). Errors of the compressed data
 * are KompoxErrors of kind integrity.
 */
export async function* decompressZstd(source: AsyncIterable<Buffer>, opts: DecompressOptions = {}): AsyncGenerator<Buffer> {
  const pool = new CopyPool();
  const scanner = new FrameScanner(pool, opts.spentInput !== undefined);
  const inflight = new InOrder<Buffer[]>();
  /** The pool's buffer back once a job has consumed it (not on a failure: the stream may still hold it). */
  const releasing = (copy: Buffer | undefined) => (out: Buffer[]) => {
    pool.release(copy);
    return out;
  };
  // One long-lived decompressor per job, frames handed out round robin.
  const slots = Array.from({ length: zstdParallelism(opts.jobs) }, () => new FrameStream(zstdStreamDecompressor(), true));
  let next = 0;
  let streamed: StreamedFrame | undefined;
  // Input chunks taken whole by the scanner, each with the number of jobs started once it was: it is
  // spent when that many have finished (jobs finish in order: `done` counts those taken from `inflight`).
  const spentInput = opts.spentInput;
  const taken: Array<{ chunk: Buffer; jobs: number }> = [];
  let started = 0;
  let done = 0;
  const noteTaken = () => {
    if (spentInput) for (const chunk of scanner.drainTaken()) taken.push({ chunk, jobs: started });
  };
  const shift = async (): Promise<Buffer[]> => {
    const out = await inflight.shift();
    done++;
    while (taken.length > 0 && taken[0]!.jobs <= done) spentInput!(taken.shift()!.chunk);
    return out;
  };
  // Not `for await`: leaving early must not destroy the caller's source.
  const it = source[Symbol.asyncIterator]();
  try {
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
      opts.onInput?.(chunk);
      scanner.push(chunk);
      for (let s = scanner.next(); s; s = scanner.next()) {
        // (taken before the job that uses its last bytes starts: it waits for that one too)
        started++;
        noteTaken();
        if (s.kind === 'piece') {
          // In the same queue as whole frames: everything before it comes out first.
          while (inflight.size >= PIECES_AHEAD) yield* await shift();
          if (s.first) streamed = new StreamedFrame(s.contentSize);
          inflight.push(streamed!.run(s.bytes, s.last).then(releasing(s.copy)));
          if (s.last) streamed = undefined;
          continue;
        }
        // A slot's previous frame has left `inflight` before it gets the next.
        while (inflight.size >= slots.length) yield* await shift();
        const { contentSize, exact } = s;
        inflight.push(
          slots[next]!.run(s.bytes).then((out) => {
            // The frame came out whole (a decoder that stopped short would take the next frame as its rest).
            const n = out.reduce((a, b) => a + b.length, 0);
            if (exact ? n !== contentSize : n > contentSize) throw invalid('a frame decompressed to the wrong size');
            return out;
          }).then(releasing(s.copy)),
        );
        next = (next + 1) % slots.length;
      }
    }
    while (inflight.size > 0) yield* await shift();
    // (the rest: chunks that held only skippable frames after the last job)
    noteTaken();
    if (spentInput) for (const t of taken.splice(0)) spentInput(t.chunk);
    if (!scanner.complete) throw invalid('unexpected end of file');
  } catch (e) {
    inflight.clear();
    throw asIntegrity(e);
  } finally {
    streamed?.close();
    for (const s of slots) s.close();
  }
}

function asIntegrity(e: unknown): unknown {
  if (e instanceof KompoxError) return e;
  const oom = outOfMemory(e, 'zstd');
  if (oom) return oom;
  const code = String((e as { code?: unknown })?.code ?? '');
  if (code === 'ZSTD_error_dictionary_wrong') return invalid('a frame needs a zstd dictionary');
  const message = String((e as Error)?.message ?? e);
  if (code.startsWith('ZSTD_') || code.startsWith('Z_') || /zstd|unexpected end of file|corrupt|checksum|frame|window/i.test(message)) return invalid(message);
  return e;
}
