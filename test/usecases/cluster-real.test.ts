// cluster deploy / re-deploy / status / undeploy against a real API server
// (KOMPOX_TEST_KUBECONFIG=path [KOMPOX_TEST_CONTEXT=name]). It installs the
// cluster-scoped objects (ClusterRole kompox-traefik, IngressClass traefik):
// use a test cluster. Works without nodes or controllers: nothing here waits
// for pods, and objects still terminating (finalizers) count as deleted.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connectKubeconfig, type KubeClient } from '../../src/kube/index.js';
import { GENERIC_KINDS, deployClusterIngress, undeployClusterIngress, type ClusterIngressInput } from '../../src/usecases/cluster-deploy.js';
import { getClusterStatus } from '../../src/usecases/cluster-status.js';
import { testCluster } from '../ingress/helpers.js';

const KUBECONFIG = process.env.KOMPOX_TEST_KUBECONFIG;

async function ours(kube: KubeClient): Promise<Record<string, { rv: string; deleting: boolean }>> {
  const out: Record<string, { rv: string; deleting: boolean }> = {};
  for (const [av, kind] of GENERIC_KINDS) {
    for (const o of await kube.list(av, kind, { labelSelector: 'app.kubernetes.io/part-of=kompox-ingress' })) {
      out[`${kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`] = { rv: String(o.metadata.resourceVersion), deleting: Boolean(o.metadata.deletionTimestamp) };
    }
  }
  return out;
}

if (!KUBECONFIG) {
  test('cluster deploy against a real cluster', { skip: 'KOMPOX_TEST_KUBECONFIG is not set' }, () => {});
} else {
  describe('cluster deploy against a real cluster', () => {
    test('deploy, re-deploy without changes, status, undeploy keeps the PVC, purge', async () => {
      const kube = await connectKubeconfig({ path: KUBECONFIG, context: process.env.KOMPOX_TEST_CONTEXT });
      const ns = `kompox-test-ingress-${randomBytes(3).toString('hex')}`;
      const input: ClusterIngressInput = { cluster: testCluster({ ACME_EMAIL: 'ops@example.com' }, ns), driver: 'aks', configDir: '/' };
      try {
        const first = await deployClusterIngress(input, kube);
        assert.ok(first.objects.every((o) => o.action === 'created' || o.action === 'configured'), JSON.stringify(first.objects));
        const live = await ours(kube);
        assert.ok(live[`Deployment ${ns}/traefik`], JSON.stringify(live));

        const second = await deployClusterIngress(input, kube);
        assert.deepEqual(second.objects.filter((o) => o.action !== 'unchanged'), [], 'nothing changes on re-deploy');
        assert.deepEqual(await ours(kube), live, 'resourceVersions unchanged');

        const s = await getClusterStatus(input, { connect: async () => kube });
        assert.equal(s.reachable, true);
        assert.equal(s.ingress?.installed, true);

        const un = await undeployClusterIngress(input, kube);
        assert.deepEqual(un.kept.map((r) => r.kind).sort(), ['Namespace', 'PersistentVolumeClaim']);
        const left = Object.entries(await ours(kube)).filter(([, v]) => !v.deleting).map(([k]) => k).sort();
        assert.deepEqual(left, [`Namespace /${ns}`, `PersistentVolumeClaim ${ns}/traefik-acme`]);
      } finally {
        await undeployClusterIngress(input, kube, { purge: true });
      }
      const remaining = Object.entries(await ours(kube)).filter(([k, v]) => k.includes(ns) && !v.deleting);
      assert.deepEqual(remaining, []);
    });
  });
}
