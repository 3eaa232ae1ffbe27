// Access to the K3s node's filesystem, where disks are directories and
// snapshots are archive files. Two transports implement it: the local
// filesystem (Kompox runs on the node, e.g. kompoxsvc as a privileged
// container) and SSH/SFTP (kompoxops on a workstation; see ssh-hostfs.ts).
import {
  closeSync,
  constants as fsc,
  createReadStream,
  createWriteStream,
  fchmodSync,
  fchownSync,
  fstatSync,
  futimesSync,
  lstatSync,
  openSync,
  promises as fsp,
  readSync,
  opendirSync,
  readdirSync,
  writevSync,
} from 'node:fs';
import { execFile } from 'node:child_process';
import { syncDir, syncFile } from '../../archive/durable.js';
import { hostname } from 'node:os';
import { posix } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { EntryKind, EntryMeta, TreeFile, TreeFs, TreeStat } from '../../archive/archive.js';
import { removeTree } from './remove-tree.js';
import { notUtf8, utf8Name } from '../../archive/utf8-names.js';

/** Files up to this size are read with synchronous calls (see openFile). */
const SMALL_FILE = 1024 * 1024;

export interface HostFs extends TreeFs {
  /** For messages: `local` or `ssh user@host:port`. */
  readonly describe: string;
  /** Renames; fails when `to` exists (never replaces a disk or snapshot). */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file or a whole tree (never following symlinks); no error when absent. */
  rm(path: string): Promise<void>;
  readFile(path: string): Promise<Buffer>;
  /**
   * Writes a small file atomically (temp file + rename); the temp file's data
   * is synced before the rename, so the name never reaches the disk ahead of
   * its content. The directory is the caller's to sync (syncDir) when the
   * rename must last a crash.
   */
  writeFileAtomic(path: string, data: string | Buffer, mode?: number): Promise<void>;
  /**
   * Durability, before anything is made visible (a rename can reach the disk
   * before the data it names: after a power loss the name would hold zeros).
   * syncFile: one file's data and metadata (fsync), before its rename into
   * place. syncDir: a directory's entries (fsync of the directory), after a
   * rename into it. syncTree: everything written under DIR at once (syncfs of
   * its filesystem: one flush, where an fsync per file of a tree of thousands
   * costs a journal commit each), before the tree is renamed into place.
   * A failure rejects like a failed write (EIO, ENOSPC in its code or text).
   */
  syncFile(path: string): Promise<void>;
  syncDir(path: string): Promise<void>;
  syncTree(dir: string): Promise<void>;
  mkdirp(path: string, mode?: number): Promise<void>;
  /** Host name of the machine holding the files (K3s names its node after it by default). */
  hostname(): Promise<string>;
  close(): Promise<void>;
  /**
   * A plain tar stream of DIR's tree made on the host by one `tar -c` (over
   * SSH: one exec channel, compressed on the node when it has zstd), or
   * undefined when the host cannot (no tar there; then the caller walks the
   * tree file by file). Only where it saves round trips (not locally).
   * A cancel (`signal`) kills the command at once.
   */
  tarStream?(dir: string, signal?: AbortSignal): Promise<HostTarStream | undefined>;
  /**
   * The archive's data packed on the host: zstd frames of a pax tar of DIR's
   * tree under data/, without hard links or the end-of-archive marker (over
   * SSH: one `tar | head | zstd` on the node, on its cores), for
   * adoptPackedStream, which keeps those bytes and adds the manifest. Or
   * undefined when the host cannot, or the tree holds what only tarStream's
   * path leaves out (devices, FIFOs, sockets). Only where it saves the
   * workstation's CPU (not locally). `level`: zstd's (default the archives').
   * A cancel (`signal`) kills the command at once.
   */
  packedStream?(dir: string, level?: number, signal?: AbortSignal): Promise<HostTarStream | undefined>;
  /**
   * A quick size walk of DIR run on the host (its regular files' bytes and
   * count), started alongside tarStream so the progress gets its total
   * without delaying the transfer. Never rejects: undefined when the walk
   * failed or was stopped by `signal` (it is settled, its command ended,
   * when the promise settles). Only where tarStream is.
   */
  treeBytes?(dir: string, signal?: AbortSignal): Promise<{ bytes: number; files: number } | undefined>;
  /**
   * A whole file's content streamed by one command on the host (over SSH:
   * `cat` on one exec channel, not SFTP's request per 64 KiB); fails like
   * openRead when the file cannot be read. Only where it saves round trips.
   * Destroying the stream before its end (a cancel) kills the command; its
   * 'close' comes once the command is gone.
   */
  streamFile?(path: string): Promise<Readable>;
  /**
   * One `tar -x` into DIR (an existing, empty directory) on the host, fed a
   * plain tar stream (over SSH: one exec channel, compressed on the link
   * when the node has zstd), or undefined when the host cannot (no tar
   * there; then the caller extracts file by file). The caller verifies what
   * it writes (archiveToTar); only where it saves round trips (not locally).
   * A cancel (`signal`) kills the command at once.
   */
  untarStream?(dir: string, signal?: AbortSignal): Promise<HostUntarStream | undefined>;
  /**
   * Runs one command on the host and collects what it printed, for work
   * that stays on the host (node-local copies, see node-local.ts). Only
   * where the host is remote (over SSH); cancelling kills the command.
   */
  run?(argv: readonly string[], opts?: HostRunOptions): Promise<HostRunResult>;
}

