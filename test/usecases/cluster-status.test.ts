// cluster status against the fake API server without controllers: the test
// plays them (Deployment status, LoadBalancer address).
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectKubeconfig, type KubeClient } from '../../src/kube/index.js';
import { KompoxError } from '../../src/domain/errors.js';
import { deployClusterIngress, type ClusterIngressInput } from '../../src/usecases/cluster-deploy.js';
import { getClusterStatus } from '../../src/usecases/cluster-status.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { OPENSSL_MISSING, makeCert, testCluster as cluster } from '../ingress/helpers.js';
import { startFakeCluster } from '../support/kube.js';

function setStatus(fake: FakeKube, apiVersion: string, kind: string, ns: string, name: string, status: Record<string, unknown>): void {
  const r = fake.resource(apiVersion, kind)!;
  const o = fake.store.get(r, ns, name)!;
  fake.store.put(r, { ...o, status });
}

describe('cluster status against the fake API server', () => {
  let fake: FakeKube;
  let kube: KubeClient;
  // A cluster of its own for each test: "before deploy" must not see what "after deploy" deployed.
  beforeEach(async () => {
    ({ fake, kube } = await startFakeCluster({ controllers: false }));
  });
  afterEach(async () => fake.close());

  test('before deploy: reachable, version, ingress not installed', async () => {
    const input: ClusterIngressInput = { cluster: cluster({ ACME_EMAIL: 'ops@example.com' }), driver: 'aks', configDir: '/' };
    const s = await getClusterStatus(input, { connect: async () => kube });
    assert.equal(s.reachable, true);
    assert.match(s.kubernetesVersion!, /^v\d+\.\d+/);
    assert.equal(s.defaultDomain, 'c1.example.com');
    assert.equal(s.ingress?.installed, false);
    assert.equal(s.ingress?.ready, false);
    assert.deepEqual(s.ingress?.ips, []);
    assert.equal(s.wildcardCertificate, undefined);
  });

  test('after deploy: ready, LoadBalancer IP and hostname, certificate expiry', { skip: OPENSSL_MISSING }, async () => {
    const cert = makeCert(['*.c1.example.com'], 45);
    try {
      const input: ClusterIngressInput = {
        cluster: cluster({ ACME_EMAIL: 'ops@example.com', INGRESS_TLS_CERT_FILE: 'tls.crt', INGRESS_TLS_KEY_FILE: 'tls.key' }),
        driver: 'aks',
        configDir: cert.dir,
      };
      await deployClusterIngress(input, kube);
      let s = await getClusterStatus(input, { connect: async () => kube });
      assert.equal(s.ingress?.installed, true);
      assert.equal(s.ingress?.configured, true);
      assert.equal(s.ingress?.ready, false, 'no controller ran: not ready');
      assert.equal(s.ingress?.availableReplicas, 0);

      setStatus(fake, 'apps/v1', 'Deployment', 'traefik', 'traefik', { replicas: 1, readyReplicas: 1, availableReplicas: 1 });
      setStatus(fake, 'v1', 'Service', 'traefik', 'traefik', {
        loadBalancer: { ingress: [{ ip: '203.0.113.7' }, { hostname: 'lb-123.elb.example.com' }] },
      });
      s = await getClusterStatus(input, {
        connect: async () => kube,
        providerStatus: async () => ({ ingressFQDN: 'c1-ingress.japaneast.cloudapp.azure.com', ingressIP: '203.0.113.7' }),
      });
      assert.equal(s.ingress?.ready, true);
      assert.deepEqual(s.ingress?.ips, ['203.0.113.7']);
      assert.deepEqual(s.ingress?.hostnames, ['c1-ingress.japaneast.cloudapp.azure.com', 'lb-123.elb.example.com']);
      assert.equal(s.wildcardCertificate?.secret, 'traefik/traefik-default-cert');
      assert.deepEqual(s.wildcardCertificate?.dnsNames, ['*.c1.example.com']);
      assert.ok(s.wildcardCertificate!.expiresInDays! >= 43 && s.wildcardCertificate!.expiresInDays! <= 45);
      assert.equal(s.ingress?.acmeVolume?.name, 'traefik-acme');
    } finally {
      cert.cleanup();
    }
  });

  test('unreachable: reachable false with the reason, no exception', async () => {
    const input: ClusterIngressInput = { cluster: cluster({}), driver: 'aks', configDir: '/' };
    const s = await getClusterStatus(input, {
      connect: async () => {
        throw new KompoxError('unavailable', 'cannot reach the Kubernetes API server at https://127.0.0.1:1: connection refused', { hint: 'Check the cluster.' });
      },
    });
    assert.equal(s.reachable, false);
    assert.match(s.reason!, /connection refused/);
    assert.equal(s.ingress, undefined);
  });

  test('unreachable through the real adapter (closed port)', async () => {
    const f = await startFakeKube();
    const text = f.kubeconfig;
    await f.close(); // nothing listens on its port any more
    const dir = mkdtempSync(join(tmpdir(), 'kompox-status-'));
    const path = join(dir, 'kubeconfig');
    writeFileSync(path, text);
    try {
      const input: ClusterIngressInput = { cluster: cluster({}), driver: 'aks', configDir: '/' };
      const s = await getClusterStatus(input, { connect: () => connectKubeconfig({ path }, { timeoutMs: 3000 }) });
      assert.equal(s.reachable, false);
      assert.match(s.reason!, /cannot reach the Kubernetes API server/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('K3s: reads kube-system/traefik and our HelmChartConfig', async () => {
    const f = await startFakeKube();
    try {
      f.addResource({ group: 'helm.cattle.io', version: 'v1', kind: 'HelmChartConfig', plural: 'helmchartconfigs', namespaced: true });
      const k = await connectKubeconfig({ path: f.kubeconfigPath });
      await k.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kube-system' } }, { fieldManager: 'k3s' });
      // K3s's own chart installed Traefik (not labelled by us).
      await k.apply(
        {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'traefik', namespace: 'kube-system' },
          spec: {
            selector: { matchLabels: { app: 't' } },
            template: { metadata: { labels: { app: 't' } }, spec: { containers: [{ name: 'traefik', image: 'rancher/mirrored-library-traefik:3.3.6' }] } },
          },
        },
        { fieldManager: 'helm' },
      );
      await k.apply(
        { apiVersion: 'v1', kind: 'Service', metadata: { name: 'traefik', namespace: 'kube-system' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } },
        { fieldManager: 'helm' },
      );
      setStatus(f, 'apps/v1', 'Deployment', 'kube-system', 'traefik', { replicas: 1, availableReplicas: 1 });
      setStatus(f, 'v1', 'Service', 'kube-system', 'traefik', { loadBalancer: { ingress: [{ ip: '192.0.2.10' }] } });
      const input: ClusterIngressInput = { cluster: cluster({ ACME_EMAIL: 'ops@example.com' }), driver: 'k3s', configDir: '/' };
      let s = await getClusterStatus(input, { connect: async () => k });
      assert.equal(s.ingress?.namespace, 'kube-system');
      assert.equal(s.ingress?.ready, true);
      assert.equal(s.ingress?.configured, false, 'not configured by Kompox yet');
      assert.deepEqual(s.ingress?.ips, ['192.0.2.10']);
      await deployClusterIngress(input, k);
      s = await getClusterStatus(input, { connect: async () => k });
      assert.equal(s.ingress?.configured, true);
    } finally {
      await f.close();
    }
  });
});
