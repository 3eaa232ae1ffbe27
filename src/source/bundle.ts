// An AppSource held in memory: the files a tenant uploaded with the app (what
// the PaaS server uses). Always sandboxed: it has no file of the machine to give,
// no home directory and no variable but the ones it was handed.
import { posix } from 'node:path';
import { KompoxError } from '../domain/errors.js';
import { SourceAccessError, withinRoot, type AppSource, type ComposeInput, type SourceDirEntry, type SourceStat } from '../domain/source.js';
import { definedEnv } from './env.js';

export interface BundleSourceOptions {
  /** Variables for interpolation and `environment:` secrets/configs: only these exist. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Undefined: the default compose files of the bundle (COMPOSE_FILE, compose.yaml, …). */
  compose?: ComposeInput;
  /**
   * The virtual directory the bundle's files appear in (absolute). It is what the
   * canonical compose model shows for bind sources, and its last segment is the
   * project name when the compose file sets none. Default `/upload`.
   */
  root?: string;
  label?: string;
}

/** A bundle path, checked: relative, `/`-separated, no `.`/`..` segment, nothing empty. */
function bundlePath(name: string): string {
  const segs = name.split('/');
  if (name === '' || name.startsWith('/') || name.includes('\\') || name.includes('\0') || segs.some((s) => s === '' || s === '.' || s === '..')) {
    throw new KompoxError('usage', `bundle file name "${name}" is not a relative path inside the project`, {
      field: `files.${name}`,
      hint: 'Name every file of the bundle by its path relative to the project directory, e.g. "conf/app.ini", without "..", "." or a leading "/"',
    });
  }
  return name;
}

export function bundleSource(files: Readonly<Record<string, string | Uint8Array>>, opts: BundleSourceOptions = {}): AppSource {
  const root = posix.normalize(opts.root ?? '/upload').replace(/(.)\/+$/, '$1');
  if (!posix.isAbsolute(root)) throw new Error(`bundleSource needs an absolute virtual root, got ${root}`);
  const enc = new TextEncoder();
  const contents = new Map<string, Uint8Array>();
  const dirs = new Set<string>(['']);
  for (const [name, data] of Object.entries(files)) {
    const rel = bundlePath(name);
    contents.set(rel, typeof data === 'string' ? enc.encode(data) : data);
    for (let d = posix.dirname(rel); d !== '.'; d = posix.dirname(d)) dirs.add(d);
  }
  for (const d of dirs) {
    if (contents.has(d)) {
      throw new KompoxError('usage', `bundle file "${d}" is also a directory of other files`, { field: `files.${d}`, hint: 'Rename the file or the directory' });
    }
  }
  /** The bundle path of an absolute or root-relative path; a refusal when it leaves the root. */
  const rel = (path: string): string => {
    const p = posix.resolve(root, path);
    if (!withinRoot(root, p)) throw new SourceAccessError('outside', path, `${posix.relative(root, p)} is outside the project`);
    return posix.relative(root, p);
  };
  const shown = (r: string) => (r === '' ? '.' : `./${r}`);

  return {
    label: opts.label ?? 'upload',
    root,
    sandboxed: true,
    env: definedEnv(opts.env),
    compose: opts.compose,

    async stat(path: string): Promise<SourceStat | undefined> {
      const r = rel(path);
      const data = contents.get(r);
      if (data) return { kind: 'file', size: data.byteLength };
      return dirs.has(r) ? { kind: 'dir', size: 0 } : undefined;
    },

    async readFile(path: string): Promise<Uint8Array> {
      const r = rel(path);
      const data = contents.get(r);
      if (data) return data.slice();
      if (dirs.has(r)) throw new SourceAccessError('unreadable', path, `${shown(r)} is a directory`);
      throw new SourceAccessError('missing', path, `${shown(r)} does not exist`);
    },

    async readdir(path: string): Promise<SourceDirEntry[]> {
      const r = rel(path);
      if (!dirs.has(r)) throw new SourceAccessError(contents.has(r) ? 'unreadable' : 'missing', path, `${shown(r)} is not a directory`);
      const prefix = r === '' ? '' : `${r}/`;
      const out = new Map<string, SourceDirEntry['kind']>();
      for (const [names, kind] of [[contents.keys(), 'file'], [dirs.keys(), 'dir']] as const) {
        for (const n of names) {
          if (n === '' || !n.startsWith(prefix)) continue;
          const rest = n.slice(prefix.length);
          if (!rest.includes('/')) out.set(rest, kind);
        }
      }
      return [...out].map(([name, kind]) => ({ name, kind })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },

    async realpath(path: string): Promise<string> {
      const r = rel(path);
      if (!contents.has(r) && !dirs.has(r)) throw new SourceAccessError('missing', path, `${shown(r)} does not exist`);
      return r === '' ? root : posix.join(root, r);
    },
  };
}
