// Unit tests of the pure converter, on compose models built in memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkServerRules, convert, find, makeCtx, makeLoaded, podSpec, textFile, validateObjects } from './helpers.js';
import { appNamespace, pvcName, pvName } from '../../src/domain/names.js';
import { HELPER_IMAGE } from '../../src/domain/images.js';

const ctx = makeCtx();
const ns = appNamespace(ctx);

test('objects come in apply order, validate against the API schema, and are deterministic', () => {
  const loaded = makeLoaded({
    services: {
      web: { image: 'nginx:1', ports: [{ target: 80, published: '80', protocol: 'tcp' }], volumes: [{ type: 'volume', source: 'data', target: '/data' }] },
      db: { image: 'postgres:16', expose: ['5432'], volumes: [{ type: 'volume', source: 'db-data', target: '/var/lib/postgresql/data' }] },
    },
    volumes: { data: {}, 'db-data': {} },
  });
  const a = convert(ctx, loaded);
  const b = convert(ctx, loaded);
  assert.deepEqual(a.errors, []);
  assert.deepEqual(a.objects, b.objects);
  validateObjects(a.objects);
  checkServerRules(a.objects);
  assert.deepEqual(
    a.objects.map((o) => o.kind),
    ['Namespace', 'NetworkPolicy', 'PersistentVolume', 'PersistentVolumeClaim', 'Deployment', 'Service', 'Ingress'],
  );
  for (const o of a.objects) {
    assert.equal(o.metadata.labels?.['app.kubernetes.io/managed-by'], 'kompox', `${o.kind} has labels`);
    if (!['Namespace', 'PersistentVolume'].includes(o.kind)) assert.equal(o.metadata.namespace, ns);
  }
  const spec = podSpec(a.objects);
  assert.deepEqual(spec.containers.map((c: { name: string }) => c.name), ['db', 'web']);
  assert.equal(spec.enableServiceLinks, false);
  const nsObj = find(a.objects, 'Namespace');
  assert.equal(nsObj.metadata.annotations?.['kompox.dev/app'], 'ops/prov1/clu1/myapp');
  assert.equal(nsObj.metadata.annotations?.['kompox.dev/disk-current-id'], undefined);
});

test('named volumes become subPaths of the default disk; the init container creates them', () => {
  const r = convert(ctx, makeLoaded({
    services: { db: { image: 'postgres:16', user: '999:999', volumes: [{ type: 'volume', source: 'db-data', target: '/var/lib/postgresql/data', volume: { subpath: 'pg' } }] } },
    volumes: { 'db-data': {} },
  }));
  const spec = podSpec(r.objects);
  assert.deepEqual(spec.containers[0].volumeMounts, [{ name: 'disk-default', mountPath: '/var/lib/postgresql/data', subPath: 'db-data/pg' }]);
  assert.equal(spec.initContainers[0].image, HELPER_IMAGE);
  assert.match(spec.initContainers[0].command[2], /mkdir -p '\/kompox\/default\/db-data\/pg'\nchown 999:999/);
  assert.equal(spec.volumes[0].persistentVolumeClaim.claimName, pvcName('default', undefined));
});

test('a disk swap changes the PV, the PVC and the claimName', () => {
  const loaded = makeLoaded({ services: { a: { image: 'x', volumes: [{ type: 'volume', source: 'v', target: '/v' }] } }, volumes: { v: {} } });
  const disk = { name: 'd1', volume: 'default', id: '/subscriptions/s/disks/d1', sizeGiB: 64, createdAt: '2026-01-01T00:00:00Z', tags: {} };
  const r = convert(ctx, loaded, { disks: { default: disk } });
  const pv = find(r.objects, 'PersistentVolume');
  assert.equal(pv.metadata.name, pvName(ns, 'default', disk.id));
  assert.equal(pv.metadata.annotations?.['kompox.dev/placeholder'], undefined);
  assert.deepEqual((pv.spec as any).csi, { driver: 'disk.csi.azure.com', volumeHandle: disk.id, fsType: 'ext4' });
  assert.deepEqual((pv.spec as any).capacity, { storage: '64Gi' });
  assert.equal((find(r.objects, 'PersistentVolumeClaim').spec as any).volumeName, pv.metadata.name);
  assert.equal(podSpec(r.objects).volumes[0].persistentVolumeClaim.claimName, pvcName('default', disk.id));
  assert.ok(!r.warnings.some((w) => w.message.includes('placeholder')));
});