export interface HostRunOptions {
  signal?: AbortSignal;
  /**
   * Progress the command reports on stderr, as lines holding `mark` and a
   * number (see progressSplitter in node-commands.ts): each number goes to
   * `report` as it arrives, and those lines stay out of the stderr tail
   * (HostRunResult.stderr), which error messages quote.
   */
  progress?: { mark: string; report(n: number): void };
  /**
   * Takes stdout as it arrives instead of collecting it (HostRunResult.stdout
   * is then empty): a listing of every file of a disk is read as it streams,
   * never held whole. Called synchronously with each chunk (the callee's to
   * keep, as collected output is); it must not throw (keep the failure,
   * report it after).
   */
  stdout?: (chunk: Buffer) => void;
  /**
   * The command's stdin, streamed to it as it comes and ended when it ends
   * (without it stdin is empty). A failure reading it stops the command and
   * fails the run; a command that ends before reading all of it leaves the
   * rest unread (the caller can tell from its own count).
   */
  stdin?: Readable;
}

export interface HostRunResult {
  stdout: Buffer;
  /** The last few KiB of stderr. */
  stderr: string;
  /** Exit status; null when the command ended without one (killed). */
  code: number | null;
  /** The signal that ended it (`SIGKILL`, `SIGPIPE`) when it had no exit status and the host said. */
  signal?: string;
}

/**
 * How a command ended, for a message: `exit code 2`, `killed by signal
 * SIGKILL`, or `no exit status` (its channel closed with neither: a host that
 * said nothing).
 */
export function exitSaid(r: { code?: number | null | undefined; signal?: string | undefined }): string {
  if (r.code !== null && r.code !== undefined) return `exit code ${r.code}`;
  return r.signal ? `killed by signal ${r.signal}` : 'no exit status';
}

export interface HostUntarStream {
  /** Takes the plain tar stream; ending it ends the command's input. */
  stream: Writable;
  /** Whether it crosses the link compressed (zstd on the node). */
  compressed: boolean;
  /**
   * Whether `stream` frees each chunk handed over to it (markReleasable) once
   * it has it (a compressor copies it into a frame), so a writer may hand its
   * buffers over (archiveToTar's handOver); absent: it does not.
   */
  freesHandedOver?: boolean;
  /**
   * Settles once the command has ended: rejects unless it succeeded (the
   * stderr tail in the message). After a cancel it rejects (interrupted) once
   * the command is gone, or a bounded wait for a host that no longer answers
   * gave up.
   */
  finished: Promise<void>;
  /**
   * Stops the command (a failure elsewhere): its input ends, and
   * one still running after a grace period is killed; `finished` settles
   * once it has ended on the host.
   */
  stop(): void;
}

