// Shared plumbing for the CLI shells: error reporting, output formats and the
// lazy loading of kompoxops.yml. Commands stay thin: parse flags, call a use
// case, print its result.
import type { Command } from 'commander';
import { DiagnosticsError, ExitCode, KompoxError, filesystemProblem, formatError } from '../domain/errors.js';
import { withCliAdvice } from './advice.js';

export type OutputFormat = 'json' | 'yaml' | 'table';

export { globalOptions, shareGlobalOptions, type GlobalOptions } from './global-options.js';

let debug = false;
export function setDebug(v: boolean): void {
  debug = v;
}

/** Set by action() for a command given `-o json`: its failure is reported as JSON (also when an interrupt ends the process from withOp). */
let jsonErrors = false;

/**
 * Errors of this machine's filesystem that are its state, not a bug, with
 * what to do (a use case that knows the path says more: export.output-failed,
 * host.disk.full). E.g. a full temp directory while a listing spills.
 */
const ENVIRONMENT_ERRNO: Readonly<Record<string, string>> = {
  ENOSPC: 'A filesystem this command writes to is full (its temporary files go to the system temp directory, TMPDIR): free space there and run it again.',
  EDQUOT: 'A disk quota was exceeded: free space or raise the quota, and run it again.',
  EROFS: 'A filesystem this command writes to is read-only.',
  EACCES: 'Permission was denied on the file or directory named above: check its owner and mode, or run kompoxops as a user who may read (or write) it, and run the command again.',
  EPERM: 'The operation was not permitted on the file or directory named above: check its owner and mode (and any immutable flag), or run kompoxops as a user who may.',
  EIO: "A device this command reads or writes reported an I/O error (a failing disk, a lost network share): check it (the kernel's log: dmesg) and run the command again.",
};

/** err as a KompoxError where it is one or a known state of this machine's filesystem (ENVIRONMENT_ERRNO); undefined for anything unexpected. */
function asKompoxError(err: unknown): KompoxError | undefined {
  if (err instanceof KompoxError) return err;
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  if (errno && ENVIRONMENT_ERRNO[errno]) return new KompoxError('unavailable', (err as Error).message, { hint: ENVIRONMENT_ERRNO[errno], cause: err });
  return undefined;
}

const UNEXPECTED = 'This is unexpected; run again with --debug for details and include them when you report it.';

/**
 * Prints an error the way users should see it and returns the exit code.
 * With `json`, stderr gets one JSON object instead of the paragraph, so a
 * script that asked for `-o json` can read the stable code as well as the
 * exit code: {"error":{"code","kind","message","hint"?,"location"?,"field"?,
 * "details"?,"diagnostics"?,"exitCode"}}. Stdout stays empty either way.
 */
export function reportError(err: unknown, opts: { json?: boolean } = { json: jsonErrors }): number {
  const k = asKompoxError(err);
  if (opts.json) {
    const shown = k ? withCliAdvice(k) : { message: (err as Error | undefined)?.message ?? String(err), hint: UNEXPECTED };
    const body = {
      code: k?.code ?? 'internal',
      kind: k?.kind ?? 'internal',
      message: shown.message,
      ...(shown.hint ? { hint: shown.hint } : {}),
      ...(k?.location ? { location: k.location } : {}),
      ...(k?.field ? { field: k.field } : {}),
      ...(k?.details ? { details: k.details } : {}),
      ...(k instanceof DiagnosticsError ? { diagnostics: k.diagnostics } : {}),
      exitCode: k?.exitCode ?? ExitCode.failed,
      // --debug's stacks go inside the object: stderr stays one JSON object for whatever parses it
      ...(debug ? debugStacks(err) : {}),
    };
    process.stderr.write(`${JSON.stringify({ error: body }, jsonSafe)}\n`);
    return body.exitCode;
  }
  if (k) {
    process.stderr.write(`error: ${formatError({ location: k.location, field: k.field, ...withCliAdvice(k) })}\n`);
    if (debug && k.stack) process.stderr.write(`${k.stack}\n`);
    if (debug && k.cause) process.stderr.write(`caused by: ${String((k.cause as Error)?.stack ?? k.cause)}\n`);
    return k.exitCode;
  }
  const e = err as Error;
  if (debug) {
    process.stderr.write(`error: ${e?.stack ?? String(err)}\n`);
  } else {
    process.stderr.write(`error: ${e?.message ?? String(err)}\n${UNEXPECTED}\n`);
  }
  return ExitCode.failed;
}

/** An error's stack and its causes' (each as text), for `-o json --debug`. */
function debugStacks(err: unknown): { stack: string; causes?: string[] } {
  const causes: string[] = [];
  const seen = new Set<unknown>([err]);
  for (let c = (err as { cause?: unknown } | undefined)?.cause; c != null && !seen.has(c) && causes.length < 8; c = (c as { cause?: unknown }).cause) {
    seen.add(c);
    causes.push(String((c as Error)?.stack ?? c));
  }
  return { stack: String((err as Error)?.stack ?? err), ...(causes.length ? { causes } : {}) };
}

