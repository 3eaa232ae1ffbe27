import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  appId, appLabels, appNamespace, appSelector, dnsLabelProblem, isDnsLabel, nowRfc3339, pvName, pvcName, shortHash, timestampName,
} from '../../src/domain/names.js';
import type { AppContext } from '../../src/domain/model.js';

const ctx = {
  service: { name: 'ops' },
  provider: { name: 'aks1', service: 'ops', driver: 'aks', settings: {} },
  cluster: { name: 'my-aks', provider: 'aks1', auth: { type: 'kubectl' }, ingress: { controller: 'traefik', namespace: 'traefik' }, settings: {} },
  app: { name: 'my-app', cluster: 'my-aks', compose: '', ingress: {}, resources: {}, settings: {}, volumes: [] },
} satisfies AppContext;

test('DNS labels follow RFC 1123', () => {
  for (const ok of ['a', 'my-app', 'a1', '0abc', 'x'.repeat(63)]) assert.ok(isDnsLabel(ok), ok);
  for (const bad of ['', '-a', 'a-', 'A', 'my_app', 'a.b', 'x'.repeat(64)]) assert.ok(!isDnsLabel(bad), bad);
  assert.equal(dnsLabelProblem('My'), 'must be lower case');
  assert.match(dnsLabelProblem('x'.repeat(64))!, /64 characters/);
  assert.equal(dnsLabelProblem('ok'), undefined);
});

test('appId is service/provider/cluster/app (spec)', () => {
  assert.equal(appId(ctx), 'ops/aks1/my-aks/my-app');
});

test('namespace is deterministic, a DNS label, and independent of the cluster', () => {
  const ns = appNamespace(ctx);
  assert.equal(ns, `k4x-my-app-${shortHash('ops/aks1/my-app')}`);
  assert.ok(isDnsLabel(ns));
  const moved = { ...ctx, cluster: { ...ctx.cluster, name: 'other' } };
  assert.equal(appNamespace(moved), ns);
  const otherProvider = { ...ctx, provider: { ...ctx.provider, name: 'aks2' } };
  assert.notEqual(appNamespace(otherProvider), ns);
  const long = { ...ctx, app: { ...ctx.app, name: 'a'.repeat(63) } };
  assert.ok(isDnsLabel(appNamespace(long)), appNamespace(long));
});

test('labels and selector', () => {
  const ns = appNamespace(ctx);
  assert.deepEqual(appLabels(ctx), {
    'app.kubernetes.io/name': 'my-app',
    'app.kubernetes.io/instance': ns,
    'app.kubernetes.io/managed-by': 'kompox',
  });
  assert.deepEqual(appSelector(ctx), { 'kompox.dev/app-instance': ns });
});

test('PV and PVC names change with the disk and are stable for the same disk', () => {
  const a = pvName('ns1', 'default', '/disks/a');
  assert.equal(a, pvName('ns1', 'default', '/disks/a'));
  assert.notEqual(a, pvName('ns1', 'default', '/disks/b'));
  assert.notEqual(a, pvName('ns2', 'default', '/disks/a'));
  assert.match(pvcName('db', '/disks/a'), /^db-[0-9a-f]{8}$/);
});

test('timestamps', () => {
  const d = new Date('2025-08-11T12:34:56.789Z');
  assert.equal(nowRfc3339(d), '2025-08-11T12:34:56Z');
  assert.equal(timestampName('default', d), 'default-20250811123456');
});
