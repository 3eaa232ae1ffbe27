// The portable archive every driver exports and imports: a gzip-compressed
// POSIX pax tar holding the disk's files under `data/` and, as the LAST entry,
// `kompox-archive.json` (the manifest: per-entry SHA-256, counts, a tree
// digest). Putting the manifest last lets export stream to stdout in one pass
// and lets import verify every file while extracting. The SHA-256 of the
// whole compressed stream is computed on both sides and reported (export)
// or checked (import, when the caller knows the expected value).
//
// Import never makes a partial tree visible: it extracts into a directory the
// caller provides (a temp dir beside the final place), and throws a
// KompoxError of kind 'integrity' on any mismatch; the caller removes the temp
// dir and renames it into place only after success.
//
// File access goes through TreeFs so the same code works on the local
// filesystem and over SFTP.
import { createHash, type Hash } from 'node:crypto';
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { Header, Pax } from 'tar';
import { KompoxError } from '../domain/errors.js';
import { nowRfc3339 } from '../domain/names.js';
import type { ProgressSink } from '../domain/events.js';

export const ARCHIVE_FORMAT = 'kompox-archive';
export const ARCHIVE_VERSION = 1;
export const MANIFEST_NAME = 'kompox-archive.json';
/** Top-level directory of the disk's files inside the archive. */
export const DATA_DIR = 'data';

export type EntryKind = 'file' | 'dir' | 'symlink';

export interface TreeStat {
  kind: EntryKind | 'other';
  /** Permission bits incl. setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Whole milliseconds (transports round what the filesystem reports). */
  mtimeMs: number;
}

/** The filesystem operations archive packing and unpacking need. */
export interface TreeFs {
  /** Like lstat (never follows a symlink); undefined when the path does not exist. */
  lstat(path: string): Promise<TreeStat | undefined>;
  readdir(path: string): Promise<string[]>;
  readlink(path: string): Promise<string>;
  openRead(path: string): Readable;
  /** Creates (exclusively) a file for writing with the given mode. */
  openWrite(path: string, mode: number): Writable;
  mkdir(path: string, mode: number): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  /** Sets atime+mtime; for a symlink only where the transport can do it without following it. */
  setTimes(path: string, mtimeMs: number, kind: EntryKind): Promise<void>;
  lchown(path: string, uid: number, gid: number): Promise<void>;
  /** True when ownership can and should be restored (running as root). */
  readonly canChown: boolean;
}

export interface ManifestEntry {
  /** Archive path, `data` or `data/...`. */
  path: string;
  type: EntryKind;
  mode: number;
  size: number;
  sha256?: string;
  linkpath?: string;
}

export interface ArchiveSource {
  app?: string;
  volume?: string;
  disk?: string;
  id?: string;
  snapshot?: string;
  /** Requested size of the source disk (an import keeps it unless told otherwise). */
  sizeGiB?: number;
}

export interface ArchiveManifest {
  format: typeof ARCHIVE_FORMAT;
  version: number;
  createdAt: string;
  source: ArchiveSource;
  fileCount: number;
  dirCount: number;
  symlinkCount: number;
  /** Sum of regular file sizes. */
  totalBytes: number;
  /** SHA-256 over the canonical entry listing (see treeDigestOf). */
  treeDigest: string;
  entries: ManifestEntry[];
}

export interface ArchiveResult {
  manifest: ArchiveManifest;
  /** SHA-256 (hex) of the compressed archive bytes. */
  sha256: string;
  /** Size of the compressed archive in bytes. */
  bytes: number;
}

const BLOCK = 512;
const CHUNK = 256 * 1024;

// ---------------------------------------------------------------- digests

/** Digest of a tree listing: type, permission bits, size, content hash, path, link target; sorted by path. */
export function treeDigestOf(entries: readonly ManifestEntry[]): string {
  const h = createHash('sha256');
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const e of sorted) {
    h.update(
      `${e.type} ${(e.mode & 0o7777).toString(8)} ${e.type === 'file' ? e.size : 0} ${e.sha256 ?? '-'} ${JSON.stringify(e.path)} ${JSON.stringify(e.linkpath ?? '')}\n`,
    );
  }
  return h.digest('hex');
}

