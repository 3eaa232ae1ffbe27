// A listing of a tree printed by a command (a K3s node's find and
// sha256sum, a helper pod's read-back) kept in memory that does not grow
// with the file count (issue 11: data commands stay <= 100 MiB whatever the
// disk): the entries and the hashes stream into two EntrySorters (a few MiB
// in memory, the rest spilled) in the order the command printed them, and
// come back joined, in path order. A disk of 200,000 files listed as
// objects, Maps and sorted copies took hundreds of MiB.
import { DATA_DIR, type EntryKind, type ManifestEntry } from './archive.js';
import { EntrySorter, type EntrySorterOptions } from './entry-sort.js';

/** One entry of a listing; `path` is relative to the listed directory (`` for itself). */
export interface ListedEntry {
  path: string;
  kind: EntryKind | 'other';
  mode: number;
  size: number;
  mtimeMs: number;
  /**
   * The status change time as find printed it (to the nanosecond where the
   * filesystem keeps it): changed by every write and never set by hand,
   * what a K3s node's change check (listingChange) relies on. Empty where
   * the listing has none (a helper pod's read-back).
   */
  ctime: string;
  linkpath?: string;
  sha256?: string;
}

/** Where a listing parser puts what it reads. */
export interface ListingSink {
  entry(e: ListedEntry): void;
  /** A regular file's SHA-256 (PATH relative to the listed directory, as ListedEntry.path). */
  hash(path: string, sha256: string): void;
}

/** A listing that cannot be read (the caller says which listing, from where). */
export class ListingError extends Error {}

/** A listed file the hashing pass did not hash: removed or renamed between the two passes (a live tree), or unreadable. */
export class MissingHashError extends ListingError {}

/** The archive path of a listed entry (`data`, `data/...`). */
export function archivePathOf(e: { path: string }): string {
  return e.path ? `${DATA_DIR}/${e.path}` : DATA_DIR;
}

/** The error of a listed file without its hash (`what`: the listing, e.g. "the node listing"). */
export function noHash(path: string, what = 'the node listing'): string {
  return `${what} has no SHA-256 for ${JSON.stringify(path)} (it changed or could not be read)`;
}

const KINDS = new Set<string>(['file', 'dir', 'symlink', 'other']);

/**
 * A listed entry as the sorter carries it: the path (archive path, the sort
 * key) and everything else in the link target's string, so no field depends
 * on how the sorter stores a type's size or mode.
 */
function carry(e: ListedEntry): ManifestEntry {
  return { path: archivePathOf(e), type: 'symlink', mode: 0, size: 0, linkpath: `${e.kind} ${e.mode} ${e.size} ${e.mtimeMs} ${e.ctime}\n${e.linkpath ?? ''}` };
}

function uncarry(c: ManifestEntry): ListedEntry {
  const text = c.linkpath ?? '';
  const nl = text.indexOf('\n');
  const [kind, mode, size, mtimeMs, ctime] = text.slice(0, nl).split(' ');
  if (!KINDS.has(kind!)) throw new Error(`EntrySorter gave back an unreadable entry ${JSON.stringify(c.path)}`);
  const e: ListedEntry = {
    path: c.path === DATA_DIR ? '' : c.path.slice(DATA_DIR.length + 1),
    kind: kind as EntryKind | 'other',
    mode: Number(mode),
    size: Number(size),
    mtimeMs: Number(mtimeMs),
    ctime: ctime ?? '',
  };
  if (kind === 'symlink') e.linkpath = text.slice(nl + 1);
  return e;
}

/**
 * One listing as it streams in, sorted: the entries and the hashes apart
 * (sha256sum prints them after the entries, in a pass of its own), joined in
 * path order by sorted(). What archives never hold (sockets, fifos, devices)
 * is counted as it comes, the first by path kept.
 */
export class ListingJoin implements ListingSink {
  private readonly entries: EntrySorter;
  private readonly hashes: EntrySorter;
  /** What the errors call this listing. */
  private readonly what: string;
  /** Entries listed that are not a file, directory or symlink. */
  others = 0;
  /** The first of those by path (archive path). */
  firstOther: string | undefined;
  count = 0;

  constructor(opts: EntrySorterOptions & { what?: string } = {}) {
    this.entries = new EntrySorter(opts);
    this.hashes = new EntrySorter(opts);
    this.what = opts.what ?? 'the node listing';
  }

  entry(e: ListedEntry): void {
    this.count++;
    if (e.kind === 'other') {
      this.others++;
      const path = archivePathOf(e);
      if (this.firstOther === undefined || path < this.firstOther) this.firstOther = path;
    }
    this.entries.add(carry(e));
  }

  hash(path: string, sha256: string): void {
    this.hashes.add({ path: path ? `${DATA_DIR}/${path}` : DATA_DIR, type: 'file', mode: 0, size: 0, sha256 });
  }

  /**
   * Every entry in path order (once), each regular file with its SHA-256
   * when `hashes` (a file without one, a path listed twice: ListingError).
   */
  *sorted(hashes = true): Generator<ListedEntry> {
    const h = hashes ? this.hashes.sorted((path) => new ListingError(`${this.what} hashes ${JSON.stringify(path)} twice`)) : undefined;
    let next = h?.next();
    for (const c of this.entries.sorted((path) => new ListingError(`${this.what} has ${JSON.stringify(path)} twice`))) {
      const e = uncarry(c);
      if (h && e.kind === 'file') {
        // hashes of paths that are no file in the listing (a file made between the two passes) are passed over
        while (next && !next.done && next.value.path < c.path) next = h.next();
        if (!next || next.done || next.value.path !== c.path) throw new MissingHashError(noHash(e.path, this.what));
        e.sha256 = next.value.sha256!;
      }
      yield e;
    }
  }

  close(): void {
    this.entries.close();
    this.hashes.close();
  }
}
