// Rollout assessment: each reason a pod cannot become ready is reported from
// pod status/events; the wait loop against the fake (no controllers) reports
// cleanly instead of hanging.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '../../src/kube/types.js';
import { assessDeployment, waitForDeployments } from '../../src/kube/rollout.js';
import type { KubeClient } from '../../src/kube/index.js';
import type { FakeKube } from '../support/fake-kube/index.js';
import { startFakeCluster } from '../support/kube.js';

const dep = (status: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'ns', uid: 'dep-uid', generation: 1 },
  spec: { replicas: 1, selector: { matchLabels: { app: 'web' } } },
  status,
});
const rs: KubeObject = {
  apiVersion: 'apps/v1',
  kind: 'ReplicaSet',
  metadata: { name: 'web-abc', namespace: 'ns', ownerReferences: [{ kind: 'Deployment', name: 'web', uid: 'dep-uid' }], creationTimestamp: '2026-01-01T00:00:00Z' },
};
const pod = (status: Record<string, unknown>, spec: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web-abc-1', namespace: 'ns', labels: { app: 'web' } },
  spec: { containers: [{ name: 'web', image: 'nginx' }], ...spec },
  status,
});

test('no ReplicaSet: the controller manager is not running', () => {
  const v = assessDeployment(dep(), [], [], []);
  assert.equal(v.state, 'progressing');
  assert.equal(v.message, 'deployment web: 0/1 ready; no pod was created for deployment web (is the controller manager running?)');
});

test('ReplicaSet but no pod: the ReplicaSet event says why', () => {
  const ev = { apiVersion: 'v1', kind: 'Event', metadata: { name: 'e', namespace: 'ns' }, involvedObject: { kind: 'ReplicaSet', name: 'web-abc' }, reason: 'FailedCreate', message: 'pods "web-abc-" is forbidden: exceeded quota', type: 'Warning', lastTimestamp: '2026-01-01T00:00:01Z' };
  const v = assessDeployment(dep(), [rs], [], [ev]);
  assert.match(v.message, /replica set web-abc: FailedCreate: pods "web-abc-" is forbidden: exceeded quota/);
});

