// The portable archive every driver exports and imports: a compressed POSIX
// pax tar holding the disk's files under `data/` and, as the LAST entry,
// `kompox-archive.json` (the manifest: per-entry SHA-256, counts, a tree
// digest). Putting the manifest last lets export stream to stdout in one pass
// and lets import verify every file while extracting. The SHA-256 of the
// whole compressed stream is computed on both sides and reported (export)
// or checked (import, when the caller knows the expected value).
//
// Two compressions (docs/disks-and-snapshots.md, "Portable archive format"):
//   tar.zst  format version 2, the default: zstd, compressed on zstd's own
//            worker threads where the runtime has them;
//   tar.gz   gzip, for Kompox releases that read only version 1 (their
//            manifest says version 1: the tar inside is the same).
// Import recognises either by its magic bytes, whatever the file is called.
//
// Import never makes a partial tree visible: it extracts into a directory the
// caller provides (a temp dir beside the final place), and throws a
// KompoxError of kind 'integrity' on any mismatch; the caller removes the temp
// dir and renames it into place only after success.
//
// Speed (issue 11): every byte is hashed once (per file while reading it; the
// whole stream once, compressed), data moves in chunks of about 1 MiB (small
// tar pieces are coalesced before they reach the compressor, so the thread
// pool is not asked once per 512-byte header), and filesystems that can do
// small files in one call (TreeFs.openFile/createFile) get them that way.
//
// File access goes through TreeFs so the same code works on the local
// filesystem and over SFTP. tar-stream.ts builds on the pieces exported
// here to convert between this format and plain tar streams (the data path
// through a helper pod, which has tar but neither zstd nor Node).
import { createHash, type Hash } from 'node:crypto';
import { ReadStream } from 'node:fs';
import { Duplex, Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import type { Header, Pax } from 'tar';
import { tarLibrary } from './tar-library.js';
import { KompoxError } from '../domain/errors.js';
import { nowRfc3339 } from '../domain/names.js';
import { ManifestLog, digestLine } from './manifest-log.js';
import { decodeHeader, field, parsePax, type DecodedHeader, type PaxFields } from './tar-decode.js';
import { notUtf8Member, utf8Name } from './utf8-names.js';
import { ManifestStream } from './manifest-stream.js';
import { ArchiveCheck, OpenDirs, loggedManifest, within } from './archive-check.js';
import { EntrySorter, type EntrySorterOptions } from './entry-sort.js';
import { GarbagePacer, freeSpent, markReleasable, releaseBuffer, releaseMarked } from './memory.js';
import { headerBlocks } from './tar-header.js';
import { TreeWalker, walk, type WalkedEntry } from './tree-walk.js';
import { pathTooLong, pathTooLongFor } from './path-length.js';
import { InOrder, ZSTD_FRAME, ZSTD_JOBS, ZSTD_LEVEL, ZstdSlot, decompressZstd, outOfMemory, zstdParallelism } from './zstd.js';

export const ARCHIVE_FORMAT = 'kompox-archive';
/** The newest manifest version this code writes and reads. */
export const ARCHIVE_VERSION = 2;
export const MANIFEST_NAME = 'kompox-archive.json';
/** Top-level directory of the disk's files inside the archive. */
export const DATA_DIR = 'data';

/** How the tar stream is compressed. */
export type ArchiveFormat = 'tar.zst' | 'tar.gz';
export const ARCHIVE_FORMATS: readonly ArchiveFormat[] = ['tar.zst', 'tar.gz'];
export const DEFAULT_ARCHIVE_FORMAT: ArchiveFormat = 'tar.zst';
/** zstd level of version-2 archives (see ./zstd.ts). */
export { ZSTD_LEVEL };
/** gzip level of version-1 archives (what `tar -czf` uses). */
export const GZIP_LEVEL = 6;

/**
 * The compression levels an export may ask for (`--level`): gzip's 1-9, and
 * zstd's 1-8. zstd's higher levels search far more (level 9 took the
 * benchmark disk's export from 3.8 to 7 s and its peak to 98 MiB, level 19
 * to 108 s and 243 MiB: docs/benchmarks.md), past what a data command may
 * hold (issue 11: within 100 MiB); its negative levels gain little over
 * level 1 on data that compresses at all.
 */
export const ARCHIVE_LEVELS: Record<ArchiveFormat, { min: number; max: number; default: number }> = {
  'tar.zst': { min: 1, max: 8, default: ZSTD_LEVEL },
  'tar.gz': { min: 1, max: 9, default: GZIP_LEVEL },
};

/** The refusal of a level `shown` for `format` (one wording for the CLI's text and the use cases' numbers). */
function levelError(field: string, shown: string, format: ArchiveFormat, what: string): KompoxError {
  const r = ARCHIVE_LEVELS[format];
  return new KompoxError('usage', `${field} ${shown} ${what}`, {
    code: 'archive.level.invalid',
    details: { field, format, min: r.min, max: r.max },
    hint: `Give a whole number from ${r.min} (fastest) to ${r.max} (smallest); the default is ${r.default}.${format === 'tar.zst' ? ' zstd levels above 8 need several times the memory and time for 1-3% less.' : ''}`,
  });
}

/** A compression level for `format` → itself; a KompoxError naming `field` when the format has no such level. */
export function checkArchiveLevel(level: number, format: ArchiveFormat, field = '--level'): number {
  const r = ARCHIVE_LEVELS[format];
  if (Number.isInteger(level) && level >= r.min && level <= r.max) return level;
  throw levelError(field, String(level), format, `is not a compression level of ${format} archives`);
}

/** `--level` text → a level for `format` (checkArchiveLevel). */
export function parseArchiveLevel(value: string, format: ArchiveFormat, field = '--level'): number {
  const v = value.trim();
  if (!/^[+-]?\d+$/.test(v)) throw levelError(field, `"${value}"`, format, 'is not a whole number');
  return checkArchiveLevel(Number(v), format, field);
}

/** An export's options checked before anything runs: its level, against its format (default tar.zst). */
export function checkExportOptions(opts: { format?: ArchiveFormat; level?: number }): void {
  if (opts.level !== undefined) checkArchiveLevel(opts.level, opts.format ?? DEFAULT_ARCHIVE_FORMAT, 'level');
}

/** Manifest version written for a format: gzip archives say 1 so releases that read only version 1 import them. */
export function manifestVersionFor(format: ArchiveFormat): number {
  return format === 'tar.gz' ? 1 : 2;
}

/** File name extension for a format, with the dot. */
export function archiveExtension(format: ArchiveFormat): string {
  return `.${format}`;
}

/** `--format` value → format; a KompoxError naming the field otherwise. */
export function parseArchiveFormat(value: string, field = '--format'): ArchiveFormat {
  const v = value.trim().toLowerCase().replace(/^\./, '');
  if (v === 'tar.zst' || v === 'tar.gz') return v;
  throw new KompoxError('usage', `${field} "${value}" is not an archive format`, {
    hint: 'Use tar.zst (the default) or tar.gz (gzip, for Kompox releases that only read version 1 archives).',
  });
}

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** The format of an archive from its first bytes (zstd or gzip magic); undefined for anything else. */
export function detectArchiveFormat(head: Buffer): ArchiveFormat | undefined {
  if (head.length >= 4 && head.subarray(0, 4).equals(ZSTD_MAGIC)) return 'tar.zst';
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
  return undefined;
}

export type EntryKind = 'file' | 'dir' | 'symlink';

export interface TreeStat {
  kind: EntryKind | 'other';
  /** Permission bits incl. setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Whole milliseconds (transports round what the filesystem reports). */
  mtimeMs: number;
}

/** A file opened by TreeFs.openFile. */
export interface TreeFile {
  /** Reads up to `length` bytes at `position` into `buf` at `offset`; 0 at the end of the file. */
  read(buf: Buffer, offset: number, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

/** Metadata set on an extracted entry. */
export interface EntryMeta {
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
}

/** The filesystem operations archive packing and unpacking need. */
export interface TreeFs {
  /** Like lstat (never follows a symlink); undefined when the path does not exist. */
  lstat(path: string): Promise<TreeStat | undefined>;
  readdir(path: string): Promise<string[]>;
  /**
   * A directory's names a batch at a time, never all at once (a directory
   * may hold millions); the tree walk uses it where a transport has it.
   */
  readdirStream?(path: string): Iterable<string> | AsyncIterable<string>;
  readlink(path: string): Promise<string>;
  /**
   * The listing leaves out, without an error, entries whose path reaches
   * PATH_MAX (OpenSSH's sftp-server): the walk refuses directories that deep.
   */
  readonly dropsLongPaths?: boolean;
  openRead(path: string): Readable;
  /** Creates (exclusively) a file for writing with the given mode. */
  openWrite(path: string, mode: number): Writable;
  mkdir(path: string, mode: number): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  /** Sets atime+mtime; for a symlink only where the transport can do it without following it. */
  setTimes(path: string, mtimeMs: number, kind: EntryKind): Promise<void>;
  lchown(path: string, uid: number, gid: number): Promise<void>;
  /** True when ownership can and should be restored (running as root). */
  readonly canChown: boolean;
  /**
   * Optional fast path: opens a file (never through a symlink) for reads
   * into the caller's buffers, so packing copies file data straight into
   * the compressor's frames; `listed` (its lstat in the listing) gives the
   * size, so the transport can read small files in one go, and what the
   * opened file must still be (a transport that cannot open without
   * following symlinks checks it). Undefined when the file no longer exists
   * or was replaced since the listing.
   */
  openFile?(path: string, listed: TreeStat): Promise<TreeFile | undefined>;
  /**
   * Optional fast path for small files: creates the file exclusively (never
   * through a symlink) with this content and sets its metadata (ownership
   * only when canChown).
   */
  createFile?(path: string, data: readonly Buffer[], meta: EntryMeta): Promise<void>;
}

export interface ManifestEntry {
  /** Archive path, `data` or `data/...`. */
  path: string;
  type: EntryKind;
  mode: number;
  size: number;
  sha256?: string;
  linkpath?: string;
}

export interface ArchiveSource {
  app?: string;
  volume?: string;
  disk?: string;
  id?: string;
  snapshot?: string;
  /** Requested size of the source disk (an import keeps it unless told otherwise). */
  sizeGiB?: number;
}

export interface ArchiveManifest {
  format: typeof ARCHIVE_FORMAT;
  version: number;
  createdAt: string;
  source: ArchiveSource;
  fileCount: number;
  dirCount: number;
  symlinkCount: number;
  /** Sum of regular file sizes. */
  totalBytes: number;
  /** SHA-256 over the canonical entry listing (see treeDigestOf). */
  treeDigest: string;
  entries: ManifestEntry[];
}

export interface ArchiveResult {
  manifest: ArchiveManifest;
  /** SHA-256 (hex) of the compressed archive bytes. */
  sha256: string;
  /** Size of the compressed archive in bytes. */
  bytes: number;
  /** How the archive is (export) or was (import) compressed (an uncompressed copy's: the format it was packed for, see PackOptions.uncompressed). */
  format: ArchiveFormat;
  /**
   * packTree: the listed files it left out, deleted or replaced (by a
   * symlink, another owner's file) between the listing and their open (a
   * live disk): how many, and the first few archive paths. Absent: none.
   */
  leftOut?: { count: number; first: string[] };
  /**
   * packTree: the files that shrank while they were read (a live disk: an
   * app truncated them, as logrotate's copytruncate does), stored padded
   * with zeros to the size they were listed with, as GNU tar does: how
   * many, and the first few archive paths. Absent: none.
   */
  shrank?: { count: number; first: string[] };
  /**
   * packTree: the sockets, FIFOs and devices it left out (an archive holds
   * only files, directories and symlinks): how many, and the first few
   * archive paths. Absent: none.
   */
  special?: { count: number; first: string[] };
}

/** How many left-out paths ArchiveResult.leftOut names (its count goes on). */
const LEFT_OUT_NAMED = 10;

/**
 * Progress of a long archive operation, in bytes: the same shape as the
 * drivers' ProgressSink, so either can be passed. `total` is known up front
 * for exports (a size walk of the tree) and for imports of a file (its size).
 */
export interface ArchiveProgress {
  start(label: string, total?: number): void;
  advance(bytes: number): void;
  /** The total learnt after the start (a size walk alongside the transfer). */
  total?(bytes: number): void;
  /** The end, with the files and file bytes the archive holds. */
  done(counts?: { files: number; bytes: number }): void;
}

/** What an archive holds, for a progress summary. */
export function countsOf(m: ArchiveManifest): { files: number; bytes: number } {
  return { files: m.fileCount, bytes: m.totalBytes };
}

const BLOCK = 512;
/** Chunk size of reads, compressor output and coalesced tar data. */
export const CHUNK = 1024 * 1024;
/** Files up to this size are read and written in one call where the filesystem offers it. */
const SMALL_FILE = 1024 * 1024;
/** Pieces at least this big go on to the compressor as they are (no copy). */
const BIG_PIECE = 64 * 1024;
const ZERO_BLOCK = Buffer.alloc(BLOCK);
/** Zeros standing in for the missing end of a file that shrank while it was read. */
const ZERO_CHUNK = Buffer.alloc(64 * 1024);

// ---------------------------------------------------------------- digests

/** Digest of a tree listing: type, permission bits, size, content hash, path, link target; sorted by path. */
export function treeDigestOf(entries: readonly ManifestEntry[]): string {
  const h = createHash('sha256');
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const e of sorted) h.update(digestLine(e));
  return h.digest('hex');
}

/** File opens in flight ahead of the one being packed (they are round trips over SSH). */
const OPENS_AHEAD = 16;
/** Walked entries waiting to be packed, at most (the walk stays one directory at a time in memory). */
const ENTRIES_AHEAD = 256;

export interface TreeSize {
  fileCount: number;
  dirCount: number;
  symlinkCount: number;
  /** Sum of regular file sizes: what an export reads and what its progress counts. */
  totalBytes: number;
}

/** A quick size walk (metadata only, no content read): the total for progress before an export starts. */
export async function measureTree(fs: TreeFs, root: string): Promise<TreeSize> {
  const size: TreeSize = { fileCount: 0, dirCount: 0, symlinkCount: 0, totalBytes: 0 };
  await walk(fs, root, DATA_DIR, async (_abs, _rel, st) => {
    if (st.kind === 'file') {
      size.fileCount++;
      size.totalBytes += st.size;
    } else if (st.kind === 'dir') size.dirCount++;
    else size.symlinkCount++;
  });
  return size;
}

async function hashFile(fs: TreeFs, path: string, st: TreeStat, buf: Buffer): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let n = 0;
  const file = await fs.openFile?.(path, st);
  // never openRead after openFile said no: it would follow what replaced the file
  if (!file && fs.openFile) throw new Error(`${path} was deleted or replaced while the tree was read`);
  if (file) {
    try {
      for (let got = 1; got > 0; n += got) {
        got = await file.read(buf, 0, buf.length, n);
        h.update(buf.subarray(0, got));
      }
    } finally {
      await file.close();
    }
    return { sha256: h.digest('hex'), size: n };
  }
  for await (const chunk of fs.openRead(path) as AsyncIterable<Buffer>) {
    h.update(chunk);
    n += chunk.length;
  }
  return { sha256: h.digest('hex'), size: n };
}

/** Manifest-style listing of a directory tree with content hashes: what tests and verification compare. */
export async function digestTree(fs: TreeFs, root: string): Promise<{ treeDigest: string; entries: ManifestEntry[] }> {
  const entries: ManifestEntry[] = [];
  const buf = Buffer.allocUnsafe(CHUNK);
  await walk(fs, root, DATA_DIR, async (abs, rel, st) => {
    if (st.kind === 'file') {
      const { sha256, size } = await hashFile(fs, abs, st, buf);
      entries.push({ path: rel, type: 'file', mode: st.mode, size, sha256 });
    } else if (st.kind === 'symlink') {
      entries.push({ path: rel, type: 'symlink', mode: st.mode, size: 0, linkpath: await fs.readlink(abs) });
    } else {
      entries.push({ path: rel, type: 'dir', mode: st.mode, size: 0 });
    }
  });
  return { treeDigest: treeDigestOf(entries), entries };
}

// ---------------------------------------------------------------- compression

/**
 * The decompressed tar stream of an archive, in order. `onInput` sees every
 * compressed chunk as it is consumed (the archive's SHA-256, progress).
 * zstd: Kompox's frames in parallel (./zstd.ts); gzip: one zlib stream.
 * What it yields is counted as garbage for `pacer` once taken, unless
 * `consumerFrees`: the consumer frees each chunk it has done with, or counts
 * it itself (runReader's `spent`). `ownsInput`: nothing else refers to the
 * input's chunks (a file's read stream reads each into a buffer of its own),
 * so a zstd input's chunks are freed once decompressed.
 */
async function* decompressed(
  input: Readable,
  format: ArchiveFormat | 'none',
  onInput: (chunk: Buffer) => void,
  pacer: GarbagePacer,
  consumerFrees: boolean,
  ownsInput = false,
): AsyncGenerator<Buffer> {
  const seen = (chunk: Buffer) => {
    onInput(chunk);
    pacer.note(chunk.length);
  };
  if (format === 'none') {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      // (counted once: as input here, and not again as output by a consumer that frees what it read)
      onInput(chunk);
      if (!consumerFrees) pacer.note(chunk.length);
      yield chunk;
    }
    return;
  }
  if (format === 'tar.zst') {
    // An input of our own goes back once its frames are decompressed, and is counted then if it cannot.
    const spentInput = (chunk: Buffer) => void (releaseBuffer(chunk) || pacer.note(chunk.length));
    const opts = ownsInput ? { onInput, spentInput } : { onInput: seen };
    for await (const b of decompressZstd(input as AsyncIterable<Buffer>, opts)) {
      yield b;
      if (!consumerFrees) pacer.note(b.length);
    }
    return;
  }
  const tap = new Transform({
    highWaterMark: CHUNK,
    transform(chunk: Buffer, _enc, cb) {
      seen(chunk);
      cb(null, chunk);
    },
  });
  const gunzip = createGunzip({ chunkSize: CHUNK });
  const piping = pipeline(input, tap, gunzip);
  piping.catch(() => undefined); // the same error reaches the iteration below
  try {
    for await (const b of gunzip as AsyncIterable<Buffer>) {
      yield b;
      if (!consumerFrees) pacer.note(b.length);
    }
    await piping;
  } catch (err) {
    if (err instanceof KompoxError) throw err;
    throw compressionError(err, format) ?? err;
  } finally {
    gunzip.destroy();
  }
}

