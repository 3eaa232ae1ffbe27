import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { KompoxError } from '../../src/domain/errors.js';
import type { Cluster } from '../../src/domain/model.js';
import { readIngressSettings } from '../../src/ingress/settings.js';
import { buildIngressObjects } from '../../src/ingress/index.js';
import { HELPER_IMAGE, TRAEFIK_IMAGE } from '../../src/domain/images.js';

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
    helperImage: HELPER_IMAGE,
    traefikImage: TRAEFIK_IMAGE,
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
    [{ KOMPOX_HELPER_IMAGE: 'busybox' }, {}, /KOMPOX_HELPER_IMAGE "busybox" has no tag or digest/, 'cluster.settings.KOMPOX_HELPER_IMAGE'],
    [{ INGRESS_TRAEFIK_IMAGE: 'Traefik:v3' }, {}, /INGRESS_TRAEFIK_IMAGE "Traefik:v3" is not an image reference/, 'cluster.settings.INGRESS_TRAEFIK_IMAGE'],
    [{ KOMPOX_REGISTRY_MIRROR: 'https://mirror.example.com/' }, {}, /KOMPOX_REGISTRY_MIRROR "https:\/\/mirror.example.com\/" is not a registry/, 'cluster.settings.KOMPOX_REGISTRY_MIRROR'],
  ];
  for (const [settings, extra, re, field] of cases) {
    assert.throws(
      () => readIngressSettings(cluster(settings, extra), 'aks', (p) => ({ file: 'kompoxops.yml', line: p.length })),
      (e: unknown) => e instanceof KompoxError && re.test(e.message) && e.field === field && e.location?.file === 'kompoxops.yml',
      `${JSON.stringify(settings)} → ${re}`,
    );
  }
});

test('images: a registry mirror serves the helper and Traefik images; explicit images are used as written', () => {
  const mirrored = readIngressSettings(cluster({ KOMPOX_REGISTRY_MIRROR: 'registry.example.com:5000/hub' }), 'aks');
  assert.equal(mirrored.helperImage, HELPER_IMAGE.replace('docker.io/', 'registry.example.com:5000/hub/'));
  assert.equal(mirrored.traefikImage, 'registry.example.com:5000/hub/library/traefik:v3.3.6');
  const objects = buildIngressObjects({ variant: 'traefik', namespace: 'traefik', acmeEmail: 'a@example.com', defaultIngressClass: false, helperImage: mirrored.helperImage, traefikImage: mirrored.traefikImage });
  const images = objects.filter((o) => o.kind === 'Deployment').flatMap((d) => {
    const spec = (d.spec as { template: { spec: { initContainers: { image: string }[]; containers: { image: string }[] } } }).template.spec;
    return [...spec.initContainers, ...spec.containers].map((c) => c.image);
  });
  assert.deepEqual(images, [mirrored.helperImage, mirrored.traefikImage], 'every image of the Traefik pod comes from the mirror');

  const explicit = readIngressSettings(cluster({ KOMPOX_REGISTRY_MIRROR: 'mirror.example.com', KOMPOX_HELPER_IMAGE: 'tools.example.com/busybox:1.37', INGRESS_TRAEFIK_IMAGE: 'tools.example.com/traefik:v3.3.7' }), 'aks');
  assert.equal(explicit.helperImage, 'tools.example.com/busybox:1.37');
  assert.equal(explicit.traefikImage, 'tools.example.com/traefik:v3.3.7');
});

test('images on K3s: K3s keeps its own Traefik image unless INGRESS_TRAEFIK_IMAGE is set, which becomes the chart values image.repository/tag', () => {
  const own = readIngressSettings(cluster({ KOMPOX_REGISTRY_MIRROR: 'mirror.example.com' }), 'k3s');
  assert.equal(own.traefikImage, undefined);
  assert.equal(own.helperImage, HELPER_IMAGE.replace('docker.io/', 'mirror.example.com/'));
  const spec = { variant: 'k3s' as const, namespace: 'kube-system', acmeEmail: 'a@example.com', defaultIngressClass: false };
  const values = (o: ReturnType<typeof buildIngressObjects>) => parse((o.find((x) => x.kind === 'HelmChartConfig')!.spec as { valuesContent: string }).valuesContent, { version: '1.1' }) as Record<string, unknown>;
  const v1 = values(buildIngressObjects({ ...spec, helperImage: own.helperImage }));
  assert.equal(v1.image, undefined);
  assert.equal((v1.deployment as { initContainers: { image: string }[] }).initContainers[0]!.image, own.helperImage);

  const set = readIngressSettings(cluster({ INGRESS_TRAEFIK_IMAGE: 'registry.example.com/library/traefik:v3.3.6@sha256:' + 'a'.repeat(64) }), 'k3s');
  const v2 = values(buildIngressObjects({ ...spec, traefikImage: set.traefikImage! }));
  assert.deepEqual(v2.image, { repository: 'registry.example.com/library/traefik', tag: 'v3.3.6@sha256:' + 'a'.repeat(64) });

  assert.throws(() => readIngressSettings(cluster({ INGRESS_TRAEFIK_IMAGE: 'registry.example.com/traefik@sha256:' + 'a'.repeat(64) }), 'k3s'), (e: unknown) => {
    assert.ok(e instanceof KompoxError);
    assert.equal(e.field, 'cluster.settings.INGRESS_TRAEFIK_IMAGE');
    assert.match(e.message, /has no tag; K3s's Traefik chart writes the image as repository:tag/);
    return true;
  });
});
