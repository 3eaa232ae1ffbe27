// The commands Kompox runs on a K3s node for copies that stay on the node
// (restore, disk copy, snapshot create; see node-local.ts), and the parsers
// of what they print. Pure: argv/script builders and output parsers, no I/O,
// so every format is unit-tested without SSH. Scripts take their paths as
// positional parameters ("$1", "$2", ...), never spliced into the text.
import type { ArchiveFormat, EntryKind, ManifestEntry, Seen } from '../../archive/archive.js';
import { DATA_DIR, MANIFEST_NAME, checkEntryPath, integrity, treeDigestOf } from '../../archive/archive.js';
import { pipeStatus, tarDialect, type TarDialect } from '../../archive/tar-command.js';

/** `sh -c SCRIPT sh ARGS...`: the script sees ARGS as "$1", "$2", ... */
export function shArgv(script: string, ...args: string[]): string[] {
  return ['sh', '-c', script, 'sh', ...args];
}

// ---------------------------------------------------------------- tools

/** What node-local copies need of the node, probed once per connection. */
export interface NodeLocalTools {
  tar?: TarDialect;
  zstd: boolean;
  gzip: boolean;
  /** sha256sum with -z (GNU coreutils): NUL-ended lines, names never escaped. */
  sha256sumZ: boolean;
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
      'if command -v tar >/dev/null 2>&1; then echo "tar:$(tar --version 2>&1 | head -n 1)"; fi',
      'if command -v zstd >/dev/null 2>&1; then echo zstd:; fi',
      'if command -v gzip >/dev/null 2>&1; then echo gzip:; fi',
      "if printf '' | sha256sum -z >/dev/null 2>&1; then echo sha256sum-z:; fi",
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
    zstd: has('zstd'),
    gzip: has('gzip'),
    sha256sumZ: has('sha256sum-z'),
    findPrintf: has('find-printf'),
    xargs: has('xargs'),
    cpA: has('cp-a'),
  };
}

export type NodeLocalWork = 'restore' | 'copy' | 'snapshot';

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
export function listTreeArgv(dir: string, opts: { hashes?: boolean } = {}): string[] {
  return shArgv(listTreeScript('"$1"', opts), dir);
}

/** listTreeArgv's script for the directory DIR (a shell word, e.g. `"$1"`). */
function listTreeScript(dir: string, opts: { hashes?: boolean } = {}): string {
  const list = `cd -- ${dir} && find . -printf '%y %m %s %T@ %C@ %P\\0%l\\0'`;
  const hashes = ` && printf '${HASHES_MARK}\\0' && find . -type f -print0 | xargs -0 -r sha256sum -z`;
  return list + (opts.hashes === false ? '' : hashes);
}

/** One entry of a node listing; `path` is relative to the listed directory (`` for itself). */
export interface ListedEntry {
  path: string;
  kind: EntryKind | 'other';
  mode: number;
  size: number;
  mtimeMs: number;
  /**
   * The status change time as find printed it (to the nanosecond where the
   * filesystem keeps it): changed by every write and never set by hand,
   * what the change check (listingChange) relies on.
   */
  ctime: string;
  linkpath?: string;
  sha256?: string;
}

const FIND_KINDS: Record<string, EntryKind> = { f: 'file', d: 'dir', l: 'symlink' };

/** Seconds with a fraction (find's %T@) as whole milliseconds, cut like the archive's pax mtimes. */
export function secondsToMs(text: string): number {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(text);
  if (!m) throw new Error(`unreadable time ${JSON.stringify(text)} in a node listing`);
  const ms = Number(m[2]) * 1000 + Number((m[3] ?? '').padEnd(3, '0').slice(0, 3));
  return m[1] ? -ms : ms;
}

