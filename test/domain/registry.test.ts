// Registry credentials: a Docker config.json checked and reduced for a pull
// Secret (never echoing a credential), and the kubelet's rules for which
// `auths` entry applies to an image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KompoxError } from '../../src/domain/errors.js';
import { parseImageRef } from '../../src/domain/images.js';
import { credentialMatches, credentialsFor, parseDockerConfig } from '../../src/domain/registry.js';

const SECRET = 'pa55-Xq9-never-shown';
const auth = Buffer.from(`robot:${SECRET}`).toString('base64');

function failure(text: string): KompoxError {
  try {
    parseDockerConfig(text, 'config.json');
  } catch (e) {
    assert.ok(e instanceof KompoxError);
    return e;
  }
  assert.fail('expected an error');
}

test('parseDockerConfig keeps only auths with the fields the kubelet reads', () => {
  const text = JSON.stringify({ auths: { 'ghcr.io': { auth, email: 'a@example.com', identitytoken: 'x' }, 'registry.example.com': { username: 'u', password: SECRET } }, proxies: { default: {} }, HttpHeaders: { 'User-Agent': 'x' } });
  const c = parseDockerConfig(text, 'config.json');
  assert.deepEqual(c.registries, ['ghcr.io', 'registry.example.com']);
  assert.deepEqual(JSON.parse(c.json), { auths: { 'ghcr.io': { auth, email: 'a@example.com' }, 'registry.example.com': { username: 'u', password: SECRET } } });
});

test('parseDockerConfig refuses what a cluster cannot use, naming where and never what', () => {
  const cases: [string, RegExp][] = [
    [`{"auths": {"ghcr.io": {"auth": "${auth}"}}, oops ${SECRET}}`, /is not valid JSON \(the content is not shown/],
    [JSON.stringify({ registries: {} }), /has no "auths" object/],
    [JSON.stringify({ auths: { 'ghcr.io': {} }, credsStore: 'desktop' }), /auths "ghcr\.io" has no credentials \(Docker keeps them in the credential store "desktop"\)/],
    [JSON.stringify({ auths: { 'ghcr.io': { auth: `${SECRET}!!` } } }), /auths\["ghcr\.io"\]\.auth is not base64 of user:password/],
    [JSON.stringify({ auths: { 'ghcr.io': { password: SECRET } } }), /auths "ghcr\.io" has no credentials/],
    [JSON.stringify({ auths: {} }), /auths lists no registry/],
  ];
  for (const [text, re] of cases) {
    const e = failure(text);
    assert.match(e.message, re);
    assert.equal(e.code, 'secret.pull.invalid');
    assert.equal(e.location?.file, 'config.json');
    assert.ok(!`${e.message} ${e.hint}`.includes(SECRET), `no credential in: ${e.message}`);
  }
  // where V8 says where (it does not for every error), the line and column are given
  assert.deepEqual(failure('{\n  "auths" 1\n}').location, { file: 'config.json', line: 2, column: 11 });
});

test('credentialMatches: the kubelet keyring rules (scheme, /v1/ /v2/, Docker Hub names, ports, globs, path prefixes)', () => {
  const img = (s: string) => parseImageRef(s)!;
  const yes: [string, string][] = [
    ['https://index.docker.io/v1/', 'nginx'],
    ['docker.io', 'gitea/gitea:1'],
    ['ghcr.io', 'ghcr.io/org/app:1'],
    ['https://ghcr.io/v2/', 'ghcr.io/org/app:1'],
    ['registry.example.com:5000', 'registry.example.com:5000/team/app'],
    ['*.azurecr.io', 'myacr.azurecr.io/app:1'],
    ['ghcr.io/org', 'ghcr.io/org/app:1'],
  ];
  const no: [string, string][] = [
    ['ghcr.io', 'docker.io/org/app'],
    ['registry.example.com', 'registry.example.com:5000/team/app'],
    ['*.azurecr.io', 'a.b.azurecr.io/app'],
    ['ghcr.io/other', 'ghcr.io/org/app:1'],
    ['https://index.docker.io/v1/', 'ghcr.io/org/app'],
  ];
  for (const [k, i] of yes) assert.equal(credentialMatches(k, img(i)), true, `${k} ~ ${i}`);
  for (const [k, i] of no) assert.equal(credentialMatches(k, img(i)), false, `${k} !~ ${i}`);
  assert.deepEqual(credentialsFor(['ghcr.io', 'https://index.docker.io/v1/'], img('nginx')), ['https://index.docker.io/v1/']);
});
