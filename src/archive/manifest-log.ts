// The manifest of an archive being written, kept compact (issue 11: a data
// command's memory must not grow with the disk). The manifest comes last in
// the archive and lists every entry, so a packer holds it until the end; as
// JavaScript objects that cost ~1.5 KiB per file (entry objects, path
// strings, boxed numbers, then the whole pretty-printed JSON as one string
// and one Buffer): 575 MiB for a disk of 200,000 small files. Here each entry
// is a binary record (path front-coded against the previous one, SHA-256 as
// 32 bytes), about 60 bytes for a typical file, in 256 KiB chunks; the tree
// digest is hashed as entries arrive when they come in path order (packTree's
// walk gives that order), and the manifest's JSON is produced piece by piece
// when it is written, byte for byte what JSON.stringify(manifest, null, 2)
// gives. Past a few MiB the chunks go to a temporary file (ChunkSpool), so
// the log's memory stays flat whatever the file count; the file is closed
// when the log is (close()) or, since the manifest it returns reads its
// entries lazily, when both are collected.
import { createHash } from 'node:crypto';
import { KompoxError } from '../domain/errors.js';
import type { ArchiveManifest, EntryKind, ManifestEntry } from './archive.js';
import { ChunkSpool, type SpoolOptions } from './spool.js';
import { putVarint, varint } from './varint.js';

/** One line of the tree digest (treeDigestOf): the canonical listing of an entry. */
export function digestLine(e: ManifestEntry): string {
  return `${e.type} ${(e.mode & 0o7777).toString(8)} ${e.type === 'file' ? e.size : 0} ${e.sha256 ?? '-'} ${JSON.stringify(e.path)} ${JSON.stringify(e.linkpath ?? '')}\n`;
}

/**
 * An entry as JSON.stringify(manifest, null, 2) prints it inside the
 * manifest's `entries` array (keys in the order packers create them).
 */
export function entryJson(e: ManifestEntry): string {
  let s = `    {\n      "path": ${JSON.stringify(e.path)},\n      "type": ${JSON.stringify(e.type)},\n      "mode": ${JSON.stringify(e.mode)},\n      "size": ${JSON.stringify(e.size)}`;
  if (e.sha256 !== undefined) s += `,\n      "sha256": ${JSON.stringify(e.sha256)}`;
  if (e.linkpath !== undefined) s += `,\n      "linkpath": ${JSON.stringify(e.linkpath)}`;
  return `${s}\n    }`;
}

const KINDS: readonly EntryKind[] = ['dir', 'file', 'symlink'];
const HAS_SHA = 0x10;
const HAS_LINK = 0x20;
const CHUNK = 256 * 1024;
/** A record's largest size: paths and link targets are bounded by PATH_MAX-like limits well below this. */
const RECORD_MAX = 64 * 1024;
/** Manifest text is handed out in pieces of at most this many bytes. */
const PIECE = 256 * 1024;

/**
 * A path or symlink target a record cannot hold: input (a crafted tar stream,
 * a tree nested past PATH_MAX), so a KompoxError naming the path's start.
 */
function tooLong(what: 'path' | 'symlink target', path: string, bytes: number): KompoxError {
  const shown = path.length > 120 ? `${path.slice(0, 120)}…` : path;
  return new KompoxError('integrity', `the ${what} of ${JSON.stringify(shown)} is ${bytes.toLocaleString('en')} bytes; Kompox archives hold paths and symlink targets of at most 64 KiB`, {
    code: 'archive.path.too-long',
    hint: 'Rename or remove that entry on the disk (it is beyond what tar and most tools handle), then try again.',
  });
}

/** Entries in a compact log: counts, running digest, and the manifest's JSON on demand. */
export class ManifestLog {
  private readonly chunks: ChunkSpool;
  private chunk = Buffer.allocUnsafe(CHUNK);
  private used = 0;
  private readonly scratch = Buffer.allocUnsafe(RECORD_MAX);
  private prevPath = Buffer.alloc(0);
  private lastPath: string | undefined;
  /** Whether entries came in path order (then the digest is the running hash). */
  private ordered = true;
  private readonly digest = createHash('sha256');
  fileCount = 0;
  dirCount = 0;
  symlinkCount = 0;
  totalBytes = 0;
  /** Entries added. */
  count = 0;
  /** Bytes of the entries' JSON text (entryJson of each), without separators. */
  private textBytes = 0;

  constructor(spool: SpoolOptions = {}) {
    this.chunks = new ChunkSpool(spool);
  }

