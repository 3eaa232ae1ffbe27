// Keeping data commands' memory flat (issue 11: ≤ 100 MiB RSS whatever the
// disk size). Node's zlib and stream reads hand out a fresh buffer for
// every chunk, and V8 frees such buffers only when a garbage collection
// runs. Their JavaScript objects are tiny, so the young generation never
// fills and no minor GC comes; V8 instead starts a full GC once 64 MiB of
// buffer memory has piled up, which is where 60-70 MiB of the peak came
// from. A minor GC (a scavenge) does not help: a buffer still in flight at
// the scavenge is promoted to the old generation, and dies there. A full GC
// of our small heap (a few MiB of objects) takes a few milliseconds; running
// one after every GC_EVERY bytes a data path has let go of keeps the garbage
// to that much, for well under 1% of the CPU at 100 MB/s. (The memory is
// returned once V8's sweeper thread has run, just after the GC.)
//
// Node exposes gc() only with --expose-gc; the flag can be set at run time
// and takes effect for contexts created afterwards (vm.runInNewContext), so
// only the data paths that pace themselves ever turn it on. Where that is
// not possible the pacer does nothing (V8's own triggers still bound memory,
// just higher).
//
// The young generation is the other swing: under a data path's allocation
// rate V8 doubles the new space up to 32 MiB, so the heap measured 15 MiB in
// one export and 52 MiB in the next. Growth factor 1 keeps it at its initial
// size; scavenges of a few MiB are cheap and the CPU time stayed the same.
// Unlike --max-semi-space-size (read once, at start-up), the growth factor
// is read whenever V8 considers growing, so setting it when a data path
// starts works (the benchmark's peak heap: 15 MiB every run).
import v8 from 'node:v8';
import { Transform } from 'node:stream';
import vm from 'node:vm';

