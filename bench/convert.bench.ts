// Conversion cost for generated compose projects of 1, 25 and 200 services.
// The model is built in memory; only convertApp (the pure converter) is timed,
// median of N runs after a warm-up. Prints one line per size and returns rows
// for bench/run.ts.
import { cpus } from 'node:os';
import { convertApp } from '../src/convert/index.js';
import type { ComposeProject, ServiceConfig } from '../src/compose/model.js';
import type { AppContext } from '../src/domain/model.js';
import type { ConvertInput } from '../src/convert/index.js';
import { volumes as aksVolumes } from '../src/providers/aks/volume.js';
import { pvInputs } from '../src/usecases/pv-sources.js';

const PROJECT_DIR = '/bench/project';

function ctx(): AppContext {
  return {
    service: { name: 'ops' },
    provider: { name: 'p', service: 'ops', driver: 'aks', settings: {} },
    cluster: { name: 'c', provider: 'p', auth: { type: 'kubectl' }, ingress: { controller: 'traefik', namespace: 'traefik' }, domain: 'example.dev', settings: {} },
    app: { name: 'bench', cluster: 'c', compose: '', projectDir: PROJECT_DIR, ingress: { http_20000: 'www.example.com' }, resources: { cpu: '4', memory: '8Gi' }, settings: {}, volumes: [{ name: 'default', options: {} }] },
  };
}

/** A realistic service: image, env, a published port, a named volume, a bind file, a secret, a healthcheck. */
function project(n: number): { project: ComposeProject; files: Record<string, { kind: 'file'; content: Uint8Array; size: number }> } {
  const services: Record<string, ServiceConfig> = {};
  const files: Record<string, { kind: 'file'; content: Uint8Array; size: number }> = {};
  const volumes: Record<string, object> = {};
  for (let i = 0; i < n; i++) {
    const name = `svc${String(i).padStart(3, '0')}`;
    const conf = `${PROJECT_DIR}/conf/${name}.conf`;
    const content = new TextEncoder().encode(`# config of ${name}\nlisten ${10000 + i}\n`.repeat(20));
    files[conf] = { kind: 'file', content, size: content.length };
    volumes[`${name}-data`] = {};
    services[name] = {
      image: `registry.example.com/${name}:1.0`,
      environment: Object.fromEntries(Array.from({ length: 10 }, (_, k) => [`VAR_${k}`, `value-${i}-${k}`])),
      ports: [{ target: 10000 + i, published: String(20000 + i), protocol: 'tcp' }],
      expose: [String(30000 + i)],
      volumes: [
        { type: 'volume', source: `${name}-data`, target: '/data' },
        { type: 'bind', source: conf, target: `/etc/${name}.conf`, read_only: true },
      ],
      secrets: [{ source: 'shared' }],
      healthcheck: { test: ['CMD', 'true'], interval: '10s', timeout: '2s', retries: 3, start_period: '30s' },
      user: '1000:1000',
    };
  }
  return { project: { name: 'bench', services, volumes, secrets: { shared: { content: 'pw' } } } as ComposeProject, files };
}

export interface BenchRow {
  services: number;
  runs: number;
  medianMs: number;
  objects: number;
}

export function runConvertBench(sizes = [1, 25, 200], runs = 21): BenchRow[] {
  const c = ctx();
  const rows: BenchRow[] = [];
  for (const n of sizes) {
    const { project: p, files } = project(n);
    const input: ConvertInput = {
      ctx: c, project: p, projectDir: PROJECT_DIR, envFromFile: {}, facts: { files, env: {} }, disks: {},
      volumes: pvInputs(c, aksVolumes),
    };
    let objects = 0;
    for (let i = 0; i < 3; i++) objects = convertApp(input).objects.length; // warm-up (JIT)
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      const r = convertApp(input);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (r.errors.length) throw new Error(`bench project has errors: ${r.errors[0]!.message}`);
    }
    times.sort((a, b) => a - b);
    rows.push({ services: n, runs, medianMs: times[Math.floor(times.length / 2)]!, objects });
  }
  return rows;
}

export function machine(): string {
  return `nproc ${cpus().length}, ${cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of runConvertBench()) console.log(`convert ${r.services} services: median ${r.medianMs.toFixed(2)} ms over ${r.runs} runs (${r.objects} objects)`);
  console.log(machine());
}
