// Behaviours of the fake API server that the contract suite cannot check on
// every real cluster: wire shapes and the no-controller namespace deletion.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
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

const NO_OPENSSL = spawnSync('openssl', ['version']).status === 0 ? false : 'the openssl CLI is not installed';

test('TLS: exec over wss works; a kubeconfig with the wrong CA gives a clear certificate error', { skip: NO_OPENSSL }, async () => {
  const fake = await startFakeKube({ tls: true });
  const other = await startFakeKube({ tls: true });
  const dir = mkdtempSync(join(tmpdir(), 'fake-tls-'));
  try {
    const kube = await connectKubeconfig({ path: fake.kubeconfigPath });
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ns' } });
    fake.setPod({ metadata: { name: 'p', namespace: 'ns' }, spec: { containers: [{ name: 'c', image: 'x' }] }, status: { phase: 'Running' } });
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    assert.equal(await kube.exec('ns', 'p', 'c', ['echo', 'secure'], { stdout: out, stderr: new PassThrough() }), 0);
    assert.equal(text, 'secure\n');
    // the other server's CA does not vouch for this server
    const wrong = other.kubeconfig.replace(other.url, fake.url);
    writeFileSync(join(dir, 'kc'), wrong);
    await assert.rejects(connectKubeconfig({ path: join(dir, 'kc') }), (e: unknown) => {
      assert.ok(e instanceof KompoxError);
      assert.match(e.message, new RegExp(`cannot verify the TLS certificate of the Kubernetes API server at ${fake.url.replace(/[.]/g, '\\.')}`));
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await fake.close();
    await other.close();
  }
});

const NO_KUBECTL = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0 ? false : 'kubectl is not installed';

test('kubectl (a real client) works against the TLS fake: create, apply --server-side, get', { skip: NO_OPENSSL || NO_KUBECTL }, async () => {
  const fake = await startFakeKube({ tls: true });
  const run = (args: string[], stdin?: string) =>
    new Promise<{ code: number; out: string }>((resolve) => {
      const child = execFile('kubectl', ['--kubeconfig', fake.kubeconfigPath, ...args], { timeout: 30_000 }, (e, so, se) => resolve({ code: e ? 1 : 0, out: so + se }));
      child.stdin?.end(stdin ?? '');
    });
  try {
    assert.equal((await run(['create', 'namespace', 'x'])).code, 0);
    const applied = await run(['-n', 'x', 'apply', '--server-side', '--validate=false', '-f', '-'] /* the fake serves no OpenAPI document */, 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: "1"}\n');
    assert.equal(applied.code, 0, applied.out);
    const got = await run(['-n', 'x', 'get', 'configmap', 'c', '-o', 'jsonpath={.data.a}']);
    assert.equal(got.out, '1');
  } finally {
    await fake.close();
  }
});