/**
 * A plain decompressing stream for `format` (tar-stream.ts reads an archive
 * into a plain tar stream with it). zstd goes frame by frame (decompressZstd:
 * Kompox's frames in parallel): zlib's streaming decoder alone drops the
 * rest of any write once a frame ends inside it (Node 24.21), which would
 * refuse a valid multi-frame stream (e.g. concatenated `zstd FILE` outputs).
 */
export function decompressor(format: ArchiveFormat, jobs?: number, spentInput?: (chunk: Buffer) => void): Duplex {
  if (format === 'tar.gz') return createGunzip({ chunkSize: CHUNK });
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    yield* decompressZstd(source, { ...(jobs !== undefined ? { jobs } : {}), ...(spentInput ? { spentInput } : {}) });
  });
}

/** Reads the first bytes of `input` to tell its format, and puts them back. */
export async function sniffFormat(input: Readable): Promise<ArchiveFormat> {
  const parts: Buffer[] = [];
  let n = 0;
  let ended = false;
  while (n < ZSTD_MAGIC.length && !ended) {
    const chunk = input.read() as Buffer | string | null;
    if (chunk !== null) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      parts.push(b);
      n += b.length;
      continue;
    }
    // 'end' may have been emitted already (right after the last 'readable').
    if (input.readableEnded) {
      ended = true;
      break;
    }
    ended = await new Promise<boolean>((resolve, reject) => {
      const done = (v: boolean | Error) => {
        input.off('readable', onReadable);
        input.off('end', onEnd);
        input.off('error', onError);
        if (v instanceof Error) reject(v);
        else resolve(v);
      };
      const onReadable = () => done(false);
      const onEnd = () => done(true);
      const onError = (e: Error) => done(e);
      input.on('readable', onReadable);
      input.once('end', onEnd);
      input.once('error', onError);
    });
  }
  const head = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  const format = detectArchiveFormat(head);
  if (!format) {
    throw integrity(
      head.length === 0 ? 'the archive is empty' : 'the archive is neither zstd nor gzip compressed: it is not a Kompox archive, or it is damaged',
      'Kompox archives are .tar.zst or .tar.gz files written by disk export or snapshot export.',
    );
  }
  if (!ended) input.unshift(head);
  return format;
}

export function compressionError(err: unknown, format: ArchiveFormat): KompoxError | undefined {
  const oom = outOfMemory(err, format === 'tar.zst' ? 'zstd' : 'gzip');
  if (oom) return oom;
  const code = String((err as { code?: unknown }).code ?? '');
  const message = String((err as Error)?.message ?? err);
  if (code.startsWith('Z_') || code.startsWith('ZSTD_') || /unexpected end of file|incorrect header check|invalid .*(?:block|distance|code)|zlib/i.test(message)) {
    return integrity(`the archive is not a valid ${format === 'tar.zst' ? 'zstd' : 'gzip'} stream (${message}): it is truncated or corrupt`);
  }
  return undefined;
}

