// The commands Kompox runs on a K3s node for copies that stay on the node
// (restore, disk copy, snapshot create; see node-local.ts), and the parsers
// of what they print. Pure: argv/script builders and output parsers, no I/O,
// so every format is unit-tested without SSH. Scripts take their paths as
// positional parameters ("$1", "$2", ...), never spliced into the text.
import type { ArchiveFormat, EntryKind, ManifestEntry, Seen } from '../../archive/archive.js';
import { DATA_DIR, MANIFEST_NAME, checkEntryPath, integrity, treeDigestOf } from '../../archive/archive.js';
import { pipeStatus, shellCommand, tarDialect, type TarDialect } from '../../archive/tar-command.js';
import { byPathOrder } from '../../archive/entry-sort.js';
import { ZSTD_LEVEL, ZSTD_MIN_MATCH } from '../../archive/zstd.js';
import { notUtf8Member, utf8Name } from '../../archive/utf8-names.js';
import { createHash } from 'node:crypto';
import { archivePathOf, noHash, type ListedEntry, type ListingSink } from '../../archive/listing-join.js';

/** `sh -c SCRIPT sh ARGS...`: the script sees ARGS as "$1", "$2", ... */
export function shArgv(script: string, ...args: string[]): string[] {
  return ['sh', '-c', script, 'sh', ...args];
}

// ---------------------------------------------------------------- tools

/** What node-local copies need of the node, probed once per connection. */
export interface NodeLocalTools {
  tar?: TarDialect;
  /** tar takes --sort=name (GNU tar 1.28 and later): what snapshotArgv archives in a set order with. */
  tarSort?: boolean;
  zstd: boolean;
  /** zstd takes `--zstd=` parameters (1.3.4 and later): snapshots get the archives' minimum match. */
  zstdParams?: boolean;
  gzip: boolean;
  /** sha256sum with -z (GNU coreutils): NUL-ended lines, names never escaped. */
  sha256sumZ: boolean;
  /** `openssl dgst -sha256 -r` (OpenSSL or LibreSSL): the faster hasher where it is there (NodeHasher). */
  opensslSha256: boolean;
  /** find with -printf (GNU findutils). */
  findPrintf: boolean;
  xargs: boolean;
  /** cp -a (GNU coreutils or busybox). */
  cpA: boolean;
}

/** One script printing a `name:` line per tool the node has (the tar line carries `tar --version`'s first line). */
export function toolsProbeArgv(): string[] {
  return shArgv(
    [
      'if command -v tar >/dev/null 2>&1; then echo "tar:$(tar --version 2>&1 | head -n 1)"; if tar --sort=name --version >/dev/null 2>&1; then echo tar-sort:; fi; fi',
      `if command -v zstd >/dev/null 2>&1; then echo zstd:; if zstd --zstd=mml=${ZSTD_MIN_MATCH} -q -c </dev/null >/dev/null 2>&1; then echo zstd-params:; fi; fi`,
      'if command -v gzip >/dev/null 2>&1; then echo gzip:; fi',
      "if printf '' | sha256sum -z >/dev/null 2>&1; then echo sha256sum-z:; fi",
      `if printf '' | openssl dgst -sha256 -r 2>/dev/null | grep -q '^${EMPTY_SHA256} '; then echo openssl-sha256:; fi`,
      "if find / -maxdepth 0 -printf '' >/dev/null 2>&1; then echo find-printf:; fi",
      'if command -v xargs >/dev/null 2>&1; then echo xargs:; fi',
      'if cp --help 2>&1 | grep -q -- -a; then echo cp-a:; fi',
      'true',
    ].join('\n'),
  );
}

export function parseTools(out: string): NodeLocalTools {
  const lines = out.split('\n').map((l) => l.trim());
  const has = (name: string) => lines.some((l) => l.startsWith(`${name}:`));
  const tarLine = lines.find((l) => l.startsWith('tar:'));
  return {
    ...(tarLine !== undefined ? { tar: tarDialect(tarLine.slice(4)) } : {}),
    tarSort: has('tar-sort'),
    zstd: has('zstd'),
    zstdParams: has('zstd-params'),
    gzip: has('gzip'),
    sha256sumZ: has('sha256sum-z'),
    opensslSha256: has('openssl-sha256'),
    findPrintf: has('find-printf'),
    xargs: has('xargs'),
    cpA: has('cp-a'),
  };
}

export type NodeLocalWork = 'restore' | 'copy' | 'snapshot';

/** SHA-256 of nothing: what the probe's `openssl dgst` must print. */
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/**
 * What hashes files and archives on the node. coreutils' sha256sum does not
 * use the CPU's SHA instructions: ~280 MB/s here, where `openssl dgst` runs
 * at ~1 GB/s (the benchmark disk's 20,070 files: 2.65 s against 1.09 s).
 * sha256sum stays the fallback, and for the names openssl would escape
 * (fileHashesScript).
 */
export type NodeHasher = 'openssl' | 'sha256sum';

export function nodeHasher(t: NodeLocalTools | undefined): NodeHasher {
  return t?.opensslSha256 ? 'openssl' : 'sha256sum';
}

/** The command hashing its stdin: its output starts with the 64 hex digits (sha256sum: `HEX  -`, openssl: `HEX *stdin`). */
function stdinSha256(h: NodeHasher): string {
  return h === 'openssl' ? 'openssl dgst -sha256 -r' : 'sha256sum';
}

/** find's -path patterns of names holding a newline, a carriage return or a backslash (after fileHashesScript's `nl=`, `cr=`). */
const ODD_NAMES = [`-path "*$nl*"`, `-path "*$cr*"`, `-path '*\\\\*'`];

/**
 * Prints `SHA256 *./PATH\0` (or `SHA256  ./PATH\0`) for every regular file
 * under the working directory, hashed in batches by xargs (not one process
 * per file). With openssl: the names openssl prints as they are (those
 * without a newline, carriage return or backslash, which OpenSSL versions
 * escape differently) go to openssl, with its newlines turned into NULs, and
 * the rest to sha256sum -z; openssl's exit status is kept through the pipe
 * (a command substitution reads it on fd 3), so a file it cannot read fails
 * the command as sha256sum's would.
 */
