// The helper pod's wait command (helperWaitCommand) run for real, as the
// container runs it: PID 1 of a PID namespace of its own with its own /proc
// (`unshare --pid --fork --mount-proc`), under busybox sh (the helper's
// image) and the system's sh; what Kompox execs in the pod joins that
// namespace (`nsenter --target --pid`), as `kubectl exec` joins the
// container's. It ends by itself once idle (a Kompox killed mid-transfer
// left its helper holding the disk for a day), and never while anything
// else runs there.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { HELPER_IDLE_CHECKS, HELPER_IDLE_CHECK_S, HELPER_WAIT, helperWaitCommand } from '../../src/convert/helper-pod.js';
import { appNamespace } from '../../src/domain/names.js';
import { connectKubeconfig } from '../../src/kube/index.js';
import { withHelperPod } from '../../src/usecases/helper-pod.js';
import { appCtx } from '../providers/k3s-fixtures.js';

const missing =
  (process.getuid?.() !== 0 ? 'needs root (a PID namespace of its own: unshare --pid)' : undefined) ??
  (spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']).status !== 0 ? 'unshare --pid --fork --mount-proc does not work here' : undefined) ??
  (spawnSync('nsenter', ['--version']).status !== 0 ? 'nsenter is missing' : undefined);

const SHELLS: [string, string[]][] = [
  ['busybox sh', existsSync('/usr/bin/busybox') ? ['/usr/bin/busybox', 'sh'] : []],
  ['the system sh', ['/bin/sh']],
];

const PERIOD_S = 1;
const CHECKS = 5;

interface Waiter {
  child: ChildProcess;
  /** The shell's PID on this machine (PID 1 in its namespace). */
  pid: number;
  ended: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The PID namespace's init: unshare's only child. */
async function nsInit(unsharePid: number): Promise<number> {
  for (let i = 0; i < 100; i++) {
    for (const e of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
      try {
        const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid === unsharePid) return Number(e);
      } catch {
        // gone meanwhile
      }
    }
    await sleep(20);
  }
  throw new Error('the namespace has no init');
}

async function startWaiter(shell: string[]): Promise<Waiter> {
  const [, , script] = helperWaitCommand(PERIOD_S, CHECKS);
  const child = spawn('unshare', ['--pid', '--fork', '--kill-child', '--mount-proc', ...shell, '-c', script!], { stdio: 'ignore' });
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((done) =>
    child.once('exit', (code, signal) => done({ code, signal, at: performance.now() })),
  );
  const w = { child, pid: await nsInit(child.pid!), ended };
  started.add(w);
  return w;
}

/** Runs argv inside the waiter's PID namespace (as an exec in the pod), returning when it has started. */
function inPod(w: Waiter, argv: string[]): ChildProcess {
  return spawn('nsenter', ['--target', String(w.pid), '--pid', '--mount', ...argv], { stdio: 'ignore' });
}

/**
 * Ends a waiter whatever it is doing: its namespace's init killed (every
 * process in the namespace dies with it), then unshare. (unshare's
 * --kill-child acts only when unshare itself ends; a SIGTERM to unshare
 * is not forwarded while it waits.)
 */
/** Every waiter started, ended by `after` too: a test that timed out never reaches its `finally`. */
const started = new Set<Waiter>();

function stop(w: Waiter): void {
  for (const pid of [w.pid, w.child.pid!]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

const still = async (w: Waiter, ms: number) => Promise.race([w.ended.then(() => false), sleep(ms).then(() => true)]);

// concurrently: the cases mostly wait
describe('the helper pod waits until it is idle (real PID namespaces)', { skip: missing ? `skipped: ${missing}` : false, concurrency: true }, () => {
  after(() => started.forEach(stop));

  test('the pod spec waits 15 minutes of idleness, checked every minute', () => {
    assert.deepEqual(HELPER_WAIT, helperWaitCommand(60, 15));
    assert.equal(HELPER_IDLE_CHECK_S * HELPER_IDLE_CHECKS, 15 * 60);
  });

  for (const [name, shell] of SHELLS) {
    const skip = shell.length ? false : `skipped: ${name} is not installed`;

    test(`${name}: alone in its namespace, it ends by itself (exit 0) after its idle checks`, { skip, timeout: 30_000 }, async () => {
      const t0 = performance.now();
      const w = await startWaiter(shell);
      try {
        const end = await w.ended;
        assert.equal(end.code, 0, 'it exits 0: the pod Succeeded, which the next transfer sweeps');
        const s = (end.at - t0) / 1000;
        assert.ok(s >= PERIOD_S * CHECKS - 0.5 && s < PERIOD_S * CHECKS + 5, `ended after ${s.toFixed(1)} s, not after ${CHECKS} idle checks of ${PERIOD_S} s`);
      } finally {
        stop(w);
      }
    });

    test(`${name}: a process exec'd into it keeps it, and the count starts again after it ends`, { skip, timeout: 40_000 }, async () => {
      const w = await startWaiter(shell);
      try {
        const exec = inPod(w, ['sleep', '9']);
        const execEnd = new Promise<number>((done) => exec.once('exit', () => done(performance.now())));
        assert.ok(await still(w, 7_500), `alive while the exec runs (idle would have ended it after ~${CHECKS} s)`);
        const execAt = await execEnd;
        const end = await w.ended;
        assert.equal(end.code, 0);
        const after = (end.at - execAt) / 1000;
        assert.ok(after >= PERIOD_S * (CHECKS - 1) - 0.5, `ended ${after.toFixed(1)} s after the exec ended: the idle count did not start again`);
      } finally {
        stop(w);
      }
    });

    test(`${name}: an exec's orphan (its parent gone) keeps it until it ends, and is reaped`, { skip, timeout: 40_000 }, async () => {
      const w = await startWaiter(shell);
      try {
        const exec = inPod(w, ['sh', '-c', 'sleep 8 & exit 0']);
        await new Promise((done) => exec.once('exit', done));
        assert.ok(await still(w, 6_500), 'alive while the orphan runs');
        const end = await w.ended;
        assert.equal(end.code, 0, 'it ends once the orphan has ended (reaped by the shell, not left a zombie)');
      } finally {
        stop(w);
      }
    });

    test(`${name}: SIGTERM (the pod deleted) ends it at once`, { skip, timeout: 20_000 }, async () => {
      const w = await startWaiter(shell);
      try {
        await sleep(300);
        const t0 = performance.now();
        process.kill(w.pid, 'SIGTERM');
        const end = await w.ended;
        assert.equal(end.code, 0);
        assert.ok(end.at - t0 < PERIOD_S * 1000 + 1500, `took ${(end.at - t0).toFixed(0)} ms`);
      } finally {
        stop(w);
      }
    });

    test(`${name}: with no /proc to read it never counts as idle (the deadline alone ends it)`, { skip, timeout: 20_000 }, async () => {
      // /proc hidden under an empty tmpfs in the namespace's own mounts, then the wait command as PID 1
      const [, , script] = helperWaitCommand(PERIOD_S, CHECKS);
      const child = spawn('unshare', ['--pid', '--fork', '--kill-child', '--mount', '/bin/sh', '-c', 'mount -t tmpfs none /proc && exec "$@"', 'sh', ...shell, '-c', script!], { stdio: 'ignore' });
      const w: Waiter = { child, pid: await nsInit(child.pid!), ended: new Promise((done) => child.once('exit', (code, signal) => done({ code, signal, at: performance.now() }))) };
      started.add(w);
      try {
        assert.ok(await still(w, PERIOD_S * (CHECKS + 3) * 1000), 'still waiting well past its idle checks');
      } finally {
        stop(w);
      }
    });
  }
});

/**
 * What the idle check relies on, listed from inside: every process of the
 * helper's PID namespace (`/proc/N/stat` lines, then `self PID`), printed by
 * an exec in it. Kubernetes runs a container's command as PID 1 of a PID
 * namespace of its own (no shareProcessNamespace) and an exec joins it.
 */
const LIST_PROCESSES = ['sh', '-c', 'for d in /proc/[0-9]*; do cat "$d/stat" 2>/dev/null && echo; done; echo "self $$"'];

/** The processes of that listing that are neither the wait (PID 1 and its `sleep`) nor the listing's own: what would keep the helper from ever being idle. */
function strangers(listing: string): { pid: number; comm: string; ppid: number }[] {
  const procs = new Map<number, { pid: number; comm: string; ppid: number }>();
  let self = -1;
  for (const line of listing.split('\n')) {
    const m = /^(\d+) \((.*)\) \S+ (\d+) /.exec(line);
    if (m) procs.set(Number(m[1]), { pid: Number(m[1]), comm: m[2]!, ppid: Number(m[3]) });
    const s = /^self (\d+)$/.exec(line);
    if (s) self = Number(s[1]);
  }
  assert.ok(self > 0 && procs.has(1), `not a listing of a PID namespace: ${listing}`);
  const ours = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = procs.get(p)?.ppid ?? 0, hops++) if (p === self) return true;
    return false;
  };
  return [...procs.values()].filter((p) => p.pid !== 1 && !(p.ppid === 1 && p.comm === 'sleep') && !ours(p.pid));
}

describe("the helper's PID namespace as the idle check sees it", () => {
  test('in a PID namespace of its own on this machine: only the wait and the exec', { skip: missing ? `skipped: ${missing}` : false, timeout: 20_000 }, async () => {
    const w = await startWaiter(['/bin/sh']);
    try {
      const out: Buffer[] = [];
      const exec = spawn('nsenter', ['--target', String(w.pid), '--pid', '--mount', ...LIST_PROCESSES], { stdio: ['ignore', 'pipe', 'inherit'] });
      exec.stdout.on('data', (c: Buffer) => out.push(c));
      await new Promise((done) => exec.once('close', done));
      const listing = Buffer.concat(out).toString();
      assert.deepEqual(strangers(listing), [], listing);
      // a process started beside it (not of the listing's own tree) is one
      const bystander = inPod(w, ['sleep', '30']);
      await sleep(300);
      const again = spawn('nsenter', ['--target', String(w.pid), '--pid', '--mount', ...LIST_PROCESSES], { stdio: ['ignore', 'pipe', 'inherit'] });
      const out2: Buffer[] = [];
      again.stdout.on('data', (c: Buffer) => out2.push(c));
      await new Promise((done) => again.once('close', done));
      assert.deepEqual(strangers(Buffer.concat(out2).toString()).map((p) => p.comm), ['sleep'], 'the other exec is seen');
      bystander.kill('SIGKILL');
    } finally {
      stop(w);
    }
  });

  const kubeconfig = process.env.KOMPOX_TEST_KUBECONFIG;
  test(
    'in a helper pod on a real cluster: PID 1 is its wait, and nothing but the exec runs beside it',
    { skip: kubeconfig ? false : 'skipped: KOMPOX_TEST_KUBECONFIG is not set (the fake kubelet runs execs on this machine, not in a pod of their own)', timeout: 300_000 },
    async () => {
      const kube = await connectKubeconfig({ path: kubeconfig!, ...(process.env.KOMPOX_TEST_CONTEXT ? { context: process.env.KOMPOX_TEST_CONTEXT } : {}) });
      const ctx = appCtx({ diskRoot: '/nonexistent', snapshotRoot: '/nonexistent' }, { app: `helper-pid-${Date.now().toString(36)}` });
      try {
        const listing = await withHelperPod(ctx, {} as never, kube, { purpose: 'transfer', disks: [], description: 'a test of its PID namespace' }, {}, async (h) => {
          const out = new PassThrough();
          const chunks: Buffer[] = [];
          out.on('data', (c: Buffer) => chunks.push(c));
          const r = await h.exec(LIST_PROCESSES, { stdout: out }, {});
          assert.equal(r.exitCode, 0);
          return Buffer.concat(chunks).toString();
        });
        const one = /^1 \((\S+)\)/m.exec(listing);
        assert.equal(one?.[1], 'sh', `PID 1 is the helper's wait (sh):\n${listing}`);
        assert.deepEqual(strangers(listing), [], listing);
      } finally {
        await kube.delete({ apiVersion: 'v1', kind: 'Namespace', name: appNamespace(ctx) }).catch(() => undefined);
      }
    },
  );
});