// ---------------------------------------------------------------- packing

// The entry headers: src/archive/tar-header.ts (a direct encoder, byte for byte what `tar` writes).
export { headerBlocks };

/** Waits until a read stream has opened its file; false when the file no longer exists. */
async function opened(rs: Readable): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    const onOpen = () => {
      rs.off('error', onError);
      resolve(true);
    };
    const onError = (e: Error) => {
      rs.off('open', onOpen);
      const code = (e as { code?: unknown }).code;
      if (code === 'ENOENT' || code === 2) resolve(false); // 2 = SFTP "no such file"
      else reject(e);
    };
    rs.once('open', onOpen);
    rs.once('error', onError);
  });
}

export function padding(size: number): Buffer | undefined {
  const rem = size % BLOCK;
  return rem === 0 ? undefined : ZERO_BLOCK.subarray(0, BLOCK - rem);
}

const NONE: readonly Buffer[] = [];

/**
 * Gathers small pieces (tar headers, small files) into chunks of about
 * CHUNK bytes, so the compressor gets a few big writes rather than one per
 * 512-byte header; big pieces pass through without a copy.
 */
export class Coalescer {
  private parts: Buffer[] = [];
  private n = 0;
  add(b: Buffer): readonly Buffer[] {
    if (b.length >= BIG_PIECE) return this.n ? [this.take(), b] : [b];
    if (b.length === 0) return NONE;
    this.parts.push(b);
    this.n += b.length;
    return this.n >= CHUNK ? [this.take()] : NONE;
  }
  take(): Buffer {
    const b = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.n);
    this.parts = [];
    this.n = 0;
    return b;
  }
  get pending(): number {
    return this.n;
  }
}

/**
 * Copies everything it is given, at once, into buffers of its own of `size`
 * bytes, given out as each fills (the last one at take()) and handed over
 * (markReleasable): the reader downstream frees each once it has sent it on,
 * and the caller's views are free to die at its next read (a reader that
 * frees what it has read: ByteReader's release). A Coalescer instead passes
 * big pieces on as they are and small ones as views until it concatenates
 * them, which keeps the caller's memory alive downstream.
 */
export class CopyingCoalescer {
  private buf: Buffer;
  private n = 0;
  constructor(private readonly size: number) {
    this.buf = Buffer.allocUnsafeSlow(size);
  }
  add(b: Buffer): readonly Buffer[] {
    let out: Buffer[] | undefined;
    for (let off = 0; off < b.length; ) {
      const k = Math.min(b.length - off, this.size - this.n);
      b.copy(this.buf, this.n, off, off + k);
      this.n += k;
      off += k;
      if (this.n === this.size) (out ??= []).push(this.take());
    }
    return out ?? NONE;
  }
  take(): Buffer {
    const b = this.n === this.size ? this.buf : this.buf.subarray(0, this.n);
    markReleasable(b);
    this.buf = Buffer.allocUnsafeSlow(this.size);
    this.n = 0;
    return b;
  }
  get pending(): number {
    return this.n;
  }
}

/** Counts and hashes bytes flowing through (the compressed archive). */
export class HashTap extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private digest?: string;
  bytes = 0;
  constructor(private readonly onBytes?: (n: number) => void) {
    super({ highWaterMark: CHUNK });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(chunk.length);
    cb(null, chunk);
  }
  /** Hex SHA-256 of everything that passed (final once called). */
  sha256(): string {
    return (this.digest ??= this.hash.digest('hex'));
  }
}

/** The manifest of an archive in `format` holding `entries` (in the order they were written). */
export function buildManifest(entries: ManifestEntry[], format: ArchiveFormat, opts: { createdAt?: string; source?: ArchiveSource }): ArchiveManifest {
  const log = new ManifestLog();
  for (const e of entries) log.add(e);
  return { ...manifestHead(log, format, opts), entries };
}

export interface PackOptions {
  source?: ArchiveSource;
  progress?: ArchiveProgress;
  progressLabel?: string;
  /** Fixed creation time (tests, reproducible archives). */
  createdAt?: string;
  /** Compression; default tar.zst (version 2). */
  format?: ArchiveFormat;
  /** Compression level (`--level`, checked by checkArchiveLevel); default ZSTD_LEVEL or GZIP_LEVEL. */
  level?: number;
  /**
   * No compression: the plain tar stream of the archive `format` describes.
   * Never stored: only a copy packs into it and unpacks it again in the same
   * process (UnpackOptions.uncompressed; src/providers/k3s/driver.ts), where
   * compressing every byte only to decompress it again cost the CPU of both
   * and the memory of two compressors and two decompressors (issue 11:
   * ≤ 100 MiB). Imports of files and streams never take it.
   */
  uncompressed?: boolean;
}

/**
 * Packs the directory `root` (read through `fs`) into `out` as a portable
 * archive. Does not end `out`: the caller owns it (stdout must stay open).
 */
export async function packTree(fs: TreeFs, root: string, out: Writable | NodeJS.WritableStream, opts: PackOptions = {}): Promise<ArchiveResult> {
  const format = opts.format ?? DEFAULT_ARCHIVE_FORMAT;
  // The progress total from a quick size walk (metadata only); the packing
  // walk then goes one entry at a time, so memory never holds the tree.
  if (opts.progress) opts.progress.start(opts.progressLabel ?? 'export', (await measureTree(fs, root)).totalBytes);
  const walker = new TreeWalker(fs, root, DATA_DIR);
  const out_ = out as Writable;
  const sink = opts.uncompressed ? new FrameSink(new PlainFrames(out_)) : frameSink(format, out_, opts.level);
  // Export through ChecksumWriter (the use case's): hash once, here.
  if (out instanceof ChecksumWriter) out.adoptDigest(sink.output);
  const log = new ManifestLog();
  const leftOut = { count: 0, first: [] as string[] };
  const shrank = { count: 0, first: [] as string[] };
  // Files are opened a few entries ahead of the one being packed (each open
  // is a round trip over SSH); whatever is left open on a failure is closed.
  const ahead: Array<{ e: WalkedEntry; file?: Promise<TreeFile | undefined> }> = [];
  let filesAhead = 0;
  let walked = false;
  const fill = async () => {
    // Bounded by entries too: without openFile (or among many directories) nothing counts as a file opened.
    while (!walked && filesAhead < OPENS_AHEAD && ahead.length < ENTRIES_AHEAD) {
      const e = await walker.next();
      if (!e) {
        walked = true;
        break;
      }
      let file: Promise<TreeFile | undefined> | undefined;
      if (e.st.kind === 'file' && fs.openFile) {
        file = fs.openFile(e.abs, e.st);
        file.catch(() => undefined); // awaited when its turn comes
        filesAhead++;
      }
      ahead.push({ e, ...(file ? { file } : {}) });
    }
  };
  try {
    for (;;) {
      await fill();
      const next = ahead.shift();
      if (!next) break;
      const { abs, rel, st } = next.e;
      const mtime = new Date(st.mtimeMs);
      if (st.kind === 'dir') {
        await sink.write(headerBlocks({ path: `${rel}/`, type: 'Directory', mode: st.mode, uid: st.uid, gid: st.gid, size: 0, mtime }));
        log.add({ path: rel, type: 'dir', mode: st.mode, size: 0 });
        continue;
      }
      if (st.kind === 'symlink') {
        const linkpath = await fs.readlink(abs);
        await sink.write(headerBlocks({ path: rel, type: 'SymbolicLink', mode: st.mode, uid: st.uid, gid: st.gid, size: 0, mtime, linkpath }));
        log.add({ path: rel, type: 'symlink', mode: st.mode, size: 0, linkpath });
        continue;
      }
      if (next.file) filesAhead--;
      const sha256 = await packFile(fs, sink, abs, rel, st, opts.progress, next.file, () => {
        shrank.count++;
        if (shrank.first.length < LEFT_OUT_NAMED) shrank.first.push(rel);
      });
      if (sha256) log.add({ path: rel, type: 'file', mode: st.mode, size: st.size, sha256 });
      else {
        leftOut.count++;
        if (leftOut.first.length < LEFT_OUT_NAMED) leftOut.first.push(rel);
      }
    }
    // files gone since the listing are a live disk's, unless the whole tree went (a disk deleted meanwhile)
    if (leftOut.count) await walker.rootStill(new KompoxError('notfound', `${root} is gone: it was deleted or moved while it was read (${leftOut.first[0]} was gone too)`));
    const head = manifestHead(log, format, opts);
    await writeManifest(sink, log.body(head));
    await sink.end();
    const manifest = log.manifest(head);
    opts.progress?.done(countsOf(manifest));
    const special = walker.special;
    return { manifest, sha256: sink.output.sha256(), bytes: sink.output.bytes, format, ...(leftOut.count ? { leftOut } : {}), ...(shrank.count ? { shrank } : {}), ...(special.count ? { special } : {}) };
  } catch (e) {
    sink.abort();
    for (const a of ahead) void a.file?.then((file) => file?.close()).catch(() => undefined);
    throw e;
  } finally {
    walker.close();
  }
}

/** The manifest's fields but its entries, for the entries in `log`. */
export function manifestHead(log: ManifestLog, format: ArchiveFormat, opts: { createdAt?: string; source?: ArchiveSource }): Omit<ArchiveManifest, 'entries'> {
  return {
    format: ARCHIVE_FORMAT,
    version: manifestVersionFor(format),
    createdAt: opts.createdAt ?? nowRfc3339(),
    source: opts.source ?? {},
    fileCount: log.fileCount,
    dirCount: log.dirCount,
    symlinkCount: log.symlinkCount,
    totalBytes: log.totalBytes,
    treeDigest: log.treeDigest(),
  };
}

/** The manifest entry (written piece by piece) and the end-of-archive marker: the tail of the archive. */
export async function writeManifest(sink: FrameSink, body: { length: number; pieces: () => Generator<Buffer> }): Promise<void> {
  await sink.write(headerBlocks({ path: MANIFEST_NAME, type: 'File', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: new Date() }));
  let written = 0;
  for (const piece of body.pieces()) {
    written += piece.length;
    await sink.write([piece]); // copied into the frame before the next piece reuses its buffer
  }
  if (written !== body.length) throw new Error(`the manifest came out ${written} bytes, not ${body.length}`);
  const pad = padding(body.length);
  await sink.write(pad ? [pad, Buffer.alloc(BLOCK * 2)] : [Buffer.alloc(BLOCK * 2)]);
}

/**
 * Packs one regular file: header, content, padding. The header needs the
 * size up front, so a file that changes size while being read
 * (crash-consistent export of a live disk) is cut or zero-padded to the size
 * recorded in its header, and its hash covers what was sent. The file is
 * opened before its header is written: one deleted or replaced since the
 * listing (live disk) is left out instead of being sent as zeros (undefined
 * is returned).
 */
