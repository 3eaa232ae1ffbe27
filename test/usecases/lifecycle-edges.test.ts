// The data lifecycle's rough edges, through the real binary: quiesced
// snapshots (the app is stopped and always started again, also when the
// snapshot or the stop fails), crash leftovers (never listed, swept once
// old), -V defaulting, the documented -o json shape, progress bars only on a
// terminal, and errors as one paragraph.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readFile, readdir, rename, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { appNamespace } from '../../src/domain/names.js';
import { BIN, ROOT } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { writeSampleTree } from '../providers/k3s-fixtures.js';
import { activePods, hostFs, kompoxops, oneParagraph, treeDigest, watchReplicas, writeProject, type ReplicaHistory, type Run } from './lifecycle-support.js';
import { eventually } from '../support/kube.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ns = appNamespace({ service: { name: 'ops' }, provider: { name: 'k3s1', service: 'ops', driver: 'k3s', settings: {} }, app: { name: 'web' } as never });

describe('lifecycle edges (binary, K3s on temp dirs, fake API server)', () => {
  let fake: FakeKube;
  let replicaHistory: ReplicaHistory;
  /** While true, the app's process ignores SIGTERM: its pod stays Terminating for its grace period (manual clock: until advanced). */
  let stubborn = false;
  let dir: string;
  let diskRoot: string;
  let snapshotRoot: string;
  const ok = (r: Run) => assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.out}\nstderr: ${r.err}`);
  const replicas = () => (fake.store.get(fake.resource('apps/v1', 'Deployment')!, ns, 'web') as Any).spec.replicas as number;
  const pods = () => activePods(fake, ns).length;
  const running = () => activePods(fake, ns).filter((p) => p.status?.phase === 'Running').length;
  /** Waits until the controllers have caught up (the app runs one pod again). */
  const settled = async () => {
    await eventually(() => running() === 1 && pods() === 1 && replicaHistory.values.at(-1) === 1, 'the app to run one pod again');
    assert.equal(running(), 1, 'the app runs again');
    assert.equal(pods(), 1, 'the app runs again');
  };
  /** A pod whose process ignored SIGTERM has had its grace period: it is gone. */
  const letStubbornPodsGo = async () => {
    stubborn = false;
    await fake.clock.advance(30);
    await fake.settle();
  };
  const snapshots = async () => JSON.parse((await kompoxops(dir, ['snapshot', 'list', '-o', 'json'])).out) as Array<{ name: string; id: string }>;

  before(async () => {
    // manual clock: a pod that ignores SIGTERM stays Terminating until a test advances the time
    fake = await startFakeKube({ clock: { mode: 'manual' } });
    fake.containerBehaviour(() => (stubborn ? { sigterm: 'ignore' } : undefined));
    replicaHistory = watchReplicas(fake, ns, 'web');
    dir = await mkdtemp(join(tmpdir(), 'kompox-lifecycle-edges-'));
    diskRoot = join(dir, 'disks');
    snapshotRoot = join(dir, 'snapshots');
    await writeProject(dir, { diskRoot, snapshotRoot, kubeconfig: fake.kubeconfigPath });
    const r = await kompoxops(dir, ['app', 'deploy', '--timeout', '30s']);
    assert.equal(r.code, 0, r.err);
  });
  after(async () => {
    await fake?.close();
    if (dir) await hostFs.rm(dir);
  });

  it('snapshot create --quiesce scales the app to 0, snapshots once the pod is gone, scales it back', async () => {
    const disk = (JSON.parse((await kompoxops(dir, ['disk', 'list', '-o', 'json'])).out) as Array<{ id: string; current: boolean }>).find((d) => d.current)!;
    await writeSampleTree(disk.id);
    const digest = await treeDigest(disk.id);
    await settled();
    replicaHistory.reset();
    assert.equal(pods(), 1);
    const r = await kompoxops(dir, ['snapshot', 'create', '-N', 'q1', '--quiesce']);
    ok(r);
    await settled();
    // then it waits (progress: `waiting for the app: ...`) until the app is running and ready again, and says so
    assert.match(r.err, /^stopping web \(replicas 1 → 0\)\nstarted web again \(replicas 1\)\n(waiting for the app: [^\n]+\n)*the app is running and ready again \(deployment web: 1\/1 ready\)\n$/);
    assert.doesNotMatch(r.err, /file by file/); // no crash-consistency warning: the app was stopped
    assert.deepEqual(replicaHistory.values, [1, 0, 1]);
    assert.equal(replicas(), 1);
    // the snapshot holds the disk's data
    ok(await kompoxops(dir, ['snapshot', 'restore', '-N', 'q1', '--disk-name', 'q1-check']));
    const restored = (JSON.parse((await kompoxops(dir, ['disk', 'list', '-o', 'json'])).out) as Array<{ name: string; id: string }>).find((d) => d.name === 'q1-check')!;
    assert.equal(await treeDigest(restored.id), digest);
  });

  it('--quiesce starts the app again when the snapshot fails', async () => {
    const disk = (JSON.parse((await kompoxops(dir, ['disk', 'list', '-o', 'json'])).out) as Array<{ id: string; current: boolean }>).find((d) => d.current)!;
    await settled();
    await rename(disk.id, `${disk.id}.away`); // the data directory vanished: the snapshot cannot be read
    try {
      replicaHistory.reset();
      const r = await kompoxops(dir, ['snapshot', 'create', '-N', 'q2', '--quiesce']);
      assert.equal(r.code, 1, r.err);
      assert.match(r.err, /^stopping web \(replicas 1 → 0\)\nstarted web again \(replicas 1\)\n(waiting for the app: [^\n]+\n)*the app is running and ready again \(deployment web: 1\/1 ready\)\nerror: disk data directory \S+ does not exist or is not a directory\n$/);
      await settled();
      assert.deepEqual(replicaHistory.values, [1, 0, 1]);
      assert.equal(replicas(), 1);
      assert.ok(!(await snapshots()).some((s) => s.name === 'q2'));
    } finally {
      await rename(`${disk.id}.away`, disk.id);
    }
  });

  it('--quiesce gives up when the pod does not stop in time, and starts the app again (exit 3, no snapshot)', async () => {
    await settled();
    stubborn = true; // the process ignores SIGTERM and its 30 s grace period outlasts --stop-timeout
    try {
      const r = await kompoxops(dir, ['snapshot', 'create', '-N', 'q3', '--quiesce', '--stop-timeout', '1']);
      assert.equal(r.code, 3, r.err);
      assert.match(r.err, /error: the app's pod did not stop in time \(web-[a-z0-9]+-[a-z0-9]{5} still there\)\. No snapshot was taken and the app was started again/);
      assert.equal(replicas(), 1);
      // the app runs again: a new pod starts while the old one is still Terminating (a scale-up does not wait for it)
      await eventually(() => running() === 1, 'the app to run again');
      assert.ok(!(await snapshots()).some((s) => s.name === 'q3'));
    } finally {
      await letStubbornPodsGo();
    }
  });

  // SIGHUP: the terminal or the SSH session the command ran in was closed (its default would end the process on the spot)
  for (const [sig, what, name] of [['SIGINT', 'Ctrl-C', 'q4'], ['SIGHUP', 'a hang-up (SIGHUP)', 'q4h']] as const) {
    it(`${what} during --quiesce starts the app again before the process ends (exit 130, no snapshot)`, async () => {
      await settled();
      stubborn = true; // the pod does not stop within its grace period: the command waits, and the user gives up
      try {
        const child = spawn(process.execPath, [BIN.kompoxops, '-C', dir, 'snapshot', 'create', '-N', name, '--quiesce'], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
        let err = '';
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
        child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
        // the signal once the app is down and the command waits for the pod
        const poke = setInterval(() => {
          if (/stopping web/.test(err) && replicas() === 0) {
            clearInterval(poke);
            child.kill(sig);
          }
        }, 20);
        const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
        clearInterval(poke);
        assert.equal(code, 130, err);
        assert.equal(err, 'stopping web (replicas 1 → 0)\nstarted web again (replicas 1)\nerror: interrupted: no snapshot was taken; the app was started again\n');
        assert.equal(out, '');
        assert.equal(replicas(), 1);
        assert.ok(!(await snapshots()).some((s) => s.name === name));
      } finally {
        await letStubbornPodsGo();
      }
      await settled();
    });
  }

  it('a quiesced snapshot killed (SIGKILL) once the app is stopped leaves the app stopped and says so; the next --quiesce starts it again with its count', async () => {
    await settled();
    const deployment = () => fake.store.get(fake.resource('apps/v1', 'Deployment')!, ns, 'web') as Any;
    replicaHistory.reset();
    stubborn = true; // the pod does not stop within its grace period: the command waits, the app stopped, when it is killed
    try {
      const child = spawn(process.execPath, [BIN.kompoxops, '-C', dir, 'snapshot', 'create', '-N', 'q5', '--quiesce'], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      const poke = setInterval(() => {
        if (/stopping web/.test(err) && replicas() === 0) {
          clearInterval(poke);
          child.kill('SIGKILL'); // nothing runs after this: no finally, no signal handler
        }
      }, 20);
      const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_c, sig) => resolve(sig)));
      clearInterval(poke);
      assert.equal(signal, 'SIGKILL', err);
    } finally {
      await letStubbornPodsGo();
    }
    assert.equal(replicas(), 0, 'the app stays stopped: nobody started it again');
    const since = deployment().metadata.annotations['kompox.dev/quiesced-since'] as string;
    assert.deepEqual(
      Object.fromEntries(Object.entries(deployment().metadata.annotations as Record<string, string>).filter(([k]) => k.startsWith('kompox.dev/quiesced-'))),
      { 'kompox.dev/quiesced-replicas': '1', 'kompox.dev/quiesced-since': since, 'kompox.dev/quiesced-by': 'snapshot q5' },
    );
    // app status says what stopped it, since when; just killed, its record is not stale yet: it counts as running
    const status = await kompoxops(dir, ['app', 'status']);
    ok(status);
    assert.match(status.out, new RegExp(`^stopped: {4}web by the quiesced snapshot q5 since ${since} \\(replicas 1 to give back\\): running \\(stopped \\d+s ago, not renewed yet\\)$`, 'm'));
    // and the next quiesce is refused while it is (a record renewed within 90 s)
    const busy = await kompoxops(dir, ['snapshot', 'create', '-N', 'q6', '--quiesce']);
    assert.notEqual(busy.code, 0);
    assert.match(busy.err, /which is still running .*refusing to stop the app under it/);
    assert.equal(replicas(), 0);
    // no renewal for over 90 s (as if that long had passed): stale, said as interrupted, with what starts it again
    const stale = new Date(Date.now() - 120_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const aged = structuredClone(deployment());
    aged.metadata.annotations['kompox.dev/quiesced-since'] = stale;
    fake.store.put(fake.resource('apps/v1', 'Deployment')!, aged);
    const later = await kompoxops(dir, ['app', 'status']);
    ok(later);
    assert.match(later.out, new RegExp(`^stopped: {4}web by the quiesced snapshot q5 since ${stale} \\(replicas 1 to give back\\): interrupted \\(not renewed since ${stale}\\)\n {12}\`kompoxops app deploy\` starts the app again`, 'm'));
    // the next quiesced snapshot gives back the recorded count (1), not the 0 it finds, once it watched the record unchanged for 2 renewal periods (60 s: its times are by the killed process's clock)
    const r = await kompoxops(dir, ['snapshot', 'create', '-N', 'q6', '--quiesce'], undefined, undefined, 120_000);
    ok(r);
    assert.equal(replicas(), 1);
    assert.match(r.err, new RegExp(`^waiting up to 60s to confirm that the quiesced snapshot q5 is gone: its record of web looks interrupted by this machine's clock, and is taken over only if not renewed meanwhile\nweb was stopped at ${stale} by the quiesced snapshot q5, which was interrupted \\(not renewed since ${stale}\\) and has not started it again; it will be started again with replicas 1\nstarted web again \\(replicas 1\\)\n`));
    await settled();
    assert.deepEqual(replicaHistory.values, [1, 0, 1]);
    assert.deepEqual(Object.keys(deployment().metadata.annotations ?? {}).filter((k) => k.startsWith('kompox.dev/quiesced-')), []);
    assert.doesNotMatch((await kompoxops(dir, ['app', 'status'])).out, /^stopped:/m);
    assert.ok((await snapshots()).some((s) => s.name === 'q6'));
  });

  it('Ctrl-C during a disk import removes the half-made disk before the process ends (exit 130, nothing left)', async () => {
    const volDisks = join(diskRoot, ns, 'default');
    const cur = (JSON.parse((await kompoxops(dir, ['disk', 'list', '-o', 'json'])).out) as Array<{ name: string; current: boolean }>).find((d) => d.current)!;
    const archive = join(dir, 'for-ctrl-c.tar.gz');
    ok(await kompoxops(dir, ['disk', 'export', '-N', cur.name, '-O', archive]));
    const bytes = await readFile(archive);
    const before = (await readdir(volDisks)).sort();
    const child = spawn(process.execPath, [BIN.kompoxops, '-C', dir, 'disk', 'import', '-', '-N', 'half'], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.stdout.resume();
    // half the archive arrives, then nothing: the import waits for the rest, and the user gives up
    child.stdin.write(bytes.subarray(0, Math.floor(bytes.length / 2)));
    const poke = setInterval(async () => {
      if ((await readdir(volDisks)).some((n) => n.startsWith('.tmp-half-'))) {
        clearInterval(poke);
        child.kill('SIGINT');
      }
    }, 20);
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    clearInterval(poke);
    child.stdin.destroy();
    assert.equal(code, 130, err);
    assert.match(err, /^error: interrupted: no disk was created$/m);
    assert.deepEqual((await readdir(volDisks)).sort(), before, 'no disk and no temp directory left');
    assert.ok(!(JSON.parse((await kompoxops(dir, ['disk', 'list', '-o', 'json'])).out) as Array<{ name: string }>).some((d) => d.name === 'half'));
  });

  it('crash leftovers are never listed; the next disk or snapshot of the volume sweeps those older than an hour', async () => {
    const volDisks = join(diskRoot, ns, 'default');
    const volSnaps = join(snapshotRoot, ns, 'default');
    const old = new Date(Date.now() - 2 * 3600_000);
    const leftovers = {
      oldTmp: join(volDisks, '.tmp-crashed-abc'),
      oldDeleting: join(volDisks, '.deleting-gone-abc'),
      freshTmp: join(volDisks, '.tmp-in-progress-abc'),
      oldSnapTmp: join(volSnaps, '.tmp-s-abc.tar.gz'),
      freshSnapTmp: join(volSnaps, '.tmp-s-def.tar.gz'),
    };
    for (const d of [leftovers.oldTmp, leftovers.oldDeleting, leftovers.freshTmp]) {
      await mkdir(join(d, 'data'), { recursive: true });
      await writeFile(join(d, 'kompox-disk.json'), JSON.stringify({ kind: 'kompox-disk', name: 'crashed', volume: 'default', sizeGiB: 1, createdAt: '2020-01-01T00:00:00Z', tags: { 'kompox-app': 'ops/k3s1/cluster-a/web', 'kompox-volume': 'default' } }));
    }
    await mkdir(volSnaps, { recursive: true }); // made by the first snapshot of the volume; this test may be the first
    await writeFile(leftovers.oldSnapTmp, 'partial');
    await writeFile(leftovers.freshSnapTmp, 'partial');
    for (const p of [leftovers.oldTmp, leftovers.oldDeleting, leftovers.oldSnapTmp]) await utimes(p, old, old);

    const list = await kompoxops(dir, ['disk', 'list', '-o', 'json']);
    ok(list);
    assert.doesNotMatch(list.out, /crashed|gone|in-progress/);
    assert.doesNotMatch((await kompoxops(dir, ['snapshot', 'list', '-o', 'json'])).out, /tmp-s-/);

    ok(await kompoxops(dir, ['disk', 'create', '-N', 'after-crash']));
    const exists = async (p: string) => (await hostFs.lstat(p)) !== undefined;
    assert.equal(await exists(leftovers.oldTmp), false);
    assert.equal(await exists(leftovers.oldDeleting), false);
    assert.equal(await exists(leftovers.freshTmp), true, 'a temp dir younger than an hour may belong to a running import');
    assert.equal(await exists(leftovers.oldSnapTmp), true, 'snapshot leftovers are swept by snapshot create');
    ok(await kompoxops(dir, ['snapshot', 'create', '-N', 'after-crash']));
    assert.equal(await exists(leftovers.oldSnapTmp), false);
    assert.equal(await exists(leftovers.freshSnapTmp), true);
  });

  it('-o json shape of disk list and snapshot list: every documented key, in order, tags sorted', async () => {
    ok(await kompoxops(dir, ['snapshot', 'create', '-N', 'shape-snap']));
    const d = JSON.parse((await kompoxops(dir, ['disk', 'list', '-o', 'json'])).out) as Any[];
    for (const x of d) {
      assert.deepEqual(Object.keys(x), ['name', 'volume', 'current', 'previous', 'sizeGiB', 'usedBytes', 'createdAt', 'zone', 'id', 'tags']);
      assert.equal(typeof x.usedBytes, 'number');
      assert.deepEqual(Object.keys(x.tags), [...Object.keys(x.tags)].sort());
      assert.ok(['kompox-app', 'kompox-created-at', 'kompox-name', 'kompox-volume'].every((k) => k in x.tags));
    }
    assert.equal(d.filter((x) => x.current).length, 1);
    assert.match(d.find((x) => x.current)!.tags['kompox-attached-at'], /Z$/);
    const s = JSON.parse((await kompoxops(dir, ['snapshot', 'list', '-o', 'json'])).out) as Any[];
    assert.ok(s.some((x) => x.name === 'shape-snap'));
    for (const x of s) {
      assert.deepEqual(Object.keys(x), ['name', 'volume', 'sizeGiB', 'usedBytes', 'createdAt', 'sourceDiskId', 'sha256', 'id', 'tags']);
      assert.match(x.sha256, /^[0-9a-f]{64}$/);
    }
    // yaml carries the same shape; an empty list is []
    const y = await kompoxops(dir, ['disk', 'create', '-N', 'shape', '-o', 'yaml']);
    ok(y);
    assert.match(y.out, /^name: shape\nvolume: default\ncurrent: false\nprevious: false\nsizeGiB: 10\nusedBytes: 0\ncreatedAt: \S+\nzone: \S+\nid: \S+\/shape\/data\ntags:\n {2}kompox-app: ops\/k3s1\/cluster-a\/web\n/);
  });

  it('progress bars only on a terminal: none through a pipe, one line on a pseudo-terminal', async (t) => {
    ok(await kompoxops(dir, ['disk', 'create', '-N', 'bars']));
    const piped = await kompoxops(dir, ['disk', 'export', '-N', 'bars', '-O', join(dir, 'piped.tar.zst')]);
    ok(piped);
    assert.equal(piped.err, '');
    assert.doesNotMatch(piped.out, /\r/);
    const probe = spawnSync('script', ['-qec', 'true', '/dev/null'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      t.skip(`no pseudo-terminal here (script(1) failed: ${probe.stderr || probe.error?.message})`);
      return;
    }
    const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const current = (JSON.parse((await kompoxops(dir, ['disk', 'list', '-o', 'json'])).out) as Any[]).find((x) => x.current)!;
    await writeFile(join(current.id, 'progress-sample.bin'), Buffer.alloc(64 * 1024, 1)); // data to show progress for
    const cmd = [process.execPath, BIN.kompoxops, '-C', dir, 'disk', 'export', '-N', current.name, '-O', join(dir, 'tty.tar.zst')].map(quote).join(' ');
    // async: the fake API server answers from this process's event loop
    const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      // TERM=xterm: a terminal that draws in place (TERM=dumb, as some CI runners set, draws no bars)
      const child = spawn('script', ['-qec', cmd, '/dev/null'], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', TERM: 'xterm' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('error', reject);
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`\\rexport ${current.name} \\[#{24}\\] 100% [\\d.]+ KiB/[\\d.]+ KiB [\\d.]+ \\S+/s\\x1b\\[K`));
    assert.match(r.stdout, new RegExp(`exported disk ${current.name} to \\S+tty\\.tar\\.zst`));
  });

  it('-V: the only volume is the default; with several, the error lists them; every error is one paragraph', async () => {
    const multi = join(dir, 'multi');
    await mkdir(multi);
    await writeProject(multi, { diskRoot, snapshotRoot, kubeconfig: fake.kubeconfigPath });
    await appendFile(join(multi, 'kompoxops.yml'), '  volumes:\n    - name: files\n    - name: db\n');
    for (const args of [['disk', 'list'], ['snapshot', 'list'], ['disk', 'create', '-N', 'x'], ['snapshot', 'create', '-N', 'x'], ['disk', 'export', '-N', 'x', '-O', '-']]) {
      const r = await kompoxops(multi, args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.ok(oneParagraph(r.err), JSON.stringify(r.err));
      assert.equal(r.err, 'error: app web has 2 volumes; say which one with -V. Volumes: files, db.\n');
      assert.equal(r.out, '');
    }
    ok(await kompoxops(multi, ['disk', 'create', '-V', 'db', '-N', 'db1']));
    const db = await kompoxops(multi, ['disk', 'list', '-V', 'db', '-o', 'json']);
    ok(db);
    assert.deepEqual((JSON.parse(db.out) as Any[]).map((x) => [x.name, x.volume]), [['db1', 'db']]);
    const unknown = await kompoxops(multi, ['disk', 'list', '-V', 'nope']);
    assert.equal(unknown.code, 2);
    assert.equal(unknown.err, 'error: app web has no volume "nope". Volumes: files, db.\n');
    // the single-volume app needs no -V
    ok(await kompoxops(dir, ['disk', 'list']));
    for (const args of [
      ['disk', 'delete', '-N', 'nope'],
      ['snapshot', 'restore', '-N', 'nope'],
      ['disk', 'import', join(dir, 'missing.tar.gz')],
      ['disk', 'create', '-N', 'Bad_Name'],
      ['disk', 'create', '--size', 'ten'],
    ]) {
      const r = await kompoxops(dir, args);
      assert.ok(r.code === 1 || r.code === 2, `${args.join(' ')}: exit ${r.code}`);
      assert.ok(oneParagraph(r.err), `${args.join(' ')}: ${JSON.stringify(r.err)}`);
    }
  });
  it('snapshot restore --attach -o json: the documented attach shape on stdout, notes on stderr', async () => {
    ok(await kompoxops(dir, ['snapshot', 'create', '-N', 'j-src']));
    const before = (JSON.parse((await kompoxops(dir, ['disk', 'list', '-o', 'json'])).out) as Any[]).find((x) => x.current)!;
    const r = await kompoxops(dir, ['snapshot', 'restore', '-N', 'j-src', '--disk-name', 'j1', '--attach', '--timeout', '30', '-o', 'json']);
    ok(r);
    const j = JSON.parse(r.out) as Any;
    // The documented keys in order; `transfer` (issue 11) was added at the end.
    assert.deepEqual(Object.keys(j), ['volume', 'disk', 'previous', 'changed', 'deploy', 'released', 'transfer']);
    assert.deepEqual(Object.keys(j.transfer), ['bytes', 'files', 'seconds', 'mbPerSecond']);
    assert.ok(j.transfer.files > 0 && j.transfer.bytes > 0, JSON.stringify(j.transfer));
    assert.equal(j.disk.name, 'j1');
    assert.equal(j.disk.current, true);
    assert.equal(j.previous.name, before.name);
    assert.equal(j.previous.previous, true);
    assert.equal(j.changed, true);
    assert.equal(j.deploy.exitCode, 0);
    assert.deepEqual(j.released.map((x: string) => x.split(' ')[0]).sort(), ['PersistentVolume', 'PersistentVolumeClaim']);
    assert.match(r.err, /restored snapshot j-src into disk j1/);
  });
});