/** Parses listTreeArgv's output. Every regular file must have its hash (unless listed without hashes). */
export function parseTreeListing(out: Buffer, opts: { hashes?: boolean } = {}): ListedEntry[] {
  const fields = splitNul(out);
  const entries: ListedEntry[] = [];
  let i = 0;
  for (; i < fields.length; i += 2) {
    const rec = fields[i]!;
    if (rec === HASHES_MARK) break;
    const m = /^(\S) (\d+) (\d+) (\S+) (\S+) ([\s\S]*)$/.exec(rec);
    if (!m || i + 1 >= fields.length) throw new Error(`unreadable node listing record ${JSON.stringify(rec.slice(0, 200))}`);
    const kind = FIND_KINDS[m[1]!] ?? 'other';
    const e: ListedEntry = { path: m[6]!, kind, mode: parseInt(m[2]!, 8) & 0o7777, size: Number(m[3]), mtimeMs: secondsToMs(m[4]!), ctime: m[5]! };
    if (kind === 'symlink') e.linkpath = fields[i + 1]!;
    entries.push(e);
  }
  if (opts.hashes === false) return entries;
  if (fields[i] !== HASHES_MARK) throw new Error('the node listing ended before its hashes');
  const hashes = new Map<string, string>();
  for (const rec of fields.slice(i + 1)) {
    const m = /^([0-9a-f]{64}) [ *]\.\/([\s\S]+)$/.exec(rec);
    if (!m) throw new Error(`unreadable sha256sum line ${JSON.stringify(rec.slice(0, 200))} in a node listing`);
    hashes.set(m[2]!, m[1]!);
  }
  for (const e of entries) {
    if (e.kind !== 'file') continue;
    const h = hashes.get(e.path);
    if (!h) throw new Error(`the node listing has no SHA-256 for ${JSON.stringify(e.path)} (it changed or could not be read)`);
    e.sha256 = h;
  }
  return entries;
}

/** NUL-separated fields (a trailing NUL ends the last one), decoded as UTF-8. */
function splitNul(out: Buffer): string[] {
  const fields: string[] = [];
  let start = 0;
  for (let at = out.indexOf(0, start); at >= 0; at = out.indexOf(0, start)) {
    fields.push(out.toString('utf8', start, at));
    start = at + 1;
  }
  if (start < out.length) fields.push(out.toString('utf8', start));
  return fields;
}

/** The archive path of a listed entry (`data`, `data/...`). */
export function archivePathOf(e: ListedEntry): string {
  return e.path ? `${DATA_DIR}/${e.path}` : DATA_DIR;
}

/**
 * The listing as manifest entries (in path order, parents first) and, apart,
 * what archives never hold (sockets, fifos, devices), by path.
 */
