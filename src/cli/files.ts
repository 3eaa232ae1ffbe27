// The CLI's files: archives written atomically with a `.sha256` beside them,
// archives opened for import (with that checksum), kubeconfigs written or
// merged. Use cases take and give streams and documents; files are the front
// end's (a server has request and response bodies instead).
import { chmodSync, createWriteStream, existsSync, promises as fsp, readFileSync, readlinkSync, renameSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname } from 'node:path';
import { KompoxError, filesystemProblem } from '../domain/errors.js';
import { kubeconfigYaml, mergeKubeconfig } from '../usecases/cluster-kubeconfig.js';
import { checkSha256, type ExportResult } from '../usecases/disk.js';
import { syncDir, syncFile } from '../archive/durable.js';

/**
 * Writes an archive to `path` atomically (temp file, then rename) and a
 * `path.sha256` beside it in `sha256sum` format. Nothing is left on failure.
 */
/**
 * The archive file that -O names, resolved by `resolvePath`. A name that ends
 * in '/' (or is '.' or '..') names a directory: refused, rather than a file
 * written under the name without its slash, and reported under the name
 * with it.
 */
export function archiveOutputPath(out: string, resolvePath: (p: string) => string): string {
  if (out.trim() === '') throw new KompoxError('usage', '-O needs a file name (or - for stdout)', { code: 'export.output-missing', field: '-O' });
  if (out.endsWith('/') || out === '.' || out === '..') {
    throw new KompoxError('usage', `-O ${out} names a directory; give the archive's file name (for example ${out.replace(/\/*$/, '')}/NAME.tar.zst)`, {
      code: 'export.output-directory',
      field: '-O',
    });
  }
  return resolvePath(out);
}

/**
 * A warning when -O's name says the other format than the one written (an
 * archive is told apart by its bytes on import, but a user or another tool
 * going by the name would be misled): `.tar.gz`/`.tgz` for tar.zst, `.tar.zst`
 * for tar.gz. Undefined when the name fits or says nothing.
 */
export function formatNameMismatch(out: string, format: 'tar.zst' | 'tar.gz'): string | undefined {
  const named = /\.(?:tar\.gz|tgz)$/i.test(out) ? 'tar.gz' : /\.(?:tar\.zst|tzst)$/i.test(out) ? 'tar.zst' : undefined;
  if (!named || named === format) return undefined;
  return `${out} is named as a ${named} archive but is written as ${format}${format === 'tar.zst' ? ' (the default; give --format tar.gz for gzip)' : ''}; kompoxops imports it either way (it reads the format from the bytes)`;
}

/**
 * The name mismatch of an archive just written at `path` (see formatNameMismatch),
 * its format read from its first bytes: a snapshot exported as stored may be
 * either format, and the bytes are what an import goes by.
 */
export async function writtenFormatMismatch(path: string, out: string): Promise<string | undefined> {
  const head = Buffer.alloc(4);
  const fh = await fsp.open(path, 'r');
  try {
    await fh.read(head, 0, 4, 0);
  } finally {
    await fh.close();
  }
  const format = head.readUInt32LE(0) === 0xfd2fb528 ? 'tar.zst' : head[0] === 0x1f && head[1] === 0x8b ? 'tar.gz' : undefined;
  return format && formatNameMismatch(out, format);
}

