// End to end through the real binary against the fake API server without
// controllers (a cluster whose controller manager, scheduler and kubelets do
// not run): deploy, redeploy (nothing written), dry run, status, a pod put in
// place by the test, logs/exec, and destroy (disks kept), plus the kubeconfig
// export and the error exits.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { appNamespace } from '../../src/domain/names.js';
import { BIN, runCli, runCliPiped, type CliResult } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { k3sOpsYaml } from '../support/ops-yaml.js';

function run(args: string[], cwd: string, env: Record<string, string> = {}, stdin = ''): Promise<CliResult> {
  return runCli(args, { cwd, env, stdin });
}

const opsYaml = (dir: string): string => k3sOpsYaml(dir, { app: 'hello', domain: 'example.com', clusterSettings: { ACME_EMAIL: 'admin@example.com' }, volumes: [{ name: 'default', size: '1Gi' }] });

const COMPOSE = `services:
  web:
    image: nginx:1.27
    ports:
      - "8080:80"
    volumes:
      - data:/usr/share/nginx/html
volumes:
  data: {}
`;

/** Requests that may store something (server-side dry runs excluded). */
function writes(fake: FakeKube): string[] {
  // access reviews (POST selfsubjectaccessreviews) only ask; they store nothing
  return fake.requests
    .filter((r) => r.method !== 'GET' && r.query.dryRun === undefined && !r.path.endsWith('/selfsubjectaccessreviews'))
    .map((r) => `${r.method} ${r.path}`);
}

/** Every stored object with its resourceVersion: equal before/after = nothing was written. */
function versions(fake: FakeKube): string {
  return JSON.stringify(fake.store.all().map((e) => [e.resource.plural, e.obj.metadata?.namespace, e.obj.metadata?.name, e.obj.metadata?.resourceVersion]).sort());
}

/**
 * A cluster (fake API server without controllers: the tests put pods in place
 * themselves) and a project of its own for one test; removed when the test ends.
 */
async function fresh(t: TestContext, opts: Parameters<typeof startFakeKube>[0] = {}): Promise<{ fake: FakeKube; dir: string }> {
  const fake = await startFakeKube({ controllers: false, ...opts });
  const dir = mkdtempSync(join(tmpdir(), 'kompox-app-cli-'));
  t.after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await fake.close();
  });
  mkdirSync(join(dir, 'disks'));
  mkdirSync(join(dir, 'snapshots'));
  copyFileSync(fake.kubeconfigPath, join(dir, 'kubeconfig'));
  writeFileSync(join(dir, 'kompoxops.yml'), opsYaml(dir));
  writeFileSync(join(dir, 'compose.yml'), COMPOSE);
  return { fake, dir };
}

/** The app's namespace (from kompoxops.yml: service ops, provider k3s1, app hello). */
const ns = appNamespace({ service: { name: 'ops' }, provider: { name: 'k3s1', service: 'ops', driver: 'k3s', settings: {} }, app: { name: 'hello' } as never });