test('unschedulable pod: the scheduler message', () => {
  const v = assessDeployment(dep({ observedGeneration: 1 }), [rs], [pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/0 nodes are available: no nodes available to schedule pods.' }] })], []);
  assert.equal(v.state, 'progressing');
  assert.match(v.message, /pod web-abc-1 Pending: 0\/0 nodes are available/);
});

test('pending pod without scheduler activity', () => {
  const v = assessDeployment(dep(), [rs], [pod({ phase: 'Pending' })], []);
  assert.match(v.message, /pod web-abc-1 Pending: not scheduled to a node yet/);
});

for (const [reason, msg] of [
  ['ImagePullBackOff', 'Back-off pulling image "nginx:nope"'],
  ['ErrImagePull', 'rpc error: manifest unknown'],
  ['CreateContainerConfigError', 'secret "x" not found'],
]) {
  test(`fatal: ${reason}`, () => {
    const v = assessDeployment(dep(), [rs], [pod({ phase: 'Pending', containerStatuses: [{ name: 'web', ready: false, restartCount: 0, state: { waiting: { reason, message: msg } } }] })], []);
    assert.equal(v.state, 'failed');
    assert.equal(v.message, `deployment web: pod web-abc-1: container web: ${reason}: ${msg}`);
  });
}

test('fatal: CrashLoopBackOff with the last exit code', () => {
  const v = assessDeployment(dep(), [rs], [pod({ phase: 'Running', containerStatuses: [{ name: 'web', ready: false, restartCount: 4, state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s' } }, lastState: { terminated: { exitCode: 2, reason: 'Error' } } }] })], []);
  assert.equal(v.state, 'failed');
  assert.match(v.message, /CrashLoopBackOff: back-off 40s; last exit code 2 \(Error\)/);
});

test('ready: counters and pods agree', () => {
  const v = assessDeployment(
    dep({ observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: 1, readyReplicas: 1 }),
    [rs],
    [pod({ phase: 'Running', containerStatuses: [{ name: 'web', ready: true, restartCount: 0, state: { running: {} } }] })],
    [],
  );
  assert.deepEqual(v, { state: 'ready', message: 'deployment web: 1/1 ready' });
});

test('a crashing pod of the previous revision does not fail the new rollout', () => {
  const d = dep({ observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: 1, readyReplicas: 1 });
  d.metadata.annotations = { 'deployment.kubernetes.io/revision': '2' };
  const rsOld = { ...rs, metadata: { ...rs.metadata, name: 'web-old', uid: 'rs-old', annotations: { 'deployment.kubernetes.io/revision': '1' } } };
  const rsNew = { ...rs, metadata: { ...rs.metadata, name: 'web-new', uid: 'rs-new', annotations: { 'deployment.kubernetes.io/revision': '2' } } };
  const oldPod = pod({ phase: 'Running', containerStatuses: [{ name: 'web', ready: false, restartCount: 5, state: { waiting: { reason: 'CrashLoopBackOff' } } }] });
  oldPod.metadata = { ...oldPod.metadata, name: 'web-old-1', ownerReferences: [{ kind: 'ReplicaSet', name: 'web-old', uid: 'rs-old' }] };
  const newPod = pod({ phase: 'Running', containerStatuses: [{ name: 'web', ready: true, restartCount: 0, state: { running: {} } }] });
  newPod.metadata = { ...newPod.metadata, name: 'web-new-1', ownerReferences: [{ kind: 'ReplicaSet', name: 'web-new', uid: 'rs-new' }] };
  assert.equal(assessDeployment(d, [rsOld, rsNew], [oldPod, newPod], []).state, 'ready');
  // and the same crash in the current revision is a failure
  oldPod.metadata.ownerReferences = [{ kind: 'ReplicaSet', name: 'web-new', uid: 'rs-new' }];
  assert.equal(assessDeployment(d, [rsOld, rsNew], [oldPod, newPod], []).state, 'failed');
});

test('old generation observed: not ready yet', () => {
  const d = dep({ observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: 1, readyReplicas: 1 });
  d.metadata.generation = 2;
  assert.equal(assessDeployment(d, [rs], [], []).state, 'progressing');
});

// A pod with kompox-init, a sidecar (db) and a one-shot (migrate) before the app container.
const initSpec = {
  initContainers: [
    { name: 'kompox-init', image: 'busybox:1.36' },
    { name: 'db', image: 'postgres:16', restartPolicy: 'Always' },
    { name: 'migrate', image: 'app:1' },
  ],
};
const done = { name: 'kompox-init', ready: true, restartCount: 0, started: false, state: { terminated: { exitCode: 0, reason: 'Completed' } } };
const dbUp = { name: 'db', ready: true, restartCount: 0, started: true, state: { running: { startedAt: '2026-01-01T00:00:02Z' } } };
const webWaiting = { name: 'web', ready: false, restartCount: 0, state: { waiting: { reason: 'PodInitializing' } } };

test('a failing one-shot init container (Init:Error) is fatal, named, with its exit code', () => {
  const migrate = { name: 'migrate', ready: false, restartCount: 0, state: { terminated: { exitCode: 3, reason: 'Error', message: 'relation "users" already exists' } } };
  const v = assessDeployment(dep(), [rs], [pod({ phase: 'Pending', initContainerStatuses: [done, dbUp, migrate], containerStatuses: [webWaiting] }, initSpec)], []);
  assert.equal(v.state, 'failed');
  assert.equal(v.message, 'deployment web: pod web-abc-1: init container migrate failed: Init:Error, exit code 3: relation "users" already exists');
});

test('a one-shot being retried after a failure is fatal too (last exit code non-zero)', () => {
  const migrate = { name: 'migrate', ready: false, restartCount: 1, state: { running: { startedAt: 'x' } }, lastState: { terminated: { exitCode: 1, reason: 'Error' } } };
  const v = assessDeployment(dep(), [rs], [pod({ phase: 'Pending', initContainerStatuses: [done, dbUp, migrate], containerStatuses: [webWaiting] }, initSpec)], []);
  assert.equal(v.state, 'failed');
  assert.match(v.message, /init container migrate failed: Init:Error, exit code 1 \(1 restarts\)/);
});

test('Init:CrashLoopBackOff of a one-shot and CrashLoopBackOff of a sidecar are fatal, named by kind', () => {
  const crash = (name: string) => ({ name, ready: false, restartCount: 4, state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 1m20s' } }, lastState: { terminated: { exitCode: 1, reason: 'Error' } } });
  const one = assessDeployment(dep(), [rs], [pod({ phase: 'Pending', initContainerStatuses: [done, dbUp, crash('migrate')], containerStatuses: [webWaiting] }, initSpec)], []);
  assert.equal(one.message, 'deployment web: pod web-abc-1: init container migrate: Init:CrashLoopBackOff: back-off 1m20s; last exit code 1 (Error)');
  const side = assessDeployment(dep(), [rs], [pod({ phase: 'Pending', initContainerStatuses: [done, crash('db')], containerStatuses: [webWaiting] }, initSpec)], []);
  assert.equal(side.state, 'failed');
  assert.match(side.message, /pod web-abc-1: sidecar db: Init:CrashLoopBackOff/);
});

test('while initialising: the sidecar waiting for its startup probe, then the running one-shot', () => {
  const dbStarting = { ...dbUp, ready: false, started: false };
  const a = assessDeployment(dep(), [rs], [pod({ phase: 'Pending', initContainerStatuses: [done, dbStarting, { name: 'migrate', ready: false, restartCount: 0, state: { waiting: { reason: 'PodInitializing' } } }], containerStatuses: [webWaiting] }, { ...initSpec, nodeName: 'n1' })], []);
  assert.equal(a.state, 'progressing');
  assert.match(a.message, /pod web-abc-1 Pending: sidecar db started, waiting for its startup probe/);
  const b = assessDeployment(dep(), [rs], [pod({ phase: 'Pending', initContainerStatuses: [done, dbUp, { name: 'migrate', ready: false, restartCount: 0, state: { running: {} } }], containerStatuses: [webWaiting] }, { ...initSpec, nodeName: 'n1' })], []);
  assert.match(b.message, /pod web-abc-1 Pending: init container migrate running/);
});

test('ready: completed one-shots do not count as not ready; a sidecar that is not ready does', () => {
  const st = { observedGeneration: 1, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 };
  const migrated = { name: 'migrate', ready: false, restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed' } } };
  const web = { name: 'web', ready: true, restartCount: 0, state: { running: {} } };
  const ok = assessDeployment(dep(st), [rs], [pod({ phase: 'Running', initContainerStatuses: [done, dbUp, migrated], containerStatuses: [web] }, initSpec)], []);
  assert.equal(ok.state, 'ready', ok.message);
  const dbNotReady = { ...dbUp, ready: false };
  const notOk = assessDeployment(dep({ ...st, readyReplicas: 0, availableReplicas: 0 }), [rs], [pod({ phase: 'Running', initContainerStatuses: [done, dbNotReady, migrated], containerStatuses: [web] }, initSpec)], []);
  assert.equal(notOk.state, 'progressing');
  assert.match(notOk.message, /pod web-abc-1 Running: sidecar db running, not ready \(readiness probe\)/);
});

describe('waitForDeployments against the fake (no controllers)', () => {
  let fake: FakeKube;
  let kube: KubeClient;
  before(async () => {
    // a cluster without controller manager, scheduler or kubelet: the test puts the pods in place
    ({ fake, kube } = await startFakeCluster({ controllers: false }));
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ns' } });
    // a Deployment the real API server accepts (template labels match the selector, one container)
    const d = dep();
    const spec = { ...(d.spec as object), template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'nginx' }] } } };
    await kube.apply({ ...d, spec, metadata: { name: 'web', namespace: 'ns' }, status: undefined } as KubeObject);
  });
  after(async () => fake.close());
  // Each test sets the pod it needs: none left over from another.
  beforeEach(() => {
    const pods = fake.resource('v1', 'Pod')!;
    for (const p of fake.store.list(pods, 'ns')) fake.store.remove(pods, 'ns', String(p.metadata?.name));
  });
  /** How often the pods were listed since request number `from` (one look per poll). */
  const podLooks = (from: number) => fake.requests.slice(from).filter((r) => r.method === 'GET' && /\/pods$/.test(r.path)).length;

  test('times out with what it saw', async () => {
    const progress: string[] = [];
    const r = await waitForDeployments(kube, 'ns', ['web'], { timeoutMs: 300, pollMs: 50 }, { events: (e) => e.type === 'status' && progress.push(e.message) });
    assert.equal(r.state, 'timeout');
    assert.match(r.message, /no pod was created for deployment web \(is the controller manager running\?\)/);
    assert.equal(progress.length, 1, 'the same state is reported once');
  });

  test('an identity that may not list events or replica sets still gets a verdict', async () => {
    fake.forbid({ verb: 'list', resource: 'events' });
    fake.forbid({ verb: 'list', resource: 'replicasets' });
    try {
      const r = await waitForDeployments(kube, 'ns', ['web'], { timeoutMs: 100, pollMs: 50 });
      assert.equal(r.state, 'timeout');
      assert.match(r.message, /no pod was created for deployment web/);
    } finally {
      fake.allowAll();
    }
  });

  test('fails early on a fatal pod state', async () => {
    fake.setPod(pod({ phase: 'Pending', containerStatuses: [{ name: 'web', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "nginx:nope"' } } }] }));
    const seen = fake.requests.length;
    const r = await waitForDeployments(kube, 'ns', ['web'], { timeoutMs: 600_000, pollMs: 50 });
    assert.equal(r.state, 'failed');
    assert.equal(podLooks(seen), 1, 'it decided on its first look at the pods, not at the timeout');
    assert.match(r.message, /ImagePullBackOff/);
  });

  test('fails early when a one-shot init container exited non-zero, naming it', async () => {
    const migrate = { name: 'migrate', ready: false, restartCount: 0, state: { terminated: { exitCode: 2, reason: 'Error' } } };
    fake.setPod(pod({ phase: 'Pending', initContainerStatuses: [done, dbUp, migrate], containerStatuses: [webWaiting] }, initSpec));
    const seen = fake.requests.length;
    const r = await waitForDeployments(kube, 'ns', ['web'], { timeoutMs: 600_000, pollMs: 50 });
    assert.equal(r.state, 'failed');
    assert.equal(podLooks(seen), 1, 'it decided on its first look at the pods, not at the timeout');
    assert.equal(r.message, 'deployment web: pod web-abc-1: init container migrate failed: Init:Error, exit code 2');
  });
});

describe('waitForDeployments against the fake with its controllers (Deployment, ReplicaSet, scheduler, kubelet)', () => {
  let fake: FakeKube;
  let kube: KubeClient;
  let n = 0;
  before(async () => {
    ({ fake, kube } = await startFakeCluster());
  });
  after(async () => fake.close());

  /** A fresh namespace with one Deployment of `spec` (init containers optional). */
  async function deploy(podSpec: Record<string, unknown>): Promise<string> {
    const ns = `roll-${++n}`;
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await kube.apply({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: ns },
      spec: { replicas: 1, strategy: { type: 'Recreate' }, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: podSpec } },
    });
    return ns;
  }

  test('becomes ready: the controllers create the ReplicaSet and the pod, the kubelet runs it', async () => {
    const ns = await deploy({ containers: [{ name: 'web', image: 'nginx:1.27' }] });
    const r = await waitForDeployments(kube, ns, ['web'], { timeoutMs: 30_000, pollMs: 20 });
    assert.equal(r.state, 'ready', r.message);
    assert.equal(r.message, 'deployment web: 1/1 ready');
  });

  test('an image that cannot be pulled fails the wait early with the kubelet\'s reason', async () => {
    fake.setImageBehaviour('nginx:nope', { pull: 'fail' });
    const ns = await deploy({ containers: [{ name: 'web', image: 'nginx:nope' }] });
    const r = await waitForDeployments(kube, ns, ['web'], { timeoutMs: 30_000, pollMs: 20 });
    assert.equal(r.state, 'failed');
    assert.match(r.message, /^deployment web: pod web-[a-z0-9]+-[a-z0-9]{5}: container web: (ErrImagePull|ImagePullBackOff): /);
  });

  test('a one-shot init container that exits non-zero fails the wait, named, with its exit code', async () => {
    fake.setImageBehaviour('migrate:1', { exitCode: 2 });
    const ns = await deploy({
      initContainers: [
        { name: 'db', image: 'postgres:16', restartPolicy: 'Always' },
        { name: 'migrate', image: 'migrate:1' },
      ],
      containers: [{ name: 'web', image: 'nginx:1.27' }],
    });
    const r = await waitForDeployments(kube, ns, ['web'], { timeoutMs: 30_000, pollMs: 20 });
    assert.equal(r.state, 'failed');
    // seen while it failed (Init:Error) or once the kubelet backs off restarting it (Init:CrashLoopBackOff), as on a real node
    assert.match(r.message, /pod web-[a-z0-9]+-[a-z0-9]{5}: init container migrate( failed: Init:Error, exit code 2|: Init:CrashLoopBackOff: .*; last exit code 2 \(Error\))$/);
  });
});
