// Between the portable archive and plain tar streams: the data path through
// a helper pod (src/usecases/transfer.ts), where the pod has a `tar` (busybox
// or GNU) but neither zstd nor Kompox. Compression, checksums and the
// manifest stay on Kompox's side:
//   - packTarStream: the tar a pod writes (`tar -c -f - -C DIR .`) becomes a
//     portable archive, with the manifest Kompox computes from what passes
//     (exactly as packTree would from the same files);
//   - archiveToTar: a portable archive (either format) becomes the plain tar
//     a pod extracts (`tar -x -f - -C DIR`), every file and the manifest
//     verified on the way, exactly as an import on the node verifies them.
// Both read and write tar streams of either dialect: pax (Kompox, GNU tar
// --format=posix) and GNU long names (`././@LongLink`, what busybox and GNU
// tar write by default); both handle entries the archive format does not
// hold: hard links become files (their content fetched again), devices,
// FIFOs and sockets are left out (as packTree leaves them out).
import { createHash } from 'node:crypto';
import { ReadStream } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KompoxError } from '../domain/errors.js';
import {
  ByteReader,
  CHUNK,
  ChecksumWriter,
  Coalescer,
  CopyingCoalescer,
  StreamDigest,
  DATA_DIR,
  DEFAULT_ARCHIVE_FORMAT,
  HashTap,
  MANIFEST_NAME,
  TarReader,
  checkEntryPath,
  checkExpectedSha256,
  compressionError,
  countsOf,
  decompressor,
  frameSink,
  headerBlocks,
  integrity,
  isFileType,
  manifestHead,
  padding,
  sniffFormat,
  writeAll,
  writeManifest,
  zstdTailSink,
  type ArchiveFormat,
  type ArchiveManifest,
  type ArchiveProgress,
  type ArchiveResult,
  type ArchiveSource,
  type ManifestEntry,
  type TarEntry,
} from './archive.js';
import { ArchiveCheck, OpenDirs } from './archive-check.js';
import { EntrySorter, type EntrySorterOptions } from './entry-sort.js';
import { ManifestLog } from './manifest-log.js';
import { GarbagePacer, freeSpent, releaseBuffer, releaseMarked } from './memory.js';
import { notUtf8Member, utf8Name } from './utf8-names.js';
import { LINK_ZSTD_JOBS, ZSTD_LEVEL, decompressZstd } from './zstd.js';
/** The jobs of the cluster's exec streams (src/usecases/transfer.ts loads this module when it needs it). */
export { CLUSTER_ZSTD_JOBS } from './zstd.js';

/** A tar record: writers pad their output to a multiple of it (blocking factor 20). */
const RECORD = 10240;
const BLOCK = 512;
const ZEROS = Buffer.alloc(64 * 1024);
/** `lost+found` of a fresh ext4/xfs filesystem: metadata of the filesystem, not the app's data. */
export const LOST_FOUND = 'lost+found';

/** Entries of a tar stream with GNU long names/link targets applied (`L`/`K` pseudo-entries). */
async function* tarEntries(tr: TarReader): AsyncGenerator<TarEntry> {
  let longPath: string | undefined;
  let longLink: string | undefined;
  let badLink: Buffer | undefined;
  for (let e = await tr.next(); e; e = await tr.next()) {
    if (e.type === 'NextFileHasLongPath' || e.type === 'NextFileHasLongLinkpath') {
      if (e.size > 64 * 1024) throw integrity('the tar stream has an oversized GNU long name');
      const body = await tr.body(e.size, 'a GNU long name');
      let end = body.length;
      while (end > 0 && body[end - 1] === 0) end--;
      const raw = body.subarray(0, end);
      // bytes that are not UTF-8 would name another file (or point the link elsewhere) as text: refused by its bytes
      const name = utf8Name(raw);
      if (e.type === 'NextFileHasLongPath') {
        if (name === undefined) throw notUtf8Member(tr.stream, Buffer.from(raw));
        longPath = name;
      } else {
        longLink = name ?? raw.toString('utf8');
        badLink = name === undefined ? Buffer.from(raw) : undefined;
      }
      continue;
    }
    // the link's own name first, to name it in the refusal
    if (badLink) throw notUtf8Member(tr.stream, badLink, longPath ?? e.path);
    if (longPath !== undefined) e.path = longPath;
    if (longLink !== undefined) e.linkpath = longLink;
    longPath = longLink = undefined;
    yield e;
  }
}

