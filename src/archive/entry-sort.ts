// Entries in path order whatever order they arrive in, in bounded memory
// (issue 11: flat memory whatever the file count). A tar stream from a node
// or a helper pod lists a tree in the filesystem's order, and an archive made
// from one is read back in that order, while manifests and tree digests go in
// path order. An external merge sort: entries are sorted in memory a run at
// a time (a few MiB), each run goes to compact records in a temporary file
// (EntryRecords over ChunkSpool), and the runs are merged; past FAN_IN runs
// they are merged into one first, so a merge never reads more than FAN_IN
// files at once (each holds a 256 KiB buffer while read). Entries that come
// in order, as from a tree walk, skip all of it: they are stored as they come.
import type { ManifestEntry } from './archive.js';
import { EntryRecords } from './entry-records.js';
import type { SpoolOptions } from './spool.js';

export interface EntrySorterOptions extends SpoolOptions {
  /** Bytes of entries (estimated as JavaScript objects) sorted in memory at a time: one run. */
  runBytes?: number;
}

/** Path order: JavaScript string order, as treeDigestOf and the tree walk use. */
export const byPathOrder = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const RUN_BYTES = 4 * 1024 * 1024;
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
  /** Sorted runs in their files. */
  private runs: EntryRecords[] = [];
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
        this.runs.push(this.straight);
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
      source = merge(this.runs);
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
    for (const r of this.runs) r.close();
    this.runs = [];
    this.run = [];
  }

  /** Sorts the gathered run into its own file; past FAN_IN runs, merges them into one. */
  private flush(): void {
    if (this.run.length === 0) return;
    this.run.sort((a, b) => byPathOrder(a.path, b.path));
    this.runs.push(this.records(this.run));
    this.run = [];
    this.runBytes = 0;
    if (this.runs.length >= FAN_IN) {
      const merged = this.records(merge(this.runs));
      for (const r of this.runs) r.close();
      this.runs = [merged];
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
