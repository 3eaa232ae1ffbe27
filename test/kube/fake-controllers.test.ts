// The fake API server's controllers, each against the Kubernetes behaviour it
// models: the PV binder, pvc/pv-protection, garbage collection, Deployment →
// ReplicaSet → Pod with Recreate and RollingUpdate, the scheduler, the kubelet
// (init containers, native sidecars, failures, termination grace) and the
// namespace controller. Tests that look at intermediate states use the manual
// clock, so nothing depends on how fast the machine is.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeClient, KubeObject, ObjectRef } from '../../src/kube/index.js';
import type { FakeKube } from '../support/fake-kube/index.js';
import { eventually, startFakeCluster } from '../support/kube.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const hostname = (node: string) => ({ required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node] }] }] } });

function pv(name: string, o: { claim?: { namespace: string; name: string }; size?: string; cls?: string; node?: string; policy?: string } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name },
    spec: {
      capacity: { storage: o.size ?? '1Gi' },
      accessModes: ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: o.policy ?? 'Retain',
      storageClassName: o.cls ?? 'local',
      volumeMode: 'Filesystem',
      local: { path: `/data/${name}` },
      nodeAffinity: hostname(o.node ?? 'node1'),
      ...(o.claim ? { claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: o.claim.namespace, name: o.claim.name } } : {}),
    },
  };
}

function pvc(namespace: string, name: string, o: { volume?: string; size?: string; cls?: string } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace },
    spec: {
      accessModes: ['ReadWriteOnce'],
      storageClassName: o.cls ?? 'local',
      volumeMode: 'Filesystem',
      resources: { requests: { storage: o.size ?? '1Gi' } },
      ...(o.volume ? { volumeName: o.volume } : {}),
    },
  };
}

function pod(namespace: string, name: string, o: { claim?: string; image?: string; spec?: Any } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { app: name } },
    spec: {
      containers: [{ name: 'main', image: o.image ?? 'nginx:1.27' }],
      ...(o.claim ? { volumes: [{ name: 'data', persistentVolumeClaim: { claimName: o.claim } }] } : {}),
      ...(o.spec ?? {}),
    },
  };
}

function deployment(namespace: string, name: string, o: { image?: string; replicas?: number; strategy?: Any; claim?: string } = {}): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: {
      replicas: o.replicas ?? 1,
      strategy: o.strategy ?? { type: 'Recreate' },
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [{ name: 'main', image: o.image ?? 'nginx:1.27' }],
          ...(o.claim ? { volumes: [{ name: 'data', persistentVolumeClaim: { claimName: o.claim } }] } : {}),
        },
      },
    },
  };
}

const ref = (kind: string, name: string, namespace?: string): ObjectRef => ({
  apiVersion: kind === 'Deployment' || kind === 'ReplicaSet' ? 'apps/v1' : 'v1',
  kind,
  name,
  ...(namespace ? { namespace } : {}),
});

async function nsObj(kube: KubeClient, name: string): Promise<void> {
  await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
}

const phase = (o: KubeObject | undefined) => (o?.status as Any | undefined)?.phase as string | undefined;

async function events(kube: KubeClient, namespace: string, name: string): Promise<{ reason: string; message: string; type: string; source: string }[]> {
  return (await kube.list('v1', 'Event', { namespace }))
    .filter((e) => (e.involvedObject as Any).name === name)
    .map((e) => ({ reason: String(e.reason), message: String(e.message), type: String(e.type), source: String((e.source as Any)?.component) }));
}