/** fresh(), with the app applied (`app deploy --no-wait`; no controllers, so no pod). */
async function deployed(t: TestContext, opts: Parameters<typeof startFakeKube>[0] = {}): Promise<{ fake: FakeKube; dir: string }> {
  const f = await fresh(t, opts);
  const r = await run(['app', 'deploy', '--no-wait'], f.dir);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  return f;
}

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A pod of the app's Deployment, as a kubelet would report it (the fake runs none). */
function putPod(fake: FakeKube, status: 'running' | { waiting: { reason: string; message: string } }): Any {
  const dep = fake.store.all().find((e) => e.resource.kind === 'Deployment' && e.obj.metadata?.namespace === ns)!.obj as Any;
  const containers = dep.spec.template.spec.containers.map((c: { name: string; image: string }) => ({ name: c.name, image: c.image }));
  const running = status === 'running';
  fake.setPod({
    metadata: { name: 'hello-1', namespace: ns, labels: dep.spec.template.metadata.labels, creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: { containers, nodeName: 'node1' },
    status: {
      phase: running ? 'Running' : 'Pending',
      containerStatuses: containers.map((c: { name: string; image: string }) => ({ ...c, ready: running, restartCount: 0, state: running ? { running: {} } : status })),
    },
  });
  return dep;
}

// Each test has its own cluster and project (fresh/deployed): none builds on another.
describe('kompoxops app lifecycle (CLI, fake API server)', () => {
  test('help of every lifecycle command', async (t) => {
    const { dir } = await fresh(t);
    for (const c of ['deploy', 'destroy', 'status', 'logs', 'exec', 'tunnel', 'kubectl']) {
      const r = await run(['app', c, '--help'], dir);
      assert.equal(r.code, 0, c);
      assert.match(r.stdout, new RegExp(`Usage: kompoxops app ${c}`));
    }
    const k = await run(['cluster', 'kubeconfig', '--help'], dir);
    assert.match(k.stdout, /--merge/);
  });

  test('dry run on an empty cluster: everything would be created, nothing is', async (t) => {
    const { fake, dir } = await fresh(t);
    const r = await run(['app', 'deploy', '--dry-run'], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^would create Namespace\/k4x-hello-/m);
    assert.match(r.stdout, /would create Deployment\//);
    assert.deepEqual(writes(fake), []);
  });

  test('deploy without controllers: applied, then exit 3 with what it saw', async (t) => {
    const { fake, dir } = await fresh(t);
    const r = await run(['app', 'deploy', '--timeout', '2s'], dir);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stderr, /created Deployment\/k4x-hello-\w+\/hello/);
    assert.match(r.stderr, /created PersistentVolume\//);
    assert.match(r.stderr, /error: applied, but not ready within 2s: .*no pod was created for deployment \S+ \(is the controller manager running\?\)/);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
    const nsObj = fake.store.all().find((e) => e.resource.kind === 'Namespace' && String(e.obj.metadata?.name).startsWith('k4x-hello-'));
    assert.ok(nsObj);
    assert.equal(nsObj.obj.metadata!.name, ns);
    const ann = nsObj.obj.metadata!.annotations as Record<string, string>;
    assert.equal(ann['kompox.dev/app'], 'ops/k3s1/k3s/hello');
    assert.equal(ann['kompox.dev/provider'], 'k3s');
    assert.ok(Object.keys(ann).some((k) => k.startsWith('kompox.dev/disk-current-id')), JSON.stringify(ann));
  });

  test('redeploy with the same inputs writes nothing', async (t) => {
    const { fake, dir } = await deployed(t);
    const before = versions(fake);
    const r = await run(['app', 'deploy', '--no-wait'], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /0 created, 0 changed, \d+ unchanged, 0 pruned/);
    assert.equal(versions(fake), before);
  });

  test('a changed image shows as a change in the dry run', async (t) => {
    const { dir } = await deployed(t);
    writeFileSync(join(dir, 'compose.yml'), COMPOSE.replace('nginx:1.27', 'nginx:1.28'));
    try {
      const r = await run(['app', 'deploy', '--dry-run'], dir);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /would change Deployment\/\S+ \(spec\)/);
    } finally {
      writeFileSync(join(dir, 'compose.yml'), COMPOSE);
    }
  });

  test('status, logs and exec once a pod exists; a fatal pod state fails the deploy with exit 1', async (t) => {
    const { fake, dir } = await deployed(t);
    const dep = putPod(fake, { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "nginx:1.27"' } });
    const containers = dep.spec.template.spec.containers as Array<{ name: string }>;
    fake.setLogs(ns, 'hello-1', containers[0].name, 'one\ntwo\nthree\n');

    const st = await run(['app', 'status', '-o', 'json'], dir);
    assert.equal(st.code, 0, st.stderr);
    const s = JSON.parse(st.stdout);
    assert.equal(s.namespace, ns);
    assert.equal(s.pods[0].containers[0].state, 'waiting: ImagePullBackOff');
    assert.deepEqual(s.urls.length > 0, true);
    assert.ok(s.disks.current || Object.keys(s.disks.annotations).length > 0);
    const table = await run(['app', 'status'], dir);
    assert.match(table.stdout, /deployment: .* 0\/1 ready \(failed: .*ImagePullBackOff/);

    const logs = await run(['app', 'logs', '--tail', '2'], dir);
    assert.equal(logs.code, 0, logs.stderr);
    assert.equal(logs.stdout, 'two\nthree\n');
    const badC = await run(['app', 'logs', '-c', 'nosuch'], dir);
    assert.equal(badC.code, 2);
    assert.match(badC.stderr, /^error: pod hello-1 has no container "nosuch"\. Containers: /);

    const ex = await run(['app', 'exec', '--', 'exit', '5'], dir);
    assert.equal(ex.code, 5);
    const echo = await run(['app', 'exec', '--', 'echo', 'hi'], dir);
    assert.equal(echo.stdout, 'hi\n');
    const cat = await run(['app', 'exec', '-i', '--', 'cat'], dir, {}, 'from stdin\n');
    assert.equal(cat.code, 0, cat.stderr);
    assert.equal(cat.stdout, 'from stdin\n');

    const d = await run(['app', 'deploy', '--timeout', '30s'], dir);
    assert.equal(d.code, 1);
    assert.match(d.stderr, /error: applied, but the app cannot start: .*ImagePullBackOff: Back-off pulling image "nginx:1\.27"/);
  });

  test('app logs -f whose reader goes away (`| head -1`): it stops following and exits 0, with no stack trace; the stream to the API server is closed', async (t) => {
    const { fake, dir } = await deployed(t);
    const dep = putPod(fake, 'running');
    const container = (dep.spec.template.spec.containers as Array<{ name: string }>)[0]!.name;
    fake.setLogs(ns, 'hello-1', container, 'one\n');
    const child = spawn(process.execPath, [BIN.kompoxops, 'app', 'logs', '-f'], { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    t.after(() => clearTimeout(killer));
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    // the first line arrives while it follows; then the reader goes away, as `head -1` does after its line
    const first = await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString())));
    assert.equal(first, 'one\n');
    assert.equal(fake.logFollowers(ns, 'hello-1', container), 1);
    child.stdout.destroy();
    // the next lines it is sent have nowhere to go (EPIPE)
    const more = setInterval(() => fake.appendLogs(ns, 'hello-1', container, 'more\n'), 100);
    t.after(() => clearInterval(more));
    const code = await closed;
    clearInterval(more);
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /Unhandled|node:events|EPIPE|^\s+at /m);
    for (let i = 0; i < 300 && fake.logFollowers(ns, 'hello-1', container) > 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(fake.logFollowers(ns, 'hello-1', container), 0);
  });

  test('app exec whose stdout reader goes away (`| head -c 5`): the exec ends (exit 141, as by SIGPIPE) instead of running for good, and the command in the pod is stopped', async (t) => {
    // controllers, so the fake's kubelet runs the pod, and its exec'd commands on this machine
    const f = await fresh(t, { controllers: true, hostImages: () => 'host' });
    writeFileSync(join(f.dir, 'compose.yml'), COMPOSE.replace('/usr/share/nginx/html', '/data'));
    const d = await run(['app', 'deploy', '--timeout', '60s'], f.dir);
    assert.equal(d.code, 0, d.stderr);
    const loop = 'while :; do echo y; sleep 0.05; done';
    const r = await runCliPiped(['app', 'exec', '--', 'sh', '-c', loop], 'head -c 5', { cwd: f.dir, timeoutMs: 30_000 });
    assert.equal(r.code, 141, r.stderr);
    assert.doesNotMatch(r.stderr, /Unhandled|node:events|EPIPE|^\s+at /m);
    const ran = f.fake.hostExecs.find((x) => x.command.includes(loop));
    assert.ok(ran, 'the command ran in the pod');
    for (let i = 0; i < 300 && ran.exitCode === undefined; i++) await new Promise((res) => setTimeout(res, 100));
    assert.notEqual(ran.exitCode, undefined, 'the command in the pod was stopped');
  });

  test('app exec whose command cannot run (a Failure status without an exit code): its message and exit 1, not a silent exit 1', async (t) => {
    // the fake's kubelet runs no container here (no controllers), so the exec fails as a real one does: "container not found"
    const { fake, dir } = await deployed(t, { hostImages: () => 'host' });
    putPod(fake, 'running');
    const r = await run(['app', 'exec', '--', 'sh', '-c', 'true'], dir);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: cannot run sh in pod k4x-hello-\w+\/hello-1 \(container web\): unable to upgrade connection: container not found \("web"\)\. Check that the pod is running/m);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
  });

  test('app tunnel -- CMD: the command runs with the tunnel up and its exit code is passed through', async (t) => {
    const { fake, dir } = await deployed(t);
    putPod(fake, 'running');
    // the fake echoes what it receives on a pod port without a target
    const script = `const [l] = process.env.KOMPOX_TUNNEL_PORTS.split(':'); const c = require('net').connect(Number(l), '127.0.0.1', () => c.write('ping')); c.on('data', (d) => { console.log('got ' + d); process.exit(7); });`;
    const r = await run(['app', 'tunnel', '-p', '0:80', '--', process.execPath, '-e', script], dir);
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.stdout, 'got ping\n');
    assert.match(r.stderr, /forwarding 127\.0\.0\.1:\d+ -> hello:80/);
    const bad = await run(['app', 'tunnel', '-p', 'x:80', '--', 'true'], dir);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /invalid port mapping "x:80"/);
  });

  test('deploy exits 0 once the rollout is ready (status set as the controllers would)', async (t) => {
    const { fake, dir } = await deployed(t);
    // a ready pod, and the Deployment reported available
    const dep = putPod(fake, 'running');
    fake.setStatus({ apiVersion: 'apps/v1', kind: 'Deployment', name: dep.metadata.name, namespace: ns }, { observedGeneration: dep.metadata.generation, replicas: 1, updatedReplicas: 1, availableReplicas: 1, readyReplicas: 1 });
    const r = await run(['app', 'deploy', '--timeout', '30s'], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /deployed: deployment \S+: 1\/1 ready/);
  });

  test('cluster kubeconfig: file mode 600, app namespace, no clobbering without --merge/--force, merge keeps others', async (t) => {
    const { fake, dir } = await fresh(t);
    const out = join(dir, 'exported');
    const r = await run(['cluster', 'kubeconfig', '-o', out], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    const doc = parse(readFileSync(out, 'utf8'));
    assert.equal(doc['current-context'], 'k3s');
    assert.equal(doc.contexts[0].context.namespace, ns);
    assert.equal(doc.clusters[0].cluster.server, fake.url);
    const again = await run(['cluster', 'kubeconfig', '-o', out], dir);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists.*--merge/);
    writeFileSync(out, 'apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster: {server: https://x}\ncontexts:\n- name: other\n  context: {cluster: other}\nusers: []\ncurrent-context: other\n');
    const m = await run(['cluster', 'kubeconfig', '-o', out, '--merge', '--context', 'mine'], dir);
    assert.equal(m.code, 0, m.stderr);
    const merged = parse(readFileSync(out, 'utf8'));
    assert.deepEqual(merged.contexts.map((c: { name: string }) => c.name), ['other', 'mine']);
    assert.equal(merged['current-context'], 'mine');
  });

  test('destroy without --yes and no terminal refuses; with --yes deletes objects, keeps disks and says where the data is', async (t) => {
    const { fake, dir } = await deployed(t);
    const no = await run(['app', 'destroy'], dir);
    assert.equal(no.code, 2);
    assert.match(no.stderr, /refusing to destroy .* --yes/);
    const disksBefore = readdir(join(dir, 'disks'));
    const r = await run(['app', 'destroy', '--yes'], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /the data is kept on these disks/);
    const left = fake.store.all().filter((e) => e.obj.metadata?.namespace === ns && e.resource.kind !== 'Pod' && e.resource.kind !== 'Event');
    assert.deepEqual(left.map((e) => `${e.resource.kind}/${e.obj.metadata?.name}`), []);
    assert.ok(fake.store.all().some((e) => e.resource.kind === 'Namespace' && e.obj.metadata?.name === ns), 'namespace kept without --delete-namespace');
    assert.deepEqual(fake.store.all().filter((e) => e.resource.kind === 'PersistentVolume'), []);
    assert.deepEqual(readdir(join(dir, 'disks')), disksBefore);
    const gone = await run(['app', 'destroy', '--yes', '--delete-namespace'], dir);
    assert.equal(gone.code, 0, gone.stderr);
    assert.ok(!fake.store.all().some((e) => e.resource.kind === 'Namespace' && e.obj.metadata?.name === ns));
  });

  test('expired credentials and missing permissions: one clear message each, exit 1, no stack', async (t) => {
    const { fake, dir } = await deployed(t);
    fake.setAuth('expired');
    try {
      const r = await run(['app', 'status'], dir);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: the Kubernetes API server at http:\/\/127\.0\.0\.1:\d+ rejected the credentials \(401 Unauthorized\) during version check\. The credentials in the kubeconfig are missing or expired/);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    } finally {
      fake.setAuth('ok');
    }
    fake.forbid({ verb: 'patch', resource: 'deployments' });
    const r = await run(['app', 'deploy', '--no-wait'], dir);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: permission denied during apply of Deployment \S+\/hello: deployments\.apps "hello" is forbidden: User "kompox-test" cannot patch resource "deployments" in API group "apps" in the namespace "k4x-hello-\w+"\. The identity in the kubeconfig needs permission to patch deployments\.apps in namespace k4x-hello-\w+/);
    assert.match(r.stderr, /Re-running `kompoxops app deploy` after fixing the cause converges/);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
  });

  test('an identity that may not create PersistentVolumes: deploy stops before any disk or object is made', async (t) => {
    const { fake, dir } = await fresh(t);
    fake.forbid({ verb: 'create', resource: 'persistentvolumes' });
    try {
      const disksBefore = readdir(join(dir, 'disks'));
      const before = versions(fake);
      const r = await run(['app', 'deploy', '--no-wait'], dir);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /^error: the identity in the kubeconfig may not create persistentvolumes at cluster scope, which app deploy needs for the app's volumes; nothing was changed \(no disk was created\)\. Ask a cluster administrator/);
      assert.equal(versions(fake), before);
      assert.deepEqual(readdir(join(dir, 'disks')), disksBefore);
    } finally {
      fake.allowAll();
    }
  });

  test('a broken kubeconfig names the file', async (t) => {
    const { dir } = await fresh(t);
    const d2 = mkdtempSync(join(tmpdir(), 'kompox-app-cli-badkc-'));
    try {
      writeFileSync(join(d2, 'kompoxops.yml'), opsYaml(dir));
      writeFileSync(join(d2, 'compose.yml'), COMPOSE);
      writeFileSync(join(d2, 'kubeconfig'), 'clusters: [oops\n');
      const r = await run(['app', 'status'], d2);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`^error: ${join(d2, 'kubeconfig').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: not a valid kubeconfig`));
    } finally {
      rmSync(d2, { recursive: true, force: true });
    }
  });

  test('app kubectl without kubectl on PATH: a clear error', async (t) => {
    const { dir } = await fresh(t);
    const r = await run(['app', 'kubectl', '--', 'get', 'pods'], dir, { PATH: '/nonexistent' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: kubectl is not installed \(not found on PATH\)/);
  });

  test('unreachable API server: one clear message, exit 1', async (t) => {
    const { fake, dir } = await fresh(t);
    const d2 = mkdtempSync(join(tmpdir(), 'kompox-app-cli-down-'));
    try {
      writeFileSync(join(d2, 'kompoxops.yml'), opsYaml(dir));
      writeFileSync(join(d2, 'compose.yml'), COMPOSE);
      writeFileSync(join(d2, 'kubeconfig'), readFileSync(join(dir, 'kubeconfig'), 'utf8').replace(fake.url, 'http://127.0.0.1:9'));
      const r = await run(['app', 'status'], d2);
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim().split('\n')[0], 'error: cannot reach the Kubernetes API server at http://127.0.0.1:9: connection refused. Check that the cluster is running and that the kubeconfig (server URL, context) is right.');
    } finally {
      rmSync(d2, { recursive: true, force: true });
    }
  });
});

