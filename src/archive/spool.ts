// Chunks of records kept in memory up to a limit, then in a temporary file
// (issue 11: a data command's memory must not grow with the disk's file
// count). The compact logs of an archive being written or read (ManifestLog,
// EntrySorter) hold ~60–90 bytes per file until the manifest, which comes last;
// a million files would be 60–90 MiB on top of the data path's own. Past
// `memoryBytes`, chunks go to a file that is unlinked as soon as it is
// created: nothing is left behind if the process dies, and no other process
// can open it by name. Reads and writes are synchronous: the callers are
// synchronous encoders, chunks are 256 KiB, and the file is in the page cache.
import { closeSync, mkdtempSync, openSync, readSync, rmdirSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KompoxError, filesystemProblem } from '../domain/errors.js';

export interface SpoolOptions {
  /** Directory for the temporary file (default: the system's temporary directory). */
  dir?: string;
  /** Bytes kept in memory before chunks go to the file (default SPOOL_MEMORY). */
  memoryBytes?: number;
}

/**
 * Bytes a spool keeps in memory by default: disks of up to ~15,000 files
 * never touch the file. Not more: a data path holds several logs at once (an
 * import: what it extracted, the verified log, the directories; a snapshot
 * on a node: a listing's entries and hashes, the manifest, the stat keys),
 * and past this the records are read back in order from a page-cached file
 * anyway. With 4 MiB, such paths peaked at 102-110 MiB at 200,000 files
 * (docs/benchmarks.md, "Small files paced by the entry").
 */
export const SPOOL_MEMORY = 1024 * 1024;

/** Closes a spool's file when the spool is collected without close() (a backstop; close() is the rule). */
const orphans = new FinalizationRegistry<{ fd: number }>((h) => {
  if (h.fd >= 0) {
    try {
      closeSync(h.fd);
    } catch {
      /* already closed */
    }
  }
});

/** An append-only list of chunks, read back by index; each chunk is stored whole (ownership passes on push). */
export class ChunkSpool {
  private readonly mem: Array<Buffer | undefined> = [];
  /** File offset of each spilled chunk (-1: in memory). */
  private readonly pos: number[] = [];
  private readonly len: number[] = [];
  private memUsed = 0;
  private fileUsed = 0;
  private readonly handle = { fd: -1 };
  private scratch: Buffer | undefined;
  private closed = false;
  private readonly limit: number;

  constructor(private readonly opts: SpoolOptions = {}) {
    this.limit = opts.memoryBytes ?? SPOOL_MEMORY;
  }

  /** Chunks pushed. */
  get length(): number {
    return this.len.length;
  }

  /** Bytes held in memory. */
  get memoryBytes(): number {
    return this.memUsed;
  }

  /** Bytes written to the temporary file. */
  get spilledBytes(): number {
    return this.fileUsed;
  }

  /** Whether chunk `i` is held in memory (a spilled one's buffer was not kept: its pusher may reuse it). */
  inMemory(i: number): boolean {
    return this.mem[i] !== undefined;
  }

  /** Appends a chunk (not to be changed afterwards while inMemory); returns its index. */
  push(chunk: Buffer): number {
    if (this.closed) throw new Error('ChunkSpool: closed');
    const i = this.len.length;
    this.len.push(chunk.length);
    if (this.fileUsed === 0 && this.memUsed + chunk.length <= this.limit) {
      this.mem.push(chunk);
      this.pos.push(-1);
      this.memUsed += chunk.length;
      return i;
    }
    try {
      const fd = this.file();
      for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off, chunk.length - off, this.fileUsed + off);
    } catch (e) {
      this.len.pop();
      throw spillFailed(e, this.opts.dir ?? tmpdir());
    }
    this.mem.push(undefined);
    this.pos.push(this.fileUsed);
    this.fileUsed += chunk.length;
    return i;
  }

  /**
   * Chunk `i`: the pushed buffer when it is in memory, else read from the
   * file into `into` (when large enough) or into one buffer the spool reuses,
   * valid until the next read.
   */
  read(i: number, into?: Buffer): Buffer {
    if (this.closed) throw new Error('ChunkSpool: closed');
    const m = this.mem[i];
    if (m) return m;
    const n = this.len[i];
    if (n === undefined) throw new RangeError(`ChunkSpool: no chunk ${i}`);
    let buf = into && into.length >= n ? into : this.scratch;
    if (!buf || buf.length < n) buf = this.scratch = Buffer.allocUnsafe(Math.max(n, 256 * 1024));
    const at = this.pos[i]!;
    for (let off = 0; off < n; ) {
      const got = readSync(this.handle.fd, buf, off, n - off, at + off);
      if (got === 0) throw new Error('ChunkSpool: the temporary file is shorter than written');
      off += got;
    }
    return buf.subarray(0, n);
  }

  /** Every chunk in order (a spilled one is valid until the next is read). */
  *chunks(): Generator<Buffer> {
    for (let i = 0; i < this.len.length; i++) yield this.read(i);
  }

  /** Releases the chunks and the file. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.mem.length = 0;
    this.scratch = undefined;
    if (this.handle.fd >= 0) {
      const fd = this.handle.fd;
      this.handle.fd = -1;
      orphans.unregister(this);
      closeSync(fd);
    }
  }

  private file(): number {
    if (this.handle.fd >= 0) return this.handle.fd;
    const dir = mkdtempSync(join(this.opts.dir ?? tmpdir(), 'kompox-spool-'));
    const path = join(dir, 'records');
    try {
      this.handle.fd = openSync(path, 'wx+', 0o600);
    } finally {
      // unlinked at once: the open descriptor is the only way to it
      try {
        unlinkSync(path);
      } catch {
        /* never created */
      }
      rmdirSync(dir);
    }
    orphans.register(this, this.handle, this);
    return this.handle.fd;
  }
}

/** Why the temporary file could not be written, where, and what to do (a full or missing temp directory is the machine's state, not a bug). */
function spillFailed(e: unknown, dir: string): unknown {
  const why = filesystemProblem((e as NodeJS.ErrnoException | undefined)?.code);
  if (!why) return e;
  return new KompoxError('unavailable', `cannot write a temporary file under ${dir}: ${why}`, {
    code: 'tmp.unwritable',
    details: { dir },
    hint:
      (e as NodeJS.ErrnoException).code === 'EIO'
        ? "Check that device (the kernel's log: dmesg), or point TMPDIR at a directory on another filesystem (a large disk or file count spills its listing there)."
        : 'Free space there, or point TMPDIR at a directory on a filesystem with room (a large disk or file count spills its listing there).',
    cause: e,
  });
}