/** `.`, `./`, `./x`, `x` (a tar of `-C DIR .`) → `data`, `data/x`, validated. */
export function archivePathOf(tarPath: string): string {
  let p = tarPath.replace(/\/+$/, '');
  while (p.startsWith('./')) p = p.slice(2);
  if (p === '.' || p === '') return DATA_DIR;
  return checkEntryPath(`${DATA_DIR}/${p}`);
}

export interface PackTarOptions {
  source?: ArchiveSource;
  format?: ArchiveFormat;
  level?: number;
  progress?: ArchiveProgress;
  progressLabel?: string;
  /**
   * The file bytes the stream will hold (progress): a number when known up
   * front, or a promise of it from a size walk running alongside the tar
   * (given to `progress.total` when it arrives, unless the packing ended
   * first; undefined or a rejection is no total, never a failure).
   */
  totalBytes?: number | PromiseLike<number | undefined>;
  createdAt?: string;
  /**
   * The content of a file the stream holds as a hard link to it (tar stores
   * the second name of a file as a link): `path` as the tar names it, e.g.
   * `./a/b`; `link`: the owner in the link's header, the target's own (one
   * inode), which a file opened by the name must still have. Without it a
   * hard link fails the export; its failure is the link's refusal.
   */
  readLinkTarget?(path: string, link: { uid: number; gid: number }): Promise<Readable>;
  /**
   * The current size of such a file (a stat on the host), undefined when it
   * is no longer a regular file. The header of the link's copy needs the size
   * before its content; without this the content is read once more to count it.
   */
  linkTargetSize?(path: string): Promise<number | undefined>;
  /** Leave out an empty `lost+found` directory at the top (a fresh filesystem's). Default true. */
  skipLostFound?: boolean;
  /** Memory of the entry lists before they spill to temporary files (tests force spilling with a small one). */
  spool?: EntrySorterOptions;
  /** Frames compressed at once (zstdParallelism); default LINK_ZSTD_JOBS. */
  jobs?: number;
  /**
   * Settles once the command that wrote `input` has ended: rejects when it
   * failed. Awaited before the manifest is written: a tar that could not
   * read a file still ends its stream whole, without that file.
   */
  finished?: PromiseLike<unknown>;
}

export interface PackTarResult extends ArchiveResult {
  /** Entries left out: devices, FIFOs, sockets (archive paths with their tar type). */
  skipped: string[];
}

/**
 * Starts the export's progress with the total when it is known up front; a
 * total still coming (a size walk alongside) is given when it arrives,
 * unless the packing has ended by then (end()).
 */
function startedProgress(opts: { progress?: ArchiveProgress; progressLabel?: string; totalBytes?: number | PromiseLike<number | undefined> }): { end(): void } {
  let ended = false;
  const known = typeof opts.totalBytes === 'number' ? opts.totalBytes : undefined;
  opts.progress?.start(opts.progressLabel ?? 'export', known);
  // start() has run, so a total that arrives at once still comes after it
  if (typeof opts.totalBytes !== 'number') {
    opts.totalBytes?.then(
      (t) => {
        if (!ended && t !== undefined) opts.progress?.total?.(t);
      },
      () => undefined,
    );
  }
  return { end: () => (ended = true) };
}

/** Where a hard link's pair is filed: by target, then link (`\0` sorts first; checkEntryPath refuses it in paths). */
const linkKey = (target: string, link: string) => `${target}\0${link}`;
const splitLinkKey = (key: string) => {
  const i = key.indexOf('\0');
  return { target: key.slice(0, i), link: key.slice(i + 1) };
};

function missingLinkTarget(link: string, target: string, cause?: unknown): KompoxError {
  return new KompoxError('integrity', `the tar stream holds ${link} as a hard link to ${target}, which it does not contain as a file`, {
    hint: 'The disk changed while it was read; export it again (stop the app first).',
    ...(cause !== undefined ? { cause } : {}),
  });
}

