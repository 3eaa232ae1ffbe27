// What an import has extracted so far, kept compact (issue 11: flat memory
// whatever the file count). The manifest comes last, so every entry's
// metadata and SHA-256 wait for it; as a Map of objects that cost ~500 bytes
// per file. Here each entry is a binary record (~90 bytes for a typical
// file: the path, 32 bytes of SHA-256, mode and size) in 256 KiB chunks,
// found by path through an open-addressing hash table of record numbers
// (4-8 bytes per entry), with one byte per entry marking those the manifest
// has listed.
import type { EntryKind } from './archive.js';
import { putVarint, varint } from './varint.js';

export interface SeenEntry {
  type: EntryKind;
  mode: number;
  size: number;
  sha256?: string;
  linkpath?: string;
}

const KINDS: readonly EntryKind[] = ['dir', 'file', 'symlink'];
const HAS_SHA = 0x10;
const HAS_LINK = 0x20;
const CHUNK = 256 * 1024;

export class SeenLog {
  private readonly chunks: Buffer[] = [Buffer.allocUnsafe(CHUNK)];
  private used = 0;
  /** Record number → chunk index * CHUNK + offset. */
  private offsets = new Float64Array(1024);
  /** Record number + 1 per slot (0: empty). */
  private table = new Uint32Array(2048);
  private marks = new Uint8Array(1024);
  /** Entries added. */
  size = 0;
  /** Entries marked. */
  marked = 0;

  add(path: string, e: SeenEntry): void {
    const key = Buffer.from(path, 'utf8');
    const link = e.linkpath !== undefined ? Buffer.from(e.linkpath, 'utf8') : undefined;
    const need = 1 + 5 + 8 + 5 + key.length + 32 + (link ? 5 + link.length : 0);
    let c = this.chunks[this.chunks.length - 1]!;
    if (this.used + need > c.length) {
      c = Buffer.allocUnsafe(Math.max(CHUNK, need));
      this.chunks.push(c);
      this.used = 0;
    }
    const start = this.used;
    let at = start;
    c[at++] = KINDS.indexOf(e.type) | (e.sha256 !== undefined ? HAS_SHA : 0) | (link ? HAS_LINK : 0);
    at = putVarint(c, at, e.mode);
    c.writeDoubleLE(e.size, at);
    at += 8;
    at = putVarint(c, at, key.length);
    at += key.copy(c, at);
    if (e.sha256 !== undefined) at += c.write(e.sha256, at, 'hex');
    if (link) {
      at = putVarint(c, at, link.length);
      at += link.copy(c, at);
    }
    this.used = at;
    if (this.size === this.offsets.length) {
      this.offsets = grow(this.offsets);
      this.marks = grow(this.marks);
    }
    // Chunks may be larger than CHUNK (one huge record): the offset keeps chunk and position apart.
    this.offsets[this.size] = (this.chunks.length - 1) * 2 ** 32 + start;
    this.size++;
    if (this.size * 2 > this.table.length) this.rehash();
    this.insert(this.size - 1, hash(key));
  }

  /** The record number of `path`, or -1. */
  find(path: string): number {
    const key = Buffer.from(path, 'utf8');
    const mask = this.table.length - 1;
    for (let slot = hash(key) & mask; ; slot = (slot + 1) & mask) {
      const v = this.table[slot]!;
      if (v === 0) return -1;
      if (this.pathEquals(v - 1, key)) return v - 1;
    }
  }

  get(index: number): SeenEntry & { path: string } {
    const [c, start] = this.locate(index);
    let at = start;
    const flags = c[at++]!;
    let mode: number;
    [mode, at] = varint(c, at);
    const size = c.readDoubleLE(at);
    at += 8;
    let n: number;
    [n, at] = varint(c, at);
    const path = c.toString('utf8', at, at + n);
    at += n;
    const e: SeenEntry & { path: string } = { path, type: KINDS[flags & 0x0f]!, mode, size };
    if (flags & HAS_SHA) {
      e.sha256 = c.toString('hex', at, at + 32);
      at += 32;
    }
    if (flags & HAS_LINK) {
      [n, at] = varint(c, at);
      e.linkpath = c.toString('utf8', at, at + n);
    }
    return e;
  }

  /** The kind of entry `index` (undefined for -1: not found). */
  kind(index: number): EntryKind | undefined {
    if (index < 0) return undefined;
    const [c, start] = this.locate(index);
    return KINDS[c[start]! & 0x0f];
  }

  /** Marks an entry (the manifest listed it); false when it was marked already. */
  mark(index: number): boolean {
    if (this.marks[index]) return false;
    this.marks[index] = 1;
    this.marked++;
    return true;
  }

  /** The first entry not marked, or -1. */
  firstUnmarked(): number {
    for (let i = 0; i < this.size; i++) if (!this.marks[i]) return i;
    return -1;
  }

  /** Every entry with its path, in the order added. */
  *entries(): Generator<SeenEntry & { path: string }> {
    for (let i = 0; i < this.size; i++) yield this.get(i);
  }

  private locate(index: number): [Buffer, number] {
    const o = this.offsets[index]!;
    const chunk = Math.floor(o / 2 ** 32);
    return [this.chunks[chunk]!, o - chunk * 2 ** 32];
  }

  /** The bytes of entry `index`'s path (a view into its chunk). */
  private pathBytes(index: number): Buffer {
    const [c, start] = this.locate(index);
    let at = start + 1;
    [, at] = varint(c, at); // mode
    at += 8; // size
    let n: number;
    [n, at] = varint(c, at);
    return c.subarray(at, at + n);
  }

  private pathEquals(index: number, key: Buffer): boolean {
    return key.equals(this.pathBytes(index));
  }

  private insert(index: number, h: number): void {
    const mask = this.table.length - 1;
    let slot = h & mask;
    while (this.table[slot] !== 0) slot = (slot + 1) & mask;
    this.table[slot] = index + 1;
  }

  private rehash(): void {
    this.table = new Uint32Array(this.table.length * 2);
    for (let i = 0; i < this.size - 1; i++) this.insert(i, hash(this.pathBytes(i)));
  }
}

/** FNV-1a over the path's UTF-8 bytes. */
function hash(b: Buffer): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

function grow<T extends Float64Array | Uint8Array>(a: T): T {
  const b = new (a.constructor as new (n: number) => T)(a.length * 2);
  b.set(a);
  return b;
}