export function manifestEntriesOf(listed: readonly ListedEntry[]): { entries: ManifestEntry[]; others: string[] } {
  const entries: ManifestEntry[] = [];
  const others: string[] = [];
  for (const e of listed) {
    const path = archivePathOf(e);
    if (e.kind === 'other') {
      others.push(path);
      continue;
    }
    const m: ManifestEntry = { path, type: e.kind, mode: e.mode, size: e.kind === 'file' ? e.size : 0 };
    if (e.sha256) m.sha256 = e.sha256;
    if (e.linkpath !== undefined) m.linkpath = e.linkpath;
    entries.push(m);
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

/** The first difference in type, mode, size, mtime, ctime or link target between two listings of one tree (a change check), or undefined. */
export function listingChange(before: readonly ListedEntry[], after: readonly ListedEntry[]): string | undefined {
  const a = new Map(after.map((e) => [e.path, e]));
  for (const b of before) {
    const x = a.get(b.path);
    if (!x) return `${archivePathOf(b)} was removed`;
    if (x.kind !== b.kind || x.size !== b.size || x.mtimeMs !== b.mtimeMs || x.ctime !== b.ctime || x.linkpath !== b.linkpath || x.mode !== b.mode) {
      return `${archivePathOf(b)} changed`;
    }
    a.delete(b.path);
  }
  const added = [...a.keys()][0];
  return added !== undefined ? `${archivePathOf(a.get(added)!)} was added` : undefined;
}

// ---------------------------------------------------------------- archives

/** The node's decompressor of an archive on stdin. */
function decompress(format: ArchiveFormat): string {
  return format === 'tar.gz' ? 'gzip -dc' : 'zstd -dc -q';
}

const C_ESCAPES: Record<string, number> = { n: 10, t: 9, r: 13, f: 12, b: 8, v: 11, a: 7, '\\': 92, '"': 34, "'": 39, '?': 63, ' ': 32 };

/** Member names from `tar -t --quoting-style=escape` (C escapes, octal for other bytes), decoded as UTF-8. */
export function parseTarNames(out: string): string[] {
  const names: string[] = [];
  for (const line of out.split('\n')) {
    if (line === '') continue;
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
    names.push(Buffer.from(bytes).toString('utf8'));
  }
  return names;
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
 * the page cache) on stderr. GNU tar refuses `..` members and strips leading
 * `/`, so nothing lands outside "$2"; the names are checked again by Kompox
 * (checkArchiveNames) before anything becomes visible.
 * Stages: 0 decompress, 1 tar -x.
 */
export function extractArgv(archive: string, dest: string, format: ArchiveFormat): string[] {
  const script = [
    'mkdir -- "$2" || exit 1',
    `{ sha256sum < "$1" | sed 's/^/${SHA_MARK}/' >&2; } &`,
    pipeWithStatus([`${decompress(format)} < "$1"`, 'tar -x -v -p --numeric-owner -f - -C "$2" --quoting-style=escape']),
    'wait',
    // the extracted tree's listing in the same command (one exec channel fewer on the restore's critical path);
    // read only when tar succeeded
    `printf '\\0${LISTING_MARK}\\0'`,
    `if [ -d "$2/data" ] && [ ! -L "$2/data" ]; then ${listTreeScript('"$2/data"')}; fi`,
  ].join('\n');
  return shArgv(script, archive, dest);
}

/** Separates tar's member names from the listing in extractArgv's output. */
const LISTING_MARK = 'kompox-listing';

/** extractArgv's output: the member names (text) and the listing of the extracted data/ (for parseTreeListing; empty when there is none). */
export function splitExtractOutput(out: Buffer): { names: string; listing: Buffer } {
  const mark = Buffer.from(`\0${LISTING_MARK}\0`);
  const at = out.indexOf(mark);
  if (at < 0) return { names: out.toString('utf8'), listing: Buffer.alloc(0) };
  return { names: out.toString('utf8', 0, at), listing: out.subarray(at + mark.length) };
}

/** The archive's SHA-256 extractArgv reported, if it did. */
export function extractedSha256(stderr: string): string | undefined {
  return new RegExp(`${SHA_MARK}([0-9a-f]{64})`).exec(stderr)?.[1];
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

/**
 * Copies the tree "$1" to the new path "$2" (modes, ownership when root,
 * times, symlinks as they are), then lists "$2" (listTreeArgv's output) in
 * the same command; the command fails when cp does.
 */
export function copyTreeArgv(src: string, dest: string): string[] {
  return shArgv(`cp -a -- "$1" "$2" && ${listTreeScript('"$2"')}`, src, dest);
}

/** zstd on the node for snapshots: all cores, level 3 (what `tar -c | zstd -T0 -3` does). */
const NODE_ZSTD = 'zstd -T0 -3 -q -c';

/**
 * Writes a Kompox archive of the tree "$1" to the new file "$3": the tree
 * under data/ (pax, sorted, hard links stored as files, no atime/ctime),
 * then the manifest file "$2/kompox-archive.json" as the last member
 * (owners by number only, as the archive writer stores them);
 * prints the archive's SHA-256. Stages: 0 tar -c, 1 zstd.
 */
export function snapshotArgv(src: string, manifestDir: string, archive: string): string[] {
  const tar = [
    'tar -c -f - --format=pax --sort=name --hard-dereference --numeric-owner --pax-option=delete=atime,delete=ctime',
    `--transform='s,^\\.,${DATA_DIR},S'`,
    '-C "$1" .',
    `-C "$2" ${MANIFEST_NAME}`,
  ].join(' ');
  // umask 077: the archive holds the disk's data (mode 0600, as the streaming path writes it); set -C: never overwrite
  return shArgv(`umask 077 && set -C && ${pipeWithStatus([tar, `${NODE_ZSTD} > "$3"`])} && sha256sum < "$3"`, src, manifestDir, archive);
}
