// Entries in path order whatever order they arrive in, in bounded memory
// (issue 11: flat memory whatever the file count). A tar stream from a node
// or a helper pod lists a tree in the filesystem's order, and an archive made
// from one is read back in that order, while manifests and tree digests go in
// path order. An external merge sort: entries are sorted in memory a run at
// a time (a few MiB), each run goes to compact records in a temporary file
// (EntryRecords over ChunkSpool), and the runs are merged. A merge never
// reads more than FAN_IN files at once (each holds a 64 KiB buffer while
// read): FAN_IN runs of one size are merged into one run of the next size
// as they come (levels, so each entry is rewritten once per level, not once
// per FAN_IN runs). Entries that come in order, as from a tree walk, skip all
// of it: they are stored as they come.
import type { ManifestEntry } from './archive.js';
import { EntryRecords } from './entry-records.js';
import type { SpoolOptions } from './spool.js';

export interface EntrySorterOptions extends SpoolOptions {
  /** Bytes of entries (estimated as JavaScript objects) sorted in memory at a time: one run. */
  runBytes?: number;
}

/** Path order: JavaScript string order, as treeDigestOf and the tree walk use. */
export const byPathOrder = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * A run's size. 2 MiB, not more: a data path may gather runs in two sorters
 * at once (a node's listing: its entries and its hashes), besides its logs.
 */
const RUN_BYTES = 2 * 1024 * 1024;
/** Bytes per chunk of a sorted run's records (a merge holds one chunk of each run it reads). */
const RUN_CHUNK = 64 * 1024;
/** Runs merged at once. */
export const FAN_IN = 16;
/** What one entry costs as objects (the entry, its strings, the array slot), before its strings' own bytes. */
const ENTRY_OVERHEAD = 160;

export class EntrySorter {
  /** The entries while they come in order (then nothing is sorted). */
  private straight: EntryRecords | undefined;
  /** The run being gathered (out of order). */
  private run: ManifestEntry[] = [];
  private runBytes = 0;
  /** Sorted runs in their files, with their level (a run of level L merges FAN_IN^L runs); levels never increase along the list. */
  private runs: { records: EntryRecords; level: number }[] = [];
  private lastPath: string | undefined;
  private readonly limit: number;
  /** Whether every entry so far came in path order (then nothing is sorted). */
  ordered = true;
  count = 0;

  constructor(readonly opts: EntrySorterOptions = {}) {
    this.limit = opts.runBytes ?? RUN_BYTES;
  }

  add(e: ManifestEntry): void {
    if (this.ordered && this.lastPath !== undefined && !(this.lastPath < e.path)) {
      this.ordered = false;
      // what came in order so far is a sorted run already
      if (this.straight) {
        this.straight.seal();
        this.runs.push({ records: this.straight, level: 0 });
        this.straight = undefined;
      }
    }
    this.lastPath = e.path;
    this.count++;
    if (this.ordered) {
      (this.straight ??= new EntryRecords(this.opts)).add(e);
      return;
    }
    this.run.push(e);
    this.runBytes += ENTRY_OVERHEAD + 2 * (e.path.length + (e.linkpath?.length ?? 0));
    if (this.runBytes >= this.limit) this.flush();
  }

  /**
   * Every entry in path order, once. A path added twice ends the iteration
   * with `duplicate(path)` thrown when it is reached.
   */
  *sorted(duplicate: (path: string) => Error): Generator<ManifestEntry> {
    if (this.ordered) {
      // strictly increasing as added: no duplicates possible
      if (this.straight) yield* this.straight.entries();
      return;
    }
    let source: Iterable<ManifestEntry>;
    if (this.runs.length === 0) source = this.run.sort((a, b) => byPathOrder(a.path, b.path));
    else {
      this.flush();
      // at most FAN_IN read at once: the smallest (last) runs merged first
      if (this.runs.length > FAN_IN) this.mergeTail(this.runs.length - FAN_IN + 1);
      source = merge(this.runs.map((r) => r.records));
    }
    let prev: string | undefined;
    for (const e of source) {
      if (prev === e.path) throw duplicate(e.path);
      prev = e.path;
      yield e;
    }
  }

  /** Releases the entries and their files. Idempotent. */
  close(): void {
    this.straight?.close();
    this.straight = undefined;
    for (const r of this.runs) r.records.close();
    this.runs = [];
    this.run = [];
  }

  /** Sorts the gathered run into its own file; FAN_IN runs of one level are merged into one of the next. */
  private flush(): void {
    if (this.run.length === 0) return;
    this.run.sort((a, b) => byPathOrder(a.path, b.path));
    this.runs.push({ records: this.records(this.run), level: 0 });
    this.run = [];
    this.runBytes = 0;
    for (;;) {
      const n = this.runs.length;
      const level = this.runs[n - 1]!.level;
      if (n < FAN_IN || this.runs[n - FAN_IN]!.level !== level) return;
      this.mergeTail(FAN_IN);
    }
  }

  /** Merges the last `n` runs into one, a level above the highest of them. */
  private mergeTail(n: number): void {
    const tail = this.runs.splice(this.runs.length - n, n);
    try {
      this.runs.push({ records: this.records(merge(tail.map((r) => r.records))), level: tail[0]!.level + 1 });
    } finally {
      for (const r of tail) r.records.close();
    }
  }

  /** Entries (sorted) stored in a file of their own. */
  private records(entries: Iterable<ManifestEntry>): EntryRecords {
    // each run in its own file, read back 64 KiB at a time: a merge reads up to FAN_IN of them at once
    const r = new EntryRecords({ ...this.opts, memoryBytes: 0, chunkBytes: RUN_CHUNK });
    try {
      for (const e of entries) r.add(e);
      r.seal();
      return r;
    } catch (err) {
      r.close();
      throw err;
    }
  }
}

/** The entries of sorted runs, merged in path order (equal paths side by side). */
function* merge(runs: readonly EntryRecords[]): Generator<ManifestEntry> {
  const its = runs.map((r) => r.entries());
  const heads: Array<ManifestEntry | undefined> = its.map((it) => it.next().value ?? undefined);
  for (;;) {
    let min = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i];
      if (h && (min < 0 || h.path < heads[min]!.path)) min = i;
    }
    if (min < 0) return;
    yield heads[min]!;
    heads[min] = its[min]!.next().value ?? undefined;
  }
}