test('environment wins over env_file; secret-looking env_file keys go to a Secret; $ is escaped', () => {
  const r = convert(ctx, makeLoaded(
    { services: { app: { image: 'x', environment: { API_TOKEN: 'from-file', DB_PASSWORD: 'plain-wins', PRICE: '$(HOME)', U: null } } } },
    { app: ['API_TOKEN'] },
  ));
  const env = podSpec(r.objects).containers[0].env;
  assert.deepEqual(env, [
    { name: 'API_TOKEN', valueFrom: { secretKeyRef: { name: 'app-env', key: 'API_TOKEN' } } },
    { name: 'DB_PASSWORD', value: 'plain-wins' },
    { name: 'PRICE', value: '$$(HOME)' },
  ]);
  const s = find(r.objects, 'Secret', 'app-env');
  assert.deepEqual(s.data, { API_TOKEN: Buffer.from('from-file').toString('base64') });
  assert.ok(r.warnings.some((w) => w.message.includes('U has no value')));
});

test('rejected bind mounts name the reason', () => {
  const r = convert(ctx, makeLoaded({
    services: {
      a: {
        image: 'x',
        volumes: [
          { type: 'bind', source: '/var/run/docker.sock', target: '/var/run/docker.sock' },
          { type: 'bind', source: '/home/u/data', target: '/data' },
          { type: 'bind', source: '/etc/hosts', target: '/h' },
          { type: 'bind', source: '/proj/missing', target: '/m' },
        ],
      },
    },
  }));
  const msgs = r.errors.map((e) => e.message);
  assert.equal(msgs.length, 4);
  assert.match(msgs[0]!, /Docker socket/);
  assert.match(msgs[1]!, /home directory/);
  assert.match(msgs[2]!, /outside the project directory/);
  assert.match(msgs[3]!, /\.\/missing does not exist/);
});

test('bind file → ConfigMap mounted read-only via subPath; config hash changes with content', () => {
  const loaded = makeLoaded({ services: { web: { image: 'nginx', volumes: [{ type: 'bind', source: '/proj/conf/nginx.conf', target: '/etc/nginx/nginx.conf', read_only: true }] } } });
  const r1 = convert(ctx, loaded, { files: { '/proj/conf/nginx.conf': textFile('a') } });
  const r2 = convert(ctx, loaded, { files: { '/proj/conf/nginx.conf': textFile('b') } });
  assert.deepEqual(r1.warnings.filter((w) => w.service), []);
  const cm = find(r1.objects, 'ConfigMap');
  assert.deepEqual(cm.data, { 'nginx.conf': 'a' });
  const m = podSpec(r1.objects).containers[0].volumeMounts[0];
  assert.deepEqual(m, { name: 'file-conf-nginx-conf', mountPath: '/etc/nginx/nginx.conf', subPath: 'nginx.conf', readOnly: true });
  const hash = (r: typeof r1) => (find(r.objects, 'Deployment').spec as any).template.metadata.annotations['kompox.dev/config-hash'];
  assert.notEqual(hash(r1), hash(r2));
});

test('two services on the same container port is an error naming both', () => {
  const r = convert(ctx, makeLoaded({
    services: { a: { image: 'x', expose: ['8080'] }, b: { image: 'y', ports: [{ target: 8080, published: '9090', protocol: 'tcp' }] } },
  }));
  assert.equal(r.errors.length, 1);
  assert.match(r.errors[0]!.message, /"a" and "b" both use container port 8080\/tcp/);
});

test('build-only service is an error saying to add image', () => {
  const r = convert(ctx, makeLoaded({ services: { api: { build: { context: '/proj/api' } } } }));
  assert.match(r.errors[0]!.message, /service "api" has build: but no image:/);
  assert.match(r.errors[0]!.hint!, /Add image:/);
});

test('docs/conversion.md carries exactly the policy table of src/convert/policy.ts', async () => {
  const { readFileSync, writeFileSync } = await import('node:fs');
  const { renderPolicyTable, POLICY_TABLE_START, POLICY_TABLE_END } = await import('../../src/convert/policy-doc.js');
  const path = new URL('../../docs/conversion.md', import.meta.url);
  const doc = readFileSync(path, 'utf8');
  const a = doc.indexOf(POLICY_TABLE_START);
  const b = doc.indexOf(POLICY_TABLE_END);
  assert.ok(a >= 0 && b > a, 'policy table markers missing in docs/conversion.md');
  const current = doc.slice(a + POLICY_TABLE_START.length, b).trim();
  if (process.env.UPDATE_GOLDEN === '1') {
    writeFileSync(path, doc.slice(0, a + POLICY_TABLE_START.length) + '\n' + renderPolicyTable() + '\n' + doc.slice(b));
    return;
  }
  assert.equal(current, renderPolicyTable());
});