  add(e: ManifestEntry): void {
    if (this.lastPath !== undefined && !(this.lastPath < e.path)) this.ordered = false;
    this.lastPath = e.path;
    if (this.ordered) this.digest.update(digestLine(e));
    this.textBytes += Buffer.byteLength(entryJson(e));
    this.count++;
    if (e.type === 'file') {
      this.fileCount++;
      this.totalBytes += e.size;
    } else if (e.type === 'dir') this.dirCount++;
    else this.symlinkCount++;
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

  /** Releases the records and their file; the log (and a manifest from it) cannot be read afterwards. */
  close(): void {
    this.chunks.close();
  }

  /** SHA-256 over the canonical listing in path order (treeDigestOf of the entries). */
  treeDigest(): string {
    if (this.ordered) return this.digest.copy().digest('hex');
    // Added out of order: sort them (all in memory, as treeDigestOf does).
    const h = createHash('sha256');
    for (const e of [...this.entries()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) h.update(digestLine(e));
    return h.digest('hex');
  }

  /** The entries, decoded, in the order they were added. */
  *entries(): Generator<ManifestEntry> {
    let path = Buffer.allocUnsafe(RECORD_MAX);
    const last = this.chunks.length;
    // spilled chunks are read into this generator's own buffer (two readers may interleave)
    let own: Buffer | undefined;
    for (let i = 0; i <= last; i++) {
      if (i < last && this.chunks.spilledBytes) own ??= Buffer.allocUnsafe(CHUNK);
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
        yield e;
      }
    }
  }

  /**
   * The manifest's file content (what manifestBody gives for the same
   * manifest), in pieces, and its length up front (the tar header needs it).
   * A piece is valid until the next one is asked for (one buffer is reused).
   */
  body(head: Omit<ArchiveManifest, 'entries'>): { length: number; pieces: () => Generator<Buffer> } {
    // The head is the manifest with an empty list, whose closing `[]\n}` is where the entries go.
    const empty = JSON.stringify({ ...head, entries: [] }, null, 2);
    if (!empty.endsWith('[]\n}')) throw new Error('ManifestLog: unexpected manifest layout');
    const open = Buffer.from(`${empty.slice(0, -'[]\n}'.length)}${this.count ? '[\n' : '[]'}`, 'utf8');
    const close = Buffer.from(this.count ? '\n  ]\n}\n' : '\n}\n', 'utf8');
    const separators = this.count > 0 ? 2 * (this.count - 1) : 0; // ",\n" between entries
    const length = open.length + this.textBytes + separators + close.length;
    const log = this;
    return {
      length,
      *pieces() {
        yield open;
        // Entries go out through one reused buffer: no garbage per piece.
        const buf = Buffer.allocUnsafe(PIECE);
        let used = 0;
        let first = true;
        for (const e of log.entries()) {
          const t = first ? entryJson(e) : `,\n${entryJson(e)}`;
          first = false;
          if (used + t.length * 3 > buf.length) {
            if (used) yield buf.subarray(0, used);
            used = 0;
            if (t.length * 3 > buf.length) {
              yield Buffer.from(t, 'utf8'); // an entry larger than the buffer (a very long path)
              continue;
            }
          }
          used += buf.write(t, used, 'utf8');
        }
        if (used) yield buf.subarray(0, used);
        yield close;
      },
    };
  }

  /** The manifest object; its `entries` are decoded from the log when read. */
  manifest(head: Omit<ArchiveManifest, 'entries'>): ArchiveManifest {
    const m = { ...head } as ArchiveManifest;
    Object.defineProperty(m, 'entries', { enumerable: true, get: () => [...this.entries()] });
    return m;
  }

  private append(e: ManifestEntry): void {
    const b = this.scratch;
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
    if (at + (path.length - shared) + 32 + 10 > RECORD_MAX) throw tooLong('path', e.path, path.length);
    at += path.copy(b, at, shared);
    this.prevPath = path;
    if (e.sha256 !== undefined) {
      if (!/^[0-9a-f]{64}$/.test(e.sha256)) throw new Error(`ManifestLog: not a SHA-256: ${e.sha256}`);
      at += b.write(e.sha256, at, 'hex');
    }
    if (e.linkpath !== undefined) {
      const link = Buffer.from(e.linkpath, 'utf8');
      if (at + link.length + 5 > RECORD_MAX) throw tooLong('symlink target', e.path, link.length);
      at = putVarint(b, at, link.length);
      at += link.copy(b, at);
    }
    if (this.used + at > this.chunk.length) {
      if (this.used < this.chunk.length) this.chunk[this.used] = 0xff;
      this.chunks.push(this.chunk.subarray(0, this.used < this.chunk.length ? this.used + 1 : this.used));
      this.chunk = Buffer.allocUnsafe(CHUNK);
      this.used = 0;
    }
    b.copy(this.chunk, this.used, 0, at);
    this.used += at;
  }
}
