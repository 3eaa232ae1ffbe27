// depends_on → start order inside the pod: sidecar init containers
// (restartPolicy: Always), run-to-completion init containers, topological
// order, the health gate as startupProbe, resources by Kubernetes' effective
// request rule, and the KOMPOX_SIDECARS=false fallback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkServerRules, convert, find, makeCtx, makeLoaded, podSpec, validateObjects } from './helpers.js';
import type { ComposeProject, ServiceDependency } from '../../src/compose/model.js';
import type { ConvertResult } from '../../src/convert/index.js';

type Services = ComposeProject['services'];
const dep = (condition: ServiceDependency['condition'], required = true): ServiceDependency => ({ condition, required });

function run(services: Services, over: Parameters<typeof makeCtx>[0] = {}): ConvertResult {
  const r = convert(makeCtx(over), makeLoaded({ services }));
  if (r.errors.length === 0) {
    validateObjects(r.objects);
    checkServerRules(r.objects);
  }
  return r;
}

/** [name, restartPolicy] of every init container, and the regular containers' names. */
function layout(r: ConvertResult): { init: [string, string | null][]; containers: string[] } {
  const spec = podSpec(r.objects);
  return {
    init: (spec.initContainers ?? []).map((c: { name: string; restartPolicy?: string }) => [c.name, c.restartPolicy ?? null]),
    containers: spec.containers.map((c: { name: string }) => c.name),
  };
}

function initC(r: ConvertResult, name: string) {
  const c = (podSpec(r.objects).initContainers ?? []).find((x: { name: string }) => x.name === name);
  assert.ok(c, `no init container ${name}`);
  return c;
}

const PG = { test: ['CMD', 'pg_isready'], interval: '3s', retries: 5, start_period: '30s' };

test('service_healthy: the dependency is a sidecar whose healthcheck is also its startupProbe; the dependent stays a container', () => {
  const r = run({ web: { image: 'w', depends_on: { db: dep('service_healthy') } }, db: { image: 'postgres:16', healthcheck: PG } });
  assert.deepEqual(r.errors, []);
  assert.deepEqual(layout(r), { init: [['db', 'Always']], containers: ['web'] });
  const db = initC(r, 'db');
  // period = interval (no start_interval); failures cover start_period + retries × interval = 30 + 15 = 45s
  assert.deepEqual(db.startupProbe, { exec: { command: ['pg_isready'] }, periodSeconds: 3, timeoutSeconds: 30, failureThreshold: 15 });
  assert.deepEqual(db.readinessProbe, { exec: { command: ['pg_isready'] }, periodSeconds: 3, timeoutSeconds: 30, failureThreshold: 5 });
  assert.deepEqual(db.livenessProbe, db.readinessProbe);
  assert.ok(!r.warnings.some((w) => /depends_on/.test(w.message)), r.warnings.map((w) => w.message).join('\n'));
});

test('service_healthy with start_interval: the startupProbe checks at that pace and still covers the whole budget', () => {
  const r = run({ web: { image: 'w', depends_on: { db: dep('service_healthy') } }, db: { image: 'd', healthcheck: { ...PG, start_interval: '1s' } } });
  assert.deepEqual(initC(r, 'db').startupProbe, { exec: { command: ['pg_isready'] }, periodSeconds: 1, timeoutSeconds: 30, failureThreshold: 45 });
});

test('service_started: a sidecar without startupProbe (ordering only); its own start_period probe is kept', () => {
  const r = run({
    web: { image: 'w', depends_on: { cache: dep('service_started'), slow: dep('service_started') } },
    cache: { image: 'redis:7' },
    slow: { image: 's', healthcheck: { test: ['CMD', 'true'], start_period: '10s' } },
  });
  assert.deepEqual(layout(r), { init: [['cache', 'Always'], ['slow', 'Always']], containers: ['web'] });
  assert.equal(initC(r, 'cache').startupProbe, undefined);
  assert.equal(initC(r, 'slow').startupProbe.periodSeconds, 5, 'start_period keeps its usual startupProbe');
});

test('chains start in topological order (a → b → c), ties broken by name, after kompox-init', () => {
  const r = run(
    {
      a: { image: 'a', depends_on: { b: dep('service_started'), z: dep('service_started') }, volumes: [{ type: 'volume', source: 'data', target: '/data' }] },
      b: { image: 'b', depends_on: { c: dep('service_healthy') } },
      c: { image: 'c', healthcheck: { test: ['CMD', 'c-ok'] } },
      z: { image: 'z' },
      lone: { image: 'l' },
    },
  );
  assert.deepEqual(r.errors, []);
  // c and z are ready first (no deps): c < z by name; b needs c, so it comes after c; z < b? no: b becomes ready after c and wins over z by name
  assert.deepEqual(layout(r), { init: [['kompox-init', null], ['c', 'Always'], ['b', 'Always'], ['z', 'Always']], containers: ['a', 'lone'] });
  assert.ok(initC(r, 'c').startupProbe);
  assert.equal(initC(r, 'b').startupProbe, undefined);
});