/** Walks a directory (never following symlinks) in sorted order; archive paths are relative to `root` and prefixed with `data`. */
async function walk(fs: TreeFs, root: string, visit: (abs: string, rel: string, st: TreeStat) => Promise<void>): Promise<void> {
  const st = await fs.lstat(root);
  if (!st || st.kind !== 'dir') {
    throw new KompoxError('notfound', `disk data directory ${root} does not exist or is not a directory`);
  }
  const go = async (abs: string, rel: string, s: TreeStat): Promise<void> => {
    await visit(abs, rel, s);
    if (s.kind !== 'dir') return;
    const names = (await fs.readdir(abs)).sort();
    for (const name of names) {
      const childAbs = `${abs}/${name}`;
      const cs = await fs.lstat(childAbs);
      if (!cs) continue; // removed while walking (crash-consistent export of a live disk)
      if (cs.kind === 'other') continue; // sockets, fifos and devices are not data
      await go(childAbs, `${rel}/${name}`, cs);
    }
  };
  await go(root.replace(/\/+$/, '') || '/', DATA_DIR, st);
}

async function hashFile(fs: TreeFs, path: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of fs.openRead(path) as AsyncIterable<Buffer>) {
    h.update(chunk);
    size += chunk.length;
  }
  return { sha256: h.digest('hex'), size };
}

/** Manifest-style listing of a directory tree with content hashes: what tests and verification compare. */
export async function digestTree(fs: TreeFs, root: string): Promise<{ treeDigest: string; entries: ManifestEntry[] }> {
  const entries: ManifestEntry[] = [];
  await walk(fs, root, async (abs, rel, st) => {
    if (st.kind === 'file') {
      const { sha256, size } = await hashFile(fs, abs);
      entries.push({ path: rel, type: 'file', mode: st.mode, size, sha256 });
    } else if (st.kind === 'symlink') {
      entries.push({ path: rel, type: 'symlink', mode: st.mode, size: 0, linkpath: await fs.readlink(abs) });
    } else {
      entries.push({ path: rel, type: 'dir', mode: st.mode, size: 0 });
    }
  });
  return { treeDigest: treeDigestOf(entries), entries };
}

// ---------------------------------------------------------------- packing

function headerBlocks(data: {
  path: string;
  type: 'File' | 'Directory' | 'SymbolicLink';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: Date;
  linkpath?: string;
}): Buffer[] {
  const header = new Header({ ...data, linkpath: data.linkpath ?? '' });
  header.encode();
  const out: Buffer[] = [];
  // Always a pax record: it carries sub-second mtimes and, when needed, long
  // or non-ASCII paths and link targets, big sizes and ids.
  out.push(new Pax({ path: data.path, linkpath: data.linkpath, mtime: data.mtime, size: data.size, uid: data.uid, gid: data.gid }).encode());
  out.push(header.block!);
  return out;
}

/** Waits until a read stream has opened its file; false when the file no longer exists. */
async function opened(rs: Readable): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    const onOpen = () => {
      rs.off('error', onError);
      resolve(true);
    };
    const onError = (e: Error) => {
      rs.off('open', onOpen);
      const code = (e as { code?: unknown }).code;
      if (code === 'ENOENT' || code === 2) resolve(false); // 2 = SFTP "no such file"
      else reject(e);
    };
    rs.once('open', onOpen);
    rs.once('error', onError);
  });
}

function padding(size: number): Buffer | undefined {
  const rem = size % BLOCK;
  return rem === 0 ? undefined : Buffer.alloc(BLOCK - rem);
}

