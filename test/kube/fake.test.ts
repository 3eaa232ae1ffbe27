// Behaviours of the fake API server that the contract suite cannot check on
// every real cluster: wire shapes and the no-controller namespace deletion.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KompoxError } from '../../src/domain/errors.js';
import { connectKubeconfig } from '../../src/kube/index.js';
import { startFakeKube } from '../support/fake-kube/index.js';

test('wire: list items carry no apiVersion/kind; errors are Status objects; apply needs a field manager', async () => {
  const fake = await startFakeKube();
  try {
    const auth = { authorization: 'Bearer fake-token' };
    const list = await (await fetch(`${fake.url}/api/v1/namespaces`, { headers: auth })).json();
    assert.equal(list.kind, 'NamespaceList');
    const created = await fetch(`${fake.url}/api/v1/namespaces`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a' } }) });
    assert.equal(created.status, 201);
    const list2 = await (await fetch(`${fake.url}/api/v1/namespaces`, { headers: auth })).json();
    assert.equal(list2.items[0].metadata.name, 'a');
    assert.equal(list2.items[0].kind, undefined);
    const dup = await fetch(`${fake.url}/api/v1/namespaces`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a' } }) });
    assert.equal(dup.status, 409);
    assert.deepEqual(await dup.json(), { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'namespaces "a" already exists', reason: 'AlreadyExists', code: 409, details: { name: 'a', kind: 'namespaces' } });
    const noManager = await fetch(`${fake.url}/api/v1/namespaces/a`, { method: 'PATCH', headers: { ...auth, 'content-type': 'application/apply-patch+yaml' }, body: 'apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n' });
    assert.equal(noManager.status, 400);
    const unauth = await fetch(`${fake.url}/api/v1/namespaces`);
    assert.equal(unauth.status, 401);
  } finally {
    await fake.close();
  }
});

test('terminatingNamespaces: a deleted namespace stays Terminating and refuses new content', async () => {
  const fake = await startFakeKube({ terminatingNamespaces: true });
  try {
    const kube = await connectKubeconfig({ path: fake.kubeconfigPath });
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ns' } });
    assert.equal(await kube.delete({ apiVersion: 'v1', kind: 'Namespace', name: 'ns' }), true);
    const ns = await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: 'ns' });
    assert.ok(ns?.metadata.deletionTimestamp);
    assert.equal((ns?.status as { phase: string }).phase, 'Terminating');
    await assert.rejects(kube.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'ns' }, data: {} }), (e: unknown) => {
      assert.ok(e instanceof KompoxError);
      assert.equal(e.kind, 'conflict');
      assert.match(e.message, /because it is being terminated/);
      return true;
    });
    fake.finalizeNamespace('ns');
    assert.equal(await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: 'ns' }), undefined);
  } finally {
    await fake.close();
  }
});