export async function writeArchiveFile(
  path: string,
  write: (out: NodeJS.WritableStream) => Promise<ExportResult>,
  opts: { notice?: (message: string) => void } = {},
): Promise<ExportResult> {
  // Never replace an earlier export: it may be the only backup.
  const taken = async () =>
    (await fsp.lstat(path).then((st) => st.isDirectory(), () => false))
      ? new KompoxError('usage', `${path} is a directory; give the archive's file name (for example ${path}/NAME.tar.zst)`, { code: 'export.output-directory', field: '-O' })
      : new KompoxError('conflict', `${path} already exists; refusing to overwrite it`, { hint: 'Choose another file name, or move the old archive away first.' });
  if (await fsp.lstat(path).then(() => true, () => false)) throw await taken();
  /** FILE made by someone else while this export ran (another export to it, most likely). */
  const appeared = async () =>
    (await fsp.lstat(path).then((st) => st.isDirectory(), () => false))
      ? taken()
      : new KompoxError('conflict', `${path} was written by another export (or program) while this one ran; refusing to overwrite it, and this export's archive was removed`, {
          code: 'export.output-exists',
          details: { path },
          hint: 'Keep the one that is there, or export again to another file name.',
        });
  // the checksum goes to `path.sha256` at the end: a directory there is said before any data is read, not by rename's errno after it
  if (await fsp.lstat(`${path}.sha256`).then((st) => st.isDirectory(), () => false)) {
    throw new KompoxError('usage', `${path}.sha256 is a directory; the archive's checksum is written there`, {
      code: 'export.output-directory',
      field: '-O',
      details: { path: `${path}.sha256` },
      hint: 'Move that directory away, or give -O another file name.',
    });
  }
  await sweepDeadTemps(path, opts.notice);
  const tmp = tempName(path, '');
  const ws = createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  // A write that fails (a full disk) is what stopped the export, whatever the
  // writer upstream then reports (an output that went away, a raw ENOSPC).
  let writeError: NodeJS.ErrnoException | undefined;
  let isOpen = false;
  /** Whether `path.sha256` is this export's while its archive has not taken its name yet. */
  let sidecar = false;
  /** Set once the export failed and this cleans up: what the stream says then (a write destroyed in flight) is this cleanup's, not the cause. */
  let cleaning = false;
  ws.on('error', (e: NodeJS.ErrnoException) => {
    if (isOpen && !cleaning && e.code !== 'ERR_STREAM_DESTROYED') writeError ??= e;
  });
  try {
    await opened.catch((e: NodeJS.ErrnoException) => {
      // the file's own words, never the temp file's name
      throw new KompoxError('usage', `cannot write ${path}: ${e.code === 'ENOENT' ? 'its directory does not exist' : (filesystemProblem(e.code) ?? e.message)}`, {
        code: 'export.output-failed',
        details: { path, ...(e.code ? { errno: e.code } : {}) },
        cause: e,
      });
    });
    isOpen = true;
    const r = await write(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('error', reject);
      ws.once('close', () => resolve());
      ws.end();
    });
    // the archive's data on the disk before its name (a failure is the write's: nothing kept)
    await syncFile(tmp).catch((e: NodeJS.ErrnoException) => {
      throw e.code ? outputFailed(path, e) : e;
    });
    // The checksum goes in place first, whole (a temp file renamed over a stale
    // one): a process killed at any point leaves the archive absent, or at its
    // name with its right checksum beside it; never beside an empty or cut
    // `.sha256` (written in place, a kill between its open and its write left
    // one, and every import of the complete archive then failed) or a stale one.
    // Two exports to the same FILE at once (a cron backup and one by hand): the checksum and the
    // archive take their names under a lock, so one never puts its checksum over the other's
    // or removes it (the loser finds FILE there and refuses, leaving the winner's pair alone).
    await withPublishLock(path, async () => {
      if (await fsp.lstat(path).then(() => true, () => false)) throw await appeared();
      // (a full disk there fails the export like one under the archive: nothing kept)
      await writeSidecar(path, r.sha256).catch((e: NodeJS.ErrnoException) => {
        throw e.code ? outputFailed(path, e) : e;
      });
      sidecar = true;
      // link() fails when `path` appeared meanwhile (made by another program): no-clobber, atomically.
      try {
        await fsp.link(tmp, path);
        sidecar = false; // the archive's now
        await fsp.rm(tmp, { force: true });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw await appeared();
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
        // No hard links on this filesystem: check, then rename.
        if (await fsp.lstat(path).then(() => true, () => false)) throw await appeared();
        await fsp.rename(tmp, path);
        sidecar = false;
      }
    });
    // both names on the disk before the export is reported done; if not, neither is kept
    await syncDir(dirname(path)).catch(async (e: NodeJS.ErrnoException) => {
      await fsp.rm(`${path}.sha256`, { force: true });
      await fsp.rm(path, { force: true });
      throw e.code ? outputFailed(path, e) : e;
    });
    return r;
  } catch (e) {
    cleaning = true;
    const failedWrite = writeError;
    ws.destroy();
    // (ENOTDIR: a path under a file, where nothing could be made)
    await fsp.rm(tmp, { force: true }).catch((r: NodeJS.ErrnoException) => {
      if (r.code !== 'ENOTDIR') throw r;
    });
    // the checksum of an archive that did not take its name (another export's did) is not left beside that one
    if (sidecar) await fsp.rm(`${path}.sha256`, { force: true });
    if (failedWrite) throw outputFailed(path, failedWrite);
    throw e;
  }
}

