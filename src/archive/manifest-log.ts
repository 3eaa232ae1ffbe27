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
import type { ArchiveManifest, ManifestEntry } from './archive.js';
import { EntryRecords } from './entry-records.js';
import { EntrySorter } from './entry-sort.js';
import type { SpoolOptions } from './spool.js';

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

/** Manifest text is handed out in pieces of at most this many bytes. */
const PIECE = 256 * 1024;

/** Entries in a compact log (EntryRecords): counts, running digest, and the manifest's JSON on demand. */
export class ManifestLog extends EntryRecords {
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

  constructor(private readonly spool: SpoolOptions = {}) {
    super(spool);
  }

  override add(e: ManifestEntry): void {
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
    super.add(e);
  }

  /** SHA-256 over the canonical listing in path order (treeDigestOf of the entries). */
  treeDigest(): string {
    if (this.ordered) return this.digest.copy().digest('hex');
    // Added out of order: hash them sorted (EntrySorter: in bounded memory).
    const sorter = new EntrySorter(this.spool);
    try {
      for (const e of this.entries()) sorter.add(e);
      const h = createHash('sha256');
      for (const e of sorter.sorted((p) => new Error(`ManifestLog: ${p} added twice`))) h.update(digestLine(e));
      return h.digest('hex');
    } finally {
      sorter.close();
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
}
