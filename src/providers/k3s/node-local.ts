// Copies that stay on a K3s node (snapshot restore, disk copy, snapshot
// create) done by commands on the node over SSH (HostFs.run), so no byte of
// the data crosses to the workstation: checksums are computed on the node
// and read back, and Kompox checks them exactly as unpackArchive would
// (same manifest, per-file SHA-256, tree digest, refusals). Each returns
// undefined, after a log event saying why, when the node lacks the tools
// (the caller then takes the streaming path); locally (no `run`) nothing
// changes. The commands and their parsers are in node-commands.ts.
import { KompoxError, ownCode } from '../../domain/errors.js';
import { asInterrupted, byteProgress, logEvent, unlessCancelled, type Op, type ProgressSink } from '../../domain/events.js';
import { createHash } from 'node:crypto';
import { Transform, type Readable, type Writable } from 'node:stream';
import {
  MANIFEST_NAME,
  checkExpectedSha256,
  StreamDigest,
  integrity,
  manifestHead,
  writeAll,
  type ArchiveFormat,
  type ArchiveManifest,
  type ArchiveResult,
  type ArchiveSource,
} from '../../archive/archive.js';
import { ManifestLog, digestLine } from '../../archive/manifest-log.js';
import { GarbagePacer } from '../../archive/memory.js';
import { joinedPathTooLong, pathTooLong } from '../../archive/path-length.js';
import { SIGPIPE_STATUS, commandMessages, compressorFailed, compressorFailure, decodingFailure, shellStatusPhrase, tarCreateOutcome, toolMessages } from '../../archive/tar-command.js';
import { exitSaid, type HostFs, type HostRunOptions, type HostRunResult } from './hostfs.js';
import {
  ExtractOutputParser,
  MANIFEST_MARK,
  PROGRESS_MARK,
  TreeListingParser,
  archiveStreamEstimate,
  copyTreeArgv,
  extractArgv,
  firstChange,
  inBlocks,
  listTreeArgv,
  manifestEntryOf,
  missingTools,
  nodeHasher,
  extractedSha256,
  hostProblem,
  unescapeTarName,
  withoutSha256,
  parseTools,
  MANIFEST_NAMED_MARK,
  NODE_ZSTD_HINT,
  LISTED_NAME,
  snapshotArgv,
  stageStatuses,
  statKey,
  archivePathOf,
  tarCheckpointBytes,
  tarRefusal,
  tarStreamEstimate,
  toolsProbeArgv,
  type ListedEntry,
  type NodeHasher,
  type NodeLocalTools,
  type NodeLocalWork,
} from './node-commands.js';
import { ArchiveNamesCheck, KeyLog, ListingError, ListingJoin, ManifestReader, MissingHashError, manifestEntries } from './node-listing.js';

/** A HostFs that runs commands on its host (over SSH). */
type NodeFs = HostFs & Required<Pick<HostFs, 'run'>>;

/** A tar block: the average padding of a member's content is half of one. */
const BLOCK_BYTES = 512;

const probes = new WeakMap<HostFs, Promise<NodeLocalTools | undefined>>();

/** The node's tools, probed once per connection; undefined when the probe itself failed. */
function nodeTools(fs: NodeFs): Promise<NodeLocalTools | undefined> {
  let p = probes.get(fs);
  if (!p) {
    p = fs.run(toolsProbeArgv()).then(
      (r) => (r.code === 0 ? parseTools(r.stdout.toString('utf8')) : undefined),
      () => undefined,
    );
    probes.set(fs, p);
  }
  return p;
}

/** What hashes on the node (its probe is cached: no command of its own). */
async function hasherOn(fs: NodeFs): Promise<NodeHasher> {
  return nodeHasher(await nodeTools(fs));
}

/** FS when the node can do `work` itself; undefined otherwise, said in a log event when it is remote and cannot. */
async function onNode(fs: HostFs, work: NodeLocalWork, op: Op, format?: ArchiveFormat): Promise<NodeFs | undefined> {
  if (!fs.run) return undefined;
  const nfs = fs as NodeFs;
  // a probe that hangs (a node whose tools hang) does not hold a cancel
  const tools = await unlessCancelled(nodeTools(nfs), op.signal);
  const why = tools ? missingTools(tools, work, format) : 'the probe for its tools failed';
  if (why) logEvent(op, `${work} through this machine, not on the node (${fs.describe}): ${why}`);
  return why ? undefined : nfs;
}

function suffix(): string {
  return Math.random().toString(36).slice(2, 10);
}

function parentOf(path: string): string {
  return path.replace(/\/[^/]+\/?$/, '') || '/';
}

/**
 * The quick size walk (HostFs.treeBytes) on a channel of its own beside a
 * command on the node, for a progress total before the listing's: `take`
 * gets its count unless `listed()` came first (the listing's count, the one
 * the result holds, then stands). `settle()` stops it and waits until it has
 * ended: nothing of the walk outlives the operation.
 */