describe('fake cluster: nodes and the PV binder', () => {
  let fake: FakeKube;
  let kube: KubeClient;
  before(async () => {
    ({ fake, kube } = await startFakeCluster());
  });
  after(async () => {
    assert.deepEqual(fake.controllerErrors, []);
    await fake.close();
  });

  test('a node by default, with the well-known labels and Ready', async () => {
    const nodes = await kube.list('v1', 'Node');
    assert.equal(nodes.length, 1);
    const n = nodes[0]!;
    assert.equal(n.metadata.labels!['kubernetes.io/hostname'], n.metadata.name);
    assert.equal(n.metadata.labels!['topology.kubernetes.io/zone'], 'zone-a');
    assert.equal(n.metadata.labels!['kubernetes.io/os'], 'linux');
    assert.equal((n.status as Any).conditions.find((c: Any) => c.type === 'Ready').status, 'True');
  });

  test('a pre-bound PV and a claim naming it: both Bound, claimRef completed with the claim\'s uid, bind-completed on the claim', async () => {
    await nsObj(kube, 'bind');
    await kube.apply(pv('pv-pre', { claim: { namespace: 'bind', name: 'data' } }));
    await kube.apply(pvc('bind', 'data', { volume: 'pv-pre' }));
    const claim = await eventually(async () => {
      const c = await kube.get(ref('PersistentVolumeClaim', 'data', 'bind'));
      return phase(c) === 'Bound' && c;
    }, 'the claim to be Bound');
    const vol = (await kube.get(ref('PersistentVolume', 'pv-pre')))!;
    assert.equal(phase(vol), 'Bound');
    const claimRef = (vol.spec as Any).claimRef;
    assert.equal(claimRef.uid, claim.metadata.uid);
    assert.ok(claimRef.resourceVersion);
    assert.equal(claim.metadata.annotations!['pv.kubernetes.io/bind-completed'], 'yes');
    // pre-bound by the user on both sides: the controller did not choose
    assert.equal(claim.metadata.annotations!['pv.kubernetes.io/bound-by-controller'], undefined);
    assert.equal(vol.metadata.annotations?.['pv.kubernetes.io/bound-by-controller'], undefined);
    assert.deepEqual((claim.status as Any).capacity, { storage: '1Gi' });
    assert.deepEqual(claim.metadata.finalizers, ['kubernetes.io/pvc-protection']);
    assert.deepEqual(vol.metadata.finalizers, ['kubernetes.io/pv-protection']);
    const kcm = (vol.metadata.managedFields as Any[]).find((e) => e.manager === 'kube-controller-manager' && e.operation === 'Update')!;
    assert.ok(kcm.fieldsV1['f:spec']['f:claimRef']['f:uid'], 'the binder owns the uid it wrote');
  });

  test('a claim without volumeName gets the smallest Available volume of its class and access modes, marked bound-by-controller', async () => {
    await nsObj(kube, 'match');
    await kube.apply(pv('pv-big', { size: '10Gi', cls: 'match' }));
    await kube.apply(pv('pv-small', { size: '2Gi', cls: 'match' }));
    await kube.apply(pv('pv-tiny', { size: '1Gi', cls: 'match' }));
    await kube.apply(pv('pv-other-class', { size: '2Gi', cls: 'other' }));
    await eventually(async () => phase(await kube.get(ref('PersistentVolume', 'pv-tiny'))) === 'Available', 'the volumes to be Available');
    await kube.apply(pvc('match', 'want2', { size: '2Gi', cls: 'match' }));
    const claim = await eventually(async () => {
      const c = await kube.get(ref('PersistentVolumeClaim', 'want2', 'match'));
      return phase(c) === 'Bound' && c;
    }, 'the claim to be Bound');
    assert.equal((claim.spec as Any).volumeName, 'pv-small');
    assert.equal(claim.metadata.annotations!['pv.kubernetes.io/bound-by-controller'], 'yes');
    const vol = (await kube.get(ref('PersistentVolume', 'pv-small')))!;
    assert.equal(vol.metadata.annotations!['pv.kubernetes.io/bound-by-controller'], 'yes');
    // nothing fits: Pending, and the binder says why
    await kube.apply(pvc('match', 'want50', { size: '50Gi', cls: '' }));
    await eventually(async () => (await events(kube, 'match', 'want50')).some((e) => e.reason === 'FailedBinding' && e.message === 'no persistent volumes available for this claim and no storage class is set'), 'FailedBinding');
    assert.equal(phase(await kube.get(ref('PersistentVolumeClaim', 'want50', 'match'))), 'Pending');
  });

  test('a claim recreated after deletion finds its Retain volume Released and still held for the old claim', async () => {
    await nsObj(kube, 'again');
    await kube.apply(pv('pv-again', { claim: { namespace: 'again', name: 'data' } }));
    await kube.apply(pvc('again', 'data', { volume: 'pv-again' }));
    await eventually(async () => phase(await kube.get(ref('PersistentVolume', 'pv-again'))) === 'Bound', 'Bound');
    await kube.delete(ref('PersistentVolumeClaim', 'data', 'again'));
    // no pod uses it: pvc-protection lets it go, the Retain volume is Released and keeps its claimRef
    await eventually(async () => phase(await kube.get(ref('PersistentVolume', 'pv-again'))) === 'Released', 'Released');
    assert.ok(((await kube.get(ref('PersistentVolume', 'pv-again')))!.spec as Any).claimRef.uid);
    await kube.apply(pvc('again', 'data', { volume: 'pv-again' }));
    await eventually(
      async () => (await events(kube, 'again', 'data')).some((e) => e.type === 'Warning' && e.reason === 'FailedBinding' && e.message === 'volume "pv-again" already bound to a different claim.'),
      'FailedBinding for the new claim',
    );
    assert.equal(phase(await kube.get(ref('PersistentVolumeClaim', 'data', 'again'))), 'Pending');
    assert.equal(phase(await kube.get(ref('PersistentVolume', 'pv-again'))), 'Released');
  });

  test('the scheduler refuses pods whose claim is missing, unbound, or whose volume is on another node, with the real messages', async () => {
    await nsObj(kube, 'sched');
    await kube.apply(pod('sched', 'no-claim', { claim: 'missing' }));
    await kube.apply(pvc('sched', 'unbound', { cls: 'nothing-here' }));
    await kube.apply(pod('sched', 'unbound-claim', { claim: 'unbound' }));
    await kube.apply(pv('pv-elsewhere', { claim: { namespace: 'sched', name: 'far' }, node: 'node-far-away' }));
    await kube.apply(pvc('sched', 'far', { volume: 'pv-elsewhere' }));
    await eventually(async () => phase(await kube.get(ref('PersistentVolumeClaim', 'far', 'sched'))) === 'Bound', 'Bound');
    await kube.apply(pod('sched', 'far-pod', { claim: 'far' }));
    await kube.apply(pod('sched', 'wrong-zone', { spec: { nodeSelector: { 'topology.kubernetes.io/zone': 'zone-b' } } }));
    const scheduled = async (name: string) => (((await kube.get(ref('Pod', name, 'sched')))?.status as Any)?.conditions ?? []).find((c: Any) => c.type === 'PodScheduled');
    const tail = 'preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.';
    const expect = {
      'no-claim': `0/1 nodes are available: persistentvolumeclaim "missing" not found. ${tail}`,
      'unbound-claim': `0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. ${tail}`,
      'far-pod': `0/1 nodes are available: 1 node(s) had volume node affinity conflict. ${tail}`,
      'wrong-zone': `0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. ${tail}`,
    };
    for (const [name, message] of Object.entries(expect)) {
      const c = await eventually(async () => (await scheduled(name))?.status === 'False' && scheduled(name), `${name} unschedulable`);
      assert.equal(c.reason, 'Unschedulable');
      assert.equal(c.message, message);
      assert.ok((await events(kube, 'sched', name)).some((e) => e.reason === 'FailedScheduling' && e.message === message && e.source === 'default-scheduler'));
    }
    // a node in zone-b arrives: the pod that asked for it is scheduled there
    fake.addNode({ name: 'node-b', zone: 'zone-b' });
    const p = await eventually(async () => {
      const x = await kube.get(ref('Pod', 'wrong-zone', 'sched'));
      return phase(x) === 'Running' && x;
    }, 'the pod to run on node-b');
    assert.equal((p.spec as Any).nodeName, 'node-b');
    assert.ok((await events(kube, 'sched', 'wrong-zone')).some((e) => e.reason === 'Scheduled' && e.message === 'Successfully assigned sched/wrong-zone to node-b'));
  });
});

