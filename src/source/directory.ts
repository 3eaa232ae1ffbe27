// An AppSource over a project directory on disk. The CLI uses it unsandboxed
// (the user may point env_file or a secret file anywhere, as docker compose
// allows); sandboxed, every path must stay inside the directory, also after
// symbolic links are resolved, so an unpacked upload cannot read the server's files.
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { definedEnv } from './env.js';
import { SourceAccessError, withinRoot, type AppSource, type ComposeInput, type SourceDirEntry, type SourceStat } from '../domain/source.js';

export interface DirectorySourceOptions {
  /** Variables for interpolation and `environment:` secrets/configs (the CLI passes the shell's). */
  env?: Readonly<Record<string, string | undefined>>;
  compose?: ComposeInput;
  /** The user's home directory (CLI), to expand `~`; never used when sandboxed. */
  homeDir?: string;
  /** File names in messages are relative to it when inside (CLI: the working directory). */
  displayDir?: string;
  sandboxed?: boolean;
  label?: string;
}

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code;
const notThere = (e: unknown) => errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR';

export function directorySource(dir: string, opts: DirectorySourceOptions = {}): AppSource {
  if (!posix.isAbsolute(dir)) throw new Error(`directorySource needs an absolute directory, got ${dir}`);
  const root = posix.normalize(dir).replace(/(.)\/+$/, '$1');
  const sandboxed = opts.sandboxed ?? false;
  /** How a path is named in a sandboxed source's messages: never as a path of the machine. */
  const shown = (p: string) => (withinRoot(root, p) ? `./${posix.relative(root, p)}`.replace(/^\.\/$/, '.') : p);
  let realRoot: Promise<string> | undefined;

  /** Sandboxed: the path, lexically and with symbolic links resolved, is inside the root. */
  const check = async (path: string): Promise<void> => {
    if (!sandboxed) return;
    const p = posix.resolve(root, path);
    if (!withinRoot(root, p)) throw new SourceAccessError('outside', path, `${posix.relative(root, p)} is outside the project`);
    realRoot ??= realpath(root).catch(() => root);
    const top = await realRoot;
    // the nearest existing ancestor decides for a path that does not exist (yet)
    let probe = p;
    for (;;) {
      let real: string;
      try {
        real = await realpath(probe);
      } catch (e) {
        if (notThere(e) && probe !== root) {
          probe = posix.dirname(probe);
          continue;
        }
        throw e;
      }
      if (!withinRoot(top, real)) {
        throw new SourceAccessError('outside', path, `${shown(p)} leads outside the project through a symbolic link`, {
          hint: 'Copy the file into the project instead of linking to it',
        });
      }
      return;
    }
  };
  const abs = (path: string) => posix.resolve(root, path);

  return {
    label: opts.label ?? root,
    root,
    sandboxed,
    env: definedEnv(opts.env),
    ...(!sandboxed && opts.homeDir ? { homeDir: opts.homeDir } : {}),
    ...(opts.displayDir ? { displayDir: opts.displayDir } : {}),
    compose: opts.compose,

    async stat(path: string): Promise<SourceStat | undefined> {
      const p = abs(path);
      try {
        await check(p);
        const st = await stat(p);
        return { kind: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other', size: st.size };
      } catch (e) {
        if (notThere(e)) return undefined;
        throw e;
      }
    },

    async readFile(path: string): Promise<Uint8Array> {
      const p = abs(path);
      try {
        await check(p);
        return new Uint8Array(await readFile(p));
      } catch (e) {
        if (e instanceof SourceAccessError) throw e;
        const name = sandboxed ? shown(p) : p;
        if (notThere(e)) throw new SourceAccessError('missing', path, `${name} does not exist`, { cause: e });
        if (errno(e) === 'EISDIR') throw new SourceAccessError('unreadable', path, `${name} is a directory`, { cause: e });
        throw new SourceAccessError('unreadable', path, `cannot read ${name} (${errno(e) ?? String(e)})`, { hint: 'Check the file permissions', cause: e });
      }
    },

    async readdir(path: string): Promise<SourceDirEntry[]> {
      const p = abs(path);
      await check(p);
      let entries;
      try {
        entries = await readdir(p, { withFileTypes: true });
      } catch (e) {
        const name = sandboxed ? shown(p) : p;
        if (notThere(e)) throw new SourceAccessError('missing', path, `${name} does not exist`, { cause: e });
        throw new SourceAccessError('unreadable', path, `cannot read the directory ${name} (${errno(e) ?? String(e)})`, { hint: 'Check the directory permissions', cause: e });
      }
      return entries
        .map((e): SourceDirEntry => ({ name: e.name, kind: e.isFile() ? 'file' : e.isDirectory() ? 'dir' : e.isSymbolicLink() ? 'symlink' : 'other' }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },

    async realpath(path: string): Promise<string> {
      const p = abs(path);
      await check(p);
      try {
        return await realpath(p);
      } catch (e) {
        if (notThere(e)) throw new SourceAccessError('missing', path, `${sandboxed ? shown(p) : p} does not exist`, { cause: e });
        throw e;
      }
    },
  };
}
