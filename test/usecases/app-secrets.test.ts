// The stored-secrets use cases called as a server front end would call them
// (issue 12): secret material in as values (no file, no CLI), names out.
// Neither the results nor the events carry a value, a foreign Secret of the
// same name is never overwritten, and bad input names the line, not the text.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KompoxEvent } from '../../src/domain/events.js';
import { appNamespace } from '../../src/domain/names.js';
import { connectKubeconfig, type KubeClient } from '../../src/kube/index.js';
import { deleteEnvOverrides, deletePullSecret, parseEnvOverrides, readStoredSecrets, secretRefs, setEnvOverrides, setPullSecret } from '../../src/usecases/app-secrets.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { makeCtx } from '../convert/helpers.js';

const PASSWORD = 'Srv-pw-3b9f0d';
const TOKEN = 'tok-e51a77';
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('stored secrets use cases (values in, names out)', () => {
  let fake: FakeKube;
  let kube: KubeClient;
  const ctx = makeCtx({ driver: 'k3s' });
  const ns = appNamespace(ctx);
  const events: KompoxEvent[] = [];
  const op = { events: (e: KompoxEvent) => void events.push(e) };
  const noValue = (x: unknown, what: string) => {
    const text = JSON.stringify(x);
    for (const v of [PASSWORD, TOKEN, b64(PASSWORD), b64(TOKEN), b64(`u:${PASSWORD}`)]) assert.ok(!text.includes(v), `${what} carries a value`);
  };

  before(async () => {
    fake = await startFakeKube();
    kube = await connectKubeconfig({ path: fake.kubeconfigPath });
  });
  after(async () => fake?.close());

  test('set, read, delete: the namespace is made when missing; results and events name things only', async () => {
    const pull = await setPullSecret(ctx, kube, { dockerConfigJson: JSON.stringify({ auths: { 'https://index.docker.io/v1/': { username: 'u', password: PASSWORD } } }) }, op);
    assert.deepEqual(pull, { namespace: ns, secret: 'kompox-pull', changed: true, registries: ['https://index.docker.io/v1/'] });
    const values = await parseEnvOverrides(`DB_PASSWORD="${PASSWORD}"\nexport API_TOKEN=${TOKEN}\n`, 'app field env');
    const env = await setEnvOverrides(ctx, kube, { service: 'web', values, services: ['web', 'db'] }, op);
    assert.deepEqual(env, { namespace: ns, secret: 'kompox-env-web', changed: true, service: 'web', keys: ['API_TOKEN', 'DB_PASSWORD'] });
    const stored = await readStoredSecrets(ctx, kube);
    assert.deepEqual({ ...stored, revision: undefined }, { pull: { secret: 'kompox-pull', registries: ['https://index.docker.io/v1/'] }, env: [{ service: 'web', secret: 'kompox-env-web', keys: ['API_TOKEN', 'DB_PASSWORD'] }], revision: undefined });
    assert.match(stored.revision!, /^[0-9a-f]{12}$/);
    assert.deepEqual(secretRefs(stored), { pull: 'kompox-pull', env: { web: { secret: 'kompox-env-web', keys: ['API_TOKEN', 'DB_PASSWORD'] } }, revision: stored.revision });
    // the same values again change nothing, and the revision stays (an identical redeploy restarts nothing)
    assert.equal((await setEnvOverrides(ctx, kube, { service: 'web', values, services: ['web', 'db'] }, op)).changed, false);
    assert.equal((await readStoredSecrets(ctx, kube)).revision, stored.revision);
    // the values are in the cluster, where the kubelet reads them
    const secret = fake.store.get(fake.resource('v1', 'Secret')!, ns, 'kompox-env-web') as { data: Record<string, string> };
    assert.equal(Buffer.from(secret.data.DB_PASSWORD!, 'base64').toString(), PASSWORD);
    // set replaces the whole set: a variable left out is no longer overridden (server-side apply drops the field)
    assert.deepEqual((await setEnvOverrides(ctx, kube, { service: 'web', values: { API_TOKEN: TOKEN } }, op)).keys, ['API_TOKEN']);
    assert.deepEqual(Object.keys((fake.store.get(fake.resource('v1', 'Secret')!, ns, 'kompox-env-web') as { data: Record<string, string> }).data), ['API_TOKEN']);
    assert.deepEqual((await readStoredSecrets(ctx, kube)).env, [{ service: 'web', secret: 'kompox-env-web', keys: ['API_TOKEN'] }]);
    assert.deepEqual(await deleteEnvOverrides(ctx, kube, { service: 'web' }, op), { namespace: ns, secret: 'kompox-env-web', service: 'web', deleted: true });
    assert.deepEqual(await deletePullSecret(ctx, kube, op), { namespace: ns, secret: 'kompox-pull', deleted: true });
    assert.deepEqual(await readStoredSecrets(ctx, kube), { env: [] });
    assert.ok(events.length >= 4);
    noValue(events, 'an event');
    noValue([pull, env, stored], 'a result');
  });

  test('refused: an unknown service, an empty set, a foreign Secret, a config without credentials, a line without =; nothing stored', async () => {
    await assert.rejects(setEnvOverrides(ctx, kube, { service: 'wbe', values: { A: '1' }, services: ['web'] }), (e: Error & { code?: string }) => e.code === 'secret.env.service');
    await assert.rejects(setEnvOverrides(ctx, kube, { service: 'web', values: {} }), (e: Error & { code?: string }) => e.code === 'secret.env.empty');
    await kube.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'kompox-env-db', namespace: ns }, data: { X: b64('theirs') } });
    await assert.rejects(setEnvOverrides(ctx, kube, { service: 'db', values: { X: PASSWORD } }), (e: Error & { code?: string }) => e.code === 'secret.foreign');
    assert.equal((fake.store.get(fake.resource('v1', 'Secret')!, ns, 'kompox-env-db') as { data: Record<string, string> }).data.X, b64('theirs'));
    assert.equal((await deleteEnvOverrides(ctx, kube, { service: 'db' })).deleted, false, 'a foreign Secret is not deleted either');
    await assert.rejects(setPullSecret(ctx, kube, { dockerConfigJson: JSON.stringify({ auths: { 'ghcr.io': {} }, credsStore: 'desktop' }), file: 'field pullSecret' }), (e: Error & { code?: string; location?: { file?: string } }) => {
      assert.equal(e.code, 'secret.pull.invalid');
      assert.equal(e.location?.file, 'field pullSecret', 'the error names the input the front end gave');
      assert.match(e.message, /auths "ghcr\.io" has no credentials/);
      return true;
    });
    await assert.rejects(parseEnvOverrides(`A=1\n${PASSWORD}\n`, 'field env'), (e: Error & { location?: { file?: string; line?: number } }) => {
      assert.deepEqual([e.location?.file, e.location?.line], ['field env', 2]);
      assert.ok(!e.message.includes(PASSWORD));
      return true;
    });
    assert.deepEqual(await readStoredSecrets(ctx, kube), { env: [] });
  });
});
