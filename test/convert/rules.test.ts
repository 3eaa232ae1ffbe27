// Individual conversion rules, on in-memory compose models.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convert, find, inDir, makeCtx, makeLoaded, podSpec } from './helpers.js';
import { buildAppManifest, gatherFacts } from '../../src/usecases/app-manifest.js';
import { volumeInputs } from '../support/volumes.js';
import { DiagnosticsError } from '../../src/domain/errors.js';
import type { ServiceConfig } from '../../src/compose/model.js';

const one = (svc: ServiceConfig, app = {}) => convert(makeCtx({ app }), makeLoaded({ services: { s: svc } }));

test('policy: privileged false is fine, true is an error; unknown keys warn; x- keys are skipped', () => {
  assert.deepEqual(one({ image: 'x', privileged: false }).errors, []);
  const r = one({ image: 'x', privileged: true, frobnicate: 1, 'x-note': 'hi' });
  assert.match(r.errors[0]!.message, /privileged is not allowed/);
  assert.ok(r.warnings.some((w) => /frobnicate is not supported/.test(w.message)));
  assert.ok(!r.warnings.some((w) => /x-note/.test(w.message)));
});

test('network_mode: service:x is fine, host is an error', () => {
  assert.deepEqual(convert(makeCtx(), makeLoaded({ services: { a: { image: 'x' }, b: { image: 'y', network_mode: 'service:a' } } })).errors, []);
  assert.match(one({ image: 'x', network_mode: 'host' }).errors[0]!.message, /network_mode: host is not allowed/);
});

test('probes: CMD argv, intervals rounded up, NONE and disable give no probes', () => {
  const r = one({ image: 'x', healthcheck: { test: ['CMD', 'pg_isready'], interval: '2500ms', timeout: '1s', retries: 2 } });
  const c = podSpec(r.objects).containers[0];
  assert.deepEqual(c.readinessProbe, { exec: { command: ['pg_isready'] }, periodSeconds: 3, timeoutSeconds: 1, failureThreshold: 2 });
  assert.deepEqual(c.livenessProbe, c.readinessProbe);
  assert.equal(c.startupProbe, undefined);
  for (const hc of [{ test: ['NONE'] }, { test: ['CMD', 'true'], disable: true }]) {
    const k = podSpec(one({ image: 'x', healthcheck: hc }).objects).containers[0];
    assert.equal(k.readinessProbe, undefined);
    assert.equal(k.livenessProbe, undefined);
  }
  assert.match(one({ image: 'x', healthcheck: { test: ['CMD', 'true'], interval: 'soon' } }).errors[0]!.message, /healthcheck.interval "soon" is not a duration/);
});

test('resources: the app budget is split over containers without their own values', () => {
  const r = convert(makeCtx({ app: { resources: { cpu: '1', memory: '1Gi' } } }), makeLoaded({
    services: { a: { image: 'x', mem_limit: '256m' }, b: { image: 'y' }, c: { image: 'z' } },
  }));
  const cs = podSpec(r.objects).containers;
  assert.deepEqual(cs[0].resources, { limits: { memory: '256Mi' }, requests: { cpu: '333m' } });
  assert.deepEqual(cs[1].resources, { limits: { memory: '384Mi' }, requests: { cpu: '333m', memory: '384Mi' } });
  assert.deepEqual(cs[2].resources, cs[1].resources);
  assert.match(convert(makeCtx({ app: { resources: { cpu: 'lots' } } }), makeLoaded({ services: { a: { image: 'x' } } })).errors[0]!.message, /app.resources.cpu "lots"/);
});

test('hostAliases: every service name, container_name and alias resolves to 127.0.0.1', () => {
  const r = convert(makeCtx(), makeLoaded({
    services: {
      web: { image: 'x', container_name: 'Web_Front', networks: { n: { aliases: ['www'] } }, extra_hosts: ['db.local:10.0.0.5', 'gw:host-gateway'] },
      db: { image: 'y' },
    },
  }));
  assert.deepEqual(podSpec(r.objects).hostAliases, [
    { ip: '10.0.0.5', hostnames: ['db.local'] },
    { ip: '127.0.0.1', hostnames: ['db', 'web', 'www'] },
  ]);
  assert.ok(r.warnings.some((w) => /host-gateway/.test(w.message)));
});

test('ingress: host keyed by the published port; custom host on a non-HTTP port makes it HTTP', () => {
  const r = convert(makeCtx({ app: { ingress: { http_2222: 'git-ssh-web.example.com' } } }), makeLoaded({
    services: { web: { image: 'x', ports: [{ target: 3000, published: '8080', protocol: 'tcp' }, { target: 22, published: '2222', protocol: 'tcp' }] } },
  }));
  assert.deepEqual(r.errors, []);
  const def = find(r.objects, 'Ingress', 'myapp-default');
  assert.deepEqual((def.spec as any).rules.map((x: any) => [x.host, x.http.paths[0].backend.service.port.number]), [
    ['myapp-2222.clu1.example.dev', 2222],
    ['myapp-8080.clu1.example.dev', 8080],
  ]);
  assert.equal(def.metadata.annotations?.['traefik.ingress.kubernetes.io/router.tls.certresolver'], undefined);
  const custom = find(r.objects, 'Ingress', 'myapp-custom');
  assert.equal(custom.metadata.annotations?.['traefik.ingress.kubernetes.io/router.tls.certresolver'], 'letsencrypt');
  assert.equal((custom.spec as any).ingressClassName, 'traefik');
  assert.deepEqual((find(r.objects, 'Service').spec as any).ports.map((p: any) => p.name), ['p2222-tcp', 'p8080-tcp']);
});

