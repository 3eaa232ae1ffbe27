// destroy / status / tunnel / kubeconfig export as use cases against the fake
// API server (the CLI test covers the shells).
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appLabels, appNamespace, appSelector } from '../../src/domain/names.js';
import type { KubeClient, KubeObject } from '../../src/kube/index.js';
import { applyAppObjects } from '../../src/usecases/app-deploy.js';
import { destroyApp, diskRecords } from '../../src/usecases/app-destroy.js';
import { appStatus, ingressUrls } from '../../src/usecases/app-status.js';
import { openTunnel, parsePortMapping } from '../../src/usecases/app-tunnel.js';
import { buildKubeconfig, mergeKubeconfig } from '../../src/usecases/cluster-kubeconfig.js';
import { KompoxError } from '../../src/domain/errors.js';
import type { FakeKube } from '../support/fake-kube/index.js';
import { testAppContext } from '../support/contexts.js';
import { startFakeCluster } from '../support/kube.js';
import { logInto } from '../support/events.js';

const ctx = testAppContext('day2');
const ns = appNamespace(ctx);
const labels = appLabels(ctx);
const sel = appSelector(ctx);

function objects(): KubeObject[] {
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels } },
    { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'day2', namespace: ns, labels }, spec: { replicas: 1, selector: { matchLabels: sel }, template: { metadata: { labels: { ...labels, ...sel } }, spec: { containers: [{ name: 'web', image: 'nginx' }] } } } },
    { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'day2-80', namespace: ns, labels }, spec: { rules: [{ host: 'day2-80.example.com' }, { host: 'www.example.com' }], tls: [{ hosts: ['www.example.com'] }] } },
    { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'default-1', namespace: ns, labels }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, volumeName: `${ns}-default-1` } },
    { apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: `${ns}-default-1`, labels }, spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], persistentVolumeReclaimPolicy: 'Retain', csi: { driver: 'disk.csi.azure.com', volumeHandle: '/subscriptions/x/disks/d1' } } },
  ];
}

describe('day-2 use cases', () => {
  let fake: FakeKube;
  let kube: KubeClient;
  // A cluster of its own for each test: none builds on what another applied.
  // No controllers: the test puts the pods (and their states) in place itself.
  beforeEach(async () => {
    ({ fake, kube } = await startFakeCluster({ controllers: false }));
  });
  afterEach(async () => fake.close());
  /** The app applied, with disk d1 recorded as current (what a deploy leaves). */
  async function applied(): Promise<void> {
    await applyAppObjects(kube, ns, labels, objects());
    await kube.mergePatch({ apiVersion: 'v1', kind: 'Namespace', name: ns }, { metadata: { annotations: { 'kompox.dev/disk-current-id': 'd1' } } });
  }

  test('status of an app that is not deployed', async () => {
    const st = await appStatus(ctx, kube);
    assert.equal(st.exists, false);
    assert.deepEqual(st.pods, []);
  });

  test('status: deployment verdict, containers, URLs, disk, warnings', async () => {
    await applied();
    fake.setPod({
      metadata: { name: 'day2-1', namespace: ns, labels: { ...labels, ...sel } },
      spec: { containers: [{ name: 'web', image: 'nginx' }] },
      status: { phase: 'Running', containerStatuses: [{ name: 'web', ready: false, restartCount: 3, state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { exitCode: 137, reason: 'OOMKilled' } } }] },
    });
    fake.addEvent(ns, { involvedObject: { kind: 'Pod', name: 'day2-1' }, reason: 'BackOff', message: 'Back-off restarting failed container' });
    fake.addEvent(ns, { involvedObject: { kind: 'Pod', name: 'day2-1' }, reason: 'Pulled', message: 'ok', type: 'Normal' });
    const st = await appStatus(ctx, kube);
    assert.equal(st.exists, true);
    assert.equal(st.disks.current, 'd1');
    assert.deepEqual(st.urls, ['http://day2-80.example.com/', 'https://www.example.com/']);
    assert.equal(st.deployments[0]!.state, 'failed');
    assert.deepEqual(st.pods[0]!.containers[0], { name: 'web', image: 'nginx', ready: false, restarts: 3, state: 'waiting: CrashLoopBackOff', lastState: { reason: 'OOMKilled', exitCode: 137, finishedAt: undefined } });
    assert.deepEqual(st.events.map((e) => e.reason), ['BackOff']);
  });

  test('tunnel: forwards to the app pod and finds the new pod after a restart', async () => {
    await applied();
    fake.setPod({ metadata: { name: 'day2-1', namespace: ns, labels: { ...labels, ...sel } }, spec: { containers: [{ name: 'web', image: 'nginx' }] }, status: { phase: 'Running' } });
    const target = net.createServer((s) => s.on('data', (d) => s.write(`pong:${d}`)));
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    const port = (target.address() as net.AddressInfo).port;
    fake.setPortTarget(ns, 'day2-1', 5432, port);
    const t = await openTunnel(ctx, kube, [parsePortMapping('0:5432')]);
    const ask = () =>
      new Promise<string>((resolve, reject) => {
        const c = net.connect(t.ports[0]!.local, '127.0.0.1', () => c.write('x'));
        c.on('data', (d) => {
          resolve(d.toString());
          c.destroy();
        });
        c.on('error', reject);
        c.on('close', () => resolve('closed'));
      });
    try {
      assert.equal(await ask(), 'pong:x');
      // the pod is replaced: the old one disappears, a new one answers
      await kube.delete({ apiVersion: 'v1', kind: 'Pod', name: 'day2-1', namespace: ns });
      fake.setPod({ metadata: { name: 'day2-2', namespace: ns, labels: { ...labels, ...sel } }, spec: { containers: [{ name: 'web', image: 'nginx' }] }, status: { phase: 'Running' } });
      fake.setPortTarget(ns, 'day2-2', 5432, port);
      assert.equal(await ask(), 'pong:x');
    } finally {
      await t.close();
      target.close();
    }
  });

  test('destroy keeps foreign objects and the disks, reports the disk ids, deletes PVC then PV', async () => {
    await applied();
    await kube.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'not-ours', namespace: ns }, data: {} }, { fieldManager: 'kubectl' });
    const lines: string[] = [];
    const r = await destroyApp(ctx, kube, {}, logInto(lines));
    assert.equal(r.existed, true);
    const kinds = r.deleted.map((d) => d.kind);
    assert.ok(kinds.indexOf('PersistentVolumeClaim') < kinds.indexOf('PersistentVolume'));
    assert.ok(kinds.includes('Deployment') && kinds.includes('Ingress'));
    assert.deepEqual(r.disks, [
      { source: 'kompox.dev/disk-current-id', diskId: 'd1' },
      { source: `PersistentVolume ${ns}-default-1`, diskId: '/subscriptions/x/disks/d1' },
    ]);
    assert.ok(await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', name: 'not-ours', namespace: ns }));
    assert.ok(await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: ns }));
    assert.ok(lines.some((l) => /deleted PersistentVolume\/.*Retain: the disk is kept/.test(l)));
    const again = await destroyApp(ctx, kube, { deleteNamespace: true });
    assert.equal(again.namespaceDeleted, true);
    assert.equal(await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: ns }), undefined);
    const none = await destroyApp(ctx, kube, {});
    assert.equal(none.existed, false);
  });

  test('destroy by an identity that may not list PersistentVolumes still removes the namespaced objects', async () => {
    await applyAppObjects(kube, ns, labels, objects());
    fake.forbid({ verb: 'list', resource: 'persistentvolumes' });
    try {
      const lines: string[] = [];
      const r = await destroyApp(ctx, kube, {}, logInto(lines));
      assert.ok(r.deleted.some((d) => d.kind === 'Deployment'));
      assert.ok(lines.some((l) => /cannot list PersistentVolumes .*only those recorded in the inventory are removed/.test(l)));
      // the inventory still knows the PV, so it goes too
      assert.equal(await kube.get({ apiVersion: 'v1', kind: 'PersistentVolume', name: `${ns}-default-1` }), undefined);
    } finally {
      fake.allowAll();
    }
    await destroyApp(ctx, kube, { deleteNamespace: true });
  });

  test('small parsers', () => {
    assert.deepEqual(parsePortMapping('8080:80'), { local: 8080, remote: 80 });
    assert.deepEqual(parsePortMapping('5432'), { local: 5432, remote: 5432 });
    assert.throws(() => parsePortMapping('a:b'), KompoxError);
    assert.throws(() => parsePortMapping('70000'), KompoxError);
    assert.deepEqual(ingressUrls([]), []);
    assert.deepEqual(diskRecords(undefined, []), []);
  });
});

