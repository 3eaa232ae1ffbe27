// Peak memory of the data commands as users run them (issue 11: "data
// commands stay <= 100 MiB RSS whatever the disk size"): the real
// `kompoxops` binary (compiled dist/) with the K3s driver on local temp dirs
// and the project's fake API server (the commands talk to the cluster as
// they do in production: kubeconfig, TLS, discovery), each command under
// /usr/bin/time, on generated disks of two sizes. bench/archive.bench.ts
// measures the driver alone against tar; this one is what a user's process
// costs, CLI, configuration and Kubernetes client included.
//   npm run build && node --import tsx bench/cli-memory.bench.ts [scales] [runs]
//   (scales: comma-separated, default 0.1,0.25; runs default 2)
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeKube } from '../test/support/fake-kube/index.js';
import { sshdMissing, startSshd } from '../test/support/sshd.js';
import { generateDataSet } from './archive-data.js';
import { measureProcess, median, type ProcessMeasure } from './measure.js';

const BIN = fileURLToPath(new URL('../bin/kompoxops.mjs', import.meta.url));
const DIST = fileURLToPath(new URL('../dist/cli/kompoxops/main.js', import.meta.url));

/** One command under /usr/bin/time (asynchronously: the fake API server runs in this process); its failure says which command. */
function kompoxops(dir: string, name: string, args: string[]): Promise<ProcessMeasure> {
  return measureProcess(process.execPath, [BIN, '-C', dir, ...args]).catch((e: Error) => {
    throw new Error(`${name} failed: ${e.message}`);
  });
}

export async function runCliMemoryBench(scales = [0.1, 0.25], runs = 2, base = process.env.KOMPOX_BENCH_DIR ?? tmpdir()): Promise<string> {
  try {
    readFileSync(DIST);
  } catch {
    throw new Error('dist/ is missing: run `npm run build` first (the benchmark measures the compiled CLI)');
  }
  const fake = await startFakeKube({ controllers: false });
  // The same project over SSH (K3S_SSH to an sshd on this machine, the "node"):
  // the data paths a workstation takes against a K3s node.
  const noSsh = sshdMissing();
  const sshd = noSsh ? undefined : await startSshd();
  const rows: string[] = [];
  const commands: Array<[string, (i: number) => string[]]> = [
    ['disk list (no data)', () => ['disk', 'list']],
    ['disk export', (i) => ['disk', 'export', '-N', 'd', '-O', `e${i}.tar.zst`]],
    ['disk import', (i) => ['disk', 'import', 'e0.tar.zst', '-N', `i${i}`]],
    ['snapshot create', (i) => ['snapshot', 'create', '-N', `s${i}`, '--disk', 'd']],
    ['snapshot restore', (i) => ['snapshot', 'restore', '-N', 's0', '--disk-name', `r${i}`]],
    ['disk create --source (copy)', (i) => ['disk', 'create', '-N', `c${i}`, '--source', 'd']],
  ];
  try {
    for (const scale of scales) {
      const dir = join(base, `kompox-cli-memory-${process.pid}-${scale}`);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      try {
        const facts = await generateDataSet(join(dir, 'src'), scale);
        const project = (at: string, extra: string) => {
          mkdirSync(at, { recursive: true });
          writeFileSync(
            join(at, 'kompoxops.yml'),
            [
              'version: 1',
              'service: { name: bench }',
              'provider: { name: k3s1, driver: k3s, settings: { K3S_DISK_ROOT: ' + join(dir, 'disks') + ', K3S_SNAPSHOT_ROOT: ' + join(dir, 'snapshots') + `, K3S_NODE: node1${extra} } }`,
              `cluster: { name: c1, auth: { type: kubectl, kubeconfig: ${fake.kubeconfigPath} }, domain: example.com }`,
              'app: { name: web, compose: compose.yml }',
              '',
            ].join('\n'),
          );
          writeFileSync(join(at, 'compose.yml'), 'services:\n  web:\n    image: nginx:1.27\n    volumes: [data:/data]\nvolumes:\n  data: {}\n');
        };
        project(dir, '');
        await kompoxops(dir, 'disk create', ['disk', 'create', '-N', 'd', '--source', join(dir, 'src')]);
        const mb = (facts.totalBytes / 1e6).toFixed(0);
        const measure = async (at: string, name: string, args: (i: number) => string[]) => {
          const rs: ProcessMeasure[] = [];
          for (let i = 0; i < runs; i++) rs.push(await kompoxops(at, name, args(i)));
          rows.push(
            `| ${mb} MB | ${name} | ${median(rs.map((r) => r.wall)).toFixed(2)} | ${median(rs.map((r) => r.cpu)).toFixed(2)} | ${Math.max(...rs.map((r) => r.rssMiB)).toFixed(0)} |`,
          );
        };
        for (const [name, args] of commands) await measure(dir, name, args);
        if (sshd) {
          // the same disks (same app, same roots), reached over SSH
          const over = join(dir, 'over-ssh');
          project(over, `, K3S_SSH: ${sshd.target}, K3S_SSH_KEY: ${sshd.keyPath}, K3S_SSH_KNOWN_HOSTS: ${sshd.knownHostsPath}`);
          await measure(over, 'disk export over SSH', (i) => ['disk', 'export', '-N', 'd', '-O', join(over, `e${i}.tar.zst`)]);
          await measure(over, 'disk import over SSH', (i) => ['disk', 'import', join(dir, 'e0.tar.zst'), '-N', `si${i}`]);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await sshd?.close();
    await fake.close();
  }
  return [
    '| disk | command | wall s (median) | CPU s (median) | peak RSS MiB (max) |',
    '|---|---|---|---|---|',
    ...rows,
    ...(noSsh ? ['', `No rows over SSH: ${noSsh}.`] : []),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const scales = (process.argv[2] ?? '0.1,0.25').split(',').map(Number);
  const runs = Number(process.argv[3] ?? 2);
  console.log(await runCliMemoryBench(scales, runs));
}