function readdir(p: string): string[] {
  return existsSync(p) ? readdirSync(p).sort() : [];
}

const NO_TLS_KUBECTL =
  spawnSync('openssl', ['version']).status !== 0
    ? 'the openssl CLI is not installed'
    : spawnSync('kubectl', ['version', '--client']).status !== 0
      ? 'kubectl is not installed'
      : false;

test('app kubectl runs kubectl with a temporary kubeconfig and the app namespace', { skip: NO_TLS_KUBECTL }, async () => {
  const fake = await startFakeKube({ tls: true });
  const dir = mkdtempSync(join(tmpdir(), 'kompox-app-kubectl-'));
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  try {
    writeFileSync(join(dir, 'kubeconfig'), fake.kubeconfig);
    writeFileSync(join(dir, 'kompoxops.yml'), opsYaml(dir));
    writeFileSync(join(dir, 'compose.yml'), COMPOSE);
    const view = await run(['app', 'kubectl', '--', 'config', 'view', '--minify', '-o', 'jsonpath={.contexts[0].context.namespace}'], dir, { TMPDIR: tmp });
    assert.equal(view.code, 0, view.stderr);
    assert.match(view.stdout, /^k4x-hello-[0-9a-f]{6}$/);
    const created = await run(['app', 'kubectl', '--', 'create', 'namespace', view.stdout], dir, { TMPDIR: tmp });
    assert.equal(created.code, 0, created.stderr);
    const get = await run(['app', 'kubectl', '--', 'get', 'configmaps'], dir, { TMPDIR: tmp });
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stderr + get.stdout, /No resources found in k4x-hello-\w+ namespace/);
    const bad = await run(['app', 'kubectl', '--', 'get', 'nosuchkind'], dir, { TMPDIR: tmp });
    assert.equal(bad.code, 1, 'kubectl exit code passed through');
    // the CLI's temporary directory of its own (another run's kubectl could be in the shared one): nothing left in it
    assert.deepEqual(readdirSync(tmp), [], 'temporary kubeconfig removed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await fake.close();
  }
});