/** Counts and hashes bytes flowing through (the compressed archive). */
class HashTap extends Transform {
  readonly hash: Hash = createHash('sha256');
  bytes = 0;
  constructor(private readonly onBytes?: (n: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(chunk.length);
    cb(null, chunk);
  }
}

export interface PackOptions {
  source?: ArchiveSource;
  progress?: ProgressSink;
  progressLabel?: string;
  /** Fixed creation time (tests, reproducible archives). */
  createdAt?: string;
}

/**
 * Packs the directory `root` (read through `fs`) into `out` as a portable
 * archive. Does not end `out`: the caller owns it (stdout must stay open).
 */
export async function packTree(fs: TreeFs, root: string, out: Writable | NodeJS.WritableStream, opts: PackOptions = {}): Promise<ArchiveResult> {
  // First pass: the list of entries and the total size (for progress).
  const listed: Array<{ abs: string; rel: string; st: TreeStat; linkpath?: string }> = [];
  await walk(fs, root, async (abs, rel, st) => {
    listed.push({ abs, rel, st, linkpath: st.kind === 'symlink' ? await fs.readlink(abs) : undefined });
  });
  const total = listed.reduce((n, e) => n + (e.st.kind === 'file' ? e.st.size : 0), 0);
  opts.progress?.start(opts.progressLabel ?? 'export', total);

  const entries: ManifestEntry[] = [];
  async function* blocks(): AsyncGenerator<Buffer> {
    for (const { abs, rel, st, linkpath } of listed) {
      const mtime = new Date(st.mtimeMs);
      if (st.kind === 'dir') {
        yield* headerBlocks({ path: `${rel}/`, type: 'Directory', mode: st.mode, uid: st.uid, gid: st.gid, size: 0, mtime });
        entries.push({ path: rel, type: 'dir', mode: st.mode, size: 0 });
      } else if (st.kind === 'symlink') {
        yield* headerBlocks({ path: rel, type: 'SymbolicLink', mode: st.mode, uid: st.uid, gid: st.gid, size: 0, mtime, linkpath });
        entries.push({ path: rel, type: 'symlink', mode: st.mode, size: 0, linkpath });
      } else {
        // Read into memory only one chunk at a time; the header needs the
        // size up front, so a file that changes size while being read
        // (crash-consistent export of a live disk) is cut or zero-padded to
        // the size recorded in its header, and its hash covers what was sent.
        const h = createHash('sha256');
        let sent = 0;
        // Open before writing the header: a file deleted since the listing
        // (live disk) is left out instead of being sent as zeros.
        const rs = fs.openRead(abs);
        if (!(await opened(rs))) continue;
        yield* headerBlocks({ path: rel, type: 'File', mode: st.mode, uid: st.uid, gid: st.gid, size: st.size, mtime });
        for await (const chunk of rs as AsyncIterable<Buffer>) {
          const part = sent + chunk.length > st.size ? chunk.subarray(0, st.size - sent) : chunk;
          if (part.length === 0) break;
          h.update(part);
          sent += part.length;
          opts.progress?.advance(part.length);
          yield part;
        }
        if (sent < st.size) {
          const zeros = Buffer.alloc(st.size - sent);
          h.update(zeros);
          yield zeros;
        }
        const pad = padding(st.size);
        if (pad) yield pad;
        entries.push({ path: rel, type: 'file', mode: st.mode, size: st.size, sha256: h.digest('hex') });
      }
    }
    const files = entries.filter((e) => e.type === 'file');
    const manifest: ArchiveManifest = {
      format: ARCHIVE_FORMAT,
      version: ARCHIVE_VERSION,
      createdAt: opts.createdAt ?? nowRfc3339(),
      source: opts.source ?? {},
      fileCount: files.length,
      dirCount: entries.filter((e) => e.type === 'dir').length,
      symlinkCount: entries.filter((e) => e.type === 'symlink').length,
      totalBytes: files.reduce((n, e) => n + e.size, 0),
      treeDigest: treeDigestOf(entries),
      entries,
    };
    resultManifest = manifest;
    const body = Buffer.from(JSON.stringify(manifest, null, 2) + '\n', 'utf8');
    yield* headerBlocks({ path: MANIFEST_NAME, type: 'File', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: new Date() });
    yield body;
    const pad = padding(body.length);
    if (pad) yield pad;
    yield Buffer.alloc(BLOCK * 2); // end-of-archive marker
  }
  let resultManifest: ArchiveManifest | undefined;
  const tap = new HashTap();
  await pipeline(blocks, createGzip(), tap, out as Writable, { end: false });
  opts.progress?.done();
  return { manifest: resultManifest!, sha256: tap.hash.digest('hex'), bytes: tap.bytes };
}

// ---------------------------------------------------------------- unpacking

/** Reads exact byte counts from a chunked stream. */
class ByteReader {
  private bufs: Buffer[] = [];
  private len = 0;
  private done = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<void> {
    while (this.len < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else {
        const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
        this.bufs.push(b);
        this.len += b.length;
      }
    }
  }