async function packFile(
  fs: TreeFs,
  sink: FrameSink,
  abs: string,
  rel: string,
  st: TreeStat,
  progress?: ArchiveProgress,
  preopened?: Promise<TreeFile | undefined>,
  /** Called when the file ended before its listed size (padded with zeros). */
  shrank?: () => void,
): Promise<string | undefined> {
  const header = () => headerBlocks({ path: rel, type: 'File', mode: st.mode, uid: st.uid, gid: st.gid, size: st.size, mtime: new Date(st.mtimeMs) });
  const h = createHash('sha256');
  let sent = 0;
  const file = await (preopened ?? fs.openFile?.(abs, st));
  if (file) {
    try {
      await sink.write(header());
      // Read straight into the frame being filled: no copy, no new buffer.
      while (sent < st.size) {
        const room = sink.room();
        const n = await file.read(room.buf, room.offset, Math.min(room.length, st.size - sent), sent);
        if (n === 0) break;
        h.update(room.buf.subarray(room.offset, room.offset + n));
        sent += n;
        progress?.advance(n);
        await sink.commit(n);
      }
    } finally {
      await file.close();
    }
  } else if (!fs.openFile) {
    const rs = fs.openRead(abs);
    if (!(await opened(rs))) return undefined;
    await sink.write(header());
    // Stop reading once the recorded size is sent (a growing file).
    for await (const chunk of rs as AsyncIterable<Buffer>) {
      const part = sent + chunk.length > st.size ? chunk.subarray(0, st.size - sent) : chunk;
      if (part.length) {
        h.update(part);
        sent += part.length;
        progress?.advance(part.length);
        await sink.write([part]);
      }
      if (sent >= st.size) break;
    }
    rs.destroy();
  } else {
    return undefined; // deleted or replaced since the listing
  }
  if (sent < st.size) shrank?.();
  while (sent < st.size) {
    const zeros = ZERO_CHUNK.subarray(0, Math.min(ZERO_CHUNK.length, st.size - sent));
    h.update(zeros);
    sent += zeros.length;
    await sink.write([zeros]);
  }
  const pad = padding(st.size);
  if (pad) await sink.write([pad]);
  return h.digest('hex');
}

/** Hash and byte count of a compressed archive as it is written or read (each byte hashed once). */
export class StreamDigest {
  private readonly hash: Hash = createHash('sha256');
  private digest?: string;
  bytes = 0;
  constructor(private readonly onBytes?: (n: number) => void) {}
  update(b: Buffer): void {
    this.hash.update(b);
    this.bytes += b.length;
    this.onBytes?.(b.length);
  }
  /** Hex SHA-256 of everything that passed (final once called). */
  sha256(): string {
    return (this.digest ??= this.hash.digest('hex'));
  }
}

/** Takes filled frames of tar bytes, compresses them and writes the result to the output, in order. */
interface FrameCompression {
  readonly frameSize: number;
  readonly output: StreamDigest;
  /** Takes the frame; calls `release` once its buffer may be reused; resolves when more may be put. */
  put(frame: Buffer, length: number, release: () => void): Promise<void>;
  /** Everything compressed and written. */
  end(): Promise<void>;
  abort(): void;
}

/**
 * Frames of ZSTD_FRAME bytes, each compressed into one zstd frame by one of
 * a few long-lived compressors (./zstd.ts, one per CPU, round robin) on the
 * thread pool while the main thread fills the next frame, written in order.
 */
class ZstdFrames implements FrameCompression {
  private readonly inflight = new InOrder<Buffer[]>();
  private readonly slots: ZstdSlot[];
  private next = 0;
  private readonly pacer = new GarbagePacer();
  constructor(
    private readonly out: Writable,
    level = ZSTD_LEVEL,
    readonly frameSize = ZSTD_FRAME,
    /** Where the written bytes are hashed: its own, or one that has seen the archive's earlier bytes (adoptPackedStream). */
    readonly output = new StreamDigest(),
    jobs = ZSTD_JOBS,
  ) {
    this.slots = Array.from({ length: zstdParallelism(jobs) }, () => new ZstdSlot(level));
  }
  async put(frame: Buffer, length: number, release: () => void): Promise<void> {
    // Round robin: a slot's previous frame has left `inflight` before it is used again.
    await this.drain(this.slots.length - 1);
    const slot = this.slots[this.next]!;
    this.next = (this.next + 1) % this.slots.length;
    const done = slot.compress(frame.subarray(0, length));
    done.then(release, release);
    this.inflight.push(done);
    // The caller fills the next frame while this one (and up to jobs - 1 in all) compress. With one job
    // that is still one: waiting for it here left the main thread and the compressor taking turns (an
    // export through the cluster kept 1.3 of the two CPUs busy).
    await this.drain(Math.max(1, this.slots.length - 1));
  }
  private async drain(max: number): Promise<void> {
    while (this.inflight.size > max) {
      for (const b of await this.inflight.shift()) {
        this.output.update(b);
        await writeAll(this.out, b);
        // The compressed piece is garbage once the output has it.
        this.pacer.note(b.length);
      }
    }
  }
  async end(): Promise<void> {
    try {
      await this.drain(0);
    } finally {
      this.abort();
    }
  }
  abort(): void {
    this.inflight.clear();
    for (const s of this.slots) s.close();
  }
}

/** gzip (version 1 archives): one stream, on the thread pool. */
class GzipFrames implements FrameCompression {
  readonly frameSize = CHUNK;
  readonly output = new StreamDigest();
  private readonly gz: Transform;
  private readonly piping: Promise<void>;
  constructor(out: Writable, level = GZIP_LEVEL) {
    this.gz = createGzip({ level, chunkSize: CHUNK });
    const digest = this.output;
    // zlib hands out a new buffer per output chunk: paced, as ZstdFrames' are
    // (without it they waited for V8's 64 MiB external-memory trigger: 113 MiB peak).
    const pacer = new GarbagePacer();
    const tap = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        digest.update(chunk);
        pacer.note(chunk.length);
        cb(null, chunk);
      },
    });
    this.piping = pipeline(this.gz, tap, out, { end: false });
    this.piping.catch(() => undefined); // awaited by end()
  }
  async put(frame: Buffer, length: number, release: () => void): Promise<void> {
    // The write callback runs once zlib has consumed the bytes.
    await new Promise<void>((resolve, reject) => this.gz.write(frame.subarray(0, length), (err) => (err ? reject(err) : resolve())));
    release();
  }
  async end(): Promise<void> {
    this.gz.end();
    await this.piping;
  }
  abort(): void {
    this.gz.destroy();
  }
}

/**
 * No compression (PackOptions.uncompressed): frames go out as they are.
 * Their buffers are never handed back for reuse: the reader of a
 * PassThrough gets the very buffer written, and holds parts of it after the
 * write has returned, so each frame is a new buffer, counted as garbage by
 * the reading end's pacer once read (decompressed()).
 */
class PlainFrames implements FrameCompression {
  readonly frameSize = CHUNK;
  readonly output = new StreamDigest();
  constructor(private readonly out: Writable) {}
  async put(frame: Buffer, length: number): Promise<void> {
    const b = frame.subarray(0, length);
    this.output.update(b);
    await writeAll(this.out, b);
  }
  async end(): Promise<void> {}
  abort(): void {}
}

/**
 * The tar stream being built, in frames: small pieces (headers, small
 * files) are copied in, file data is read straight into the frame
 * (room/commit); a full frame goes to the compression. Frame buffers are
 * reused, so packing allocates almost nothing per byte.
 */
export class FrameSink {
  private frame: Buffer;
  private filled = 0;
  private readonly spare: Buffer[] = [];
  constructor(private readonly compression: FrameCompression) {
    this.frame = Buffer.allocUnsafe(compression.frameSize);
  }
  get output(): StreamDigest {
    return this.compression.output;
  }
  async write(pieces: readonly Buffer[]): Promise<void> {
    for (const b of pieces) {
      let off = 0;
      while (off < b.length) {
        const n = Math.min(b.length - off, this.frame.length - this.filled);
        b.copy(this.frame, this.filled, off, off + n);
        off += n;
        await this.commit(n);
      }
    }
  }
  /** Free space in the current frame (at least one byte). */
  room(): { buf: Buffer; offset: number; length: number } {
    return { buf: this.frame, offset: this.filled, length: this.frame.length - this.filled };
  }
  /** `n` bytes were put into room(); a full frame is sent on. */
  async commit(n: number): Promise<void> {
    this.filled += n;
    if (this.filled === this.frame.length) await this.seal();
  }
  private async seal(): Promise<void> {
    const frame = this.frame;
    const length = this.filled;
    this.frame = this.spare.pop() ?? Buffer.allocUnsafe(this.compression.frameSize);
    this.filled = 0;
    await this.compression.put(frame, length, () => this.spare.push(frame));
  }
  async end(): Promise<void> {
    if (this.filled) await this.seal();
    await this.compression.end();
  }
  abort(): void {
    this.compression.abort();
  }
}

/**
 * The packing end of an archive being written: tar pieces in, compressed
 * frames out to `out` (tar-stream.ts packs a tar stream from a pod with it).
 */
export function frameSink(format: ArchiveFormat, out: Writable, level?: number, zstdFrame?: number, jobs?: number): FrameSink {
  return new FrameSink(format === 'tar.gz' ? new GzipFrames(out, level) : new ZstdFrames(out, level, zstdFrame, undefined, jobs));
}

/** zstd frames appended to an archive whose earlier bytes `digest` has hashed: the archive's one SHA-256 covers both. */
export function zstdTailSink(out: Writable, digest: StreamDigest, level?: number, jobs?: number): FrameSink {
  return new FrameSink(new ZstdFrames(out, level, undefined, digest, jobs));
}

/** The manifest file's content as every archive holds it. */
export function manifestBody(manifest: ArchiveManifest): Buffer {
  return Buffer.from(JSON.stringify(manifest, null, 2) + '\n', 'utf8');
}

/**
 * A Writable that compresses what it is given into `out` (frames on every
 * CPU, as archives are written; see frameSink), e.g. a plain tar stream on
 * its way over a slow link. Ending it flushes the last frame; `out` is not
 * ended. Destroying it drops what is not written yet. It frees each chunk
 * handed over to it (markReleasable) once copied into a frame.
 */
export function compressingWriter(format: ArchiveFormat, out: Writable, level?: number, zstdFrame?: number, jobs?: number): Writable {
  const sink = frameSink(format, out, level, zstdFrame, jobs);
  return new Writable({
    highWaterMark: CHUNK,
    write(chunk: Buffer, _enc, cb) {
      // copied into a frame: memory handed over to this writer (markReleasable) goes back now
      sink.write([chunk]).then(() => {
        releaseMarked(chunk);
        cb();
      }, cb);
    },
    final(cb) {
      sink.end().then(() => cb(), cb);
    },
    destroy(err, cb) {
      sink.abort();
      cb(err);
    },
  });
}