// The same lifecycle against a real API server (e.g. the acceptance cluster: RBAC on, no nodes).
test(
  'real cluster: deploy (ready or a clean not-ready report), idempotent redeploy, destroy',
  { skip: process.env.KOMPOX_TEST_KUBECONFIG ? false : 'KOMPOX_TEST_KUBECONFIG is not set' },
  async () => {
    const { connectKubeconfig } = await import('../../src/kube/index.js');
    const dir = mkdtempSync(join(tmpdir(), 'kompox-app-real-'));
    mkdirSync(join(dir, 'disks'));
    mkdirSync(join(dir, 'snapshots'));
    const ctxName = process.env.KOMPOX_TEST_CONTEXT;
    writeFileSync(join(dir, 'kubeconfig'), readFileSync(process.env.KOMPOX_TEST_KUBECONFIG!, 'utf8'));
    writeFileSync(join(dir, 'kompoxops.yml'), opsYaml(dir).replace('kubeconfig: ./kubeconfig', `kubeconfig: ./kubeconfig${ctxName ? `\n    context: ${ctxName}` : ''}`).replace('name: hello', `name: hello-${process.pid}`));
    writeFileSync(join(dir, 'compose.yml'), COMPOSE);
    try {
      const d = await run(['app', 'deploy', '--timeout', '20s'], dir);
      assert.ok(d.code === 0 || d.code === 3, d.stdout + d.stderr);
      if (d.code === 3) assert.match(d.stderr, /error: applied, but not ready within 20s: deployment \S+: 0\/1 ready; (no pod was created|pod \S+ Pending|replica set)/);
      assert.doesNotMatch(d.stderr, /^\s+at /m);
      const st = JSON.parse((await run(['app', 'status', '-o', 'json'], dir)).stdout);
      const kube = await connectKubeconfig({ path: join(dir, 'kubeconfig'), context: ctxName });
      const snapshot = async () =>
        JSON.stringify(
          (await Promise.all([['v1', 'ConfigMap'], ['apps/v1', 'Deployment'], ['v1', 'Service'], ['networking.k8s.io/v1', 'Ingress'], ['v1', 'PersistentVolumeClaim']].map(([v, k]) => kube.list(v!, k!, { namespace: st.namespace }))))
            .flat()
            .map((o) => `${o.kind}/${o.metadata.name}@${o.metadata.resourceVersion}`)
            .sort(),
        );
      const before = await snapshot();
      const again = await run(['app', 'deploy', '--no-wait'], dir);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /0 created, 0 changed, \d+ unchanged, 0 pruned/);
      assert.equal(await snapshot(), before);
      const gone = await run(['app', 'destroy', '--yes', '--delete-namespace'], dir);
      assert.equal(gone.code, 0, gone.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