describe('kubeconfig export', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kompox-kc-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('one cluster/user/context, relative cert paths made absolute, exec user kept, namespace set', async () => {
    writeFileSync(
      join(dir, 'kc'),
      `apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: {server: 'https://10.0.0.1:6443', certificate-authority: certs/ca.crt}
- name: other
  cluster: {server: 'https://10.9.9.9'}
users:
- name: aad
  user:
    exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: kubelogin, args: [get-token]}
contexts:
- name: prod-ctx
  context: {cluster: prod, user: aad}
- name: other
  context: {cluster: other}
current-context: other
`,
    );
    const c = { ...ctx.cluster, auth: { type: 'kubectl', kubeconfig: 'kc', context: 'prod-ctx' } };
    const doc = await buildKubeconfig({ service: ctx.service, provider: ctx.provider, cluster: c }, { path: join(dir, 'kc'), context: 'prod-ctx' }, { namespace: 'k4x-x' });
    assert.deepEqual(doc, {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'cls', cluster: { server: 'https://10.0.0.1:6443', 'certificate-authority': join(dir, 'certs/ca.crt') } }],
      users: [{ name: 'cls', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: 'kubelogin', args: ['get-token'] } } }],
      contexts: [{ name: 'cls', context: { cluster: 'cls', user: 'cls', namespace: 'k4x-x' } }],
      'current-context': 'cls',
    });
  });

  test('merge replaces same-named entries and keeps the others', () => {
    const base = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'a', cluster: { server: 'https://a' } }, { name: 'cls', cluster: { server: 'https://old' } }],
      users: [],
      contexts: [{ name: 'a', context: { cluster: 'a' } }],
      'current-context': 'a',
      preferences: {},
    };
    const add = { clusters: [{ name: 'cls', cluster: { server: 'https://new' } }], users: [{ name: 'cls', user: { token: 't' } }], contexts: [{ name: 'cls', context: { cluster: 'cls', user: 'cls' } }], 'current-context': 'cls' };
    const m = mergeKubeconfig(base, add);
    assert.deepEqual((m.clusters as { name: string; cluster: { server: string } }[]).map((c) => `${c.name}=${c.cluster.server}`), ['a=https://a', 'cls=https://new']);
    assert.equal(m['current-context'], 'cls');
    assert.deepEqual(m.preferences, {});
  });
});
