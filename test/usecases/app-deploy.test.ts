// applyAppObjects / releaseOldVolumeBindings against the fake API server:
// creation, idempotency (no write at all on an identical redeploy), change
// reports, pruning (only our objects, never PV/PVC), dry runs, and errors
// mid-apply.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KompoxError } from '../../src/domain/errors.js';
import { withCliAdvice } from '../../src/cli/advice.js';
import { appLabels, appNamespace } from '../../src/domain/names.js';
import type { KubeClient, KubeObject } from '../../src/kube/index.js';
import { applyAppObjects, releaseOldVolumeBindings } from '../../src/usecases/app-deploy.js';
import { INVENTORY_NAME, parseInventory } from '../../src/usecases/plan.js';
import type { FakeKube } from '../support/fake-kube/index.js';
import { testAppContext } from '../support/contexts.js';
import { eventually, startFakeCluster } from '../support/kube.js';
import { logInto } from '../support/events.js';

const ctx = testAppContext('web');
const ns = appNamespace(ctx);
const labels = appLabels(ctx);

function objects(opts: { image?: string; extraConfig?: boolean; pvHash?: string } = {}): KubeObject[] {
  const pv = opts.pvHash ?? 'aaaa';
  const out: KubeObject[] = [
    { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: ns, labels }, spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: opts.image ?? 'nginx:1' }] } } } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: ns, labels }, spec: { selector: { app: 'web' }, ports: [{ name: 'http-80', port: 80 }] } },
    { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: `default-${pv}`, namespace: ns, labels }, spec: { accessModes: ['ReadWriteOnce'], volumeName: `${ns}-default-${pv}`, resources: { requests: { storage: '1Gi' } } } },
    { apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: `${ns}-default-${pv}`, labels }, spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], persistentVolumeReclaimPolicy: 'Retain', hostPath: { path: `/data/${pv}` }, claimRef: { namespace: ns, name: `default-${pv}` } } },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels, annotations: { 'kompox.dev/app': 'svc/prv/cls/web' } } },
  ];
  if (opts.extraConfig) out.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'extra', namespace: ns, labels }, data: { a: '1' } });
  return out;
}

function versions(fake: FakeKube): string {
  return JSON.stringify(fake.store.all().map((e) => [e.resource.plural, e.obj.metadata?.name, e.obj.metadata?.resourceVersion]).sort());
}