/**
 * Packs the plain tar stream `input` (a directory tree as `tar -c -C DIR .`
 * writes it) into `out` as a portable archive. Does not end `out`.
 *
 * Memory does not grow with the file count (issue 11): entries go into an
 * EntrySorter as the tar lists them (the filesystem's order), and the
 * manifest is built from its path-ordered pass through a ManifestLog (both
 * spill to temporary files past a few MiB). That pass also finds a path the
 * stream holds twice and a hard link whose target the stream does not hold
 * as a regular file: hard links are filed by target in a second sorter and
 * checked against the ordered entries, so no map of every file's size or
 * path is kept. A link's size comes from the host (linkTargetSize) or from
 * reading its content once more, not from the target's header.
 */
export async function packTarStream(input: Readable | NodeJS.ReadableStream, out: Writable | NodeJS.WritableStream, opts: PackTarOptions = {}): Promise<PackTarResult> {
  const format = opts.format ?? DEFAULT_ARCHIVE_FORMAT;
  const progress = startedProgress(opts);
  const sink = frameSink(format, out as Writable, opts.level, undefined, opts.jobs ?? LINK_ZSTD_JOBS);
  if (out instanceof ChecksumWriter) out.adoptDigest(sink.output);
  const spool = opts.spool ?? {};
  /** Every entry written, in tar order; a hard link's copy carries its target as `linkpath` (dropped from the manifest). */
  const entries = new EntrySorter(spool);
  /** Hard links as linkKey(target, link), checked once the entries come in path order. */
  const links = new EntrySorter(spool);
  const log = new ManifestLog(spool);
  const skipped: string[] = [];
  /**
   * The archive paths of the devices and FIFOs left out: tar stores a second
   * name of one as a hard link to the first, which is left out with it (never
   * read: a FIFO's read waits for a writer). Only such entries are kept.
   */
  const specials = new Map<string, string>();
  let held: { path: string; e: TarEntry } | undefined;
  const skipLostFound = opts.skipLostFound ?? true;
  const lostFound = `${DATA_DIR}/${LOST_FOUND}`;
  let lostFoundSeen = false;

  const writeDir = async (path: string, e: TarEntry) => {
    await sink.write(headerBlocks({ path: `${path}/`, type: 'Directory', mode: e.mode, uid: e.uid, gid: e.gid, size: 0, mtime: new Date(e.mtimeMs) }));
    entries.add({ path, type: 'dir', mode: e.mode, size: 0 });
  };
  /** Header, content from `next` (exactly `size` bytes), padding; the entry is recorded. */
  const writeFile = async (path: string, e: TarEntry, size: number, next: (max: number) => Promise<Buffer>, linkTarget?: string) => {
    await sink.write(headerBlocks({ path, type: 'File', mode: e.mode, uid: e.uid, gid: e.gid, size, mtime: new Date(e.mtimeMs) }));
    const h = createHash('sha256');
    let remain = size;
    while (remain > 0) {
      const chunk = await next(Math.min(remain, CHUNK));
      if (chunk.length === 0) throw integrity(`the tar stream is truncated (in the middle of ${path})`);
      h.update(chunk);
      remain -= chunk.length;
      opts.progress?.advance(chunk.length);
      await sink.write([chunk]);
    }
    const pad = padding(size);
    if (pad) await sink.write([pad]);
    entries.add({ path, type: 'file', mode: e.mode, size, sha256: h.digest('hex'), ...(linkTarget !== undefined ? { linkpath: linkTarget } : {}) });
  };
  /** The size of a hard link's target as it is now: from the host, or by reading it. */
  const linkSize = async (tarPath: string, link: { uid: number; gid: number }): Promise<number | undefined> => {
    if (opts.linkTargetSize) return opts.linkTargetSize(tarPath);
    const rs = await opts.readLinkTarget!(tarPath, link);
    let n = 0;
    try {
      for await (const chunk of rs as AsyncIterable<Buffer>) n += chunk.length;
    } finally {
      (rs as { destroy?(): void }).destroy?.();
    }
    return n;
  };

  const consume = async (source: AsyncIterable<Buffer>) => {
    // Every view this loop reads is done with (hashed, copied into a frame) before its next read, so the
    // reader may free the chunks handed over to it (markReleasable: the exec stream's messages through the
    // cluster) as it finishes them: most of an export's garbage, which would otherwise wait for a paced GC.
    const tr = new TarReader(new ByteReader(source[Symbol.asyncIterator](), releaseMarked), 'the tar stream');
    for await (const e of tarEntries(tr)) {
      const path = archivePathOf(e.path);
      // a lost+found left out never reaches the sorted pass that finds paths held twice
      if (path === lostFound) {
        if (lostFoundSeen) throw integrity(`the tar stream contains ${path} twice`);
        lostFoundSeen = true;
      }
      if (held) {
        // an empty lost+found is left out; one with content is kept whole
        if (path.startsWith(`${held.path}/`)) await writeDir(held.path, held.e);
        held = undefined;
      }
      if (e.type === 'Directory') {
        if (e.size) await tr.skip(e.size, path);
        if (skipLostFound && path === lostFound) held = { path, e };
        else await writeDir(path, e);
      } else if (e.type === 'SymbolicLink') {
        if (e.size) await tr.skip(e.size, path);
        const linkpath = e.linkpath ?? '';
        await sink.write(headerBlocks({ path, type: 'SymbolicLink', mode: e.mode, uid: e.uid, gid: e.gid, size: 0, mtime: new Date(e.mtimeMs), linkpath }));
        entries.add({ path, type: 'symlink', mode: e.mode, size: 0, linkpath });
      } else if (isFileType(e.type)) {
        await writeFile(path, e, e.size, (max) => tr.reader.readSome(max));
        await tr.skipPadding(e.size, path);
      } else if (e.type === 'Link') {
        if (e.size) await tr.skip(e.size, path);
        const tarTarget = e.linkpath ?? '';
        const target = archivePathOf(tarTarget);
        const special = specials.get(target);
        if (special) {
          skipped.push(`${path} (${special}, a hard link to ${target})`);
          continue;
        }
        if (!opts.readLinkTarget || target === path || target === DATA_DIR) throw missingLinkTarget(path, target);
        // whether the stream holds the target as a regular file is checked in path order at the end
        links.add({ path: linkKey(target, path), type: 'file', mode: 0, size: 0 });
        // the content as it is now; a file that changes size while it is read is cut or zero-padded to the size learnt first (as packTree does)
        let size: number | undefined;
        try {
          size = await linkSize(tarTarget, e);
        } catch (err) {
          // gone since tar read it (a live disk): the same refusal as a target the stream lacks
          throw err instanceof KompoxError ? err : missingLinkTarget(path, target, err);
        }
        if (size === undefined) throw missingLinkTarget(path, target);
        let rs: Readable;
        try {
          rs = await opts.readLinkTarget(tarTarget, e);
        } catch (err) {
          // gone or replaced since tar read it
          throw err instanceof KompoxError ? err : missingLinkTarget(path, target, err);
        }
        const it = (rs as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
        const reader = new ByteReader(it);
        try {
          await writeFile(
            path,
            e,
            size,
            async (max) => {
              const b = await reader.readSome(max);
              return b.length ? b : ZEROS.subarray(0, Math.min(max, ZEROS.length));
            },
            target,
          );
        } finally {
          (rs as { destroy?(): void }).destroy?.();
        }
      } else {
        // devices, FIFOs, sockets: not data (packTree leaves them out too)
        if (e.size) await tr.skip(e.size, path);
        skipped.push(`${path} (${e.type})`);
        specials.set(path, e.type);
      }
    }
    if (!tr.sawEnd) throw integrity('the tar stream is truncated (no end-of-archive marker)');
  };

  /**
   * The entries in path order (the order packTree's walk lists them; tar
   * -c's is the filesystem's) into the manifest log: the same tree gives the
   * same manifest on either path. Refuses a path held twice and a hard link
   * whose target is not among the regular files.
   */
  const manifestFromEntries = () => {
    const twice = (p: string) => integrity(`the tar stream contains ${p} twice`);
    const pairs = links.sorted((key) => twice(splitLinkKey(key).link));
    let pair = pairs.next();
    for (const e of entries.sorted(twice)) {
      for (; !pair.done; pair = pairs.next()) {
        const { target, link } = splitLinkKey(pair.value.path);
        if (target > e.path) break;
        // a target before this entry is missing; this entry must be a file tar stored as one (not a link's copy)
        if (target < e.path || e.type !== 'file' || e.linkpath !== undefined) throw missingLinkTarget(link, target);
      }
      log.add(e.type === 'file' && e.linkpath !== undefined ? { path: e.path, type: 'file', mode: e.mode, size: e.size, sha256: e.sha256! } : e);
    }
    if (!pair.done) {
      const { target, link } = splitLinkKey(pair.value.path);
      throw missingLinkTarget(link, target);
    }
  };

  try {
    await consume(input as AsyncIterable<Buffer>);
    // the command's failure before anything says the archive is whole
    await opts.finished;
    manifestFromEntries();
    entries.close();
    links.close();
    const head = manifestHead(log, format, opts);
    await writeManifest(sink, log.body(head));
    await sink.end();
    progress.end();
    // the log stays open: the returned manifest reads its entries from it
    const manifest = log.manifest(head);
    // the files and bytes the archive holds: the -o json transfer summary
    opts.progress?.done(countsOf(manifest));
    return { manifest, sha256: sink.output.sha256(), bytes: sink.output.bytes, format, skipped };
  } catch (e) {
    progress.end();
    sink.abort();
    entries.close();
    links.close();
    log.close();
    throw e;
  }
}

export interface AdoptPackedOptions {
  source?: ArchiveSource;
  /** zstd level of the manifest's frames (the node's frames come as they are). */
  level?: number;
  progress?: ArchiveProgress;
  progressLabel?: string;
  /** As PackTarOptions.totalBytes. */
  totalBytes?: number | PromiseLike<number | undefined>;
  createdAt?: string;
  /**
   * Settles once the command that wrote `input` has ended: rejects when it
   * failed. Awaited before the manifest is written, because a tar that died
   * mid-tree still leaves a stream that ends between two members.
   */
  finished?: PromiseLike<unknown>;
  spool?: EntrySorterOptions;
}

/** A member of the node's stream as an archive path: `data` or under `data/` (the stream names them so). */
function packedPathOf(tarPath: string): string {
  const p = tarPath.replace(/\/+$/, '');
  if (p === DATA_DIR) return p;
  if (!p.startsWith(`${DATA_DIR}/`)) throw integrity(`the node's tar stream holds ${JSON.stringify(tarPath)}, which is not under ${DATA_DIR}/`);
  return checkEntryPath(p);
}

/**
 * Makes a portable archive (format tar.zst) of a stream the node packed
 * itself: `input` is zstd frames of a pax tar of the disk with every member
 * under `data/`, no hard links and no end-of-archive marker (what
 * packedTarScript in src/providers/k3s/ssh-hostfs.ts runs). Those bytes go
 * into `out` as they are: the node's CPUs did the compression. They are
 * also decompressed here, every file hashed and every member checked, and
 * the manifest built from exactly what they hold goes after them in zstd
 * frames of its own (ZSTD_FRAME each), with the end-of-archive marker. The
 * result is an archive like any other (manifest last, per-file SHA-256,
 * tree digest); the bytes
 * already in `out` are worthless without that manifest, so a failure at any
 * point leaves an archive every import refuses. Does not end `out`.
 *
 * Refuses (integrity): a member outside `data/`, a hard link, device, FIFO
 * or socket (the node checks for them first; one that appears meanwhile
 * fails the export), a path twice, a truncated or corrupt stream, and an
 * end-of-archive marker (the manifest could not come after it).
 */
export async function adoptPackedStream(input: Readable | NodeJS.ReadableStream, out: Writable | NodeJS.WritableStream, opts: AdoptPackedOptions = {}): Promise<PackTarResult> {
  const progress = startedProgress(opts);
  const digest = new StreamDigest();
  if (out instanceof ChecksumWriter) out.adoptDigest(digest);
  const entries = new EntrySorter(opts.spool ?? {});
  const log = new ManifestLog(opts.spool ?? {});
  // decompressed bytes are garbage once hashed (the compressed ones are paced where they arrive)
  const pacer = new GarbagePacer();
  async function* kept(): AsyncGenerator<Buffer> {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      digest.update(chunk);
      await writeAll(out, chunk);
      yield chunk;
    }
  }
  async function* paced(): AsyncGenerator<Buffer> {
    for await (const chunk of decompressZstd(kept(), { jobs: LINK_ZSTD_JOBS })) {
      pacer.note(chunk.length);
      yield chunk;
    }
  }
  try {
    const tr = new TarReader(new ByteReader(paced()[Symbol.asyncIterator]()), "the node's tar stream");
    let root = false;
    for await (const e of tarEntries(tr)) {
      const path = packedPathOf(e.path);
      if (path === DATA_DIR) {
        if (e.type !== 'Directory') throw integrity(`the node's tar stream holds ${DATA_DIR} as ${e.type}, not as the disk's directory`);
        root = true;
      }
      if (e.type === 'Directory') {
        if (e.size) await tr.skip(e.size, path);
        entries.add({ path, type: 'dir', mode: e.mode, size: 0 });
      } else if (e.type === 'SymbolicLink') {
        if (e.size) await tr.skip(e.size, path);
        entries.add({ path, type: 'symlink', mode: e.mode, size: 0, linkpath: e.linkpath ?? '' });
      } else if (isFileType(e.type)) {
        const h = createHash('sha256');
        for await (const chunk of tr.pieces(e.size, path, h)) opts.progress?.advance(chunk.length);
        entries.add({ path, type: 'file', mode: e.mode, size: e.size, sha256: h.digest('hex') });
      } else {
        throw integrity(`the node's tar stream holds ${path} as ${e.type}, which an archive cannot hold as it is`, 'The disk changed during the export (a hard link, device, FIFO or socket appeared); export it again.');
      }
    }
    if (tr.sawEnd) throw integrity("the node's tar stream has an end-of-archive marker, which must come after the manifest");
    // the command's failure (a tar that stopped early) before anything says the archive is whole
    await opts.finished;
    for (const e of entries.sorted((p) => integrity(`the node's tar stream contains ${p} twice`))) log.add(e);
    entries.close();
    if (!root) throw integrity(`the node's tar stream holds no ${DATA_DIR} directory`);
    const head = manifestHead(log, 'tar.zst', opts);
    const sink = zstdTailSink(out as Writable, digest, opts.level ?? ZSTD_LEVEL, LINK_ZSTD_JOBS);
    try {
      await writeManifest(sink, log.body(head));
      await sink.end();
    } catch (e) {
      sink.abort();
      throw e;
    }
    progress.end();
    const manifest = log.manifest(head);
    opts.progress?.done(countsOf(manifest));
    return { manifest, sha256: digest.sha256(), bytes: digest.bytes, format: 'tar.zst', skipped: [] };
  } catch (e) {
    progress.end();
    entries.close();
    log.close();
    throw e;
  }
}

