// A cluster without a controller manager (like the acceptance cluster): the
// PVC/PV protection finalizers keep deleted volume bindings Terminating.
// destroy waits for them, bounded (or not at all with wait: false), and says
// what is left; deploy waits for its own app's bindings being deleted,
// bounded, and never applies onto one.
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

test('destroy reports PVC/PV held by protection finalizers (not waiting, or after its bounded wait); deploy waits for them, bounded, and applies once they are gone', async () => {
  await applyAppObjects(kube, ns, labels, objects());
  const pvc = await kube.get({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'default-aaaa', namespace: ns });
  assert.deepEqual(pvc!.metadata.finalizers, ['kubernetes.io/pvc-protection']);

  const lines: string[] = [];
  const r = await destroyApp(ctx, kube, { wait: false }, logInto(lines));
  assert.equal(r.wait, undefined, 'not waited');
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

  // a second destroy does not delete again; it waits, bounded, with what holds them as progress, and still reports them
  const progress: string[] = [];
  const again = await destroyApp(ctx, kube, { timeoutMs: 300, pollMs: 50 }, { events: (e) => void (e.type === 'status' && progress.push(e.message)) });
  assert.equal(again.terminating.length, 2);
  assert.equal(again.wait?.done, false);
  assert.deepEqual(again.wait?.remaining.map((x) => x.replace(/ \(.*/, '')).sort(), [`PersistentVolume ${pvName}`, `PersistentVolumeClaim ${ns}/default-aaaa`]);
  assert.match(progress[0] ?? '', /PersistentVolumeClaim \S+ \(Terminating; finalizers: kubernetes.io\/pvc-protection\)/);

  // deploy: waits for its own bindings, bounded; then one clear error, nothing written
  const before = JSON.stringify(fake.store.all().map((e) => [e.obj.metadata?.name, e.obj.metadata?.resourceVersion]));
  await assert.rejects(applyAppObjects(kube, ns, labels, objects(), { terminatingTimeoutMs: 300, pollMs: 50 }), (e: unknown) => {
    assert.ok(e instanceof KompoxError);
    assert.equal(e.kind, 'conflict');
    assert.equal(e.code, 'kube.terminating');
    assert.match(e.message, /^still being deleted after waiting 300ms: PersistentVolumeClaim \S+\/default-aaaa \(Terminating; finalizers: kubernetes.io\/pvc-protection\), PersistentVolume \S+-default-aaaa \(Terminating; finalizers: kubernetes.io\/pv-protection\); nothing was changed$/);
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