/**
 * Whose pids a temp file's name holds: this machine's name (encoded: any host
 * name makes a file name, two never the same) and, on Linux, its pid
 * namespace (`@{inode}`: a container may share the host name, and a
 * directory, with the host). A directory may be shared between machines and
 * containers, where a pid means something only in its own namespace.
 */
const HOST = (() => {
  const host = encodeURIComponent(hostname());
  let ns: string | undefined;
  try {
    ns = /^pid:\[(\d+)\]$/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
  } catch {
    // not Linux: the host name alone
  }
  return ns ? `${host}@${ns}` : host;
})();

/** The temp file of `path` (`ext` '' for the archive, '.sha256' for its checksum): `.{file}{ext}.tmp-{host}-{pid}-{time}`. */
function tempName(path: string, ext: string): string {
  return `${dirname(path)}/.${basename(path)}${ext}.tmp-${HOST}-${process.pid}-${Date.now().toString(36)}`;
}

/**
 * How long the temp file of an export by another machine, another pid
 * namespace (a container: each run of `docker run` has its own) or an older
 * version must have been left unchanged before it is taken for dead. A live
 * export writes its temp as the data comes; one that wrote nothing for a day
 * is not coming back, and its temp (perhaps many GB) would otherwise stay for
 * good: a container's pids are never seen again.
 */
export const FOREIGN_TEMP_AGE_MS = 24 * 3600_000;

/**
 * Removes the temp files of earlier exports to `path` that a kill left (a
 * SIGKILL or a power cut runs no cleanup; an archive's temp may be many GB):
 * this machine's and pid namespace's (HOST in the name) of a process no
 * longer alive, and any other (another machine's or namespace's, an older
 * version's without a host in the name) left unchanged for
 * FOREIGN_TEMP_AGE_MS. Temps of live processes of this namespace, and
 * recent ones of others, are kept: nothing proves them dead.
 * Failures are ignored.
 */
async function sweepDeadTemps(path: string, notice?: (message: string) => void): Promise<void> {
  const dir = dirname(path);
  const names = await fsp.readdir(dir).catch(() => [] as string[]);
  const remove = async (n: string, why: string) => {
    const p = `${dir}/${n}`;
    await fsp.rm(p).then(
      () => notice?.(`removed ${p} left by an interrupted export (${why})`),
      () => undefined,
    );
  };
  for (const ext of ['', '.sha256']) {
    const any = `.${basename(path)}${ext}.tmp-`;
    const prefix = `${any}${HOST}-`;
    for (const n of names) {
      if (!n.startsWith(any)) continue;
      // the time has no '-': a host whose name continues with '-{digits}' never matches here
      const m = n.startsWith(prefix) ? /^(\d+)-[0-9a-z]+$/.exec(n.slice(prefix.length)) : null;
      const st = await fsp.lstat(`${dir}/${n}`).catch(() => undefined);
      if (!st?.isFile()) continue;
      if (m) {
        const pid = Number(m[1]);
        if (pid > 0 && !alive(pid)) await remove(n, `pid ${pid}`);
        continue;
      }
      const idle = Date.now() - st.mtimeMs;
      if (idle > FOREIGN_TEMP_AGE_MS) await remove(n, `by another machine, container or version; unchanged for ${Math.floor(idle / 3600_000)} h`);
    }
  }
}