function fileHashesScript(h: NodeHasher): string {
  const sha256sum = (filter: string) => `find . -type f ${filter}-print0 | xargs -0 -r sha256sum -z`;
  if (h === 'sha256sum') return sha256sum('');
  const plain = `find . -type f ${ODD_NAMES.map((p) => `! ${p}`).join(' ')} -print0 | xargs -0 -r openssl dgst -sha256 -r`;
  return [
    "nl='\n'",
    "cr=$(printf '\\r')",
    `{ s=$( { { ${plain}; echo $? >&3; } | tr '\\n' '\\0' >&4; } 3>&1 ); } 4>&1`,
    `[ "$s" = 0 ] && ${sha256sum(`\\( ${ODD_NAMES.join(' -o ')} \\) `)}`,
  ].join('; ');
}

/**
 * Why the node cannot do `work` itself (a sentence for the log), or
 * undefined when it can. GNU tar is required: busybox tar has neither
 * --transform/--sort (snapshots) nor GNU tar's refusal to extract through
 * symlinks an archive made (restores); the listing needs GNU find and
 * sha256sum -z to print names of any bytes unambiguously.
 */
export function missingTools(t: NodeLocalTools, work: NodeLocalWork, format?: ArchiveFormat): string | undefined {
  const missing: string[] = [];
  if (!t.findPrintf) missing.push('GNU find (-printf)');
  if (!t.sha256sumZ) missing.push('sha256sum -z (GNU coreutils)');
  if (!t.xargs) missing.push('xargs');
  if (work === 'copy') {
    if (!t.cpA) missing.push('cp -a');
  } else {
    if (t.tar !== 'gnu') missing.push(t.tar ? `GNU tar (it has ${t.tar} tar)` : 'GNU tar');
    // before 1.28 (RHEL 7's 1.26): the snapshot's tar failed on the option, with no fallback
    else if (work === 'snapshot' && !t.tarSort) missing.push('GNU tar 1.28 or later (its tar has no --sort)');
    if (format === 'tar.gz' && !t.gzip) missing.push('gzip');
    if ((format ?? 'tar.zst') === 'tar.zst' && !t.zstd) missing.push('zstd');
  }
  return missing.length ? `the node lacks ${missing.join(', ')}` : undefined;
}

// ---------------------------------------------------------------- exit statuses inside pipelines

/** Written to stderr after each pipeline stage with its exit status (a pipeline's own status is its last stage's only). */
const STAGE_MARK = 'kompox-stage-';

/** `a | b | c` where each stage reports its exit status on stderr (see stageStatuses). */
export function pipeWithStatus(stages: readonly string[]): string {
  return stages.map((s, i) => `{ ${s}; echo "${STAGE_MARK}${i}:$?" >&2; }`).join(' | ');
}

/** The stages' exit statuses (undefined: the stage never finished) and stderr without the marks. */
export function stageStatuses(stderr: string, count: number): { codes: Array<number | undefined>; text: string } {
  const codes: Array<number | undefined> = [];
  let text = stderr;
  for (let i = 0; i < count; i++) {
    const r = pipeStatus(text, `${STAGE_MARK}${i}:`);
    codes.push(r.status);
    text = r.detail;
  }
  return { codes, text };
}

// ---------------------------------------------------------------- progress

/**
 * Starts a progress report a node-local command writes on stderr: a line
 * holding MARK and a number (tar prefixes it with `tar: `). HostFs.run hands
 * the numbers over (HostRunOptions.progress) and keeps those lines out of
 * the stderr tail that error messages quote (see progressSplitter).
 */
export const PROGRESS_MARK = 'kompox-progress:';

/** tar's record: 20 blocks of 512 bytes, set with -b so the byte count never depends on how tar was built. */
const TAR_RECORD = 20 * 512;
/** Records between two checkpoints: a line per ~7.8 MiB of tar stream (a line per record would be one per 10 KiB). */
const CHECKPOINT_RECORDS = 800;
/**
 * GNU tar options printing `tar: MARK<N>` on stderr every CHECKPOINT_RECORDS
 * records, N being the number of the record tar is about to write or read
 * (%u is tar's record counter, not the checkpoint's ordinal as its manual
 * suggests; see tarCheckpointBytes).
 */
const TAR_CHECKPOINTS = `-b 20 --checkpoint=${CHECKPOINT_RECORDS} --checkpoint-action=echo=${PROGRESS_MARK}%u`;

/**
 * The tar stream bytes written (tar -c) or read (tar -x) when tar reports
 * record N (TAR_CHECKPOINTS): a checkpoint comes just before that record.
 */
export function tarCheckpointBytes(n: number): number {
  return Math.max(0, n - 1) * TAR_RECORD;
}

const BLOCK = 512;
/** What a member of a Kompox archive takes beside its content: a pax extended header (mtime), its one block of records, the ustar header. */
const MEMBER_OVERHEAD = 3 * BLOCK;

/** Bytes rounded up to whole tar blocks (a member's content as stored). */
export function inBlocks(bytes: number): number {
  return Math.ceil(bytes / BLOCK) * BLOCK;
}

/**
 * The approximate size of a Kompox archive's tar stream (before
 * compression) holding MEMBERS members whose contents take BLOCKBYTES
 * (inBlocks of each): what tar's checkpoints count, to be mapped onto the
 * data bytes a progress shows. Approximate (a member without a fractional
 * mtime has no extended header, a long name takes more): callers clamp.
 */
export function tarStreamEstimate(members: number, blockBytes: number): number {
  const end = 2 * BLOCK;
  return Math.ceil((members * MEMBER_OVERHEAD + blockBytes + end) / TAR_RECORD) * TAR_RECORD;
}

/** tarStreamEstimate of the archive snapshotArgv writes of ENTRIES (a listing's, see manifestEntriesOf) and a manifest of MANIFESTBYTES. */
export function snapshotStreamEstimate(entries: readonly ManifestEntry[], manifestBytes: number): number {
  return tarStreamEstimate(entries.length + 1, entries.reduce((n, e) => n + inBlocks(e.size), inBlocks(manifestBytes)));
}

/** A guess of a manifest's bytes per file it lists (path, type, mode, size, SHA-256, indented JSON). */
const MANIFEST_BYTES_PER_FILE = 200;

/**
 * tarStreamEstimate for an archive known only by its file count and data
 * bytes (a snapshot's metadata, before it is extracted): directories and
 * symlinks are not counted, each file's padding is taken as half a block.
 */