/** The manifest entry and the end-of-archive marker: the tail of every archive. */
export function manifestBlocks(manifest: ArchiveManifest): Buffer[] {
  const body = manifestBody(manifest);
  const out = headerBlocks({ path: MANIFEST_NAME, type: 'File', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: new Date() });
  out.push(body);
  const pad = padding(body.length);
  if (pad) out.push(pad);
  out.push(Buffer.alloc(BLOCK * 2)); // end-of-archive marker
  return out;
}

// ---------------------------------------------------------------- unpacking

/**
 * Reads exact byte counts from a chunked stream. With `release`, each input
 * chunk it has read to the end is passed to `release` at the next read, for
 * a reader that has done with what the earlier reads returned by then (the
 * views it was given are dead): packTarStream frees the memory of chunks
 * handed over to it (releaseMarked), where otherwise they wait for a GC.
 * While held (hold), nothing is released: a caller gathering several reads
 * keeps them all without copying (TarReader.withParts).
 */
export class ByteReader {
  /** What is left of each chunk not read to its end yet. */
  private bufs: Buffer[] = [];
  /** Each of those chunks whole, as it came (what goes to `release`). */
  private whole: Buffer[] = [];
  private len = 0;
  private done = false;
  /** Chunks read to the end, to go to `release` at the next read. */
  private spent: Buffer[] = [];
  private holds = 0;
  constructor(
    private readonly it: AsyncIterator<Buffer>,
    private readonly release?: (chunk: Buffer) => void,
  ) {}

  /** Whether what the reads return dies at the next read (a caller keeping a view must copy it). */
  get releases(): boolean {
    return this.release !== undefined && this.holds === 0;
  }

  /** Until the matching unhold(), what the reads return stays valid (spent chunks wait). */
  hold(): void {
    this.holds++;
  }

  /** Ends a hold(): the chunks spent meanwhile go at the next read. */
  unhold(): void {
    this.holds--;
  }

  /** The chunks read to the end before this read go to `release`: the caller has done with them. */
  private releaseSpent(): void {
    if (this.spent.length === 0 || this.holds > 0) return;
    for (const b of this.spent) this.release!(b);
    this.spent = [];
  }

  /** The first chunk is read to the end. */
  private shift(): void {
    this.bufs.shift();
    const b = this.whole.shift()!;
    if (this.release) this.spent.push(b);
  }

  private async fill(n: number): Promise<void> {
    while (this.len < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else {
        const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
        if (b.length === 0) continue;
        this.bufs.push(b);
        this.whole.push(b);
        this.len += b.length;
      }
    }
  }

  /** Exactly n bytes, or fewer only at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    this.releaseSpent();
    if (this.len < n) await this.fill(n);
    const first = this.bufs[0];
    if (first && first.length >= n) {
      // The common case: no copy.
      if (first.length === n) this.shift();
      else this.bufs[0] = first.subarray(n);
      this.len -= n;
      return first.subarray(0, n);
    }
    // Spans buffers: copy just the bytes asked for.
    const take = Math.min(n, this.len);
    const out = Buffer.allocUnsafe(take);
    let off = 0;
    while (off < take) {
      const b = this.bufs[0]!;
      const k = Math.min(b.length, take - off);
      b.copy(out, off, 0, k);
      off += k;
      if (k === b.length) this.shift();
      else this.bufs[0] = b.subarray(k);
    }
    this.len -= take;
    return out;
  }

  /** Between 1 and n bytes; empty only at the end of the stream. */
  async readSome(n: number): Promise<Buffer> {
    this.releaseSpent();
    if (this.len === 0) await this.fill(1);
    if (this.len === 0) return Buffer.alloc(0);
    const first = this.bufs[0]!;
    if (first.length <= n) {
      this.shift();
      this.len -= first.length;
      return first;
    }
    this.bufs[0] = first.subarray(n);
    this.len -= n;
    return first.subarray(0, n);
  }
}

export function integrity(message: string, hint = 'The archive is damaged or incomplete; export it again from the source, or check the copy.'): KompoxError {
  return new KompoxError('integrity', message, { hint });
}

/** Validates an archive path: `data` or `data/...`, no absolute paths, no `..`, no empty or `.` segments. */
export function checkEntryPath(raw: string): string {
  const path = raw.replace(/\/+$/, '');
  if (path.includes('\0')) throw integrity(`archive entry ${JSON.stringify(raw)} contains a NUL byte`);
  if (path.startsWith('/')) throw integrity(`archive entry ${JSON.stringify(raw)} is an absolute path; refusing to extract it`);
  const segs = path.split('/');
  if (segs.some((s) => s === '..')) throw integrity(`archive entry ${JSON.stringify(raw)} leaves the disk (contains ".."); refusing to extract it`);
  if (segs.some((s) => s === '' || s === '.')) throw integrity(`archive entry ${JSON.stringify(raw)} has an empty or "." path segment`);
  if (path !== MANIFEST_NAME && segs[0] !== DATA_DIR) {
    throw integrity(`archive entry ${JSON.stringify(raw)} is outside ${DATA_DIR}/; this is not a Kompox archive`);
  }
  return path;
}

/** Writes with backpressure; rejects when the stream errors or closes instead of draining. */
/**
 * Writes `chunk` to `ws`, waiting for 'drain' when it asks to. The stream
 * may still hold `chunk` when this resolves (its write-behind): `written` is
 * called once it no longer does (the write's own callback).
 */
export async function writeAll(ws: Writable | NodeJS.WritableStream, chunk: Buffer, written?: (err?: Error | null) => void): Promise<void> {
  // a destroyed stream (a cancel, or a write that failed after an earlier call
  // returned: a full disk) never emits drain, error or close again: waiting
  // would hang. Its own error says why, where it has one.
  const gone = () => {
    const s = ws as { destroyed?: boolean; errored?: Error | null };
    if (s.errored) throw s.errored;
    if (s.destroyed === true) throw new Error('the output was closed before the archive was complete');
  };
  try {
    gone();
  } catch (e) {
    // the write never starts: its callback must still run (ReleaseAfterWrites counts it in flight)
    written?.(e as Error);
    throw e;
  }
  if (!(written ? ws.write(chunk, written) : ws.write(chunk))) {
    gone();
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        ws.off('drain', onDrain);
        ws.off('error', onError);
        ws.off('close', onClose);
      };
      const onDrain = () => {
        done();
        resolve();
      };
      const onError = (e: Error) => {
        done();
        reject(e);
      };
      const onClose = () => {
        done();
        reject(new Error('the output was closed before the archive was complete'));
      };
      ws.once('drain', onDrain);
      ws.once('error', onError);
      ws.once('close', onClose);
    });
  }
}

async function closeWriter(ws: Writable): Promise<void> {
  // one that failed (an exclusive create) has closed already: no 'close' is coming
  if (ws.closed || ws.destroyed) {
    if (ws.errored) throw ws.errored;
    return;
  }
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    ws.once('close', () => resolve());
    ws.end();
  });
}

/** One tar entry as read: pax values applied, sizes checked. */
export interface TarEntry extends Omit<DecodedHeader, 'linkpath'> {
  /** Raw path (pax path when present); not yet validated. */
  path: string;
  /** A GNU long link target may replace it (tarEntries); '' when the entry has none. */
  linkpath?: string;
  /** The header bytes as read: the pax extended header blocks (if any), then the ustar header. */
  raw: Buffer[];
}

/**
 * Reads a tar stream entry by entry (pax headers applied). The caller reads
 * or skips each entry's body (`body`, `parts`, `skip`, or `reader.readSome`
 * plus `skipPadding`) before asking for the next entry.
 */
export class TarReader {
  /** True once the end-of-archive marker was seen. */
  sawEnd = false;
  /** Global pax values apply to every later entry. */
  private gpax?: Pax;
  /** A GNU long name (link target) came: the next entry's own field is not its name. */
  private longPath = false;
  private longLink = false;
  constructor(
    readonly reader: ByteReader,
    /** The stream in error messages: "the archive", "the node's tar stream". */
    readonly stream = 'the archive',
  ) {}

  async next(): Promise<TarEntry | undefined> {
    /** Pending pax values read directly; null once one needed the `tar` package (see tar-decode.ts). */
    let fast: PaxFields | null | undefined;
    /** The pending pax bodies, for the `tar` package when the direct decoder gives up. */
    const paxBodies: Buffer[] = [];
    const raw: Buffer[] = [];
    for (;;) {
      // kept in `raw` past later reads: a copy where those reads free what came before (ByteReader's release)
      const block = this.keep(await this.reader.read(BLOCK));
      if (block.length === 0) {
        if (raw.length) throw integrity('the archive is truncated (a pax header without its entry)');
        return undefined;
      }
      if (block.length < BLOCK) throw integrity('the archive is truncated (incomplete tar header)');
      if (block.equals(ZERO_BLOCK)) {
        if (raw.length) throw integrity('the archive has a pax header without an entry');
        this.sawEnd = true;
        continue; // end-of-archive blocks (and any record padding)
      }
      if (this.sawEnd) throw integrity('the archive has data after its end-of-archive marker');
      const h = (!this.gpax && fast !== null && decodeHeader(block, fast)) || libraryHeader(block, paxBodies, this.gpax);
      const { size, type } = h;
      if (!Number.isSafeInteger(size) || size < 0) throw integrity('the archive has a tar header with an impossible size');
      if (type === 'ExtendedHeader' || type === 'GlobalExtendedHeader') {
        if (size > 1024 * 1024) throw integrity('the archive has an oversized pax header');
        const body = await this.body(size, 'pax header');
        if (type === 'ExtendedHeader') {
          paxBodies.push(body);
          if (fast !== null) fast = parsePax(body, fast ?? {}) ?? null;
          raw.push(block, body, ...(padding(size) ? [padding(size)!] : []));
        } else {
          const bad = badPaxNames(body);
          if (bad.path ?? bad.linkpath) throw notUtf8Member(this.stream, (bad.path ?? bad.linkpath)!);
          this.gpax = tarLibrary().Pax.parse(body.toString('utf8'), this.gpax, true);
        }
        continue;
      }
      // A name or link target that is not UTF-8 would name something else as text: refused by its bytes.
      // Not a header field a GNU long name replaces (tarEntries checks that one): it holds the
      // name's first 100 bytes, which may end in the middle of a character.
      if (type === 'NextFileHasLongPath') this.longPath = true;
      else if (type === 'NextFileHasLongLinkpath') this.longLink = true;
      else {
        if (h.badPath && !this.longPath) throw notUtf8Member(this.stream, h.badPath);
        if (h.badLinkpath && !this.longLink) throw notUtf8Member(this.stream, h.badLinkpath, h.path);
        this.longPath = this.longLink = false;
      }
      raw.push(block);
      return { path: h.path, type, size, mode: h.mode, uid: h.uid, gid: h.gid, mtimeMs: h.mtimeMs, linkpath: h.linkpath, raw };
    }
  }

