// The maintenance box through the real binary against the fake API server
// with its controllers (issue 12): box deploy stops the app and mounts its
// current disk, app deploy refuses while the app is stopped for it, box
// destroy starts the app again; a session (shell/exec/rsync without a
// deployed box) removes its box at the end and on Ctrl-C (a real SIGINT to
// the binary); a box left by a killed command is reported by app status and
// box deploy and removed by box destroy; rsync goes through the API server's
// port-forward to a real rsync daemon (standing in for the box's, with the
// box's own rsyncd.conf).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appNamespace } from '../../src/domain/names.js';
import { BOX_RSYNC_PORT, rsyncdConf } from '../../src/usecases/box-pod.js';
import { BIN, ROOT } from '../support/cli.js';
import { startFakeKube, type ExecRequest, type FakeKube } from '../support/fake-kube/index.js';
import { eventually } from '../support/kube.js';
import { activePods, claimsOf, hostFs, kompoxops, step, watchReplicas, writeProject, type ReplicaHistory, type Run } from './lifecycle-support.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ns = appNamespace({ service: { name: 'ops' }, provider: { name: 'k3s1', service: 'ops', driver: 'k3s', settings: {} }, app: { name: 'web' } as never });
const hasRsync = spawnSync('rsync', ['--version']).status === 0;

