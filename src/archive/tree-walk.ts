// A walk of a directory tree in the order of its archive paths (JavaScript
// string order of `data/...`, the order of the tree digest), one entry at a
// time: memory holds the directories being walked (their names and
// metadata), never the whole tree, so packing a disk of millions of files
// stays flat (issue 11). A directory of more than DIR_IN_MEMORY entries is
// sorted in spilled runs instead (EntrySorter, as manifests are), its names
// read a batch at a time where the transport can (readdirStream): 200,000
// files in one directory had a local export peak at 134 MiB.
//
// Path order is not plain depth-first order: `a-b` sorts before `a/x`
// ('-' < '/'), while `a` itself comes before both. Each directory's children
// are sorted by a key: the entry itself by its name, a subdirectory's
// contents by its name followed by '/'. Every path inside `a/` shares that
// prefix, so a subtree is contiguous in path order and comes after its
// directory's own entry (what extraction needs: parents first).
import { KompoxError } from '../domain/errors.js';
import type { EntryKind, ManifestEntry, TreeFs, TreeStat } from './archive.js';
import { EntrySorter } from './entry-sort.js';
import { notUtf8Decoded } from './utf8-names.js';
import { listingMayDropNames, pathTooLong, pathTooLongFor } from './path-length.js';

/** How many left-out sockets, FIFOs and devices TreeWalker.special names (its count goes on). */
export const SPECIALS_NAMED = 10;

export interface WalkedEntry {
  /** Path on the filesystem. */
  abs: string;
  /** Archive path: `data` or `data/...`. */
  rel: string;
  st: TreeStat;
}

/** Metadata lookups in flight at once (they are round trips over SSH). */
const LOOKUPS_IN_FLIGHT = 32;

/** Entries of one directory sorted in memory; a directory with more is sorted in spilled runs. */
export const DIR_IN_MEMORY = 10_000;

interface Item {
  key: string;
  name: string;
  st: TreeStat;
  /** The subdirectory's contents rather than its own entry. */
  contents: boolean;
}

interface Frame {
  abs: string;
  rel: string;
  /** The directory's items in key order: from memory, or read back from a spilled sort. */
  items: Iterator<Item>;
  sorter?: EntrySorter;
}

/** Entries of the tree at `root` (never following symlinks) in archive path order; archive paths are prefixed with `data`. */
export class TreeWalker {
  private readonly stack: Frame[] = [];
  private first: WalkedEntry | undefined;
  /** The sockets, FIFOs and devices the walk left out (not data): how many, and the first few archive paths. */
  readonly special = { count: 0, first: [] as string[] };
  private started = false;
  private get rootAbs(): string {
    return this.root.replace(/\/+$/, '') || '/';
  }

  constructor(
    private readonly fs: TreeFs,
    private readonly root: string,
    /** The archive path of the root (DATA_DIR). */
    private readonly top: string,
    /** Entries of one directory sorted in memory (tests make it small). */
    private readonly inMemory = DIR_IN_MEMORY,
  ) {}

  /** The next entry, or undefined at the end. */
  async next(): Promise<WalkedEntry | undefined> {
    if (!this.started) {
      this.started = true;
      const st = await this.fs.lstat(this.root);
      if (!st || st.kind !== 'dir') {
        throw new KompoxError('notfound', `disk data directory ${this.root} does not exist or is not a directory`);
      }
      const abs = this.rootAbs;
      this.first = { abs, rel: this.top, st };
      await this.enter(abs, this.top);
      return this.first;
    }
    for (;;) {
      const f = this.stack[this.stack.length - 1];
      if (!f) return undefined;
      const r = f.items.next();
      if (r.done) {
        f.sorter?.close();
        this.stack.pop();
        continue;
      }
      const item = r.value;
      const abs = `${f.abs}/${item.name}`;
      const rel = `${f.rel}/${item.name}`;
      if (item.contents) {
        await this.enter(abs, rel);
        continue;
      }
      return { abs, rel, st: item.st };
    }
  }

  /** Throws `e` (what found a part of the tree gone) unless the tree's root is still the directory it was. */
  async rootStill(e: unknown): Promise<void> {
    const st = await this.fs.lstat(this.root);
    if (st?.kind !== 'dir') throw e;
  }

  /** Ends the walk early: the spilled sorts of the directories being walked are released. Idempotent. */
  close(): void {
    for (const f of this.stack) f.sorter?.close();
    this.stack.length = 0;
  }

