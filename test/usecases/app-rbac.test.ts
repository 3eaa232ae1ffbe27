// An app user whose RBAC stops at the app namespace (the namespace itself was
// created by an administrator): deploy needs cluster scope for the
// PersistentVolumes. It must fail with every missing permission named and
// nothing half-applied; the access review itself is asked over the real
// SelfSubjectAccessReview API.
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { KompoxError } from '../../src/domain/errors.js';
import type { KubeClient } from '../../src/kube/index.js';
import { applyAppObjects } from '../../src/usecases/app-deploy.js';
import type { FakeKube } from '../support/fake-kube/index.js';
import { testAppContext } from '../support/contexts.js';
import { eventually, startFakeCluster } from '../support/kube.js';
import { minimalApp } from '../support/app-objects.js';

const ctx = testAppContext('web');
const { ns, labels, pvName, objects } = minimalApp(ctx);

let fake: FakeKube;
let kube: KubeClient;
before(async () => {
  ({ fake, kube } = await startFakeCluster());
});
after(async () => fake.close());
beforeEach(async () => {
  fake.allowAll();
  await kube.delete({ apiVersion: 'v1', kind: 'Namespace', name: ns });
  await kube.delete({ apiVersion: 'v1', kind: 'PersistentVolume', name: pvName });
  // namespace deletion is asynchronous (the namespace controller empties it first)
  await eventually(async () => !(await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: ns })) && !(await kube.get({ apiVersion: 'v1', kind: 'PersistentVolume', name: pvName })), 'the namespace and volume to go');
  await fake.settle();
  // the administrator made the namespace
  await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
});

function snapshot(): string {
  return JSON.stringify(fake.store.all().map((e) => [e.resource.plural, e.obj.metadata?.name, e.obj.metadata?.resourceVersion]).sort());
}

test('accessReview asks the server (SelfSubjectAccessReview) with RBAC attributes', async () => {
  fake.forbid({ verb: 'create', resource: 'persistentvolumes' });
  const pv = { apiVersion: 'v1', kind: 'PersistentVolume', name: pvName };
  assert.deepEqual(await kube.accessReview!({ verb: 'create', ref: pv }), { allowed: false, resource: 'persistentvolumes' });
  assert.deepEqual(await kube.accessReview!({ verb: 'patch', ref: pv }), { allowed: true, resource: 'persistentvolumes' });
  assert.deepEqual(await kube.accessReview!({ verb: 'patch', ref: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: ns } }), {
    allowed: true,
    resource: 'deployments.apps',
    namespace: ns,
  });
  const q = fake.requests.filter((r) => r.path === '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews');
  assert.equal(q.length, 3);
  assert.ok(q.every((r) => r.method === 'POST'));
});

test('a namespace-scoped identity: deploy names every missing cluster-scoped permission and changes nothing', async () => {
  for (const verb of ['create', 'patch', 'get', 'list']) fake.forbid({ verb, resource: 'persistentvolumes' });
  fake.forbid({ verb: 'list', resource: 'nodes' });
  const before = snapshot();
  await assert.rejects(applyAppObjects(kube, ns, labels, objects()), (e: unknown) => {
    assert.ok(e instanceof KompoxError);
    assert.equal(e.kind, 'auth');
    assert.equal(
      e.message,
      `the identity in the kubeconfig may not create persistentvolumes at cluster scope (for PersistentVolume/${pvName}); patch persistentvolumes at cluster scope (for PersistentVolume/${pvName}); nothing was changed`,
    );
    assert.match(e.hint ?? '', /ClusterRole\/ClusterRoleBinding/);
    return true;
  });
  assert.equal(snapshot(), before);
});

test('when access reviews are not allowed either, the apply itself reports the missing permission', async () => {
  fake.forbid({ verb: 'create', resource: 'selfsubjectaccessreviews' });
  fake.forbid({ verb: 'patch', resource: 'persistentvolumes' });
  await assert.rejects(applyAppObjects(kube, ns, labels, objects()), (e: unknown) => {
    assert.ok(e instanceof KompoxError);
    assert.equal(e.kind, 'auth');
    assert.match(e.message, /permission denied during apply of PersistentVolume .*cannot patch resource "persistentvolumes" in API group "" at the cluster scope/);
    assert.match(e.hint ?? '', /needs permission to patch persistentvolumes at cluster scope/);
    return true;
  });
});

test('with the permissions, the same deploy goes through', async () => {
  const r = await applyAppObjects(kube, ns, labels, objects());
  assert.ok(r.changes.some((c) => c.ref.kind === 'PersistentVolume' && c.action === 'create'));
});