function sizeWalkBeside(fs: NodeFs, dir: string, progress: ProgressSink | undefined, take: (walked: { bytes: number; files: number }) => void) {
  const stop = new AbortController();
  let listed = false;
  const walking = progress && fs.treeBytes ? fs.treeBytes(dir, stop.signal).then((walked) => void (walked && !listed && take(walked)), () => undefined) : undefined;
  return {
    listed(): void {
      listed = true;
      stop.abort();
    },
    async settle(): Promise<void> {
      stop.abort();
      await walking;
    },
  };
}

/** Bytes of garbage objects a byte of a listing leaves, about (GarbagePacer's count). */
const LISTING_GARBAGE = 4;

/**
 * Runs a command on the node (cancellable through op), handing its progress
 * reports to `progress` and its stdout, as it streams, to `stdout` (then
 * never collected; a HostFs that collects it anyway has it handed over at
 * the end).
 */
async function run(fs: NodeFs, argv: string[], op: Op, what: string, progress?: HostRunOptions['progress'], stdout?: (chunk: Buffer) => void, stdin?: Readable): Promise<HostRunResult> {
  // A listing streams in as many small buffers while its entries pile into
  // sorter runs: without a cap the young generation grew to 112 MiB at
  // 200,000 files (the runs survive scavenges), and the buffers waited for a
  // full GC; the pacer caps the one and runs the other (src/archive/memory.ts).
  // Each byte of a listing leaves several bytes of objects behind (strings,
  // entries, sorter records), so it counts LISTING_GARBAGE times: at 200,000
  // files the heap then peaked at ~25 MiB, not ~55.
  const pacer = stdout ? new GarbagePacer() : undefined;
  const sink = stdout && pacer ? (c: Buffer) => (stdout(c), pacer.note(c.length * LISTING_GARBAGE)) : undefined;
  try {
    const r = await fs.run(argv, { ...(op.signal ? { signal: op.signal } : {}), ...(progress ? { progress } : {}), ...(sink ? { stdout: sink } : {}), ...(stdin ? { stdin } : {}) });
    if (sink && r.stdout.length) sink(r.stdout);
    return r;
  } catch (e) {
    // the bare `interrupted`: the use case says what was not done ("no disk was created"), as on every other path
    const err = asInterrupted(op, e);
    if (err !== e) throw err;
    throw new KompoxError('unavailable', `${what} on ${fs.describe} failed: ${(e as Error).message}`, ownCode(e));
  }
}

/**
 * The progress of one command on the node: each number it reports is
 * mapped by `toDone` onto PROGRESS's unit and shown as it grows (a smaller
 * one is ignored), never beyond `total`, which `finish` shows once the work
 * is done and checked.
 */
function nodeProgress(progress: ProgressSink | undefined, total: number | (() => number), toDone: (n: number) => number) {
  let shown = 0;
  const totalNow = typeof total === 'number' ? () => total : total;
  const to = (v: number) => {
    const next = Math.min(totalNow(), Math.floor(v));
    if (next > shown) {
      progress?.advance(next - shown);
      shown = next;
    }
  };
  return {
    /** For run(): the reports of the command. */
    reports: { mark: PROGRESS_MARK, report: (n: number) => to(toDone(n)) },
    finish: () => to(totalNow()),
  };
}

/** tee's own lines of a snapshot's stderr: not tar's and zstd's, which only died of the pipe tee left. */
function teeSaid(text: string): string {
  return text
    .split('\n')
    .filter((l) => !/^(?:tar|zstd): |Broken pipe/.test(l.trim()))
    .join('\n')
    .trim();
}

function failed(fs: HostFs, what: string, r: { code: number | null; signal?: string; stderr: string }, detail = r.stderr): KompoxError {
  return new KompoxError('unavailable', `${what} on ${fs.describe} failed (${exitSaid(r)})${detail ? `: ${commandMessages(detail, 5)}` : ''}`);
}

/**
 * A path the node cannot take whole (GNU tar: "tar: NAME: Cannot mkdir: File
 * name too long", its start maybe cut off the kept stderr by the long name):
 * no fault of the archive. Undefined when tar did not say so.
 */
function tarPathTooLong(stderr: string): KompoxError | undefined {
  const m = /^(?:tar: )?(.*): Cannot [^:\n]+: File name too long$/m.exec(stderr);
  return m ? pathTooLong(`…${m[1]!.slice(-80)}`, 'extracted', 'tar') : undefined;
}

/**
 * A node command that failed on a path of PATH_MAX bytes or more, told as
 * the local and SFTP paths tell it (archive.path-too-long), not as a failed
 * listing or copy. GNU find and tar walk the tree by directory descriptors
 * and take such paths, but the listing's hashers (sha256sum, openssl) open
 * each file by its path from the tree's top, and cp -a by its absolute
 * path: each says `NAME: File name too long` (ENAMETOOLONG). Their messages
 * cannot name it (the kept stderr tail, 4 KiB, cuts the start off a name
 * that long): the refusal names the first path that long of the listings
 * it was handed.
 */
class LongPaths {
  private first: string | undefined;
  private said = false;

  /** An entry of the listing of DIR. */
  entry(dir: string, e: ListedEntry): void {
    if (this.first === undefined && e.path !== '' && joinedPathTooLong(dir, e.path)) this.first = `${dir}/${e.path}`;
  }

  /** The stderr of a command that failed. */
  heard(stderr: string): void {
    if (/: File name too long$/m.test(stderr)) this.said = true;
  }