  /** Exactly n bytes, or fewer only at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    await this.fill(n);
    const all = this.bufs.length === 1 ? this.bufs[0]! : Buffer.concat(this.bufs);
    const take = all.subarray(0, Math.min(n, all.length));
    const rest = all.subarray(take.length);
    this.bufs = rest.length ? [rest] : [];
    this.len = rest.length;
    return take;
  }

  /** Between 1 and n bytes; empty only at the end of the stream. */
  async readSome(n: number): Promise<Buffer> {
    if (this.len === 0) await this.fill(1);
    if (this.len === 0) return Buffer.alloc(0);
    const first = this.bufs[0]!;
    if (first.length <= n) {
      this.bufs.shift();
      this.len -= first.length;
      return first;
    }
    this.bufs[0] = first.subarray(n);
    this.len -= n;
    return first.subarray(0, n);
  }
}

function integrity(message: string, hint = 'The archive is damaged or incomplete; export it again from the source, or check the copy.'): KompoxError {
  return new KompoxError('integrity', message, { hint });
}

/** Validates an archive path: `data` or `data/...`, no absolute paths, no `..`, no empty or `.` segments. */
export function checkEntryPath(raw: string): string {
  const path = raw.replace(/\/+$/, '');
  if (path.includes('\0')) throw integrity(`archive entry ${JSON.stringify(raw)} contains a NUL byte`);
  if (path.startsWith('/')) throw integrity(`archive entry ${JSON.stringify(raw)} is an absolute path; refusing to extract it`);
  const segs = path.split('/');
  if (segs.some((s) => s === '..')) throw integrity(`archive entry ${JSON.stringify(raw)} leaves the disk (contains ".."); refusing to extract it`);
  if (segs.some((s) => s === '' || s === '.')) throw integrity(`archive entry ${JSON.stringify(raw)} has an empty or "." path segment`);
  if (path !== MANIFEST_NAME && segs[0] !== DATA_DIR) {
    throw integrity(`archive entry ${JSON.stringify(raw)} is outside ${DATA_DIR}/; this is not a Kompox archive`);
  }
  return path;
}

/** Writes with backpressure; rejects when the stream errors or closes instead of draining. */
export async function writeAll(ws: Writable | NodeJS.WritableStream, chunk: Buffer): Promise<void> {
  if (!ws.write(chunk)) {
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        ws.off('drain', onDrain);
        ws.off('error', onError);
        ws.off('close', onClose);
      };
      const onDrain = () => {
        done();
        resolve();
      };
      const onError = (e: Error) => {
        done();
        reject(e);
      };
      const onClose = () => {
        done();
        reject(new Error('the output was closed before the archive was complete'));
      };
      ws.once('drain', onDrain);
      ws.once('error', onError);
      ws.once('close', onClose);
    });
  }
}

async function closeWriter(ws: Writable): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    ws.once('close', () => resolve());
    ws.end();
  });
}

export interface UnpackOptions {
  /** Expected SHA-256 (hex) of the compressed archive; a mismatch fails the import. */
  expectedSha256?: string;
  progress?: ProgressSink;
  progressLabel?: string;
  /** Total compressed bytes when known (progress). */
  totalBytes?: number;
}

interface Extracted {
  path: string;
  abs: string;
  type: EntryKind;
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  size: number;
  sha256?: string;
  linkpath?: string;
}

/**
 * Extracts a portable archive from `input` into `destDir` (which must not
 * exist; its parent must), verifying every file against the manifest and the
 * whole stream against `expectedSha256`. On failure `destDir` may hold a
 * partial tree: the caller deletes it. `destDir` becomes the disk's data dir.
 */