type Gc = (opts?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

let gc: Gc | null | undefined;

function loadGc(): Gc | null {
  if (gc !== undefined) return gc;
  try {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as Gc;
    if (typeof gc !== 'function') gc = null;
  } catch {
    gc = null;
  }
  return gc;
}

let youngCapped = false;

/** Stops V8 from growing the young generation for the rest of the process (a data path has started). */
function capYoungGeneration(): void {
  if (youngCapped) return;
  youngCapped = true;
  try {
    v8.setFlagsFromString('--semi-space-growth-factor=1');
  } catch {
    // an embedder without the flag: V8's own sizing applies
  }
}

/** Bytes of buffer garbage after which a full GC runs. */
export const GC_EVERY = 8 * 1024 * 1024;

/**
 * Garbage allowed between two paced GCs, as a multiple of the live heap: a
 * full GC costs in proportion to the live heap, so pacing by a fixed amount
 * made it expensive in a process that holds more: with client-node's
 * KubeConfig loaded (~25 MiB of heap) each full GC of an export through the
 * cluster took 35-70 ms, and one every 8 MiB cost ~15% of its CPU
 * (docs/benchmarks.md, "Through the cluster"). With the allowance a fixed
 * share of the live heap, GC costs the same share of the CPU whatever the
 * process holds; a small heap keeps GC_EVERY. Half the heap, not all of it:
 * the kompoxops data commands hold 11-14 MiB, where an allowance of the
 * whole heap let 12-14 MiB of buffers wait for the GC at the peak; with half
 * (8 MiB there) the peak was 4-6 MiB lower, at the same CPU (docs/benchmarks.md,
 * "Issue 11, where each goal stands").
 */
export const HEAP_FACTOR = 0.5;

/** The garbage allowed until the next paced GC, after one left `liveHeapBytes` live. */
export function nextGcAfter(liveHeapBytes: number, minimum = GC_EVERY): number {
  return Math.max(minimum, HEAP_FACTOR * liveHeapBytes);
}

/**
 * Bytes of garbage objects one entry of a listing leaves behind, about: its
 * path strings, a stat result or a decoded tar header, a header buffer, a
 * hash object and its hex digest, the entry object. On a disk of small files
 * these outweigh the data bytes the pacers count (a 100-byte file compresses
 * to a few bytes): at 200,000 such files V8's own triggers let 15-20 MiB of
 * them pile up in the old generation and malloc's heap, and the peak was
 * 101-128 MiB; counting each entry as this much brought it to 84-93 MiB
 * (docs/benchmarks.md, "Small files paced by the entry").
 */
export const ENTRY_GARBAGE = 512;

let entryPacer: GarbagePacer | undefined;

/** A data path has handled one more entry (stored or read back a record of it): see ENTRY_GARBAGE. */
export function noteEntryGarbage(): void {
  (entryPacer ??= new GarbagePacer()).note(ENTRY_GARBAGE);
}

/**
 * The garbage every full-GC pacer of the process has noted since the last
 * paced full GC, in units of GC_EVERY: one budget, not one per pacer. A data
 * path runs several pacers at once (an import over SSH: the archive read, the
 * tar stream, the link's compression, the channel), and the GC any of them
 * runs frees the garbage all of them counted. With a budget each, a GC left
 * the others' counts where they were, so up to the sum of their allowances
 * could wait for the next one: imports over SSH of the benchmark disk peaked
 * at 99-113 MiB so, 95-99 with one budget, at the same number of GCs (the
 * same CPU; docs/benchmarks.md).
 */
const budget = { pending: 0, every: 1, nextCheck: 1 };

/** Bytes of garbage (at GC_EVERY's weight) the full-GC pacers may still note before the next paced GC is due (it may wait longer: RSS_CEILING). */
export function pacedGarbageLeft(): number {
  return (budget.every - budget.pending) * GC_EVERY;
}

/**
 * The resident set size under which a due paced GC may wait. A full GC costs
 * the same few milliseconds whatever the garbage it frees (marking the live
 * heap is the work), so the allowance is a trade of CPU for memory: pacing
 * every 8 MiB, a local import of the benchmark disk (1.07 GB) ran 190 full
 * GCs, 0.9 s of its 3.2 s on the main thread; every 16 MiB it was 12-17%
 * faster and peaked 7.5 MiB higher (82 → 89 MiB), every 32 MiB no faster
 * again and over the line (105-108 MiB; docs/benchmarks.md). A process
 * well under the line (a local data command) spends its headroom so; one
 * near it still collects at once. The peak does not stop at the ceiling:
 * what a GC frees stays in malloc's heap, so a wait raises the high-water
 * mark by up to one allowance (the binary's restore: 95 MiB once with a
 * ceiling of 90, 90 before), hence a ceiling well under the line. A process
 * that has reached a disk over SSH or through the cluster (pacePromptly)
 * collects at once too, whatever its RSS
 * when the GC is due: there a GC that waited while the transfer was starting
 * (under the ceiling) raised malloc's high-water mark, and the transfer's own
 * buffers (ssh2's packets, TLS records) then grew on top of it: the binary's
 * export over SSH of the benchmark disk peaked at 104 MiB, its import at 101
 * (89-98 and 93-99 before).
 */
export const RSS_CEILING = 86 * 1024 * 1024;
/** How far a due GC may wait while the process is under RSS_CEILING: this many allowances in all. */
export const HEADROOM_ALLOWANCES = 2;
/** Garbage noted between two readings of the RSS while a due GC waits, in allowances (one reading is a read of /proc/self/stat). */
const RSS_CHECK_STEP = 1 / 16;

let residentBytes = (): number => process.memoryUsage.rss();
let prompt = false;

/** From now on a due paced GC runs at once in this process (RSS_CEILING: a disk reached over SSH or through the cluster). */
export function pacePromptly(): void {
  prompt = true;
}

/** Replaces how the pacers read the process's RSS and whether they pace promptly (tests); returns what it replaced. */
export function setPacingState(state: { resident: () => number; prompt: boolean }): { resident: () => number; prompt: boolean } {
  const previous = { resident: residentBytes, prompt };
  residentBytes = state.resident;
  prompt = state.prompt;
  return previous;
}

/**
 * Counts bytes of short-lived buffers a data path has let go of, and runs a
 * full GC every GC_EVERY bytes (or HEAP_FACTOR times the live heap, if
 * larger) that all such pacers have noted together, or up to
 * HEADROOM_ALLOWANCES times that while the process is under RSS_CEILING; a
 * pacer of a smaller `minimum` counts its bytes as that much more. (Scavenges instead, for
 * buffers that die young, were tried for the exec stream of exports through
 * the cluster: buffers in flight at each scavenge were promoted and piled up
 * in the old generation, 116-138 MiB with a disk of 200,000 small files;
 * docs/benchmarks.md.)
 */
export class GarbagePacer {
  constructor(private readonly minimum = GC_EVERY) {
    capYoungGeneration();
  }
  /** `bytes` of buffers are garbage now (or will be once their consumer has them). */
  note(bytes: number): void {
    // a pacer of a smaller minimum spends the shared budget faster
    budget.pending += bytes / this.minimum;
    if (budget.pending < budget.nextCheck) return;
    if (!prompt && budget.pending < HEADROOM_ALLOWANCES * budget.every && residentBytes() < RSS_CEILING) {
      budget.nextCheck = budget.pending + RSS_CHECK_STEP * budget.every;
      return;
    }
    budget.pending = 0;
    budget.nextCheck = budget.every;
    const collect = loadGc();
    if (!collect) return;
    collect({ type: 'major' });
    budget.every = budget.nextCheck = nextGcAfter(v8.getHeapStatistics().used_heap_size) / GC_EVERY;
  }
}

/**
 * External memory (ArrayBuffers' backing stores, outside the JavaScript
 * heap) allowed to grow before paceByExternal runs a scavenge. For buffers
 * no stream of ours sees: ssh2's packets on the SFTP fallback (each read
 * off the socket into a fresh buffer, then decrypted into another; each
 * write framed and encrypted into new ones). Left to V8, they waited for its
 * own GCs (an export of a 3 GiB file: 133 full GCs started by the external
 * memory's growth, 353 scavenges), and malloc's heap kept the high-water
 * mark of what piled up between them, higher the longer the transfer: peak
 * RSS 106-127 MiB at 3 GiB, 110-132 at 9 GiB. These packets die young, so
 * a scavenge frees them (a millisecond or less on a heap of young objects
 * this small), where counting their bytes into a GarbagePacer ran a full GC
 * every few MiB and cost 2-3x the user CPU. Paced so, the same export: 86-89
 * MiB, and less CPU than before (1676 scavenges, 18 full GCs). See
 * docs/benchmarks.md, "The SFTP fallback's memory".
 */
export const EXTERNAL_GARBAGE = 4 * 1024 * 1024;
/**
 * External memory left after paceByExternal's scavenges allowed to grow
 * past what its last full GC left before it runs another: a packet still
 * in flight at a scavenge is promoted and dies in the old generation.
 */
export const PROMOTED_GARBAGE = 8 * 1024 * 1024;
const external = { afterMinor: -1, afterMajor: -1, minors: 0, majors: 0 };
let externalBytes = (): number => v8.getHeapStatistics().external_memory;
/** Replaces how paceByExternal reads the external memory (tests); returns what it replaced and starts over. */
export function setExternalMemoryReader(read: () => number): () => number {
  const previous = externalBytes;
  externalBytes = read;
  Object.assign(external, { afterMinor: -1, afterMajor: -1, minors: 0, majors: 0 });
  return previous;
}
/** The GCs paceByExternal has run (tests, diagnostics). */
export function externalPacing(): { minors: number; majors: number } {
  return { minors: external.minors, majors: external.majors };
}
/**
 * Runs a scavenge when the external memory has grown by EXTERNAL_GARBAGE
 * since the last GC this ran (or since the first call), and a full GC when
 * what the scavenges left has grown by PROMOTED_GARBAGE since the last full
 * one. A reading costs well under a microsecond (v8.getHeapStatistics), so
 * this can be called per SFTP request. Returns the GC it ran, if any.
 */
export function paceByExternal(): 'minor' | 'major' | undefined {
  const now = externalBytes();
  if (external.afterMinor < 0 || now < external.afterMinor) {
    external.afterMinor = now;
    if (external.afterMajor < 0 || now < external.afterMajor) external.afterMajor = now;
    return undefined;
  }
  if (now - external.afterMinor < EXTERNAL_GARBAGE) return undefined;
  const collect = loadGc();
  capYoungGeneration();
  if (!collect) {
    external.afterMinor = now;
    return undefined;
  }
  collect({ type: 'minor' });
  external.minors++;
  let after = externalBytes();
  let ran: 'minor' | 'major' = 'minor';
  if (after - external.afterMajor >= PROMOTED_GARBAGE) {
    collect({ type: 'major' });
    external.majors++;
    after = externalBytes();
    external.afterMajor = after;
    // the shared budget's garbage went with it
    budget.pending = 0;
    budget.nextCheck = budget.every;
    ran = 'major';
  }
  external.afterMinor = after;
  if (after < external.afterMajor) external.afterMajor = after;
  return ran;
}
/**
 * Bytes of garbage objects one chunk off a socket leaves behind besides its
 * bytes, about: each buffer's ArrayBuffer and view objects, its backing
 * store's record and malloc's header, for the TLS record, the WebSocket
 * message and the channel's slice. Counting bytes alone paces a stream of
 * small chunks late: an export through the cluster of 200,000 small files
 * arrived as 69,795 chunks for 205 MB, 55,064 of them under 1 KiB (a tar of
 * small files written block by block). With full GCs, counting chunks too:
 * 92.9-102.8 MiB in 12 runs, most near 95; their bytes alone: 97.7 and 97.9
 * in 2 (docs/benchmarks.md).
 */
export const CHUNK_GARBAGE = 1024;

/** How a pacing pipe counts and buffers (pacingPipe). */
export interface PacingPipeOptions {
  /** Bytes each side buffers (the stream default otherwise). */
  highWaterMark?: number;
  /** Garbage counted per chunk besides its bytes (the objects of its buffers: CHUNK_GARBAGE). */
  perChunk?: number;
  /** The reading side holds at most this many chunks and gives them out one by one, as they came. */
  readableChunks?: number;
  /** Bytes counted per byte of a chunk handed over (markReleasable); default one buffer less than perByte. */
  perHandedOverByte?: number;
}

/**
 * A pass-through that counts what crosses it as garbage for `pacer`,
 * `perByte` bytes per byte (the buffers it stands for: a byte arriving over
 * a TLS WebSocket left two behind) and `perChunk` bytes per chunk, for a
 * stream whose buffers nothing else paces. A chunk whose memory was handed
 * over (markReleasable) counts `perHandedOverByte` per byte instead: its
 * consumer frees that memory itself. With `readableChunks` the reading side
 * gives the chunks out one by one, as they came: a byte stream's reader
 * takes everything buffered at once, concatenated into a new buffer (a copy,
 * and garbage, and no longer the memory that was handed over).
 */
export function pacingPipe(pacer: GarbagePacer, perByte = 1, opts: PacingPipeOptions = {}): Transform {
  const { highWaterMark, perChunk = 0, readableChunks, perHandedOverByte = perByte - 1 } = opts;
  const sides =
    readableChunks !== undefined
      ? { ...(highWaterMark !== undefined ? { writableHighWaterMark: highWaterMark } : {}), readableObjectMode: true, readableHighWaterMark: readableChunks }
      : highWaterMark !== undefined
        ? { highWaterMark }
        : {};
  return new Transform({
    ...sides,
    transform(chunk: Buffer, _enc, cb) {
      pacer.note((isReleasable(chunk) ? perHandedOverByte : perByte) * chunk.length + perChunk);
      cb(null, chunk);
    },
  });
}

/** Buffers smaller than this are left to the GC (malloc reuses small blocks well, and the call costs more than it saves). */
const RELEASE_MIN = 16 * 1024;

/** Frees `ab`'s memory now by detaching it (`transfer(0)`); false where it cannot be detached. */
function detach(ab: ArrayBufferLike): boolean {
  const t = (ab as ArrayBuffer & { transfer?: (length: number) => ArrayBuffer }).transfer;
  if (typeof t !== 'function') return false;
  try {
    t.call(ab, 0);
    return true;
  } catch {
    // not detachable (a shared or a host-owned buffer): the GC frees it
    return false;
  }
}

/**
 * Frees the memory of `b` now, without a GC, when `b` is the only view of
 * its memory (it spans the whole ArrayBuffer, as a buffer this process
 * allocated for one use does) and the caller knows nothing reads or writes it
 * any more: detaching the ArrayBuffer releases its backing store at once,
 * where otherwise it waits for a full GC (see the top of this file). Returns
 * whether it did; a buffer that shares its memory (a slice, a pooled small
 * buffer) is left alone. After this `b` is empty: a use after the release
 * reads nothing, never freed memory.
 */
export function releaseBuffer(b: Uint8Array): boolean {
  if (b.byteOffset !== 0 || b.byteLength !== b.buffer.byteLength || b.byteLength < RELEASE_MIN) return false;
  return detach(b.buffer);
}

/** Memory whose producer handed it over whole (markReleasable): its consumer may release it. */
const handedOver = new WeakSet<ArrayBufferLike>();

/**
 * The producer of `b` declares that nothing but `b` and views of it made by
 * its consumers refers to b's memory (a WebSocket message's own buffer, the
 * channel byte sliced off: exec-stream.ts), so the one consumer that reads
 * it may free it once done (releaseMarked). Marking frees nothing by itself.
 */
export function markReleasable(b: Uint8Array): void {
  if (b.byteLength >= RELEASE_MIN) handedOver.add(b.buffer);
}

/** Whether `b`'s memory was handed over (markReleasable): a pacer counts it as one buffer less. */
export function isReleasable(b: Uint8Array): boolean {
  return handedOver.has(b.buffer);
}

/**
 * Frees the memory of `b` (or of the buffer it is a view of) now if its
 * producer handed it over (markReleasable), for a consumer that has done with
 * every view of it; otherwise does nothing. Returns whether it freed it.
 */
export function releaseMarked(b: Uint8Array): boolean {
  return handedOver.has(b.buffer) && detach(b.buffer);
}

/**
 * Memory a producer hands over in pieces (markHandedOverInPieces): bytes of
 * it its consumer has done with so far (spendPiece).
 */
const piecesSpent = new WeakMap<ArrayBufferLike, number>();

/**
 * The producer of `b` declares that b's memory goes to one consumer as
 * disjoint views, each passed on once, which together cover all of it, and
 * that nothing else refers to it: zlib's output buffer, which a stream fills
 * with the output of one write after another and replaces once full (a
 * decompressed frame that arrived in two writes leaves one buffer in two
 * views). Marking frees nothing by itself.
 */
export function markHandedOverInPieces(b: Uint8Array): void {
  if (b.buffer.byteLength >= RELEASE_MIN && !piecesSpent.has(b.buffer)) piecesSpent.set(b.buffer, 0);
}

/**
 * The consumer has done with `b`, one of the views of memory handed over in
 * pieces (markHandedOverInPieces): once views covering all of it have been
 * spent, the memory is freed. Returns whether `b` is such a view (its bytes
 * then need no GC: they go back with the rest of its memory); false for any
 * other buffer.
 */
export function spendPiece(b: Uint8Array): boolean {
  const ab = b.buffer;
  const before = piecesSpent.get(ab);
  if (before === undefined) return false;
  const now = before + b.byteLength;
  if (now < ab.byteLength) piecesSpent.set(ab, now);
  else {
    piecesSpent.delete(ab);
    detach(ab);
  }
  return true;
}

/**
 * A consumer has done with `b` (a chunk it read to its end): its memory goes
 * back at once where it can (a whole buffer: releaseBuffer; the last piece of
 * memory handed over in pieces: spendPiece). Returns false where `b`'s bytes
 * are left to the GC (the caller counts them as garbage).
 */
export function freeSpent(b: Uint8Array): boolean {
  return spendPiece(b) || releaseBuffer(b);
}