describe('issue 9 item 1: a re-applied pre-bound PersistentVolume and its claim', () => {
  async function scenario(version: string) {
    const { fake, kube } = await startFakeCluster({ version });
    await nsObj(kube, 'app');
    const volume = pv('pv-app', { claim: { namespace: 'app', name: 'data' } });
    await kube.apply(volume);
    await kube.apply(pvc('app', 'data', { volume: 'pv-app' }));
    const claim = await eventually(async () => {
      const c = await kube.get(ref('PersistentVolumeClaim', 'data', 'app'));
      return phase(c) === 'Bound' && c;
    }, 'the claim to be Bound');
    // the re-deploy: the same manifest applied again (twice), forced as Kompox applies
    await kube.apply(volume);
    await kube.apply(volume);
    await fake.settle();
    return { fake, kube, claim };
  }

  test('v1.24 (claimRef atomic): the uid is dropped, the claim becomes Lost (ClaimMisbound) and a new pod never schedules', async () => {
    const { fake, kube } = await scenario('v1.24.17');
    try {
      const vol = (await kube.get(ref('PersistentVolume', 'pv-app')))!;
      assert.equal((vol.spec as Any).claimRef.uid, undefined);
      const claim = await eventually(async () => {
        const c = await kube.get(ref('PersistentVolumeClaim', 'data', 'app'));
        return phase(c) === 'Lost' && c;
      }, 'the claim to be Lost');
      assert.equal((claim.spec as Any).volumeName, 'pv-app');
      assert.ok(
        (await events(kube, 'app', 'data')).some(
          (e) => e.type === 'Warning' && e.reason === 'ClaimMisbound' && e.message === 'Two claims are bound to the same volume, this one is bound incorrectly' && e.source === 'persistentvolume-controller',
        ),
      );
      // the volume is reserved for the claim again, but the claim is Lost for good
      assert.equal(phase(await kube.get(ref('PersistentVolume', 'pv-app'))), 'Available');
      await kube.apply(pod('app', 'next-start', { claim: 'data' }));
      const message = '0/1 nodes are available: persistentvolumeclaim "data" bound to non-existent persistentvolume "pv-app". preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.';
      await eventually(async () => (await events(kube, 'app', 'next-start')).some((e) => e.reason === 'FailedScheduling' && e.message === message), 'FailedScheduling');
      assert.equal(((await kube.get(ref('Pod', 'next-start', 'app')))!.spec as Any).nodeName, undefined);
      assert.deepEqual(fake.controllerErrors, []);
    } finally {
      await fake.close();
    }
  });

  test('v1.25 and later (claimRef granular): the uid the binder owns survives, the claim stays Bound and a new pod runs', async () => {
    const { fake, kube, claim } = await scenario('v1.31.0');
    try {
      const vol = (await kube.get(ref('PersistentVolume', 'pv-app')))!;
      assert.equal((vol.spec as Any).claimRef.uid, claim.metadata.uid);
      assert.equal(phase(await kube.get(ref('PersistentVolumeClaim', 'data', 'app'))), 'Bound');
      await kube.apply(pod('app', 'next-start', { claim: 'data' }));
      await eventually(async () => phase(await kube.get(ref('Pod', 'next-start', 'app'))) === 'Running', 'the pod to run');
      assert.deepEqual(fake.controllerErrors, []);
    } finally {
      await fake.close();
    }
  });
});

