// Contract of the KubeClient adapter. The same suite runs against a real
// cluster (KOMPOX_TEST_KUBECONFIG=path [KOMPOX_TEST_CONTEXT=name]) and against
// the in-process fake API server, so the fake is held to real behaviour.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { KompoxError } from '../../src/domain/errors.js';
import { connectKubeconfig, type KubeClient, type KubeObject } from '../../src/kube/index.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { eventually } from '../support/kube.js';

export function kubeContract(label: string, setup: () => Promise<{ kubeconfigPath: string; context?: string; teardown(): Promise<void> }>): void {
  describe(`KubeClient contract (${label})`, () => {
    let kube: KubeClient;
    let teardown: () => Promise<void>;
    const ns = `kompox-contract-${randomBytes(3).toString('hex')}`;
    const nsObj = (extra: Record<string, string> = {}): KubeObject => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: ns, labels: { 'app.kubernetes.io/managed-by': 'kompox', ...extra } },
    });
    const cm = (name: string, data: Record<string, string>, labels: Record<string, string> = {}): KubeObject => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace: ns, labels },
      data,
    });

    before(async () => {
      const s = await setup();
      teardown = s.teardown;
      kube = await connectKubeconfig({ path: s.kubeconfigPath, context: s.context });
    });
    after(async () => {
      try {
        await kube?.delete({ apiVersion: 'v1', kind: 'Namespace', name: ns });
      } finally {
        await teardown?.();
      }
    });

    test('version answers with a gitVersion', async () => {
      const v = await kube.version();
      assert.match(v.gitVersion, /^v\d+\.\d+/);
    });

    test('apply into a namespace that does not exist fails with notfound', async () => {
      await assert.rejects(kube.apply(cm('early', { a: '1' })), (e: unknown) => {
        assert.ok(e instanceof KompoxError);
        assert.equal(e.kind, 'notfound');
        assert.match(e.message, /namespaces? "?kompox-contract/);
        return true;
      });
    });

    test('apply creates; an identical apply changes nothing (same resourceVersion)', async () => {
      const a = await kube.apply(nsObj());
      assert.equal(a.metadata.name, ns);
      const b = await kube.apply(nsObj());
      assert.equal(b.metadata.resourceVersion, a.metadata.resourceVersion);
      const c1 = await kube.apply(cm('one', { a: '1' }));
      const c2 = await kube.apply(cm('one', { a: '1' }));
      assert.equal(c2.metadata.resourceVersion, c1.metadata.resourceVersion);
      const got = await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', name: 'one', namespace: ns });
      assert.deepEqual(got?.data, { a: '1' });
      assert.equal(got?.metadata.resourceVersion, c1.metadata.resourceVersion);
    });

    test('a changed apply bumps resourceVersion; a field no longer applied is removed', async () => {
      const a = await kube.apply(cm('two', { a: '1' }, { keep: 'x', drop: 'y' }));
      const b = await kube.apply(cm('two', { a: '2' }, { keep: 'x' }));
      assert.notEqual(b.metadata.resourceVersion, a.metadata.resourceVersion);
      assert.deepEqual(b.data, { a: '2' });
      assert.equal(b.metadata.labels?.drop, undefined);
      assert.equal(b.metadata.labels?.keep, 'x');
    });

    test('dry-run apply returns the result without storing it', async () => {
      const dry = await kube.apply(cm('dry', { a: '1' }), { dryRun: true });
      assert.deepEqual(dry.data, { a: '1' });
      assert.equal(await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', name: 'dry', namespace: ns }), undefined);
    });

    test('Deployment generation changes only with spec', async () => {
      const dep = (image: string, label: string): KubeObject => ({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', namespace: ns, labels: { l: label } },
        spec: {
          // no pod, so the controller's writes (revision annotation, status) settle at once
          replicas: 0,
          selector: { matchLabels: { app: 'web' } },
          template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image }] } },
        },
      });
      const a = await kube.apply(dep('nginx:1', 'a'));
      const b = await kube.apply(dep('nginx:1', 'b'));
      assert.equal(b.metadata.generation, a.metadata.generation);
      const c = await kube.apply(dep('nginx:2', 'b'));
      assert.equal(c.metadata.generation, Number(a.metadata.generation) + 1);
      const ref = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: ns };
      await eventually(async () => {
        const d = await kube.get(ref);
        return d?.metadata.annotations?.['deployment.kubernetes.io/revision'] === '2' && (d.status as { observedGeneration?: number } | undefined)?.observedGeneration === c.metadata.generation;
      }, 'the Deployment controller to roll out revision 2');
      const live = await kube.get(ref);
      const again = await kube.apply(dep('nginx:2', 'b'));
      assert.equal(again.metadata.resourceVersion, live!.metadata.resourceVersion);
      assert.equal(again.metadata.generation, c.metadata.generation);
    });

    test('annotations written by merge patch survive a later apply', async () => {
      await kube.mergePatch({ apiVersion: 'v1', kind: 'Namespace', name: ns }, { metadata: { annotations: { 'kompox.dev/disk-current-id': 'disk-1' } } });
      const after = await kube.apply(nsObj({ extra: 'yes' }));
      assert.equal(after.metadata.annotations?.['kompox.dev/disk-current-id'], 'disk-1');
      assert.equal(after.metadata.labels?.extra, 'yes');
    });

    test('another manager changing an owned field conflicts unless forced', async () => {
      await kube.apply(cm('owned', { a: '1' }));
      await assert.rejects(kube.apply(cm('owned', { a: '2' }), { fieldManager: 'someone-else', force: false }), (e: unknown) => {
        assert.ok(e instanceof KompoxError);
        assert.equal(e.kind, 'conflict');
        assert.match(e.message, /conflict/i);
        return true;
      });
      const forced = await kube.apply(cm('owned', { a: '2' }), { fieldManager: 'someone-else', force: true });
      assert.deepEqual(forced.data, { a: '2' });
    });

    test('map fields are owned key by key: another manager\'s key survives our re-apply', async () => {
      await kube.apply(cm('shared', { ours: '1' }));
      await kube.apply(cm('shared', { theirs: 'x' }), { fieldManager: 'other-tool', force: false });
      const again = await kube.apply(cm('shared', { ours: '2' }));
      assert.deepEqual(again.data, { ours: '2', theirs: 'x' });
      const dropped = await kube.apply(cm('shared', {}));
      assert.deepEqual(dropped.data, { theirs: 'x' });
    });

    test('list filters by label selector and fills in apiVersion/kind', async () => {
      await kube.apply(cm('sel-a', { a: '1' }, { tier: 'a', k: 'x' }));
      await kube.apply(cm('sel-b', { a: '1' }, { tier: 'b' }));
      const names = async (sel: string) =>
        (await kube.list('v1', 'ConfigMap', { namespace: ns, labelSelector: sel })).map((o) => o.metadata.name).sort();
      assert.deepEqual(await names('tier=a'), ['sel-a']);
      assert.deepEqual(await names('tier in (a,b)'), ['sel-a', 'sel-b']);
      assert.deepEqual(await names('tier notin (a),tier'), ['sel-b']);
      assert.deepEqual(await names('tier,!k'), ['sel-b']);
      assert.deepEqual(await names('tier!=b,tier'), ['sel-a']);
      const all = await kube.list('v1', 'ConfigMap', { namespace: ns, labelSelector: 'tier=a' });
      assert.equal(all[0]!.apiVersion, 'v1');
      assert.equal(all[0]!.kind, 'ConfigMap');
    });

    test('an invalid object is rejected with a config error naming the field', async () => {
      await assert.rejects(kube.apply(cm('Bad_Name', { a: '1' })), (e: unknown) => {
        assert.ok(e instanceof KompoxError);
        assert.equal(e.kind, 'config');
        assert.match(e.message, /Bad_Name/);
        return true;
      });
    });

    test('an unknown kind is reported as not served', async () => {
      await assert.rejects(kube.get({ apiVersion: 'example.invalid/v1', kind: 'Nope', name: 'x' }), (e: unknown) => {
        assert.ok(e instanceof KompoxError);
        assert.match(e.message, /does not serve Nope/);
        return true;
      });
    });

    test('delete reports whether the object existed', async () => {
      await kube.apply(cm('gone', { a: '1' }));
      const ref = { apiVersion: 'v1', kind: 'ConfigMap', name: 'gone', namespace: ns };
      assert.equal(await kube.delete(ref), true);
      assert.equal(await kube.get(ref), undefined);
      assert.equal(await kube.delete(ref), false);
    });
  });
}

