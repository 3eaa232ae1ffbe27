// What Kompox keeps of a node's listing (node-commands.ts) while a copy that
// stays on the node is checked, in memory that does not grow with the file
// count (issue 11: data commands stay <= 100 MiB whatever the disk; a disk of
// 200,000 files listed as objects, Maps and sorted copies took hundreds of
// MiB). The listing streams in from the node in the filesystem's order and
// goes straight into EntrySorters (a few MiB in memory, the rest spilled);
// everything after is a merge of streams in path order: the hashes joined
// to their files, the manifest built (ManifestLog), the extracted tree
// compared with the archive's manifest, two listings compared for a change.
import { DATA_DIR, MANIFEST_NAME, checkEntryPath, checkManifestHead, checkManifestTotals, compareEntry, countEntry, integrity, type TreeSize, type ArchiveManifest, type EntryKind, type ManifestEntry } from '../../archive/archive.js';
import { EntrySorter, type EntrySorterOptions } from '../../archive/entry-sort.js';
import { digestLine } from '../../archive/manifest-log.js';
import { ManifestStream } from '../../archive/manifest-stream.js';
import { ChunkSpool } from '../../archive/spool.js';
import { createHash } from 'node:crypto';
import { STAT_KEY_BYTES, manifestEntryOf, type ListedEntry } from './node-commands.js';

export { ListingError, ListingJoin, MissingHashError } from '../../archive/listing-join.js';

/** Fixed-size keys appended in order and read back in that order, spilled past a few MiB (ChunkSpool). */
export class KeyLog {
  private readonly spool = new ChunkSpool();
  private chunk = Buffer.allocUnsafe(64 * 1024);
  private used = 0;

  add(key: Buffer): void {
    if (key.length !== STAT_KEY_BYTES) throw new Error(`KeyLog: a key of ${key.length} bytes`);
    if (this.used + STAT_KEY_BYTES > this.chunk.length) {
      this.spool.push(this.chunk);
      this.chunk = Buffer.allocUnsafe(64 * 1024);
      this.used = 0;
    }
    key.copy(this.chunk, this.used);
    this.used += STAT_KEY_BYTES;
  }

  /** The keys in order (each valid until the next is read). */
  *keys(): Generator<Buffer> {
    for (let i = 0; i <= this.spool.length; i++) {
      const c = i < this.spool.length ? this.spool.read(i) : this.chunk.subarray(0, this.used);
      for (let at = 0; at + STAT_KEY_BYTES <= c.length; at += STAT_KEY_BYTES) yield c.subarray(at, at + STAT_KEY_BYTES);
    }
  }

  close(): void {
    this.spool.close();
  }
}

/**
 * The refusals unpackArchive makes of entry names (checkArchiveNames: no
 * absolute paths, no `..`, nothing outside data/, nothing twice, the
 * manifest once and last), made on the names as tar prints them. The first
 * failure is kept, not thrown, until finish(), so that the caller can
 * report the archive's checksum and tar's own complaints first.
 */
export class ArchiveNamesCheck {
  private failure: unknown;
  private readonly paths: EntrySorter;
  private last: string | undefined;
  private sawManifest = false;

  constructor(opts: EntrySorterOptions = {}) {
    this.paths = new EntrySorter(opts);
  }

  /** One name as tar printed it, unescaped. */
  name(raw: string): void {
    if (this.failure) return;
    try {
      const path = checkEntryPath(raw);
      if (path === MANIFEST_NAME) this.sawManifest = true;
      this.last = path;
      this.paths.add({ path, type: 'dir', mode: 0, size: 0 });
    } catch (e) {
      this.failure = e;
    }
  }

