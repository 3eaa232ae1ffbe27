// The AppSource port: everything an app's compose project may read — its
// compose text, the files of the project and the variables for interpolation —
// handed to the use cases explicitly. The CLI builds one from the working
// directory and the shell; the PaaS server builds a sandboxed one from what a
// tenant uploaded. Nothing below the front end reads process.env, the current
// directory or a path outside the source. Adapters: src/source/.
import { KompoxError, type Location } from './errors.js';

/** Where the compose text comes from. Undefined: the default files (COMPOSE_FILE, compose.yaml, …). */
export type ComposeInput =
  /** Inline text; `filename` names it in messages (absolute, or relative to the root). */
  | { text: string; filename: string }
  /** Files (absolute, or relative to the root), merged in order. */
  | { files: string[] }
  | undefined;

export interface SourceStat {
  kind: 'file' | 'dir' | 'other';
  size: number;
}

export interface SourceDirEntry {
  name: string;
  /** As found in the directory: a symbolic link is not followed. */
  kind: 'file' | 'dir' | 'symlink' | 'other';
}

export interface AppSource {
  /** For messages: the project directory, or `upload` for a bundle. */
  readonly label: string;
  /**
   * The project directory, absolute: relative paths of the compose project resolve
   * against it (a bundle has a virtual one). Every path the methods take is absolute.
   */
  readonly root: string;
  /**
   * True for what a tenant sent (the PaaS server): an absolute path, `~`, a path
   * or symbolic link that leads out of the root, or an `environment:` secret or
   * config naming a variable `env` does not hold is an error, not a host lookup.
   */
  readonly sandboxed: boolean;
  /** Variables for interpolation and for `environment:` secrets/configs: only what the front end put in. */
  readonly env: Readonly<Record<string, string>>;
  /** The user's home directory, to expand and recognise `~` paths (CLI only; absent when sandboxed). */
  readonly homeDir?: string;
  /** File names in messages are relative to this directory when inside it (CLI: the working directory), else to the root. */
  readonly displayDir?: string;
  readonly compose: ComposeInput;

  /** What is at `path` (symbolic links followed); undefined when nothing is. */
  stat(path: string): Promise<SourceStat | undefined>;
  /** The file's bytes; a missing or unreadable file rejects with a SourceAccessError. */
  readFile(path: string): Promise<Uint8Array>;
  /** The entries of a directory, sorted by name. */
  readdir(path: string): Promise<SourceDirEntry[]>;
  /** The path with symbolic links resolved (the path itself for a bundle). */
  realpath(path: string): Promise<string>;
}

/** Why a source could not give what was asked; callers that know the compose field wrap it. */
export type SourceAccessReason = 'missing' | 'outside' | 'unreadable';

/** A path the source does not have or may not give out. */
export class SourceAccessError extends KompoxError {
  readonly reason: SourceAccessReason;
  /** The path as it was asked for. */
  readonly path: string;
  constructor(reason: SourceAccessReason, path: string, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super('config', message, opts);
    this.reason = reason;
    this.path = path;
  }
}

/**
 * Stable machine-readable codes of the sandbox refusals. KompoxError has no
 * `code` field on this branch yet: the codes are kept here so that the errors
 * can carry them when it lands (sandboxError is the one place that builds them).
 */
export const SANDBOX_CODES = {
  absolute: 'source.path.absolute',
  home: 'source.path.home',
  outside: 'source.path.outside',
  symlink: 'source.path.symlink',
  variable: 'source.env.undefined',
} as const;
export type SandboxCode = (typeof SANDBOX_CODES)[keyof typeof SANDBOX_CODES];

/** A refusal of a sandboxed source, naming the compose field (and file:line when known). */
export function sandboxError(_code: SandboxCode, field: string, message: string, opts: { location?: Location; hint?: string; cause?: unknown } = {}): KompoxError {
  return new KompoxError('config', `${field}: ${message}`, { ...opts, field });
}

/** `p` is `root` or below it (both absolute and normalised, `/`-separated). */
export function withinRoot(root: string, p: string): boolean {
  const r = root.length > 1 ? root.replace(/\/+$/, '') : root;
  return p === r || p.startsWith(r === '/' ? '/' : r + '/');
}

/** Why a sandboxed source refuses a path written in the project (pure: nothing is looked at). */
export type PathRefusal = 'absolute' | 'home' | 'outside';

/** An absolute POSIX path or a Windows drive path. */
export function isAbsolutePath(p: string): boolean {
  return p.startsWith('/') || p.startsWith('\\') || /^[a-zA-Z]:[\\/]/.test(p);
}

/** What a sandboxed source says to `written` (already resolved to `resolved`), or undefined when it is inside the root. */
export function sandboxRefusal(root: string, written: string, resolved: string, opts: { home?: boolean } = {}): PathRefusal | undefined {
  if (opts.home && (written === '~' || written.startsWith('~/'))) return 'home';
  if (isAbsolutePath(written)) return 'absolute';
  return withinRoot(root, resolved) ? undefined : 'outside';
}
