// What a real API server rejects beyond the OpenAPI schema, and what our
// generators must never produce. The suite runs against the fake API server
// (whose validation follows kube-apiserver's) and, with
// KOMPOX_TEST_KUBECONFIG, against a real cluster, so the fake is held to the
// real rules. A second part checks every object our generators emit for the
// golden cases and for names that used to slip through.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { KompoxError } from '../../src/domain/errors.js';
import { connectKubeconfig, type KubeClient, type KubeObject } from '../../src/kube/index.js';
import { classify } from '../../src/usecases/plan.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { BUILTIN_RESOURCES, groupVersion } from '../support/fake-kube/resources.js';
import { invalidMessage, validateObject } from '../support/fake-kube/validation.js';
import { eventually } from '../support/kube.js';

function invalid(field: RegExp | string, what: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof KompoxError, `expected KompoxError, got ${String((e as Error)?.stack ?? e)}`);
    assert.equal(e.kind, 'config', e.message);
    assert.match(e.message, what);
    assert.match(e.message, /rejected by the API server/);
    if (typeof field === 'string') assert.equal(e.field, field, e.message);
    else assert.match(e.message, field);
    return true;
  };
}

export function serverRules(label: string, setup: () => Promise<{ kubeconfigPath: string; context?: string; teardown(): Promise<void> }>): void {
  describe(`API server validation (${label})`, () => {
    let kube: KubeClient;
    let teardown: () => Promise<void>;
    const ns = `kompox-rules-${randomBytes(3).toString('hex')}`;
    const pvName = `${ns}-pv`;
    const affinity = (node: string) => ({ required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node] }] }] } });
    const pv = (node: string | undefined): KubeObject => ({
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: pvName, labels: { 'app.kubernetes.io/managed-by': 'kompox' } },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: 'kompox-rules-none',
        volumeMode: 'Filesystem',
        local: { path: '/var/lib/kompox-rules' },
        ...(node ? { nodeAffinity: affinity(node) } : {}),
      },
    });
    const deployment = (selector: Record<string, string>): KubeObject => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: ns },
      spec: {
        // no pod: the Deployment's status settles at once, also on a real cluster (the image does not exist)
        replicas: 0,
        strategy: { type: 'Recreate' },
        selector: { matchLabels: selector },
        template: {
          metadata: { labels: { ...selector, 'app.kubernetes.io/name': 'web' } },
          spec: { containers: [{ name: 'web', image: 'registry.invalid/web:1', ports: [{ containerPort: 8080, protocol: 'TCP' }] }] },
        },
      },
    });

    before(async () => {
      const s = await setup();
      teardown = s.teardown;
      kube = await connectKubeconfig({ path: s.kubeconfigPath, context: s.context });
      await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    });
    after(async () => {
      try {
        await kube?.delete({ apiVersion: 'v1', kind: 'PersistentVolume', name: pvName });
        await kube?.delete({ apiVersion: 'v1', kind: 'Namespace', name: ns });
      } finally {
        await teardown?.();
      }
    });

    test('a Service name must start with a letter (DNS-1035): 422 names the object and the field', async () => {
      const svc: KubeObject = {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: '2048-game', namespace: ns },
        spec: { selector: { a: 'b' }, ports: [{ name: 'p80-tcp', port: 80, targetPort: 80, protocol: 'TCP' }] },
      };
      await assert.rejects(kube.apply(svc), invalid('metadata.name', /Service "2048-game" is invalid/));
    });

    test('several Service ports each need a name; container port names are IANA service names (at most 15 characters)', async () => {
      const svc: KubeObject = {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'multi', namespace: ns },
        spec: { selector: { a: 'b' }, ports: [{ port: 80, protocol: 'TCP' }, { port: 443, protocol: 'TCP' }] },
      };
      await assert.rejects(kube.apply(svc), invalid(/spec\.ports\[\d\]\.name/, /Service "multi" is invalid/));
      const d = deployment({ app: 'web' });
      (d.spec as any).template.spec.containers[0].ports[0].name = 'a-very-long-port-name';
      await assert.rejects(kube.apply(d, { dryRun: true }), invalid('spec.template.spec.containers[0].ports[0].name', /Deployment "web" is invalid/));
    });

    test('a local PersistentVolume needs nodeAffinity; its source and node affinity never change', async () => {
      await assert.rejects(kube.apply(pv(undefined)), invalid('spec.nodeAffinity', /PersistentVolume ".*" is invalid/));
      await kube.apply(pv('node-a'));
      await assert.rejects(kube.apply(pv('node-b')), (e: unknown) => {
        invalid('spec.nodeAffinity', /field is immutable/)(e);
        assert.match((e as KompoxError).hint ?? '', /cannot change after creation.*never deletes the disk/);
        return true;
      });
      const moved = pv('node-a');
      (moved.spec as any).local.path = '/var/lib/elsewhere';
      await assert.rejects(kube.apply(moved), invalid('spec.persistentvolumesource', /immutable/));
    });

    test('an unbound PersistentVolumeClaim cannot change its request (no volume of its class exists to bind it)', async () => {
      // a class no PersistentVolume (not even the one of the test above) has: the PV binder leaves the claim Pending
      const pvc = (size: string): KubeObject => ({
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: { name: 'data', namespace: ns },
        spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'kompox-rules-unbound', volumeMode: 'Filesystem', resources: { requests: { storage: size } } },
      });
      await kube.apply(pvc('1Gi'));
      await assert.rejects(kube.apply(pvc('2Gi')), invalid('spec', /immutable after creation/));
      // the same claim again is fine (and writes nothing)
      const live = await kube.get({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'data', namespace: ns });
      const again = await kube.apply(pvc('1Gi'));
      assert.equal(again.metadata.resourceVersion, live!.metadata.resourceVersion);
    });

    test('a Deployment selector is immutable; re-applying the same Deployment changes nothing, even after server defaults', async () => {
      const first = await kube.apply(deployment({ app: 'web' }));
      await assert.rejects(kube.apply(deployment({ app: 'web2' })), invalid('spec.selector', /field is immutable/));
      // the Deployment controller writes its revision annotation and status: compare with the object once it has
      const ref = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: ns };
      await eventually(async () => {
        const d = await kube.get(ref);
        return d?.metadata.annotations?.['deployment.kubernetes.io/revision'] && (d.status as { observedGeneration?: number } | undefined)?.observedGeneration === first.metadata.generation;
      }, 'the Deployment controller to observe the Deployment');
      const live = (await kube.get(ref))!;
      const dry = await kube.apply(deployment({ app: 'web' }), { dryRun: true });
      assert.deepEqual(classify(dry, live, { dryRun: true }), { ref: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: ns }, action: 'unchanged', fields: [] });
      const again = await kube.apply(deployment({ app: 'web' }));
      assert.equal(again.metadata.resourceVersion, live.metadata.resourceVersion);
    });

    test('ConfigMap keys may not start with ".."; Ingress hosts are DNS names and backends name a valid Service', async () => {
      await assert.rejects(
        kube.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'keys', namespace: ns }, data: { '..data': 'x' } }),
        invalid('data[..data]', /ConfigMap "keys" is invalid/),
      );
      await assert.rejects(
        kube.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'dir-conf-.ssh', namespace: ns }, data: { a: 'x' } }),
        invalid('metadata.name', /ConfigMap "dir-conf-.ssh" is invalid/),
      );
      const ing: KubeObject = {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'Ingress',
        metadata: { name: 'web', namespace: ns },
        spec: {
          ingressClassName: 'traefik',
          rules: [{ host: 'Web_1.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }],
        },
      };
      await assert.rejects(kube.apply(ing, { dryRun: true }), invalid('spec.rules[0].host', /Ingress "web" is invalid/));
    });
  });
}

