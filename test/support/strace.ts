// strace's record of system calls, for tests of their order (durability:
// a sync before the rename that publishes what it synced).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

/** Whether strace runs here (Linux, installed, allowed to trace). */
export const straceUsable = (() => {
  if (process.platform !== 'linux') return false;
  const r = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', 'true'], { stdio: 'ignore' });
  return r.status === 0;
})();

/** The system calls the durability tests follow: syncs, and the renames and links that publish. */
export const SYNC_AND_NAMING_CALLS = 'fsync,fdatasync,syncfs,rename,renameat,renameat2,link,linkat';

/** One traced system call: where its entry and its return are in the trace (one index when it did not block). */
export interface Call {
  pid: string;
  name: string;
  /** Its arguments as strace printed them (-y: descriptors with their paths). */
  args: string;
  entry: number;
  exit: number;
  result: string;
}

/**
 * strace -f output as calls in order. A call another thread interrupted is
 * two lines: `NAME(ARGS <unfinished ...>` then `<... NAME resumed>REST) = R`.
 */
export function parseTrace(text: string): Call[] {
  const calls: Call[] = [];
  const open = new Map<string, Call>();
  for (const [i, line] of text.split('\n').entries()) {
    const resumed = /^(\d+)\s+<\.\.\. (\w+) resumed>(.*)\)\s+= (.*)$/.exec(line);
    if (resumed) {
      const c = open.get(`${resumed[1]} ${resumed[2]}`);
      if (c) {
        c.args += resumed[3];
        c.exit = i;
        c.result = resumed[4]!;
        open.delete(`${resumed[1]} ${resumed[2]}`);
      }
      continue;
    }
    const unfinished = /^(\d+)\s+(\w+)\((.*) <unfinished \.\.\.>$/.exec(line);
    if (unfinished) {
      const c: Call = { pid: unfinished[1]!, name: unfinished[2]!, args: unfinished[3]!, entry: i, exit: Number.POSITIVE_INFINITY, result: '' };
      calls.push(c);
      open.set(`${c.pid} ${c.name}`, c);
      continue;
    }
    const whole = /^(\d+)\s+(\w+)\((.*)\)\s+= (.*)$/.exec(line);
    if (whole) calls.push({ pid: whole[1]!, name: whole[2]!, args: whole[3]!, entry: i, exit: i, result: whole[4]! });
  }
  return calls;
}

const SYNCS = new Set(['fsync', 'fdatasync', 'syncfs']);
const NAMINGS = new Set(['rename', 'renameat', 'renameat2', 'link', 'linkat']);

/** The successful sync calls on a descriptor of `path` (strace -y prints `N</path>`). */
export function syncsOf(calls: Call[], path: string): Call[] {
  return calls.filter((c) => SYNCS.has(c.name) && c.result.startsWith('0') && c.args.includes(`<${path}>`));
}

/** The successful rename or link calls whose target is `to`. */
export function namingsTo(calls: Call[], to: string): Call[] {
  return calls.filter((c) => NAMINGS.has(c.name) && c.result.startsWith('0') && new RegExp(`"${escape(to)}"(, \\w+)?$`).test(c.args));
}

/** The successful rename or link calls whose source matches `from`. */
export function namingsFrom(calls: Call[], from: RegExp): Call[] {
  return calls.filter((c) => NAMINGS.has(c.name) && c.result.startsWith('0') && from.test(c.args.split(', ').find((a) => a.startsWith('"')) ?? ''));
}

export function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Asserts that a sync of `synced` returned before the (first) naming `naming` started. */
export function syncedBefore(calls: Call[], synced: string | RegExp, naming: Call | undefined, what: string): void {
  assert.ok(naming, `${what}: the rename/link that makes it visible was traced`);
  const syncs = calls.filter((c) => SYNCS.has(c.name) && c.result.startsWith('0') && (typeof synced === 'string' ? c.args.includes(`<${synced}>`) : synced.test(c.args)));
  assert.ok(
    syncs.some((s) => s.exit < naming.entry),
    `${what}: synced before its rename/link (syncs of it at trace lines ${JSON.stringify(syncs.map((s) => s.exit))}; the rename/link at ${naming.entry})`,
  );
}

/** Asserts that the directory `dir` was synced after every one of `namings` returned. */
export function dirSyncedAfter(calls: Call[], dir: string, namings: Call[], what: string): void {
  const last = Math.max(...namings.map((n) => n.exit));
  const syncs = syncsOf(calls, dir);
  assert.ok(
    syncs.some((s) => s.entry > last),
    `${what}: the directory ${dir} synced after the rename/link (syncs of it at trace lines ${JSON.stringify(syncs.map((s) => s.entry))}; the last rename/link at ${last})`,
  );
}

