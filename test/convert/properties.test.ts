// Properties over generated compose models (seeded, so failures reproduce):
// the converter never throws, its output does not depend on the order of
// services/keys in the input, and every successful output passes the schema
// and server-rule checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ComposeProject, ServiceConfig } from '../../src/compose/model.js';
import { checkServerRules, convert, makeCtx, makeLoaded, textFile, validateObjects } from './helpers.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function generate(r: () => number): { project: ComposeProject; files: Record<string, ReturnType<typeof textFile>> } {
  const pick = <T,>(a: T[]): T => a[Math.floor(r() * a.length)]!;
  const services: Record<string, ServiceConfig> = {};
  const files: Record<string, ReturnType<typeof textFile>> = {};
  const n = 1 + Math.floor(r() * 5);
  let port = 1000;
  for (let i = 0; i < n; i++) {
    const name = pick(['web', 'db', 'cache', 'worker', 'api', 'Web_2', 'proxy']) + (i ? `${i}` : '');
    const svc: ServiceConfig = { image: `example/${i}:1` };
    if (r() < 0.6) svc.ports = [{ target: (port += 7), published: r() < 0.8 ? String(port + 10000) : undefined, protocol: r() < 0.8 ? 'tcp' : 'udp' }];
    if (r() < 0.4) svc.expose = [String((port += 3))];
    if (r() < 0.6) svc.environment = { B: 'x', A: r() < 0.5 ? null : '$(y)', SECRET_KEY: 's' };
    if (r() < 0.7) {
      svc.volumes = [];
      if (r() < 0.7) svc.volumes.push({ type: 'volume', source: pick(['data', 'db-data', 'logs']), target: `/v${i}` });
      if (r() < 0.3) {
        files[`/proj/conf${i}.ini`] = textFile(`k=${i}\n`);
        svc.volumes.push({ type: 'bind', source: `/proj/conf${i}.ini`, target: `/etc/c${i}.ini`, read_only: r() < 0.5 });
      }
      if (r() < 0.2) svc.volumes.push({ type: 'volume', target: `/anon${i}` });
      if (r() < 0.2) svc.volumes.push({ type: 'bind', source: pick(['/etc', '/var/run/docker.sock', '/proj/missing']), target: `/bad${i}` });
    }
    if (r() < 0.4) svc.healthcheck = { test: pick([['CMD', 'true'], ['CMD-SHELL', 'exit 0'], ['NONE']]), interval: pick(['5s', '1m', '1m30s']), retries: 2 };
    if (r() < 0.3) svc.user = pick(['1000', '1000:1000', 'nobody']);
    if (r() < 0.2) svc.deploy = { resources: { limits: { memory: '256m', cpus: '0.5' } } };
    if (r() < 0.2) svc.shm_size = '64m';
    if (r() < 0.2) svc.cap_add = ['NET_ADMIN'];
    if (r() < 0.1) svc.privileged = true;
    services[name] = svc;
  }
  return { project: { name: 'gen', services, volumes: { data: {}, 'db-data': {}, logs: {} } }, files };
}

/** The same model with every object's keys (and the services) in reverse order. */
function reordered<T>(v: T): T {
  if (Array.isArray(v)) return v.map(reordered) as T;
  if (v && typeof v === 'object' && !(v instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reordered(x)])) as T;
  }
  return v;
}

test('generated projects: no throw, order-independent output, valid objects', () => {
  const r = rng(20261120);
  let ok = 0;
  for (let i = 0; i < 300; i++) {
    const { project, files } = generate(r);
    const ctx = makeCtx({ app: { resources: r() < 0.5 ? { cpu: '1', memory: '1Gi' } : {}, ingress: {} } });
    const a = convert(ctx, makeLoaded(project, { web: ['SECRET_KEY'] }), { files });
    const b = convert(ctx, makeLoaded(reordered(project), { web: ['SECRET_KEY'] }), { files });
    assert.deepEqual(b.objects, a.objects, `case ${i}: output depends on input order`);
    assert.deepEqual(b.errors.map((e) => e.message).sort(), a.errors.map((e) => e.message).sort(), `case ${i}`);
    if (a.errors.length === 0) {
      validateObjects(a.objects);
      checkServerRules(a.objects);
      ok++;
    } else {
      assert.ok(a.errors.every((e) => e.message.length > 0));
    }
  }
  assert.ok(ok > 50, `only ${ok} of 300 generated projects converted`);
});