describe('fake cluster with a manual clock: protection, termination grace, Recreate, garbage collection, namespaces', () => {
  let fake: FakeKube;
  let kube: KubeClient;
  before(async () => {
    ({ fake, kube } = await startFakeCluster({ clock: { mode: 'manual' } }));
    // this image's process ignores SIGTERM: it runs until its grace period is over
    fake.setImageBehaviour('stubborn:1', { sigterm: 'ignore' });
  });
  after(async () => {
    assert.deepEqual(fake.controllerErrors, []);
    await fake.close();
  });

  test('pvc-protection holds a deleted claim while a pod uses it, through the pod\'s grace period; pv-protection holds a Bound volume', async () => {
    await nsObj(kube, 'prot');
    await kube.apply(pv('pv-prot', { claim: { namespace: 'prot', name: 'data' } }));
    await kube.apply(pvc('prot', 'data', { volume: 'pv-prot' }));
    await kube.apply(pod('prot', 'user', { claim: 'data', image: 'stubborn:1', spec: { terminationGracePeriodSeconds: 30 } }));
    await eventually(async () => phase(await kube.get(ref('Pod', 'user', 'prot'))) === 'Running', 'the pod to run');
    assert.equal(await kube.delete(ref('PersistentVolumeClaim', 'data', 'prot')), true);
    assert.equal(await kube.delete(ref('PersistentVolume', 'pv-prot')), true);
    await fake.settle();
    const claim = (await kube.get(ref('PersistentVolumeClaim', 'data', 'prot')))!;
    assert.ok(claim.metadata.deletionTimestamp, 'the claim is Terminating');
    assert.deepEqual(claim.metadata.finalizers, ['kubernetes.io/pvc-protection']);
    assert.equal(phase(claim), 'Bound');
    const vol = (await kube.get(ref('PersistentVolume', 'pv-prot')))!;
    assert.ok(vol.metadata.deletionTimestamp, 'the volume is Terminating');
    assert.equal(phase(vol), 'Bound');
    // the pod is deleted: Terminating for its 30 s, and the claim with it
    await kube.delete(ref('Pod', 'user', 'prot'));
    await fake.settle();
    const terminating = (await kube.get(ref('Pod', 'user', 'prot')))!;
    assert.equal(terminating.metadata.deletionGracePeriodSeconds, 30);
    await fake.clock.advance(29);
    await fake.settle();
    assert.ok(await kube.get(ref('Pod', 'user', 'prot')), 'still running after 29 s');
    assert.ok(await kube.get(ref('PersistentVolumeClaim', 'data', 'prot')), 'still held after 29 s');
    await fake.clock.advance(1);
    await fake.settle();
    assert.equal(await kube.get(ref('Pod', 'user', 'prot')), undefined);
    assert.equal(await kube.get(ref('PersistentVolumeClaim', 'data', 'prot')), undefined);
    // the claim gone, the Retain volume is Released, no longer Bound: pv-protection lets it go
    assert.equal(await kube.get(ref('PersistentVolume', 'pv-prot')), undefined);
    const killed = (await events(kube, 'prot', 'user')).find((e) => e.reason === 'Killing');
    assert.equal(killed?.message, 'Stopping container main');
  });

  test('a pod that exits on SIGTERM goes at once, whatever its grace period', async () => {
    await nsObj(kube, 'prompt');
    await kube.apply(pod('prompt', 'quick', { spec: { terminationGracePeriodSeconds: 600 } }));
    await eventually(async () => phase(await kube.get(ref('Pod', 'quick', 'prompt'))) === 'Running', 'the pod to run');
    await kube.delete(ref('Pod', 'quick', 'prompt'));
    await eventually(async () => (await kube.get(ref('Pod', 'quick', 'prompt'))) === undefined, 'the pod to go');
  });

  test('Recreate: the old pod is fully gone before the new ReplicaSet gets a pod', async () => {
    await nsObj(kube, 'recreate');
    await kube.apply(deployment('recreate', 'web', { image: 'stubborn:1' }));
    const oldPod = await eventually(async () => (await kube.list('v1', 'Pod', { namespace: 'recreate' })).find((p) => phase(p) === 'Running'), 'the first pod to run');
    const firstRs = (await kube.list('apps/v1', 'ReplicaSet', { namespace: 'recreate' }))[0]!;
    assert.equal(firstRs.metadata.name, `web-${firstRs.metadata.labels!['pod-template-hash']}`);
    assert.equal(oldPod.metadata.labels!['pod-template-hash'], firstRs.metadata.labels!['pod-template-hash']);
    await kube.apply(deployment('recreate', 'web', { image: 'nginx:1.28' }));
    await fake.settle();
    let pods = await kube.list('v1', 'Pod', { namespace: 'recreate' });
    assert.deepEqual(pods.map((p) => p.metadata.name), [oldPod.metadata.name], 'only the old pod, Terminating');
    assert.ok(pods[0]!.metadata.deletionTimestamp);
    const rss = await kube.list('apps/v1', 'ReplicaSet', { namespace: 'recreate' });
    assert.equal(rss.length, 1, 'no new ReplicaSet while an old pod runs');
    assert.equal((rss[0]!.spec as Any).replicas, 0);
    await fake.clock.advance(30);
    await fake.settle();
    pods = await kube.list('v1', 'Pod', { namespace: 'recreate' });
    assert.equal(pods.length, 1);
    assert.notEqual(pods[0]!.metadata.name, oldPod.metadata.name);
    assert.equal((pods[0]!.spec as Any).containers[0].image, 'nginx:1.28');
    const dep = (await kube.get(ref('Deployment', 'web', 'recreate')))!;
    assert.equal(dep.metadata.annotations!['deployment.kubernetes.io/revision'], '2');
    const msgs = (await events(kube, 'recreate', 'web')).map((e) => e.message);
    assert.ok(msgs.includes(`Scaled down replica set ${firstRs.metadata.name} from 1 to 0`), msgs.join('; '));
    assert.ok(msgs.some((m) => /^Scaled up replica set web-\w+ from 0 to 1$/.test(m) && !m.includes(firstRs.metadata.name)), msgs.join('; '));
  });

  test('Deployment status: replicas, ready, available, updated, observedGeneration, Available and Progressing; scaling to 0 and back', async () => {
    await nsObj(kube, 'status');
    await kube.apply(deployment('status', 'web', { replicas: 2 }));
    const ready = await eventually(async () => {
      const d = await kube.get(ref('Deployment', 'web', 'status'));
      const st = (d?.status ?? {}) as Any;
      return st.availableReplicas === 2 && st.conditions?.some((c: Any) => c.type === 'Progressing' && c.reason === 'NewReplicaSetAvailable') && d;
    }, 'the Deployment to be available');
    const st = ready.status as Any;
    assert.equal(st.observedGeneration, ready.metadata.generation);
    assert.equal(st.replicas, 2);
    assert.equal(st.updatedReplicas, 2);
    assert.equal(st.readyReplicas, 2);
    const available = st.conditions.find((c: Any) => c.type === 'Available');
    assert.deepEqual([available.status, available.reason, available.message], ['True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.']);
    const progressing = st.conditions.find((c: Any) => c.type === 'Progressing');
    assert.match(progressing.message, /^ReplicaSet "web-\w+" has successfully progressed\.$/);
    await kube.mergePatch(ref('Deployment', 'web', 'status'), { spec: { replicas: 0 } });
    await fake.settle();
    assert.equal((await kube.list('v1', 'Pod', { namespace: 'status' })).length, 0);
    const zero = (await kube.get(ref('Deployment', 'web', 'status')))!;
    assert.equal((zero.status as Any).replicas, undefined);
    assert.equal((zero.status as Any).observedGeneration, zero.metadata.generation);
    await kube.mergePatch(ref('Deployment', 'web', 'status'), { spec: { replicas: 1 } });
    await eventually(async () => ((await kube.get(ref('Deployment', 'web', 'status')))?.status as Any)?.readyReplicas === 1, 'one ready replica');
    assert.equal((await kube.list('apps/v1', 'ReplicaSet', { namespace: 'status' })).length, 1, 'scaling makes no new ReplicaSet');
  });

  test('RollingUpdate (1 replica, 25%): the new pod runs before the old one is stopped', async () => {
    await nsObj(kube, 'rolling');
    await kube.apply(deployment('rolling', 'web', { strategy: { type: 'RollingUpdate' } }));
    const first = await eventually(async () => (await kube.list('v1', 'Pod', { namespace: 'rolling' })).find((p) => phase(p) === 'Running'), 'the first pod');
    await kube.apply(deployment('rolling', 'web', { strategy: { type: 'RollingUpdate' }, image: 'nginx:1.28' }));
    await fake.settle();
    const pods = await kube.list('v1', 'Pod', { namespace: 'rolling' });
    assert.equal(pods.find((p) => p.metadata.name === first.metadata.name), undefined, 'the old pod went after the new one was available');
    assert.equal(pods.length, 1);
    const msgs = (await events(kube, 'rolling', 'web')).map((e) => e.message);
    const up = msgs.findIndex((m) => /^Scaled up replica set web-\w+ from 0 to 1$/.test(m) && !m.includes(String(first.metadata.labels!['pod-template-hash'])));
    const down = msgs.findIndex((m) => m.includes(`replica set web-${first.metadata.labels!['pod-template-hash']} from 1 to 0`));
    assert.ok(up >= 0 && down >= 0, msgs.join('; '));
  });

  test('garbage collection: a Deployment deleted in the background takes its ReplicaSets and pods; Foreground waits for them; Orphan leaves them', async () => {
    await nsObj(kube, 'gc');
    await kube.apply(deployment('gc', 'bg'));
    await kube.apply(deployment('gc', 'fg', { image: 'stubborn:1' }));
    await kube.apply(deployment('gc', 'orphan'));
    await eventually(async () => (await kube.list('v1', 'Pod', { namespace: 'gc' })).filter((p) => phase(p) === 'Running').length === 3, 'three running pods');
    const byApp = async (app: string) => ({
      rs: await kube.list('apps/v1', 'ReplicaSet', { namespace: 'gc', labelSelector: `app=${app}` }),
      pods: await kube.list('v1', 'Pod', { namespace: 'gc', labelSelector: `app=${app}` }),
    });

    await kube.delete(ref('Deployment', 'bg', 'gc'), { propagationPolicy: 'Background' });
    await fake.settle();
    assert.equal(await kube.get(ref('Deployment', 'bg', 'gc')), undefined);
    assert.deepEqual(await byApp('bg'), { rs: [], pods: [] });

    await kube.delete(ref('Deployment', 'fg', 'gc'), { propagationPolicy: 'Foreground' });
    await fake.settle();
    const owner = (await kube.get(ref('Deployment', 'fg', 'gc')))!;
    assert.ok(owner.metadata.deletionTimestamp);
    assert.deepEqual(owner.metadata.finalizers, ['foregroundDeletion']);
    assert.equal((await byApp('fg')).pods.length, 1, 'the pod is in its grace period');
    await fake.clock.advance(30);
    await fake.settle();
    assert.equal(await kube.get(ref('Deployment', 'fg', 'gc')), undefined);
    assert.deepEqual(await byApp('fg'), { rs: [], pods: [] });

    await kube.delete(ref('Deployment', 'orphan', 'gc'), { propagationPolicy: 'Orphan' });
    await fake.settle();
    assert.equal(await kube.get(ref('Deployment', 'orphan', 'gc')), undefined);
    const left = await byApp('orphan');
    assert.equal(left.rs.length, 1);
    assert.equal(left.rs[0]!.metadata.ownerReferences, undefined);
    assert.equal(left.pods.length, 1);
  });

  test('namespace deletion: Terminating while content is deleted (pods in their grace period, claims protected), then gone', async () => {
    await nsObj(kube, 'doomed');
    await kube.apply(pv('pv-doomed', { claim: { namespace: 'doomed', name: 'data' } }));
    await kube.apply(pvc('doomed', 'data', { volume: 'pv-doomed' }));
    await kube.apply(deployment('doomed', 'web', { image: 'stubborn:1', claim: 'data' }));
    await kube.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'doomed' }, data: { a: '1' } });
    await eventually(async () => (await kube.list('v1', 'Pod', { namespace: 'doomed' })).some((p) => phase(p) === 'Running'), 'the pod to run');
    await kube.delete(ref('Namespace', 'doomed'));
    await fake.settle();
    const ns = (await kube.get(ref('Namespace', 'doomed')))!;
    assert.equal(phase(ns), 'Terminating');
    const remaining = (ns.status as Any).conditions.find((c: Any) => c.type === 'NamespaceContentRemaining');
    assert.match(remaining.message, /^Some resources are remaining: .*pods\. has 1 resource instances/);
    assert.match((ns.status as Any).conditions.find((c: Any) => c.type === 'NamespaceFinalizersRemaining').message, /kubernetes\.io\/pvc-protection in 1 resource instances/);
    assert.equal(await kube.get(ref('ConfigMap', 'c', 'doomed')), undefined);
    await fake.clock.advance(30);
    await fake.settle();
    assert.equal(await kube.get(ref('Namespace', 'doomed')), undefined);
    assert.equal((await kube.list('v1', 'PersistentVolumeClaim', { namespace: 'doomed' })).length, 0);
    assert.equal(phase(await kube.get(ref('PersistentVolume', 'pv-doomed'))), 'Released');
  });
});

