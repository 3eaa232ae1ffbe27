// Errors users see. Every failure a user can cause is a KompoxError: one
// paragraph naming where (file:line:column or field path) and what to do.
// Anything else reaching the CLI is a bug and is reported as such.

export interface Location {
  file?: string;
  line?: number;
  column?: number;
}

export type ErrorKind =
  | 'config' // kompoxops.yml / compose input is wrong
  | 'usage' // command-line (or request) usage is wrong
  | 'notfound' // a named resource does not exist
  | 'conflict' // the operation would break a rule (e.g. delete the current disk)
  | 'auth' // credentials missing, expired or forbidden
  | 'unsupported' // the provider driver cannot do this ("not supported by the X driver")
  | 'unavailable' // a server or service cannot be reached
  | 'timeout' // applied but not ready in time
  | 'integrity' // checksum / archive corruption
  | 'interrupted' // stopped by the user (Ctrl-C) after undoing what must not stay half-done
  | 'internal';

/** Exit codes shared by all CLIs. */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  notReady: 3, // applied, but not ready within the timeout
  interrupted: 130, // 128 + SIGINT, as shells report it
} as const;

/**
 * What each kind means to a front end: the CLI's exit code, the server's HTTP
 * status, and the code an error gets when its thrower names no sharper one.
 * One table, so kompoxops and kompoxsvc never disagree about an error.
 */
export const ERROR_KINDS: Readonly<Record<ErrorKind, { exitCode: number; httpStatus: number; code: string }>> = {
  config: { exitCode: ExitCode.failed, httpStatus: 422, code: 'config.invalid' },
  usage: { exitCode: ExitCode.usage, httpStatus: 400, code: 'usage.invalid' },
  notfound: { exitCode: ExitCode.failed, httpStatus: 404, code: 'notfound' },
  conflict: { exitCode: ExitCode.failed, httpStatus: 409, code: 'conflict' },
  auth: { exitCode: ExitCode.failed, httpStatus: 403, code: 'auth.denied' },
  unsupported: { exitCode: ExitCode.failed, httpStatus: 501, code: 'driver.unsupported' },
  unavailable: { exitCode: ExitCode.failed, httpStatus: 503, code: 'unavailable' },
  timeout: { exitCode: ExitCode.notReady, httpStatus: 504, code: 'timeout' },
  integrity: { exitCode: ExitCode.failed, httpStatus: 422, code: 'integrity' },
  interrupted: { exitCode: ExitCode.interrupted, httpStatus: 499, code: 'interrupted' },
  internal: { exitCode: ExitCode.failed, httpStatus: 500, code: 'internal' },
};

export interface KompoxErrorOptions {
  location?: Location;
  field?: string;
  hint?: string;
  exitCode?: number;
  cause?: unknown;
  /** Stable machine-readable code, dotted (`disk.delete.current`); default the kind's (ERROR_KINDS). */
  code?: string;
  /** Structured facts about the error (names, ids) for front ends to render their own advice. */
  details?: Record<string, unknown>;
}

export class KompoxError extends Error {
  readonly kind: ErrorKind;
  /** Stable machine-readable code: front ends key their advice (flags, HTTP bodies) on it, never on the message. */
  readonly code: string;
  readonly details?: Record<string, unknown>;
  readonly location?: Location;
  /** Dotted field path, e.g. `app.volumes[0].size` or `services.web.imagee`. */
  readonly field?: string;
  /** What the user should do about it, in words any front end can show (no flags or commands). */
  readonly hint?: string;
  readonly exitCode: number;

  constructor(kind: ErrorKind, message: string, opts: KompoxErrorOptions = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'KompoxError';
    this.kind = kind;
    this.code = opts.code ?? ERROR_KINDS[kind].code;
    if (opts.details) this.details = opts.details;
    this.location = opts.location;
    this.field = opts.field;
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? ERROR_KINDS[kind].exitCode;
  }