  /** `b`, or a copy of it where the reader frees what it read at its next read (ByteReader's release). */
  private keep(b: Buffer): Buffer {
    return this.reader.releases ? Buffer.from(b) : b;
  }

  /** A whole body of `size` bytes (its padding skipped). */
  async body(size: number, what: string): Promise<Buffer> {
    const b = await this.reader.read(size);
    if (b.length < size) throw this.truncated(`in the middle of ${what}`);
    // the padding's read may free the chunk `b` is a view of
    const kept = this.keep(b);
    await this.skipPadding(size, what);
    return kept;
  }

  /** A body as the pieces it arrived in (no copy), padding skipped. */
  async parts(size: number, what: string): Promise<Buffer[]> {
    const out: Buffer[] = [];
    let remain = size;
    while (remain > 0) {
      const chunk = await this.reader.readSome(remain);
      if (chunk.length === 0) throw this.truncated(`in the middle of ${what}`);
      out.push(this.keep(chunk));
      remain -= chunk.length;
    }
    await this.skipPadding(size, what);
    return out;
  }

  /**
   * `use` of a body as the pieces it arrived in (parts), without copying them
   * where the reader frees what it read (they stay valid until `use` has
   * resolved: the reader is held).
   */
  async withParts<T>(size: number, what: string, use: (parts: Buffer[]) => Promise<T>): Promise<T> {
    this.reader.hold();
    try {
      return await use(await this.parts(size, what));
    } finally {
      this.reader.unhold();
    }
  }

  /**
   * A body of `size` bytes in the pieces it arrives in (at most CHUNK each,
   * no copy), each hashed into `hash` first when one is given; its padding
   * is skipped once the last piece has been taken.
   */
  async *pieces(size: number, what: string, hash?: Hash): AsyncGenerator<Buffer, void, undefined> {
    let remain = size;
    while (remain > 0) {
      const chunk = await this.reader.readSome(Math.min(remain, CHUNK));
      if (chunk.length === 0) throw this.truncated(`in the middle of ${what}`);
      hash?.update(chunk);
      remain -= chunk.length;
      yield chunk;
    }
    await this.skipPadding(size, what);
  }

  async skip(size: number, what: string): Promise<void> {
    for await (const _ of this.pieces(size, what));
  }

  async skipPadding(size: number, what: string): Promise<void> {
    const pad = padding(size);
    if (!pad) return;
    const p = await this.reader.read(pad.length);
    if (p.length < pad.length) throw this.truncated(`after ${what}`);
  }

  private truncated(where: string): KompoxError {
    return integrity(`${this.stream} is truncated (${where})`);
  }
}

/**
 * A header decoded by the `tar` package, with the pending pax bodies and any
 * global pax values applied: for what decodeHeader leaves to it.
 */
export function libraryHeader(block: Buffer, paxBodies: readonly Buffer[], gpax: Pax | undefined): DecodedHeader {
  const { Header, Pax } = tarLibrary();
  let pax: Pax | undefined;
  let paxMtimeMs: number | undefined;
  for (const body of paxBodies) {
    const text = body.toString('utf8');
    pax = Pax.parse(text, pax, false);
    paxMtimeMs = exactMtimeMs(text) ?? paxMtimeMs;
  }
  let h: Header;
  try {
    h = new Header(block, 0, pax, gpax);
  } catch (e) {
    // The tar library throws plain errors on fields it cannot decode (e.g. a bad base-256 number).
    throw integrity(`the archive has an unreadable tar header (${(e as Error).message})`);
  }
  if (!h.cksumValid) throw integrity('the archive has a tar header with a bad checksum');
  // Header.decode prepends the ustar prefix even to a pax path; the pax
  // record is authoritative for path, link target and mtime.
  const path = pax?.path ?? h.path ?? '';
  const linkpath = pax?.linkpath ?? h.linkpath ?? '';
  // Bytes that are not UTF-8: in a pax record (the `tar` package drops such a record, its length no longer
  // matching its decoding, and falls back on the header's name), or in a header field it decoded with U+FFFD.
  const bad: { path?: Buffer; linkpath?: Buffer } = {};
  for (const body of paxBodies) Object.assign(bad, badPaxNames(body));
  if (!bad.path && pax?.path === undefined && path.includes('\uFFFD')) {
    const name = field(block, 0, 100);
    const prefix = field(block, 345, 155);
    if (utf8Name(name) === undefined || utf8Name(prefix) === undefined) bad.path = path.length > name.toString('utf8').length && prefix.length ? Buffer.concat([prefix, Buffer.from('/'), name]) : Buffer.from(name);
  }
  if (!bad.linkpath && pax?.linkpath === undefined && linkpath.includes('\uFFFD')) {
    const raw = field(block, 157, 100);
    if (utf8Name(raw) === undefined) bad.linkpath = Buffer.from(raw);
  }
  return {
    path,
    type: h.type,
    size: h.size ?? 0,
    mode: (h.mode ?? 0o644) & 0o7777,
    uid: h.uid ?? 0,
    gid: h.gid ?? 0,
    mtimeMs: paxMtimeMs ?? (pax?.mtime ?? h.mtime)?.getTime() ?? Date.now(),
    linkpath,
    ...(bad.path ? { badPath: bad.path } : {}),
    ...(bad.linkpath ? { badLinkpath: bad.linkpath } : {}),
  };
}

/**
 * The bytes of the `path` and `linkpath` records of a pax body that are not
 * UTF-8 (the last record of each key counts), read loosely: records split at
 * newlines, as the `tar` package reads them.
 */
function badPaxNames(body: Buffer): { path?: Buffer; linkpath?: Buffer } {
  const out: { path?: Buffer; linkpath?: Buffer } = {};
  // latin1: one character per byte, so the value's bytes come back exactly
  for (const line of body.toString('latin1').split('\n')) {
    const m = /^[0-9]+ (path|linkpath)=([\s\S]*)$/.exec(line);
    if (!m) continue;
    const key = m[1] as 'path' | 'linkpath';
    const raw = Buffer.from(m[2]!, 'latin1');
    if (utf8Name(raw) === undefined) out[key] = raw;
    else delete out[key];
  }
  return out;
}

export function parseManifest(body: Buffer): ArchiveManifest {
  try {
    return JSON.parse(body.toString('utf8')) as ArchiveManifest;
  } catch {
    throw integrity(`${MANIFEST_NAME} in the archive is not valid JSON`);
  }
}

export interface UnpackOptions {
  /** Expected SHA-256 (hex) of the compressed archive; a mismatch fails the import. */
  expectedSha256?: string;
  progress?: ArchiveProgress;
  progressLabel?: string;
  /** Total compressed bytes when known (progress). */
  totalBytes?: number;
  /** Where what waits for the manifest spills, and how much stays in memory (tests force spilling). */
  spool?: EntrySorterOptions;
  /** The input is packTree's uncompressed stream in this process (a copy: see PackOptions.uncompressed); otherwise the format is read from its first bytes. */
  uncompressed?: boolean;
}

/** What verification needs of an extracted (or passed-through) entry. */
export interface Seen {
  type: EntryKind;
  mode: number;
  size: number;
  sha256?: string;
  linkpath?: string;
}

export function isFileType(type: string): boolean {
  return type === 'File' || type === 'OldFile' || type === 'ContiguousFile';
}

/** Errors of the filesystem's state, not of the archive: a creation that fails with one is never "an entry twice". */
const FILESYSTEM_STATE: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EACCES', 'EPERM', 'ENAMETOOLONG', 'EFBIG', 'EMFILE', 'ENFILE', 'ENOMEM']);

/**
 * Extracts a portable archive (either format) from `input` into `destDir`
 * (which must not exist; its parent must), verifying every file against the
 * manifest and the whole stream against `expectedSha256`. On failure
 * `destDir` may hold a partial tree: the caller deletes it. `destDir`
 * becomes the disk's data dir.
 *
 * Memory does not grow with the file count (issue 11): what was extracted
 * waits for the manifest (last) in an ArchiveCheck (sorted, spilled), a
 * parent is checked against the directories still open (OpenDirs) or, in an
 * order that dropped it, on the filesystem, and directory metadata waits in
 * a sorter too. `destDir` is fresh and only this import writes into it, so
 * whatever is found there was created by this import.
 */
