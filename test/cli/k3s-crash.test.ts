// Fault injection: the K3s driver's data commands, run through the real CLI on
// this machine (the K3s node is local: no SSH), SIGKILLed part-way (as the
// OOM killer or a power cut would end them, with no cleanup of their own).
// After every kill: no new disk or snapshot is listed, or only a complete one
// that verifies; an export's file at its final name is absent or complete,
// its `.sha256` right; the source disk and the current disk are unchanged;
// no child process of the CLI lives on (locally the driver spawns none: no
// orphan can go on writing). Then the same command, run again, succeeds, and
// the leftovers of the kills (dot-named temp entries) are never listed and
// are swept once old.
//
// Kill points: a first, complete run of each command measures its data work
// (from the moment its temp entry appears to its exit); the kills land at
// fractions of that, counted from the same moment, so they spread over the
// work whatever this machine's speed. Where a crash window is a few
// microseconds wide (between two renames), strace kills the CLI exactly
// before the system call that opens it (skipped without a usable strace).
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestTree } from '../../src/archive/archive.js';
import { LEFTOVER_AGE_MS } from '../../src/providers/k3s/driver.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { BIN, runCli, type CliResult } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { ONE_VOLUME_COMPOSE, k3sOpsYaml } from '../support/ops-yaml.js';

/** Fractions of a command's data work at which it is killed. */
const KILL_AT = [0, 0.25, 0.5, 0.75, 0.95];

const strace = (() => {
  if (process.platform !== 'linux') return false;
  const r = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', 'true'], { stdio: 'ignore' });
  return r.status === 0;
})();

const opsYaml = (dir: string): string => k3sOpsYaml(dir, { app: 'crash', domain: 'example.com', clusterSettings: { ACME_EMAIL: 'admin@example.com' }, volumes: [{ name: 'default', size: '1Gi' }] });

const COMPOSE = ONE_VOLUME_COMPOSE;

/** This host and pid namespace as an export's temp file names them (`{host}@{pid namespace inode}`). */
const HOST = process.platform === 'linux' ? `${encodeURIComponent(hostname())}@${/\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))![1]}` : '';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Running {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
  stdout(): Buffer;
  /** ms since start when it exited (set once it has) */
  endedAt?: number;
  startedAt: number;
}

let dir = '';

function start(args: string[], opts: { strace?: string[]; env?: Record<string, string> } = {}): Running {
  const argv = [BIN.kompoxops, ...args];
  const env = { ...process.env, NO_COLOR: '1', ...opts.env };
  const child = opts.strace
    ? spawn('strace', ['-f', '-qq', '-o', '/dev/null', ...opts.strace, process.execPath, ...argv], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, argv, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const r: Running = {
    child,
    startedAt: performance.now(),
    stderr: () => err,
    stdout: () => Buffer.concat(out),
    exited: new Promise((resolve) => {
      // 'close': stdout and stderr drained too
      child.on('close', (code, signal) => {
        r.endedAt = performance.now() - r.startedAt;
        resolve({ code, signal });
      });
    }),
  };
  return r;
}

async function cli(args: string[]): Promise<CliResult> {
  return runCli(args, { cwd: dir, timeoutMs: 60_000 });
}

async function ok(args: string[]): Promise<CliResult> {
  const r = await cli(args);
  assert.equal(r.code, 0, `kompoxops ${args.join(' ')}: ${r.stderr}`);
  return r;
}

/** A process's name (`comm`), or undefined once it is gone. */
function commOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  } catch {
    return undefined;
  }
}

/** The processes whose parent is `pid` (Linux: /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Of the children a CLI had at its kill, those that are work living on after it. `sync -f DIR` (a disk's
 * one syncfs before its rename) makes and renames nothing: it only flushes what was written, so one
 * still running is not. A child caught between fork and exec still carries the CLI's own name (`cliComm`),
 * so each is judged once it has exec'd or ended: one that has not yet is waited for (up to 30 s: a loaded
 * machine can take seconds to schedule it, and this is patience, not a measure); one that has exec'd
 * has 2 s to end, as before.
 */
async function livingWork(children: number[], cliComm: string | undefined): Promise<string[]> {
  const started = performance.now();
  for (;;) {
    const left = children.map((pid) => ({ pid, comm: commOf(pid) })).filter((c) => c.comm !== undefined && c.comm !== 'sync');
    const forking = left.filter((c) => c.comm === cliComm);
    const waited = performance.now() - started;
    if (left.length === 0 || (forking.length === 0 && waited > 2000) || waited > 30_000) return left.map((c) => `${c.pid} (${c.comm})`);
    await sleep(20);
  }
}

