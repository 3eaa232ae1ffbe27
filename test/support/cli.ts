// Spawns the real CLI binaries (bin/*.mjs) the way users run them, for CLI
// tests. `npm test` builds dist/ first, so the binaries run the compiled code.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = {
  kompoxops: fileURLToPath(new URL('../../bin/kompoxops.mjs', import.meta.url)),
  kompoxsvc: fileURLToPath(new URL('../../bin/kompoxsvc.mjs', import.meta.url)),
  kompox: fileURLToPath(new URL('../../bin/kompox.mjs', import.meta.url)),
};

export interface CliResult {
  code: number | null;
  stdout: string;
  /** stdout as bytes, for binary output (archives). */
  stdoutBytes: Buffer;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  stdin?: string | Buffer;
  /** Extra node flags before the script (e.g. --import a tracer). */
  nodeArgs?: string[];
  bin?: keyof typeof BIN;
  /** A script to run instead of a binary (e.g. test/support/reference-cli.ts, with nodeArgs ['--import', TSX]). */
  script?: string;
  timeoutMs?: number;
}

/** Calls `done` with the child's exit code once it has closed (killed after `timeoutMs`, 60 s by default), `failed` if it could not start. */
function whenClosed(child: ReturnType<typeof spawn>, timeoutMs: number | undefined, failed: (e: Error) => void, done: (code: number | null) => void): void {
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs ?? 60_000);
  child.on('error', (e) => {
    clearTimeout(timer);
    failed(e);
  });
  child.on('close', (code) => {
    clearTimeout(timer);
    done(code);
  });
}

/** Runs `kompoxops ARGS` (or another binary) and collects its exit code and output. */
export function runCli(args: string[], o: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, NO_COLOR: '1', ...o.env })) if (v !== undefined) env[k] = v;
    const child = spawn(process.execPath, [...(o.nodeArgs ?? []), o.script ?? BIN[o.bin ?? 'kompoxops'], ...args], {
      cwd: o.cwd ?? ROOT,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    whenClosed(child, o.timeoutMs, reject, (code) => {
      const stdoutBytes = Buffer.concat(out);
      resolve({ code, stdout: stdoutBytes.toString('utf8'), stdoutBytes, stderr });
    });
    child.stdin.end(o.stdin ?? '');
  });
}

/** tsx's loader as a URL for `node --import`, so a spawned script may be TypeScript from any working directory. */
export const TSX = import.meta.resolve('tsx');

/** A line of a stack trace, as node prints it. */
export const STACK_LINE = /^\s+at .+/m;

/** Whether script(1) can give a command a pseudo-terminal here (CLI tests of what is drawn on a terminal skip without). */
export function canRunOnTty(): boolean {
  const r = spawnSync('script', ['-qec', 'true', '/dev/null'], { stdio: 'ignore' });
  return r.status === 0;
}

export interface TtyOptions {
  cwd?: string;
  /** The terminal's width (stty cols); default: none, which node reads as 0 columns. */
  columns?: number;
  /** A file redirected into stdin (`< FILE`); default: the terminal. */
  stdinFile?: string;
  /** A file stdout is redirected to (`> FILE`); default: the terminal. */
  stdoutFile?: string;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

/**
 * Runs `kompoxops ARGS` on a pseudo-terminal (script(1)), as a user at a
 * terminal would: its exit code and everything the terminal showed (stdout
 * and stderr together, with the carriage returns and escapes). Asynchronous,
 * so a fake API server in this process keeps answering.
 */
export function runCliOnTty(args: string[], o: TtyOptions = {}): Promise<{ code: number | null; screen: string }> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  let cmd = [process.execPath, BIN.kompoxops, ...args].map(quote).join(' ');
  if (o.stdinFile) cmd += ` < ${quote(o.stdinFile)}`;
  if (o.stdoutFile) cmd += ` > ${quote(o.stdoutFile)}`;
  if (o.columns) cmd = `stty cols ${o.columns}; ${cmd}`;
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = {};
    // a terminal that can draw in place, whatever this process runs under (a CI runner may say TERM=dumb)
    for (const [k, v] of Object.entries({ ...process.env, NO_COLOR: '1', TERM: 'xterm', ...o.env })) if (v !== undefined) env[k] = v;
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { cwd: o.cwd ?? ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let screen = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (screen += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (screen += d));
    whenClosed(child, o.timeoutMs, reject, (code) => resolve({ code, screen }));
  });
}

/**
 * Runs `kompoxops ARGS | READER` in bash, as a user's pipeline would (e.g.
 * `head -c 100`: a reader that goes away early): kompoxops's exit code
 * (PIPESTATUS) and stderr. Asynchronous, so a fake API server in this process
 * keeps answering.
 */
export function runCliPiped(args: string[], reader: string, o: { cwd?: string; timeoutMs?: number } = {}): Promise<{ code: number | null; stderr: string }> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const cmd = `${[process.execPath, BIN.kompoxops, ...args].map(quote).join(' ')} | ${reader} > /dev/null; exit "\${PIPESTATUS[0]}"`;
  return new Promise((resolve, reject) => {
    // a process group of its own: a timeout kills the whole pipeline (kompoxops holds the stderr pipe too)
    const child = spawn('bash', ['-c', cmd], { cwd: o.cwd ?? ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, o.timeoutMs ?? 60_000);
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}