export async function unpackArchive(fs: TreeFs, input: Readable | NodeJS.ReadableStream, destDir: string, opts: UnpackOptions = {}): Promise<ArchiveResult> {
  opts.progress?.start(opts.progressLabel ?? 'import', opts.totalBytes);
  const tap = new HashTap((n) => opts.progress?.advance(n));
  let manifest: ArchiveManifest | undefined;
  const extracted = new Map<string, Extracted>();

  const consume = async (source: AsyncIterable<Buffer>): Promise<void> => {
    const r = new ByteReader(source[Symbol.asyncIterator]());
    let pax: Pax | undefined;
    let gpax: Pax | undefined;
    let paxMtimeMs: number | undefined;
    let sawEnd = false;
    for (;;) {
      const block = await r.read(BLOCK);
      if (block.length === 0) break;
      if (block.length < BLOCK) throw integrity('the archive is truncated (incomplete tar header)');
      if (block.every((b) => b === 0)) {
        sawEnd = true;
        continue; // end-of-archive blocks (and any record padding)
      }
      if (sawEnd) throw integrity('the archive has data after its end-of-archive marker');
      if (manifest) throw integrity(`the archive has entries after ${MANIFEST_NAME}; this is not a Kompox archive`);
      const h = new Header(block, 0, pax, gpax);
      if (!h.cksumValid) throw integrity('the archive has a tar header with a bad checksum');
      const size = h.size ?? 0;
      const type = h.type;
      if (type === 'ExtendedHeader' || type === 'GlobalExtendedHeader') {
        if (size > 1024 * 1024) throw integrity('the archive has an oversized pax header');
        const body = await r.read(size + (padding(size)?.length ?? 0));
        if (body.length < size) throw integrity('the archive is truncated (incomplete pax header)');
        const text = body.subarray(0, size).toString('utf8');
        if (type === 'ExtendedHeader') {
          pax = Pax.parse(text, pax, false);
          paxMtimeMs = exactMtimeMs(text) ?? paxMtimeMs;
        }
        else gpax = Pax.parse(text, gpax, true);
        continue;
      }
      // Header.decode prepends the ustar prefix even to a pax path; the pax
      // record is authoritative for path, link target and mtime.
      const ex = pax;
      const exMtimeMs = paxMtimeMs;
      pax = undefined;
      paxMtimeMs = undefined;
      const path = checkEntryPath(ex?.path ?? h.path ?? '');
      if (path === MANIFEST_NAME) {
        if (type !== 'File' && type !== 'OldFile') throw integrity(`${MANIFEST_NAME} in the archive is not a regular file`);
        if (size > 256 * 1024 * 1024) throw integrity(`${MANIFEST_NAME} is implausibly large`);
        const body = await r.read(size + (padding(size)?.length ?? 0));
        if (body.length < size) throw integrity('the archive is truncated (incomplete manifest)');
        try {
          manifest = JSON.parse(body.subarray(0, size).toString('utf8')) as ArchiveManifest;
        } catch {
          throw integrity(`${MANIFEST_NAME} in the archive is not valid JSON`);
        }
        continue;
      }
      if (extracted.has(path)) throw integrity(`the archive contains ${path} twice`);
      const rel = path === DATA_DIR ? '' : path.slice(DATA_DIR.length + 1);
      const abs = rel ? `${destDir}/${rel}` : destDir;
      if (rel) {
        // The parent must be a directory this archive created: never write
        // through a symlink or into something that is not ours.
        const parent = path.slice(0, path.lastIndexOf('/'));
        const p = extracted.get(parent);
        if (!p || p.type !== 'dir') throw integrity(`archive entry ${path} comes before its directory ${parent} (or its parent is not a directory)`);
      } else if (type !== 'Directory') {
        throw integrity(`archive entry ${DATA_DIR} is not a directory`);
      }
      const base = { path, abs, mode: (h.mode ?? 0o644) & 0o7777, uid: h.uid ?? 0, gid: h.gid ?? 0, mtimeMs: exMtimeMs ?? (ex?.mtime ?? h.mtime)?.getTime() ?? Date.now() };
      if (type === 'Directory') {
        if (size !== 0) await skip(r, size);
        await fs.mkdir(abs, 0o700);
        extracted.set(path, { ...base, type: 'dir', size: 0 });
      } else if (type === 'SymbolicLink') {
        if (size !== 0) await skip(r, size);
        const linkpath = ex?.linkpath ?? h.linkpath ?? '';
        if (!linkpath) throw integrity(`symlink ${path} in the archive has no target`);
        await fs.symlink(linkpath, abs);
        extracted.set(path, { ...base, type: 'symlink', size: 0, linkpath });
      } else if (type === 'File' || type === 'OldFile' || type === 'ContiguousFile') {
        const hash = createHash('sha256');
        const ws = fs.openWrite(abs, 0o600);
        let remain = size;
        try {
          while (remain > 0) {
            const chunk = await r.readSome(Math.min(remain, CHUNK));
            if (chunk.length === 0) throw integrity(`the archive is truncated (in the middle of ${path})`);
            hash.update(chunk);
            remain -= chunk.length;
            await writeAll(ws, chunk);
          }
        } finally {
          await closeWriter(ws);
        }
        const pad = padding(size);
        if (pad) {
          const p = await r.read(pad.length);
          if (p.length < pad.length) throw integrity(`the archive is truncated (after ${path})`);
        }
        extracted.set(path, { ...base, type: 'file', size, sha256: hash.digest('hex') });
      } else {
        throw integrity(`archive entry ${path} has type ${type}, which Kompox archives never contain (only files, directories and symlinks)`);
      }
    }
    if (!manifest) throw integrity(`the archive ends without ${MANIFEST_NAME}: it is truncated or not a Kompox archive`);
    if (!sawEnd) throw integrity('the archive is truncated (no end-of-archive marker)');
  };

  // pipeline() rejects on the first error (e.g. gzip) while consume may still
  // be writing; wait for it to stop so the caller's cleanup really is last.
  let consuming: Promise<void> | undefined;
  try {
    await pipeline(input as Readable, tap, createGunzip(), (src: AsyncIterable<Buffer>) => (consuming = consume(src)));
  } catch (err) {
    await consuming?.catch(() => undefined);
    if (err instanceof KompoxError) throw err;
    const code = (err as { code?: string }).code ?? '';
    if (code.startsWith('Z_') || /unexpected end of file|incorrect header check|invalid|zlib/i.test(String((err as Error).message))) {
      throw integrity(`the archive is not a valid gzip stream (${(err as Error).message}): it is truncated or corrupt`);
    }
    throw err;
  }
  opts.progress?.done();
  const sha256 = tap.hash.digest('hex');
  if (opts.expectedSha256 && opts.expectedSha256.toLowerCase() !== sha256) {
    throw integrity(
      `the archive's SHA-256 is ${sha256}, expected ${opts.expectedSha256.toLowerCase()}`,
      'The archive was changed or damaged after export, or the checksum belongs to another archive.',
    );
  }
  verifyManifest(manifest!, extracted);

  // Restore metadata deepest-first, so setting a directory's mode or mtime
  // comes after everything inside it has been written.
  const all = [...extracted.values()].sort((a, b) => (a.path < b.path ? 1 : a.path > b.path ? -1 : 0));
  for (const e of all) {
    if (fs.canChown) await fs.lchown(e.abs, e.uid, e.gid);
    if (e.type !== 'symlink') await fs.chmod(e.abs, e.mode);
    await fs.setTimes(e.abs, e.mtimeMs, e.type);
  }
  return { manifest: manifest!, sha256, bytes: tap.bytes };
}