if (process.env.KOMPOX_TEST_KUBECONFIG) {
  serverRules('real cluster', async () => ({
    kubeconfigPath: process.env.KOMPOX_TEST_KUBECONFIG!,
    context: process.env.KOMPOX_TEST_CONTEXT,
    teardown: async () => {},
  }));
} else {
  test('API server validation (real cluster)', { skip: 'KOMPOX_TEST_KUBECONFIG is not set' }, () => {});
}

serverRules('fake API server', async () => {
  const fake: FakeKube = await startFakeKube();
  return { kubeconfigPath: fake.kubeconfigPath, teardown: () => fake.close() };
});

// ---- what our generators emit ----

function resourceOf(o: KubeObject) {
  return BUILTIN_RESOURCES.find((r) => groupVersion(r) === o.apiVersion && r.kind === o.kind);
}

function assertValid(objects: KubeObject[], where: string): number {
  let checked = 0;
  for (const o of objects) {
    const r = resourceOf(o);
    if (!r) continue; // custom resources (HelmChartConfig): schema only
    const causes = validateObject(r, o as Record<string, unknown>);
    assert.deepEqual(causes, [], `${where}: ${invalidMessage(o.kind, o.metadata.name, causes)}`);
    checked++;
  }
  return checked;
}

function docs(path: string): KubeObject[] {
  return parseAllDocuments(readFileSync(path, 'utf8'))
    .map((d) => d.toJS() as KubeObject)
    .filter(Boolean);
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('every object of the converter and ingress golden fixtures passes the API server validation', () => {
  let checked = 0;
  const convert = join(ROOT, 'test/convert/fixtures');
  for (const name of readdirSync(convert).sort()) {
    const f = join(convert, name, 'expected.yaml');
    if (existsSync(f)) checked += assertValid(docs(f), f);
  }
  const ingress = join(ROOT, 'test/ingress/fixtures');
  for (const name of readdirSync(ingress).filter((n) => n.endsWith('.yaml'))) checked += assertValid(docs(join(ingress, name)), name);
  assert.ok(checked > 50, `only ${checked} objects checked`);
});

test('an app whose name starts with a digit and binds dot-directories converts to objects the API server accepts', async () => {
  const { loadConfig, requireApp } = await import('../../src/config/index.js');
  const { loadDir } = await import('../support/source.js');
  const { buildAppManifest } = await import('../../src/usecases/app-manifest.js');
  const dir = mkdtempSync(join(tmpdir(), 'kompox-rules-'));
  try {
    mkdirSync(join(dir, 'conf/.ssh'), { recursive: true });
    writeFileSync(join(dir, 'conf/.ssh/id'), 'a\n');
    writeFileSync(join(dir, 'conf/.env.local'), 'b\n');
    writeFileSync(join(dir, 'conf/..data'), 'c\n');
    writeFileSync(
      join(dir, 'compose.yml'),
      [
        'services:',
        '  web:',
        '    image: nginx:1.27',
        '    ports: ["80:80", "8443:443"]',
        '    volumes:',
        '      - ./conf/.ssh:/etc/ssh-extra:ro',
        '      - ./conf/.env.local:/etc/app.env:ro',
        '      - ./conf/..data:/etc/data.txt:ro',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'kompoxops.yml'),
      [
        'version: 1',
        'service: {name: ops}',
        'provider: {name: prov1, driver: aks}',
        'cluster:',
        '  name: c1',
        '  domain: example.com',
        '  auth: {type: kubectl}',
        'app:',
        '  name: 2048-game',
        '  compose: compose.yml',
        '  ingress: {http_80: game.example.com}',
        '',
      ].join('\n'),
    );
    const ops = await loadConfig(join(dir, 'kompoxops.yml'));
    const ctx = requireApp(ops);
    const loaded = await loadDir(ctx.app.projectDir!, { files: [ctx.app.composePath!], env: {} });
    const { objects } = await buildAppManifest(ctx, loaded, { disks: {}, volumes: (await import('../support/volumes.js')).volumeInputs(ctx) });
    assert.ok(assertValid(objects, '2048-game') >= 6);
    const svc = objects.find((o) => o.kind === 'Service')!;
    assert.equal(svc.metadata.name, 'app-2048-game');
    for (const ing of objects.filter((o) => o.kind === 'Ingress')) {
      for (const rule of (ing.spec as any).rules) assert.equal(rule.http.paths[0].backend.service.name, 'app-2048-game');
    }
    const cms = objects.filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name);
    assert.ok(cms.some((n) => n.startsWith('dir-conf.ssh-')), cms.join(', '));
    assert.ok(cms.some((n) => n.startsWith('file-conf.env.local-')), cms.join(', '));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