  /**
   * The refusal, once a tool said so and a listed path is that long (a
   * listing beside the command may list it after the command failed);
   * undefined otherwise (the failure is then told as it is).
   */
  refusal(): KompoxError | undefined {
    return this.said && this.first !== undefined ? pathTooLong(this.first, 'archived') : undefined;
  }
}

/** A listing that could not be read. */
function listingFailed(fs: HostFs, dir: string, e: unknown): KompoxError {
  // a refusal of what the listing holds (a name that is not UTF-8) is said as it is
  if (e instanceof KompoxError) return e;
  // a file listed but not hashed: gone (or renamed) before the hashing pass reached it, on a live tree
  return new KompoxError('unavailable', `listing ${dir} on ${fs.describe}: ${(e as Error).message}`, e instanceof MissingHashError ? { code: TREE_CHANGED } : {});
}

/**
 * The code of a listing that failed because the tree changed under it (a
 * live disk): a file listed but gone before it was hashed (an app's
 * logrotate renaming it, a temp file deleted), or a directory removed while
 * find walked it. A snapshot or copy on the node then falls back to the
 * streaming path, which archives what it reads (a crash-consistent copy).
 */
const TREE_CHANGED = 'node.tree.changed';

/**
 * Whether a failed listing command said a path under its tree vanished
 * (sha256sum, openssl, find: ENOENT on `./PATH`; cp -a of a copy: on
 * `SOURCE/PATH`).
 */
function saidVanished(stderr: string, source?: string): boolean {
  const under = source === undefined ? '\\.' : `\\.|${source.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`;
  return new RegExp(`^(?:[\\w.-]+: )?(?:cannot [a-z]+ )?['‘]?(?:${under})/.*?['’]?(?: for reading)?: No such file or directory$`, 'm').test(stderr);
}

/** Whether E is a listing that failed because the tree changed under it (TREE_CHANGED). */
function treeChanged(e: unknown): e is KompoxError {
  return e instanceof KompoxError && e.code === TREE_CHANGED;
}

/**
 * A parser fed from a command's stdout as it streams: its first failure is
 * kept (a stdout sink must not throw) and nothing more is parsed after it.
 */
class Fed {
  failure: unknown;
  constructor(private readonly parser: { write(chunk: Buffer): void }) {}
  readonly write = (chunk: Buffer): void => {
    if (this.failure !== undefined) return;
    try {
      this.parser.write(chunk);
    } catch (e) {
      this.failure = e;
    }
  };
  /** Runs `fn` (the parser's end) unless it failed already; throws the first failure. */
  end(fn: () => void): void {
    if (this.failure === undefined) {
      try {
        fn();
      } catch (e) {
        this.failure = e;
      }
    }
    if (this.failure !== undefined) throw this.failure;
  }
}

/** A listing's entries in path order, its unreadable parts reported as the listing's (not the archive's) failure. */
function* sortedListing(fs: HostFs, dir: string, listing: ListingJoin, hashes = true): Generator<ListedEntry> {
  try {
    yield* listing.sorted(hashes);
  } catch (e) {
    throw e instanceof ListingError ? listingFailed(fs, dir, e) : e;
  }
}

/**
 * Runs ARGV, whose stdout is a listing of DIR (listTreeArgv's), parsed as it
 * streams into a ListingJoin (and `long`); a failed command is `failed`, or
 * a path too long (LongPaths), an unreadable listing a listing failure. The
 * caller closes the join.
 */
async function runListing(fs: NodeFs, argv: string[], dir: string, op: Op, what: string, opts: { hashes?: boolean; progress?: HostRunOptions['progress']; long?: LongPaths; source?: string } = {}): Promise<ListingJoin> {
  const listing = new ListingJoin();
  // the entries streamed in before a failure name the path a tool could not take
  const long = opts.long ?? new LongPaths();
  const sink = { entry: (e: ListedEntry) => (long.entry(dir, e), listing.entry(e)), hash: (path: string, sha: string) => listing.hash(path, sha) };
  try {
    const parser = new TreeListingParser(sink, { ...(opts.hashes === false ? { hashes: false } : {}), what: `the listing of ${dir}` });
    const fed = new Fed(parser);
    const r = await run(fs, argv, op, what, opts.progress, fed.write);
    if (r.code !== 0) {
      long.heard(r.stderr);
      const refusal = long.refusal();
      if (refusal) throw refusal;
      const f = failed(fs, what, r);
      throw saidVanished(r.stderr, opts.source) ? new KompoxError(f.kind, f.message, { code: TREE_CHANGED }) : f;
    }
    try {
      fed.end(() => parser.end());
    } catch (e) {
      throw listingFailed(fs, dir, e);
    }
    return listing;
  } catch (e) {
    listing.close();
    throw e;
  }
}

/** Lists (and hashes) the tree DIR on the node; `long` is handed its entries. */
async function listTree(fs: NodeFs, dir: string, op: Op, opts: { hashes?: boolean; listed?: string; long?: LongPaths } = {}): Promise<ListingJoin> {
  return runListing(fs, listTreeArgv(dir, { ...opts, hasher: await hasherOn(fs) }), dir, op, `listing ${dir}`, opts);
}