export async function unpackArchive(fs: TreeFs, input: Readable | NodeJS.ReadableStream, destDir: string, opts: UnpackOptions = {}): Promise<ArchiveResult> {
  opts.progress?.start(opts.progressLabel ?? 'import', opts.totalBytes);
  const format = opts.uncompressed ? 'none' : await sniffFormat(input as Readable);
  const tap = new StreamDigest((n) => opts.progress?.advance(n));
  const check = new ArchiveCheck(opts.spool);
  // Directories' metadata is set last, deepest first (see setDirMeta).
  const dirs = new EntrySorter(opts.spool);
  const open = new OpenDirs();
  let head: Record<string, unknown> | undefined;
  let rootMade = false;

  const setMeta = async (abs: string, m: EntryMeta, kind: EntryKind): Promise<void> => {
    if (fs.canChown) await fs.lchown(abs, m.uid, m.gid);
    if (kind !== 'symlink') await fs.chmod(abs, m.mode);
    await fs.setTimes(abs, m.mtimeMs, kind);
  };
  const absOf = (path: string): string => (path === DATA_DIR ? destDir : `${destDir}/${path.slice(DATA_DIR.length + 1)}`);
  /**
   * A creation that failed: an entry twice when something is there already
   * (only this import writes here), else the error. Not when the error is the
   * filesystem's own (full, read-only, an I/O error...): a file whose data
   * could not all be written is there too, and "twice" would have the user
   * throw a good archive away.
   */
  const created = async <T>(path: string, abs: string, make: () => Promise<T>): Promise<T> => {
    try {
      return await make();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException | undefined)?.code;
      if (code !== undefined && FILESYSTEM_STATE.has(code)) throw err;
      if (path !== DATA_DIR && (await fs.lstat(abs).catch(() => undefined))) throw integrity(`the archive contains ${path} twice`);
      throw err;
    }
  };
  /**
   * `parent` is a directory this import created, checked on the filesystem
   * from the deepest kept directory above it down (lstat never follows the
   * last component, and every component above is one checked already).
   */
  const parentOnDisk = async (parent: string): Promise<boolean> => {
    const chain = open.chain;
    let base = -1;
    for (let i = chain.length - 1; i >= 0; i--) {
      if (within(chain[i]!, parent) && parent.charCodeAt(chain[i]!.length) === 0x2f) {
        base = i;
        break;
      }
    }
    if (base < 0) return false;
    open.truncate(base + 1);
    for (let at = chain[base]!.length; at < parent.length; ) {
      const end = parent.indexOf('/', at + 1);
      const dir = end < 0 ? parent : parent.slice(0, end);
      if ((await fs.lstat(absOf(dir)))?.kind !== 'dir') return false;
      open.push(dir);
      at = dir.length;
    }
    return true;
  };

  const consume = async (source: AsyncIterable<Buffer>, spent: (chunk: Buffer) => void): Promise<void> => {
    // Each chunk read to the end is freed once the writes of its views are done (the files' write-behind).
    const writes = new ReleaseAfterWrites(spent);
    const tr = new TarReader(new ByteReader(source[Symbol.asyncIterator](), writes.spent));
    for (;;) {
      const e = await tr.next();
      if (!e) break;
      if (head) throw integrity(`the archive has entries after ${MANIFEST_NAME}; this is not a Kompox archive`);
      const path = checkEntryPath(e.path);
      const { type, size } = e;
      if (path === MANIFEST_NAME) {
        head = await check.readManifest(tr, e);
        continue;
      }
      const abs = absOf(path);
      if (pathTooLongFor(abs)) throw pathTooLong(abs, 'extracted');
      if (path !== DATA_DIR) {
        // The parent must be a directory this archive created: never write
        // through a symlink or into something that is not ours.
        const parent = path.slice(0, path.lastIndexOf('/'));
        if (!open.has(parent, path) && !(await parentOnDisk(parent))) throw integrity(`archive entry ${path} comes before its directory ${parent} (or its parent is not a directory)`);
      } else if (type !== 'Directory') {
        throw integrity(`archive entry ${DATA_DIR} is not a directory`);
      } else if (rootMade) throw integrity(`the archive contains ${path} twice`);
      const meta: EntryMeta = { mode: e.mode, uid: e.uid, gid: e.gid, mtimeMs: e.mtimeMs };
      if (type === 'Directory') {
        if (size !== 0) await tr.skip(size, path);
        await created(path, abs, () => fs.mkdir(abs, 0o700));
        rootMade = true;
        check.add({ path, type: 'dir', mode: e.mode, size: 0 });
        open.push(path);
        dirs.add(dirEntry(path, meta));
      } else if (type === 'SymbolicLink') {
        if (size !== 0) await tr.skip(size, path);
        const linkpath = e.linkpath ?? '';
        if (!linkpath) throw integrity(`symlink ${path} in the archive has no target`);
        await created(path, abs, () => fs.symlink(linkpath, abs));
        await setMeta(abs, meta, 'symlink');
        check.add({ path, type: 'symlink', mode: e.mode, size: 0, linkpath });
      } else if (isFileType(type)) {
        const hash = createHash('sha256');
        if (fs.createFile && size <= SMALL_FILE) {
          await tr.withParts(size, path, async (parts) => {
            for (const p of parts) hash.update(p);
            await created(path, abs, () => fs.createFile!(abs, parts, meta));
          });
        } else {
          const ws = fs.openWrite(abs, 0o600);
          // a failed write (a full disk) reaches writeAll or closeWriter as the stream's error, never as a stray event
          ws.on('error', () => undefined);
          try {
            for await (const chunk of tr.pieces(size, path, hash)) await writeAll(ws, chunk, writes.writing(chunk));
          } catch (err) {
            throw twiceIfExists(err, path);
          } finally {
            await closeWriter(ws).catch((err: unknown) => {
              throw twiceIfExists(err, path);
            });
          }
          await setMeta(abs, meta, 'file');
        }
        check.add({ path, type: 'file', mode: e.mode, size, sha256: hash.digest('hex') });
      } else {
        throw integrity(`archive entry ${path} has type ${type}, which Kompox archives never contain (only files, directories and symlinks)`);
      }
    }
    if (!head) throw integrity(`the archive ends without ${MANIFEST_NAME}: it is truncated or not a Kompox archive`);
    if (!tr.sawEnd) throw integrity('the archive is truncated (no end-of-archive marker)');
  };

  try {
    await runReader(input as Readable, tap, format, consume, true);
    const sha256 = tap.sha256();
    checkExpectedSha256(sha256, opts.expectedSha256);
    const manifest = check.finish(head!);
    opts.progress?.done(countsOf(manifest));
    await setDirMeta(dirs, absOf, setMeta);
    return { manifest, sha256, bytes: tap.bytes, format: format === 'none' ? manifestFormat(manifest) : format };
  } catch (e) {
    check.close();
    throw e;
  } finally {
    dirs.close();
  }
}

/**
 * The chunks a ByteReader has read to the end (`spent`), passed on to `free`
 * only once no write of a view of them is still in flight: a file's write
 * stream keeps what it was given for a while after writeAll has returned
 * (LocalHostFs: 4 MiB of write-behind), and freeing a chunk under it would
 * write an empty buffer in its place.
 */
export class ReleaseAfterWrites {
  /** Writes in flight per memory (views of one chunk share its ArrayBuffer). */
  private readonly pending = new Map<ArrayBufferLike, number>();
  /** Spent chunks whose memory still has writes in flight. */
  private readonly waiting = new Map<ArrayBufferLike, Buffer[]>();
  /**
   * A write has failed: from then on nothing is freed (the garbage collector
   * takes it). A stream that fails calls back every write it holds with the
   * error at once, while it may still be sending one of them (ssh2's SFTP
   * stream sends a big chunk in parts): freeing it then would make the stream
   * throw and hide the real error.
   */
  private failed = false;
  constructor(private readonly free: (chunk: Buffer) => void) {}

  /** A write of `view` starts: the callback to give the write (called once it is done, or has failed). */
  writing(view: Buffer): (err?: Error | null) => void {
    const ab = view.buffer;
    this.pending.set(ab, (this.pending.get(ab) ?? 0) + 1);
    let called = false;
    return (err) => {
      if (called) return;
      called = true;
      if (err) this.failed = true;
      if (this.failed) {
        this.pending.clear();
        this.waiting.clear();
        return;
      }
      const n = this.pending.get(ab)! - 1;
      if (n > 0) {
        this.pending.set(ab, n);
        return;
      }
      this.pending.delete(ab);
      const chunks = this.waiting.get(ab);
      if (!chunks) return;
      this.waiting.delete(ab);
      for (const c of chunks) this.free(c);
    };
  }

  /** The reader has done with `chunk` (ByteReader's release). */
  readonly spent = (chunk: Buffer): void => {
    if (this.failed) return;
    const ab = chunk.buffer;
    if (!this.pending.has(ab)) return this.free(chunk);
    const chunks = this.waiting.get(ab);
    if (chunks) chunks.push(chunk);
    else this.waiting.set(ab, [chunk]);
  };
}

/** An exclusive create that found something there: in a fresh directory only this import writes into, an entry twice. */
function twiceIfExists(err: unknown, path: string): unknown {
  return err instanceof Error && (err as { code?: unknown }).code === 'EEXIST' ? integrity(`the archive contains ${path} twice`) : err;
}

/** A directory's metadata as an EntrySorter holds it (owner and mtime in the one free-form string). */
function dirEntry(path: string, m: EntryMeta): ManifestEntry {
  return { path, type: 'dir', mode: m.mode, size: 0, linkpath: `${m.uid} ${m.gid} ${m.mtimeMs}` };
}

/**
 * Directory metadata once everything is written and verified, each
 * directory after everything inside it (its mode may forbid writing there,
 * and creating entries changes its mtime): in path order, a directory is
 * done when the next one is not inside it (a stack as deep as the tree).
 */
async function setDirMeta(dirs: EntrySorter, absOf: (path: string) => string, setMeta: (abs: string, m: EntryMeta, kind: EntryKind) => Promise<void>): Promise<void> {
  const stack: ManifestEntry[] = [];
  const done = async (d: ManifestEntry): Promise<void> => {
    const [uid, gid, mtimeMs] = d.linkpath!.split(' ').map(Number) as [number, number, number];
    await setMeta(absOf(d.path), { mode: d.mode, uid, gid, mtimeMs }, 'dir');
  };
  for (const d of dirs.sorted((path) => integrity(`the archive contains ${path} twice`))) {
    while (stack.length && !within(stack[stack.length - 1]!.path, d.path)) await done(stack.pop()!);
    stack.push(d);
  }
  while (stack.length) await done(stack.pop()!);
}

/** The format an uncompressed stream was packed for, by its manifest's version (manifestVersionFor backwards). */
function manifestFormat(m: ArchiveManifest): ArchiveFormat {
  return m.version === 1 ? 'tar.gz' : 'tar.zst';
}

/**
 * input → (hash) → decompressor → consume, with errors of the compressed
 * stream turned into integrity errors. A consumer that takes `spent` hands it
 * every chunk of the stream once nothing reads or writes any view of it any
 * more (ByteReader's release, with any write still in flight waited for):
 * the chunk's memory goes back at once where it is a whole buffer, or the
 * last piece of one, of the decompressor's (freeSpent), and is counted as
 * garbage otherwise. A
 * local import of the benchmark disk paced a full GC for every few MiB of
 * the 1 GB it decompressed (a quarter of its CPU went to marking).
 */
async function runReader(
  input: Readable,
  tap: StreamDigest,
  format: ArchiveFormat | 'none',
  consume: (src: AsyncIterable<Buffer>, spent: (chunk: Buffer) => void) => Promise<void>,
  consumerFrees = false,
): Promise<void> {
  const pacer = new GarbagePacer();
  const spent = (chunk: Buffer) => void (freeSpent(chunk) || pacer.note(chunk.length));
  // A file's read stream gives each read its own buffer (fs.ReadStream: allocUnsafeSlow, or a copy of a short read).
  const src = decompressed(input, format, (chunk) => tap.update(chunk), pacer, consumerFrees, consumerFrees && input instanceof ReadStream);
  try {
    await consume(src, spent);
  } catch (err) {
    input.destroy?.();
    if (err instanceof KompoxError) throw err;
    throw (format !== 'none' && compressionError(err, format)) || err;
  } finally {
    await src.return(undefined).catch(() => undefined);
  }
}

export function checkExpectedSha256(sha256: string, expected: string | undefined): void {
  if (expected && expected.toLowerCase() !== sha256) {
    throw integrity(
      `the archive's SHA-256 is ${sha256}, expected ${expected.toLowerCase()}`,
      'The archive was changed or damaged after export, or the checksum belongs to another archive.',
    );
  }
}

/** The pax mtime in whole milliseconds, read from the text (Date math on the float loses the last digit). */
function exactMtimeMs(paxText: string): number | undefined {
  const m = /(?:^|\n)\d+ mtime=(-?\d+)(?:\.(\d+))?\n/.exec(paxText);
  if (!m) return undefined;
  const frac = (m[2] ?? '').padEnd(3, '0').slice(0, 3);
  return Number(m[1]) * 1000 + (m[1]!.startsWith('-') ? -1 : 1) * Number(frac);
}

