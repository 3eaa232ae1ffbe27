// Golden tests of the generated Traefik objects, plus schema validation of
// every object with kubernetes-models (HelmChartConfig has no model: its
// shape is checked by hand).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { toYamlText } from '../../src/domain/yaml-text.js';
import { buildIngressObjects, type IngressSpec } from '../../src/ingress/index.js';
import { CERT_RESOLVER_PRODUCTION, CERT_RESOLVER_STAGING } from '../../src/domain/ingress.js';
import type { KubeObject } from '../../src/kube/types.js';
import { CASES } from './fixtures/cases.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

async function modelFor(o: KubeObject): Promise<(new (data: unknown) => { validate(): void }) | undefined> {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  if (group === 'helm.cattle.io') return undefined;
  const mod = (await import(`kubernetes-models/${group ? `${group}/` : ''}${version}/${o.kind}`)) as Record<string, unknown>;
  return (mod.default ?? mod[o.kind]) as new (data: unknown) => { validate(): void };
}

for (const [name, spec] of Object.entries(CASES)) {
  test(`golden: ${name}`, () => {
    const objects = buildIngressObjects(spec);
    const file = `${FIXTURES}${name}.yaml`;
    if (process.env.KOMPOX_UPDATE_GOLDEN === '1' || !existsSync(file)) {
      if (process.env.KOMPOX_UPDATE_GOLDEN !== '1') assert.fail(`missing golden file ${file}; generate it with KOMPOX_UPDATE_GOLDEN=1 and review it`);
      writeFileSync(file, objects.map((o) => toYamlText(o)).join('---\n'));
    }
    const expected = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS());
    assert.deepEqual(objects, expected);
  });

  test(`kubernetes-models validate: ${name}`, async () => {
    for (const o of buildIngressObjects(spec)) {
      const Model = await modelFor(o);
      if (!Model) continue;
      assert.doesNotThrow(() => new Model(o).validate(), `${o.kind} ${o.metadata.name}`);
    }
  });
}

test('every object carries the managed-by and part-of labels', () => {
  for (const spec of Object.values(CASES)) {
    for (const o of buildIngressObjects(spec)) {
      assert.equal(o.metadata.labels?.['app.kubernetes.io/managed-by'], 'kompox', `${o.kind} ${o.metadata.name}`);
      assert.equal(o.metadata.labels?.['app.kubernetes.io/part-of'], 'kompox-ingress', `${o.kind} ${o.metadata.name}`);
    }
  }
});

test('generation is deterministic and pure', () => {
  const spec = CASES['generic-cert']!;
  const copy = structuredClone(spec);
  assert.deepEqual(buildIngressObjects(spec), buildIngressObjects(spec));
  assert.deepEqual(spec, copy);
});

function deploymentOf(spec: IngressSpec) {
  const d = buildIngressObjects(spec).find((o) => o.kind === 'Deployment') as any;
  assert.ok(d);
  return d;
}

test('generic: Traefik args carry the resolvers, redirect, ingress class and published service', () => {
  const args: string[] = deploymentOf(CASES['generic-cert']!).spec.template.spec.containers[0].args;
  for (const r of [CERT_RESOLVER_PRODUCTION, CERT_RESOLVER_STAGING]) {
    assert.ok(args.includes(`--certificatesresolvers.${r}.acme.tlschallenge=true`), r);
    assert.ok(args.includes(`--certificatesresolvers.${r}.acme.email=ops@example.com`), r);
    assert.ok(args.includes(`--certificatesresolvers.${r}.acme.storage=/data/acme.json`), r);
  }
  assert.ok(args.includes('--certificatesresolvers.letsencrypt-staging.acme.caserver=https://acme-staging-v02.api.letsencrypt.org/directory'));
  assert.ok(!args.some((a) => a.startsWith('--certificatesresolvers.letsencrypt.acme.caserver')), 'production uses the default CA');
  assert.ok(args.includes('--entryPoints.web.http.redirections.entryPoint.to=:443'));
  assert.ok(args.includes('--providers.kubernetesingress.ingressclass=traefik'));
  assert.ok(args.includes('--providers.kubernetesingress.ingressendpoint.publishedservice=ingress/traefik'));
  assert.ok(args.includes('--providers.file.directory=/etc/traefik/dynamic'));
  assert.ok(!deploymentOf(CASES['generic-minimal']!).spec.template.spec.containers[0].args.some((a: string) => a.startsWith('--providers.file')));
});

test('generic: one replica, Recreate, non-root, service maps 80/443 to 8000/8443', () => {
  const objects = buildIngressObjects(CASES['generic-minimal']!);
  const d = deploymentOf(CASES['generic-minimal']!);
  assert.equal(d.spec.replicas, 1);
  assert.deepEqual(d.spec.strategy, { type: 'Recreate' });
  assert.equal(d.spec.template.spec.securityContext.runAsNonRoot, true);
  const ports = d.spec.template.spec.containers[0].ports.map((p: any) => [p.name, p.containerPort]);
  assert.deepEqual(ports, [['traefik', 8080], ['web', 8000], ['websecure', 8443]]);
  const svc = objects.find((o) => o.kind === 'Service') as any;
  assert.equal(svc.spec.type, 'LoadBalancer');
  assert.deepEqual(svc.spec.ports.map((p: any) => [p.port, p.targetPort]), [[80, 'web'], [443, 'websecure']]);
  assert.deepEqual(svc.spec.selector, d.spec.selector.matchLabels);
  const init = d.spec.template.spec.initContainers[0];
  assert.match(init.command[2], /touch \/data\/acme\.json && chmod 600 \/data\/acme\.json && chown 65532:65532/);
});

