// cluster deploy / undeploy through the real KubeClient adapter against the
// in-process fake API server (real HTTP, server-side apply).
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { KompoxError } from '../../src/domain/errors.js';
import { connectKubeconfig, type KubeClient, type KubeObject } from '../../src/kube/index.js';
import { GENERIC_KINDS, K3S_KINDS, deployClusterIngress, undeployClusterIngress, type ClusterIngressInput } from '../../src/usecases/cluster-deploy.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { OPENSSL_MISSING, makeCert, testCluster as cluster, type TestCert } from '../ingress/helpers.js';
import { startFakeCluster } from '../support/kube.js';
import { logInto } from '../support/events.js';

const SELECTOR = 'app.kubernetes.io/part-of=kompox-ingress';

/** name → resourceVersion of everything labelled as ours. */
async function snapshot(kube: KubeClient, kinds: ReadonlyArray<readonly [string, string]>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [av, kind] of kinds) {
    for (const o of await kube.list(av, kind, { labelSelector: SELECTOR })) {
      out[`${kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`] = String(o.metadata.resourceVersion);
    }
  }
  return out;
}

function writes(fake: FakeKube): number {
  return fake.requests.filter((r) => r.method !== 'GET').length;
}

const nginxDefault: KubeObject = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'IngressClass',
  metadata: { name: 'nginx', annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' } },
  spec: { controller: 'k8s.io/ingress-nginx' },
};