if (process.env.KOMPOX_TEST_KUBECONFIG) {
  kubeContract('real cluster', async () => ({
    kubeconfigPath: process.env.KOMPOX_TEST_KUBECONFIG!,
    context: process.env.KOMPOX_TEST_CONTEXT,
    teardown: async () => {},
  }));
} else {
  test('KubeClient contract (real cluster)', { skip: 'KOMPOX_TEST_KUBECONFIG is not set' }, () => {});
}

kubeContract('fake API server', async () => {
  const fake: FakeKube = await startFakeKube();
  return { kubeconfigPath: fake.kubeconfigPath, teardown: () => fake.close() };
});

if (spawnSync('openssl', ['version']).status === 0) {
  kubeContract('fake API server over TLS', async () => {
    const fake: FakeKube = await startFakeKube({ tls: true });
    return { kubeconfigPath: fake.kubeconfigPath, teardown: () => fake.close() };
  });
} else {
  test('KubeClient contract (fake API server over TLS)', { skip: 'the openssl CLI is not installed (needed for the test certificate)' }, () => {});
}

/**
 * What Kompox depends on a cluster's controllers, scheduler and kubelets for.
 * The same tests run against the fake (which models them) and, with
 * KOMPOX_TEST_KUBECONFIG, against a real cluster, so the fake is held to real
 * behaviour. They wait as a client must (eventually), never on timings.
 */
