// Reads an archive's manifest (a JSON object, `entries` an array of small
// objects) as it arrives, one entry at a time, so an import never holds the
// whole manifest (~250 bytes of JSON per file) nor its parsed form. Bytes are
// scanned for value boundaries (JSON's structural characters are ASCII, and
// UTF-8 never puts an ASCII byte inside a multi-byte character); each top
// level value and each entry is then parsed by JSON.parse. Any JSON a
// manifest could be is accepted: keys in any order, any whitespace.
import { integrity, MANIFEST_NAME, type ManifestEntry } from './archive.js';

/** A single value (an entry, a top-level field) larger than this is refused. */
const VALUE_MAX = 16 * 1024 * 1024;

type State = 'start' | 'key' | 'colon' | 'value' | 'next' | 'items' | 'itemNext' | 'done';

export class ManifestStream {
  /** The top-level fields but `entries`. */
  readonly head: Record<string, unknown> = {};
  /** Entries seen. */
  entryCount = 0;
  private sawEntries = false;
  private buf: Buffer = Buffer.alloc(0);
  /** Where `buf` is assembled when a value spans chunks (reused). */
  private work: Buffer = Buffer.alloc(0);
  private state: State = 'start';
  private key = '';
  private afterFirstItem = false;

  constructor(private readonly onEntry: (e: ManifestEntry) => void) {}

  push(chunk: Buffer): void {
    if (this.buf.length === 0) this.buf = chunk;
    else {
      // The rest of a value split between chunks, then the chunk, in one
      // buffer kept from push to push: a manifest is ~250 bytes per file
      // (50 MB for 200,000 files), and a fresh concatenation per chunk was
      // as much garbage again, waiting for a GC at the import's peak.
      const need = this.buf.length + chunk.length;
      if (this.work.length < need) {
        const grown = Buffer.allocUnsafe(Math.max(need, 2 * this.work.length, 64 * 1024));
        this.buf.copy(grown, 0);
        this.work = grown;
      } else this.buf.copy(this.work, 0); // may overlap (the rest is in `work`): copy moves like memmove
      chunk.copy(this.work, this.buf.length);
      this.buf = this.work.subarray(0, need);
    }
    let at = 0;
    for (;;) {
      at = skipSpace(this.buf, at);
      if (at >= this.buf.length) break;
      const c = this.buf[at]!;
      if (this.state === 'start') {
        if (c !== 0x7b) throw malformed('it is not a JSON object');
        at++;
        this.state = 'key';
      } else if (this.state === 'key') {
        if (c === 0x7d) {
          at++;
          this.state = 'done';
          continue;
        }
        const end = valueEnd(this.buf, at);
        if (end < 0) break;
        const k: unknown = parse(this.buf, at, end);
        if (typeof k !== 'string') throw malformed('a key is not a string');
        this.key = k;
        at = end;
        this.state = 'colon';
      } else if (this.state === 'colon') {
        if (c !== 0x3a) throw malformed(`no ':' after "${this.key}"`);
        at++;
        this.state = 'value';
      } else if (this.state === 'value') {
        if (this.key === 'entries') {
          if (c !== 0x5b || this.sawEntries) throw malformed('`entries` is not one array');
          this.sawEntries = true;
          at++;
          this.state = 'items';
          this.afterFirstItem = false;
          continue;
        }
        const end = valueEnd(this.buf, at);
        if (end < 0) break;
        this.head[this.key] = parse(this.buf, at, end);
        at = end;
        this.state = 'next';
      } else if (this.state === 'next') {
        if (c === 0x2c) this.state = 'key';
        else if (c === 0x7d) this.state = 'done';
        else throw malformed('a field is not followed by , or }');
        at++;
      } else if (this.state === 'items') {
        if (c === 0x5d && !this.afterFirstItem) {
          at++;
          this.state = 'next';
          continue;
        }
        const end = valueEnd(this.buf, at);
        if (end < 0) break;
        const e = parse(this.buf, at, end) as ManifestEntry;
        if (!e || typeof e !== 'object' || Array.isArray(e) || typeof e.path !== 'string') throw malformed('it has a malformed entry');
        at = end;
        this.entryCount++;
        this.state = 'itemNext';
        this.onEntry(e);
      } else if (this.state === 'itemNext') {
        if (c === 0x2c) {
          this.afterFirstItem = true;
          this.state = 'items';
        } else if (c === 0x5d) this.state = 'next';
        else throw malformed('an entry is not followed by , or ]');
        at++;
      } else {
        throw malformed('there is more after the JSON object');
      }
    }
    this.buf = this.buf.subarray(at);
    if (this.buf.length > VALUE_MAX) throw integrity(`${MANIFEST_NAME} has a value larger than ${VALUE_MAX} bytes: it is not a Kompox archive manifest`);
    // The rest waits for the next push in `work`, not in `chunk`: the reader
    // that gave `chunk` may free its memory at its next read (ByteReader's release).
    if (this.buf.length > 0 && this.buf.buffer !== this.work.buffer) {
      if (this.work.length < this.buf.length) this.work = Buffer.allocUnsafe(Math.max(this.buf.length, 2 * this.work.length, 64 * 1024));
      this.buf.copy(this.work, 0);
      this.buf = this.work.subarray(0, this.buf.length);
    }
  }

  /** The whole manifest was pushed: it must have been one complete object with an `entries` array. */
  end(): void {
    if (this.state !== 'done' || skipSpace(this.buf, 0) < this.buf.length) throw malformed('it ends in the middle');
    if (!this.sawEntries) throw malformed('it has no entries');
  }
}

function malformed(why: string) {
  return integrity(`${MANIFEST_NAME} in the archive is not valid JSON (${why})`);
}

function parse(b: Buffer, start: number, end: number): unknown {
  try {
    return JSON.parse(b.toString('utf8', start, end));
  } catch {
    throw malformed('a value does not parse');
  }
}

function skipSpace(b: Buffer, at: number): number {
  while (at < b.length) {
    const c = b[at]!;
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    at++;
  }
  return at;
}

/** Where the JSON value starting at `at` ends, or -1 when more bytes are needed to know. */
function valueEnd(b: Buffer, at: number): number {
  const c = b[at]!;
  if (c === 0x22) return stringEnd(b, at);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (let i = at; i < b.length; i++) {
      const x = b[i]!;
      if (x === 0x22) {
        const e = stringEnd(b, i);
        if (e < 0) return -1;
        i = e - 1;
      } else if (x === 0x7b || x === 0x5b) depth++;
      else if (x === 0x7d || x === 0x5d) {
        depth--;
        if (depth === 0) return i + 1;
      }
    }
    return -1;
  }
  // A number, true, false or null: up to the next delimiter (more may follow in the next chunk).
  for (let i = at; i < b.length; i++) {
    const x = b[i]!;
    if (x === 0x2c || x === 0x7d || x === 0x5d || x === 0x20 || x === 0x0a || x === 0x0d || x === 0x09) return i;
  }
  return -1;
}

function stringEnd(b: Buffer, at: number): number {
  for (let i = at + 1; i < b.length; i++) {
    const x = b[i]!;
    if (x === 0x5c) i++;
    else if (x === 0x22) return i + 1;
  }
  return -1;
}