/** The pax mtime in whole milliseconds, read from the text (Date math on the float loses the last digit). */
function exactMtimeMs(paxText: string): number | undefined {
  const m = /(?:^|\n)\d+ mtime=(-?\d+)(?:\.(\d+))?\n/.exec(paxText);
  if (!m) return undefined;
  const frac = (m[2] ?? '').padEnd(3, '0').slice(0, 3);
  return Number(m[1]) * 1000 + (m[1]!.startsWith('-') ? -1 : 1) * Number(frac);
}

async function skip(r: ByteReader, size: number): Promise<void> {
  const n = size + (padding(size)?.length ?? 0);
  const b = await r.read(n);
  if (b.length < n) throw integrity('the archive is truncated');
}

function verifyManifest(m: ArchiveManifest, extracted: Map<string, Extracted>): void {
  if (m.format !== ARCHIVE_FORMAT || typeof m.version !== 'number' || !Array.isArray(m.entries)) {
    throw integrity(`${MANIFEST_NAME} is not a Kompox archive manifest`);
  }
  if (m.version > ARCHIVE_VERSION) {
    throw new KompoxError('integrity', `the archive has format version ${m.version}; this Kompox reads version ${ARCHIVE_VERSION}`, {
      hint: 'Upgrade kompoxops to import it.',
    });
  }
  const listed = new Map(m.entries.map((e) => [e.path, e]));
  for (const [path, got] of extracted) {
    const want = listed.get(path);
    if (!want) throw integrity(`archive entry ${path} is not listed in the manifest`);
    if (want.type !== got.type) throw integrity(`archive entry ${path} is a ${got.type} but the manifest says ${want.type}`);
    if (got.type === 'file') {
      if (want.size !== got.size) throw integrity(`file ${path} has ${got.size} bytes but the manifest says ${want.size}`);
      if (want.sha256 !== got.sha256) throw integrity(`file ${path} fails its SHA-256 check (got ${got.sha256}, manifest ${want.sha256})`);
    }
    if (got.type === 'symlink' && want.linkpath !== got.linkpath) throw integrity(`symlink ${path} points to ${got.linkpath} but the manifest says ${want.linkpath}`);
  }
  for (const path of listed.keys()) {
    if (!extracted.has(path)) throw integrity(`the manifest lists ${path} but the archive does not contain it: the archive is incomplete`);
  }
  const digest = treeDigestOf([...extracted.values()].map((e) => ({ path: e.path, type: e.type, mode: e.mode, size: e.size, sha256: e.sha256, linkpath: e.linkpath })));
  if (digest !== m.treeDigest) throw integrity(`the extracted tree's digest ${digest} differs from the manifest's ${m.treeDigest}`);
}