describe('applyAppObjects', () => {
  let fake: FakeKube;
  let kube: KubeClient;
  before(async () => {
    ({ fake, kube } = await startFakeCluster());
  });
  after(async () => fake.close());
  beforeEach(async () => {
    await kube.delete({ apiVersion: 'v1', kind: 'Namespace', name: ns });
    for (const pv of await kube.list('v1', 'PersistentVolume')) await kube.delete({ apiVersion: 'v1', kind: 'PersistentVolume', name: pv.metadata.name });
    // deletion is asynchronous: the namespace controller empties the namespace, pv-protection waits for the claims
    await eventually(async () => !(await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: ns })) && (await kube.list('v1', 'PersistentVolume')).length === 0, 'the namespace and volumes to go');
    await fake.settle();
  });

  test('first deploy creates everything in dependency order and records the inventory', async () => {
    const lines: string[] = [];
    const r = await applyAppObjects(kube, ns, labels, objects(), {}, logInto(lines));
    assert.deepEqual(r.changes.map((c) => `${c.action} ${c.ref.kind}`), [
      'create Namespace',
      'create PersistentVolumeClaim',
      'create PersistentVolume',
      'create Deployment',
      'create Service',
    ]);
    assert.equal(lines[0], `created Namespace/${ns}`);
    const patches = fake.requests.filter((q) => q.method === 'PATCH').map((q) => q.path.split('/').slice(-2).join('/'));
    assert.deepEqual(patches.slice(0, 3), [`namespaces/${ns}`, `configmaps/${INVENTORY_NAME}`, `persistentvolumeclaims/default-aaaa`]);
    const inv = parseInventory(await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', name: INVENTORY_NAME, namespace: ns }));
    assert.deepEqual(inv.map((r) => r.kind), ['Namespace', 'PersistentVolumeClaim', 'PersistentVolume', 'Deployment', 'Service']);
    for (const q of fake.requests.filter((q) => q.method === 'PATCH')) {
      assert.equal(q.query.fieldManager, 'kompox');
      assert.equal(q.contentType, 'application/apply-patch+yaml');
    }
  });

  test('an identical redeploy writes nothing (no resourceVersion changes)', async () => {
    await applyAppObjects(kube, ns, labels, objects());
    // the claim was applied first, so the volume's claimRef already carried its uid: the binder only confirmed it
    await fake.settle();
    const before = versions(fake);
    const r = await applyAppObjects(kube, ns, labels, objects());
    assert.ok(r.changes.every((c) => c.action === 'unchanged'), JSON.stringify(r.changes));
    assert.equal(versions(fake), before);
  });

  test('a change reports the changed top-level fields; disk annotations written by merge patch survive', async () => {
    await applyAppObjects(kube, ns, labels, objects());
    await kube.mergePatch({ apiVersion: 'v1', kind: 'Namespace', name: ns }, { metadata: { annotations: { 'kompox.dev/disk-current-id': 'disk-123' } } });
    const r = await applyAppObjects(kube, ns, labels, objects({ image: 'nginx:2' }));
    const changed = r.changes.filter((c) => c.action !== 'unchanged');
    assert.deepEqual(changed.map((c) => `${c.action} ${c.ref.kind} ${c.fields.join(',')}`), ['change Deployment spec']);
    const nsObj = await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: ns });
    assert.equal(nsObj?.metadata.annotations?.['kompox.dev/disk-current-id'], 'disk-123');
    assert.equal(nsObj?.metadata.annotations?.['kompox.dev/app'], 'svc/prv/cls/web');
  });

  test('dry run reports what would change and stores nothing', async () => {
    const first = await applyAppObjects(kube, ns, labels, objects(), { dryRun: true });
    assert.ok(first.changes.every((c) => c.action === 'create'));
    assert.equal(await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: ns }), undefined);
    await applyAppObjects(kube, ns, labels, objects({ extraConfig: true }));
    const before = versions(fake);
    const dry = await applyAppObjects(kube, ns, labels, objects({ image: 'nginx:3' }), { dryRun: true });
    const summary = dry.changes.filter((c) => c.action !== 'unchanged').map((c) => `${c.action} ${c.ref.kind}/${c.ref.name} ${c.fields.join(',')}`);
    assert.deepEqual(summary, ['change Deployment/web spec', 'prune ConfigMap/extra ']);
    assert.equal(versions(fake), before);
  });

  test('prune deletes what is no longer wanted, keeps PV/PVC and objects Kompox did not create', async () => {
    await applyAppObjects(kube, ns, labels, objects({ extraConfig: true }));
    // someone else's object that happens to be listed (e.g. inventory edited by hand): not ours, not touched
    await kube.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'foreign', namespace: ns }, data: {} }, { fieldManager: 'kubectl' });
    const inv = await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', name: INVENTORY_NAME, namespace: ns });
    const refs = parseInventory(inv);
    refs.push({ apiVersion: 'v1', kind: 'ConfigMap', name: 'foreign', namespace: ns });
    await kube.mergePatch({ apiVersion: 'v1', kind: 'ConfigMap', name: INVENTORY_NAME, namespace: ns }, { data: { objects: JSON.stringify(refs) } });

    const r = await applyAppObjects(kube, ns, labels, objects({ pvHash: 'bbbb' }));
    assert.deepEqual(r.changes.filter((c) => c.action === 'prune').map((c) => c.ref.name), ['extra']);
    assert.deepEqual(r.skipped.map((s) => s.name), ['foreign']);
    assert.equal(await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', name: 'extra', namespace: ns }), undefined);
    assert.ok(await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', name: 'foreign', namespace: ns }));
    // the old PV/PVC pair stays (released explicitly after the new pod runs) and stays in the inventory
    assert.ok(await kube.get({ apiVersion: 'v1', kind: 'PersistentVolume', name: `${ns}-default-aaaa` }));
    assert.ok(await kube.get({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'default-aaaa', namespace: ns }));
    const inv2 = parseInventory(await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', name: INVENTORY_NAME, namespace: ns }));
    assert.ok(inv2.some((x) => x.name === 'default-aaaa'));
    assert.ok(inv2.some((x) => x.name === 'default-bbbb'));

    // releaseOldVolumeBindings removes the old pair only; a PVC mounted by a pod is kept
    fake.setPod({ metadata: { name: 'web-1', namespace: ns }, spec: { containers: [{ name: 'web', image: 'x' }], volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'default-bbbb' } }] }, status: { phase: 'Running' } });
    const released = await releaseOldVolumeBindings(kube, ctx, []);
    assert.deepEqual(released.map((x) => `${x.kind}/${x.name}`), ['PersistentVolumeClaim/default-aaaa', `PersistentVolume/${ns}-default-aaaa`]);
    assert.ok(await kube.get({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'default-bbbb', namespace: ns }));
    assert.ok(await kube.get({ apiVersion: 'v1', kind: 'PersistentVolume', name: `${ns}-default-bbbb` }));
  });

  test('a deploy interrupted mid-apply converges when run again (prune included)', async () => {
    await applyAppObjects(kube, ns, labels, objects({ extraConfig: true }));
    fake.forbid({ verb: 'patch', resource: 'deployments', namespace: ns });
    try {
      await assert.rejects(applyAppObjects(kube, ns, labels, objects({ image: 'nginx:9' })));
    } finally {
      fake.allowAll();
    }
    // the interrupted run left the old object and the union inventory; the next run finishes
    assert.ok(await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', name: 'extra', namespace: ns }));
    const r = await applyAppObjects(kube, ns, labels, objects({ image: 'nginx:9' }));
    assert.deepEqual(r.changes.filter((c) => c.action !== 'unchanged').map((c) => `${c.action} ${c.ref.kind}/${c.ref.name}`), ['change Deployment/web', 'prune ConfigMap/extra']);
    const inv = parseInventory(await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', name: INVENTORY_NAME, namespace: ns }));
    assert.ok(!inv.some((x) => x.name === 'extra'));
    const before = versions(fake);
    await applyAppObjects(kube, ns, labels, objects({ image: 'nginx:9' }));
    assert.equal(versions(fake), before);
  });

  test('objects applied by an interrupted deploy are pruned by the next one even when the input changed back', async () => {
    await applyAppObjects(kube, ns, labels, objects());
    fake.forbid({ verb: 'patch', resource: 'deployments', namespace: ns });
    try {
      // ConfigMap "extra" is applied before the Deployment fails
      await assert.rejects(applyAppObjects(kube, ns, labels, objects({ extraConfig: true, image: 'nginx:5' })));
    } finally {
      fake.allowAll();
    }
    assert.ok(await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', name: 'extra', namespace: ns }));
    const r = await applyAppObjects(kube, ns, labels, objects());
    assert.deepEqual(r.changes.filter((c) => c.action === 'prune').map((c) => c.ref.name), ['extra']);
    assert.equal(await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', name: 'extra', namespace: ns }), undefined);
  });

  test('a failure mid-apply says what was applied and that re-running converges', async () => {
    fake.forbid({ verb: 'patch', resource: 'services', namespace: ns });
    await assert.rejects(applyAppObjects(kube, ns, labels, objects()), (e: unknown) => {
      assert.ok(e instanceof KompoxError);
      assert.equal(e.kind, 'auth');
      assert.match(e.message, /cannot patch resource "services"/);
      assert.match(e.hint ?? '', /Stopped at Service\/.*\/web; applied before the failure: Namespace\/.*, Deployment\/.*web\. Deploying again after fixing the cause converges\.$/);
      // front ends render their own advice from the code and details (the CLI names the command)
      assert.equal(e.code, 'kube.forbidden');
      assert.match(String(e.details?.stoppedAt), /^Service\/.*\/web$/);
      assert.ok((e.details?.applied as string[]).some((r) => /^Deployment\/.*\/web$/.test(r)));
      assert.equal(withCliAdvice(e).hint?.endsWith('Re-running `kompoxops app deploy` after fixing the cause converges.'), true);
      return true;
    });
  });
});
