// Removing a disk's tree on this machine (LocalHostFs.rm) in memory bounded
// by the tree's depth, not its file count. fs.promises.rm({ recursive })
// starts the removal of every entry of a directory at once: a tree of
// 200,000 files took 485 MiB of RSS, and 20,040 files (the issue 11
// benchmark disk) lifted a failed import from 88 to 109 MiB while it
// removed what it had extracted (issue 11: data commands stay within 100
// MiB whatever the disk size). Here each directory is read as it is walked
// (opendir: never all its names at once), subdirectories one after
// another, and at most UNLINKS files are being unlinked at any time.
// fs.rmSync would be as frugal (Node 24 does it in C++) but blocks the
// event loop for the whole tree: no progress, no cancel, and a server
// process would stop answering.
import { randomBytes } from 'node:crypto';
import { promises as fsp, type Dir, type Stats } from 'node:fs';
import { join } from 'node:path';
import { utf8Name } from '../../archive/utf8-names.js';

/** Unlinks in flight at once: as fast as more on tmpfs (200,000 files in 1.4 s; `rm -rf` 0.9 s), memory flat. */
export const UNLINKS = 32;

/**
 * A path as removeTree walks it: a string, or its bytes under a name that is
 * not UTF-8 (Linux allows any bytes in a name; decoded, it would name
 * nothing, and the directory holding it could never be removed).
 */
export type TreePath = string | Buffer;

/** The calls removeTree makes (node:fs/promises; tests count them). */
export interface RemoveTreeFs {
  lstat(path: TreePath): Promise<Stats>;
  chmod(path: TreePath, mode: number): Promise<void>;
  opendir(path: TreePath, opts: { bufferSize: number; encoding: BufferEncoding }): Promise<Dir>;
  unlink(path: TreePath): Promise<void>;
  rmdir(path: TreePath): Promise<void>;
  rename(from: TreePath, to: TreePath): Promise<void>;
}

/**
 * A directory whose path is longer than this many bytes is moved up to the
 * top of the tree (renamed to a short name in it) before it is walked. The
 * walk names every entry by its whole path, and the kernel takes at most
 * PATH_MAX (4096) bytes of one; an app in a pod creates deeper trees with
 * relative names (`cd` one level at a time), and `disk delete` of such a
 * disk failed with ENAMETOOLONG where `rm -rf` succeeds. Well under
 * PATH_MAX, so the move's own source path (this plus one name, at most 255
 * bytes) is always within it.
 */
export const LONG_PATH = 2048;

const byteLength = (p: TreePath): number => (typeof p === 'string' ? Buffer.byteLength(p) : p.length);

/** The entry `raw` of directory `dir`: a string path while every name is UTF-8, else the bytes. */
function childPath(dir: TreePath, raw: Buffer): TreePath {
  const name = utf8Name(raw);
  if (typeof dir === 'string' && name !== undefined) return join(dir, name);
  return Buffer.concat([typeof dir === 'string' ? Buffer.from(dir, 'utf8') : dir, Buffer.from('/'), raw]);
}

/**
 * Removes `path` and, when it is a directory, everything under it (symlinks
 * are removed, never followed); nothing there is not an error. Directories
 * whose owner may not write or search them (modes restored from an archive)
 * are made so first, as `chmod -R u+rwx` would; what still cannot be
 * removed fails with the call's error.
 */
export async function removeTree(path: string, fs: RemoveTreeFs = fsp): Promise<void> {
  const unlinks = new Unlinks(fs, UNLINKS);
  try {
    await removeEntry(path, fs, unlinks, path);
    await unlinks.idle();
  } catch (e) {
    // nothing of this call is still at work on the filesystem once it has failed
    await unlinks.drained();
    throw e;
  }
}

async function removeEntry(path: TreePath, fs: RemoveTreeFs, unlinks: Unlinks, top: string): Promise<void> {
  let st: Stats;
  try {
    st = await fs.lstat(path);
  } catch (e) {
    if (missing(e)) return;
    throw e;
  }
  if (!st.isDirectory()) return ignoreMissing(fs.unlink(path));
  if ((st.mode & 0o700) !== 0o700) await fs.chmod(path, (st.mode & 0o7777) | 0o700).catch(() => undefined);
  // names as their bytes ('buffer' works at run time: Node's typings list string encodings only)
  const dir = await fs.opendir(path, { bufferSize: 256, encoding: 'buffer' as BufferEncoding });
  // for-await closes the directory however the loop ends
  for await (const e of dir) {
    const child = childPath(path, e.name as unknown as Buffer);
    if (!e.isDirectory()) await unlinks.start(child);
    else if (byteLength(child) <= LONG_PATH) await removeEntry(child, fs, unlinks, top);
    else {
      // moved up beside the walk's start (within the tree being removed): its entries' paths start short again
      const moved = join(top, `.kompox-rm-${randomBytes(6).toString('hex')}`);
      await fs.rename(child, moved);
      await removeEntry(moved, fs, unlinks, top);
    }
  }
  // its files are gone before the directory goes
  await unlinks.idle();
  await ignoreMissing(fs.rmdir(path));
}

/** At most `max` unlinks in flight; the first failure is thrown by the next start() or idle(). */
class Unlinks {
  private running = 0;
  private failure: unknown;
  private waiters: Array<() => void> = [];
  constructor(
    private readonly fs: RemoveTreeFs,
    private readonly max: number,
  ) {}
  /** Starts unlinking `path`, once fewer than `max` are in flight. */
  async start(path: TreePath): Promise<void> {
    while (this.running >= this.max) await this.settled();
    this.check();
    this.running++;
    ignoreMissing(this.fs.unlink(path))
      .catch((e: unknown) => {
        this.failure ??= e;
      })
      .finally(() => {
        this.running--;
        // every waiter checks again (the walk is one, but nothing breaks if it were more)
        const waiters = this.waiters;
        this.waiters = [];
        for (const wake of waiters) wake();
      });
  }
  /** Every unlink started has finished; throws the first failure. */
  async idle(): Promise<void> {
    await this.drained();
    this.check();
  }
  /** Every unlink started has finished, failed or not. */
  async drained(): Promise<void> {
    while (this.running > 0) await this.settled();
  }
  /** Resolves when an unlink in flight has finished. */
  private settled(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  private check(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}

function missing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

async function ignoreMissing(p: Promise<void>): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (!missing(e)) throw e;
  }
}
