import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, requireApp } from '../../src/config/index.js';
import { configTemplate, writeConfigTemplate } from '../../src/config/template.js';
import { KompoxError } from '../../src/domain/errors.js';
import { DRIVERS } from '../../src/domain/model.js';
import { COMPOSE, scratch } from './helpers.js';

for (const driver of DRIVERS) {
  test(`init template for ${driver} loads with the loader`, async () => {
    const s = scratch({ 'compose.yml': COMPOSE });
    try {
      const { path } = writeConfigTemplate({ driver, cwd: process.cwd(), chdir: s.dir });
      assert.equal(path, join(s.dir, 'kompoxops.yml'));
      const c = await loadConfig(path);
      assert.equal(c.provider.driver, driver);
      assert.equal(c.provider.name, `${driver}1`);
      assert.equal(c.cluster.name, `my-${driver}`);
      assert.equal(c.cluster.domain, 'example.com');
      const ctx = requireApp(c);
      assert.equal(ctx.app.name, 'my-app');
      assert.equal(ctx.app.compose, COMPOSE);
      // the driver's settings keys are in the template
      const prefix = { aks: 'AZURE_', eks: 'AWS_', gke: 'GCP_', oke: 'OCI_', k3s: 'K3S_' }[driver];
      assert.ok(Object.keys({ ...c.provider.settings, ...ctx.app.settings }).every((k) => k.startsWith(prefix) || k === 'GOOGLE_APPLICATION_CREDENTIALS'));
      assert.ok(Object.keys(ctx.app.settings).length > 0);
      const text = readFileSync(path, 'utf8');
      assert.match(text, /^# yaml-language-server: \$schema=/m);
      assert.match(text, /ACME_EMAIL/);
    } finally {
      s.cleanup();
    }
  });
}

for (const driver of DRIVERS) {
  test(`init template for ${driver}: the commented app.deployment example is valid once uncommented`, async () => {
    const text = configTemplate({ driver }).replace(/^  # (deployment:)$/m, '  $1').replace(/^  # (  (?:pool|zone): )/gm, '  $1');
    const s = scratch({ 'kompoxops.yml': text, 'compose.yml': COMPOSE });
    try {
      const c = await loadConfig(join(s.dir, 'kompoxops.yml'));
      const d = c.app?.deployment;
      assert.deepEqual(d?.pools, ['user']);
      assert.equal(d?.zones?.length, 1, 'one example zone in the driver\'s notation');
    } finally {
      s.cleanup();
    }
  });
}

test('aks template has the spec example settings', () => {
  const t = configTemplate({ driver: 'aks' });
  for (const k of ['AZURE_TOKEN_CREDENTIALS', 'AZURE_TENANT_ID', 'AZURE_SUBSCRIPTION_ID', 'AZURE_LOCATION', 'AZURE_RESOURCE_GROUP_NAME', 'AZURE_DISK_SIZE', 'AZURE_DISK_TYPE']) {
    assert.match(t, new RegExp(`^ +${k}: `, 'm'));
  }
});

test('--name, --app, --domain go into the template', async () => {
  const s = scratch();
  try {
    const { path } = writeConfigTemplate({ driver: 'eks', cluster: 'prod', app: 'shop', domain: 'apps.example.org', cwd: process.cwd(), chdir: s.dir, file: 'ops.yml' });
    assert.equal(path, join(s.dir, 'ops.yml'));
    const c = await loadConfig(path);
    assert.equal(c.cluster.name, 'prod');
    assert.equal(c.app?.name, 'shop');
    assert.equal(c.cluster.domain, 'apps.example.org');
    assert.equal(c.cluster.auth.context, 'prod');
  } finally {
    s.cleanup();
  }
});

test('bad flag values are usage errors naming the flag', () => {
  assert.throws(() => configTemplate({ driver: 'k3s', app: 'My_App' }), (e: unknown) => e instanceof KompoxError && e.kind === 'usage' && /--app "My_App"/.test(e.message));
  assert.throws(() => configTemplate({ driver: 'k3s', domain: 'not a domain' }), (e: unknown) => e instanceof KompoxError && /--domain/.test(e.message));
  assert.throws(() => configTemplate({ driver: 'k8s' as never }), (e: unknown) => e instanceof KompoxError && /aks, eks, gke, oke, k3s/.test(e.hint ?? ''));
});

test('refuses to overwrite without force; force overwrites', () => {
  const s = scratch({ 'kompoxops.yml': 'mine\n' });
  try {
    assert.throws(
      () => writeConfigTemplate({ driver: 'k3s', cwd: process.cwd(), chdir: s.dir }),
      (e: unknown) => e instanceof KompoxError && e.exitCode === 1 && /already exists/.test(e.message) && /--force/.test(e.hint ?? ''),
    );
    assert.equal(readFileSync(join(s.dir, 'kompoxops.yml'), 'utf8'), 'mine\n');
    const r = writeConfigTemplate({ driver: 'k3s', cwd: process.cwd(), chdir: s.dir, force: true });
    assert.equal(r.overwritten, true);
    assert.match(readFileSync(join(s.dir, 'kompoxops.yml'), 'utf8'), /driver: k3s/);
  } finally {
    s.cleanup();
  }
});