export function archiveStreamEstimate(fileCount: number, totalBytes: number): number {
  const manifest = inBlocks(1024 + fileCount * MANIFEST_BYTES_PER_FILE);
  return tarStreamEstimate(fileCount + 2, totalBytes + (fileCount * BLOCK) / 2 + manifest);
}

/**
 * Splits a command's stderr (chunks as they come) into lines: each number
 * following MARK goes to `report`; every other byte goes on to `rest`, so
 * error messages never show progress lines. A line can arrive in pieces,
 * and a writer running beside tar (tar writes its prefix, message and
 * newline separately) can land inside a progress line: what is left of such
 * a line once its report is taken out goes to `rest` too, unless it is only
 * a program-name prefix (`tar: `). A line longer than MAX_LINE without a
 * newline is passed on as it is (no report is that long).
 */
export function progressSplitter(mark: string, report: (n: number) => void, rest: (b: Buffer) => void): { write(chunk: Buffer): void; end(): void } {
  const MAX_LINE = 64 * 1024;
  const markBytes = Buffer.from(mark);
  const token = new RegExp(`${mark.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\d+)`, 'g');
  let pending = Buffer.alloc(0);
  const line = (b: Buffer, nl: boolean) => {
    if (b.indexOf(markBytes) < 0) return rest(nl ? Buffer.concat([b, Buffer.from('\n')]) : b);
    const text = b.toString('utf8');
    for (const m of text.matchAll(token)) report(Number(m[1]));
    const left = text.replace(token, '');
    if (!/^\s*(?:\S+:\s*)?$/.test(left)) rest(Buffer.from(nl ? `${left}\n` : left));
  };
  return {
    write(chunk) {
      let buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10)) {
        line(buf.subarray(0, nl), true);
        buf = buf.subarray(nl + 1);
      }
      if (buf.length > MAX_LINE) {
        rest(buf);
        buf = Buffer.alloc(0);
      }
      pending = Buffer.from(buf);
    },
    end() {
      if (pending.length) line(pending, false);
      pending = Buffer.alloc(0);
    },
  };
}

// ---------------------------------------------------------------- tree listing

/** Separates the entry records from the hashes in a listing's output. */
const HASHES_MARK = 'kompox-hashes';

/**
 * One command listing the tree at "$1": for every entry (the root first,
 * as ``) `TYPE MODE SIZE MTIME CTIME PATH\0LINK\0`, then HASHES_MARK\0, then
 * `SHA256  ./PATH\0` for every regular file, hashed in batches by xargs (not
 * one process per file). NUL-separated: any name is read back exactly.
 * `hashes: false` (a change check) lists without reading file contents.
 */
export function listTreeArgv(dir: string, opts: ListTreeOptions = {}): string[] {
  if (opts.listed === undefined) return shArgv(listTreeScript('"$1"', opts), dir);
  return shArgv(listTreeScript('"$1"', opts, '"$2"'), dir, opts.listed);
}

export interface ListTreeOptions {
  /** false: without reading file contents (a change check). */
  hashes?: boolean;
  /** sha256sum unless said (NodeHasher). */
  hasher?: NodeHasher;
  /**
   * An absolute path the command creates once every entry is listed, before
   * any file is hashed (snapshotArgv's tar waits for it: LISTED_NAME).
   */
  listed?: string;
}

/** listTreeArgv's script for the directory DIR (a shell word, e.g. `"$1"`); LISTED (a shell word) is created once the entries are listed. */
function listTreeScript(dir: string, opts: ListTreeOptions = {}, listed?: string): string {
  const list = `cd -- ${dir} && find . -printf '%y %m %s %T@ %C@ %P\\0%l\\0'${listed !== undefined ? ` && : > ${listed}` : ''}`;
  const hashes = ` && printf '${HASHES_MARK}\\0' && { ${fileHashesScript(opts.hasher ?? 'sha256sum')}; }`;
  return list + (opts.hashes === false ? '' : hashes);
}

export { archivePathOf, noHash, type ListedEntry, type ListingSink } from '../../archive/listing-join.js';

const FIND_KINDS: Record<string, EntryKind> = { f: 'file', d: 'dir', l: 'symlink' };

/** Seconds with a fraction (find's %T@) as whole milliseconds, cut like the archive's pax mtimes. */
export function secondsToMs(text: string): number {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(text);
  if (!m) throw new Error(`unreadable time ${JSON.stringify(text)} in a node listing`);
  const ms = Number(m[2]) * 1000 + Number((m[3] ?? '').padEnd(3, '0').slice(0, 3));
  return m[1] ? -ms : ms;
}

/** A field longer than this without its NUL is not a listing's (names and link targets are bounded by PATH_MAX). */
const FIELD_MAX = 256 * 1024;

/**
 * Parses listTreeArgv's output as it streams (chunks cut anywhere): each
 * entry and each hash goes to `sink` as soon as its NUL arrives, so nothing
 * of the listing is held here but a partial field. With `endMark`, a field
 * equal to it ends the listing (in place of an entry record or a hash line),
 * and every byte after it goes to `after` as it is (extractArgv's manifest).
 * Throws on what it cannot read; end() throws when the listing stopped
 * short (no hashes when they were asked for, a record without its link).
 */
export class TreeListingParser {
  private phase: 'record' | 'link' | 'hashes' | 'after' = 'record';
  private rec: ListedEntry | undefined;
  private rest: Buffer | undefined;
  /** The pending record's text (its error message). */
  private recText = '';
  /** Whether the hashes mark was read. */
  sawHashes = false;
  /** Whether endMark was read. */
  sawEnd = false;

  constructor(
    private readonly sink: ListingSink,
    /** what: the listed tree in a refusal ("the listing of DIR"); under: put before a listed path there ("data/"). */
    private readonly opts: { hashes?: boolean; endMark?: string; after?: (b: Buffer) => void; what?: string; under?: string } = {},
  ) {}

  write(chunk: Buffer): void {
    if (this.phase === 'after') return void this.opts.after?.(chunk);
    const buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    this.rest = undefined;
    let start = 0;
    for (let at = buf.indexOf(0, start); at >= 0; at = buf.indexOf(0, start)) {
      const ended = this.field(buf.toString('utf8', start, at), buf.subarray(start, at));
      start = at + 1;
      if (ended) {
        if (start < buf.length) this.opts.after?.(buf.subarray(start));
        return;
      }
    }
    if (buf.length - start > FIELD_MAX) throw new Error(`unreadable node listing: a field of over ${FIELD_MAX} bytes`);
    // a copy: the chunk's buffer may be reused by its source
    if (start < buf.length) this.rest = Buffer.from(buf.subarray(start));
  }

