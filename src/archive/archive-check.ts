// Checking an archive against its manifest in memory that does not grow with
// the file count (issue 11: flat memory whatever the disk size). Every reader
// of an archive (an import extracting it, archiveToTar turning it into a tar
// stream for a node or a helper pod, transcodeArchive re-compressing it)
// sees the entries first and the manifest last, and must check that both
// list the same tree. Here:
//   - the entries go to an EntrySorter as they are read, in the archive's
//     order (path order from packTree; a tar's filesystem order from
//     packTarStream), which spills them past a few MiB;
//   - the manifest is read entry by entry (ManifestStream) and joined with
//     the sorted entries as it arrives: a manifest lists its entries in path
//     order (every one this Kompox writes), so the join is a merge that pulls
//     the next extracted entry for each listed one. Older manifests (version
//     1, depth first) list some entries out of path order: those go to a
//     second EntrySorter and are joined at the end, as are the extracted
//     entries the in-order merge passed over;
//   - every extracted entry, in path order, goes into a ManifestLog (compact,
//     spilled): its running tree digest is the extracted tree's, and it is
//     the manifest the reader returns (entries decoded when read).
// The first failure is kept, not thrown, until the caller has checked the
// archive's own checksum (a corrupt download reports the checksum first).
import { KompoxError } from '../domain/errors.js';
import { compareEntry, checkManifestHead, checkManifestTotals, integrity, MANIFEST_NAME, type ArchiveManifest, type ManifestEntry, type TarEntry, type TarReader } from './archive.js';
import { EntrySorter, type EntrySorterOptions } from './entry-sort.js';
import { ManifestLog } from './manifest-log.js';
import { ManifestStream } from './manifest-stream.js';

/** Reads of the manifest's body: at most this many bytes at a time. */
const PIECE = 1024 * 1024;
/** An archive path longer than this is refused (Linux's PATH_MAX is 4096; records hold up to 64 KiB). */
const PATH_MAX_BYTES = 32 * 1024;
/** Entries of a manifest kept as a lazy generator (entriesOf), besides the `entries` array it builds when read. */
const LAZY_ENTRIES = Symbol('lazyEntries');

/** Every entry of a manifest, without building the whole array when the manifest can stream them (archive readers' results). */
export function entriesOf(m: ArchiveManifest): Iterable<ManifestEntry> {
  const lazy = (m as { [LAZY_ENTRIES]?: () => Iterable<ManifestEntry> })[LAZY_ENTRIES];
  return lazy ? lazy() : m.entries;
}

/** A manifest of `head`'s fields whose entries are read from `log` when asked for (entries, entriesOf). */
export function loggedManifest(head: Record<string, unknown>, log: ManifestLog): ArchiveManifest {
  const m = { ...head } as unknown as ArchiveManifest;
  Object.defineProperty(m, 'entries', { enumerable: true, get: () => [...log.entries()] });
  Object.defineProperty(m, LAZY_ENTRIES, { enumerable: false, value: () => log.entries() });
  return m;
}

const inArchiveTwice = (path: string): KompoxError => integrity(`the archive contains ${path} twice`);
const listedTwice = (path: string): KompoxError => integrity(`the manifest lists ${path} twice`);
const missing = (path: string): KompoxError => integrity(`the manifest lists ${path} but the archive does not contain it: the archive is incomplete`);
const unlisted = (path: string): KompoxError => integrity(`archive entry ${path} is not listed in the manifest`);

/** An extracted entry is what the manifest lists for its path, mode included (the digest covers it). */
function compare(got: ManifestEntry, want: ManifestEntry): void {
  compareEntry(want.path, got, want);
  if ((got.mode & 0o7777) !== (want.mode & 0o7777)) {
    throw integrity(`archive entry ${want.path} has mode ${(got.mode & 0o7777).toString(8)} but the manifest says ${(want.mode & 0o7777).toString(8)}`);
  }
}

/**
 * A manifest entry as the sorter stores it: the entry is the manifest's,
 * anything JSON may hold in its fields, so it travels whole as JSON in the
 * one free-form string (only out-of-order manifests take this way).
 */
function wrapListed(e: ManifestEntry): ManifestEntry {
  return { path: e.path, type: 'file', mode: 0, size: 0, linkpath: JSON.stringify(e) };
}

