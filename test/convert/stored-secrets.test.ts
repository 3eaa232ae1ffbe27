// The converter's side of stored secrets (issue 12): plain names in, the
// pod's references out — imagePullSecrets, envFrom, and compose environment
// entries the overrides replace left out of `env` (in Kubernetes an `env`
// entry wins over every envFrom source). No value ever reaches the converter.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ANN_SECRETS_REVISION } from '../../src/convert/convert.js';
import { convert, makeCtx, makeLoaded, podSpec, validateObjects } from './helpers.js';

const loaded = () =>
  makeLoaded(
    {
      services: {
        web: { image: 'registry.example.com/team/web:1', environment: { DB_PASSWORD: 'dev-password', APP_MODE: 'dev', API_KEY: 'from-file' } },
        worker: { image: 'registry.example.com/team/worker:1', environment: { QUEUE: 'jobs' } },
      },
    },
    { web: ['API_KEY'] },
  );

describe('stored secrets in the converter', () => {
  test('without stored secrets nothing refers to them', () => {
    const r = convert(makeCtx(), loaded());
    assert.deepEqual(r.errors, []);
    const spec = podSpec(r.objects);
    assert.equal(spec.imagePullSecrets, undefined);
    for (const c of spec.containers) assert.equal(c.envFrom, undefined);
    assert.equal(spec.containers.find((c: { name: string }) => c.name === 'web').env.find((e: { name: string }) => e.name === 'DB_PASSWORD').value, 'dev-password');
  });

  test('pull credentials become imagePullSecrets; overrides an envFrom of their service, the overridden names leave env', () => {
    const r = convert(makeCtx(), loaded(), {
      secrets: { pull: 'kompox-pull', env: { web: { secret: 'kompox-env-web', keys: ['API_KEY', 'DB_PASSWORD', 'EXTRA'] } }, revision: 'abc123' },
    });
    assert.deepEqual(r.errors, []);
    validateObjects(r.objects);
    const dep = r.objects.find((o) => o.kind === 'Deployment')!;
    const spec = podSpec(r.objects);
    assert.deepEqual(spec.imagePullSecrets, [{ name: 'kompox-pull' }]);
    const web = spec.containers.find((c: { name: string }) => c.name === 'web');
    const worker = spec.containers.find((c: { name: string }) => c.name === 'worker');
    assert.deepEqual(web.envFrom, [{ secretRef: { name: 'kompox-env-web' } }]);
    // only what the overrides do not replace stays in env (API_KEY came from an env_file and looked secret: its compose value is not stored either)
    assert.deepEqual(web.env, [{ name: 'APP_MODE', value: 'dev' }]);
    assert.equal(worker.envFrom, undefined);
    assert.deepEqual(worker.env, [{ name: 'QUEUE', value: 'jobs' }]);
    assert.ok(!r.objects.some((o) => o.kind === 'Secret' && o.metadata.name === 'web-env'), 'no Secret for the overridden env_file value');
    assert.equal((dep.spec as any).template.metadata.annotations[ANN_SECRETS_REVISION], 'abc123'); // eslint-disable-line @typescript-eslint/no-explicit-any
  });

  test('overrides stored for a service the project does not define are reported, not used', () => {
    const r = convert(makeCtx(), loaded(), { secrets: { env: { gone: { secret: 'kompox-env-gone', keys: ['X'] } } } });
    assert.deepEqual(r.errors, []);
    assert.ok(r.warnings.some((w) => /environment overrides are stored for service "gone", which the compose project does not define/.test(w.message)));
    for (const c of podSpec(r.objects).containers) assert.equal(c.envFrom, undefined);
  });
});
