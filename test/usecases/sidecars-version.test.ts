// depends_on on clusters without native sidecars (Kubernetes < 1.29): app
// deploy reads the server version before it writes anything and falls back to
// the flat layout with a warning naming the version and the setting, or, when
// KOMPOX_SIDECARS says true on a server that cannot have them, refuses before
// anything (not even a disk) is made. Through the real binary against the fake
// API server pretending to be that version (test/support/fake-kube/server-version.ts),
// and the same deploy against a real cluster when KOMPOX_TEST_KUBECONFIG is set.
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, STACK_LINE, type CliResult } from '../support/cli.js';
import { startFakeKube, type FakeKube, type FakeKubeOptions } from '../support/fake-kube/index.js';
import { connectKubeconfig } from '../../src/kube/index.js';
import { KompoxError, formatError } from '../../src/domain/errors.js';
import { kubernetesVersion, nativeSidecars } from '../../src/domain/kube-version.js';
import { k3sOpsYaml } from '../support/ops-yaml.js';

const COMPOSE = `services:
  web:
    image: nginx:1.27
    depends_on:
      db: {condition: service_healthy}
    volumes: [data:/usr/share/nginx/html]
  db:
    image: postgres:16
    healthcheck: {test: [CMD, pg_isready], interval: 3s}
volumes:
  data: {}
`;

const opsYaml = (dir: string, opts: { app?: string; settings?: Record<string, string>; context?: string } = {}): string =>
  k3sOpsYaml(dir, { app: opts.app ?? 'side', clusterSettings: opts.settings, context: opts.context });

/** Requests that may store something (GETs, access reviews and dry runs store nothing). */
function writes(fake: FakeKube): string[] {
  return fake.requests.filter((r) => r.method !== 'GET' && r.query.dryRun === undefined && !r.path.endsWith('/selfsubjectaccessreviews')).map((r) => `${r.method} ${r.path}`);
}

type PodSpec = { initContainers?: { name: string; restartPolicy?: string }[]; containers: { name: string }[] };
function storedPodSpec(fake: FakeKube): PodSpec {
  const d = fake.store.all().find((e) => e.resource.kind === 'Deployment');
  assert.ok(d, 'a Deployment was stored');
  return (d.obj.spec as { template: { spec: PodSpec } }).template.spec;
}

describe('depends_on and the server version (fake API server)', () => {
  let fake: FakeKube | undefined;
  let dir: string;
  const start = async (o: FakeKubeOptions, settings?: Record<string, string>) => {
    fake = await startFakeKube(o);
    copyFileSync(fake.kubeconfigPath, join(dir, 'kubeconfig'));
    writeFileSync(join(dir, 'kompoxops.yml'), opsYaml(dir, { settings }));
    return fake;
  };
  const deploy = (): Promise<CliResult> => runCli(['app', 'deploy', '--no-wait'], { cwd: dir });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kompox-sidecars-'));
    mkdirSync(join(dir, 'disks'));
    mkdirSync(join(dir, 'snapshots'));
    writeFileSync(join(dir, 'compose.yml'), COMPOSE);
  });
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  test('1.28 (feature gate off): the app deploys in the flat layout, with a warning naming the version and the setting; every object is written', async () => {
    const f = await start({ version: 'v1.28.15+k3s1' });
    const r = await deploy();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stderr, /warning: the API server runs Kubernetes v1\.28\.15\+k3s1, which has no native sidecars .*depends_on start order is not enforced/);
    assert.match(r.stderr, /cluster\.settings\.KOMPOX_SIDECARS: "true"/);
    assert.match(r.stderr, /depends_on db \(service_healthy\) is not enforced \(Kubernetes v1\.28\.15\+k3s1 has no native sidecars\)/);
    assert.doesNotMatch(r.stderr, STACK_LINE);
    // db is a regular container, not an init container the 1.28 server would have stripped of restartPolicy (an Init that never ends)
    const spec = storedPodSpec(f);
    assert.deepEqual(spec.initContainers?.map((c) => c.name), ['kompox-init']);
    assert.ok(!spec.initContainers?.some((c) => c.restartPolicy !== undefined));
    assert.deepEqual(spec.containers.map((c) => c.name), ['db', 'web']);
    // nothing half-written: everything the deploy reports is stored, and the inventory lists it
    assert.match(r.stdout, /\d+ created, 0 changed, \d+ unchanged, 0 pruned; applied/);
    const kinds = f.store.all().map((e) => e.resource.kind);
    for (const k of ['Namespace', 'PersistentVolume', 'PersistentVolumeClaim', 'Deployment', 'NetworkPolicy']) assert.ok(kinds.includes(k), `${k} stored`);
  });

  test('1.28 with the SidecarContainers gate and KOMPOX_SIDECARS=true: native sidecars, kept by the server', async () => {
    const f = await start({ version: 'v1.28.15', featureGates: { SidecarContainers: true } }, { KOMPOX_SIDECARS: 'true' });
    const r = await deploy();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stderr, /no native sidecars/);
    assert.deepEqual(storedPodSpec(f).initContainers?.map((c) => [c.name, c.restartPolicy ?? null]), [['kompox-init', null], ['db', 'Always']]);
  });

  test('1.27 with KOMPOX_SIDECARS=true: refused before anything is written (no object, no disk)', async () => {
    const f = await start({ version: 'v1.27.16' }, { KOMPOX_SIDECARS: 'true' });
    const r = await deploy();
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /cluster\.settings\.KOMPOX_SIDECARS is true, but the API server runs Kubernetes v1\.27\.16-fake, which has no native sidecars/);
    assert.doesNotMatch(r.stderr, /Retry later/);
    assert.doesNotMatch(r.stderr, STACK_LINE);
    assert.deepEqual(writes(f), []);
    assert.deepEqual(readdirSync(join(dir, 'disks')), [], 'no disk was created');
  });

  test('1.31: native sidecars and no warning', async () => {
    const f = await start({ version: 'v1.31.4' });
    const r = await deploy();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stderr, /no native sidecars|not enforced/);
    assert.deepEqual(storedPodSpec(f).initContainers?.map((c) => [c.name, c.restartPolicy ?? null]), [['kompox-init', null], ['db', 'Always']]);
  });

  test('a field the server does not know is a clear error naming the version and the field, never "retry later" (1.27, server-side apply)', async () => {
    const f = await start({ version: 'v1.27.16' });
    const kube = await connectKubeconfig({ path: f.kubeconfigPath });
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n1' } });
    const dep = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'app', namespace: 'n1' },
      spec: {
        selector: { matchLabels: { a: 'b' } },
        template: { metadata: { labels: { a: 'b' } }, spec: { initContainers: [{ name: 'writer', image: 'busybox:1.37', restartPolicy: 'Always' }], containers: [{ name: 'app', image: 'nginx:1.27' }] } },
      },
    };
    await assert.rejects(kube.apply(dep), (e: unknown) => {
      assert.ok(e instanceof KompoxError, String(e));
      const text = formatError(e);
      assert.match(text, /the API server \(Kubernetes v1\.27\.16-fake\) does not support \.spec\.template\.spec\.initContainers\[name="writer"\]\.restartPolicy/);
      assert.match(text, /needs Kubernetes 1\.29 or later .*KOMPOX_SIDECARS: "false"/);
      assert.doesNotMatch(text, /Retry later/);
      assert.equal(e.kind, 'config');
      return true;
    });
    assert.equal(f.store.all().filter((e) => e.resource.kind === 'Deployment').length, 0);
  });
});