function unwrapListed(e: ManifestEntry): ManifestEntry {
  return JSON.parse(e.linkpath!) as ManifestEntry;
}

/** Entries of an archive checked against its manifest (see the top of this file). */
export class ArchiveCheck {
  /** The first failure, kept until finish(). */
  failure: unknown;
  /** Every extracted entry, in path order once the manifest is read: the tree digest, the returned manifest. */
  readonly log: ManifestLog;
  private readonly got: EntrySorter;
  private sorted: Generator<ManifestEntry> | undefined;
  /** The next extracted entry in path order (already in `log`), undefined at the end. */
  private next: ManifestEntry | undefined;
  /** Extracted entries the in-order merge passed over (listed out of order, or not at all). */
  private passed: EntrySorter | undefined;
  /** Manifest entries listed out of path order. */
  private late: EntrySorter | undefined;
  private lastListed: string | undefined;

  private readonly opts: EntrySorterOptions;

  constructor(opts: EntrySorterOptions = {}) {
    this.opts = opts;
    this.got = new EntrySorter(this.opts);
    this.log = new ManifestLog(this.opts);
  }

  /** An entry as the archive holds it (extracted or passed through), in the archive's order. */
  add(e: ManifestEntry): void {
    if (Buffer.byteLength(e.path) > PATH_MAX_BYTES) throw integrity(`archive entry ${e.path.slice(0, 100)}… has a path longer than ${PATH_MAX_BYTES} bytes`);
    if (e.linkpath !== undefined && Buffer.byteLength(e.linkpath) > PATH_MAX_BYTES) throw integrity(`symlink ${e.path} in the archive has a target longer than ${PATH_MAX_BYTES} bytes`);
    this.got.add(e);
  }

  /** Runs `fn`, keeping its error as the failure (and nothing more once one is kept). */
  guard(fn: () => void): void {
    if (this.failure) return;
    try {
      fn();
    } catch (e) {
      this.failure = e;
    }
  }

  /** Reads the manifest entry's body piece by piece into the check; returns the manifest's other fields. */
  async readManifest(tr: TarReader, e: TarEntry): Promise<Record<string, unknown>> {
    if (e.type !== 'File' && e.type !== 'OldFile') throw integrity(`${MANIFEST_NAME} in the archive is not a regular file`);
    const ms = new ManifestStream((entry) => this.guard(() => this.listed(entry)));
    let remain = e.size;
    while (remain > 0) {
      const chunk = await tr.reader.readSome(Math.min(remain, PIECE));
      if (chunk.length === 0) throw integrity('the archive is truncated (in the middle of the manifest)');
      remain -= chunk.length;
      this.guard(() => ms.push(chunk));
    }
    await tr.skipPadding(e.size, 'the manifest');
    this.guard(() => ms.end());
    return ms.head;
  }

  /**
   * After the archive's checksum: the manifest's head, every entry listed
   * and as listed, the tree digest the manifest's. Throws the first failure;
   * returns the manifest with the extracted entries (read from `log`).
   */
  finish(head: Record<string, unknown>): ArchiveManifest {
    if (this.failure) throw this.failure;
    const m = head as Partial<ArchiveManifest>;
    checkManifestHead(m);
    if (!this.late) {
      // Listed in path order: whatever the merge passed over, or did not reach, is not listed.
      const over = this.passed?.sorted(inArchiveTwice).next();
      if (over && !over.done) throw unlisted(over.value.path);
      const rest = this.peek();
      if (rest) throw unlisted(rest.path);
    } else this.joinLate();
    const digest = this.log.treeDigest();
    if (digest !== m.treeDigest) throw integrity(`the extracted tree's digest ${digest} differs from the manifest's ${m.treeDigest}`);
    checkManifestTotals(m, this.log);
    // only the log lives on, in the manifest returned
    this.release();
    return loggedManifest(head, this.log);
  }

  /** Releases the sorters' and the log's files (the returned manifest cannot be read afterwards). */
  close(): void {
    this.release();
    this.log.close();
  }

  private release(): void {
    this.sorted?.return(undefined);
    this.got.close();
    this.passed?.close();
    this.late?.close();
  }