  end(): void {
    if (this.rest) {
      // a last field without its NUL (the old whole-buffer parser read it too)
      const last = this.rest;
      this.rest = undefined;
      this.field(last.toString('utf8'), last);
    }
    if (this.phase === 'after') return;
    if (this.phase === 'link') throw new Error(`unreadable node listing record ${JSON.stringify(this.recText.slice(0, 200))}`);
    if (this.opts.hashes !== false && !this.sawHashes) throw new Error('the node listing ended before its hashes');
  }

  /**
   * Reads one field (`f`, decoded from `raw`); true when it was endMark (what
   * follows is no listing). A name or link target that is not UTF-8 is
   * refused (notUtf8Member): as text it would be another name, and a check
   * comparing it with an archive's would take `a\xff` and `a\uFFFD` for one.
   */
  private field(f: string, raw: Buffer): boolean {
    if (this.opts.endMark !== undefined && f === this.opts.endMark && this.phase !== 'link') {
      this.sawEnd = true;
      this.phase = 'after';
      return true;
    }
    if (this.phase === 'record') {
      if (f === HASHES_MARK) {
        this.sawHashes = true;
        this.phase = 'hashes';
        return false;
      }
      const m = /^(\S) (\d+) (\d+) (\S+) (\S+) ([\s\S]*)$/.exec(f);
      if (!m) throw new Error(`unreadable node listing record ${JSON.stringify(f.slice(0, 200))}`);
      const kind = FIND_KINDS[m[1]!] ?? 'other';
      // the fields before the name are ASCII: as many bytes as characters
      if (m[6]!.includes('\uFFFD')) this.checkName(raw.subarray(f.length - m[6]!.length));
      this.rec = { path: m[6]!, kind, mode: parseInt(m[2]!, 8) & 0o7777, size: Number(m[3]), mtimeMs: secondsToMs(m[4]!), ctime: m[5]! };
      this.recText = f;
      this.phase = 'link';
    } else if (this.phase === 'link') {
      const e = this.rec!;
      if (e.kind === 'symlink') {
        if (f.includes('\uFFFD')) this.checkName(raw, e.path);
        e.linkpath = f;
      }
      this.rec = undefined;
      this.phase = 'record';
      this.sink.entry(e);
    } else {
      const m = /^([0-9a-f]{64}) [ *]\.\/([\s\S]+)$/.exec(f);
      if (!m) throw new Error(`unreadable sha256sum line ${JSON.stringify(f.slice(0, 200))} in a node listing`);
      this.sink.hash(m[2]!, m[1]!);
    }
    return false;
  }

  /** Refuses the bytes of a name (or of the target of the symlink `link`) that are not UTF-8. */
  private checkName(raw: Buffer, link?: string): void {
    if (utf8Name(raw) === undefined) {
      const under = this.opts.under ?? '';
      throw notUtf8Member(this.opts.what ?? "the node's listing", link === undefined ? Buffer.concat([Buffer.from(under), raw]) : Buffer.from(raw), link === undefined ? undefined : `${under}${link}`);
    }
  }
}

/** Parses listTreeArgv's output whole (small listings, tests; the node-local copies stream it, see node-listing.ts). Every regular file must have its hash (unless listed without hashes). */
export function parseTreeListing(out: Buffer, opts: { hashes?: boolean } = {}): ListedEntry[] {
  const entries: ListedEntry[] = [];
  const hashes = new Map<string, string>();
  const p = new TreeListingParser({ entry: (e) => entries.push(e), hash: (path, sha) => hashes.set(path, sha) }, opts);
  p.write(out);
  p.end();
  if (opts.hashes === false) return entries;
  for (const e of entries) {
    if (e.kind !== 'file') continue;
    const h = hashes.get(e.path);
    if (!h) throw new Error(noHash(e.path));
    e.sha256 = h;
  }
  return entries;
}

/** A listed entry as a manifest lists it (not for `other` kinds, which archives never hold). */
export function manifestEntryOf(e: ListedEntry): ManifestEntry {
  if (e.kind === 'other') throw new Error(`${archivePathOf(e)} is not a file, directory or symlink`);
  const m: ManifestEntry = { path: archivePathOf(e), type: e.kind, mode: e.mode, size: e.kind === 'file' ? e.size : 0 };
  if (e.sha256) m.sha256 = e.sha256;
  if (e.linkpath !== undefined) m.linkpath = e.linkpath;
  return m;
}

/**
 * The listing as manifest entries (in path order, parents first) and, apart,
 * what archives never hold (sockets, fifos, devices), by path.
 */
export function manifestEntriesOf(listed: readonly ListedEntry[]): { entries: ManifestEntry[]; others: string[] } {
  const entries: ManifestEntry[] = [];
  const others: string[] = [];
  for (const e of listed) {
    if (e.kind === 'other') others.push(archivePathOf(e));
    else entries.push(manifestEntryOf(e));
  }
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { entries, others: others.sort() };
}

/** The tree digest (treeDigestOf) of a listing, leaving out what archives never hold. */
export function treeDigestOfListing(listed: readonly ListedEntry[]): string {
  return treeDigestOf(manifestEntriesOf(listed).entries);
}

/** What verifyManifest compares an extracted tree with, from a listing. */
export function seenOf(entries: readonly ManifestEntry[]): Map<string, Seen> {
  const seen = new Map<string, Seen>();
  for (const e of entries) {
    const s: Seen = { type: e.type, mode: e.mode, size: e.size };
    if (e.sha256) s.sha256 = e.sha256;
    if (e.linkpath !== undefined) s.linkpath = e.linkpath;
    seen.set(e.path, s);
  }
  return seen;
}

/** Bytes of a statKey. */
export const STAT_KEY_BYTES = 8;

/**
 * What the change check (firstChange) compares of an entry, in
 * STAT_KEY_BYTES: a hash of its type, mode, size, mtime, ctime and link
 * target (a few bytes per entry, kept in path order between the two
 * listings of a snapshot instead of the entries).
 */
export function statKey(e: ListedEntry): Buffer {
  return createHash('sha256')
    .update(`${e.kind} ${e.mode} ${e.size} ${e.mtimeMs} ${e.ctime} ${e.linkpath === undefined ? '-' : JSON.stringify(e.linkpath)}`)
    .digest()
    .subarray(0, STAT_KEY_BYTES);
}

