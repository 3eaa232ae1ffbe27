// Timing whole processes for the benchmarks: wall time, CPU time (user+sys)
// and peak RSS from /usr/bin/time, plus the median of a series.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ProcessMeasure {
  wall: number;
  cpu: number;
  rssMiB: number;
  stdout: string;
  /** Wall-clock time (ms since the epoch) the command was started. */
  startedAt: number;
  /** The command's stderr lines, each with the milliseconds since the start it arrived at. */
  stderrLines: { ms: number; line: string }[];
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

let seq = 0;

/**
 * Runs a command under /usr/bin/time without blocking this process's event
 * loop (a benchmark may serve the command itself, e.g. a fake API server in
 * this process); throws with its stderr when it fails.
 */
export function measureProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<ProcessMeasure> {
  const timeFile = join(tmpdir(), `kompox-bench-time-${process.pid}-${seq++}`);
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '%e %U %S %M', '-o', timeFile, cmd, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const startedAt = Date.now();
    const stderrLines: ProcessMeasure['stderrLines'] = [];
    let partial = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => {
      err.push(d);
      const ms = Date.now() - startedAt;
      const lines = (partial + d.toString('utf8')).split('\n');
      partial = lines.pop()!;
      for (const line of lines) stderrLines.push({ ms, line });
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) {
        rmSync(timeFile, { force: true });
        reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${Buffer.concat(err).toString('utf8')}`));
        return;
      }
      const [wall, user, sys, rss] = readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(/\s+/).map(Number);
      rmSync(timeFile, { force: true });
      resolve({ wall: wall!, cpu: user! + sys!, rssMiB: rss! / 1024, stdout: Buffer.concat(out).toString('utf8'), startedAt, stderrLines });
    });
  });
}

/**
 * CPU seconds this process and its ended children have used so far
 * (/proc/self/stat: utime, stime, cutime, cstime; Linux only).
 */
export function selfAndChildrenCpu(): { self: number; children: number } {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  // fields 14-17 of proc(5), counted from the state field (3) after the command name
  const tick = 100; // USER_HZ: 100 on every Linux ABI Node runs on
  return { self: (f[11]! + f[12]!) / tick, children: (f[13]! + f[14]!) / tick };
}

/**
 * Watches a directory for a file (by name predicate) while a command writes
 * it: when its first bytes appeared (polled every `everyMs`, so up to that
 * much late) and when it was last written (its mtime, read at `stop`). Their
 * difference is the command's data phase, without its start-up and clean-up.
 */
export function watchFileGrowth(dir: string, match: (name: string) => boolean, everyMs = 20): { stop(finalPath: string): { firstByteAt?: number; lastWriteAt?: number } } {
  let firstByteAt: number | undefined;
  const timer = setInterval(() => {
    if (firstByteAt !== undefined) return;
    try {
      for (const name of readdirSync(dir)) {
        if (match(name) && statSync(join(dir, name)).size > 0) {
          firstByteAt = Date.now();
          return;
        }
      }
    } catch {
      // the file was renamed between readdir and stat: the next poll sees it
    }
  }, everyMs);
  return {
    stop(finalPath) {
      clearInterval(timer);
      const lastWriteAt = existsSync(finalPath) ? statSync(finalPath).mtimeMs : undefined;
      return { ...(firstByteAt !== undefined ? { firstByteAt } : {}), ...(lastWriteAt !== undefined ? { lastWriteAt } : {}) };
    },
  };
}
