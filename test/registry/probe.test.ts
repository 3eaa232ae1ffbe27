// The registry probe against a real registry server on 127.0.0.1: anonymous
// manifest check with the Bearer token flow, and what it says when it cannot
// tell (nothing listening, no answer in time).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { parseImageRef } from '../../src/domain/images.js';
import { httpRegistryProbe, parseChallenge, registryBaseUrl } from '../../src/registry/probe.js';
import { startTestRegistry, type TestRegistry } from '../support/registry.js';

describe('httpRegistryProbe (loopback registry)', () => {
  let reg: TestRegistry;
  let strict: TestRegistry;
  before(async () => {
    reg = await startTestRegistry({ public: ['library/tool', 'team/open'], private: ['team/app'], username: 'u', password: 'p' });
    strict = await startTestRegistry({ public: [], private: ['team/app'], username: 'u', password: 'p', refuseAnonymousTokens: true });
  });
  after(async () => {
    await reg?.close();
    await strict?.close();
  });
  const probe = httpRegistryProbe({ timeoutMs: 2000 });
  const ask = (image: string) => probe.visibility(parseImageRef(image)!, {});

  test('a public repository: served with an anonymous token', async () => {
    assert.deepEqual(await ask(`${reg.host}/team/open:1`), { visibility: 'public' });
    assert.deepEqual(reg.requests.slice(-3), ['HEAD /v2/team/open/manifests/1', 'GET /token', 'HEAD /v2/team/open/manifests/1']);
  });

  test('a private repository: the anonymous token does not open it', async () => {
    assert.deepEqual(await ask(`${reg.host}/team/app:1`), { visibility: 'private', reason: '401 for an anonymous pull (with an anonymous token)' });
  });

  test('a token service that refuses anonymous requests', async () => {
    assert.deepEqual(await ask(`${strict.host}/team/app:1`), { visibility: 'private', reason: 'the token service refused an anonymous token (401)' });
  });

  test('nothing listening, or no answer in time: unknown, with the reason', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const r1 = await ask(`127.0.0.1:${port}/team/app:1`);
    assert.equal(r1.visibility, 'unknown');
    assert.match(r1.reason!, new RegExp(`127\\.0\\.0\\.1:${port} cannot be reached \\(ECONNREFUSED\\)`));

    const silent = net.createServer(() => undefined); // accepts, never answers
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const r2 = await httpRegistryProbe({ timeoutMs: 200 }).visibility(parseImageRef(`127.0.0.1:${(silent.address() as net.AddressInfo).port}/a/b:1`)!, {});
      assert.equal(r2.visibility, 'unknown');
      assert.match(r2.reason!, /no answer from 127\.0\.0\.1:\d+ within 0.2s/);
    } finally {
      silent.close();
    }
  });
});

test('registryBaseUrl and parseChallenge', () => {
  assert.equal(registryBaseUrl('docker.io'), 'https://registry-1.docker.io');
  assert.equal(registryBaseUrl('ghcr.io'), 'https://ghcr.io');
  assert.equal(registryBaseUrl('127.0.0.1:5000'), 'http://127.0.0.1:5000');
  assert.equal(registryBaseUrl('localhost:5000'), 'http://localhost:5000');
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/nginx:pull' },
  });
  assert.equal(parseChallenge('Basic realm="x"').scheme, 'basic');
});
