// A walk of a directory tree in the order of its archive paths (JavaScript
// string order of `data/...`, the order of the tree digest), one entry at a
// time: memory holds the directories being walked (their names and
// metadata), never the whole tree, so packing a disk of millions of files
// stays flat (issue 11).
//
// Path order is not plain depth-first order: `a-b` sorts before `a/x`
// ('-' < '/'), while `a` itself comes before both. Each directory's children
// are sorted by a key: the entry itself by its name, a subdirectory's
// contents by its name followed by '/'. Every path inside `a/` shares that
// prefix, so a subtree is contiguous in path order and comes after its
// directory's own entry (what extraction needs: parents first).
import { KompoxError } from '../domain/errors.js';
import type { TreeFs, TreeStat } from './archive.js';

export interface WalkedEntry {
  /** Path on the filesystem. */
  abs: string;
  /** Archive path: `data` or `data/...`. */
  rel: string;
  st: TreeStat;
}

/** Metadata lookups in flight at once (they are round trips over SSH). */
const LOOKUPS_IN_FLIGHT = 32;

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
  items: Item[];
  at: number;
}

/** Entries of the tree at `root` (never following symlinks) in archive path order; archive paths are prefixed with `data`. */
export class TreeWalker {
  private readonly stack: Frame[] = [];
  private first: WalkedEntry | undefined;
  private started = false;

  constructor(
    private readonly fs: TreeFs,
    private readonly root: string,
    /** The archive path of the root (DATA_DIR). */
    private readonly top: string,
  ) {}

  /** The next entry, or undefined at the end. */
  async next(): Promise<WalkedEntry | undefined> {
    if (!this.started) {
      this.started = true;
      const st = await this.fs.lstat(this.root);
      if (!st || st.kind !== 'dir') {
        throw new KompoxError('notfound', `disk data directory ${this.root} does not exist or is not a directory`);
      }
      const abs = this.root.replace(/\/+$/, '') || '/';
      this.first = { abs, rel: this.top, st };
      await this.enter(abs, this.top);
      return this.first;
    }
    for (;;) {
      const f = this.stack[this.stack.length - 1];
      if (!f) return undefined;
      const item = f.items[f.at++];
      if (!item) {
        this.stack.pop();
        continue;
      }
      const abs = `${f.abs}/${item.name}`;
      const rel = `${f.rel}/${item.name}`;
      if (item.contents) {
        await this.enter(abs, rel);
        continue;
      }
      return { abs, rel, st: item.st };
    }
  }

  /** Lists a directory (its entries looked up together, then sorted by key). */
  private async enter(abs: string, rel: string): Promise<void> {
    const names = await this.fs.readdir(abs);
    const items: Item[] = [];
    for (let i = 0; i < names.length; i += LOOKUPS_IN_FLIGHT) {
      const batch = names.slice(i, i + LOOKUPS_IN_FLIGHT);
      const stats = await Promise.all(batch.map((name) => this.fs.lstat(`${abs}/${name}`)));
      batch.forEach((name, j) => {
        const st = stats[j];
        if (!st) return; // removed while walking (crash-consistent export of a live disk)
        if (st.kind === 'other') return; // sockets, fifos and devices are not data
        items.push({ key: name, name, st, contents: false });
        if (st.kind === 'dir') items.push({ key: `${name}/`, name, st, contents: true });
      });
    }
    items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    this.stack.push({ abs, rel, items, at: 0 });
  }
}

/** Calls `visit` for every entry of the tree, in archive path order. */
export async function walk(fs: TreeFs, root: string, top: string, visit: (abs: string, rel: string, st: TreeStat) => Promise<void>): Promise<void> {
  const w = new TreeWalker(fs, root, top);
  for (let e = await w.next(); e; e = await w.next()) await visit(e.abs, e.rel, e.st);
}
