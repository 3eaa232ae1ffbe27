// A cluster without a controller manager (like the acceptance cluster): the
// PVC/PV protection finalizers keep deleted volume bindings Terminating.
// destroy must not wait for them and must say so; deploy must not apply onto
// a binding that is being deleted.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KompoxError } from '../../src/domain/errors.js';
import type { KubeClient } from '../../src/kube/index.js';
import { applyAppObjects } from '../../src/usecases/app-deploy.js';
import { destroyApp } from '../../src/usecases/app-destroy.js';
import type { FakeKube } from '../support/fake-kube/index.js';
import { testAppContext } from '../support/contexts.js';
import { startFakeCluster } from '../support/kube.js';
import { minimalApp } from '../support/app-objects.js';
import { logInto } from '../support/events.js';

const ctx = testAppContext('web');
const { ns, labels, pvName, objects } = minimalApp(ctx);

let fake: FakeKube;
let kube: KubeClient;
before(async () => {
  // the admission plugin adds the protection finalizers; no controller removes them
  ({ fake, kube } = await startFakeCluster({ controllers: false, storageProtection: true }));
});
after(async () => fake.close());

test('destroy reports PVC/PV held by protection finalizers instead of waiting; deploy refuses to reuse them until they are gone', async () => {
  await applyAppObjects(kube, ns, labels, objects());
  const pvc = await kube.get({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'default-aaaa', namespace: ns });
  assert.deepEqual(pvc!.metadata.finalizers, ['kubernetes.io/pvc-protection']);

  const lines: string[] = [];
  const r = await destroyApp(ctx, kube, {}, logInto(lines));
  // It returned while both are still there, Terminating: it did not wait for the finalizers (nothing removes them here).
  for (const ref of [{ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'default-aaaa', namespace: ns }, { apiVersion: 'v1', kind: 'PersistentVolume', name: pvName }]) {
    const o = await kube.get(ref);
    assert.ok(o?.metadata.deletionTimestamp, `${ref.kind} is still there, Terminating, when destroy returns`);
  }
  assert.deepEqual(
    r.terminating.map((t) => `${t.ref.kind} ${t.finalizers.join(',')}`).sort(),
    ['PersistentVolume kubernetes.io/pv-protection', 'PersistentVolumeClaim kubernetes.io/pvc-protection'],
  );
  assert.ok(lines.some((l) => /PersistentVolumeClaim\/.*default-aaaa is Terminating \(finalizers: kubernetes.io\/pvc-protection\)/.test(l)), lines.join('\n'));
  assert.equal(await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', name: 'conf', namespace: ns }), undefined);

  // a second destroy does not delete again and still reports them
  const again = await destroyApp(ctx, kube);
  assert.equal(again.terminating.length, 2);

  // deploy: one clear error, nothing written
  const before = JSON.stringify(fake.store.all().map((e) => [e.obj.metadata?.name, e.obj.metadata?.resourceVersion]));
  await assert.rejects(applyAppObjects(kube, ns, labels, objects()), (e: unknown) => {
    assert.ok(e instanceof KompoxError);
    assert.equal(e.kind, 'conflict');
    assert.match(e.message, /PersistentVolume\/.*-default-aaaa is still being deleted \(Terminating since .*finalizers: kubernetes.io\/pv-protection\); nothing was changed/);
    assert.match(e.hint ?? '', /controller manager/);
    return true;
  });
  assert.equal(JSON.stringify(fake.store.all().map((e) => [e.obj.metadata?.name, e.obj.metadata?.resourceVersion])), before);

  // what the controller manager would do: drop the finalizers; the deletions complete and deploy works again
  await kube.mergePatch({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'default-aaaa', namespace: ns }, { metadata: { finalizers: null } });
  await kube.mergePatch({ apiVersion: 'v1', kind: 'PersistentVolume', name: pvName }, { metadata: { finalizers: null } });
  assert.equal(await kube.get({ apiVersion: 'v1', kind: 'PersistentVolume', name: pvName }), undefined);
  const r2 = await applyAppObjects(kube, ns, labels, objects());
  assert.ok(r2.changes.some((c) => c.ref.kind === 'PersistentVolumeClaim' && c.action === 'create'));
});