test('service_healthy on a dependency without a healthcheck test: ordered, warned naming both services', () => {
  const r = run({ web: { image: 'w', depends_on: { db: dep('service_healthy') } }, db: { image: 'd' } });
  assert.deepEqual(r.errors, []);
  assert.deepEqual(layout(r), { init: [['db', 'Always']], containers: ['web'] });
  assert.equal(initC(r, 'db').startupProbe, undefined);
  const w = r.warnings.filter((x) => /depends_on db \(service_healthy\)/.test(x.message));
  assert.equal(w.length, 1);
  assert.match(w[0]!.message, /service "web": depends_on db \(service_healthy\) is enforced as start order only: db has no healthcheck test/);
  assert.equal(w[0]!.service, 'web');
});

test('service_healthy on a dependency whose healthcheck is disabled: an error (compose fails too)', () => {
  for (const healthcheck of [{ disable: true, test: ['CMD', 'x'] }, { test: ['NONE'] }]) {
    const r = run({ web: { image: 'w', depends_on: { db: dep('service_healthy') } }, db: { image: 'd', healthcheck } });
    assert.equal(r.errors.length, 1, JSON.stringify(r.errors));
    assert.match(r.errors[0]!.message, /service "web": depends_on db \(service_healthy\), but db's healthcheck is disabled/);
    assert.match(r.errors[0]!.hint ?? '', /condition: service_started/);
  }
});

test('service_completed_successfully: a run-to-completion init container, after what it depends on, without probes or restart warning', () => {
  const r = run({
    web: { image: 'w', depends_on: { migrate: dep('service_completed_successfully'), db: dep('service_healthy') } },
    migrate: { image: 'm', restart: 'no', depends_on: { db: dep('service_healthy') }, healthcheck: { test: ['CMD', 'true'] } },
    db: { image: 'd', healthcheck: PG },
  });
  assert.deepEqual(r.errors, []);
  assert.deepEqual(layout(r), { init: [['db', 'Always'], ['migrate', null]], containers: ['web'] });
  const m = initC(r, 'migrate');
  for (const p of ['readinessProbe', 'livenessProbe', 'startupProbe']) assert.equal(m[p], undefined, p);
  assert.ok(r.warnings.some((w) => /"migrate": healthcheck is not used: migrate runs to completion/.test(w.message)));
  assert.ok(!r.warnings.some((w) => /"migrate": restart/.test(w.message)), 'restart: no is what a one-shot means');
});

test('a one-shot that publishes ports, or that another service wants healthy: warned with the reason', () => {
  const r = run({
    web: { image: 'w', depends_on: { setup: dep('service_completed_successfully') } },
    admin: { image: 'a', depends_on: { setup: dep('service_healthy') } },
    setup: { image: 's', ports: [{ target: 8080, published: '8080', protocol: 'tcp' }], healthcheck: { test: ['CMD', 'true'] } },
  });
  assert.deepEqual(r.errors, []);
  assert.deepEqual(layout(r), { init: [['setup', null]], containers: ['admin', 'web'] });
  assert.ok(r.warnings.some((w) => /service "setup" runs to completion before the app starts .* nothing listens on its ports/.test(w.message)));
  assert.ok(r.warnings.some((w) => w.service === 'admin' && /depends_on setup \(service_healthy\) cannot wait for health: "web" waits for setup to complete/.test(w.message)));
});

test('required: false dependencies are ordered the same way', () => {
  const r = run({ web: { image: 'w', depends_on: { db: dep('service_healthy', false) } }, db: { image: 'd', healthcheck: PG } });
  assert.deepEqual(layout(r), { init: [['db', 'Always']], containers: ['web'] });
  assert.ok(initC(r, 'db').startupProbe);
});

test('sidecars keep ports, env, mounts and resources; the Service still routes to their ports', () => {
  const r = run({
    web: { image: 'w', depends_on: { api: dep('service_started') }, ports: [{ target: 80, published: '80', protocol: 'tcp' }] },
    api: { image: 'a', environment: { MODE: 'x' }, ports: [{ target: 3000, published: '3000', protocol: 'tcp' }], volumes: [{ type: 'volume', source: 'data', target: '/data' }], mem_limit: '256m' },
  });
  assert.deepEqual(r.errors, []);
  const api = initC(r, 'api');
  assert.deepEqual(api.ports, [{ containerPort: 3000, protocol: 'TCP' }]);
  assert.deepEqual(api.env, [{ name: 'MODE', value: 'x' }]);
  assert.equal(api.volumeMounts[0].mountPath, '/data');
  assert.equal(api.resources.limits.memory, '256Mi');
  const svc = find(r.objects, 'Service') as unknown as { spec: { ports: { targetPort: number }[] } };
  assert.deepEqual(svc.spec.ports.map((p) => p.targetPort).sort(), [3000, 80]);
});

test('two services on the same port are still an error when one of them is a sidecar', () => {
  const r = run({
    web: { image: 'w', depends_on: { api: dep('service_started') }, expose: ['3000'] },
    api: { image: 'a', expose: ['3000'] },
  });
  assert.ok(r.errors.some((e) => /both use container port 3000\/tcp/.test(e.message)), JSON.stringify(r.errors));
});

function quantity(v: string | undefined): number {
  if (!v) return 0;
  const m = /^(\d+)(m|Mi|Gi)?$/.exec(v)!;
  return Number(m[1]) * ({ m: 1e-3, Mi: 1024 ** 2, Gi: 1024 ** 3 } as Record<string, number>)[m[2] ?? ''] || Number(m[1]);
}

/** Kubernetes' effective pod request: max(sum of containers + sidecars, each one-shot + the sidecars before it). */
function effective(r: ConvertResult, key: 'cpu' | 'memory'): number {
  const spec = podSpec(r.objects);
  const req = (c: { resources?: { requests?: Record<string, string> } }) => quantity(c.resources?.requests?.[key]);
  let sidecars = 0;
  let initMax = 0;
  for (const c of spec.initContainers ?? []) {
    if (c.restartPolicy === 'Always') sidecars += req(c);
    else initMax = Math.max(initMax, req(c) + sidecars);
  }
  const steady = sidecars + spec.containers.reduce((a: number, c: never) => a + req(c), 0);
  return Math.max(steady, initMax);
}

test('app.resources: the budget is split over containers and sidecars; a one-shot gets what the sidecars before it leave', () => {
  const r = run(
    {
      web: { image: 'w', depends_on: { db: dep('service_healthy'), 'a-migrate': dep('service_completed_successfully'), late: dep('service_completed_successfully') } },
      db: { image: 'd', healthcheck: PG },
      'a-migrate': { image: 'm' },
      late: { image: 'l', depends_on: { db: dep('service_healthy') } },
    },
    { app: { resources: { cpu: '1', memory: '1Gi' } } },
  );
  assert.deepEqual(r.errors, []);
  assert.deepEqual(layout(r).init, [['a-migrate', null], ['db', 'Always'], ['late', null]]);
  const res = (n: string) => (initC(r, n) ?? {}).resources;
  assert.deepEqual(res('db'), { limits: { memory: '512Mi' }, requests: { cpu: '500m', memory: '512Mi' } });
  // a-migrate runs before any sidecar: the whole budget; late runs next to db: what db leaves
  assert.deepEqual(res('a-migrate'), { limits: { memory: '1Gi' }, requests: { cpu: '1', memory: '1Gi' } });
  assert.deepEqual(res('late'), { limits: { memory: '512Mi' }, requests: { cpu: '500m', memory: '512Mi' } });
  assert.equal(effective(r, 'cpu'), 1);
  assert.equal(effective(r, 'memory'), 1024 ** 3);
});

test('KOMPOX_SIDECARS=false: one flat container list and warnings that the order is not enforced', () => {
  const services: Services = {
    web: { image: 'w', depends_on: { db: dep('service_healthy'), migrate: dep('service_completed_successfully') } },
    db: { image: 'd', healthcheck: PG },
    migrate: { image: 'm' },
  };
  const r = run(services, { cluster: { settings: { KOMPOX_SIDECARS: 'false' } } });
  assert.deepEqual(r.errors, []);
  assert.deepEqual(layout(r), { init: [], containers: ['db', 'migrate', 'web'] });
  assert.ok(r.warnings.some((w) => /depends_on db \(service_healthy\) is not enforced \(KOMPOX_SIDECARS=false\)/.test(w.message)));
  assert.ok(r.warnings.some((w) => /depends_on migrate \(service_completed_successfully\) is not enforced/.test(w.message)));
  const bad = run(services, { cluster: { settings: { KOMPOX_SIDECARS: 'maybe' } } });
  assert.match(bad.errors[0]!.message, /cluster.settings.KOMPOX_SIDECARS "maybe" is not true or false/);
  assert.deepEqual(layout(run(services, { cluster: { settings: { KOMPOX_SIDECARS: 'true' } } })).init, [['db', 'Always'], ['migrate', null]]);
});

test('the example (examples/gitea): db is a health-gated sidecar, gitea the app container', async () => {
  const { loadConfig, requireApp } = await import('../../src/config/index.js');
  const { loadDir } = await import('../support/source.js');
  const { buildAppManifest } = await import('../../src/usecases/app-manifest.js');
  const ctx = requireApp(await loadConfig(new URL('../../examples/gitea/kompoxops.yml', import.meta.url).pathname));
  const loaded = await loadDir(ctx.app.projectDir!, { files: [ctx.app.composePath!], env: {} });
  const r = await buildAppManifest(ctx, loaded, { disks: {}, volumes: (await import('../support/volumes.js')).volumeInputs(ctx) });
  validateObjects(r.objects);
  const spec = podSpec(r.objects);
  assert.deepEqual(spec.initContainers.map((c: { name: string; restartPolicy?: string }) => [c.name, c.restartPolicy ?? null]), [['kompox-init', null], ['db', 'Always']]);
  assert.deepEqual(spec.containers.map((c: { name: string }) => c.name), ['gitea']);
  // interval 10s, retries 5, start_period 30s: ceil((30 + 50) / 10) = 8 checks
  assert.deepEqual(spec.initContainers[1].startupProbe, { exec: { command: ['/bin/sh', '-c', 'pg_isready -U gitea -d gitea'] }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 8 });
  assert.ok(!r.warnings.some((w) => /depends_on/.test(w.message)));
});

test('generated depends_on graphs: dependencies start before their dependents, deterministic output, within the budget', () => {
  let seed = 20261121;
  const r = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  const conditions: ServiceDependency['condition'][] = ['service_started', 'service_healthy', 'service_completed_successfully'];
  let checked = 0;
  for (let i = 0; i < 200; i++) {
    const n = 2 + Math.floor(r() * 6);
    const names = Array.from({ length: n }, (_, k) => `s${(k * 7) % 10}${k}`);
    const services: Services = {};
    names.forEach((name, k) => {
      const svc: Services[string] = { image: `example/${k}:1` };
      if (r() < 0.6) svc.healthcheck = { test: ['CMD', 'true'], interval: '5s', start_period: r() < 0.5 ? '20s' : undefined };
      const deps: Record<string, ServiceDependency> = {};
      // only earlier services: a DAG, as the loader guarantees
      for (let j = 0; j < k; j++) if (r() < 0.35) deps[names[j]!] = dep(conditions[Math.floor(r() * 3)]!, r() < 0.8);
      if (Object.keys(deps).length) svc.depends_on = deps;
      services[name] = svc;
    });
    const over = { app: { resources: { cpu: '2', memory: '2Gi' } } };
    const a = run(services, over);
    const b = run(Object.fromEntries(Object.entries(services).reverse()), over);
    assert.deepEqual(b.objects, a.objects, `case ${i}: output depends on input order`);
    if (a.errors.length) continue;
    checked++;
    const { init, containers } = layout(a);
    const pos = new Map(init.map(([name], k) => [name, k]));
    for (const [name, svc] of Object.entries(services)) {
      for (const d of Object.keys(svc.depends_on ?? {})) {
        assert.ok(pos.has(d), `case ${i}: ${d} (a dependency of ${name}) is not an init container`);
        if (pos.has(name)) assert.ok(pos.get(d)! < pos.get(name)!, `case ${i}: ${d} starts after ${name}`);
        const kind = init[pos.get(d)!]![1];
        const one = Object.values(services).some((s) => s.depends_on?.[d]?.condition === 'service_completed_successfully');
        assert.equal(kind, one ? null : 'Always', `case ${i}: ${d}`);
      }
    }
    for (const c of containers) assert.ok(!Object.values(services).some((s) => s.depends_on?.[c]), `case ${i}: ${c} is depended on but a regular container`);
    assert.ok(containers.length >= 1);
    assert.ok(effective(a, 'cpu') <= 2 + 1e-9, `case ${i}: cpu ${effective(a, 'cpu')}`);
    assert.ok(effective(a, 'memory') <= 2 * 1024 ** 3, `case ${i}: memory ${effective(a, 'memory')}`);
  }
  assert.ok(checked > 100, `only ${checked} of 200 generated graphs converted`);
});