describe('fake kubelet: start order, failures, readiness', () => {
  let fake: FakeKube;
  let kube: KubeClient;
  before(async () => {
    ({ fake, kube } = await startFakeCluster({ clock: { mode: 'manual' } }));
    await nsObj(kube, 'kl');
  });
  after(async () => {
    assert.deepEqual(fake.controllerErrors, []);
    await fake.close();
  });

  test('init containers run in order to completion, a native sidecar keeps running, then the containers start; conditions follow', async () => {
    await kube.apply(
      pod('kl', 'ordered', {
        spec: {
          initContainers: [
            { name: 'first', image: 'busybox:1.37' },
            { name: 'sidecar', image: 'postgres:16', restartPolicy: 'Always' },
            { name: 'second', image: 'busybox:1.37' },
          ],
        },
      }),
    );
    const p = await eventually(async () => {
      const x = await kube.get(ref('Pod', 'ordered', 'kl'));
      return phase(x) === 'Running' && x;
    }, 'the pod to run');
    const st = p.status as Any;
    assert.deepEqual(
      st.initContainerStatuses.map((c: Any) => [c.name, Object.keys(c.state)[0], c.ready]),
      [
        ['first', 'terminated', false],
        ['sidecar', 'running', true],
        ['second', 'terminated', false],
      ],
    );
    assert.deepEqual(st.containerStatuses.map((c: Any) => [c.name, Object.keys(c.state)[0], c.ready]), [['main', 'running', true]]);
    for (const t of ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready']) assert.equal(st.conditions.find((c: Any) => c.type === t).status, 'True', t);
    const started = (await events(kube, 'kl', 'ordered')).filter((e) => e.reason === 'Started').map((e) => e.message);
    assert.deepEqual(started.sort(), ['Started container first', 'Started container main', 'Started container second', 'Started container sidecar']);
  });

  test('an image that cannot be pulled: ErrImagePull, then ImagePullBackOff; the pod stays Pending', async () => {
    fake.setImageBehaviour('ghost:404', { pull: 'fail' });
    await kube.apply(pod('kl', 'ghost', { image: 'ghost:404' }));
    const p = await eventually(async () => {
      const x = await kube.get(ref('Pod', 'ghost', 'kl'));
      return (x?.status as Any)?.containerStatuses?.[0]?.state?.waiting?.reason === 'ImagePullBackOff' && x;
    }, 'ImagePullBackOff');
    assert.equal(phase(p), 'Pending');
    assert.equal((p.status as Any).containerStatuses[0].state.waiting.message, 'Back-off pulling image "ghost:404"');
    assert.ok((await events(kube, 'kl', 'ghost')).some((e) => e.reason === 'Failed' && e.message === 'Error: ErrImagePull'));
  });

  test('a container that exits: CrashLoopBackOff with its restarts and last exit code, restarted after the back-off', async () => {
    fake.setImageBehaviour('crash:1', { exitCode: 3 });
    await kube.apply(pod('kl', 'crasher', { image: 'crash:1' }));
    const p = await eventually(async () => {
      const x = await kube.get(ref('Pod', 'crasher', 'kl'));
      return (x?.status as Any)?.containerStatuses?.[0]?.state?.waiting?.reason === 'CrashLoopBackOff' && x;
    }, 'CrashLoopBackOff');
    const cs = (p.status as Any).containerStatuses[0];
    assert.equal(cs.restartCount, 1);
    assert.equal(cs.lastState.terminated.exitCode, 3);
    assert.match(cs.state.waiting.message, /^back-off 10s restarting failed container=main pod=crasher_kl\(/);
    await fake.clock.advance(10);
    await eventually(async () => ((await kube.get(ref('Pod', 'crasher', 'kl')))?.status as Any)?.containerStatuses?.[0]?.restartCount === 2, 'the second restart');
    const again = ((await kube.get(ref('Pod', 'crasher', 'kl')))!.status as Any).containerStatuses[0];
    assert.match(again.state.waiting.message, /^back-off 20s /);
  });

  test('readiness is a test knob: a container can run without being ready', async () => {
    let ready = false;
    fake.containerBehaviour((p) => ((p.metadata as Any).name === 'slow' ? { ready } : undefined));
    await kube.apply(pod('kl', 'slow'));
    const p = await eventually(async () => {
      const x = await kube.get(ref('Pod', 'slow', 'kl'));
      return phase(x) === 'Running' && x;
    }, 'the pod to run');
    assert.equal((p.status as Any).conditions.find((c: Any) => c.type === 'Ready').status, 'False');
    assert.equal((p.status as Any).conditions.find((c: Any) => c.type === 'Ready').message, 'containers with unready status: [main]');
    ready = true;
    fake.containerBehaviour(() => undefined);
    await eventually(async () => ((await kube.get(ref('Pod', 'slow', 'kl')))?.status as Any)?.conditions?.find((c: Any) => c.type === 'Ready')?.status === 'True', 'ready');
  });
});

test('controllers: false is a cluster without controllers: a Deployment gets no ReplicaSet, a deleted namespace goes at once', async () => {
  const { fake, kube } = await startFakeCluster({ controllers: false });
  try {
    await nsObj(kube, 'bare');
    await kube.apply(deployment('bare', 'web'));
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await kube.list('apps/v1', 'ReplicaSet', { namespace: 'bare' }), []);
    assert.equal((await kube.get(ref('Deployment', 'web', 'bare')))!.status, undefined);
    await kube.apply(pvc('bare', 'data'));
    assert.equal((await kube.get(ref('PersistentVolumeClaim', 'data', 'bare')))!.metadata.finalizers, undefined);
    await kube.delete(ref('Namespace', 'bare'));
    assert.equal(await kube.get(ref('Namespace', 'bare')), undefined);
  } finally {
    await fake.close();
  }
});

describe('fake cluster with the scaled clock (the default)', () => {
  test('a pod whose process ignores SIGTERM goes once its grace period has passed in simulated time', async () => {
    // scaled: 30 simulated seconds are 0.3 s; the kubelet compares now() with the due time, which must then have come
    const { fake, kube } = await startFakeCluster();
    try {
      fake.setImageBehaviour('stubborn:1', { sigterm: 'ignore' });
      await nsObj(kube, 'scaled');
      await kube.apply(pod('scaled', 'user', { image: 'stubborn:1', spec: { terminationGracePeriodSeconds: 30 } }));
      await eventually(async () => phase(await kube.get(ref('Pod', 'user', 'scaled'))) === 'Running', 'the pod to run');
      await kube.delete(ref('Pod', 'user', 'scaled'));
      await eventually(async () => (await kube.get(ref('Pod', 'user', 'scaled'))) === undefined, 'the pod to be gone after its grace period', { timeoutMs: 60_000 });
      const killed = (await events(kube, 'scaled', 'user')).find((e) => e.reason === 'Killing');
      assert.equal(killed?.message, 'Stopping container main');
      assert.deepEqual(fake.controllerErrors, []);
    } finally {
      await fake.close();
    }
  });
});