export interface ArchiveToTarOptions {
  /** Expected SHA-256 (hex) of the archive; a mismatch fails. */
  expectedSha256?: string;
  progress?: ArchiveProgress;
  progressLabel?: string;
  /** Size of the archive when known (progress). */
  totalBytes?: number;
  /** Stops reading (the input is destroyed): a cancel, or a receiver that went away. */
  signal?: AbortSignal;
  /** Where what waits for the manifest spills (see UnpackOptions.spool). */
  spool?: EntrySorterOptions;
  /** Frames decompressed at once (zstdParallelism); default LINK_ZSTD_JOBS. */
  jobs?: number;
  /**
   * `out`'s reader frees each chunk it is given once it has sent it on
   * (releaseMarked: exec-stream's stdin). The tar goes out in buffers of its
   * own (HANDOVER_CHUNK, handed over), and the decompressed pieces it is
   * copied from are freed as they are read: no garbage on the way for a GC.
   */
  handOver?: boolean;
}

/** The buffers a handed-over tar stream goes out in (ArchiveToTarOptions.handOver): exec-stream's frame size. */
const HANDOVER_CHUNK = 256 * 1024;

/**
 * Writes the tree of a portable archive (either format) into `out` as a
 * plain tar stream of `./`-relative paths (what `tar -x -C DIR` extracts into
 * DIR, the data directory's own metadata included), without the manifest.
 * Every file, the tree digest and, when given, the archive's SHA-256 are
 * verified on the way: the tar is trustworthy only once this resolves (the
 * receiver extracts into a disk nobody sees yet). Does not end `out`.
 */