/**
 * The tree digest (treeDigestOf), file count and bytes of a sorted listing,
 * what archives never hold left out; and its stat digest, over every path
 * with its statKey (type, mode, size, mtime, ctime, link target), which a
 * second listing of the same tree matches only if nothing in it changed.
 */
function digestOf(entries: Iterable<ListedEntry>): ListingDigest {
  const h = createHash('sha256');
  const stats = createHash('sha256');
  let files = 0;
  let bytes = 0;
  for (const e of entries) {
    stats.update(`${archivePathOf(e)}\0`).update(statKey(e));
    if (e.kind === 'other') continue;
    if (e.kind === 'file') {
      files++;
      bytes += e.size;
    }
    h.update(digestLine(manifestEntryOf(e)));
  }
  return { treeDigest: h.digest('hex'), statDigest: stats.digest('hex'), files, bytes };
}

interface ListingDigest {
  treeDigest: string;
  statDigest: string;
  files: number;
  bytes: number;
}

export interface NodeRestoreOptions {
  format: ArchiveFormat;
  expectedSha256?: string;
  /** The archive's size (progress), when known. */
  size?: number;
  /**
   * What the archive holds, when known (a snapshot's metadata): tar's
   * progress counts the plain stream, mapped onto the archive's bytes
   * through an estimate of that stream's size; without it the progress is
   * the archive file's bytes the node has read, every second.
   */
  content?: { fileCount: number; totalBytes: number };
  label: string;
}

/** An archive streamed to the node (an import): its bytes are the extracting command's stdin. */
export interface StreamedArchive {
  stream: Readable;
}

/**
 * What crosses to the node: hashed and counted as it goes (the archive's
 * SHA-256 is the sender's when the node reads it from stdin), each chunk's
 * bytes reported to `sent`.
 */
function sendingTap(sent: (bytes: number) => void) {
  const digest = new StreamDigest();
  let ended = false;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      digest.update(chunk);
      sent(digest.bytes);
      cb(null, chunk);
    },
    flush(cb) {
      ended = true;
      cb();
    },
  });
  return {
    stream,
    /** Whether all of the input went through (a command that ended early left some unread). */
    ended: () => ended,
    sha256: () => digest.sha256(),
  };
}

/**
 * Extracts the archive file ARCHIVE (or an archive streamed to the node)
 * into DATADIR (which must not exist) on the node, in one pass beside
 * DATADIR, while the node computes the archive's SHA-256 (a streamed
 * archive's is taken here as it is sent). Before the tree is renamed to DATADIR (nothing is
 * visible until then) Kompox checks, as unpackArchive does: the SHA-256
 * against the snapshot's metadata, the member names (no absolute paths, no
 * `..`, nothing outside data/, nothing twice, the manifest last), and the
 * extracted tree, listed and hashed on the node, against the manifest
 * (every path, type, mode, size, SHA-256 and link target, and the tree
 * digest). Undefined when the node cannot (logged).
 */