  /** Lists a directory (its entries looked up a batch at a time, then sorted by key). */
  private async enter(abs: string, rel: string): Promise<void> {
    let items: Item[] = [];
    let sorter: EntrySorter | undefined;
    const put = (item: Item) => {
      if (!sorter && items.length < this.inMemory) {
        items.push(item);
        return;
      }
      if (!sorter) {
        sorter = new EntrySorter();
        for (const i of items) sorter.add(itemRecord(i));
        items = [];
      }
      sorter.add(itemRecord(item));
    };
    // near PATH_MAX: a name whose path does not fit is refused, never left out (SFTP leaves it out of its listing)
    const deep = listingMayDropNames(abs);
    if (deep && this.fs.dropsLongPaths) throw pathTooLong(abs, 'archived', 'listing');
    let batch: string[] = [];
    const lookUp = async () => {
      if (deep) for (const name of batch) if (pathTooLongFor(`${abs}/${name}`)) throw pathTooLong(`${abs}/${name}`, 'archived');
      const stats = await Promise.all(batch.map((name) => this.fs.lstat(`${abs}/${name}`)));
      batch.forEach((name, j) => {
        const st = stats[j];
        if (!st) {
          // A name a TreeFs got as text with U+FFFD for bytes that are not UTF-8 (SFTP: ssh2 decodes names)
          // names nothing: left out as removed, it and all under it would be lost unsaid. Refused instead
          // (a real name holding U+FFFD that is removed meanwhile is refused too: a rare, loud error).
          if (name.includes('\uFFFD')) throw notUtf8Decoded(abs, name);
          return; // removed while walking (crash-consistent export of a live disk)
        }
        if (st.kind === 'other') {
          // sockets, fifos and devices are not data
          this.special.count++;
          if (this.special.first.length < SPECIALS_NAMED) this.special.first.push(`${rel}/${name}`);
          return;
        }
        put({ key: name, name, st, contents: false });
        if (st.kind === 'dir') put({ key: `${name}/`, name, st, contents: true });
      });
      batch = [];
    };
    let read = 0;
    try {
      for await (const name of this.fs.readdirStream?.(abs) ?? (await this.fs.readdir(abs))) {
        read++;
        batch.push(name);
        if (batch.length >= LOOKUPS_IN_FLIGHT) await lookUp();
      }
      await lookUp();
    } catch (e) {
      sorter?.close();
      // A subdirectory removed (or replaced by a file) since its parent was listed (a live disk: an app's
      // rm -rf): its entry is already walked, so it is archived as the empty directory it was just before.
      // Not when the tree itself went (a disk deleted: renamed away first): that fails the walk.
      if (abs !== this.rootAbs && read === 0 && isGone(e)) {
        await this.rootStill(e);
        this.stack.push({ abs, rel, items: [][Symbol.iterator]() });
        return;
      }
      throw e;
    }
    if (sorter) {
      const spilled = sorter;
      // a name read twice: the directory changed while it was read (a live disk)
      const sorted = spilled.sorted(
        (key) =>
          new KompoxError('integrity', `${abs} changed while it was read (${key.replace(/\/$/, '')} was listed twice)`, {
            hint: 'The disk changed while it was read; do it again, or stop the app for it (quiesce).',
          }),
      );
      this.stack.push({ abs, rel, items: recordItems(sorted), sorter: spilled });
    } else {
      items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      this.stack.push({ abs, rel, items: items[Symbol.iterator]() });
    }
  }
}

/** A directory that is no longer there to list: removed (ENOENT), or replaced by a file (ENOTDIR). */
function isGone(e: unknown): boolean {
  const code = (e as { code?: unknown } | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * An item as a record of a spilled sort: its key as the path, the owner and
 * mtime in the free-form link field (the walk reads a symlink's target
 * later, from the filesystem).
 */
function itemRecord(i: Item): ManifestEntry {
  return { path: i.key, type: i.st.kind as EntryKind, mode: i.st.mode, size: i.st.size, linkpath: `${i.st.uid} ${i.st.gid} ${i.st.mtimeMs}` };
}

/** Items back from their records (a key ending in '/' is a subdirectory's contents: names hold no '/'). */
function* recordItems(records: Iterable<ManifestEntry>): Generator<Item> {
  for (const e of records) {
    const [uid, gid, mtimeMs] = (e.linkpath ?? '').split(' ').map(Number) as [number, number, number];
    const contents = e.path.endsWith('/');
    const st: TreeStat = { kind: e.type, mode: e.mode, uid, gid, size: e.size, mtimeMs };
    yield { key: e.path, name: contents ? e.path.slice(0, -1) : e.path, st, contents };
  }
}

/** Calls `visit` for every entry of the tree, in archive path order. */
export async function walk(fs: TreeFs, root: string, top: string, visit: (abs: string, rel: string, st: TreeStat) => Promise<void>): Promise<void> {
  const w = new TreeWalker(fs, root, top);
  try {
    for (let e = await w.next(); e; e = await w.next()) await visit(e.abs, e.rel, e.st);
  } finally {
    w.close();
  }
}
