// Pods with depends_on sidecars and one-shot init containers: status lists
// them (marked), logs/exec accept their names and default to the first
// regular container (the app), against the fake API server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import type { AppContext } from '../../src/domain/model.js';
import { appLabels, appNamespace, appSelector } from '../../src/domain/names.js';
import { KompoxError } from '../../src/domain/errors.js';
import { connectKubeconfig, type KubeClient, type KubeObject } from '../../src/kube/index.js';
import { appStatus, podStatus } from '../../src/usecases/app-status.js';
import { appLogs, logTarget, chooseContainer, containerNames, describeContainers, podContainers } from '../../src/usecases/app-logs.js';
import { appExec } from '../../src/usecases/app-exec.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';

const ctx = {
  service: { name: 'svc' },
  provider: { name: 'prv', service: 'svc', driver: 'k3s', settings: {} },
  cluster: { name: 'cls', provider: 'prv', auth: { type: 'kubectl' }, ingress: { controller: 'traefik', namespace: 'traefik' }, settings: {} },
  app: { name: 'side', cluster: 'cls', compose: '', ingress: {}, resources: {}, settings: {}, volumes: [] },
} as unknown as AppContext;
const ns = appNamespace(ctx);

// What the converter makes of web → db (service_healthy) + migrate (service_completed_successfully).
const spec = {
  initContainers: [
    { name: 'kompox-init', image: 'busybox:1.36' },
    { name: 'db', image: 'postgres:16', restartPolicy: 'Always' },
    { name: 'migrate', image: 'app:1' },
  ],
  containers: [{ name: 'web', image: 'app:1' }, { name: 'worker', image: 'app:1' }],
};
const status = {
  phase: 'Running',
  initContainerStatuses: [
    { name: 'kompox-init', ready: true, restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed' } } },
    { name: 'db', ready: true, started: true, restartCount: 1, state: { running: { startedAt: '2026-01-01T00:00:00Z' } }, lastState: { terminated: { exitCode: 137, reason: 'OOMKilled' } } },
    { name: 'migrate', ready: true, restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed' } } },
  ],
  containerStatuses: [
    { name: 'web', ready: true, restartCount: 0, state: { running: {} } },
    { name: 'worker', ready: true, restartCount: 0, state: { running: {} } },
  ],
};
const pod = (): KubeObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'side-1', namespace: ns, labels: { ...appLabels(ctx), ...appSelector(ctx) } }, spec, status });

function sink(): { stream: PassThrough; text(): string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

test('podContainers: regular containers first, then init containers in start order, each with its kind', () => {
  assert.deepEqual(podContainers(pod()).map((c) => [c.name, c.kind]), [
    ['web', 'container'], ['worker', 'container'], ['kompox-init', 'init'], ['db', 'sidecar'], ['migrate', 'init'],
  ]);
  assert.deepEqual(containerNames(pod()), ['web', 'worker', 'kompox-init', 'db', 'migrate']);
  assert.equal(describeContainers(pod()), 'web, worker; sidecars: db; init containers: kompox-init, migrate');
});

test('chooseContainer: default is the first regular container, sidecars and init containers can be asked for, others are refused', () => {
  assert.equal(chooseContainer(pod(), undefined), 'web');
  assert.equal(chooseContainer(pod(), 'db'), 'db');
  assert.equal(chooseContainer(pod(), 'migrate'), 'migrate');
  assert.throws(() => chooseContainer(pod(), 'nosuch'), (e: unknown) => {
    assert.ok(e instanceof KompoxError && e.kind === 'usage');
    assert.equal(e.message, 'pod side-1 has no container "nosuch"');
    assert.equal(e.hint, 'Containers: web, worker; sidecars: db; init containers: kompox-init, migrate.');
    return true;
  });
});

test('podStatus lists sidecars and one-shot init containers after the app containers, marked as such', () => {
  const st = podStatus(pod());
  assert.deepEqual(
    st.containers.map((c) => [c.name, c.kind ?? 'container', c.state, c.ready, c.restarts]),
    [
      ['web', 'container', 'running', true, 0],
      ['worker', 'container', 'running', true, 0],
      ['kompox-init', 'init', 'terminated: Completed (exit 0)', true, 0],
      ['db', 'sidecar', 'running', true, 1],
      ['migrate', 'init', 'terminated: Completed (exit 0)', true, 0],
    ],
  );
  assert.deepEqual(st.containers.find((c) => c.name === 'db')!.lastState, { reason: 'OOMKilled', exitCode: 137, finishedAt: undefined });
  assert.equal(st.containers[0]!.kind, undefined, 'regular containers carry no kind (unchanged output)');
});

describe('against the fake API server', () => {
  let fake: FakeKube;
  let kube: KubeClient;
  before(async () => {
    fake = await startFakeKube();
    kube = await connectKubeconfig({ path: fake.kubeconfigPath });
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    fake.setPod(pod());
    fake.setLogs(ns, 'side-1', 'web', 'web says hi\n');
  });
  after(async () => fake.close());

  test('status: the pod with its sidecar and init containers', async () => {
    const st = await appStatus(ctx, kube);
    assert.deepEqual(st.pods[0]!.containers.map((c) => `${c.name}:${c.kind ?? 'container'}`), ['web:container', 'worker:container', 'kompox-init:init', 'db:sidecar', 'migrate:init']);
  });

  test('logs default to the first regular container and say which others exist', async () => {
    const out = sink();
    const target = await logTarget(ctx, kube);
    assert.deepEqual(target, { pod: target.pod, container: 'web', others: ['worker', 'kompox-init', 'db', 'migrate'] });
    const r = await appLogs(ctx, kube, { out: out.stream });
    assert.equal(r.container, 'web');
    assert.equal(out.text(), 'web says hi\n');
    await assert.rejects(appLogs(ctx, kube, { out: sink().stream, container: 'nosuch' }), /has no container "nosuch"/);
  });

  test('logs -c of a sidecar and of a one-shot init container', async () => {
    fake.setLogs(ns, 'side-1', 'db', 'database system is ready to accept connections\n');
    fake.setLogs(ns, 'side-1', 'migrate', 'applied 3 migrations\n');
    for (const [c, want] of [['db', 'database system is ready to accept connections\n'], ['migrate', 'applied 3 migrations\n']] as const) {
      const out = sink();
      const r = await appLogs(ctx, kube, { out: out.stream, container: c });
      assert.equal(r.container, c);
      assert.equal(out.text(), want);
    }
  });

  test('exec defaults to the first regular container; -c may name a sidecar', async () => {
    const seen: (string | undefined)[] = [];
    fake.onExec((req) => {
      seen.push(req.container);
      return { stdout: `${req.container}\n`, exitCode: 0 };
    });
    const run = async (container?: string) => {
      const out = sink();
      const code = await appExec(ctx, kube, { command: ['hostname'], container, stdout: out.stream, stderr: sink().stream });
      return [code, out.text()];
    };
    assert.deepEqual(await run(), [0, 'web\n']);
    assert.deepEqual(await run('db'), [0, 'db\n']);
    assert.deepEqual(seen, ['web', 'db']);
    await assert.rejects(run('nosuch'), (e: unknown) => e instanceof KompoxError && /sidecars: db/.test(e.hint ?? ''));
  });
});