describe('cluster deploy (generic Traefik) against the fake API server', () => {
  let fake: FakeKube;
  let kube: KubeClient;
  let cert: TestCert | undefined;
  before(() => {
    if (!OPENSSL_MISSING) cert = makeCert(['*.c1.example.com'], 90);
  });
  after(() => cert?.cleanup());
  // A cluster of its own for each test: none sees what another deployed.
  beforeEach(async () => {
    ({ fake, kube } = await startFakeCluster());
  });
  afterEach(async () => fake.close());

  test('missing ACME_EMAIL: clear error naming the setting, nothing applied', async () => {
    const n = writes(fake);
    await assert.rejects(
      deployClusterIngress({ cluster: cluster({}), driver: 'aks', configDir: '/' }, kube),
      (e: unknown) => e instanceof KompoxError && e.field === 'cluster.settings.ACME_EMAIL' && /ACME_EMAIL is not set/.test(e.message),
    );
    assert.equal(writes(fake), n);
    assert.deepEqual(await snapshot(kube, GENERIC_KINDS), {});
  });

  test('a certificate for the wrong domain: error before anything is applied', { skip: OPENSSL_MISSING }, async () => {
    const wrong = makeCert(['*.other.example.com']);
    try {
      const n = writes(fake);
      const input: ClusterIngressInput = {
        cluster: cluster({ ACME_EMAIL: 'ops@example.com', INGRESS_TLS_CERT_FILE: 'tls.crt', INGRESS_TLS_KEY_FILE: 'tls.key' }),
        driver: 'aks',
        configDir: wrong.dir,
      };
      await assert.rejects(deployClusterIngress(input, kube), /does not cover \*\.c1\.example\.com/);
      assert.equal(writes(fake), n);
    } finally {
      wrong.cleanup();
    }
  });

  test('a missing certificate file names the setting and the path', async () => {
    const input: ClusterIngressInput = {
      cluster: cluster({ ACME_EMAIL: 'ops@example.com', INGRESS_TLS_CERT_FILE: 'nope.crt', INGRESS_TLS_KEY_FILE: 'nope.key' }),
      driver: 'aks',
      configDir: '/nonexistent-dir',
    };
    await assert.rejects(deployClusterIngress(input, kube), (e: unknown) => e instanceof KompoxError && e.field === 'cluster.settings.INGRESS_TLS_CERT_FILE' && /\/nonexistent-dir\/nope\.crt: no such file/.test(e.message));
  });

  test('deploy, re-deploy (no changes), undeploy (ACME PVC kept), purge', { skip: OPENSSL_MISSING }, async () => {
    const input: ClusterIngressInput = {
      cluster: cluster({ ACME_EMAIL: 'ops@example.com', INGRESS_TLS_CERT_FILE: 'tls.crt', INGRESS_TLS_KEY_FILE: 'tls.key' }),
      driver: 'aks',
      configDir: cert!.dir,
    };
    const lines: string[] = [];
    const first = await deployClusterIngress(input, kube, {}, logInto(lines));
    assert.equal(first.variant, 'traefik');
    assert.equal(first.defaultIngressClass, true, 'no other default class: ours becomes default');
    assert.deepEqual(first.warnings, []);
    assert.ok(first.objects.every((o) => o.action === 'created'), JSON.stringify(first.objects));
    assert.deepEqual(first.objects.map((o) => o.kind), [
      'Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'Secret', 'PersistentVolumeClaim', 'Deployment', 'Service', 'IngressClass',
    ]);
    assert.equal(lines.length, first.objects.length);
    assert.deepEqual(first.certificate?.dnsNames, ['*.c1.example.com']);

    const secret = await kube.get({ apiVersion: 'v1', kind: 'Secret', name: 'traefik-default-cert', namespace: 'traefik' });
    assert.equal(Buffer.from((secret!.data as Record<string, string>)['tls.crt']!, 'base64').toString(), cert!.cert);
    const ic = await kube.get({ apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', name: 'traefik' });
    assert.equal(ic!.metadata.annotations?.['ingressclass.kubernetes.io/is-default-class'], 'true');

    const before = await snapshot(kube, GENERIC_KINDS);
    assert.equal(Object.keys(before).length, 10);
    const second = await deployClusterIngress(input, kube);
    assert.ok(second.objects.every((o) => o.action === 'unchanged'), JSON.stringify(second.objects));
    assert.deepEqual(await snapshot(kube, GENERIC_KINDS), before, 'resourceVersions unchanged');

    // Another default class appearing later does not flip our decision.
    await kube.apply(nginxDefault, { fieldManager: 'someone-else' });
    const third = await deployClusterIngress(input, kube);
    assert.equal(third.defaultIngressClass, true);
    assert.deepEqual(await snapshot(kube, GENERIC_KINDS), before);

    // A renewed certificate rolls the pod (template hash changes).
    const renewed = makeCert(['*.c1.example.com'], 60);
    try {
      const hashOf = async () =>
        ((await kube.get({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'traefik', namespace: 'traefik' }))!.spec as any).template.metadata.annotations[
          'kompox.dev/ingress-config-hash'
        ];
      const h1 = await hashOf();
      const r = await deployClusterIngress({ ...input, configDir: renewed.dir }, kube);
      assert.deepEqual(r.objects.filter((o) => o.action === 'configured').map((o) => o.kind).sort(), ['Deployment', 'Secret']);
      assert.notEqual(await hashOf(), h1);
    } finally {
      renewed.cleanup();
    }

    const un = await undeployClusterIngress(input, kube);
    assert.deepEqual(un.kept.map((r) => `${r.kind} ${r.name}`).sort(), ['Namespace traefik', 'PersistentVolumeClaim traefik-acme']);
    assert.equal(un.deleted.length, 8);
    assert.deepEqual(Object.keys(await snapshot(kube, GENERIC_KINDS)).sort(), ['Namespace /traefik', 'PersistentVolumeClaim traefik/traefik-acme']);
    assert.ok(await kube.get({ apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', name: 'nginx' }), 'foreign objects untouched');

    // Re-deploy after undeploy re-creates everything around the same ACME volume.
    const pvcBefore = await kube.get({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'traefik-acme', namespace: 'traefik' });
    const re = await deployClusterIngress(input, kube);
    assert.equal(re.objects.find((o) => o.kind === 'PersistentVolumeClaim')!.action, 'unchanged');
    const pvcAfter = await kube.get({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'traefik-acme', namespace: 'traefik' });
    assert.equal(pvcAfter!.metadata.uid, pvcBefore!.metadata.uid);

    const purge = await undeployClusterIngress(input, kube, { purge: true });
    assert.deepEqual(purge.kept, []);
    assert.deepEqual(await snapshot(kube, GENERIC_KINDS), {});
  });

  test('an existing default IngressClass: ours is not made default; a foreign "traefik" class of another controller is a conflict', async () => {
    const f2 = await startFakeKube();
    try {
      const k2 = await connectKubeconfig({ path: f2.kubeconfigPath });
      await k2.apply(nginxDefault, { fieldManager: 'someone-else' });
      const input: ClusterIngressInput = { cluster: cluster({ ACME_EMAIL: 'ops@example.com' }, 'edge'), driver: 'eks', configDir: '/' };
      const r = await deployClusterIngress(input, k2);
      assert.equal(r.defaultIngressClass, false);
      assert.match(r.warnings.join('\n'), /self-signed default certificate/);
      const ic = await k2.get({ apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', name: 'traefik' });
      assert.equal(ic!.metadata.annotations?.['ingressclass.kubernetes.io/is-default-class'], undefined);
      const dep = await k2.get({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'traefik', namespace: 'edge' });
      assert.ok(((dep!.spec as any).template.spec.containers[0].args as string[]).includes('--providers.kubernetesingress.ingressendpoint.publishedservice=edge/traefik'));

      await undeployClusterIngress(input, k2, { purge: true });
      await k2.apply(
        { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'traefik' }, spec: { controller: 'example.com/other' } },
        { fieldManager: 'someone-else' },
      );
      const n = f2.requests.filter((q) => q.method !== 'GET').length;
      await assert.rejects(deployClusterIngress(input, k2), (e: unknown) => e instanceof KompoxError && e.kind === 'conflict' && /IngressClass traefik/.test(e.message));
      assert.equal(f2.requests.filter((q) => q.method !== 'GET').length, n, 'nothing applied');
    } finally {
      await f2.close();
    }
  });

  test('the live storage class of the ACME volume is kept; a namespace being deleted is reported', async () => {
    // the namespace controller is off: the namespace the test marks as being deleted stays so
    const f4 = await startFakeKube({ terminatingNamespaces: true });
    try {
      const k4 = await connectKubeconfig({ path: f4.kubeconfigPath });
      const input: ClusterIngressInput = { cluster: cluster({ ACME_EMAIL: 'ops@example.com' }), driver: 'oke', configDir: '/' };
      await deployClusterIngress(input, k4);
      // What the DefaultStorageClass admission plugin does on a real server.
      const pvcRes = f4.resource('v1', 'PersistentVolumeClaim')!;
      const pvc = f4.store.get(pvcRes, 'traefik', 'traefik-acme')!;
      f4.store.put(pvcRes, { ...pvc, spec: { ...(pvc.spec as object), storageClassName: 'oci-bv' } });
      const r = await deployClusterIngress({ ...input, cluster: cluster({ ACME_EMAIL: 'ops@example.com', INGRESS_STORAGE_CLASS: 'fast' }) }, k4);
      assert.equal(r.objects.find((o) => o.kind === 'PersistentVolumeClaim')!.action, 'unchanged');
      assert.match(r.warnings.join('\n'), /uses storage class oci-bv; INGRESS_STORAGE_CLASS fast applies only to a new volume/);
      const live = await k4.get({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'traefik-acme', namespace: 'traefik' });
      assert.equal((live!.spec as { storageClassName?: string }).storageClassName, 'oci-bv');

      const nsRes = f4.resource('v1', 'Namespace')!;
      const ns = f4.store.get(nsRes, undefined, 'traefik')!;
      f4.store.put(nsRes, { ...ns, metadata: { ...ns.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } });
      await assert.rejects(deployClusterIngress(input, k4), (e: unknown) => e instanceof KompoxError && e.kind === 'conflict' && /namespace traefik is being deleted/.test(e.message));
    } finally {
      await f4.close();
    }
  });

  test('objects an earlier deploy created and this one does not want are pruned (never the ACME volume)', { skip: OPENSSL_MISSING }, async () => {
    const f5 = await startFakeKube();
    const c = makeCert(['*.c1.example.com'], 90);
    try {
      const k5 = await connectKubeconfig({ path: f5.kubeconfigPath });
      const withCert: ClusterIngressInput = {
        cluster: cluster({ ACME_EMAIL: 'ops@example.com', INGRESS_TLS_CERT_FILE: 'tls.crt', INGRESS_TLS_KEY_FILE: 'tls.key' }),
        driver: 'aks',
        configDir: c.dir,
      };
      await deployClusterIngress(withCert, k5);
      const dry = await deployClusterIngress({ ...withCert, cluster: cluster({ ACME_EMAIL: 'ops@example.com' }) }, k5, { dryRun: true });
      assert.deepEqual(dry.objects.filter((o) => o.action === 'pruned').map((o) => o.kind).sort(), ['ConfigMap', 'Secret']);
      assert.ok(await k5.get({ apiVersion: 'v1', kind: 'Secret', name: 'traefik-default-cert', namespace: 'traefik' }), 'dry run deletes nothing');
      const r = await deployClusterIngress({ ...withCert, cluster: cluster({ ACME_EMAIL: 'ops@example.com' }) }, k5);
      assert.deepEqual(r.objects.filter((o) => o.action === 'pruned').map((o) => `${o.kind} ${o.name}`).sort(), ['ConfigMap traefik-dynamic', 'Secret traefik-default-cert']);
      assert.equal(await k5.get({ apiVersion: 'v1', kind: 'Secret', name: 'traefik-default-cert', namespace: 'traefik' }), undefined);
      // Moving to another namespace prunes the old workload but keeps the old ACME volume (and its namespace).
      const moved = await deployClusterIngress({ ...withCert, cluster: cluster({ ACME_EMAIL: 'ops@example.com' }, 'edge') }, k5);
      const pruned = moved.objects.filter((o) => o.action === 'pruned').map((o) => `${o.kind} ${o.namespace}/${o.name}`).sort();
      assert.deepEqual(pruned, ['Deployment traefik/traefik', 'Service traefik/traefik', 'ServiceAccount traefik/traefik']);
      assert.ok(await k5.get({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'traefik-acme', namespace: 'traefik' }));
    } finally {
      c.cleanup();
      await f5.close();
    }
  });

  test('an existing TLS Secret in a namespace the user made: used, checked, and never deleted', { skip: OPENSSL_MISSING }, async () => {
    const f6 = await startFakeKube();
    const c = makeCert(['*.c1.example.com'], 90);
    try {
      const k6 = await connectKubeconfig({ path: f6.kubeconfigPath });
      const input: ClusterIngressInput = { cluster: cluster({ ACME_EMAIL: 'ops@example.com', INGRESS_TLS_SECRET: 'wildcard' }), driver: 'aks', configDir: '/' };
      await assert.rejects(deployClusterIngress(input, k6), (e: unknown) => e instanceof KompoxError && e.kind === 'notfound' && /Secret traefik\/wildcard .* does not exist/.test(e.message) && /kubectl -n traefik create secret tls wildcard/.test(e.hint ?? ''));
      await k6.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'traefik' } }, { fieldManager: 'kubectl' });
      const secret = (cert: string, key: string) => ({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'wildcard', namespace: 'traefik' },
        type: 'kubernetes.io/tls',
        data: { 'tls.crt': Buffer.from(cert).toString('base64'), 'tls.key': Buffer.from(key).toString('base64') },
      });
      const other = makeCert(['*.c1.example.com']);
      try {
        await k6.apply(secret(c.cert, other.key), { fieldManager: 'kubectl' });
        await assert.rejects(deployClusterIngress(input, k6), /does not belong to the certificate/);
      } finally {
        other.cleanup();
      }
      await k6.apply(secret(c.cert, c.key), { fieldManager: 'kubectl' });
      const r = await deployClusterIngress(input, k6);
      assert.ok(!r.objects.some((o) => o.kind === 'Namespace' || o.kind === 'Secret'), JSON.stringify(r.objects));
      assert.equal(r.certificate?.secret, 'traefik/wildcard');
      const dep = await k6.get({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'traefik', namespace: 'traefik' });
      assert.ok(((dep!.spec as any).template.spec.volumes as any[]).some((v) => v.secret?.secretName === 'wildcard'));
      await undeployClusterIngress(input, k6, { purge: true });
      assert.ok(await k6.get({ apiVersion: 'v1', kind: 'Namespace', name: 'traefik' }), "the user's namespace stays");
      assert.ok(await k6.get({ apiVersion: 'v1', kind: 'Secret', name: 'wildcard', namespace: 'traefik' }), "the user's Secret stays");
      assert.equal(await k6.get({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'traefik', namespace: 'traefik' }), undefined);
    } finally {
      c.cleanup();
      await f6.close();
    }
  });

  test('dry run stores nothing and reports what would be created', async () => {
    const f3 = await startFakeKube();
    try {
      const k3 = await connectKubeconfig({ path: f3.kubeconfigPath });
      const r = await deployClusterIngress({ cluster: cluster({ ACME_EMAIL: 'ops@example.com', ACME_STAGING: 'true' }), driver: 'gke', configDir: '/' }, k3, { dryRun: true });
      assert.ok(r.dryRun);
      assert.equal(r.certResolver, 'letsencrypt-staging');
      assert.ok(r.objects.length >= 8 && r.objects.every((o) => o.action === 'created'), JSON.stringify(r.objects));
      assert.deepEqual(await snapshot(k3, GENERIC_KINDS), {});
    } finally {
      await f3.close();
    }
  });
});

describe('cluster deploy (K3s bundled Traefik) against the fake API server', () => {
  let fake: FakeKube;
  let kube: KubeClient;
  // A cluster of its own for each test (one adds the HelmChartConfig CRD, another needs it absent).
  beforeEach(async () => {
    ({ fake, kube } = await startFakeCluster());
    // What every cluster has.
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kube-system' } }, { fieldManager: 'k3s' });
  });
  afterEach(async () => fake.close());

  test('without the HelmChartConfig CRD: a clear error, nothing applied', async () => {
    const n = writes(fake);
    await assert.rejects(
      deployClusterIngress({ cluster: cluster({ ACME_EMAIL: 'ops@example.com' }), driver: 'k3s', configDir: '/' }, kube),
      (e: unknown) => e instanceof KompoxError && /does not serve helm.cattle.io\/v1 HelmChartConfig/.test(e.message) && e.field === 'provider.driver',
    );
    assert.equal(writes(fake), n);
  });

  test('deploy, re-deploy, undeploy keeps the PVC, purge, refuse a foreign HelmChartConfig', { skip: OPENSSL_MISSING }, async () => {
    // A K3s server serves the helm-controller CRD.
    fake.addResource({ group: 'helm.cattle.io', version: 'v1', kind: 'HelmChartConfig', plural: 'helmchartconfigs', namespaced: true });
    const k = await connectKubeconfig({ path: fake.kubeconfigPath }); // fresh discovery
    const cert = makeCert(['*.c1.example.com'], 90);
    try {
      const input: ClusterIngressInput = {
        cluster: cluster({ ACME_EMAIL: 'ops@example.com', INGRESS_TLS_CERT_FILE: 'tls.crt', INGRESS_TLS_KEY_FILE: 'tls.key' }),
        driver: 'k3s',
        configDir: cert.dir,
      };
      const r = await deployClusterIngress(input, k);
      assert.equal(r.variant, 'k3s');
      assert.equal(r.certResolver, 'letsencrypt');
      assert.equal(r.namespace, 'kube-system');
      assert.deepEqual(r.objects.map((o) => `${o.kind} ${o.namespace}/${o.name} ${o.action}`), [
        'Secret kube-system/kompox-traefik-default-cert created',
        'PersistentVolumeClaim kube-system/kompox-traefik-acme created',
        'HelmChartConfig kube-system/traefik created',
      ]);
      const hcc = (await k.get({ apiVersion: 'helm.cattle.io/v1', kind: 'HelmChartConfig', name: 'traefik', namespace: 'kube-system' })) as KubeObject;
      const values = parse((hcc.spec as { valuesContent: string }).valuesContent);
      assert.ok(values.additionalArguments.includes('--certificatesresolvers.letsencrypt-staging.acme.email=ops@example.com'));
      assert.equal(values.tlsStore.default.defaultCertificate.secretName, 'kompox-traefik-default-cert');

      const before = await snapshot(k, K3S_KINDS);
      const again = await deployClusterIngress(input, k);
      assert.ok(again.objects.every((o) => o.action === 'unchanged'));
      assert.deepEqual(await snapshot(k, K3S_KINDS), before);

      const un = await undeployClusterIngress(input, k);
      assert.deepEqual(un.deleted.map((o) => o.kind).sort(), ['HelmChartConfig', 'Secret']);
      assert.deepEqual(un.kept.map((o) => o.name), ['kompox-traefik-acme']);
      assert.equal(await k.get({ apiVersion: 'helm.cattle.io/v1', kind: 'HelmChartConfig', name: 'traefik', namespace: 'kube-system' }), undefined);
      assert.ok(await k.get({ apiVersion: 'v1', kind: 'Namespace', name: 'kube-system' }), 'kube-system is never deleted');

      await undeployClusterIngress(input, k, { purge: true });
      assert.deepEqual(await snapshot(k, K3S_KINDS), {});

      // A HelmChartConfig the user wrote is not overwritten.
      await k.apply(
        { apiVersion: 'helm.cattle.io/v1', kind: 'HelmChartConfig', metadata: { name: 'traefik', namespace: 'kube-system' }, spec: { valuesContent: 'logs: {}\n' } },
        { fieldManager: 'admin' },
      );
      const n = writes(fake);
      await assert.rejects(deployClusterIngress(input, k), (e: unknown) => e instanceof KompoxError && e.kind === 'conflict');
      assert.equal(writes(fake), n);
      const kept = await k.get({ apiVersion: 'helm.cattle.io/v1', kind: 'HelmChartConfig', name: 'traefik', namespace: 'kube-system' });
      assert.equal((kept!.spec as { valuesContent: string }).valuesContent, 'logs: {}\n');
    } finally {
      cert.cleanup();
    }
  });
});