/** Reads only the manifest of an archive (verifying the stream fully); no files are written. */
export async function readManifest(input: Readable | NodeJS.ReadableStream): Promise<ArchiveManifest> {
  let manifest: ArchiveManifest | undefined;
  await pipeline(input as Readable, createGunzip(), async (source: AsyncIterable<Buffer>) => {
    const r = new ByteReader(source[Symbol.asyncIterator]());
    let pax: Pax | undefined;
    for (;;) {
      const block = await r.read(BLOCK);
      if (block.length < BLOCK || block.every((b) => b === 0)) break;
      const h = new Header(block, 0, pax);
      const size = h.size ?? 0;
      const body = await r.read(size + (padding(size)?.length ?? 0));
      if (h.type === 'ExtendedHeader') {
        pax = Pax.parse(body.subarray(0, size).toString('utf8'), pax);
        continue;
      }
      const ex = pax;
      pax = undefined;
      if ((ex?.path ?? h.path) === MANIFEST_NAME) manifest = JSON.parse(body.subarray(0, size).toString('utf8')) as ArchiveManifest;
    }
  });
  if (!manifest) throw integrity(`the archive has no ${MANIFEST_NAME}`);
  return manifest;
}

/**
 * A writable that forwards to `out` (with backpressure) and hashes what
 * passes: the SHA-256 of an export as the receiver gets it. Ending it does
 * not end `out`.
 */
export class ChecksumWriter extends Writable {
  private readonly hash = createHash('sha256');
  bytes = 0;
  constructor(private readonly out: NodeJS.WritableStream) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    // A closed pipe (e.g. `| head`) errors instead of draining: fail, don't hang.
    writeAll(this.out, chunk).then(() => cb(), cb);
  }
  /** Hex SHA-256 of everything written so far (call once, at the end). */
  sha256(): string {
    return this.hash.digest('hex');
  }
}