export interface HostTarStream {
  /** The plain (decompressed) tar stream. */
  stream: Readable;
  /** Whether it crossed the link compressed (zstd on the node). */
  compressed: boolean;
  /**
   * Settles once the command has ended: rejects when tar failed; resolves to
   * a note when tar saw files change while it read them (a live copy).
   * After a cancel it rejects (interrupted) once the command is gone, or a
   * bounded wait for a host that no longer answers gave up.
   */
  finished: Promise<string | undefined>;
  /** The sockets tar left out of the stream itself (from its stderr, see ignoredSockets): how many, the first few. */
  ignored?(): { count: number; first: string[] };
  /**
   * Stops the command (a failure elsewhere): its output is closed, and one
   * still running after a grace period is killed; `finished` settles once it
   * has ended on the host.
   */
  stop(): void;
}

export function kindOfMode(mode: number): TreeStat['kind'] {
  const t = mode & 0o170000;
  return t === 0o100000 ? 'file' : t === 0o040000 ? 'dir' : t === 0o120000 ? 'symlink' : 'other';
}

function randomSuffix(): string {
  return Math.random().toString(36).slice(2, 10);
}

export class LocalHostFs implements HostFs {
  readonly describe = 'local';
  readonly canChown = typeof process.getuid === 'function' && process.getuid() === 0;