describe('maintenance box (binary, K3s on temp dirs, fake API server with controllers)', () => {
  let fake: FakeKube;
  let dir: string;
  let history: ReplicaHistory;
  const ok = (r: Run) => assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.out}\nstderr: ${r.err}`);
  const run = (args: string[]) => kompoxops(dir, args);
  const boxPod = () => fake.store.get(fake.resource('v1', 'Pod')!, ns, 'kompox-box') as Any | undefined;
  const nsAnnotations = () => (fake.store.get(fake.resource('v1', 'Namespace')!, undefined, ns) as Any).metadata.annotations ?? {};
  const appRuns = () => eventually(() => activePods(fake, ns).filter((p) => p.metadata.labels?.['kompox.dev/app-instance'] && p.status?.phase === 'Running').length === 1, 'the app to run again');
  const currentDisk = async () => (JSON.parse((await run(['disk', 'list', '-o', 'json'])).out) as { id: string; current: boolean }[]).find((d) => d.current)!;
  /** Starts `kompoxops ARGS` with stdin left open; resolves its exit code and output when it ends. */
  const start = (args: string[]) => {
    const child = spawn(process.execPath, [BIN.kompoxops, '-C', dir, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
    const res = { out: '', err: '' };
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (res.out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (res.err += d));
    const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) => child.on('close', (code) => resolve({ code, ...res })));
    return { child: child as ChildProcess, done };
  };
  /** Exec never returns while the test holds it (an interactive shell). */
  const hangingExec = () => fake.onExec(() => new Promise(() => undefined));

  before(async () => {
    fake = await startFakeKube();
    dir = await mkdtemp(join(tmpdir(), 'kompox-box-cli-'));
    await writeProject(dir, { diskRoot: join(dir, 'disks'), snapshotRoot: join(dir, 'snapshots'), kubeconfig: fake.kubeconfigPath });
    history = watchReplicas(fake, ns, 'web');
    const r = await run(['app', 'deploy', '--timeout', '30s']);
    assert.equal(r.code, 0, r.err);
    await appRuns();
  });
  after(async () => {
    await fake?.close();
    if (dir) await hostFs.rm(dir);
  });

  test('box deploy stops the app and mounts its disk; app deploy waits for it; box destroy starts the app again', async () => {
    history.reset();
    await step('box deploy', async () => {
      const r = await run(['box', 'deploy']);
      ok(r);
      assert.equal(r.out, 'box kompox-box runs with /data/default; the app is stopped until the box is destroyed\n');
      assert.equal(r.err, 'stopping web (replicas 1 → 0)\nbox kompox-box runs on node1 with /data/default\n');
      assert.deepEqual(history.values, [1, 0]);
      assert.equal(activePods(fake, ns).filter((p) => p.metadata.labels?.['kompox.dev/app-instance']).length, 0, 'the app pod is gone');
      const pod = boxPod()!;
      assert.equal(pod.status.phase, 'Running');
      assert.deepEqual(pod.spec.volumes.map((v: Any) => v.persistentVolumeClaim.claimName), claimsOf(fake, ns, 'web'), 'the box mounts the claim the app mounts');
      // read-write: neither the mount nor the claim reference is read-only
      assert.deepEqual(pod.spec.containers[0].volumeMounts, [{ name: 'data-default', mountPath: '/data/default' }]);
      assert.ok(pod.spec.volumes.every((v: Any) => !v.persistentVolumeClaim.readOnly));
      assert.equal(pod.metadata.labels['kompox.dev/app-instance'], undefined, "the app's ReplicaSet must never adopt the box");
      assert.match(pod.spec.containers[0].image, /^docker\.io\/library\/alpine:3\.21\.3@sha256:/);
      assert.deepEqual(JSON.parse(nsAnnotations()['kompox.dev/box']), { mode: 'stopped', replicas: { web: 1 }, since: JSON.parse(nsAnnotations()['kompox.dev/box']).since, session: false });
    });
    await step('status shows the box; a second deploy reuses it; app deploy is refused', async () => {
      const st = JSON.parse((await run(['app', 'status', '-o', 'json'])).out).box;
      assert.equal(st.mode, 'stopped');
      assert.equal(st.session, false);
      assert.equal(st.incomplete, false);
      assert.deepEqual(st.replicas, { web: 1 });
      assert.deepEqual(st.mounts, { default: '/data/default' });
      assert.equal(st.pod.phase, 'Running');
      assert.match((await run(['app', 'status'])).out, /\nbox: +kompox-box \(Running, ready on node1; the app is stopped for it, since \d{4}-\d\d-\d\dT[\d:]+Z\)\n/);
      const again = await run(['box', 'deploy']);
      ok(again);
      assert.match(again.out, /^box kompox-box is deployed already \(since \S+\) with \/data\/default\n$/);
      const dep = await run(['app', 'deploy']);
      assert.equal(dep.code, 1);
      assert.match(dep.err, /^error: a maintenance box holds the disks of app web \(the app is stopped for it since \S+\); nothing was changed\. Remove it first with `kompoxops box destroy` \(that starts the app again\), then deploy\.\n$/);
      assert.deepEqual(history.values, [1, 0]);
    });
    await step('box exec runs in the box', async () => {
      const seen: ExecRequest[] = [];
      fake.onExec((req) => {
        seen.push(req);
        return { stdout: 'default\n', exitCode: 0 };
      });
      const r = await run(['box', 'exec', '--', 'ls', '/data']);
      ok(r);
      assert.equal(r.out, 'default\n');
      assert.deepEqual(seen.map((q) => [q.pod, q.container, q.command]), [['kompox-box', 'box', ['ls', '/data']]]);
    });
    await step('box destroy', async () => {
      const r = await run(['box', 'destroy']);
      ok(r);
      assert.equal(r.out, 'box removed; the app runs again\n');
      assert.equal(r.err, 'deleted box pod kompox-box\nstarted web again (replicas 1)\n');
      assert.equal(boxPod(), undefined);
      assert.equal(nsAnnotations()['kompox.dev/box'], undefined);
      assert.deepEqual(history.values, [1, 0, 1]);
      await appRuns();
      assert.equal((await run(['box', 'destroy'])).out, 'app web has no box\n');
    });
  });

  test('Ctrl-C during a box shell session removes the box and starts the app again (exit 130)', async () => {
    await appRuns();
    history.reset();
    hangingExec();
    const seen = fake.requests.length;
    const { child, done } = start(['box', 'shell']);
    await eventually(() => boxPod()?.status?.phase === 'Running' && fake.requests.slice(seen).some((r) => r.method === 'UPGRADE' && r.path.endsWith('/kompox-box/exec')), 'the shell to be open in the box');
    child.kill('SIGINT');
    const r = await done;
    assert.equal(r.code, 130, r.err);
    assert.equal(r.err, 'stopping web (replicas 1 → 0)\nbox kompox-box runs on node1 with /data/default\ndeleted box pod kompox-box\nstarted web again (replicas 1)\nerror: interrupted: the box was removed and the app started again\n');
    assert.equal(boxPod(), undefined);
    assert.equal(nsAnnotations()['kompox.dev/box'], undefined);
    assert.deepEqual(history.values, [1, 0, 1]);
    await appRuns();
  });

  test('a box left by a killed command is reported by app status and box deploy, and removed by box destroy', async () => {
    await appRuns();
    history.reset();
    hangingExec();
    const seen = fake.requests.length;
    const { child, done } = start(['box', 'shell']);
    await eventually(() => boxPod()?.status?.phase === 'Running' && fake.requests.slice(seen).some((r) => r.method === 'UPGRADE' && r.path.endsWith('/kompox-box/exec')), 'the shell to be open in the box');
    child.kill('SIGKILL');
    await done;
    assert.deepEqual(history.values, [1, 0], 'the app stays stopped: nothing could undo it');
    const table = await run(['app', 'status']);
    ok(table);
    assert.match(table.out, /\nbox: +kompox-box \(Running, ready on node1; the app is stopped for it, since \S+\)\n +made for a box shell\/exec\/rsync command; when none runs, it was left behind: `kompoxops box destroy` removes it and starts the app again\n/);
    assert.equal(JSON.parse((await run(['app', 'status', '-o', 'json'])).out).box.session, true);
    const dep = await run(['box', 'deploy']);
    ok(dep);
    assert.match(dep.out, /^box kompox-box is deployed already \(since \S+, left by an interrupted command\) with \/data\/default\n$/);
    ok(await run(['box', 'destroy']));
    assert.deepEqual(history.values, [1, 0, 1]);
    await appRuns();
  });

  test('a session command uses a box deployed already (once it is ready) and leaves it in place', async () => {
    await appRuns();
    history.reset();
    ok(await run(['box', 'deploy']));
    let boxReady = false;
    const isReady = () => (boxPod()?.status?.conditions ?? []).some((c: Any) => c.type === 'Ready' && c.status === 'True');
    fake.containerBehaviour((pod) => (pod.metadata?.name === 'kompox-box' ? { ready: boxReady } : undefined));
    await eventually(() => boxPod()?.status?.phase === 'Running' && !isReady(), 'the box to turn unready');
    const readyAtExec: boolean[] = [];
    fake.onExec(() => {
      readyAtExec.push(isReady());
      return { stdout: 'default\n', exitCode: 0 };
    });
    const seen = fake.requests.length;
    const { done } = start(['box', 'exec', '--', 'ls', '/data']);
    await eventually(() => fake.requests.slice(seen).some((q) => q.method === 'GET' && q.path.endsWith('/pods/kompox-box')), 'the command to wait for the box');
    boxReady = true;
    fake.containerBehaviour(() => undefined); // kicks the kubelet: the box is ready again
    const r = await done;
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'default\n');
    assert.deepEqual(readyAtExec, [true], 'the command ran once the box was ready');
    assert.equal(boxPod()?.status?.phase, 'Running', 'the deployed box stays');
    assert.ok(nsAnnotations()['kompox.dev/box']);
    assert.deepEqual(history.values, [1, 0]);
    ok(await run(['box', 'destroy']));
    assert.deepEqual(history.values, [1, 0, 1]);
    await appRuns();
  });

  test('a box deploy that fails or is interrupted undoes itself; --image and KOMPOX_BOX_IMAGE choose the image', async () => {
    await appRuns();
    history.reset();
    await step('an image that cannot be pulled: the box fails at once, the app runs again', async () => {
      fake.setImageBehaviour('registry.example.com/tools/box:1', { pull: 'fail' });
      const r = await run(['box', 'deploy', '--image', 'registry.example.com/tools/box:1']);
      assert.equal(r.code, 1, r.err);
      assert.match(r.err, /error: the box cannot start: .*registry\.example\.com\/tools\/box:1/);
      assert.match(r.err, /started web again \(replicas 1\)\n/);
      assert.equal(boxPod(), undefined);
      assert.equal(nsAnnotations()['kompox.dev/box'], undefined);
      assert.deepEqual(history.values, [1, 0, 1]);
      await appRuns();
    });
    await step('Ctrl-C while box deploy waits for the box: removed, the app runs again (exit 130)', async () => {
      history.reset();
      fake.setImageBehaviour('registry.example.com/tools/box:2', { ready: false });
      const { child, done } = start(['box', 'deploy', '--image', 'registry.example.com/tools/box:2']);
      await eventually(() => boxPod()?.status?.phase === 'Running', 'the box pod to run (never ready)');
      child.kill('SIGINT');
      const r = await done;
      assert.equal(r.code, 130, r.err);
      assert.match(r.err, /deleted box pod kompox-box\nstarted web again \(replicas 1\)\nerror: interrupted: no box was left; the app was started again/);
      assert.equal(boxPod(), undefined);
      assert.equal(nsAnnotations()['kompox.dev/box'], undefined);
      assert.deepEqual(history.values, [1, 0, 1]);
      await appRuns();
    });
    await step('the setting KOMPOX_BOX_IMAGE replaces the default image', async () => {
      const yml = join(dir, 'kompoxops.yml');
      const original = await readFile(yml, 'utf8');
      await writeFile(yml, original.replace('    K3S_NODE: node1\n', '    K3S_NODE: node1\n    KOMPOX_BOX_IMAGE: registry.example.com/tools/box:3\n'));
      try {
        ok(await run(['box', 'deploy']));
        assert.equal(boxPod()!.spec.containers[0].image, 'registry.example.com/tools/box:3');
        ok(await run(['box', 'destroy']));
      } finally {
        await writeFile(yml, original);
      }
      await appRuns();
    });
  });

  test('box deploy --live keeps the app running next to the box; destroy gives nothing back', async () => {
    await appRuns();
    history.reset();
    const r = await run(['box', 'deploy', '--live']);
    ok(r);
    assert.match(r.err, /^warning: live box: the app keeps running and writing while the box mounts its disks; files the app changes meanwhile may be copied half-written\. A ReadWriteOnce disk is attached to one node at a time, so the box runs on the app's node; stop the app for consistent copies\.\n/);
    assert.equal(r.out, 'box kompox-box runs with /data/default (live: the app keeps running)\n');
    assert.deepEqual(boxPod()!.spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution, [{ labelSelector: { matchLabels: { 'kompox.dev/app-instance': ns } }, topologyKey: 'kubernetes.io/hostname' }]);
    ok(await run(['app', 'deploy', '--timeout', '30s'])); // a live box does not hold the app back
    const d = await run(['box', 'destroy']);
    ok(d);
    assert.equal(d.err, 'deleted box pod kompox-box\n');
    assert.equal(d.out, 'box removed\n');
    assert.deepEqual(history.values, [1]);
  });

  test('box rsync: a session through the port-forward to the box rsync daemon; without rsync in the box, a clear error', { skip: hasRsync ? false : 'rsync is not installed (.ci/run installs it)' }, async () => {
    await appRuns();
    history.reset();
    const data = (await currentDisk()).id;
    // a real rsync daemon with the box's own configuration, its module on the disk's directory, where the box would mount it
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const run_ = join(dir, 'rsyncd');
    await mkdir(run_, { recursive: true });
    await writeFile(join(run_, 'rsyncd.conf'), rsyncdConf({ modules: { default: data }, address: '127.0.0.1', port, runDir: run_, asRoot: process.getuid?.() === 0 }));
    const daemon = spawn('rsync', ['--daemon', '--no-detach', `--config=${join(run_, 'rsyncd.conf')}`], { stdio: 'ignore' });
    try {
      await eventually(() => new Promise<boolean>((resolve) => net.connect(port, '127.0.0.1').on('connect', function (this: net.Socket) { this.destroy(); resolve(true); }).on('error', () => resolve(false))), 'the rsync daemon to listen');
      fake.setPortTarget(ns, 'kompox-box', BOX_RSYNC_PORT, port);
      fake.onExec((req) => ({ exitCode: req.command.join(' ') === 'test -e /tmp/kompox-box.rsync' ? 0 : 127 }));
      await mkdir(join(dir, 'site', 'html'), { recursive: true });
      await writeFile(join(dir, 'site', 'html', 'index.html'), '<h1>moved in</h1>\n');
      const up = await kompoxops(dir, ['box', 'rsync', '--', '-a', `${join(dir, 'site')}/`, 'box:default/']);
      ok(up);
      assert.match(up.err, /rsync daemon of the box at rsync:\/\/127\.0\.0\.1:\d+\/ \(modules: default\)\n/);
      assert.equal(await readFile(join(data, 'html', 'index.html'), 'utf8'), '<h1>moved in</h1>\n');
      const down = await kompoxops(dir, ['box', 'rsync', '--', '-a', 'box:default/html/', `${join(dir, 'back')}/`]);
      ok(down);
      assert.equal(await readFile(join(dir, 'back', 'index.html'), 'utf8'), '<h1>moved in</h1>\n');
      assert.deepEqual(history.values, [1, 0, 1, 0, 1], 'each command was a session: app stopped, then started again');
      assert.equal(boxPod(), undefined);

      fake.onExec(() => ({ exitCode: 1 }));
      const none = await kompoxops(dir, ['box', 'rsync', '--', '-a', 'x', 'box:default/']);
      assert.equal(none.code, 1);
      assert.match(none.err, /error: the box has no rsync daemon: its image has no rsync, and it could not be installed when the box started\. Use an image with rsync: --image IMAGE on a new box, or the cluster setting KOMPOX_BOX_IMAGE/);
      assert.equal(boxPod(), undefined, 'the session removed its box');
      await appRuns();
    } finally {
      daemon.kill();
    }
  });
});
