// Peak memory of the copies that stay on a K3s node (snapshot create,
// snapshot restore, disk copy over SSH: commands on the node, see
// src/providers/k3s/node-local.ts) against the number of files (issue 11:
// "data commands stay <= 100 MiB RSS whatever the disk size"). The node is
// this machine through an sshd on 127.0.0.1 (test/support/sshd.ts); each
// operation runs in its own process (bench/node-local-op.mjs, compiled
// dist/) under /usr/bin/time. Disks of N small files as in
// bench/many-files.bench.ts (100 bytes each, 1,000 per directory). A tree
// is generated once under KOMPOX_BENCH_DIR (default: the system's temporary
// directory) and kept there for later runs (kompox-node-local-N/src, and
// the source disk made from it, kompox-node-local-N/root).
//   npm run build && node --import tsx bench/node-local-many.bench.ts [counts] [runs]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sshdMissing, startSshd } from '../test/support/sshd.js';
import { makeTree } from './many-files.bench.js';
import { measureProcess, median, type ProcessMeasure } from './measure.js';

const OP = fileURLToPath(new URL('./node-local-op.mjs', import.meta.url));
const LOCAL_OP = fileURLToPath(new URL('./archive-op.mjs', import.meta.url));


export async function runNodeLocalBench(counts = [20_000, 200_000], runs = 1, base = process.env.KOMPOX_BENCH_DIR ?? tmpdir()): Promise<string> {
  const missing = sshdMissing();
  if (missing) throw new Error(`the node-local benchmark needs sshd: ${missing}`);
  const sshd = await startSshd();
  const env = { ...process.env, KOMPOX_BENCH_SSH: sshd.target, KOMPOX_BENCH_SSH_KEY: sshd.keyPath, KOMPOX_BENCH_SSH_KNOWN_HOSTS: sshd.knownHostsPath };
  const op = (args: string[]): Promise<ProcessMeasure> =>
    measureProcess(process.execPath, [OP, ...args], env).catch((e: Error) => {
      throw new Error(`node-local-op ${args[0]} failed: ${e.message}`);
    });
  const load0 = loadavg().map((x) => x.toFixed(1)).join(' ');
  const rows: string[] = [];
  try {
    for (const n of counts) {
      const dir = join(base, `kompox-node-local-${n}`);
      const src = join(dir, 'src');
      if (!existsSync(join(dir, 'src.done'))) {
        rmSync(dir, { recursive: true, force: true });
        makeTree(src, n);
        writeFileSync(join(dir, 'src.done'), '');
      }
      // the source disk is made once too (a local copy of the tree) and kept with it; what the runs make is removed
      const root = join(dir, 'root');
      if (!existsSync(join(dir, 'root.done'))) {
        rmSync(root, { recursive: true, force: true });
        await measureProcess(process.execPath, [LOCAL_OP, 'copy', root, src, 'd']);
        writeFileSync(join(dir, 'root.done'), '');
      }
      const made: string[] = [];
      try {
        const samples: Record<string, ProcessMeasure[]> = { snapshot: [], restore: [], copy: [] };
        for (let i = 0; i < runs; i++) {
          const tag = `${process.pid}-${i}`;
          for (const [name, args] of [
            ['snapshot', ['snapshot', root, 'd', `s${tag}`]],
            ['restore', ['restore', root, `s${tag}`, `r${tag}`]],
            ['copy', ['copy', root, 'd', `c${tag}`]],
          ] as const) {
            const m = await op([...args]);
            samples[name]!.push(m);
            const id = (JSON.parse(m.stdout) as { id: string }).id;
            made.push(name === 'snapshot' ? id : id.replace(/\/data$/, ''));
            if (name === 'snapshot') made.push(id.replace(/\.tar\.zst$/, '.json'));
          }
        }
        for (const [name, xs] of Object.entries(samples)) {
          rows.push(`| ${n} | ${name} | ${median(xs.map((x) => x.rssMiB)).toFixed(0)} | ${median(xs.map((x) => x.wall)).toFixed(1)} | ${median(xs.map((x) => x.cpu)).toFixed(1)} |`);
        }
      } finally {
        if (made.length) execFileSync('rm', ['-rf', '--', ...made]);
      }
    }
  } finally {
    await sshd.close();
  }
  const load1 = loadavg().map((x) => x.toFixed(1)).join(' ');
  return [
    `Node-local copies over SSH (sshd on 127.0.0.1; the node is this machine), ${runs} run(s), medians; load ${load0} before, ${load1} after.`,
    '',
    '| files | operation | peak RSS MiB | wall s | CPU s |',
    '|---:|---|---:|---:|---:|',
    ...rows,
    '',
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const counts = (process.argv[2] ?? '20000,200000').split(',').map(Number);
  const runs = Number(process.argv[3] ?? 1);
  runNodeLocalBench(counts, runs).then(
    (s) => process.stdout.write(s),
    (e: Error) => {
      process.stderr.write(`${e.stack ?? e.message}\n`);
      process.exit(1);
    },
  );
}