  /** The HTTP status a server answers with for this error. */
  get httpStatus(): number {
    return ERROR_KINDS[this.kind].httpStatus;
  }
}

/**
 * A filesystem errno that is the machine's state, not a bug, in words
 * (undefined for any other): what the errors that name a path say.
 */
export function filesystemProblem(code: string | undefined): string | undefined {
  const words: Record<string, string> = {
    ENOSPC: 'no space left on device',
    EDQUOT: 'disk quota exceeded',
    EROFS: 'read-only file system',
    EACCES: 'permission denied',
    ENOENT: 'the directory does not exist',
    ENOTDIR: 'a part of its path is not a directory',
    // from write, fsync or close: the device did not take the data (a failing disk, a lost network share)
    EIO: 'the device reported an I/O error (the data may not be on the disk)',
  };
  return code ? words[code] : undefined;
}

/** The typed error of a driver that lacks an operation. */
export function unsupported(operation: string, driver: string): KompoxError {
  return new KompoxError('unsupported', `${operation} is not supported by the ${driver} driver`, {
    code: 'driver.unsupported',
    details: { operation, driver },
  });
}

/**
 * The stable code of `e`, with its details and hint, when it has a code of
 * its own (not its kind's default): kept by a wrapper whose message says more
 * (which command failed), so scripts still get `k3s.ssh.lost` and the like.
 */
export function ownCode(e: unknown): Pick<KompoxErrorOptions, 'code' | 'details' | 'hint'> {
  if (!(e instanceof KompoxError) || e.code === ERROR_KINDS[e.kind].code) return {};
  return { code: e.code, ...(e.details ? { details: e.details } : {}), ...(e.hint ? { hint: e.hint } : {}) };
}

/** The error an operation stopped by its AbortSignal (Ctrl-C, a cancelled request) ends with. */
export function interruptedError(message = 'interrupted', opts: Omit<KompoxErrorOptions, 'code' | 'exitCode'> = {}): KompoxError {
  return new KompoxError('interrupted', message, { ...opts, code: 'interrupted' });
}

/** A field path as users read it: `app.volumes[0].size`, `services.web.volumes[1]`. */
export function fieldName(path: ReadonlyArray<string | number>): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${p}` : p;
  return s;
}

export function formatLocation(loc?: Location): string {
  if (!loc?.file) return '';
  let s = loc.file;
  if (loc.line !== undefined) {
    s += `:${loc.line}`;
    if (loc.column !== undefined) s += `:${loc.column}`;
  }
  return s;
}

/** One paragraph: `file:line:col: message (field x). hint` */
export function formatError(err: Pick<KompoxError, 'message' | 'location' | 'field' | 'hint'>): string {
  const where = formatLocation(err.location);
  let s = where ? `${where}: ${err.message}` : err.message;
  if (err.field && !s.includes(err.field)) s += ` (field ${err.field})`;
  if (err.hint) s += `${/[.!?]$/.test(s) ? '' : '.'} ${err.hint}`;
  return s;
}

/** A warning or error that does not stop processing by itself. */
export interface Diagnostic {
  level: 'warning' | 'error';
  message: string;
  location?: Location;
  /** compose service the diagnostic is about */
  service?: string;
  /** compose key, e.g. `network_mode` */
  key?: string;
  hint?: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = formatLocation(d.location);
  let s = `${d.level}: ${where ? `${where}: ` : ''}${d.message}`;
  if (d.hint) s += `${/[.!?]$/.test(s) ? '' : '.'} ${d.hint}`;
  return s;
}

/** Thrown when several diagnostics of level error were collected. */
export class DiagnosticsError extends KompoxError {
  readonly diagnostics: Diagnostic[];
  constructor(diagnostics: Diagnostic[], summary = 'the input is not valid') {
    super('config', `${summary}:\n${diagnostics.map((d) => '  ' + formatDiagnostic(d)).join('\n')}`);
    this.diagnostics = diagnostics;
  }
}