  // Metadata calls are synchronous too (see openFile): a walk of 20,000
  // entries costs milliseconds this way, not a thread-pool round trip each.
  async lstat(path: string): Promise<TreeStat | undefined> {
    try {
      const s = lstatSync(path);
      return { kind: kindOfMode(s.mode), mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, size: s.size, mtimeMs: Math.round(s.mtimeMs) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }
  *readdirStream(path: string): Generator<string> {
    // synchronous reads of 256 entries each: as fast as readdirSync, in bounded memory; names as their
    // bytes, so that one that is not UTF-8 is refused by name, not decoded into a name that does not exist
    // ('buffer' works at run time: Node's typings list string encodings only)
    const dir = opendirSync(path, { bufferSize: 256, encoding: 'buffer' as BufferEncoding });
    try {
      for (let e = dir.readSync(); e; e = dir.readSync()) {
        const raw = e.name as unknown as Buffer;
        const name = utf8Name(raw);
        if (name === undefined) throw notUtf8(path, raw);
        yield name;
      }
    } finally {
      dir.closeSync();
    }
  }
  async readdir(path: string): Promise<string[]> {
    return readdirSync(path);
  }
  async readlink(path: string): Promise<string> {
    const raw = await fsp.readlink(path, { encoding: 'buffer' });
    const target = utf8Name(raw);
    if (target === undefined) throw notUtf8(posix.dirname(path), raw, posix.basename(path));
    return target;
  }
  openRead(path: string): Readable {
    // 1 MiB reads: one thread-pool round trip per MiB, not per 64 KiB.
    return createReadStream(path, { highWaterMark: 1024 * 1024 });
  }
  openWrite(path: string, mode: number): Writable {
    // O_EXCL|O_NOFOLLOW: never overwrite or write through a symlink.
    // (Node accepts numeric flags here; the type definitions only list strings.)
    const flags = (fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW) as unknown as string;
    // A few MiB of write-behind, so extraction goes on while a write is in flight.
    return createWriteStream(path, { flags, mode, highWaterMark: 4 * 1024 * 1024 });
  }
  // Small files (the archive's fast paths) are read and written with
  // synchronous calls: a few microseconds each on a local disk, where the
  // asynchronous API costs a thread-pool round trip per open, read, write,
  // chmod, utimes and close, which dominated archives of many small files.
  //
  // O_NOFOLLOW guards the last component only: a parent directory swapped
  // for a symlink (a tenant's pod racing an export) is followed, so the
  // opened file must still be a regular file of the listed owner (as over
  // SSH, see SshHostFs.openFile; TreeStat has no inode to compare).
  // O_NONBLOCK: a FIFO put in a file's place is opened at once (and left
  // out), where a plain open waits for a writer, the event loop with it.
  async openFile(path: string, listed: TreeStat): Promise<TreeFile | undefined> {
    if (listed.size > SMALL_FILE) {
      try {
        const fh = await fsp.open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
        if (!stillListed(await fh.stat().catch(() => undefined), listed)) {
          await fh.close();
          return undefined;
        }
        return {
          read: async (buf, offset, length, position) => (await fh.read(buf, offset, length, position)).bytesRead,
          close: () => fh.close(),
        };
      } catch (e) {
        if (goneOrReplaced(e)) return undefined;
        throw e;
      }
    }
    let fd: number;
    try {
      fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
    } catch (e) {
      if (goneOrReplaced(e)) return undefined;
      throw e;
    }
    if (!stillListed(fstatSync(fd), listed)) {
      closeSync(fd);
      return undefined;
    }
    return {
      read: async (buf, offset, length, position) => readSync(fd, buf, offset, length, position),
      close: async () => closeSync(fd),
    };
  }
  async createFile(path: string, data: readonly Buffer[], meta: EntryMeta): Promise<void> {
    const fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    try {
      let rest = data.filter((b) => b.length > 0);
      while (rest.length) {
        let n = writevSync(fd, rest);
        // A short write: go on from where it stopped.
        while (rest.length && n >= rest[0]!.length) n -= rest.shift()!.length;
        if (n > 0) rest[0] = rest[0]!.subarray(n);
      }
      // Ownership first: chown clears setuid/setgid, which chmod then sets.
      if (this.canChown) fchownSync(fd, meta.uid, meta.gid);
      fchmodSync(fd, meta.mode);
      // a Date, never a number: Node takes a negative number of seconds (a time before 1970) for "now"
      const t = new Date(meta.mtimeMs);
      futimesSync(fd, t, t);
    } finally {
      closeSync(fd);
    }
  }
  async mkdir(path: string, mode: number): Promise<void> {
    await fsp.mkdir(path, { mode });
  }
  async mkdirp(path: string, mode = 0o755): Promise<void> {
    await fsp.mkdir(path, { recursive: true, mode });
  }
  symlink(target: string, path: string): Promise<void> {
    return fsp.symlink(target, path);
  }
  chmod(path: string, mode: number): Promise<void> {
    return fsp.chmod(path, mode);
  }
  async setTimes(path: string, mtimeMs: number, kind: EntryKind): Promise<void> {
    // Seconds as a double cannot hold every millisecond exactly (x.678 is
    // stored as x.677999…); lstat rounds back to whole milliseconds, so the
    // time is stable across repeated export/import round trips on any Node.
    // A Date, never a number: Node takes a negative number of seconds (a time
    // before 1970) for "now".
    const t = new Date(mtimeMs);
    if (kind === 'symlink') await fsp.lutimes(path, t, t);
    else await fsp.utimes(path, t, t);
  }
  lchown(path: string, uid: number, gid: number): Promise<void> {
    return fsp.lchown(path, uid, gid);
  }
  async rename(from: string, to: string): Promise<void> {
    // rename(2) replaces an existing file or empty directory; check first so
    // that nothing is ever replaced (a racing creator still fails on ENOTEMPTY).
    if (await this.lstat(to)) {
      const e = new Error(`${to} already exists`) as NodeJS.ErrnoException;
      e.code = 'EEXIST';
      throw e;
    }
    if ((await this.lstat(from))?.kind === 'file') {
      // link() + unlink(): a file that appeared meanwhile is never replaced.
      try {
        await fsp.link(from, to);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
        await fsp.rename(from, to); // no hard links here: checked above, small race accepted
        return;
      }
      await fsp.unlink(from);
      return;
    }
    await fsp.rename(from, to);
  }
  rm(path: string): Promise<void> {
    // Depth first in bounded memory; a restored tree's read-only directories
    // (modes come from the archive) are made writable on the way.
    return removeTree(path);
  }
  readFile(path: string): Promise<Buffer> {
    return fsp.readFile(path);
  }
  async writeFileAtomic(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
    const tmp = `${path}.tmp-${randomSuffix()}`;
    try {
      // a write that fails part-way (a full disk) leaves the temp file: it goes too
      const fh = await fsp.open(tmp, 'wx', mode);
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fsp.rename(tmp, path);
    } catch (e) {
      // (one that was there already is not ours to remove)
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') await fsp.rm(tmp, { force: true });
      throw e;
    }
  }
  syncFile(path: string): Promise<void> {
    return syncFile(path);
  }
  syncDir(path: string): Promise<void> {
    return syncDir(path);
  }
  async syncTree(dir: string): Promise<void> {
    // Node has no syncfs(2): coreutils' (or busybox's) `sync -f` makes that
    // one call, a process of a few milliseconds. Without one that takes -f:
    // `sync` of every filesystem; without any: an fsync per entry.
    const r = await runSync(['-f', '--', dir]);
    if (r === 'missing') return fsyncTree(dir);
    if (r === 'ok') return;
    if (!r.usage) throw syncFailed(dir, r.stderr);
    const all = await runSync([]);
    if (all === 'missing') return fsyncTree(dir);
    if (all !== 'ok') throw syncFailed(dir, all.stderr);
  }
  async hostname(): Promise<string> {
    return hostname();
  }
  async close(): Promise<void> {}
}

/** syncTree's last resort (no `sync` program): every file and directory under DIR, depth first. */
async function fsyncTree(dir: string): Promise<void> {
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) await fsyncTree(p);
    else if (e.isFile()) await syncFile(p);
  }
  await syncDir(dir);
}