export async function restoreOnNode(hostFs: HostFs, archive: string | StreamedArchive, dataDir: string, opts: NodeRestoreOptions, op: Op): Promise<{ totalBytes: number; manifest: ArchiveManifest } | undefined> {
  const fs = await onNode(hostFs, 'restore', op, opts.format);
  if (!fs) return undefined;
  const progress = byteProgress(op);
  progress?.start(opts.label, opts.size);
  const size = opts.size ?? Number.MAX_SAFE_INTEGER;
  logEvent(op, `${opts.label}: on the node (${fs.describe}): extracting, to be checked and verified there`);
  const decompressor = opts.format === 'tar.gz' ? 'gzip' : 'zstd';
  const x = `${parentOf(dataDir)}/.extract-${suffix()}`;
  // what the command prints, read as it streams: tar's member names (checked
  // as unpackArchive checks them), the listing of the extracted tree, its manifest
  const names = new ArchiveNamesCheck();
  const listing = new ListingJoin();
  const manifest = new ManifestReader();
  let badName: unknown;
  const listingParser = new TreeListingParser(listing, { endMark: MANIFEST_MARK, after: (b) => manifest.push(b), what: 'the archive', under: 'data/' });
  const output = new ExtractOutputParser((line) => {
    if (badName !== undefined) return;
    try {
      names.name(unescapeTarName(line));
    } catch (e) {
      badName = e;
    }
  }, listingParser);
  const fed = new Fed(output);
  try {
    const file = typeof archive === 'string' ? archive : undefined;
    const extracting = `extracting ${file ?? 'the archive'}`;
    const plain = opts.content ? archiveStreamEstimate(opts.content.fileCount, opts.content.totalBytes) : 0;
    // a snapshot's progress is tar's, mapped onto the archive's bytes; an archive file that nothing says the
    // tar stream of (no snapshot metadata) reports the bytes of it the node has read (extractArgv's 'read'),
    // which are the archive's bytes already; a streamed archive's is what has been sent
    const byRead = file !== undefined && !(plain > 0);
    const shown = nodeProgress(progress, size, file === undefined || byRead ? (n) => n : (n) => (tarCheckpointBytes(n) * size) / plain);
    const tap = file === undefined ? sendingTap(shown.reports.report) : undefined;
    if (tap) {
      const input = (archive as StreamedArchive).stream;
      input.once('error', (err: Error) => tap.stream.destroy(err));
      input.pipe(tap.stream);
    }
    // tar's progress lines are taken out of its stderr even when nothing maps them (a streamed archive's
    // progress is what was sent): else a failure's message would quote them
    const reports = file !== undefined ? shown.reports : { mark: PROGRESS_MARK, report: () => undefined };
    const e = await run(fs, extractArgv(file, x, opts.format, await hasherOn(fs), byRead ? 'read' : 'tar'), op, extracting, reports, fed.write, tap?.stream);
    const es = stageStatuses(withoutSha256(e.stderr), 2);
    // tar's messages of names too long for the node may fill the kept stderr before the statuses
    if (es.codes[0] === undefined || es.codes[1] === undefined) throw tarPathTooLong(es.text) ?? failed(fs, extracting, e, es.text);
    // a command that succeeded without reading the whole stream: something follows the archive's end
    if (tap && !tap.ended() && es.codes[0] === 0 && es.codes[1] === 0) throw integrity('the archive goes on after its end: it is not a Kompox archive');
    const sha256 = tap ? (tap.ended() ? tap.sha256() : undefined) : extractedSha256(e.stderr);
    if (!sha256 && !tap) throw failed(fs, extracting, e, `no SHA-256 of the archive${es.text ? `: ${es.text}` : ''}`);
    // the recorded checksum first: it names the problem best (a changed or damaged file)
    if (sha256) checkExpectedSha256(sha256, opts.expectedSha256);
    // a decompressor killed writing to a tar that had ended (one that could not enter its directory) says
    // nothing of the archive: tar's own failure, below, says why
    const cutByTar = es.codes[0] === SIGPIPE_STATUS && es.codes[1] !== 0;
    if (es.codes[0] !== 0 && !cutByTar) {
      if (es.codes[0] !== SIGPIPE_STATUS && !decodingFailure(es.codes[0], es.text)) throw failed(fs, `${decompressor} -d (${extracting})`, { code: es.codes[0], stderr: toolMessages(es.text) });
      throw integrity(`the archive is not a valid ${decompressor} stream: it is truncated or corrupt (${commandMessages(es.text) || `exit code ${es.codes[0]}`})`);
    }
    const refused = tarRefusal(es.text);
    if (refused) throw refused;
    let listingFailure: unknown;
    try {
      fed.end(() => {
        // no listing at all reads as one that ended at once (data/ was not a directory: refused below first)
        if (!output.end()) throw new Error('the node listing ended before its hashes');
      });
    } catch (err) {
      listingFailure = err;
    }
    if (badName !== undefined) throw badName;
    if (es.codes[1] !== 0) {
      const tooLong = tarPathTooLong(es.text);
      if (tooLong) throw tooLong;
      if (hostProblem(es.text)) throw failed(fs, extracting, { code: es.codes[1], stderr: es.text });
      throw integrity(`the archive is not a valid tar archive: it is truncated or corrupt (${commandMessages(es.text) || `exit code ${es.codes[1]}`})`);
    }
    names.finish();
    // only what the names said (stripped absolute names would land here too)
    const top = (await fs.readdir(x)).sort();
    if (top.join('/') !== ['data', MANIFEST_NAME].sort().join('/')) throw integrity(`the archive holds ${top.filter((n) => n !== 'data' && n !== MANIFEST_NAME).join(', ') || 'no data directory'} outside data/`);
    if ((await fs.lstat(`${x}/data`))?.kind !== 'dir') throw integrity('archive entry data is not a directory');
    if (listingFailure !== undefined) throw listingFailed(fs, `${x}/data`, listingFailure);
    if (listing.firstOther !== undefined) throw integrity(`archive entry ${listing.firstOther} is not a file, directory or symlink, which Kompox archives never contain`);
    if (!listingParser.sawEnd) throw integrity(`${MANIFEST_NAME} in the archive is not a regular file`);
    const head = manifest.end();
    manifest.verify(head, manifestEntries(sortedListing(fs, `${x}/data`, listing)));
    const m = head as ArchiveManifest;
    await fs.rename(`${x}/data`, dataDir);
    shown.finish();
    progress?.done({ files: m.fileCount, bytes: m.totalBytes });
    return { totalBytes: m.totalBytes, manifest: m };
  } finally {
    names.close();
    listing.close();
    manifest.close();
    await fs.rm(x).catch(() => undefined);
  }
}

/**
 * Copies the tree SRC to DEST (which must not exist) on the node with
 * `cp -a` and checks the copy. The node lists and hashes SRC beside cp (two
 * commands at once: hashing SRC first was a quarter of the copy's time on
 * the benchmark disk), lists DEST in cp's command once it is done, and
 * lists SRC once more after both, without hashing. The copy must have the
 * tree digest of SRC's listing (every path, type, mode, size, SHA-256 and
 * link target), and the second listing the same sizes, times and modes as
 * the first. So a file that changed between the two reads of it fails the
 * digest, and one that changed after its listing's read fails the second
 * listing (its ctime); only a change before both read it is in the copy, as
 * in the source. Undefined when the node cannot, SRC holds sockets, fifos
 * or devices (archives leave them out; the streaming copy does), or SRC
 * changed during the copy (a live disk: a failed check, a file gone before
 * the listing hashed it or cp read it), logged; DEST is then gone, and the
 * streaming copy makes a crash-consistent copy of what it reads.
 */
