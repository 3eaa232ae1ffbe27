import { test } from 'node:test';
import assert from 'node:assert/strict';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, loadOpsConfig, findConfigPath, requireApp } from '../../src/config/index.js';
import { DiagnosticsError, KompoxError, formatError } from '../../src/domain/errors.js';
import { BAD, BAD_SEMANTIC_ONLY, WITH_DEPLOYMENT } from './cases.js';
import { COMPOSE, GOOD, scratch } from './helpers.js';

async function loadText(text: string, extra: Record<string, string> = {}) {
  const s = scratch({ 'kompoxops.yml': text, ...extra });
  try {
    return await loadConfig(join(s.dir, 'kompoxops.yml'));
  } finally {
    s.cleanup();
  }
}

async function loadError(text: string): Promise<KompoxError> {
  try {
    await loadText(text);
  } catch (e) {
    assert.ok(e instanceof KompoxError, `expected a KompoxError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected the file to be rejected');
}

test('loads the full format into domain objects', async () => {
  const s = scratch({ 'kompoxops.yml': GOOD, 'compose.yml': COMPOSE });
  try {
    const c = await loadOpsConfig({ chdir: s.dir, cwd: process.cwd() });
    assert.equal(c.path, join(s.dir, 'kompoxops.yml'));
    assert.equal(c.dir, s.dir);
    assert.deepEqual(c.service, { name: 'ops' });
    assert.deepEqual(c.provider, { name: 'k3s1', service: 'ops', driver: 'k3s', settings: { K3S_SSH: 'admin@node1' } });
    assert.deepEqual(c.cluster, {
      name: 'c1',
      provider: 'k3s1',
      auth: { type: 'kubectl', kubeconfig: join(s.dir, 'kubeconfig'), context: 'c1' },
      ingress: { controller: 'traefik', namespace: 'traefik' },
      domain: 'apps.example.com',
      settings: { ACME_EMAIL: 'ops@example.com' },
    });
    const ctx = requireApp(c);
    assert.equal(ctx.app.name, 'my-app');
    assert.equal(ctx.app.cluster, 'c1');
    assert.equal(ctx.app.compose, COMPOSE);
    assert.equal(ctx.app.composePath, join(s.dir, 'compose.yml'));
    assert.equal(ctx.app.projectDir, s.dir);
    assert.deepEqual(ctx.app.ingress, { http_80: 'www.example.com', http_8080: 'admin.example.com' });
    assert.deepEqual(ctx.app.resources, { cpu: '500m', memory: '1Gi' });
    // unquoted numbers and booleans become strings
    assert.deepEqual(ctx.app.settings, { DISK_SIZE: '50', FLAG: 'true' });
    assert.deepEqual(ctx.app.volumes, [
      { name: 'data', sizeGiB: 10, options: {} },
      { name: 'logs', sizeGiB: 1, options: { TYPE: 'ssd' } },
    ]);
    // the compose of the app travels as a value of the config, not beside the App
    assert.deepEqual(c.appCompose, { files: [join(s.dir, 'compose.yml')] });
    assert.deepEqual(c.locate(['app', 'volumes', 1, 'size']), { file: c.path.replace(process.cwd() + '/', ''), line: 34, column: 13 });
  } finally {
    s.cleanup();
  }
});

test('defaults: auth kubectl, traefik ingress, one volume named default; app is optional', async () => {
  const c = await loadText('version: 1\nservice: {name: ops}\nprovider: {name: p1, driver: aks}\ncluster: {name: c1}\n');
  assert.deepEqual(c.cluster.auth, { type: 'kubectl' });
  assert.deepEqual(c.cluster.ingress, { controller: 'traefik', namespace: 'traefik' });
  assert.equal(c.app, undefined);
  assert.throws(() => requireApp(c), (e: unknown) => e instanceof KompoxError && /has no app section/.test(e.message) && /Add an "app:" section/.test(formatError(e)));

  const c2 = await loadText('version: 1\nservice: {name: ops}\nprovider: {name: p1, driver: aks}\ncluster: {name: c1}\napp: {name: a, compose: compose.yml}\n', { 'compose.yml': COMPOSE });
  assert.deepEqual(c2.app?.volumes, [{ name: 'default', options: {} }]);
});

test('unquoted numbers and booleans in settings keep their written form', async () => {
  const c = await loadText('version: 1\nservice: {name: ops}\nprovider:\n  name: p1\n  driver: k3s\n  settings:\n    A: 010\n    B: 1.0\n    C: True\n    D: 50\ncluster: {name: c1}\n');
  assert.deepEqual(c.provider.settings, { A: '010', B: '1.0', C: 'True', D: '50' });
});

test('kubeconfig: ~ is the home directory, absolute paths stay', async () => {
  const base = 'version: 1\nservice: {name: ops}\nprovider: {name: p1, driver: eks}\ncluster:\n  name: c1\n  auth: {kubeconfig: KC}\n';
  assert.equal((await loadText(base.replace('KC', '~/.kube/config'))).cluster.auth.kubeconfig, join(homedir(), '.kube/config'));
  assert.equal((await loadText(base.replace('KC', '/etc/kube.yaml'))).cluster.auth.kubeconfig, '/etc/kube.yaml');
});

test('inline compose as a mapping: text is clean, positions match kompoxops.yml', async () => {
  const text = 'version: 1\nservice: {name: ops}\nprovider: {name: p1, driver: k3s}\ncluster: {name: c1}\napp:\n  name: a\n  compose:\n    services:\n      web:\n        image: nginx\n';
  const s = scratch({ 'kompoxops.yml': text });
  try {
    const c = await loadConfig(join(s.dir, 'kompoxops.yml'));
    const ctx = requireApp(c);
    assert.equal(ctx.app.compose, 'services:\n  web:\n    image: nginx\n');
    assert.equal(ctx.app.composePath, undefined);
    assert.equal(ctx.app.projectDir, s.dir);
    const src = c.appCompose as { text: string; filename: string };
    assert.equal(src.filename, join(s.dir, 'kompoxops.yml'));
    // line 10, column 16 of kompoxops.yml is "nginx": same place in the positioned text
    const lines = src.text.split('\n');
    assert.equal(lines[9]!.indexOf('nginx'), 15);
    assert.equal(text.split('\n')[9]!.indexOf('nginx'), 15);
  } finally {
    s.cleanup();
  }
});

test('inline compose as a block string, and as a one-line string with services:', async () => {
  const text = 'version: 1\nservice: {name: ops}\nprovider: {name: p1, driver: k3s}\ncluster: {name: c1}\napp:\n  name: a\n  compose: |\n    services:\n      web:\n        image: nginx\n';
  const c = await loadText(text);
  assert.equal(c.app?.compose, 'services:\n  web:\n    image: nginx\n');
  const src = c.appCompose as { text: string; filename: string };
  assert.equal(src.text.split('\n')[9], '        image: nginx');
  assert.equal(text.split('\n')[9], '        image: nginx');

  const c2 = await loadText('version: 1\nservice: {name: ops}\nprovider: {name: p1, driver: k3s}\ncluster: {name: c1}\napp: {name: a, compose: "services: {web: {image: nginx}}"}\n');
  assert.equal(c2.app?.compose, 'services: {web: {image: nginx}}');
  assert.equal(c2.app?.composePath, undefined);
});

test('a missing compose file fails app commands (requireApp), not cluster ones', async () => {
  const c = await loadText(GOOD);
  assert.equal(c.cluster.name, 'c1');
  assert.throws(
    () => requireApp(c),
    (e: unknown) => e instanceof KompoxError && /kompoxops\.yml:20:12: app\.compose: no such file/.test(formatError(e)) && /Create the compose file/.test(formatError(e)),
  );
});

test('discovery: -C, -f, missing file suggests kompoxops init', () => {
  const s = scratch({ 'kompoxops.yml': GOOD, 'sub/other.yml': GOOD });
  try {
    assert.equal(findConfigPath({ cwd: s.dir }), join(s.dir, 'kompoxops.yml'));
    assert.equal(findConfigPath({ chdir: s.dir, cwd: process.cwd() }), join(s.dir, 'kompoxops.yml'));
    assert.equal(findConfigPath({ cwd: '/', chdir: s.dir, file: 'sub/other.yml' }), join(s.dir, 'sub/other.yml'));
    assert.throws(() => findConfigPath({ cwd: join(s.dir, 'sub') }), (e: unknown) => e instanceof KompoxError && /no kompoxops\.yml/.test(e.message) && /kompoxops init/.test(e.hint ?? ''));
    assert.throws(() => findConfigPath({ chdir: join(s.dir, 'nope'), cwd: process.cwd() }), (e: unknown) => e instanceof KompoxError && /no such directory/.test(e.message));
    assert.throws(() => findConfigPath({ chdir: s.dir, file: 'x.yml', cwd: process.cwd() }), (e: unknown) => e instanceof KompoxError && /no such file/.test(e.message));
  } finally {
    s.cleanup();
  }
});

for (const b of [...BAD, ...BAD_SEMANTIC_ONLY]) {
  test(`rejects: ${b.name} (names field, line:column and what to do)`, async () => {
    const e = await loadError(b.text);
    const msg = formatError(e);
    assert.ok(!(e instanceof DiagnosticsError), `expected exactly one problem, got:\n${msg}`);
    assert.equal(e.field, b.field);
    assert.match(msg, new RegExp(`kompoxops\\.yml:${b.where}: ${b.field.replace(/[.[\]]/g, '\\$&')}: `), msg);
    assert.match(msg, b.says);
  });
}

test('app.deployment: a pool or zone is a name or a list of names; unquoted numbers are read as written', async () => {
  const app = async (body: string) => (await loadText(WITH_DEPLOYMENT(body), { 'compose.yml': COMPOSE })).app!;
  assert.deepEqual((await app('    pool: user\n    zone: [japaneast-1, japaneast-2]\n')).deployment, { pools: ['user'], zones: ['japaneast-1', 'japaneast-2'] });
  assert.deepEqual((await app('    pool: [user, spot]\n')).deployment, { pools: ['user', 'spot'] });
  assert.deepEqual((await app('    zone: 01\n')).deployment, { zones: ['01'] });
  assert.equal((await app('    # nothing yet\n')).deployment, undefined);
  assert.equal((await loadText(GOOD, { 'compose.yml': COMPOSE })).app!.deployment, undefined, 'no key, no field: apps without placement are unchanged');
});

test('YAML syntax errors name line:column', async () => {
  const e = await loadError('version: 1\nservice:\n  name: [ops\ncluster: {}\n');
  assert.match(formatError(e), /kompoxops\.yml:\d+:\d+: YAML syntax error/);
  const dup = await loadError('version: 1\nversion: 1\n');
  assert.match(formatError(dup), /kompoxops\.yml:2:1: YAML syntax error: Map keys must be unique/);
});

test('an empty file says to run kompoxops init', async () => {
  const e = await loadError('# nothing\n');
  assert.match(formatError(e), /the file is empty.*kompoxops init/);
});

test('several problems are reported together, in file order', async () => {
  const e = await loadError(GOOD.replace('driver: k3s', 'driver: x').replace('cpu: 500m', 'cpu: y'));
  assert.ok(e instanceof DiagnosticsError);
  assert.equal(e.diagnostics.length, 2);
  assert.deepEqual(e.diagnostics.map((d) => d.location?.line), [6, 25]);
  assert.match(e.message, /has 2 problems/);
});