test('server versions: parsed from gitVersion (or major/minor "28+"), sidecars served from 1.29', () => {
  assert.deepEqual(kubernetesVersion({ gitVersion: 'v1.28.15+k3s1', major: '1', minor: '28' }), { gitVersion: 'v1.28.15+k3s1', major: 1, minor: 28 });
  assert.deepEqual(kubernetesVersion({ gitVersion: '', major: '1', minor: '27+' }), { gitVersion: 'v1.27', major: 1, minor: 27 });
  assert.equal(kubernetesVersion({ gitVersion: 'weird' }), undefined);
  assert.deepEqual(['v1.26.0', 'v1.27.3', 'v1.28.0', 'v1.29.0', 'v1.33.1'].map((v) => nativeSidecars(kubernetesVersion({ gitVersion: v })!)), ['absent', 'absent', 'feature-gate', 'served', 'served']);
});

const REAL = process.env.KOMPOX_TEST_KUBECONFIG;
test('real cluster: a depends_on app deploys; sidecars when the server serves them, else the flat layout with the warning', { skip: REAL ? false : 'KOMPOX_TEST_KUBECONFIG is not set' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kompox-sidecars-real-'));
  mkdirSync(join(dir, 'disks'));
  mkdirSync(join(dir, 'snapshots'));
  const context = process.env.KOMPOX_TEST_CONTEXT;
  writeFileSync(join(dir, 'kubeconfig'), readFileSync(REAL!, 'utf8'));
  writeFileSync(join(dir, 'kompoxops.yml'), opsYaml(dir, { app: `side-${process.pid}`, context }));
  writeFileSync(join(dir, 'compose.yml'), COMPOSE);
  const kube = await connectKubeconfig({ path: join(dir, 'kubeconfig'), context });
  const version = kubernetesVersion(await kube.version())!;
  try {
    const r = await runCli(['app', 'deploy', '--no-wait'], { cwd: dir });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const st = JSON.parse((await runCli(['app', 'status', '-o', 'json'], { cwd: dir })).stdout) as { namespace: string };
    const d = (await kube.list('apps/v1', 'Deployment', { namespace: st.namespace }))[0]!;
    const spec = (d.spec as { template: { spec: PodSpec } }).template.spec;
    if (nativeSidecars(version) === 'served') {
      assert.deepEqual(spec.initContainers?.map((c) => [c.name, c.restartPolicy ?? null]), [['kompox-init', null], ['db', 'Always']]);
    } else {
      assert.match(r.stderr, new RegExp(`Kubernetes ${version.gitVersion.replace(/[.+]/g, '\\$&')}, which has no native sidecars`));
      assert.deepEqual(spec.containers.map((c) => c.name), ['db', 'web']);
    }
    const gone = await runCli(['app', 'destroy', '--yes', '--delete-namespace'], { cwd: dir });
    assert.equal(gone.code, 0, gone.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

