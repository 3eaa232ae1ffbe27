// Peak memory against the number of files (issue 11: "data commands stay
// <= 100 MiB RSS whatever the disk size"; a disk's size is also its file
// count: a Nextcloud or GitLab disk holds hundreds of thousands). Disks of
// N small files (100 bytes each, 1,000 per directory), the K3s driver's
// data path on the local filesystem (bench/archive-op.mjs: the compiled
// dist/, one process per operation, /usr/bin/time), side by side with tar
// on the same tree. What grows with N is what Kompox keeps per file until
// the manifest, which comes last: the table gives it in bytes per file
// between the two sizes.
// Two rows measure the packer of exports over SSH and through the cluster
// (packTarStream: a plain tar stream from the node or a helper pod becomes
// the archive): `packtar`, `tar -c` of the disk into packTarStream in one
// process, and `export over SSH`, the driver's export against an sshd on
// this machine (test/support/sshd.ts; one `tar -c` streamed from the "node"),
// when sshd is installed. Two more go through the cluster: the `kompoxops`
// binary's `disk export --via cluster` and `disk import --via cluster` (a
// helper pod streaming tar, then reading the tree back) against the
// project's fake API server (bench/cluster.bench.ts's fakeTarget: TLS,
// WebSocket exec, its kubelet running the pod's commands on this machine).
//   npm run build && node --import tsx bench/many-files.bench.ts [counts] [runs]
//   (counts: comma-separated, default 20000,200000; runs default 1)
// With KOMPOX_BENCH_DIR set, the generated trees are kept there
// (kompox-many-files-src-N) and reused by later runs: a million files take
// minutes to write.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN } from '../test/support/cli.js';
import { sshdMissing, startSshd, type Sshd } from '../test/support/sshd.js';
import { fakeTarget } from './cluster.bench.js';
import { measureProcess, median, type ProcessMeasure } from './measure.js';

const OP = fileURLToPath(new URL('./archive-op.mjs', import.meta.url));
const OPS = ['export', 'import', 'import refused (its checksum; the extracted tree removed)', 'disk delete', 'snapshot', 'restore', 'packtar', 'export over SSH', 'export through the cluster', 'import through the cluster'] as const;

/** N files of 100 bytes, 1,000 per directory (also bench/node-local-many.bench.ts). */
export function makeTree(dir: string, n: number): void {
  const body = 'x'.repeat(100);
  for (let i = 0; i < n; i++) {
    const d = join(dir, `d${String(Math.floor(i / 1000)).padStart(4, '0')}`);
    if (i % 1000 === 0) mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `file-with-a-typical-name-${String(i).padStart(7, '0')}.txt`), body);
  }
}

const op = (args: string[], env: NodeJS.ProcessEnv = process.env): Promise<ProcessMeasure> =>
  measureProcess(process.execPath, [OP, ...args], env).catch((e: Error) => {
    throw new Error(`archive-op ${args[0]} failed: ${e.message}`);
  });

/** The tree of N files: generated, or the one a previous run kept under KOMPOX_BENCH_DIR. */
function sourceTree(base: string, n: number, keep: boolean): { src: string; drop: () => void } {
  const src = join(base, `kompox-many-files-src-${n}`);
  const done = `${src}.complete`;
  if (!keep || !existsSync(done)) {
    rmSync(src, { recursive: true, force: true });
    makeTree(src, n);
    if (keep) writeFileSync(done, '');
  }
  return { src, drop: () => (keep ? undefined : rmSync(src, { recursive: true, force: true })) };
}