test('ACME staging selects the staging resolver on the custom Ingress', () => {
  const r = convert(makeCtx({ app: { ingress: { http_80: 'www.example.com' } }, cluster: { settings: { ACME_STAGING: 'true' } } }), makeLoaded({
    services: { web: { image: 'x', ports: [{ target: 80, published: '80', protocol: 'tcp' }] } },
  }));
  assert.equal(find(r.objects, 'Ingress', 'myapp-custom').metadata.annotations?.['traefik.ingress.kubernetes.io/router.tls.certresolver'], 'letsencrypt-staging');
});

test('volume.subpath must stay inside the volume', () => {
  const r = convert(makeCtx(), makeLoaded({ services: { a: { image: 'x', volumes: [{ type: 'volume', source: 'v', target: '/v', volume: { subpath: '../etc' } }] } }, volumes: { v: {} } }));
  assert.match(r.errors[0]!.message, /volume.subpath "\.\.\/etc" must be a relative path/);
});

test('stop_grace_period: the largest over services; shm_size and tmpfs become memory emptyDirs', () => {
  const r = convert(makeCtx(), makeLoaded({ services: { a: { image: 'x', stop_grace_period: '45s', shm_size: '1g', tmpfs: ['/run:size=8m'] }, b: { image: 'y', stop_grace_period: '1m30s' } } }));
  const spec = podSpec(r.objects);
  assert.equal(spec.terminationGracePeriodSeconds, 90);
  assert.deepEqual(spec.volumes.map((v: any) => v.emptyDir), [{ medium: 'Memory', sizeLimit: '1Gi' }, { medium: 'Memory', sizeLimit: '8Mi' }]);
  assert.deepEqual(spec.containers[0].volumeMounts.map((m: any) => m.mountPath), ['/dev/shm', '/run']);
});

