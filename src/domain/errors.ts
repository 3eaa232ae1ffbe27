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
  | 'usage' // command-line usage is wrong
  | 'notfound' // a named resource does not exist
  | 'conflict' // the operation would break a rule (e.g. delete the current disk)
  | 'auth' // credentials missing, expired or forbidden
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
} as const;

export class KompoxError extends Error {
  readonly kind: ErrorKind;
  readonly location?: Location;
  /** Dotted field path, e.g. `app.volumes[0].size` or `services.web.imagee`. */
  readonly field?: string;
  /** What the user should do about it. */
  readonly hint?: string;
  readonly exitCode: number;

  constructor(
    kind: ErrorKind,
    message: string,
    opts: { location?: Location; field?: string; hint?: string; exitCode?: number; cause?: unknown } = {},
  ) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'KompoxError';
    this.kind = kind;
    this.location = opts.location;
    this.field = opts.field;
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? (kind === 'usage' ? ExitCode.usage : kind === 'timeout' ? ExitCode.notReady : ExitCode.failed);
  }
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
export function formatError(err: KompoxError): string {
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