/** The local `sync` program run with ARGS: ok, missing (not installed), or its failure (usage: it did not take the arguments). */
function runSync(args: string[]): Promise<'ok' | 'missing' | { stderr: string; usage: boolean }> {
  return new Promise((resolve) => {
    execFile('sync', args, { timeout: SYNC_TIMEOUT_MS }, (e, _out, stderr) => {
      if (!e) return resolve('ok');
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return resolve('missing');
      const text = String(stderr).trim() || e.message;
      resolve({ stderr: text, usage: /invalid option|unrecognized option|usage:/i.test(text) });
    });
  });
}

/** Writing back a large tree to a slow disk may take minutes; one that does not end is a hung device. */
const SYNC_TIMEOUT_MS = 30 * 60_000;

/** `sync -f`'s failure as an error with the errno its text names (hostFull reads ENOSPC/EDQUOT from it). */
export function syncFailed(what: string, stderr: string): NodeJS.ErrnoException {
  const e = new Error(`sync of ${what} failed: ${stderr}`) as NodeJS.ErrnoException;
  const code = /No space left/i.test(stderr) ? 'ENOSPC' : /quota exceeded/i.test(stderr) ? 'EDQUOT' : /Input\/output error/i.test(stderr) ? 'EIO' : undefined;
  if (code) e.code = code;
  return e;
}

/** Whether an opened file is a regular file of the listed owner (not one a swapped parent led to). */
function stillListed(st: { mode: number; uid: number; gid: number } | undefined, listed: TreeStat): boolean {
  return st !== undefined && kindOfMode(st.mode) === 'file' && st.uid === listed.uid && st.gid === listed.gid;
}

/**
 * The file was deleted, or replaced by a symlink (O_NOFOLLOW: ELOOP), since
 * the listing: a live disk changed; it is left out, never followed.
 */
function goneOrReplaced(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ELOOP';
}