/** Waits until `started` holds (polled every ms) or the process has ended; the ms since its start, or undefined when it ended first. */
async function whenStarted(r: Running, started: () => boolean): Promise<number | undefined> {
  for (;;) {
    if (started()) return performance.now() - r.startedAt;
    if (r.endedAt !== undefined) return undefined;
    await sleep(1);
  }
}

interface KillRecord {
  /** ms after the work started */
  delayMs: number;
  /** true when the command had ended before the kill came */
  finished: boolean;
  code: number | null;
  signal: string | null;
  children: number[];
  /** the CLI's pid */
  pid: number;
  /** the CLI's name (`comm`) at its kill: what its children carry until they exec */
  comm?: string;
}

/**
 * Runs ARGS and SIGKILLs it DELAY ms after `started` holds (its temp entry
 * appeared); the processes it had started, alive at the kill, are recorded.
 */
async function runAndKill(args: string[], started: () => boolean, delayMs: number): Promise<KillRecord & { run: Running }> {
  const r = start(args);
  const t0 = await whenStarted(r, started);
  if (t0 !== undefined) {
    const until = r.startedAt + t0 + delayMs;
    while (r.endedAt === undefined && performance.now() < until) await sleep(Math.min(1, until - performance.now()));
  }
  let children: number[] = [];
  let comm: string | undefined;
  if (r.endedAt === undefined) {
    comm = commOf(r.child.pid!);
    children = childrenOf(r.child.pid!);
    r.child.kill('SIGKILL');
  }
  const { code, signal } = await r.exited;
  return { run: r, delayMs, finished: signal !== 'SIGKILL', code, signal, children, pid: r.child.pid!, comm };
}

/** A complete run: its data work's duration (from `started` to exit) and the result. */
async function timedRun(args: string[], started: () => boolean): Promise<{ workMs: number; run: Running }> {
  const r = start(args);
  const t0 = (await whenStarted(r, started)) ?? 0;
  const { code } = await r.exited;
  assert.equal(code, 0, `kompoxops ${args.join(' ')}: ${r.stderr()}`);
  return { workMs: Math.max(r.endedAt! - t0, 1), run: r };
}

function visible(d: string): string[] {
  return existsSync(d) ? readdirSync(d).filter((n) => !n.startsWith('.')).sort() : [];
}

function dotEntries(d: string): string[] {
  return existsSync(d) ? readdirSync(d).filter((n) => n.startsWith('.')).sort() : [];
}

function sha256File(p: string): string {
  return createHash('sha256').update(readFileSync(p)).digest('hex');
}

async function digest(dataDir: string): Promise<string> {
  return (await digestTree(new LocalHostFs(), dataDir)).treeDigest;
}

/** Sets the mtime of every dot entry and temp file (`*.tmp-*`) of `d` two leftover ages back: what a crash long ago would have left. */
function ageLeftovers(d: string): string[] {
  const old = new Date(Date.now() - 2 * LEFTOVER_AGE_MS);
  const names = existsSync(d) ? readdirSync(d).filter((n) => n.startsWith('.') || n.includes('.tmp-')) : [];
  for (const n of names) utimesSync(join(d, n), old, old);
  return names;
}

interface DiskJson {
  name: string;
  current: boolean;
  id: string;
}
interface SnapshotJson {
  name: string;
  id: string;
  sha256: string | null;
}

async function diskList(): Promise<DiskJson[]> {
  return JSON.parse((await ok(['disk', 'list', '-o', 'json'])).stdout) as DiskJson[];
}
async function snapshotList(): Promise<SnapshotJson[]> {
  return JSON.parse((await ok(['snapshot', 'list', '-o', 'json'])).stdout) as SnapshotJson[];
}

/** Writes the base disk's data: a few big random files and many small ones (with a symlink and an empty dir). */
function fillDisk(data: string): void {
  for (let i = 0; i < 4; i++) writeFileSync(join(data, `big-${i}.bin`), randomBytes(12 * 1024 * 1024));
  for (let d = 0; d < 20; d++) {
    mkdirSync(join(data, `dir-${d}`));
    for (let f = 0; f < 50; f++) writeFileSync(join(data, `dir-${d}`, `f-${f}.txt`), randomBytes(200 + ((d * 50 + f) % 7) * 700).toString('base64'));
  }
  mkdirSync(join(data, 'empty'));
  symlinkSync('dir-0/f-0.txt', join(data, 'link'));
}

