// Manifest entries as compact binary records (issue 11: memory flat in the
// file count): one record per entry, the path front-coded against the
// previous one, SHA-256 as 32 bytes (under 60 bytes for a typical file), in
// 256 KiB chunks that go to a temporary file past a few MiB (ChunkSpool).
// ManifestLog (the manifest being written) and EntrySorter (entries put in
// path order) store their entries here.
import { KompoxError } from '../domain/errors.js';
import type { EntryKind, ManifestEntry } from './archive.js';
import { noteEntryGarbage } from './memory.js';
import { ChunkSpool, type SpoolOptions } from './spool.js';
import { putVarint, varint } from './varint.js';

const KINDS: readonly EntryKind[] = ['dir', 'file', 'symlink'];
const HAS_SHA = 0x10;
const HAS_LINK = 0x20;
const CHUNK = 256 * 1024;
/** A record's largest size: paths and link targets are bounded by PATH_MAX-like limits well below this. */
const RECORD_MAX = 64 * 1024;
/** Where a record is encoded before it is copied into its chunk: one for all logs (append is synchronous). */
const scratch = Buffer.allocUnsafe(RECORD_MAX);

export interface EntryRecordsOptions extends SpoolOptions {
  /**
   * Bytes per chunk (at least RECORD_MAX; default 256 KiB). A reader of
   * spilled records holds one chunk: the many runs a merge reads at once
   * use small ones.
   */
  chunkBytes?: number;
}

/** Entries as compact records, read back in the order they were added. */
export class EntryRecords {
  private readonly chunks: ChunkSpool;
  private readonly chunkBytes: number;
  private chunk: Buffer;
  private used = 0;
  private prevPath = Buffer.alloc(0);

  constructor(opts: EntryRecordsOptions = {}) {
    this.chunks = new ChunkSpool(opts);
    this.chunkBytes = Math.max(RECORD_MAX, opts.chunkBytes ?? CHUNK);
    this.chunk = Buffer.allocUnsafe(this.chunkBytes);
  }

  add(e: ManifestEntry): void {
    // every data path stores or reads back each entry here: where the garbage its objects leave is counted
    noteEntryGarbage();
    this.append(e);
  }

  /** Bytes the log holds (its records, in memory and in its file). */
  get storedBytes(): number {
    return this.chunks.memoryBytes + this.chunks.spilledBytes + this.used;
  }

  /** Bytes of records held in memory (at most the spool's limit plus one chunk). */
  get memoryBytes(): number {
    return this.chunks.memoryBytes + this.chunk.length;
  }

  /** Puts the last, partly filled chunk in the spool too (a run that gets no more entries: its chunk buffer is freed). */
  seal(): void {
    if (this.used === 0) return;
    this.chunks.push(this.chunk.subarray(0, this.used));
    this.chunk = Buffer.alloc(0);
    this.used = 0;
  }

  /** Releases the records and their file; they cannot be read afterwards. */
  close(): void {
    this.chunks.close();
  }

  /** The entries, decoded, in the order they were added. */
  *entries(): Generator<ManifestEntry> {
    // grown when a longer path comes (a merge reads many logs at once: each reader's buffers count)
    let path = Buffer.allocUnsafe(1024);
    const last = this.chunks.length;
    // spilled chunks are read into this generator's own buffer (two readers may interleave)
    let own: Buffer | undefined;
    for (let i = 0; i <= last; i++) {
      if (i < last && this.chunks.spilledBytes) own ??= Buffer.allocUnsafe(this.chunkBytes);
      const c = i < last ? this.chunks.read(i, own) : this.chunk.subarray(0, this.used);
      let at = 0;
      while (at < c.length) {
        const flags = c[at++]!;
        if (flags === 0xff) break; // the rest of a chunk a record did not fit in
        let v: number;
        [v, at] = varint(c, at);
        const mode = v;
        const size = c.readDoubleLE(at);
        at += 8;
        let shared: number;
        let fresh: number;
        [shared, at] = varint(c, at);
        [fresh, at] = varint(c, at);
        if (shared + fresh > path.length) path = Buffer.concat([path.subarray(0, shared), Buffer.alloc(shared + fresh)]);
        c.copy(path, shared, at, at + fresh);
        at += fresh;
        const e: ManifestEntry = { path: path.toString('utf8', 0, shared + fresh), type: KINDS[flags & 0x0f]!, mode, size };
        if (flags & HAS_SHA) {
          e.sha256 = c.toString('hex', at, at + 32);
          at += 32;
        }
        if (flags & HAS_LINK) {
          let n: number;
          [n, at] = varint(c, at);
          e.linkpath = c.toString('utf8', at, at + n);
          at += n;
        }
        noteEntryGarbage();
        yield e;
      }
    }
  }

  private append(e: ManifestEntry): void {
    const b = scratch;
    let at = 0;
    b[at++] = KINDS.indexOf(e.type) | (e.sha256 !== undefined ? HAS_SHA : 0) | (e.linkpath !== undefined ? HAS_LINK : 0);
    at = putVarint(b, at, e.mode);
    b.writeDoubleLE(e.size, at);
    at += 8;
    const path = Buffer.from(e.path, 'utf8');
    const prev = this.prevPath;
    let shared = 0;
    const max = Math.min(prev.length, path.length);
    while (shared < max && prev[shared] === path[shared]) shared++;
    at = putVarint(b, at, shared);
    at = putVarint(b, at, path.length - shared);
    if (at + (path.length - shared) + 32 + 10 > RECORD_MAX) throw tooLong('path', e.path);
    at += path.copy(b, at, shared);
    this.prevPath = path;
    if (e.sha256 !== undefined) {
      if (!/^[0-9a-f]{64}$/.test(e.sha256)) throw new Error(`ManifestLog: not a SHA-256: ${e.sha256}`);
      at += b.write(e.sha256, at, 'hex');
    }
    if (e.linkpath !== undefined) {
      const link = Buffer.from(e.linkpath, 'utf8');
      if (at + link.length + 5 > RECORD_MAX) throw tooLong('symlink target', e.path);
      at = putVarint(b, at, link.length);
      at += link.copy(b, at);
    }
    if (this.used + at > this.chunk.length) {
      if (this.used < this.chunk.length) this.chunk[this.used] = 0xff;
      const i = this.used > 0 ? this.chunks.push(this.chunk.subarray(0, this.used < this.chunk.length ? this.used + 1 : this.used)) : -1;
      // a chunk written to the file is not kept: its buffer takes the next records (no 256 KiB allocation per chunk, which fragments malloc's heap)
      if (i < 0 || this.chunks.inMemory(i) || this.chunk.length < this.chunkBytes) this.chunk = Buffer.allocUnsafe(this.chunkBytes);
      this.used = 0;
    }
    b.copy(this.chunk, this.used, 0, at);
    this.used += at;
  }
}

/** A path or link target no filesystem Kompox archives can hold (Linux allows 4 KiB): refused, not truncated. */
function tooLong(what: string, path: string): KompoxError {
  return new KompoxError('integrity', `the ${what} of ${JSON.stringify(path.slice(0, 100))}… is longer than ${RECORD_MAX / 1024} KiB; Kompox archives do not hold such entries`, {
    hint: 'Rename or remove the entry on the disk, then run the command again.',
  });
}
