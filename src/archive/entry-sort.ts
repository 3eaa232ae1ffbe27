// Entries in path order whatever order they arrive in, in bounded memory
// (issue 11: flat memory whatever the file count). A tar stream from a node
// or a helper pod lists a tree in the filesystem's order, and an archive from
// one is read in that order, while manifests and tree digests go in path
// order. (Stub: sorts in memory; the external merge sort replaces it.)
import type { ManifestEntry } from './archive.js';
import type { SpoolOptions } from './spool.js';

export interface EntrySorterOptions extends SpoolOptions {
  /** Bytes of entries sorted in memory at a time (one run). */
  runBytes?: number;
}

/** Path order: JavaScript string order, as treeDigestOf and the tree walk use. */
export const byPathOrder = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export class EntrySorter {
  private readonly items: ManifestEntry[] = [];
  private lastPath: string | undefined;
  /** Whether every entry so far came in path order (then nothing is sorted). */
  ordered = true;
  count = 0;

  constructor(readonly opts: EntrySorterOptions = {}) {}

  add(e: ManifestEntry): void {
    if (this.lastPath !== undefined && !(this.lastPath < e.path)) this.ordered = false;
    this.lastPath = e.path;
    this.items.push(e);
    this.count++;
  }

  /**
   * Every entry in path order, once. A path added twice ends the iteration
   * with `duplicate(path)` thrown when it is reached.
   */
  *sorted(duplicate: (path: string) => Error): Generator<ManifestEntry> {
    const all = this.ordered ? this.items : [...this.items].sort((a, b) => byPathOrder(a.path, b.path));
    let prev: string | undefined;
    for (const e of all) {
      if (prev === e.path) throw duplicate(e.path);
      prev = e.path;
      yield e;
    }
  }

  /** Releases the entries and their files. */
  close(): void {
    this.items.length = 0;
  }
}