/**
 * The first difference (in path order) between two listings of one tree,
 * each in path order (archive paths): BEFORE as paths with their statKey,
 * AFTER as listed entries. A merge of the two: nothing is held.
 */
export function firstChange(before: Iterable<{ path: string; key: Buffer }>, after: Iterable<ListedEntry>): string | undefined {
  const b = before[Symbol.iterator]();
  let x = b.next();
  for (const e of after) {
    const path = archivePathOf(e);
    if (!x.done && x.value.path < path) return `${x.value.path} was removed`;
    if (x.done || x.value.path !== path) return `${path} was added`;
    if (!statKey(e).equals(x.value.key)) return `${path} changed`;
    x = b.next();
  }
  return x.done ? undefined : `${x.value.path} was removed`;
}

/** The first difference in type, mode, size, mtime, ctime or link target between two listings of one tree (a change check), or undefined. */
export function listingChange(before: readonly ListedEntry[], after: readonly ListedEntry[]): string | undefined {
  const sorted = (l: readonly ListedEntry[]) => [...l].sort((a, c) => byPathOrder(archivePathOf(a), archivePathOf(c)));
  return firstChange(
    sorted(before).map((e) => ({ path: archivePathOf(e), key: statKey(e) })),
    sorted(after),
  );
}

// ---------------------------------------------------------------- archives

/** The node's decompressor of an archive on stdin. */
function decompress(format: ArchiveFormat): string {
  return format === 'tar.gz' ? 'gzip -dc' : 'zstd -dc -q';
}

const C_ESCAPES: Record<string, number> = { n: 10, t: 9, r: 13, f: 12, b: 8, v: 11, a: 7, '\\': 92, '"': 34, "'": 39, '?': 63, ' ': 32 };

/** One member name from `tar -t --quoting-style=escape` (C escapes, octal for other bytes), decoded as UTF-8; a name that is not UTF-8 is refused. */
export function unescapeTarName(line: string): string {
  const bytes: number[] = [];
  const raw = Buffer.from(line, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c !== 92) {
      bytes.push(c);
      continue;
    }
    const next = String.fromCharCode(raw[i + 1] ?? 0);
    const oct = /^[0-7]{3}$/.exec(raw.toString('latin1', i + 1, i + 4));
    if (oct) {
      bytes.push(parseInt(oct[0], 8));
      i += 3;
    } else if (C_ESCAPES[next] !== undefined) {
      bytes.push(C_ESCAPES[next]!);
      i += 1;
    } else {
      throw new Error(`unreadable tar member name ${JSON.stringify(line)}`);
    }
  }
  const name = Buffer.from(bytes);
  const text = utf8Name(name);
  // as text it would be another name (the names checked would not be the ones extracted)
  if (text === undefined) throw notUtf8Member('the archive', name);
  return text;
}

/** Member names from `tar -t --quoting-style=escape` (C escapes, octal for other bytes), decoded as UTF-8. */
export function parseTarNames(out: string): string[] {
  return out.split('\n').filter((line) => line !== '').map(unescapeTarName);
}

/**
 * The refusals unpackArchive makes of entry names, made on the names before
 * anything is extracted: absolute paths, `..`, anything outside data/, a
 * name twice; the manifest once, last.
 */
export function checkArchiveNames(names: readonly string[]): void {
  const seen = new Set<string>();
  for (const raw of names) {
    const path = checkEntryPath(raw);
    if (seen.has(path)) throw integrity(`the archive contains ${path} twice`);
    seen.add(path);
  }
  if (!seen.has(MANIFEST_NAME)) throw integrity(`the archive ends without ${MANIFEST_NAME}: it is truncated or not a Kompox archive`);
  if (checkEntryPath(names[names.length - 1]!) !== MANIFEST_NAME) throw integrity(`the archive has entries after ${MANIFEST_NAME}; this is not a Kompox archive`);
}

/** Written to stderr before the archive's SHA-256 by extractArgv. */
const SHA_MARK = 'kompox-sha256:';

/**
 * Extracts archive "$1" into the new directory "$2" (modes as stored, and
 * owners by number when root, as unpackArchive sets them) in
 * one pass, printing each member name as GNU tar escapes it (see
 * parseTarNames) on stdout, then the listing of "$2/data" (listTreeArgv's,
 * see splitExtractOutput), and the archive's SHA-256 (read beside it, from
 * the page cache) on stderr, after everything else. GNU tar refuses `..` members and strips leading
 * `/`, so nothing lands outside "$2"; the names are checked again by Kompox
 * (checkArchiveNames) before anything becomes visible. tar reports the
 * tar stream bytes it has read as it goes (PROGRESS_MARK lines on stderr,
 * see tarCheckpointBytes); with `progress: 'read'` (an archive file only)
 * the lines count the archive file's bytes the decompressor has read
 * instead (READ_PROGRESS_LOOP), and tar prints none. Stages: 0 decompress,
 * 1 tar -x. ARCHIVE undefined: the archive comes on stdin (an import
 * streamed to the node), and no SHA-256 is printed (the sender hashes what
 * it sends).
 */