export async function copyOnNode(hostFs: HostFs, src: string, dest: string, label: string, op: Op): Promise<{ totalBytes: number } | undefined> {
  const fs = await onNode(hostFs, 'copy', op);
  if (!fs) return undefined;
  const hasher = await hasherOn(fs);
  // the bytes cp has written so far (copyTreeArgv) against a total from a quick size walk on a channel of
  // its own (as a snapshot's), then the source's listing's once it is in: that listing hashes every file
  // beside cp, so on its own the total came about when the copy ended (no percentage, no ETA until then)
  const progress = byteProgress(op);
  progress?.start(label);
  let totalBytes = Number.MAX_SAFE_INTEGER;
  const shown = nodeProgress(progress, () => totalBytes, (n) => n);
  const walk = sizeWalkBeside(fs, src, progress, (walked) => {
    totalBytes = walked.bytes;
    progress?.total?.(totalBytes);
  });
  try {
    const copying = `copying ${src}`;
    const stopCopy = new AbortController();
    // a path cp cannot take (its absolute path too long) is named from the source's listing (see `copied`)
    const long = new LongPaths();
    // cp -a saying a file of SRC is gone (removed since it read its directory): SRC changed (treeChanged)
    const copy = runListing(fs, copyTreeArgv(src, dest, hasher), dest, { ...op, signal: op.signal ? AbortSignal.any([op.signal, stopCopy.signal]) : stopCopy.signal }, copying, { progress: shown.reports, long, source: src });
    copy.catch(() => undefined);
    /** Stops cp (or the copy's listing) and waits until the command has ended; what it made stays for the caller. */
    const stopCopying = async () => {
      stopCopy.abort();
      (await copy.catch(() => undefined))?.close();
    };
    /** The source changed while the node copied it (a live disk): DEST removed, the streaming copy instead (logged). */
    const live = async (detail: string): Promise<undefined> => {
      await stopCopying();
      await fs.rm(dest);
      logEvent(op, `copy through this machine, not on the node: ${src} changed while the node copied it (${detail}); for a consistent copy, snapshot with --quiesce and copy the snapshot`);
      return undefined;
    };
    let before: ListingDigest;
    try {
      const listed = await listTree(fs, src, op, { long });
      try {
        if (listed.firstOther !== undefined) {
          await stopCopying();
          await fs.rm(dest);
          logEvent(op, `copy through this machine, not on the node: ${src} holds ${listed.firstOther}, which is not a file, directory or symlink (left out of copies)`);
          return undefined;
        }
        before = digestOf(sortedListing(fs, src, listed));
      } finally {
        listed.close();
      }
    } catch (e) {
      // a file gone between the listing and its hash (logrotate's rename, a temp file): a live tree
      if (treeChanged(e)) return await live(`the listing could not hash it: ${e.message}`);
      await stopCopying();
      throw e;
    }
    walk.listed();
    totalBytes = before.bytes;
    progress?.total?.(totalBytes);
    logEvent(op, `${label}: on the node (${fs.describe}): copying with cp -a, to be verified there`);
    // cp may fail on a path before the source's listing beside it has listed it: named once that listing is in
    let copied: ListingJoin;
    try {
      copied = await copy.catch((e: unknown) => {
        throw long.refusal() ?? e;
      });
    } catch (e) {
      if (treeChanged(e)) return await live(`cp -a found a file gone: ${e.message}`);
      throw e;
    }
    let after: ListingDigest;
    try {
      after = digestOf(sortedListing(fs, dest, copied));
    } finally {
      copied.close();
    }
    // A copy that differs from the source's listing, or a source whose sizes, times or modes changed since
    // that listing: the source changed under the copy (an app writing: a live copy of a growing log would
    // fail every time), so the copy is made by the streaming path instead, which archives what it reads
    // and verifies what it writes (a copy damaged on the node is caught there too).
    if (after.treeDigest !== before.treeDigest || copied.others) return await live(`the copy's tree digest ${after.treeDigest} differs from the source listing's ${before.treeDigest}`);
    let still: ListingDigest;
    try {
      const again = await listTree(fs, src, op, { hashes: false });
      try {
        still = digestOf(sortedListing(fs, src, again, false));
      } finally {
        again.close();
      }
    } catch (e) {
      if (treeChanged(e)) return await live(`a directory went while it was listed again: ${e.message}`);
      throw e;
    }
    if (still.statDigest !== before.statDigest) return await live('its listing after the copy differs from the one before');
    shown.finish();
    progress?.done({ files: after.files, bytes: totalBytes });
    return { totalBytes };
  } finally {
    await walk.settle();
  }
}