describe('K3s data commands killed part-way (SIGKILL, local node)', { skip: process.platform !== 'linux' ? 'needs Linux (/proc)' : false }, () => {
  let fake: FakeKube;
  let diskVolDir = '';
  let snapVolDir = '';
  let baseData = '';
  let baseDigest = '';
  /** Disks and snapshots that completed (and so may be listed) */
  const disks = new Set<string>(['base']);
  const snapshots = new Set<string>();
  /** Snapshots whose archive was checked against their recorded SHA-256 */
  const verified = new Set<string>();
  /** A complete export of the base disk (made by the export test, imported by the import test). */
  let archive = '';

  before(async () => {
    fake = await startFakeKube({ controllers: false });
    // tmpfs when there is one: the kills are about timing, not the disk's speed
    const parent = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
    dir = mkdtempSync(join(parent, 'kompox-crash-'));
    mkdirSync(join(dir, 'disks'));
    mkdirSync(join(dir, 'snapshots'));
    mkdirSync(join(dir, 'out'));
    copyFileSync(fake.kubeconfigPath, join(dir, 'kubeconfig'));
    writeFileSync(join(dir, 'kompoxops.yml'), opsYaml(dir));
    writeFileSync(join(dir, 'compose.yml'), COMPOSE);
    const base = JSON.parse((await ok(['disk', 'create', '-N', 'base', '-o', 'json'])).stdout) as DiskJson;
    baseData = base.id;
    diskVolDir = join(baseData, '..', '..');
    snapVolDir = diskVolDir.replace(join(dir, 'disks'), join(dir, 'snapshots'));
    fillDisk(baseData);
    baseDigest = await digest(baseData);
    await ok(['disk', 'attach', '-N', 'base']);
  });

  after(async () => {
    await fake?.close();
    if (dir) await new LocalHostFs().rm(dir);
  });

  /** The invariants after a kill: only complete disks and snapshots, the base disk unchanged and current. */
  async function checkNothingHalfMade(t: TestContext, what: string, opts: { cli?: boolean } = {}): Promise<void> {
    assert.deepEqual(visible(diskVolDir), [...disks].sort(), `${what}: disk directories`);
    // a snapshot is its archive and its metadata; what else may be there is a leftover never listed:
    // a metadata file's temp, or an archive without metadata (a kill between the two renames)
    const names = visible(snapVolDir);
    const complete = names.filter((n) => n.endsWith('.json') && names.includes(n.replace(/\.json$/, '.tar.zst'))).map((n) => n.slice(0, -'.json'.length));
    assert.deepEqual(complete.sort(), [...snapshots].sort(), `${what}: snapshots (archive and metadata)`);
    const others = names.filter((n) => !complete.some((c) => n === `${c}.json` || n === `${c}.tar.zst`));
    assert.deepEqual(others.filter((n) => !n.includes('.json.tmp-') && !n.endsWith('.tar.zst')), [], `${what}: nothing else in the snapshot directory`);
    assert.equal(await digest(baseData), baseDigest, `${what}: the base disk is unchanged`);
    if (opts.cli === false) return;
    // the product's own view
    const listed = await diskList();
    assert.deepEqual(listed.map((d) => d.name).sort(), [...disks].sort(), `${what}: disk list`);
    assert.deepEqual(listed.filter((d) => d.current).map((d) => d.name), ['base'], `${what}: the current disk`);
    const snaps = await snapshotList();
    assert.deepEqual(snaps.map((s) => s.name).sort(), [...snapshots].sort(), `${what}: snapshot list`);
    for (const s of snaps) {
      if (verified.has(s.name)) continue;
      assert.equal(sha256File(s.id), s.sha256, `${what}: snapshot ${s.name} verifies`);
      verified.add(s.name);
    }
    t.diagnostic(`${what}: leftovers ${JSON.stringify({ disks: dotEntries(diskVolDir), snapshots: [...dotEntries(snapVolDir), ...others] })}`);
  }

  /**
   * Kills `args(i)` at each point of KILL_AT (`made(i)`: the name it makes, when it
   * completes before the kill comes); returns the records.
   */
  async function killSeries(
    t: TestContext,
    label: string,
    args: (i: number) => string[],
    started: (i: number) => () => boolean,
    workMs: number,
    made: (i: number) => void,
    at = KILL_AT,
    landed: (i: number) => Promise<boolean> = async () => false,
  ) {
    const records: KillRecord[] = [];
    for (const [i, f] of at.entries()) {
      const k = await runAndKill(args(i), started(i), Math.round(f * workMs));
      records.push(k);
      assert.deepEqual(await livingWork(k.children, k.comm), [], `${label} #${i}: the CLI has no child processes (nothing lives on after it)`);
      if (k.finished) {
        assert.equal(k.code, 0, `${label} #${i} ended before the kill: ${k.run.stderr()}`);
        made(i);
      } else if (await landed(i)) {
        // killed after its last rename, before it exited: what it made is in place, and whole
        t.diagnostic(`${label} #${i}: killed after what it made was in place`);
        made(i);
      }
      await checkNothingHalfMade(t, `${label} killed at ${k.delayMs} ms of ${Math.round(workMs)}`, { cli: false });
    }
    t.diagnostic(`${label}: work ${Math.round(workMs)} ms; kills ${records.map((r) => `${r.delayMs}ms:${r.finished ? 'completed' : 'killed'}`).join(', ')}`);
    return records;
  }

  /** A dot-named temp entry of `name` appeared in `d` (the driver's `.tmp-{name}-{suffix}`), or `name` itself. */
  const tmpOf = (d: string, name: string) => () => existsSync(d) && readdirSync(d).some((n) => n.startsWith(`.tmp-${name}-`) || n === name || n === `${name}.tar.zst`);
  /** The export's temp file (`.{file}.tmp-{pid}-{time}`) or the file appeared. */
  const exportTmp = (file: string) => () => readdirSync(join(dir, 'out')).some((n) => n.startsWith(`.${file}.tmp-`) || n === file);
  /** Disk `name` is in place (a kill that came after its rename): it must then be whole, the base disk's data. */
  const diskLanded = (name: string) => async (): Promise<boolean> => {
    if (!existsSync(join(diskVolDir, name))) return false;
    assert.equal(await digest(join(diskVolDir, name, 'data')), baseDigest, `${name}: in place, so whole`);
    return true;
  };

  test('disk export -O FILE: the file is absent or a complete archive with its checksum; the next export succeeds', async (t) => {
    const ref = await timedRun(['disk', 'export', '-N', 'base', '-O', 'out/ref.tar.zst'], exportTmp('ref.tar.zst'));
    archive = join(dir, 'out', 'ref.tar.zst');
    const records = await killSeries(
      t,
      'disk export -O FILE',
      (i) => ['disk', 'export', '-N', 'base', '-O', `out/e${i}.tar.zst`],
      (i) => exportTmp(`e${i}.tar.zst`),
      ref.workMs,
      () => undefined,
    );
    for (const [i, k] of records.entries()) {
      const file = join(dir, 'out', `e${i}.tar.zst`);
      if (!existsSync(file)) {
        assert.ok(!k.finished, `e${i}: a completed export wrote its file`);
        continue;
      }
      // at its final name only complete: its checksum beside it, and it imports (verified) below
      assert.equal(readFileSync(`${file}.sha256`, 'utf8'), `${sha256File(file)}  e${i}.tar.zst\n`, `e${i}: its .sha256`);
      await ok(['disk', 'import', `out/e${i}.tar.zst`, '-N', `check-e${i}`]);
      assert.equal(await digest(join(diskVolDir, `check-e${i}`, 'data')), baseDigest);
      disks.add(`check-e${i}`);
    }
    await checkNothingHalfMade(t, 'after the killed exports');
    // the next run to a killed run's file succeeds, and removes the temp file the kill left (its pid is dead)
    const again = records.findIndex((k, i) => !k.finished && !existsSync(join(dir, 'out', `e${i}.tar.zst`)));
    assert.ok(again >= 0, 'one export was killed before its file took its name');
    const pid = records[again]!.pid;
    const left = dotEntries(join(dir, 'out')).filter((n) => n.startsWith(`.e${again}.tar.zst.`));
    assert.deepEqual(
      left.map((n) => n.replace(/-[0-9a-z]+$/, '')),
      [`.e${again}.tar.zst.tmp-${HOST}-${pid}`],
      `the kill left its temp file, named with this host and its pid (${left.join(', ')})`,
    );
    const r = await ok(['disk', 'export', '-N', 'base', '-O', `out/e${again}.tar.zst`]);
    const file = join(dir, 'out', `e${again}.tar.zst`);
    assert.equal(readFileSync(`${file}.sha256`, 'utf8'), `${sha256File(file)}  e${again}.tar.zst\n`);
    assert.deepEqual(dotEntries(join(dir, 'out')).filter((n) => n.startsWith(`.e${again}.tar.zst.`)), [], 'the temp file of the killed export was removed');
    assert.ok(r.stderr.includes(`removed ${join(dir, 'out', left[0]!)} left by an interrupted export (pid ${pid})`), r.stderr);
    t.diagnostic(`export leftovers in the output directory: ${dotEntries(join(dir, 'out')).join(', ') || 'none'}`);
  });

  test('disk export -O FILE keeps the temp files it cannot prove dead: a live pid, another host or pid namespace, an older version (those three once unchanged for a day are removed)', async () => {
    const out = join(dir, 'out');
    // a live process of this host (whose pid an export's temp could name), and a dead one
    const live = spawn('sleep', ['60'], { stdio: 'ignore' });
    const dead = spawn('true', [], { stdio: 'ignore' });
    await new Promise((r) => dead.once('close', r));
    try {
      const host = encodeURIComponent(hostname());
      const kept = [
        `.k.tar.zst.tmp-${HOST}-${live.pid}-abc`,
        `.k.tar.zst.sha256.tmp-${HOST}-${live.pid}-abc`,
        `.k.tar.zst.tmp-other-host@${HOST.split('@')[1]}-${dead.pid}-abc`,
        // a container of the same host name (another pid namespace), or without one known
        `.k.tar.zst.tmp-${host}@1-${dead.pid}-abc`,
        `.k.tar.zst.tmp-${host}-${dead.pid}-abc`,
        // an older version's
        `.k.tar.zst.tmp-${dead.pid}-abc`,
      ];
      const gone = [`.k.tar.zst.tmp-${HOST}-${dead.pid}-abc`, `.k.tar.zst.sha256.tmp-${HOST}-${dead.pid}-abc`];
      // another machine's, another container's and an older version's, each unchanged for 25 hours (a live export writes as it goes)
      const aged = [`.k.tar.zst.tmp-other-host@${HOST.split('@')[1]}-${dead.pid}-old`, `.k.tar.zst.tmp-${host}@1-${dead.pid}-old`, `.k.tar.zst.sha256.tmp-${dead.pid}-old`];
      // this namespace's live process: kept however old (its pid proves it alive)
      kept.push(`.k.tar.zst.tmp-${HOST}-${live.pid}-old`);
      for (const n of [...kept, ...gone, ...aged]) writeFileSync(join(out, n), 'partial archive');
      const dayAgo = new Date(Date.now() - 25 * 3600_000);
      for (const n of [...aged, `.k.tar.zst.tmp-${HOST}-${live.pid}-old`]) utimesSync(join(out, n), dayAgo, dayAgo);
      const r = await ok(['disk', 'export', '-N', 'base', '-O', 'out/k.tar.zst']);
      assert.deepEqual(dotEntries(out).filter((n) => n.startsWith('.k.tar.zst.')), [...kept].sort(), "only the temps of a dead process of this host, and others' unchanged for a day, were removed");
      for (const n of kept) assert.equal(readFileSync(join(out, n), 'utf8'), 'partial archive');
      for (const n of gone) assert.ok(r.stderr.includes(`removed ${join(out, n)} left by an interrupted export (pid ${dead.pid})`), r.stderr);
      for (const n of aged) assert.ok(r.stderr.includes(`removed ${join(out, n)} left by an interrupted export (by another machine, container or version; unchanged for 25 h)`), r.stderr);
    } finally {
      live.kill();
    }
  });

  test('disk export -O - (a pipe): a killed export leaves a cut stream that no import accepts', async (t) => {
    const started = (r: () => Running | undefined) => () => (r()?.stdout().length ?? 0) > 0;
    let cur: Running | undefined;
    const args = ['disk', 'export', '-N', 'base', '-O', '-'];
    // the work starts with the first byte on stdout
    cur = start(args);
    const t0 = (await whenStarted(cur, started(() => cur))) ?? 0;
    assert.equal((await cur.exited).code, 0, cur.stderr());
    const workMs = Math.max(cur.endedAt! - t0, 1);
    const full = cur.stdout();
    for (const [i, f] of KILL_AT.entries()) {
      cur = start(args);
      const r = cur;
      const s0 = await whenStarted(r, started(() => r));
      if (s0 !== undefined) {
        const until = r.startedAt + s0 + f * workMs;
        while (r.endedAt === undefined && performance.now() < until) await sleep(1);
      }
      let children: number[] = [];
      let comm: string | undefined;
      if (r.endedAt === undefined) {
        comm = commOf(r.child.pid!);
        children = childrenOf(r.child.pid!);
        r.child.kill('SIGKILL');
      }
      const { signal } = await r.exited;
      assert.deepEqual(await livingWork(children, comm), []);
      const got = r.stdout();
      t.diagnostic(`-O - #${i}: ${signal === 'SIGKILL' ? 'killed' : 'completed'} after ${got.length} of ${full.length} bytes`);
      // the pipe's reader holds what came before the kill; an import refuses anything short of the whole archive
      if (signal === 'SIGKILL' && got.length < full.length && i === 2) {
        const p = join(dir, 'out', `cut-${i}.tar.zst`);
        writeFileSync(p, got);
        const imp = await cli(['disk', 'import', `out/cut-${i}.tar.zst`, '-N', `cut-${i}`]);
        assert.notEqual(imp.code, 0, `a cut archive (${got.length} bytes) was imported: ${imp.stdout}`);
        assert.match(imp.stderr, /no disk was created/);
      }
      await checkNothingHalfMade(t, `disk export -O - killed #${i}`, { cli: false });
    }
    // (nothing under the roots to list: the disk and snapshot lists were checked after the file exports)
    await checkNothingHalfMade(t, 'after the killed exports to a pipe', { cli: false });
  });

  test('disk import FILE: no disk until it is complete and verified; the same import then succeeds; old leftovers are swept', async (t) => {
    assert.ok(archive, 'the export test made the archive');
    const ref = await timedRun(['disk', 'import', 'out/ref.tar.zst', '-N', 'imp-ref'], tmpOf(diskVolDir, 'imp-ref'));
    disks.add('imp-ref');
    assert.equal(await digest(join(diskVolDir, 'imp-ref', 'data')), baseDigest);
    const records = await killSeries(
      t,
      'disk import',
      (i) => ['disk', 'import', 'out/ref.tar.zst', '-N', `imp-${i}`],
      (i) => tmpOf(diskVolDir, `imp-${i}`),
      ref.workMs,
      (i) => disks.add(`imp-${i}`),
      KILL_AT,
      (i) => diskLanded(`imp-${i}`)(),
    );
    for (const [i, k] of records.entries()) if (k.finished) assert.equal(await digest(join(diskVolDir, `imp-${i}`, 'data')), baseDigest);
    await checkNothingHalfMade(t, 'after the killed imports');
    await rerunAfterKills(t, records, (i) => ['disk', 'import', 'out/ref.tar.zst', '-N', `imp-${i}`], (i) => `imp-${i}`);
  });

  /** Runs a killed run's command again once its leftovers are old: it succeeds, makes a verified disk and sweeps them. */
  async function rerunAfterKills(t: TestContext, records: KillRecord[], args: (i: number) => string[], name: (i: number) => string): Promise<void> {
    // a run killed before what it made was in place (one killed after it made a whole disk leaves nothing to redo)
    const i = records.findIndex((k, j) => !k.finished && !disks.has(name(j)));
    if (i < 0) return;
    const aged = ageLeftovers(diskVolDir);
    t.diagnostic(`aged leftovers: ${aged.join(', ') || 'none'}`);
    await ok(args(i));
    disks.add(name(i));
    assert.equal(await digest(join(diskVolDir, name(i), 'data')), baseDigest);
    assert.deepEqual(dotEntries(diskVolDir), [], 'the leftovers of the kills were swept');
    await checkNothingHalfMade(t, `after ${args(i).slice(0, 2).join(' ')} again`, { cli: false });
  }

  test('snapshot create: no snapshot until its archive and metadata are in place; the same create then succeeds; old leftovers are swept', async (t) => {
    const ref = await timedRun(['snapshot', 'create', '-N', 'snap-ref'], tmpOf(snapVolDir, 'snap-ref'));
    snapshots.add('snap-ref');
    const records = await killSeries(
      t,
      'snapshot create',
      (i) => ['snapshot', 'create', '-N', `snap-${i}`],
      (i) => tmpOf(snapVolDir, `snap-${i}`),
      ref.workMs,
      (i) => snapshots.add(`snap-${i}`),
      KILL_AT,
      async (i) => existsSync(join(snapVolDir, `snap-${i}.json`)),
    );
    await checkNothingHalfMade(t, 'after the killed snapshots');
    // (an archive left without metadata holds its name until swept: see the strace test below)
    const i = records.findIndex((k, j) => !k.finished && !existsSync(join(snapVolDir, `snap-${j}.tar.zst`)));
    if (i >= 0) {
      const aged = ageLeftovers(snapVolDir);
      t.diagnostic(`aged leftovers: ${aged.join(', ') || 'none'}`);
      await ok(['snapshot', 'create', '-N', `snap-${i}`]);
      snapshots.add(`snap-${i}`);
      assert.deepEqual(dotEntries(snapVolDir), [], 'the leftovers of the kills were swept');
      await checkNothingHalfMade(t, 'after snapshot create again', { cli: false });
    }
  });

  test('snapshot restore: no disk until it is complete and verified; the same restore then succeeds', async (t) => {
    const ref = await timedRun(['snapshot', 'restore', '-N', 'snap-ref', '--disk-name', 'rest-ref'], tmpOf(diskVolDir, 'rest-ref'));
    disks.add('rest-ref');
    assert.equal(await digest(join(diskVolDir, 'rest-ref', 'data')), baseDigest);
    const records = await killSeries(
      t,
      'snapshot restore',
      (i) => ['snapshot', 'restore', '-N', 'snap-ref', '--disk-name', `rest-${i}`],
      (i) => tmpOf(diskVolDir, `rest-${i}`),
      ref.workMs,
      (i) => disks.add(`rest-${i}`),
      KILL_AT,
      (i) => diskLanded(`rest-${i}`)(),
    );
    await checkNothingHalfMade(t, 'after the killed restores');
    assert.equal(sha256File(join(snapVolDir, 'snap-ref.tar.zst')), (await snapshotList()).find((s) => s.name === 'snap-ref')!.sha256, 'the snapshot is unchanged');
    await rerunAfterKills(t, records, (i) => ['snapshot', 'restore', '-N', 'snap-ref', '--disk-name', `rest-${i}`], (i) => `rest-${i}`);
  });

  test('disk create -S DISK (a copy): no disk until the copy is complete and verified; the same copy then succeeds', async (t) => {
    const ref = await timedRun(['disk', 'create', '-N', 'copy-ref', '-S', 'base'], tmpOf(diskVolDir, 'copy-ref'));
    disks.add('copy-ref');
    assert.equal(await digest(join(diskVolDir, 'copy-ref', 'data')), baseDigest);
    const records = await killSeries(
      t,
      'disk create -S DISK',
      (i) => ['disk', 'create', '-N', `copy-${i}`, '-S', 'base'],
      (i) => tmpOf(diskVolDir, `copy-${i}`),
      ref.workMs,
      (i) => disks.add(`copy-${i}`),
      KILL_AT,
      (i) => diskLanded(`copy-${i}`)(),
    );
    await checkNothingHalfMade(t, 'after the killed copies');
    await rerunAfterKills(t, records, (i) => ['disk', 'create', '-N', `copy-${i}`, '-S', 'base'], (i) => `copy-${i}`);
  });

  test('disk create -S SNAPSHOT: no disk until it is complete and verified', async (t) => {
    const ref = await timedRun(['disk', 'create', '-N', 'fs-ref', '-S', 'snap-ref'], tmpOf(diskVolDir, 'fs-ref'));
    disks.add('fs-ref');
    assert.equal(await digest(join(diskVolDir, 'fs-ref', 'data')), baseDigest);
    await killSeries(
      t,
      'disk create -S SNAPSHOT',
      (i) => ['disk', 'create', '-N', `fs-${i}`, '-S', 'snap-ref'],
      (i) => tmpOf(diskVolDir, `fs-${i}`),
      ref.workMs,
      (i) => disks.add(`fs-${i}`),
      // restore's path in the driver (killed at five points above): three here
      [0.1, 0.5, 0.9],
      (i) => diskLanded(`fs-${i}`)(),
    );
    await checkNothingHalfMade(t, 'after the killed creates from a snapshot');
  });

  test('snapshot export -O FILE: the file is absent or the stored archive with its checksum', async (t) => {
    const snap = (await snapshotList()).find((s) => s.name === 'snap-ref')!;
    const ref = await timedRun(['snapshot', 'export', '-N', 'snap-ref', '-O', 'out/s-ref.tar.zst'], exportTmp('s-ref.tar.zst'));
    assert.equal(sha256File(join(dir, 'out', 's-ref.tar.zst')), snap.sha256);
    const records = await killSeries(
      t,
      'snapshot export -O FILE',
      (i) => ['snapshot', 'export', '-N', 'snap-ref', '-O', `out/s${i}.tar.zst`],
      (i) => exportTmp(`s${i}.tar.zst`),
      ref.workMs,
      () => undefined,
    );
    for (const [i] of records.entries()) {
      const file = join(dir, 'out', `s${i}.tar.zst`);
      if (!existsSync(file)) continue;
      assert.equal(sha256File(file), snap.sha256, `s${i}: complete`);
      assert.equal(readFileSync(`${file}.sha256`, 'utf8'), `${snap.sha256}  s${i}.tar.zst\n`, `s${i}: its .sha256`);
    }
    await checkNothingHalfMade(t, 'after the killed snapshot exports');
  });

  // ------------------------------------------------------------------ exact kill points (strace)

  /**
   * Runs ARGS under strace, which SIGKILLs the CLI on entry to a system call
   * of SYSCALLS (before the call runs): the first one touching `path` (which
   * must exist, and be a call's first path: strace 6 matches no other), or
   * the `when`-th one.
   * strace counts per thread: with `when`, libuv's pool has one thread, so
   * the count is the process's file calls in order.
   */
  async function killBefore(args: string[], syscalls: string, at: { path?: string; when?: number }): Promise<{ killed: boolean; stderr: string }> {
    const r = start(args, {
      // (not --seccomp-bpf, which stops only on the traced calls: with it strace 6.1 missed both the
      // when= count and -P on a descriptor in the CLI's threads, and the CLI ran past the point)
      strace: ['-e', `trace=${syscalls}`, '-e', `inject=all:signal=KILL${at.when ? `:when=${at.when}` : ''}`, ...(at.path ? ['-P', at.path] : [])],
      env: at.when ? { UV_THREADPOOL_SIZE: '1' } : {},
    });
    const { code, signal } = await r.exited;
    // strace ends as its tracee did: killed by the same signal (or exit code 128 + 9)
    return { killed: signal === 'SIGKILL' || code === 137, stderr: r.stderr() };
  }
  const WRITES = '/^(write|writev|pwrite64|pwritev|pwritev2)$';
  const RENAMES = '/^(rename|renameat|renameat2)$';
  const LINKS = '/^(link|linkat)$';

  test('disk export -O FILE killed around its .sha256: the archive is never at its name without its right checksum', { skip: strace ? false : 'no usable strace' }, async (t) => {
    // the first write to the .sha256, the first rename (the .sha256's, where it has one), the first link (the archive's)
    const points = [
      { syscalls: WRITES, sidecar: true },
      { syscalls: RENAMES, when: 1 },
      { syscalls: LINKS, when: 1 },
    ];
    for (const [i, p] of points.entries()) {
      const file = join(dir, 'out', `x${i}.tar.zst`);
      // a stale checksum beside the name (its archive was moved away): strace can name only an existing path
      writeFileSync(`${file}.sha256`, `${'0'.repeat(64)}  x${i}.tar.zst\n`);
      const r = await killBefore(['disk', 'export', '-N', 'base', '-O', `out/x${i}.tar.zst`], p.syscalls, p.sidecar ? { path: `${file}.sha256` } : { when: p.when });
      t.diagnostic(`export, kill before ${p.syscalls}${p.sidecar ? ' on its .sha256' : ` #${p.when}`}: ${r.killed ? 'killed' : 'completed'}; file ${existsSync(file) ? 'present' : 'absent'}, .sha256 ${JSON.stringify(readFileSync(`${file}.sha256`, 'utf8'))}`);
      if (!existsSync(file)) continue;
      assert.equal(readFileSync(`${file}.sha256`, 'utf8'), `${sha256File(file)}  x${i}.tar.zst\n`, `x${i}: an archive at its name has its checksum beside it`);
      await ok(['disk', 'import', `out/x${i}.tar.zst`, '-N', `check-x${i}`]);
      disks.add(`check-x${i}`);
    }
    await checkNothingHalfMade(t, 'after the exports killed around .sha256', { cli: false });
  });

  test('snapshot create killed between its archive and its metadata: nothing listed; the name is not lost', { skip: strace ? false : 'no usable strace' }, async (t) => {
    // its first rename: the metadata's (the archive takes its name by link())
    const r = await killBefore(['snapshot', 'create', '-N', 'snap-x'], RENAMES, { when: 1 });
    assert.ok(r.killed, `killed before the metadata was renamed into place: ${r.stderr}`);
    assert.ok(existsSync(join(snapVolDir, 'snap-x.tar.zst')) && !existsSync(join(snapVolDir, 'snap-x.json')), 'the archive was in place, its metadata not (the window under test)');
    assert.ok(!(await snapshotList()).some((s) => s.name === 'snap-x'), 'not listed');
    // the same create again: refused while the leftover is young (it could be a create in its last
    // milliseconds), saying what it is; once old, the next snapshot of the volume sweeps it and the name is free again
    const again = await cli(['snapshot', 'create', '-N', 'snap-x']);
    assert.equal(again.code, 1, again.stderr);
    assert.match(again.stderr, /interrupted/);
    const old = new Date(Date.now() - 2 * LEFTOVER_AGE_MS);
    utimesSync(join(snapVolDir, 'snap-x.tar.zst'), old, old);
    ageLeftovers(snapVolDir);
    await ok(['snapshot', 'create', '-N', 'snap-y']);
    snapshots.add('snap-y');
    assert.ok(!existsSync(join(snapVolDir, 'snap-x.tar.zst')), 'the old archive without metadata was swept');
    assert.deepEqual(readdirSync(snapVolDir).filter((n) => n.includes('.tmp-')), [], 'and the temp of its metadata');
    await ok(['snapshot', 'create', '-N', 'snap-x']);
    snapshots.add('snap-x');
    assert.deepEqual(dotEntries(snapVolDir), []);
    await checkNothingHalfMade(t, 'after snapshot create again', { cli: false });
  });

  test('disk import killed before its rename into place: no disk, and the same import succeeds', { skip: strace ? false : 'no usable strace' }, async (t) => {
    // its renames: kompox-disk.json into the temp directory, then the temp directory into place
    const r = await killBefore(['disk', 'import', 'out/ref.tar.zst', '-N', 'imp-x'], RENAMES, { when: 2 });
    assert.ok(r.killed, r.stderr);
    const tmp = dotEntries(diskVolDir).filter((n) => n.startsWith('.tmp-imp-x-'));
    assert.equal(tmp.length, 1, 'the complete temp directory (the window under test)');
    assert.ok(existsSync(join(diskVolDir, tmp[0]!, 'kompox-disk.json')));
    await checkNothingHalfMade(t, 'after the import killed before its rename');
    await ok(['disk', 'import', 'out/ref.tar.zst', '-N', 'imp-x']);
    disks.add('imp-x');
    assert.equal(await digest(join(diskVolDir, 'imp-x', 'data')), baseDigest);
  });
});