export function extractArgv(archive: string | undefined, dest: string, format: ArchiveFormat, hasher: NodeHasher = 'sha256sum', progress: 'tar' | 'read' = 'tar'): string[] {
  const byRead = progress === 'read' && archive !== undefined;
  // the archive opened once, on fd 5, by the stage: the decompressor reads it through a descriptor that
  // shares its offset with the loop's (a file that cannot be opened fails the stage as `< "$1"` did)
  const decompressing = archive === undefined
    ? decompress(format)
    : byRead
      ? `{ { ${READ_PROGRESS_LOOP}\n} >&2 & l=$!; ${decompress(format)} <&5; s=$?; kill $l 2>/dev/null; (exit $s); } 5< "$1"`
      : `${decompress(format)} < "$1"`;
  // --no-unquote: tar -x takes escapes in -C's directory (`\\b` in a path) as if it were a quoted name;
  // no warning per file with a time stamp in the future (a clock that was ahead): a flood of them pushed the
  // statuses out of the stderr tail they are read from, failing a valid archive
  const extract = pipeWithStatus([
    decompressing,
    `tar -x -v -p --numeric-owner --warning=no-timestamp ${byRead ? '' : `${TAR_CHECKPOINTS} `}-f - --no-unquote -C "$2" --quoting-style=escape`,
  ]);
  const script = [
    // only root reaches what tar makes there before it is checked (a forged archive's device node, a setuid file)
    'mkdir -m 700 -- "$2" || exit 1',
    // the archive's SHA-256, read beside tar into $sha (tar's names go to the script's stdout, fd 4), printed last;
    // from stdin (no archive file): the SHA-256 is the sender's to take
    archive !== undefined ? `{ sha=$( ${stdinSha256(hasher)} < "$1" & { ${extract}; } >&4; wait $! ); } 4>&1` : extract,
    // the extracted tree's listing in the same command (one exec channel fewer on the restore's critical path);
    // read only when tar succeeded
    `printf '\\0${LISTING_MARK}\\0'`,
    `if [ -d "$2/data" ] && [ ! -L "$2/data" ]; then ${listTreeScript('"$2/data"', { hasher })}; fi`,
    // the manifest (a regular file only, as unpackArchive reads it), read as it streams instead of over SFTP whole
    `if [ -f "$2/${MANIFEST_NAME}" ] && [ ! -L "$2/${MANIFEST_NAME}" ]; then printf '${MANIFEST_MARK}\\0' && cat -- "$2/${MANIFEST_NAME}"; fi`,
    // the last line of stderr: tar's messages (which quote what the archive holds: names, pax keywords) all come before
    ...(archive !== undefined ? [`[ -z "$sha" ] || printf '%s%s\\n' ${SHA_MARK} "$sha" >&2`] : []),
  ].join('\n');
  return shArgv(script, archive ?? '', dest);
}

/**
 * extractArgv's progress for an archive file tar's checkpoints cannot be
 * mapped onto (no snapshot metadata says how big its tar stream is): every
 * second, the offset of the file's descriptor 5, which the decompressor
 * reads through (one open file, so one offset), as a PROGRESS_MARK line: the
 * archive's bytes read so far, out of its size. /proc/self/fdinfo and
 * shell builtins only; the loop ends once that cannot be read, and is
 * killed when the decompressor ends (its sleep keeps no hold on stderr).
 */
const READ_PROGRESS_LOOP = [
  'while sleep 1 >/dev/null 2>&1; do',
  '  o=; while read -r k v; do [ "$k" = pos: ] && o=$v; done 2>/dev/null < /proc/self/fdinfo/5; [ -n "$o" ] || break',
  `  echo "${PROGRESS_MARK}$o"`,
  'done',
].join('\n');

/** Separates tar's member names from the listing in extractArgv's output. */
const LISTING_MARK = 'kompox-listing';
/** Separates the listing from the manifest's bytes in extractArgv's output. */
export const MANIFEST_MARK = 'kompox-manifest';

/** extractArgv's output: the member names (text) and the listing of the extracted data/ (for parseTreeListing; empty when there is none). */
export function splitExtractOutput(out: Buffer): { names: string; listing: Buffer; manifest?: Buffer } {
  const mark = Buffer.from(`\0${LISTING_MARK}\0`);
  const at = out.indexOf(mark);
  if (at < 0) return { names: out.toString('utf8'), listing: Buffer.alloc(0) };
  const names = out.toString('utf8', 0, at);
  const listing = out.subarray(at + mark.length);
  // the manifest mark where a record starts (the listing's fields all end with NUL)
  const m = Buffer.from(`${MANIFEST_MARK}\0`);
  for (let i = listing.indexOf(m); i >= 0; i = listing.indexOf(m, i + 1)) {
    if (i === 0 || listing[i - 1] === 0) return { names, listing: listing.subarray(0, i), manifest: listing.subarray(i + m.length) };
  }
  return { names, listing };
}

/**
 * Parses extractArgv's output as it streams: each member name tar printed
 * goes to `name` (its line, escaped), then the listing of the extracted
 * data/ to `listing` (a TreeListingParser whose endMark is MANIFEST_MARK, so
 * the manifest's bytes go on to its `after`). Throws what those throw.
 */
export class ExtractOutputParser {
  private phase: 'names' | 'mark' | 'listing' = 'names';
  private line: Buffer | undefined;
  private mark = '';

  constructor(
    private readonly name: (escaped: string) => void,
    private readonly listing: TreeListingParser,
  ) {}

  write(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && this.phase !== 'listing') {
      if (this.phase === 'names') {
        const nul = chunk.indexOf(0, at);
        const upto = nul < 0 ? chunk.length : nul;
        for (let nl = chunk.indexOf(10, at); nl >= 0 && nl < upto; nl = chunk.indexOf(10, at)) {
          this.lineEnd(chunk.subarray(at, nl));
          at = nl + 1;
        }
        this.linePart(chunk.subarray(at, upto));
        at = upto;
        if (nul >= 0) {
          this.lineEnd(Buffer.alloc(0));
          this.phase = 'mark';
          at = nul + 1;
        }
      } else {
        const nul = chunk.indexOf(0, at);
        this.mark += chunk.toString('latin1', at, nul < 0 ? chunk.length : nul);
        if (this.mark.length > LISTING_MARK.length) throw new Error('unreadable extraction output: no listing mark after the member names');
        if (nul < 0) return;
        if (this.mark !== LISTING_MARK) throw new Error('unreadable extraction output: no listing mark after the member names');
        this.phase = 'listing';
        at = nul + 1;
      }
    }
    if (at < chunk.length) this.listing.write(at ? chunk.subarray(at) : chunk);
  }

  /** The output ended: whether the listing began (tar's names and the listing both came). */
  end(): boolean {
    if (this.phase === 'names') this.lineEnd(Buffer.alloc(0));
    if (this.phase !== 'listing') return false;
    this.listing.end();
    return true;
  }

  private linePart(b: Buffer): void {
    if (!b.length) return;
    this.line = this.line ? Buffer.concat([this.line, b]) : Buffer.from(b);
    if (this.line.length > FIELD_MAX) throw new Error(`unreadable tar member name: a line of over ${FIELD_MAX} bytes`);
  }

  private lineEnd(b: Buffer): void {
    this.linePart(b);
    const line = this.line;
    this.line = undefined;
    if (line?.length) this.name(line.toString('utf8'));
  }
}

/**
 * The archive's SHA-256 extractArgv reported, if it did: its last line of
 * that form (tar's messages before it can quote such text from the archive).
 */