test('the server-rule checker used by the golden and corpus tests catches broken objects', () => {
  const r = convert(ctx, makeLoaded({ services: { a: { image: 'x', environment: { A: '1' }, volumes: [{ type: 'volume', source: 'v', target: '/v' }] } }, volumes: { v: {} } }));
  checkServerRules(r.objects);
  const broken = JSON.parse(JSON.stringify(r.objects));
  podSpec(broken).containers[0].env.push({ name: 'A', value: '2' });
  assert.throws(() => checkServerRules(broken), /duplicate env: A/);
  const unbound = JSON.parse(JSON.stringify(r.objects));
  (find(unbound, 'PersistentVolumeClaim').spec as any).volumeName = 'other';
  assert.throws(() => checkServerRules(unbound));
  const bad = JSON.parse(JSON.stringify(r.objects));
  podSpec(bad).containers[0].volumeMounts[0].subPath = '../x';
  assert.throws(() => checkServerRules(bad), /subPath/);
});

test('a missing short-syntax bind directory becomes an empty directory on the disk (as docker compose creates it); config-like or read-only ones stay errors', () => {
  const created = { create_host_path: true };
  const r = convert(ctx, makeLoaded({
    services: {
      a: {
        image: 'x',
        volumes: [
          { type: 'bind', source: '/proj/data/gitea', target: '/data', bind: created },
          { type: 'bind', source: '/proj/conf', target: '/conf', read_only: true, bind: created },
          { type: 'bind', source: '/proj/nginx.conf', target: '/etc/nginx/nginx.conf', bind: created },
          { type: 'bind', source: '/proj/long', target: '/long' },
        ],
      },
    },
  }));
  const errors = r.errors.map((e) => e.message);
  assert.equal(errors.length, 3, errors.join('\n'));
  assert.ok(errors.some((m) => m.includes('./conf does not exist')));
  assert.ok(errors.some((m) => m.includes('./nginx.conf does not exist')));
  assert.ok(errors.some((m) => m.includes('./long does not exist')));
  assert.ok(r.warnings.some((w) => /\.\/data\/gitea does not exist: \/data starts as an empty directory on the app disk/.test(w.message)));
  assert.ok(!errors.some((m) => m.includes('data/gitea')));
});

test('the missing-directory mount is a subPath of the default disk, created by the init step', () => {
  const r = convert(ctx, makeLoaded({
    services: { a: { image: 'x', volumes: [{ type: 'bind', source: '/proj/data/gitea', target: '/data', bind: { create_host_path: true } }] } },
  }));
  assert.deepEqual(r.errors, []);
  const spec = podSpec(r.objects);
  const mount = spec.containers[0].volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/data');
  assert.equal(mount.subPath, 'data/gitea');
  const init = spec.initContainers.find((c: { name: string }) => c.name === 'kompox-init');
  assert.match(JSON.stringify(init.command ?? init.args), /data\/gitea/);
  validateObjects(r.objects);
  checkServerRules(r.objects);
});

test('the helper image: KOMPOX_HELPER_IMAGE replaces it, KOMPOX_REGISTRY_MIRROR prefixes it; the compose images are never rewritten', () => {
  const loaded = makeLoaded({
    services: {
      db: { image: 'docker.io/library/postgres:16', volumes: [{ type: 'volume', source: 'data', target: '/data' }] },
      web: { image: 'nginx:1.27' },
    },
    volumes: { data: {} },
  });
  const images = (settings: Record<string, string>) => {
    const spec = podSpec(convert(makeCtx({ cluster: { settings } }), loaded).objects);
    return { init: spec.initContainers[0].image as string, app: (spec.containers as { image: string }[]).map((c) => c.image) };
  };
  assert.deepEqual(images({}), { init: HELPER_IMAGE, app: ['docker.io/library/postgres:16', 'nginx:1.27'] });
  assert.deepEqual(images({ KOMPOX_REGISTRY_MIRROR: 'mirror.example.com/dockerhub' }), {
    init: 'mirror.example.com/dockerhub/library/busybox:1.37.0@sha256:9db7b59979c38555a39def84a31fb98b5296952f9e3afd4f6f11f05b07adfab0',
    app: ['docker.io/library/postgres:16', 'nginx:1.27'],
  });
  assert.deepEqual(images({ KOMPOX_REGISTRY_MIRROR: 'mirror.example.com', KOMPOX_HELPER_IMAGE: 'tools.example.com/busybox:1.37' }).init, 'tools.example.com/busybox:1.37');
});
