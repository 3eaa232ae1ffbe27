// CLI start-up cost as users feel it: wall time of whole `kompoxops`
// processes (node start, module loading, work, exit). `--help` measures the
// start-up path alone (commander + command definitions; nothing heavy may
// load); `app validate` on the example adds kompoxops.yml (Ajv), the compose
// loader and its schema. Median and p90 over N runs after one warm-up run.
//   node --import tsx bench/startup.bench.ts [runs]     (build dist/ first: npm run build)
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const BIN = fileURLToPath(new URL('../bin/kompoxops.mjs', import.meta.url));

export interface StartupRow {
  command: string;
  runs: number;
  medianMs: number;
  p90Ms: number;
}

const CASES: Array<{ name: string; args: string[] }> = [
  { name: 'kompoxops --help', args: ['--help'] },
  { name: 'kompoxops -C examples/gitea app validate', args: ['-C', 'examples/gitea', 'app', 'validate'] },
  { name: 'kompoxops -C examples/gitea app validate --out-manifest -', args: ['-C', 'examples/gitea', 'app', 'validate', '--out-manifest', '-'] },
];

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function timeOnce(args: string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`kompoxops ${args.join(' ')} exited ${r.status}: ${r.stderr.toString()}`);
  return ms;
}

export function runStartupBench(runs = 21): StartupRow[] {
  if (!existsSync(new URL('../dist/cli/kompoxops/main.js', import.meta.url))) {
    throw new Error('dist/ is missing: run "npm run build" first (the benchmark times the compiled CLI users run)');
  }
  return CASES.map((c) => {
    timeOnce(c.args); // warm-up: file system cache
    const times = Array.from({ length: runs }, () => timeOnce(c.args)).sort((a, b) => a - b);
    return { command: c.name, runs, medianMs: percentile(times, 50), p90Ms: percentile(times, 90) };
  });
}

export function machine(): string {
  let model = 'unknown CPU';
  try {
    model = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? model;
  } catch {
    /* not Linux */
  }
  return `nproc ${availableParallelism()}, ${model}, node ${process.version}`;
}

/** The section appended to docs/benchmarks.md. */
export function markdown(rows: StartupRow[], date = new Date()): string {
  return [
    `## CLI start-up (bench/startup.bench.ts), ${date.toISOString().slice(0, 10)}`,
    '',
    `Machine: ${machine()}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at the end${loadavg()[0]! > availableParallelism() ? ' (a busy machine: other jobs were running, so these timings are inflated)' : ''}.`,
    `Wall time of whole processes (compiled dist/), one warm-up run, then ${rows[0]?.runs ?? 0} runs each.`,
    '',
    '| command | median ms | p90 ms |',
    '|---|---:|---:|',
    ...rows.map((r) => `| \`${r.command}\` | ${r.medianMs.toFixed(1)} | ${r.p90Ms.toFixed(1)} |`),
    '',
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const runs = Number(process.argv[2] ?? 21);
  process.stdout.write(markdown(runStartupBench(runs)));
}