/** Whether process `pid` lives on this machine (EPERM: it does, another user's). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Writes `path.sha256` (sha256sum format) through a dot-named temp file
 * renamed into place, so it is whole or absent; a stale one (of an archive
 * no longer there: `path` was checked to be free) is replaced.
 */
async function writeSidecar(path: string, sha256: string): Promise<void> {
  const tmp = tempName(path, '.sha256');
  try {
    const fh = await fsp.open(tmp, 'wx');
    try {
      await fh.writeFile(`${sha256}  ${basename(path)}\n`);
      // synced before its rename, as the archive is (the directory is synced once both are in place)
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, `${path}.sha256`);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}

/** How long a lock of another machine or container (whose process cannot be asked) is honoured: a publish takes milliseconds. */
const FOREIGN_LOCK_AGE_MS = 10 * 60_000;

/**
 * Runs `fn` (putting FILE.sha256 and FILE in place) holding `.{file}.lock`,
 * made with O_EXCL beside FILE and naming its holder (host, pid). Another
 * export's live lock is waited for (it is held for milliseconds); one whose
 * process is gone (this machine and pid namespace), or one of another
 * machine left for FOREIGN_LOCK_AGE_MS, is removed. (Left open: two exports
 * that find the same dead lock at the same moment.)
 */
async function withPublishLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${dirname(path)}/.${basename(path)}.lock`;
  const owner = `${HOST} ${process.pid}\n`;
  const until = Date.now() + 60_000;
  for (;;) {
    try {
      const fh = await fsp.open(lock, 'wx', 0o600);
      try {
        await fh.writeFile(owner);
      } finally {
        await fh.close();
      }
      break;
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code !== 'EEXIST') throw err.code ? outputFailed(path, err) : err;
    }
    const held = await fsp.readFile(lock, 'utf8').catch(() => undefined);
    const st = await fsp.lstat(lock).catch(() => undefined);
    if (held === undefined || !st) continue; // released meanwhile
    const m = /^(\S+) (\d+)\n$/.exec(held);
    // (no owner line: its maker died between making it and writing to it, a few microseconds; gone once seconds old)
    const age = Date.now() - st.mtimeMs;
    const dead = !m ? age > 5_000 : m[1] === HOST ? !alive(Number(m[2])) : age > FOREIGN_LOCK_AGE_MS;
    if (dead) {
      await fsp.rm(lock, { force: true });
      continue;
    }
    if (Date.now() > until) {
      throw new KompoxError('unavailable', `cannot put ${path} in place: ${lock} is held by another export (${held.trim() || 'unknown'}) for over a minute`, {
        code: 'export.output-locked',
        details: { path, lock },
        hint: 'If no other export to that file runs, remove the lock file and export again.',
      });
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  try {
    return await fn();
  } finally {
    await fsp.rm(lock, { force: true });
  }
}

/** Why writing the archive file failed, in words, with what to do. */
function outputFailed(path: string, e: NodeJS.ErrnoException): KompoxError {
  const full = e.code === 'ENOSPC' || e.code === 'EDQUOT';
  const why = filesystemProblem(e.code) ?? e.message;
  return new KompoxError('unavailable', `cannot write ${path}: ${why}; the incomplete archive was removed`, {
    code: 'export.output-failed',
    details: { path, ...(e.code ? { errno: e.code } : {}) },
    ...(full ? { hint: 'Free space there, or write the archive somewhere else with -O.' } : {}),
    ...(e.code === 'EIO' ? { hint: "Check that device (the kernel's log: dmesg), or write the archive somewhere else with -O." } : {}),
    cause: e,
  });
}

/** Why a file named on the command line could not be read, in words (the errno's words where there are none). */
function unreadable(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  // a read's own words; the rest are filesystemProblem's (EACCES, ENOTDIR...)
  const words: Record<string, string> = { EPERM: 'permission denied', EISDIR: 'it is a directory', ELOOP: 'a loop of symbolic links', EIO: 'the device reported an I/O error' };
  return (code && (words[code] ?? filesystemProblem(code))) || ((e as Error)?.message ?? String(e));
}

/**
 * The checksum in `FILE.sha256` (sha256sum format) when that file exists.
 * One that exists but cannot be read refuses the import: taken for absent,
 * a checksum that disagrees would go unchecked.
 */
export async function sidecarSha256(path: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(`${path}.sha256`, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KompoxError('usage', `cannot read ${path}.sha256: ${unreadable(e)}; nothing was imported`, {
      code: 'import.sha256.unreadable',
      details: { path: `${path}.sha256` },
      hint: 'Make it a readable file, remove it, or give the checksum with --sha256.',
      cause: e,
    });
  }
  const m = /^([0-9a-fA-F]{64})\b/.exec(text.trim());
  if (!m) throw new KompoxError('integrity', `${path}.sha256 does not hold a SHA-256`, { hint: 'Remove it, or pass the right value with --sha256.' });
  return m[1]!.toLowerCase();
}

/** Opens an archive file for import: stream, size, and the checksum from FILE.sha256 when present. */
export async function openArchiveFile(
  path: string,
  expectedSha256?: string,
): Promise<{ stream: NodeJS.ReadableStream; expectedSha256?: string; totalBytes: number; label: string }> {
  let st;
  try {
    st = await fsp.stat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new KompoxError('notfound', `archive file ${path} does not exist`);
    throw new KompoxError('usage', `cannot read archive file ${path}: ${unreadable(e)}; nothing was imported`, { code: 'import.file.unreadable', details: { path }, cause: e });
  }
  if (!st.isFile()) {
    throw new KompoxError('usage', `${path} is ${st.isDirectory() ? 'a directory' : 'not a regular file'}, not an archive file`, {
      hint: 'Give the file written by disk export or snapshot export (.tar.zst or .tar.gz), or - to read the archive from stdin.',
    });
  }
  const expected = expectedSha256 ? checkSha256(expectedSha256, '--sha256') : await sidecarSha256(path);
  // opened here, so that a file that cannot be read is said before anything is made (a stream opens it later,
  // and its error had no listener yet: an uncaught exception)
  const fh = await fsp.open(path, 'r').catch((e: unknown) => {
    throw new KompoxError('usage', `cannot read archive file ${path}: ${unreadable(e)}; nothing was imported`, {
      code: 'import.file.unreadable',
      details: { path },
      hint: 'Make it readable by the user running kompoxops (or run as a user who may read it), then run the command again.',
      cause: e,
    });
  });
  // 1 MiB reads: one thread-pool round trip per MiB of archive.
  return { stream: fh.createReadStream({ highWaterMark: 1024 * 1024 }), expectedSha256: expected, totalBytes: st.size, label: path };
}

type Doc = Record<string, unknown>;

export interface WriteOptions {
  merge?: boolean;
  force?: boolean;
}

/** Writes (mode 600) or merges into `file`; never replaces an existing file without merge or force. */
export async function writeKubeconfig(file: string, doc: Doc, opts: WriteOptions = {}): Promise<{ file: string; merged: boolean }> {
  let out = doc;
  let merged = false;
  if (existsSync(file)) {
    if (opts.merge) {
      const { parse } = await import('yaml');
      let base: unknown;
      try {
        base = parse(readFileSync(file, 'utf8'));
      } catch (e) {
        throw new KompoxError('config', `${file}: cannot merge into it: not valid YAML (${(e as Error).message.split('\n')[0]})`, { location: { file } });
      }
      if (base !== null && base !== undefined && (typeof base !== 'object' || Array.isArray(base))) {
        throw new KompoxError('config', `${file}: cannot merge into it: not a kubeconfig`, { location: { file } });
      }
      out = mergeKubeconfig((base as Doc) ?? {}, doc);
      merged = true;
    } else if (!opts.force) {
      throw new KompoxError('conflict', `${file} already exists`, { hint: 'Use --merge to add the cluster to it, --force to replace it, or -o - to print.' });
    }
  }
  const tmp = `${file}.kompox-${process.pid}.tmp`;
  writeFileSync(tmp, await kubeconfigYaml(out), { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return { file, merged };
}