export async function archiveToTar(input: Readable | NodeJS.ReadableStream, out: Writable | NodeJS.WritableStream, opts: ArchiveToTarOptions = {}): Promise<ArchiveResult> {
  opts.progress?.start(opts.progressLabel ?? 'import', opts.totalBytes);
  const signal = opts.signal;
  // an archive that stops coming (a stalled upload) must not hold a cancel up
  const stop = () => (input as Readable).destroy?.(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
  if (signal?.aborted) stop();
  signal?.addEventListener('abort', stop, { once: true });
  try {
    return await archiveToTarFrom(input, out, opts);
  } finally {
    signal?.removeEventListener('abort', stop);
  }
}

async function archiveToTarFrom(input: Readable | NodeJS.ReadableStream, out: Writable | NodeJS.WritableStream, opts: ArchiveToTarOptions): Promise<ArchiveResult> {
  const format = await sniffFormat(input as Readable);
  const tap = new HashTap((n) => opts.progress?.advance(n));
  // The entries wait for the manifest (last) sorted and spilled, as in unpackArchive.
  const check = new ArchiveCheck(opts.spool);
  // Parents are checked against the directories still open: the receiver's
  // tar must never write through a symlink this stream made. Archives come
  // in path order (packTree) or a tar's depth-first order (packTarStream);
  // in any other order a parent no longer open is refused.
  const open = new OpenDirs();
  // Out of path order a path may come twice before the sorted check sees it:
  // a directory over a symlink sent earlier would let a tar that follows it
  // write outside the disk. The symlinks in the directories still open are
  // kept to refuse that at once (a tar's order sends a directory's entries together).
  let ordered = true;
  let lastPath = '';
  const links = new Set<string>();
  let pruneAt = 4096;
  let head: Record<string, unknown> | undefined;
  let manifest: ArchiveManifest | undefined;
  let written = 0;
  // Buffers read and written are garbage once passed on: a GC paced by their
  // bytes (and the young generation capped) keeps them from piling up to
  // V8's own trigger (~200 MiB at 200,000 files without it), as on every
  // other data path (./memory.ts).
  const pacer = new GarbagePacer();
  const handOver = opts.handOver === true;
  async function* paced(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const b of source) {
      yield b;
      if (!handOver) pacer.note(b.length);
    }
  }
  // Handing over, every piece is copied out before the next read: the reader frees each decompressed
  // chunk it has read to the end (a whole buffer of the decompressor's, or the last piece of one: freeSpent), and counts what it cannot free.
  const spent = handOver ? (b: Buffer) => void (freeSpent(b) || pacer.note(b.length)) : undefined;
  // The archive's chunks, once decompressed: a file's read stream gives each its own buffer
  // (fs.ReadStream), which goes back then; any other input's are counted.
  const ownsInput = input instanceof ReadStream;
  const spentInput = (b: Buffer) => void ((ownsInput && releaseBuffer(b)) || pacer.note(b.length));
  async function* rewrite(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    const tr = new TarReader(new ByteReader(paced(source)[Symbol.asyncIterator](), spent));
    const acc = handOver ? new CopyingCoalescer(HANDOVER_CHUNK) : new Coalescer();
    const emit = function* (b: Buffer) {
      written += b.length;
      for (const piece of acc.add(b)) {
        yield piece;
        // handed over: freed by out's reader
        if (!handOver) pacer.note(piece.length);
      }
    };
    for (let e = await tr.next(); e; e = await tr.next()) {
      if (head) throw integrity(`the archive has entries after ${MANIFEST_NAME}; this is not a Kompox archive`);
      const path = checkEntryPath(e.path);
      if (path === MANIFEST_NAME) {
        head = await check.readManifest(tr, e);
        continue;
      }
      if (path === DATA_DIR ? e.type !== 'Directory' || open.chain.length > 0 : !open.has(path.slice(0, path.lastIndexOf('/')), path)) {
        if (path === DATA_DIR && e.type === 'Directory') throw integrity(`the archive contains ${path} twice`);
        throw integrity(`archive entry ${path} comes before its directory (or its parent is not a directory)`);
      }
      if (!(lastPath < path)) ordered = false;
      lastPath = path;
      if (!ordered && e.type === 'Directory' && links.has(path)) throw integrity(`the archive contains ${path} twice`);
      const rel = path === DATA_DIR ? '.' : `./${path.slice(DATA_DIR.length + 1)}`;
      const mtime = new Date(e.mtimeMs);
      if (e.type === 'Directory' || e.type === 'SymbolicLink') {
        if (e.size !== 0) throw integrity(`archive entry ${path} has a body; Kompox archives never write one`);
        if (e.type === 'Directory') {
          check.add({ path, type: 'dir', mode: e.mode, size: 0 });
          open.push(path);
          for (const b of headerBlocks({ path: `${rel}/`, type: 'Directory', mode: e.mode, uid: e.uid, gid: e.gid, size: 0, mtime })) yield* emit(b);
        } else {
          const linkpath = e.linkpath ?? '';
          if (!linkpath) throw integrity(`symlink ${path} in the archive has no target`);
          check.add({ path, type: 'symlink', mode: e.mode, size: 0, linkpath });
          if (links.size >= pruneAt) {
            for (const l of links) if (!open.chain.includes(l.slice(0, l.lastIndexOf('/')))) links.delete(l);
            pruneAt = Math.max(4096, 2 * links.size);
          }
          links.add(path);
          for (const b of headerBlocks({ path: rel, type: 'SymbolicLink', mode: e.mode, uid: e.uid, gid: e.gid, size: 0, mtime, linkpath })) yield* emit(b);
        }
        continue;
      }
      if (!isFileType(e.type)) throw integrity(`archive entry ${path} has type ${e.type}, which Kompox archives never contain (only files, directories and symlinks)`);
      for (const b of headerBlocks({ path: rel, type: 'File', mode: e.mode, uid: e.uid, gid: e.gid, size: e.size, mtime })) yield* emit(b);
      const hash = createHash('sha256');
      for await (const chunk of tr.pieces(e.size, path, hash)) yield* emit(chunk);
      const pad = padding(e.size);
      if (pad) yield* emit(pad);
      check.add({ path, type: 'file', mode: e.mode, size: e.size, sha256: hash.digest('hex') });
    }
    if (!head) throw integrity(`the archive ends without ${MANIFEST_NAME}: it is truncated or not a Kompox archive`);
    if (!tr.sawEnd) throw integrity('the archive is truncated (no end-of-archive marker)');
    manifest = check.finish(head);
    // end-of-archive, then zeros up to a whole record, as tar writers end
    const end = 2 * BLOCK + ((RECORD - ((written + 2 * BLOCK) % RECORD)) % RECORD);
    yield* emit(Buffer.alloc(end));
    if (acc.pending) yield acc.take();
  }
  try {
    const run = pipeline as unknown as (...stages: unknown[]) => Promise<void>;
    await run(input, tap, decompressor(format, opts.jobs ?? LINK_ZSTD_JOBS, spentInput), rewrite, out, { end: false, ...(opts.signal ? { signal: opts.signal } : {}) });
  } catch (err) {
    check.close();
    if (err instanceof KompoxError) throw err;
    throw compressionError(err, format) ?? err;
  }
  checkExpectedSha256(tap.sha256(), opts.expectedSha256);
  opts.progress?.done(countsOf(manifest!));
  return { manifest: manifest!, sha256: tap.sha256(), bytes: tap.bytes, format };
}