export function clusterContract(label: string, setup: () => Promise<{ kubeconfigPath: string; context?: string; teardown(): Promise<void> }>): void {
  describe(`cluster behaviour contract (${label})`, () => {
    let kube: KubeClient;
    let teardown: () => Promise<void>;
    const ns = `kompox-cluster-${randomBytes(3).toString('hex')}`;
    const pvName = `${ns}-pv`;
    // pause exits at once on SIGTERM; its image is on every node that runs pods
    const image = 'registry.k8s.io/pause:3.9';
    const get = (kind: string, name: string, namespace?: string) =>
      kube.get({ apiVersion: kind === 'Deployment' || kind === 'ReplicaSet' ? 'apps/v1' : 'v1', kind, name, ...(namespace ? { namespace } : {}) });
    type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const phase = (o: KubeObject | undefined) => (o?.status as Any | undefined)?.phase as string | undefined;
    const pv: KubeObject = {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: pvName, labels: { 'app.kubernetes.io/managed-by': 'kompox' } },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: 'kompox-contract',
        volumeMode: 'Filesystem',
        hostPath: { path: `/tmp/${ns}`, type: 'DirectoryOrCreate' },
        claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: ns, name: 'data' },
      },
    };
    const pvc: KubeObject = {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'data', namespace: ns },
      spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'kompox-contract', volumeName: pvName, volumeMode: 'Filesystem', resources: { requests: { storage: '1Gi' } } },
    };
    const deployment = (name: string, tag: string): KubeObject => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: ns },
      spec: {
        replicas: 1,
        strategy: { type: 'Recreate' },
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name }, annotations: { 'example.com/tag': tag } },
          spec: { terminationGracePeriodSeconds: 5, containers: [{ name: 'main', image }] },
        },
      },
    });

    before(async () => {
      const s = await setup();
      teardown = s.teardown;
      kube = await connectKubeconfig({ path: s.kubeconfigPath, context: s.context });
      await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    });
    after(async () => {
      try {
        await kube?.delete({ apiVersion: 'v1', kind: 'Namespace', name: ns });
        await kube?.delete({ apiVersion: 'v1', kind: 'PersistentVolume', name: pvName });
      } finally {
        await teardown?.();
      }
    });

    test('a pre-bound volume and its claim bind (claimRef.uid = the claim\'s uid); re-applying the volume keeps the binding', async () => {
      await kube.apply(pv);
      await kube.apply(pvc);
      const claim = await eventually(async () => {
        const c = await get('PersistentVolumeClaim', 'data', ns);
        return phase(c) === 'Bound' && c;
      }, 'the claim to be Bound');
      assert.equal(claim.metadata.annotations?.['pv.kubernetes.io/bind-completed'], 'yes');
      const bound = (await get('PersistentVolume', pvName))!;
      assert.equal(phase(bound), 'Bound');
      assert.equal((bound.spec as Any).claimRef.uid, claim.metadata.uid);
      // a re-deploy applies the same manifest again (forced, as Kompox applies)
      await kube.apply(pv);
      await kube.apply(pv);
      const again = (await get('PersistentVolume', pvName))!;
      assert.equal((again.spec as Any).claimRef.uid, claim.metadata.uid, 'the uid the PV controller wrote survives the re-apply');
      assert.equal(phase(await get('PersistentVolumeClaim', 'data', ns)), 'Bound');
    });

    test('pvc-protection keeps a deleted claim while a scheduled pod uses it; then the Retain volume is Released', async () => {
      await kube.apply({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'user', namespace: ns },
        spec: { terminationGracePeriodSeconds: 5, containers: [{ name: 'main', image }], volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'data' } }] },
      });
      await eventually(async () => (await get('Pod', 'user', ns))?.spec && ((await get('Pod', 'user', ns))!.spec as Any).nodeName, 'the pod to be scheduled');
      assert.equal(await kube.delete({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'data', namespace: ns }), true);
      const held = (await get('PersistentVolumeClaim', 'data', ns))!;
      assert.ok(held.metadata.deletionTimestamp, 'Terminating');
      assert.deepEqual(held.metadata.finalizers, ['kubernetes.io/pvc-protection']);
      await kube.delete({ apiVersion: 'v1', kind: 'Pod', name: 'user', namespace: ns });
      await eventually(async () => (await get('PersistentVolumeClaim', 'data', ns)) === undefined, 'the claim to go with the pod');
      await eventually(async () => phase(await get('PersistentVolume', pvName)) === 'Released', 'the volume to be Released');
      assert.ok(((await get('PersistentVolume', pvName))!.spec as Any).claimRef.uid, 'a Released volume still names its old claim');
    });

    test('Recreate: the pod of a new template appears only once the old pods are gone', async () => {
      await kube.apply(deployment('recreate', 'one'));
      const podsOf = () => kube.list('v1', 'Pod', { namespace: ns, labelSelector: 'app=recreate' });
      const first = await eventually(async () => (await podsOf()).find((p) => (p.spec as Any).nodeName), 'the first pod to be scheduled');
      const oldHash = first.metadata.labels!['pod-template-hash'];
      await kube.apply(deployment('recreate', 'two'));
      await eventually(async () => {
        const pods = await podsOf();
        const fresh = pods.filter((p) => p.metadata.labels!['pod-template-hash'] !== oldHash);
        if (fresh.length) assert.deepEqual(pods.filter((p) => p.metadata.labels!['pod-template-hash'] === oldHash).map((p) => p.metadata.name), [], 'old and new pods at the same time');
        return fresh.length > 0;
      }, 'the new pod');
      const dep = (await get('Deployment', 'recreate', ns))!;
      assert.equal(dep.metadata.annotations!['deployment.kubernetes.io/revision'], '2');
    });

    test('deleting a Deployment (Background) removes its ReplicaSet and pods', async () => {
      await kube.apply(deployment('gone', 'one'));
      await eventually(async () => (await kube.list('apps/v1', 'ReplicaSet', { namespace: ns, labelSelector: 'app=gone' })).length === 1, 'the ReplicaSet');
      await eventually(async () => (await kube.list('v1', 'Pod', { namespace: ns, labelSelector: 'app=gone' })).length === 1, 'the pod');
      await kube.delete({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'gone', namespace: ns }, { propagationPolicy: 'Background' });
      await eventually(async () => (await kube.list('apps/v1', 'ReplicaSet', { namespace: ns, labelSelector: 'app=gone' })).length === 0, 'the ReplicaSet to go');
      await eventually(async () => (await kube.list('v1', 'Pod', { namespace: ns, labelSelector: 'app=gone' })).length === 0, 'the pods to go');
    });

    test('a deleted namespace is Terminating until its content is gone, then goes', async () => {
      const other = `${ns}-x`;
      await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: other } });
      await kube.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: other }, data: { a: '1' } });
      await kube.apply({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: other }, spec: { terminationGracePeriodSeconds: 5, containers: [{ name: 'main', image }] } });
      assert.equal(await kube.delete({ apiVersion: 'v1', kind: 'Namespace', name: other }), true);
      // it may already be gone (a pod that stops at once); if not, it says why it stays
      const terminating = await get('Namespace', other);
      if (terminating) assert.equal(phase(terminating), 'Terminating');
      await eventually(async () => (await get('Namespace', other)) === undefined, 'the namespace to go');
      assert.deepEqual(await kube.list('v1', 'ConfigMap', { namespace: other }), []);
    });
  });
}

if (process.env.KOMPOX_TEST_KUBECONFIG) {
  clusterContract('real cluster', async () => ({
    kubeconfigPath: process.env.KOMPOX_TEST_KUBECONFIG!,
    context: process.env.KOMPOX_TEST_CONTEXT,
    teardown: async () => {},
  }));
} else {
  test('cluster behaviour contract (real cluster)', { skip: 'KOMPOX_TEST_KUBECONFIG is not set' }, () => {});
}

clusterContract('fake API server', async () => {
  const fake: FakeKube = await startFakeKube();
  return {
    kubeconfigPath: fake.kubeconfigPath,
    teardown: async () => {
      assert.deepEqual(fake.controllerErrors, []);
      await fake.close();
    },
  };
});