export async function runManyFilesBench(counts = [20_000, 200_000], runs = 1, base = process.env.KOMPOX_BENCH_DIR ?? tmpdir()): Promise<string> {
  const rows: string[] = [];
  const load0 = loadavg().map((x) => x.toFixed(1)).join(' ');
  const rss: Record<string, number[]> = {};
  const keep = process.env.KOMPOX_BENCH_DIR !== undefined;
  const noSsh = sshdMissing();
  const sshd: Sshd | undefined = noSsh ? undefined : await startSshd();
  const sshEnv = sshd ? { ...process.env, KOMPOX_BENCH_SSH: JSON.stringify({ K3S_SSH: sshd.target, K3S_SSH_KEY: sshd.keyPath, K3S_SSH_KNOWN_HOSTS: sshd.knownHostsPath }) } : undefined;
  try {
    for (const n of counts) {
      const dir = join(base, `kompox-many-files-${process.pid}-${n}`);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const tree = sourceTree(base, n, keep);
      try {
        const src = tree.src;
        const root = join(dir, 'root');
        await op(['copy', root, src, 'd']);
        const samples: Record<string, ProcessMeasure[]> = {};
        for (let i = 0; i < runs; i++) {
          const file = join(dir, `e${i}.tar.zst`);
          samples.export = [...(samples.export ?? []), await op(['export', root, 'd', file])];
          writeFileSync(`${file}.sha256`, execFileSync('sha256sum', [file]));
          samples.import = [...(samples.import ?? []), await op(['import', root, file, `i${i}`])];
          const refused = 'import refused (its checksum; the extracted tree removed)';
          samples[refused] = [...(samples[refused] ?? []), await op(['import-refused', root, file, `bad${i}`])];
          samples['disk delete'] = [...(samples['disk delete'] ?? []), await op(['delete', root, `i${i}`])];
          samples.snapshot = [...(samples.snapshot ?? []), await op(['snapshot', root, 'd', `s${i}`])];
          samples.restore = [...(samples.restore ?? []), await op(['restore', root, `s${i}`, `r${i}`])];
          samples.packtar = [...(samples.packtar ?? []), await op(['packtar', root, 'd', join(dir, `p${i}.tar.zst`)])];
          if (sshEnv) samples['export over SSH'] = [...(samples['export over SSH'] ?? []), await op(['export', root, 'd', join(dir, `ssh${i}.tar.zst`)], sshEnv)];
          // through the cluster: the binary against the fake API server, its disk a copy of the tree
          const cluster = await fakeTarget(join(dir, 'cluster'), src);
          try {
            const kompoxops = (args: string[]) =>
              measureProcess(process.execPath, [BIN.kompoxops, '-C', cluster.project, ...args], cluster.env).catch((e: Error) => {
                throw new Error(`kompoxops ${args.slice(0, 2).join(' ')} through the cluster failed: ${e.message}`);
              });
            const viaFile = join(dir, `c${i}.tar.zst`);
            samples['export through the cluster'] = [...(samples['export through the cluster'] ?? []), await kompoxops(['disk', 'export', '-N', cluster.disk, '-O', viaFile, '--via', 'cluster'])];
            samples['import through the cluster'] = [...(samples['import through the cluster'] ?? []), await kompoxops(['disk', 'import', viaFile, '-N', `c${i}`, '--via', 'cluster'])];
          } finally {
            await cluster.cleanup();
          }
          const tarFile = join(dir, `t${i}.tar.zst`);
          samples['tar -c | zstd'] = [...(samples['tar -c | zstd'] ?? []), await measureProcess('sh', ['-c', `tar -c -f - -C "$1" . | zstd -T0 -3 -q -o "$2"`, 'sh', src, tarFile])];
          const out = join(dir, `x${i}`);
          mkdirSync(out);
          samples['zstd -d | tar -x'] = [...(samples['zstd -d | tar -x'] ?? []), await measureProcess('sh', ['-c', `zstd -d -q -c "$1" | tar -x -f - -C "$2"`, 'sh', tarFile, out])];
        }
        for (const [name, s] of Object.entries(samples)) {
          const peak = Math.max(...s.map((x) => x.rssMiB));
          (rss[name] ??= []).push(peak);
          rows.push(`| ${n.toLocaleString('en')} | ${name.replace(/\|/g, '\\|')} | ${median(s.map((x) => x.wall)).toFixed(2)} | ${median(s.map((x) => x.cpu)).toFixed(2)} | ${peak.toFixed(0)} |`);
          process.stderr.write(`${rows[rows.length - 1]}\n`); // a long run shows its rows as they come
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
        tree.drop();
      }
    }
  } finally {
    await sshd?.close();
  }
  const perFile =
    counts.length >= 2
      ? OPS.filter((o) => rss[o]).map((o) => {
          const r = rss[o]!;
          const bytes = ((r[r.length - 1]! - r[0]!) * 1024 * 1024) / (counts[counts.length - 1]! - counts[0]!);
          return `${o} ${bytes.toFixed(0)} B`;
        }).join(', ')
      : 'one size only';
  return [
    `## Peak memory against the file count (bench/many-files.bench.ts), ${new Date().toISOString().slice(0, 10)}`,
    '',
    `Disks of N files of 100 bytes (1,000 per directory), K3s driver on the local filesystem, ${runs} run(s) per size; ${cpus().length} CPUs, node ${process.version}, load average ${load0} before, ${loadavg().map((x) => x.toFixed(1)).join(' ')} after.`,
    '',
    '| files | operation | wall s (median) | CPU s (median) | peak RSS MiB |',
    '|---:|---|---:|---:|---:|',
    ...rows,
    '',
    `Growth of the peak per added file: ${perFile}.${noSsh ? ` No export over SSH: ${noSsh}.` : ''}`,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const counts = process.argv[2] ? process.argv[2].split(',').map(Number) : undefined;
  const runs = process.argv[3] ? Number(process.argv[3]) : undefined;
  console.log(await runManyFilesBench(counts, runs));
}