export function extractedSha256(stderr: string): string | undefined {
  let sha: string | undefined;
  for (const m of stderr.matchAll(new RegExp(`${SHA_MARK}([0-9a-f]{64})`, 'g'))) sha = m[1];
  return sha;
}

/** stderr without extractArgv's SHA-256 line. */
export function withoutSha256(stderr: string): string {
  return stderr.replace(new RegExp(`${SHA_MARK}[^\\n]*\\n?`, 'g'), '').trim();
}

/**
 * The refusal unpackArchive would make, from what GNU tar said about a
 * member it would not extract as named: one with `..` (skipped), one under
 * a symlink it extracted (GNU tar leaves a placeholder file for symlinks
 * pointing outside until the end, so nothing is written through them), or
 * an absolute one (its leading `/` stripped; -v then prints the stripped
 * name).
 */
export function tarRefusal(stderr: string): Error | undefined {
  const dots = /^tar: (.*): Member name contains '\.\.'$/m.exec(stderr);
  if (dots) return integrity(`archive entry ${JSON.stringify(dots[1])} leaves the disk (contains ".."); refusing to extract it`);
  const through = /^tar: (.*): Cannot open: Not a directory$/m.exec(stderr);
  if (through) return integrity(`archive entry ${JSON.stringify(through[1])} lies under a symlink or a file, not a directory; refusing to extract it`);
  const lead = /^tar: Removing leading [`'](.*)' from (?:member names|hard link targets)$/m.exec(stderr);
  if (lead) return integrity(`archive entries start with ${JSON.stringify(lead[1])} (an absolute path or ".."); refusing to extract them`);
  return undefined;
}

/** Whether a failed extraction says the node's disk or permissions (not the archive) are at fault. */
export function hostProblem(stderr: string): boolean {
  return /No space left on device|Disk quota exceeded|Read-only file system|Permission denied|Operation not permitted/i.test(stderr);
}

/** Seconds between two reports of the bytes cp has written (copyTreeArgv). */
const COPY_POLL_SECONDS = 1;

/**
 * A loop (shell, run beside the copier whose pid is $c) that reports every
 * COPY_POLL_SECONDS the bytes it has written as PROGRESS_MARK lines: its
 * `wchar` (/proc/PID/io), plus what lies in its files open for writing
 * beyond their offsets. The second part is a write still in progress, which
 * wchar and the offset only count once the system call returns: GNU cp 9
 * copies a whole file with one copy_file_range (up to 2 GiB a call, in the
 * kernel), so wchar alone stayed 0 for the length of a file's copy (all of a
 * disk holding one big file). /proc reads and shell builtins only, besides
 * one stat per file open for writing (the size: busybox's and GNU's stat -L
 * of /proc/PID/fd/N); a copier that writes with write(2) (busybox cp) has
 * its offsets at its sizes and wchar says it all. wchar is read first: a
 * call that ends between the reads is then missed once (a smaller report,
 * ignored), never counted twice. Where /proc/PID/io cannot be read (no task
 * I/O accounting, a hardened /proc) the loop ends at once; a descriptor's
 * fdinfo or size that cannot be read only leaves its part out. Descriptors
 * 0 to 2 are the command's own (stdout a pipe of the SSH channel).
 */
const COPY_PROGRESS_LOOP = [
  `while sleep ${COPY_POLL_SECONDS} >/dev/null 2>&1; do`,
  '  w=; while read -r k v; do [ "$k" = wchar: ] && w=$v; done 2>/dev/null < "/proc/$c/io"; [ -n "$w" ] || break',
  '  for f in /proc/$c/fdinfo/*; do',
  '    n=${f##*/}; [ "$n" -gt 2 ] 2>/dev/null || continue',
  '    p=; l=; while read -r k v; do case $k in pos:) p=$v ;; flags:) l=$v ;; esac; done 2>/dev/null < "$f"',
  // the access mode is the flags' last octal digit's two low bits: 1 O_WRONLY, 2 O_RDWR
  '    case $l in *[1256]) ;; *) continue ;; esac',
  '    s=$(stat -L -c %s "/proc/$c/fd/$n" 2>/dev/null) && [ "$s" -gt "$p" ] 2>/dev/null && w=$((w + s - p))',
  '  done',
  `  echo "${PROGRESS_MARK}$w"`,
  'done',
].join('\n');

/**
 * Copies the tree "$1" to the new path "$2" (modes, ownership when root,
 * times, symlinks as they are), then lists "$2" (listTreeArgv's output) in
 * the same command; the command fails, with cp's status, when cp does.
 *
 * cp prints no progress, so a loop beside it reports every second the bytes
 * cp has written so far (COPY_PROGRESS_LOOP) as PROGRESS_MARK lines on
 * stderr. Polling keeps cp -a as it is (sparse files, reflinks and
 * in-kernel copies stay as fast as today, which a `tar -c | tar -x` pipe
 * would lose, and there is no second way to copy to keep correct beside the
 * cp -a fallback). The loop's sleep keeps no hold on stderr, so the command
 * ends with cp.
 */
export function copyTreeArgv(src: string, dest: string, hasher: NodeHasher = 'sha256sum'): string[] {
  const script = [
    'cp -a -- "$1" "$2" & c=$!',
    `{ ${COPY_PROGRESS_LOOP}\n} >&2 &`,
    'p=$!',
    'wait $c; s=$?',
    'kill $p 2>/dev/null',
    '[ $s -eq 0 ] || exit $s',
    listTreeScript('"$2"', { hasher }),
  ].join('\n');
  return shArgv(script, src, dest);
}

/**
 * What to do when the node's zstd failed compressing (an export over SSH, a
 * snapshot on the node): without zstd on the SSH user's PATH, both go the way
 * that needs none (plain tar over the link, the snapshot made here).
 */
export const NODE_ZSTD_HINT = "Check the node's zstd (that it runs, with memory to spare), or take it off the SSH user's PATH: the export and the snapshot then need none on the node.";

/**
 * The node's zstd for an archive's data: all cores, at `level` (the
 * archives' level unless the user chose another: `--level`). Level 3 made
 * the benchmark disk's snapshot 462,473,160 bytes, 0.36% larger than
 * `tar | gzip -6`; level 5 456,836,879 (0.87% smaller), for 30% more time
 * on two CPUs shared with the workstation (docs/benchmarks.md). Where the
 * node's zstd takes `--zstd=` (`params`): `windowLog` when given (the
 * link's window, for a stream the workstation decompresses), and at the
 * archives' level their minimum match, as packTree's frames have it (the
 * benchmark disk's snapshot 0.5% smaller, for 4% less CPU).
 */
export function nodeArchiveZstd(level: number, params: boolean, windowLog?: number): string {
  const p = [...(windowLog !== undefined ? [`wlog=${windowLog}`] : []), ...(level === ZSTD_LEVEL ? [`mml=${ZSTD_MIN_MATCH}`] : [])];
  return `zstd -T0 -${Math.trunc(level)}${params && p.length ? ` --zstd=${p.join(',')}` : ''} -q -c`;
}

/**
 * GNU tar's flags for members as Kompox writes them: pax, under data/ (the
 * tree's `.` renamed), hard links stored as files, owners by number only,
 * no atime/ctime. Snapshots on the node (snapshotArgv) and exports packed on
 * the node (packedTarScript in ssh-hostfs.ts) both write them.
 */
export const KOMPOX_MEMBER_FLAGS: readonly string[] = [
  '--format=pax',
  '--hard-dereference',
  '--numeric-owner',
  '--pax-option=delete=atime,delete=ctime',
  `--transform=s,^\\.,${DATA_DIR},S`,
];

/** Printed on stderr by snapshotArgv's name list once it has named the manifest (tar archives it then). */
export const MANIFEST_NAMED_MARK = 'kompox-manifest-named';
/**
 * Made in snapshotArgv's manifest directory by the listing beside it once
 * every entry's stat is taken (ListTreeOptions.listed): only then does tar
 * start reading the tree. A file changed after tar read it but before that
 * stat would be in the manifest as changed (listed and hashed so) and in the
 * archive as it was, and the listing after tar, taken after the change too,
 * would not see it: the snapshot would fail its checks only when restored.
 */
export const LISTED_NAME = 'kompox-listed';
/**
 * How long snapshotArgv's name list waits for the manifest while nothing
 * refreshes its directory: the driver's heartbeat touches it every 5
 * minutes; past this the operation is taken for gone (kompoxops died).
 */
const MANIFEST_WAIT_MINUTES = 15;

/**
 * Writes a Kompox archive of the tree "$1" to the new file "$3" while the
 * manifest is still being made: the tree under data/ (pax, sorted, hard
 * links stored as files, no atime/ctime, owners by number only, as the
 * archive writer stores them), then the manifest file
 * "$2/kompox-archive.json" as the last member. tar reads its member names
 * from a pipe, and GNU tar takes them as it goes: the tree is named once the
 * listing beside has taken every entry's stat ("$2/LISTED_NAME" exists),
 * the manifest only once it exists (Kompox writes it there when the listing
 * and hashing it runs beside this command have ended; the name list then
 * prints MANIFEST_NAMED_MARK). So the node archives and hashes the tree at
 * the same time instead of one after the other. If "$2" goes away or nothing
 * refreshed it for MANIFEST_WAIT_MINUTES, the list ends without the
 * manifest (no mark; the archive is never used). Prints the archive's
 * SHA-256, computed from the stream as it is written. tar reports the tar
 * stream bytes it has written (PROGRESS_MARK lines, see tarCheckpointBytes).
 * zstd compresses at `level` (nodeArchiveZstd).
 * Stages: 0 tar -c, 1 zstd, 2 tee (the file).
 */
export function snapshotArgv(src: string, manifestDir: string, archive: string, hasher: NodeHasher = 'sha256sum', zstdParams = false, level: number = ZSTD_LEVEL): string[] {
  const names = [
    // waits for the file "$2/$1": polled every 50 ms; whether the directory is still kept fresh, every 5 s
    `w() { i=0; while [ ! -e "$2/$1" ]; do [ -d "$2" ] || exit 1; i=$((i + 1)); if [ $((i % 100)) -eq 0 ] && [ -n "$(find "$2" -maxdepth 0 -mmin +${MANIFEST_WAIT_MINUTES})" ]; then exit 1; fi; sleep 0.05; done; }`,
    // tar reads no file before the listing beside it has taken every file's stat (see LISTED_NAME)
    `w ${LISTED_NAME} "$2"`,
    `printf '.\\n'`,
    `w ${MANIFEST_NAME} "$2"`,
    // the manifest's directory by the descriptor the script opened on it (fd 3): a -C line of the name list
    // is split and unquoted by tar like a command line, so a path of any bytes (a space) would not come through
    `printf -- '-C /proc/self/fd/3\\n%s\\n' ${MANIFEST_NAME}`,
    `echo ${MANIFEST_NAMED_MARK} >&2`,
  ].join('; ');
  const tar = [
    `{ ${names}; } | tar -c -f - ${TAR_CHECKPOINTS} --sort=name ${shellCommand(KOMPOX_MEMBER_FLAGS)}`,
    // the tree's directory as an argument of its own (never parsed)
    '-C "$1" -T -',
  ].join(' ');
  // umask 077: the archive holds the disk's data (mode 0600, as the streaming path writes it); set -C: never overwrite
  return shArgv(`umask 077 && set -C && : > "$3" && exec 3< "$2" && ${pipeWithStatus([tar, nodeArchiveZstd(level, zstdParams), 'tee "$3"'])} | ${stdinSha256(hasher)}`, src, manifestDir, archive);
}

// ---------------------------------------------------------------- durability

/**
 * Syncs "$1" on the node before it is made visible: the file's data (or the
 * directory's entries) with `sync FILE` where `sync` takes files (coreutils
 * 8.24 and later, busybox built with them: their usage names FILE), else
 * every filesystem with `sync` (older tools: more work, same guarantee).
 * SshHostFs uses it only when the server has no fsync@openssh.com.
 */
export function syncFileArgv(path: string): string[] {
  return shArgv('if sync --help 2>&1 | grep -q FILE; then exec sync -- "$1"; fi; exec sync', path);
}

/**
 * Syncs everything written under the directory "$1" on the node, before the
 * tree is renamed into place: `sync -f` (syncfs(2) of its filesystem: one
 * flush, where an fsync per file of a tree costs a journal commit each),
 * else `sync` of every filesystem where `sync` has no -f.
 */
export function syncTreeArgv(dir: string): string[] {
  return shArgv("if sync --help 2>&1 | grep -q -e '-f'; then exec sync -f -- \"$1\"; fi; exec sync", dir);
}