/** JSON.stringify's replacer for error details: bigints as numbers' text, errors as their message (never a stack). */
function jsonSafe(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Error) return v.message;
  return v;
}

/** Whether the command an action runs for was given `-o json` (its Command is the action's last argument). */
function wantsJson(args: unknown[]): boolean {
  const cmd = args[args.length - 1] as Partial<Command> | undefined;
  if (typeof cmd?.opts !== 'function') return false;
  return (cmd.opts() as { output?: unknown }).output === 'json';
}

/** The first failure of a write to stdout (watchOutputs), if any. */
let stdoutFailure: NodeJS.ErrnoException | undefined;

/**
 * Takes the 'error' events of stdout and stderr, which nothing else listens
 * to: a reader that went away (`| head`, `| grep -m1`) or a failing output
 * (`> FILE` on a full disk) would otherwise crash the process with an
 * unhandled-error stack trace. Writers that must know see the failure in
 * their own write callbacks (an archive export then says the archive is
 * incomplete; logs stop following); a command that only prints is cut short,
 * and a failure other than a closed reader is reported when it ends
 * (outputFailed). Nothing can be told once stderr fails.
 */
export function watchOutputs(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    stdoutFailure ??= e;
  });
  process.stderr.on('error', () => undefined);
}

/** Whether `err` is (or was caused by) the failure of a write to stdout. */
function fromStdout(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) if (e === stdoutFailure) return true;
  return false;
}

/**
 * stdout's failure as what it is: a reader that went away is the user's
 * business (undefined: the command's own outcome stands, and an export has
 * already said its archive is incomplete); anything else, a file that could
 * not be written, is an error naming stdout (not, say, ENOSPC's advice about
 * the temp directory).
 */
function outputFailed(): KompoxError | undefined {
  const e = stdoutFailure;
  if (!e || e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') return undefined;
  const reason = filesystemProblem(e.code) ?? e.message;
  return new KompoxError('unavailable', `cannot write the output (stdout): ${reason}; what was written is incomplete`, {
    code: 'output.failed',
    hint: 'Check where stdout goes (the file or device it is redirected to, and the space left there), then run the command again.',
    cause: e,
  });
}

/**
 * Wraps a command action: runs it, maps errors to one clear message and an
 * exit code, sets process.exitCode (never calls process.exit while output may
 * still be buffered).
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    jsonErrors = wantsJson(args);
    try {
      const code = await fn(...args);
      // a write's failure is told after it returns (a file's on the next tick): let it arrive
      await new Promise<void>((resolve) => process.stdout.write('', () => setImmediate(resolve)));
      const failed = outputFailed();
      if (failed) throw failed;
      if (typeof code === 'number') process.exitCode = code;
    } catch (err) {
      process.exitCode = reportError((fromStdout(err) && outputFailed()) || err);
    }
  };
}

export function parseOutputFormat(v: string | undefined, fallback: OutputFormat = 'table'): OutputFormat {
  if (v === undefined) return fallback;
  if (v === 'json' || v === 'yaml' || v === 'table') return v;
  throw new KompoxError('usage', `unknown output format "${v}"`, { hint: 'Use -o json, -o yaml or -o table.' });
}

export interface Column<T> {
  header: string;
  get(row: T): string | number | boolean | undefined | null;
}

export function renderTable<T>(rows: T[], columns: Column<T>[]): string {
  const cells = rows.map((r) => columns.map((c) => {
    const v = c.get(r);
    return v === undefined || v === null ? '' : String(v);
  }));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => (i === vals.length - 1 ? v : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(columns.map((c) => c.header.toUpperCase())), ...cells.map(line)].join('\n') + '\n';
}

/** Prints data as JSON, YAML or a table. */
export async function printData<T>(data: T[] | T, format: OutputFormat, columns?: Column<T>[]): Promise<void> {
  if (format === 'json') {
    process.stdout.write(JSON.stringify(data, null, 2) + '\n');
  } else if (format === 'yaml') {
    const { toYamlText } = await import('../domain/yaml-text.js');
    process.stdout.write(toYamlText(data));
  } else {
    const rows = Array.isArray(data) ? data : [data];
    if (!columns) throw new Error('table output needs columns');
    process.stdout.write(renderTable(rows, columns));
  }
}

/** Adds `-o, --output` to a command whose output is data. */
export function withOutput(cmd: Command, fallback: OutputFormat = 'table'): Command {
  return cmd.option('-o, --output <format>', `output format: json, yaml or table (default ${fallback})`);
}

/**
 * A duration flag (`--timeout`, `--stop-timeout`, `--since`) in milliseconds.
 * One parser so every command takes the same forms: a plain number of
 * seconds, or 30s, 5m, 2h, 1h30m.
 */
export function durationFlag(value: string, flag: string): number {
  const v = value.trim();
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(v);
  const seconds = /^\d+$/.test(v) ? Number(v) : m && v !== '' ? Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0) : NaN;
  if (!(seconds > 0)) {
    throw new KompoxError('usage', `${flag} "${value}" is not a positive duration`, { hint: 'Use seconds (e.g. 300) or 30s, 5m, 2h, 1h30m.' });
  }
  return seconds * 1000;
}