  /** Throws the first refusal. */
  finish(): void {
    if (this.failure) throw this.failure;
    for (const _ of this.paths.sorted((path) => integrity(`the archive contains ${path} twice`)));
    if (!this.sawManifest) throw integrity(`the archive ends without ${MANIFEST_NAME}: it is truncated or not a Kompox archive`);
    if (this.last !== MANIFEST_NAME) throw integrity(`the archive has entries after ${MANIFEST_NAME}; this is not a Kompox archive`);
  }

  close(): void {
    this.paths.close();
  }
}

/**
 * An archive's manifest read as it streams (ManifestStream): its fields,
 * and its entries sorted by path (manifests Kompox writes are in path order
 * already; older ones listed depth first). Each entry goes through the
 * sorter as JSON (what compareEntry reads of it), so a malformed one is
 * reported by verify() as verifyManifest would. The first failure is kept until failure() is asked.
 */
export class ManifestReader {
  private readonly stream: ManifestStream;
  private readonly entries: EntrySorter;
  private error: unknown;
  bytes = 0;

  constructor(opts: EntrySorterOptions = {}) {
    this.entries = new EntrySorter(opts);
    // what compareEntry reads of an entry, as it was written (any JSON: a wrong type or size is refused as verifyManifest refuses it)
    this.stream = new ManifestStream((e) => this.entries.add({ path: e.path, type: 'symlink', mode: 0, size: 0, linkpath: JSON.stringify([e.type, e.size, e.sha256, e.linkpath]) }));
  }

  push(chunk: Buffer): void {
    if (this.error) return;
    this.bytes += chunk.length;
    try {
      this.stream.push(chunk);
    } catch (e) {
      this.error = e;
    }
  }

  /** The manifest ended: its fields but the entries, or the first failure thrown. */
  end(): Partial<ArchiveManifest> {
    if (!this.error) {
      try {
        this.stream.end();
      } catch (e) {
        this.error = e;
      }
    }
    if (this.error) throw this.error;
    return this.stream.head as Partial<ArchiveManifest>;
  }

  /**
   * verifyManifest by a merge: the extracted tree (SEEN, in path order)
   * against the manifest's entries: every path listed and extracted, each
   * type, size, SHA-256 and link target as listed (compareEntry), a path
   * listed once, and the tree digest of what was extracted the manifest's.
   */
  verify(head: Partial<ArchiveManifest>, seen: Iterable<ManifestEntry>): void {
    checkManifestHead(head);
    const want = this.entries.sorted((path) => integrity(`the manifest lists ${path} twice`));
    let w = want.next();
    const digest = createHash('sha256');
    const totals: TreeSize = { fileCount: 0, dirCount: 0, symlinkCount: 0, totalBytes: 0 };
    for (const got of seen) {
      countEntry(totals, got);
      if (!w.done && w.value.path < got.path) throw integrity(`the manifest lists ${w.value.path} but the archive does not contain it: the archive is incomplete`);
      if (w.done || w.value.path !== got.path) throw integrity(`archive entry ${got.path} is not listed in the manifest`);
      const [type, size, sha256, linkpath] = JSON.parse(w.value.linkpath!) as [ManifestEntry['type'], number, string | null, string | null];
      compareEntry(got.path, got, { path: got.path, type, mode: 0, size, ...(sha256 != null ? { sha256 } : {}), ...(linkpath != null ? { linkpath } : {}) });
      digest.update(digestLine(got));
      w = want.next();
    }
    if (!w.done) throw integrity(`the manifest lists ${w.value.path} but the archive does not contain it: the archive is incomplete`);
    const d = digest.digest('hex');
    if (d !== head.treeDigest) throw integrity(`the extracted tree's digest ${d} differs from the manifest's ${head.treeDigest}`);
    checkManifestTotals(head, totals);
  }

  close(): void {
    this.entries.close();
  }
}

/** The manifest entries of a sorted listing (its `other` entries refused before: see ListingJoin.firstOther). */
export function* manifestEntries(listed: Iterable<ListedEntry>): Generator<ManifestEntry> {
  for (const e of listed) yield manifestEntryOf(e);
}