export interface NodeSnapshotOptions {
  source: ArchiveSource;
  label: string;
  /**
   * Keeps a temp directory fresh while tar runs (the driver's heartbeat):
   * the manifest waits in one until tar reaches its end, and leftovers of
   * a crash (`.tmp-*`) are swept by age.
   */
  keepAlive?: (dir: string) => { stop(): Promise<void> };
  /** zstd level of the archive (default: the archives' level). */
  level?: number | undefined;
}

/**
 * Writes a Kompox archive (tar.zst) of the tree SRC to the new file ARCHIVE
 * on the node: `tar -c | zstd` on the node archives the tree while the node
 * lists and hashes it beside (two commands at once; tar reads no file
 * before the listing has every entry's stat, LISTED_NAME); Kompox builds the
 * manifest from that listing and puts it where tar, at the end of the tree,
 * takes it as the archive's last member (snapshotArgv). The archive's
 * SHA-256 is computed there as it is written. A tree that changed between
 * the listing and the end of tar (a listing of sizes, times and modes after
 * tar differs, or tar saw a change) is not archived here (see liveFallback):
 * the listing's hashes and tar's reads are both between the two listings.
 * Undefined when the node cannot, the tree holds what archives leave out,
 * or it changed (logged); ARCHIVE is then gone.
 * On failure ARCHIVE may be left: the caller removes it.
 */
export async function snapshotOnNode(hostFs: HostFs, src: string, archive: string, opts: NodeSnapshotOptions, op: Op): Promise<ArchiveResult | undefined> {
  const fs = await onNode(hostFs, 'snapshot', op, 'tar.zst');
  if (!fs) return undefined;
  const mdir = `${parentOf(archive)}/.tmp-manifest-${suffix()}`;
  await fs.mkdir(mdir, 0o700);
  const alive = opts.keepAlive?.(mdir);
  // the manifest from the listing, in path order (compact, spilled past a few
  // MiB), and beside it each entry's statKey for the change check after tar
  const log = new ManifestLog();
  const keys = new KeyLog();
  let made = false;
  // The progress total from a quick size walk on a channel of its own, beside tar and the listing (the
  // snapshot never waits for it: run before them it was 0.17 s of a 3.4 s snapshot of the benchmark disk);
  // tar's stream bytes are mapped onto it, by an estimate the listing's own count replaces once it is in.
  const progress = byteProgress(op);
  progress?.start(opts.label);
  let total = Number.MAX_SAFE_INTEGER;
  let plain = 0;
  const shown = nodeProgress(progress, () => total, (n) => (plain ? (tarCheckpointBytes(n) * total) / plain : tarCheckpointBytes(n)));
  logEvent(op, `${opts.label}: on the node (${fs.describe}): listed, hashed, archived and compressed there`);
  const what = `archiving ${src}`;
  const stopTar = new AbortController();
  const hasher = await hasherOn(fs);
  const zstdParams = (await nodeTools(fs))?.zstdParams === true;
  const archiving = run(fs, snapshotArgv(src, mdir, archive, hasher, zstdParams, opts.level), { ...op, signal: op.signal ? AbortSignal.any([op.signal, stopTar.signal]) : stopTar.signal }, what, shown.reports);
  archiving.catch(() => undefined);
  const walk = sizeWalkBeside(fs, src, progress, (walked) => {
    total = walked.bytes;
    plain = tarStreamEstimate(walked.files, walked.bytes + walked.files * (BLOCK_BYTES / 2));
    progress?.total?.(total);
  });
  /** Stops tar (it waits for a manifest that will not come) and waits until it has ended. */
  const stopArchiving = async () => {
    stopTar.abort();
    await archiving.catch(() => undefined);
  };
  try {
    let blockBytes = 0;
    try {
      // tar starts reading the tree once this listing has every entry's stat (LISTED_NAME)
      const listed = await listTree(fs, src, op, { listed: `${mdir}/${LISTED_NAME}` });
      try {
        if (listed.firstOther !== undefined) {
          await stopArchiving();
          await fs.rm(archive).catch(() => undefined);
          logEvent(op, `snapshot through this machine, not on the node: ${src} holds ${listed.firstOther}, which is not a file, directory or symlink (left out of archives)`);
          return undefined;
        }
        for (const e of sortedListing(fs, src, listed)) {
          const m = manifestEntryOf(e);
          log.add(m);
          keys.add(statKey(e));
          blockBytes += inBlocks(m.size);
        }
      } finally {
        listed.close();
      }
    } catch (e) {
      // a file gone between the listing and its hash (logrotate's rename, a temp file): a live tree
      if (!treeChanged(e)) throw e;
      await stopArchiving();
      return await liveFallback(fs, src, archive, `the listing could not hash it: ${e.message}`, op);
    }
    const head = manifestHead(log, 'tar.zst', { source: opts.source });
    const manifest = log.manifest(head);
    const body = log.body(head);
    // tar counts the plain stream (headers, padding, the manifest): mapped onto the data bytes
    const walkedTotal = total;
    walk.listed();
    total = manifest.totalBytes;
    plain = tarStreamEstimate(log.count + 1, blockBytes + inBlocks(body.length));
    // the listing's count is the one the archive holds (the walk's may differ if the disk changed meanwhile)
    if (walkedTotal !== total) progress?.total?.(total);
    // tar takes it as the last member once it is there (snapshotArgv)
    await writeManifestFile(fs, `${mdir}/${MANIFEST_NAME}`, body);
    const r = await archiving;
    const st = stageStatuses(r.stderr, 3);
    const named = st.text.includes(MANIFEST_NAMED_MARK);
    const text = st.text.replace(new RegExp(`${MANIFEST_NAMED_MARK}\\s*`, 'g'), '').trim();
    // zstd failed on its own (killed, not found, a bad option, out of memory): tar died of the pipe it left
    // (141), and the command's status is sha256sum's (0) — neither says what failed
    if (compressorFailed(st.codes[1])) throw new KompoxError('unavailable', compressorFailure(`zstd compressing the archive of ${src}`, fs.describe, st.codes[1], text), { hint: NODE_ZSTD_HINT });
    // tee failed writing the file (the disk full, a quota, an I/O error): zstd and tar died of the pipe it
    // left, and the command's status is sha256sum's 0 — the file is what failed, and where
    if (compressorFailed(st.codes[2])) {
      throw new KompoxError('unavailable', `writing the snapshot archive ${archive} on ${fs.describe} ${shellStatusPhrase(st.codes[2])}${teeSaid(text) ? `: ${commandMessages(teeSaid(text), 5)}` : ''}`, {
        hint: 'Free space (or raise the quota) on the filesystem of the snapshot directory on the node and check it can be written, then run the command again.',
      });
    }
    const tarOutcome = st.codes[0] === undefined ? 'failed' : tarCreateOutcome('gnu', st.codes[0]);
    if (tarOutcome === 'changed') return await liveFallback(fs, src, archive, `tar saw files change while it read them: ${text}`, op);
    // the status told is the stage's that failed (tar's), not the pipeline's (sha256sum's 0)
    const status = tarOutcome === 'failed' && st.codes[0] !== undefined ? st.codes[0] : r.code;
    if (r.code !== 0 || tarOutcome === 'failed' || st.codes[1] !== 0 || st.codes[2] !== 0 || !named) throw failed(fs, what, { ...r, code: status }, named ? text : `${text ? `${text}; ` : ''}tar ended without the manifest`);
    const sha = /^([0-9a-f]{64})\b/m.exec(r.stdout.toString('utf8'))?.[1];
    if (!sha) throw failed(fs, what, r, 'no SHA-256 of the archive');
    const again = await listTree(fs, src, op, { hashes: false });
    let change: string | undefined;
    try {
      change = firstChange(zipKeys(log, keys), sortedListing(fs, src, again, false));
    } finally {
      again.close();
    }
    if (change) return await liveFallback(fs, src, archive, change, op);
    const bytes = (await fs.lstat(archive))?.size ?? 0;
    shown.finish();
    progress?.done({ files: manifest.fileCount, bytes: manifest.totalBytes });
    made = true;
    // the log stays open: the manifest returned reads its entries from it when asked
    return { manifest, sha256: sha, bytes, format: 'tar.zst' };
  } catch (e) {
    await stopArchiving();
    throw e;
  } finally {
    await walk.settle();
    keys.close();
    if (!made) log.close();
    await alive?.stop();
    await fs.rm(mdir).catch(() => undefined);
  }
}

