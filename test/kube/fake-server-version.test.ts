// The fake API server's `version` option behaves like that Kubernetes
// for native sidecars (restartPolicy on init containers): unknown before 1.28
// (server-side apply 500, strict create 400, otherwise dropped), dropped on 1.28
// unless the SidecarContainers gate is on, kept from 1.29. Raw HTTP, so what is
// checked is the server, not Kompox's client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeKube, type FakeKubeOptions } from '../support/fake-kube/index.js';

const deployment = (name: string) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace: 'n1' },
  spec: {
    selector: { matchLabels: { a: 'b' } },
    template: { metadata: { labels: { a: 'b' } }, spec: { initContainers: [{ name: 'db', image: 'postgres:16', restartPolicy: 'Always' }], containers: [{ name: 'app', image: 'nginx:1.27' }] } },
  },
});

async function withFake(opts: FakeKubeOptions, fn: (call: (method: string, path: string, body?: unknown, contentType?: string) => Promise<{ status: number; body: Record<string, unknown> }>) => Promise<void>) {
  const fake = await startFakeKube(opts);
  const call = async (method: string, path: string, body?: unknown, contentType = 'application/json') => {
    const r = await fetch(`${fake.url}${path}`, { method, headers: { authorization: 'Bearer fake-token', 'content-type': contentType }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  try {
    await call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n1' } });
    await fn(call);
  } finally {
    await fake.close();
  }
}

const policy = (o: Record<string, unknown>) => ((o.spec as { template: { spec: { initContainers: { restartPolicy?: string }[] } } }).template.spec.initContainers[0]!.restartPolicy ?? null);
const base = '/apis/apps/v1/namespaces/n1/deployments';

test('1.27: /version says so; server-side apply fails with 500 "field not declared in schema", strict create with 400, a lax create drops the field', async () => {
  await withFake({ version: 'v1.27.16+k3s1' }, async (call) => {
    const v = await call('GET', '/version');
    assert.deepEqual([v.body.gitVersion, v.body.major, v.body.minor], ['v1.27.16+k3s1', '1', '27']);
    const ssa = await call('PATCH', `${base}/a?fieldManager=t&force=true`, deployment('a'), 'application/apply-patch+yaml');
    assert.equal(ssa.status, 500);
    assert.equal(ssa.body.message, 'failed to create typed patch object (n1/a; apps/v1, Kind=Deployment): .spec.template.spec.initContainers[name="db"].restartPolicy: field not declared in schema');
    const strict = await call('POST', `${base}?fieldValidation=Strict`, deployment('b'));
    assert.equal(strict.status, 400);
    assert.match(String(strict.body.message), /^strict decoding error: unknown field "spec\.template\.spec\.initContainers\[0\]\.restartPolicy"/);
    const lax = await call('POST', base, deployment('c'));
    assert.equal(lax.status, 201);
    assert.equal(policy(lax.body), null);
    assert.equal((await call('GET', `${base}/a`)).status, 404, 'the failed apply stored nothing');
  });
});

test('1.28: the field is dropped unless the SidecarContainers feature gate is on; 1.29 keeps it', async () => {
  await withFake({ version: 'v1.28.15' }, async (call) => {
    const r = await call('PATCH', `${base}/a?fieldManager=t&force=true`, deployment('a'), 'application/apply-patch+yaml');
    assert.equal(r.status, 201);
    assert.equal(policy(r.body), null);
  });
  await withFake({ version: 'v1.28.15', featureGates: { SidecarContainers: true } }, async (call) => {
    assert.equal(policy((await call('PATCH', `${base}/a?fieldManager=t&force=true`, deployment('a'), 'application/apply-patch+yaml')).body), 'Always');
  });
  await withFake({ version: 'v1.29.0' }, async (call) => {
    assert.equal(policy((await call('POST', `${base}?fieldValidation=Strict`, deployment('a'))).body), 'Always');
  });
});