  /** One manifest entry, as it arrives. */
  private listed(want: ManifestEntry): void {
    const path = want.path;
    if (this.lastListed !== undefined && !(this.lastListed < path)) {
      if (path === this.lastListed) throw listedTwice(path);
      (this.late ??= new EntrySorter(this.opts)).add(wrapListed(want));
      return;
    }
    this.lastListed = path;
    let g = this.peek();
    while (g && g.path < path) {
      (this.passed ??= new EntrySorter(this.opts)).add(g);
      g = this.advance();
    }
    // Passed-over entries all sort before an earlier listed path: this one is nowhere else.
    if (!g || g.path !== path) throw missing(path);
    this.advance();
    compare(g, want);
  }

  /** The next extracted entry in path order (the sort starts with the first call: every entry is in by then). */
  private peek(): ManifestEntry | undefined {
    if (!this.sorted) {
      this.sorted = this.got.sorted(inArchiveTwice);
      this.advance();
    }
    return this.next;
  }

  private advance(): ManifestEntry | undefined {
    const r = this.sorted!.next();
    this.next = r.done ? undefined : r.value;
    if (this.next) this.log.add(this.next);
    return this.next;
  }

  /**
   * The manifest listed some entries out of path order: join those (sorted)
   * with every extracted entry (the log, in path order) and with the ones the
   * merge passed over (sorted); a listed entry found in the log but not among
   * the passed-over ones was listed before.
   */
  private joinLate(): void {
    const passed = (this.passed ??= new EntrySorter(this.opts));
    for (let g = this.peek(); g; g = this.advance()) passed.add(g);
    const all = this.log.entries();
    const over = passed.sorted(inArchiveTwice);
    let a = all.next();
    let o = over.next();
    let firstUnlisted: string | undefined;
    for (const w of this.late!.sorted(listedTwice)) {
      const want = unwrapListed(w);
      while (!a.done && a.value.path < want.path) a = all.next();
      if (a.done || a.value.path !== want.path) throw missing(want.path);
      while (!o.done && o.value.path < want.path) {
        firstUnlisted ??= o.value.path;
        o = over.next();
      }
      if (o.done || o.value.path !== want.path) throw listedTwice(want.path);
      compare(o.value, want);
      o = over.next();
    }
    if (firstUnlisted !== undefined) throw unlisted(firstUnlisted);
    if (!o.done) throw unlisted(o.value.path);
  }
}

/**
 * The directories an archive reader has created (or passed on), for the
 * check that an entry's parent is one of them without a table of every
 * directory. Kept: the directories a later entry can still be in, a chain
 * where each is a prefix of the next. In path order (packTree) an entry's
 * parent is always among them: a directory is dropped once the entries have
 * passed everything that starts with its path and a character up to `/`
 * (`a-b` and `a.txt` come before `a/x`). In a tar's depth-first order
 * (packTarStream) the parent is among its ancestors, which are kept too.
 * Any other order may need a directory that was dropped: has() says no, and
 * the caller checks the filesystem or refuses.
 */
export class OpenDirs {
  private readonly dirs: string[] = [];

  /** Directory `path` was created (its parent was checked by has()). */
  push(path: string): void {
    this.dirs.push(path);
  }

  /** Directories kept, deepest last. */
  get chain(): readonly string[] {
    return this.dirs;
  }

  /** Keeps only the first `n` (a caller that checks and pushes the rest of a parent's path). */
  truncate(n: number): void {
    this.dirs.length = n;
  }

  /**
   * Entry `path` (whose parent is `parent`) comes next: throws for a path
   * that is a kept directory (an entry twice), drops directories no later
   * entry can be in, and says whether `parent` is a kept directory.
   */
  has(parent: string, path: string): boolean {
    const d = this.dirs;
    for (let i = d.length - 1; i >= 0; i--) if (d[i] === path) throw inArchiveTwice(path);
    while (d.length && !within(d[d.length - 1]!, path)) d.pop();
    for (let i = d.length - 1; i >= 0; i--) if (d[i] === parent) return true;
    return false;
  }
}

/** `path` starts with `dir` followed by a character up to `/`: in `dir`, or between it and its contents in path order. */
export function within(dir: string, path: string): boolean {
  return path.length > dir.length && path.charCodeAt(dir.length) <= 0x2f && path.startsWith(dir);
}