export function verifyManifest(m: ArchiveManifest, seen: Map<string, Seen>): void {
  checkManifestHead(m);
  if (!Array.isArray(m.entries)) throw integrity(`${MANIFEST_NAME} is not a Kompox archive manifest`);
  const listed = new Map<string, ManifestEntry>();
  for (const e of m.entries) {
    if (!e || typeof e !== 'object' || typeof e.path !== 'string') throw integrity(`${MANIFEST_NAME} has a malformed entry`);
    listed.set(e.path, e);
  }
  for (const [path, got] of seen) {
    const want = listed.get(path);
    if (!want) throw integrity(`archive entry ${path} is not listed in the manifest`);
    compareEntry(path, got, want);
  }
  for (const path of listed.keys()) {
    if (!seen.has(path)) throw integrity(`the manifest lists ${path} but the archive does not contain it: the archive is incomplete`);
  }
  const digest = treeDigestOf([...seen].map(([path, e]) => ({ path, ...e })));
  if (digest !== m.treeDigest) throw integrity(`the extracted tree's digest ${digest} differs from the manifest's ${m.treeDigest}`);
  const got: TreeSize = { fileCount: 0, dirCount: 0, symlinkCount: 0, totalBytes: 0 };
  for (const e of seen.values()) countEntry(got, e);
  checkManifestTotals(m, got);
}

/** Adds entry `e` to the totals `t` (as a manifest counts them). */
export function countEntry(t: TreeSize, e: { type: EntryKind; size: number }): void {
  if (e.type === 'file') {
    t.fileCount++;
    t.totalBytes += e.size;
  } else if (e.type === 'dir') t.dirCount++;
  else t.symlinkCount++;
}

/**
 * The totals a manifest records are those of the tree extracted (`got`,
 * every entry of which was checked against the listing): every Kompox has
 * written them from its entries, so other totals are not the archive's
 * (they would be reported, and size the disk made).
 */
export function checkManifestTotals(m: Partial<ArchiveManifest>, got: TreeSize): void {
  const totals = [
    ['fileCount', 'files'],
    ['dirCount', 'directories'],
    ['symlinkCount', 'symlinks'],
    ['totalBytes', 'bytes in files'],
  ] as const;
  for (const [k, what] of totals) {
    if (m[k] !== got[k]) throw integrity(`the manifest says the archive holds ${JSON.stringify(m[k]) ?? 'no count of'} ${what}, but it holds ${got[k]}`);
  }
}

/** The manifest's own fields say it is one this Kompox reads. */
export function checkManifestHead(m: Partial<ArchiveManifest>): void {
  if (!m || typeof m !== 'object' || m.format !== ARCHIVE_FORMAT || typeof m.version !== 'number') {
    throw integrity(`${MANIFEST_NAME} is not a Kompox archive manifest`);
  }
  if (m.version > ARCHIVE_VERSION) {
    throw new KompoxError('integrity', `the archive has format version ${m.version}; this Kompox reads versions up to ${ARCHIVE_VERSION}`, {
      hint: 'Upgrade kompoxops to import it.',
    });
  }
}

/** An extracted entry is what the manifest lists for its path. */
export function compareEntry(path: string, got: Seen, want: ManifestEntry): void {
  if (want.type !== got.type) throw integrity(`archive entry ${path} is a ${got.type} but the manifest says ${want.type}`);
  if (got.type === 'file') {
    if (want.size !== got.size) throw integrity(`file ${path} has ${got.size} bytes but the manifest says ${want.size}`);
    if (want.sha256 !== got.sha256) throw integrity(`file ${path} fails its SHA-256 check (got ${got.sha256}, manifest ${want.sha256})`);
  }
  if (got.type === 'symlink' && want.linkpath !== got.linkpath) throw integrity(`symlink ${path} points to ${got.linkpath} but the manifest says ${want.linkpath}`);
}

/**
 * Reads only the manifest of an archive (either format; the stream is read
 * to its end); no files are written. The entries are not held as objects:
 * they go to a compact log (spilled past a few MiB) and are decoded when the
 * returned manifest's `entries` are read.
 */
export async function readManifest(input: Readable | NodeJS.ReadableStream): Promise<ArchiveManifest> {
  const format = await sniffFormat(input as Readable);
  let head: Record<string, unknown> | undefined;
  const log = new ManifestLog();
  try {
    await runReader(input as Readable, new StreamDigest(), format, async (source) => {
      const tr = new TarReader(new ByteReader(source[Symbol.asyncIterator]()));
      for (let e = await tr.next(); e; e = await tr.next()) {
        if (e.path !== MANIFEST_NAME) {
          await tr.skip(e.size, e.path);
          continue;
        }
        if (e.type !== 'File' && e.type !== 'OldFile') throw integrity(`${MANIFEST_NAME} in the archive is not a regular file`);
        const ms = new ManifestStream((entry) => {
          try {
            log.add(entry);
          } catch {
            throw integrity(`${MANIFEST_NAME} has a malformed entry`);
          }
        });
        for (let remain = e.size; remain > 0; ) {
          const chunk = await tr.reader.readSome(Math.min(remain, CHUNK));
          if (chunk.length === 0) throw integrity('the archive is truncated (in the middle of the manifest)');
          remain -= chunk.length;
          ms.push(chunk);
        }
        await tr.skipPadding(e.size, 'the manifest');
        ms.end();
        head = ms.head;
      }
    });
  } catch (e) {
    log.close();
    throw e;
  }
  if (!head) throw integrity(`the archive has no ${MANIFEST_NAME}`);
  return loggedManifest(head, log);
}

export interface TranscodeOptions {
  format: ArchiveFormat;
  /** Expected SHA-256 (hex) of the input archive; a mismatch fails. */
  expectedSha256?: string;
  progress?: ArchiveProgress;
  progressLabel?: string;
  /** Size of the input when known (progress). */
  totalBytes?: number;
  level?: number;
  /** Where what waits for the manifest spills (see UnpackOptions.spool). */
  spool?: EntrySorterOptions;
}

/**
 * Re-compresses an archive into another format without extracting it: the
 * tar entries pass through as they are, and the manifest is written again
 * with the version the target format carries (gzip archives say 1, for
 * Kompox releases that read only version 1). Every file, the tree digest
 * and, when given, the input's SHA-256 are verified on the way; the output
 * is complete only when this resolves. Does not end `out`.
 */
export async function transcodeArchive(input: Readable | NodeJS.ReadableStream, out: Writable | NodeJS.WritableStream, opts: TranscodeOptions): Promise<ArchiveResult> {
  opts.progress?.start(opts.progressLabel ?? 'export', opts.totalBytes);
  const inFormat = await sniffFormat(input as Readable);
  const inTap = new StreamDigest((n) => opts.progress?.advance(n));
  const sink = frameSink(opts.format, out as Writable, opts.level);
  if (out instanceof ChecksumWriter) out.adoptDigest(sink.output);
  // The entries wait for the manifest (last) sorted and spilled; the manifest written is the verified entries' (ArchiveCheck.log).
  const check = new ArchiveCheck(opts.spool);
  let head: Record<string, unknown> | undefined;
  try {
    await runReader(input as Readable, inTap, inFormat, async (source) => {
      const tr = new TarReader(new ByteReader(source[Symbol.asyncIterator]()));
      for (let e = await tr.next(); e; e = await tr.next()) {
        if (head) throw integrity(`the archive has entries after ${MANIFEST_NAME}; this is not a Kompox archive`);
        const path = checkEntryPath(e.path);
        if (path === MANIFEST_NAME) {
          head = await check.readManifest(tr, e);
          continue;
        }
        await sink.write(e.raw);
        if (e.type === 'Directory' || e.type === 'SymbolicLink') {
          if (e.size !== 0) throw integrity(`archive entry ${path} has a body; Kompox archives never write one`);
          check.add(e.type === 'Directory' ? { path, type: 'dir', mode: e.mode, size: 0 } : { path, type: 'symlink', mode: e.mode, size: 0, linkpath: e.linkpath ?? '' });
          continue;
        }
        if (!isFileType(e.type)) throw integrity(`archive entry ${path} has type ${e.type}, which Kompox archives never contain (only files, directories and symlinks)`);
        const hash = createHash('sha256');
        for await (const chunk of tr.pieces(e.size, path, hash)) await sink.write([chunk]);
        const pad = padding(e.size);
        if (pad) await sink.write([pad]);
        check.add({ path, type: 'file', mode: e.mode, size: e.size, sha256: hash.digest('hex') });
      }
      if (!head) throw integrity(`the archive ends without ${MANIFEST_NAME}: it is truncated or not a Kompox archive`);
      if (!tr.sawEnd) throw integrity('the archive is truncated (no end-of-archive marker)');
    });
    const verified = check.finish(head!);
    checkExpectedSha256(inTap.sha256(), opts.expectedSha256);
    const written = { ...head!, version: manifestVersionFor(opts.format) } as unknown as Omit<ArchiveManifest, 'entries'>;
    await writeManifest(sink, check.log.body(written));
    await sink.end();
    opts.progress?.done(countsOf(verified));
    return { manifest: loggedManifest(written as unknown as Record<string, unknown>, check.log), sha256: sink.output.sha256(), bytes: sink.output.bytes, format: opts.format };
  } catch (e) {
    sink.abort();
    check.close();
    throw e;
  }
}

/**
 * A writable that forwards to `out` (with backpressure) and hashes what
 * passes: the SHA-256 of an export as the receiver gets it. Ending it does
 * not end `out`. When packTree or transcodeArchive write into it they hash
 * the same bytes already, and it takes their digest instead (adoptDigest):
 * each byte is hashed once.
 */
export class ChecksumWriter extends Writable {
  private hash?: Hash = createHash('sha256');
  private adopted?: { sha256(): string };
  private digest?: string;
  bytes = 0;
  constructor(private readonly out: NodeJS.WritableStream) {
    super({ highWaterMark: CHUNK });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.hash?.update(chunk);
    this.bytes += chunk.length;
    // A closed pipe (e.g. `| head`) errors instead of draining: fail, don't hang.
    writeAll(this.out, chunk).then(() => cb(), cb);
  }
  /** Takes the digest of a producer that hashes exactly what it writes here (only before the first write). */
  adoptDigest(producer: { sha256(): string }): void {
    if (this.bytes > 0 || this.adopted) return;
    this.adopted = producer;
    this.hash = undefined;
  }
  /** Hex SHA-256 of everything written (call at the end). */
  sha256(): string {
    return (this.digest ??= this.adopted ? this.adopted.sha256() : this.hash!.digest('hex'));
  }
}