test('buildAppManifest reads real files: directory entries, file content, oversize files; throws every error at once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kompox-convert-'));
  try {
    mkdirSync(join(dir, 'data'));
    writeFileSync(join(dir, 'app.conf'), 'x=1\n');
    writeFileSync(join(dir, 'big.bin'), Buffer.alloc(1_100_000));
    const loaded = inDir(makeLoaded({
      services: {
        a: {
          image: 'x',
          volumes: [
            { type: 'bind', source: join(dir, 'data'), target: '/data' },
            { type: 'bind', source: join(dir, 'app.conf'), target: '/etc/app.conf', read_only: true },
            { type: 'bind', source: join(dir, 'big.bin'), target: '/big.bin' },
            { type: 'bind', source: '/etc/passwd', target: '/p' },
          ],
        },
      },
    }), dir, { homeDir: '/nonexistent-home' });
    const facts = await gatherFacts(loaded);
    assert.deepEqual(facts.files[join(dir, 'data')], { kind: 'dir', entries: 0 });
    assert.equal(new TextDecoder().decode(facts.files[join(dir, 'app.conf')]!.content), 'x=1\n');
    assert.equal(facts.files[join(dir, 'big.bin')]!.content, undefined);
    assert.equal(facts.files['/etc/passwd'], undefined, 'host paths are not read');
    await assert.rejects(buildAppManifest(makeCtx({ app: { projectDir: dir } }), loaded, { volumes: volumeInputs(makeCtx({ app: { projectDir: dir } })) }), (e: unknown) => {
      assert.ok(e instanceof DiagnosticsError);
      assert.equal(e.diagnostics.length, 2);
      assert.match(e.message, /big\.bin is 1100000 bytes/);
      assert.match(e.message, /\/etc\/passwd is a host path/);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an expose port already published by another service is named in a warning; bad file modes are errors', () => {
  const r = convert(makeCtx(), makeLoaded({
    services: { a: { image: 'x', ports: [{ target: 80, published: '8080', protocol: 'tcp' }] }, b: { image: 'y', expose: ['8080'] } },
  }));
  assert.ok(r.warnings.some((w) => /service "b": expose 8080\/tcp is not added to the Service: port 8080 there is already published by service "a"/.test(w.message)));
  const m = convert(makeCtx(), makeLoaded({ services: { a: { image: 'x', secrets: [{ source: 's', mode: 1000 }] } }, secrets: { s: { content: 'x' } } }));
  assert.match(m.errors[0]!.message, /mode 1000 is not a file mode/);
});

test('an app volume nothing mounts is named in a warning (its disk is still created)', () => {
  const r = convert(makeCtx({ app: { volumes: [{ name: 'default', options: {} }, { name: 'spare', options: {} }] } }), makeLoaded({
    services: { a: { image: 'x', volumes: [{ type: 'volume', source: 'd', target: '/d' }] } }, volumes: { d: {} },
  }));
  assert.deepEqual(r.warnings.filter((w) => /not mounted/.test(w.message)).map((w) => w.message), ['app volume spare is not mounted by any service; app deploy still creates a disk for it']);
  assert.equal(r.objects.filter((o) => o.kind === 'PersistentVolume').length, 2);
});

test('a bind source that links out of the project is rejected and not read', async () => {
  const { symlinkSync } = await import('node:fs');
  const dir = mkdtempSync(join(tmpdir(), 'kompox-convert-'));
  const outside = mkdtempSync(join(tmpdir(), 'kompox-outside-'));
  try {
    writeFileSync(join(outside, 'secret.txt'), 'do not read');
    symlinkSync(join(outside, 'secret.txt'), join(dir, 'app.conf'));
    const loaded = inDir(makeLoaded({ services: { a: { image: 'x', volumes: [{ type: 'bind', source: join(dir, 'app.conf'), target: '/etc/app.conf', read_only: true }] } } }), dir);
    const facts = await gatherFacts(loaded);
    assert.equal(facts.files[join(dir, 'app.conf')]!.content, undefined);
    await assert.rejects(buildAppManifest(makeCtx({ app: { projectDir: dir } }), loaded, { volumes: volumeInputs(makeCtx({ app: { projectDir: dir } })) }), /\.\/app\.conf is a symbolic link to .*secret\.txt, outside the project directory/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  }
});

test('a read-only bind directory becomes a ConfigMap; a too large one is an error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kompox-convert-'));
  try {
    mkdirSync(join(dir, 'conf/sub'), { recursive: true });
    writeFileSync(join(dir, 'conf/a.conf'), 'a');
    writeFileSync(join(dir, 'conf/sub/b.conf'), 'b');
    mkdirSync(join(dir, 'big'));
    writeFileSync(join(dir, 'big/x.bin'), Buffer.alloc(1_200_000));
    const loaded = (vols: { source: string; target: string }[]) =>
      inDir(makeLoaded({ services: { a: { image: 'x', volumes: vols.map((v) => ({ type: 'bind' as const, read_only: true, ...v })) } } }), dir);
    const ok = await buildAppManifest(makeCtx({ app: { projectDir: dir } }), loaded([{ source: join(dir, 'conf'), target: '/etc/app' }]), { volumes: volumeInputs(makeCtx({ app: { projectDir: dir } })) });
    const cm = find(ok.objects, 'ConfigMap', 'dir-conf');
    assert.equal((cm.data as Record<string, string>)['a.conf'], 'a');
    const vol = podSpec(ok.objects).volumes.find((v: any) => v.configMap);
    assert.deepEqual(vol.configMap.items.map((i: any) => i.path), ['a.conf', 'sub/b.conf']);
    assert.deepEqual(podSpec(ok.objects).containers[0].volumeMounts, [{ name: 'dir-conf', mountPath: '/etc/app', readOnly: true }]);
    await assert.rejects(
      buildAppManifest(makeCtx({ app: { projectDir: dir } }), loaded([{ source: join(dir, 'big'), target: '/big' }]), { volumes: volumeInputs(makeCtx({ app: { projectDir: dir } })) }),
      /read-only bind directory \.\/big holds 1200000 bytes/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('volume driver and driver_opts are named in a warning', () => {
  const r = convert(makeCtx(), makeLoaded({
    services: { a: { image: 'x', volumes: [{ type: 'volume', source: 'nfs', target: '/n' }] } },
    volumes: { nfs: { driver: 'local', driver_opts: { type: 'nfs', o: 'addr=10.0.0.1', device: ':/export' } } },
  }));
  assert.ok(r.warnings.some((w) => /volume nfs: driver and driver_opts are ignored/.test(w.message)));
});

test('NetworkPolicy admits the ingress controller namespace (K3s: kube-system, where its Traefik runs)', () => {
  const from = (driver: 'aks' | 'k3s', namespace: string) => {
    const r = convert(makeCtx({ driver, cluster: { ingress: { controller: 'traefik', namespace } } }), makeLoaded({ services: { a: { image: 'x' } } }));
    return (find(r.objects, 'NetworkPolicy').spec as any).ingress[0].from;
  };
  assert.deepEqual(from('aks', 'edge'), [{ podSelector: {} }, { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'edge' } } }]);
  assert.deepEqual(from('k3s', 'traefik')[1], { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } });
});

test('init container quotes directory names for the shell', () => {
  const r = convert(makeCtx(), makeLoaded({ services: { a: { image: 'x', volumes: [{ type: 'bind', source: "/proj/it's data", target: '/d' }] } } }), {
    files: { "/proj/it's data": { kind: 'dir', entries: 0 } },
  });
  assert.deepEqual(r.errors, []);
  assert.equal(podSpec(r.objects).initContainers[0].command[2], "set -e\nmkdir -p '/kompox/default/it'\\''s data'");
});