/** The manifest's paths with the statKeys logged beside them, in path order. */
function* zipKeys(log: ManifestLog, keys: KeyLog): Generator<{ path: string; key: Buffer }> {
  const k = keys.keys();
  for (const e of log.entries()) {
    const key = k.next();
    if (key.done) throw new Error('KeyLog: fewer keys than entries');
    yield { path: e.path, key: key.value };
  }
}

/**
 * Writes the manifest's text piece by piece (never whole: ~200 bytes a
 * file) to PATH on the node, through a temporary name renamed into place.
 */
async function writeManifestFile(fs: NodeFs, path: string, body: { length: number; pieces: () => Generator<Buffer> }): Promise<void> {
  const tmp = `${path}.tmp-${suffix()}`;
  const ws: Writable = fs.openWrite(tmp, 0o644);
  let error: Error | undefined;
  ws.on('error', (e: Error) => (error ??= e));
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  try {
    let written = 0;
    // each piece is copied: the log reuses its buffer for the next one
    for (const piece of body.pieces()) {
      if (error) throw error;
      written += piece.length;
      await writeAll(ws, Buffer.from(piece));
    }
    if (written !== body.length) throw new Error(`the manifest came out ${written} bytes, not ${body.length}`);
    ws.end();
    await closed;
    if (error) throw error;
    await fs.rename(tmp, path);
  } catch (e) {
    ws.destroy();
    await fs.rm(tmp).catch(() => undefined);
    throw e;
  }
}

/**
 * A tree that changed while the node archived it (a live disk): the
 * manifest made from the listing would not describe the archive, so the
 * archive is dropped and the snapshot is made by the streaming path, which
 * builds the manifest from what tar actually read (a crash-consistent copy).
 */
async function liveFallback(fs: NodeFs, src: string, archive: string, detail: string, op: Op): Promise<undefined> {
  await fs.rm(archive);
  logEvent(op, `snapshot through this machine, not on the node: ${src} changed while the node archived it (${detail}); stop the app (--quiesce) for a consistent snapshot`);
  return undefined;
}