test('generic: the default-class annotation follows the decision', () => {
  const ic = (spec: IngressSpec) => buildIngressObjects(spec).find((o) => o.kind === 'IngressClass')!;
  assert.equal(ic(CASES['generic-minimal']!).metadata.annotations?.['ingressclass.kubernetes.io/is-default-class'], 'true');
  assert.equal(ic(CASES['generic-cert']!).metadata.annotations, undefined);
  assert.equal((ic(CASES['generic-cert']!).spec as any).controller, 'traefik.io/ingress-controller');
});

test('generic: a system namespace is not created', () => {
  assert.ok(!buildIngressObjects(CASES['generic-existing-secret']!).some((o) => o.kind === 'Namespace'));
  assert.ok(buildIngressObjects(CASES['generic-minimal']!).some((o) => o.kind === 'Namespace' && o.metadata.name === 'traefik'));
  assert.ok(!buildIngressObjects({ ...CASES['generic-minimal']!, manageNamespace: false }).some((o) => o.kind === 'Namespace'));
});

test('generic: a new certificate changes the pod template hash (rolls the pod)', () => {
  const a = CASES['generic-cert']!;
  const b: IngressSpec = { ...a, defaultCertificate: { ...a.defaultCertificate!, contentHash: 'another' } };
  const hash = (s: IngressSpec) => deploymentOf(s).spec.template.metadata.annotations['kompox.dev/ingress-config-hash'];
  assert.notEqual(hash(a), hash(b));
  assert.equal(hash(a), hash(structuredClone(a)));
});

test('generic: RBAC has exactly the Kubernetes Ingress provider rules of Traefik v3.3', () => {
  const role = buildIngressObjects(CASES['generic-minimal']!).find((o) => o.kind === 'ClusterRole') as any;
  const flat = role.rules.flatMap((r: any) => r.apiGroups.flatMap((g: string) => r.resources.flatMap((res: string) => r.verbs.map((v: string) => `${g}/${res}:${v}`))));
  assert.deepEqual(flat.sort(), [
    '/nodes:get', '/nodes:list', '/nodes:watch',
    '/secrets:get', '/secrets:list', '/secrets:watch',
    '/services:get', '/services:list', '/services:watch',
    'discovery.k8s.io/endpointslices:list', 'discovery.k8s.io/endpointslices:watch',
    'extensions/ingressclasses:get', 'extensions/ingressclasses:list', 'extensions/ingressclasses:watch',
    'extensions/ingresses/status:update',
    'extensions/ingresses:get', 'extensions/ingresses:list', 'extensions/ingresses:watch',
    'networking.k8s.io/ingressclasses:get', 'networking.k8s.io/ingressclasses:list', 'networking.k8s.io/ingressclasses:watch',
    'networking.k8s.io/ingresses/status:update',
    'networking.k8s.io/ingresses:get', 'networking.k8s.io/ingresses:list', 'networking.k8s.io/ingresses:watch',
  ].sort());
  const binding = buildIngressObjects(CASES['generic-cert']!).find((o) => o.kind === 'ClusterRoleBinding') as any;
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'traefik', namespace: 'ingress' }]);
});

test('k3s: HelmChartConfig has the shape the K3s Helm controller reads', () => {
  const objects = buildIngressObjects(CASES['k3s-cert']!);
  assert.deepEqual(objects.map((o) => o.kind), ['Secret', 'PersistentVolumeClaim', 'HelmChartConfig']);
  const hcc = objects[2]!;
  assert.equal(hcc.apiVersion, 'helm.cattle.io/v1');
  assert.deepEqual({ name: hcc.metadata.name, namespace: hcc.metadata.namespace }, { name: 'traefik', namespace: 'kube-system' });
  assert.deepEqual(Object.keys(hcc).sort(), ['apiVersion', 'kind', 'metadata', 'spec']);
  const spec = hcc.spec as Record<string, unknown>;
  assert.deepEqual(Object.keys(spec), ['valuesContent']);
  assert.equal(typeof spec.valuesContent, 'string');
  const values = parse(spec.valuesContent as string);
  assert.ok(values.additionalArguments.includes('--certificatesresolvers.letsencrypt.acme.tlschallenge=true'));
  assert.ok(values.additionalArguments.includes('--entryPoints.web.http.redirections.entryPoint.to=:443'));
  assert.deepEqual(values.persistence, { accessMode: 'ReadWriteOnce', enabled: true, existingClaim: 'kompox-traefik-acme', name: 'data', path: '/data' });
  assert.deepEqual(values.tlsStore, { default: { defaultCertificate: { secretName: 'kompox-traefik-default-cert' } } });
  assert.equal(values.updateStrategy.type, 'Recreate');
  assert.ok('rollingUpdate' in values.updateStrategy && values.updateStrategy.rollingUpdate === null);
  assert.equal(values.deployment.initContainers[0].volumeMounts[0].name, 'data');
  assert.equal(parse((buildIngressObjects(CASES['k3s-minimal']!)[1]!.spec as any).valuesContent).tlsStore, undefined);
});
