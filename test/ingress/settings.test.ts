import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KompoxError } from '../../src/domain/errors.js';
import type { Cluster } from '../../src/domain/model.js';
import { readIngressSettings } from '../../src/ingress/settings.js';

function cluster(settings: Record<string, string>, extra: Partial<Cluster> = {}): Cluster {
  return {
    name: 'c1',
    provider: 'p1',
    auth: { type: 'kubectl' },
    ingress: { controller: 'traefik', namespace: 'traefik' },
    domain: 'example.com',
    settings,
    ...extra,
  };
}

test('generic driver: namespace from cluster.ingress, TLS from files', () => {
  const s = readIngressSettings(cluster({ ACME_EMAIL: 'a@example.com', INGRESS_TLS_CERT_FILE: 'c.pem', INGRESS_TLS_KEY_FILE: 'k.pem' }, { ingress: { controller: 'traefik', namespace: 'edge' } }), 'aks');
  assert.deepEqual(s, {
    variant: 'traefik',
    namespace: 'edge',
    acmeEmail: 'a@example.com',
    storageClass: undefined,
    tls: { kind: 'files', certFile: 'c.pem', keyFile: 'k.pem', secretName: 'traefik-default-cert' },
  });
});

test('k3s driver: always kube-system, existing Secret', () => {
  const s = readIngressSettings(cluster({ INGRESS_TLS_SECRET: 'wild', INGRESS_STORAGE_CLASS: 'local-path' }), 'k3s');
  assert.equal(s.variant, 'k3s');
  assert.equal(s.namespace, 'kube-system');
  assert.equal(s.storageClass, 'local-path');
  assert.deepEqual(s.tls, { kind: 'secret', secretName: 'wild' });
  assert.equal(s.acmeEmail, undefined);
});

test('errors name the field to fix', () => {
  const cases: Array<[Record<string, string>, Partial<Cluster>, RegExp, string]> = [
    [{ ACME_EMAIL: 'not-an-address' }, {}, /ACME_EMAIL "not-an-address" is not an e-mail address/, 'cluster.settings.ACME_EMAIL'],
    [{ INGRESS_TLS_CERT_FILE: 'c.pem' }, {}, /INGRESS_TLS_CERT_FILE is set but cluster.settings.INGRESS_TLS_KEY_FILE is not/, 'cluster.settings.INGRESS_TLS_KEY_FILE'],
    [{ INGRESS_TLS_CERT_FILE: 'c', INGRESS_TLS_KEY_FILE: 'k', INGRESS_TLS_SECRET: 's' }, {}, /either/, 'cluster.settings.INGRESS_TLS_SECRET'],
    [{ INGRESS_TLS_CERT_FILE: 'c', INGRESS_TLS_KEY_FILE: 'k' }, { domain: undefined }, /cluster.domain is not set/, 'cluster.domain'],
    [{ INGRESS_TLS_SECRET: 'Bad_Name' }, {}, /is not a Secret name/, 'cluster.settings.INGRESS_TLS_SECRET'],
    [{}, { ingress: { controller: 'nginx', namespace: 'x' } }, /"nginx" is not supported/, 'cluster.ingress.controller'],
  ];
  for (const [settings, extra, re, field] of cases) {
    assert.throws(
      () => readIngressSettings(cluster(settings, extra), 'aks', (p) => ({ file: 'kompoxops.yml', line: p.length })),
      (e: unknown) => e instanceof KompoxError && re.test(e.message) && e.field === field && e.location?.file === 'kompoxops.yml',
      `${JSON.stringify(settings)} → ${re}`,
    );
  }
});
