// The data path side by side with the plain tools (issue 11): the K3s
// driver on the local filesystem (LocalHostFs) exports, imports, snapshots
// and restores a generated disk (bench/archive-data.ts), each in its own
// process (bench/archive-op.mjs, compiled dist/), alternating with
//   export, snapshot create:  tar -c | zstd -T0 -3
//   import, snapshot restore: zstd -d | tar -x     (of the same archive)
// in the same run. Each command runs under /usr/bin/time: wall time, CPU
// time and peak RSS; the table gives medians and the throughput ratio
// (peer time / Kompox time; the target is >= 0.9). Archive sizes compare
// Kompox's zstd (version 2) and gzip (version 1) archives with the tools'.
//   npm run build && node --import tsx bench/archive.bench.ts [scale] [runs]
//   (scale 1 = the 1.09 GB disk; default 0.25; runs default 3;
//    KOMPOX_BENCH_DIR: where to work, default the system temp dir)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ZSTD_LEVEL } from '../src/archive/archive.js';
import { benchDataSet } from './archive-data.js';
import { median } from './measure.js';

const OP = fileURLToPath(new URL('./archive-op.mjs', import.meta.url));
const MiB = 1024 * 1024;

interface Measured {
  wall: number;
  cpu: number;
  rssMiB: number;
  out?: Record<string, unknown>;
}

/** Runs a command under /usr/bin/time; throws with its stderr when it fails. */
function measure(cmd: string, args: string[]): Measured {
  const timeFile = join(tmpdir(), `kompox-bench-time-${process.pid}`);
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S %M', '-o', timeFile, cmd, ...args], { encoding: 'utf8', maxBuffer: 16 * MiB });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  const [wall, user, sys, rss] = readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(/\s+/).map(Number);
  rmSync(timeFile, { force: true });
  const line = r.stdout.trim().split('\n').pop();
  return { wall: wall!, cpu: user! + sys!, rssMiB: rss! / 1024, out: line?.startsWith('{') ? (JSON.parse(line) as Record<string, unknown>) : undefined };
}

function kompox(...args: string[]): Measured {
  return measure(process.execPath, [OP, ...args]);
}

function sh(script: string, ...args: string[]): Measured {
  return measure('/bin/sh', ['-c', script, 'sh', ...args]);
}


interface Row {
  op: string;
  peer: string;
  kompox: Measured[];
  tool: Measured[];
}

function sha256File(path: string): string {
  return execFileSync('sha256sum', [path], { encoding: 'utf8' }).split(' ')[0]!;
}

export async function runArchiveBench(scale = 0.25, runs = 3, base = process.env.KOMPOX_BENCH_DIR ?? tmpdir()): Promise<{ markdown: string }> {
  if (!existsSync(new URL('../dist/archive/archive.js', import.meta.url))) {
    throw new Error('dist/ is missing: run "npm run build" first (the benchmark runs the compiled code, as the CLI does)');
  }
  for (const tool of ['tar', 'zstd', 'gzip', 'sha256sum']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is needed for the side-by-side runs`);
  }
  const loadBefore = loadavg();
  const { dir, src, facts } = await benchDataSet(base, scale);
  const root = join(dir, 'k3s');
  const work = join(dir, 'work');
  rmSync(root, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  mkdirSync(work, { recursive: true });

  process.stderr.write('disk copy (the source disk)\n');
  const copy = kompox('copy', root, src, 'src');
  const diskData = String(copy.out!.id);

  const rows: Row[] = [
    { op: 'disk export', peer: '`tar -c \\| zstd -T0 -3`', kompox: [], tool: [] },
    { op: 'disk import', peer: '`zstd -d \\| tar -x`', kompox: [], tool: [] },
    { op: 'snapshot create', peer: '`tar -c \\| zstd -T0 -3`', kompox: [], tool: [] },
    { op: 'snapshot restore', peer: '`zstd -d \\| tar -x`', kompox: [], tool: [] },
  ];
  const [exp, imp, snap, rest] = rows as [Row, Row, Row, Row];
  let archiveBytes = 0;
  for (let i = 0; i < runs; i++) {
    process.stderr.write(`run ${i + 1}/${runs}\n`);
    const file = join(work, `export-${i}.tar.zst`);
    const peerFile = join(work, `peer-${i}.tar.zst`);
    const pair = (a: () => void, b: () => void) => (i % 2 ? (b(), a()) : (a(), b()));
    pair(
      () => exp.kompox.push(kompox('export', root, 'src', file)),
      () => exp.tool.push(sh('tar -cf - -C "$1" . | zstd -T0 -3 -q -c > "$2"', diskData, peerFile)),
    );
    archiveBytes = statSync(file).size;
    writeFileSync(`${file}.sha256`, `${sha256File(file)}  export-${i}.tar.zst\n`);
    const peerDir = join(work, `peer-import-${i}`);
    const disks = join(root, 'disks');
    // What an extraction wrote goes at once, before the other side runs: on this VM writing into memory
    // freed just before costs a fraction of the system time of writing into memory not used for a while
    // (the peer's `tar -x` took 1.25-1.35 s right after a removal, 2.9-4.4 s after the other side's
    // extraction), so the side that ran second was slower whichever it was.
    const dropImported = (name: string) => execFileSync('sh', ['-c', `rm -rf "${disks}"/*/default/${name}`]);
    pair(
      () => {
        imp.kompox.push(kompox('import', root, file, `imported-${i}`));
        dropImported(`imported-${i}`);
      },
      () => {
        mkdirSync(peerDir);
        imp.tool.push(sh('zstd -d -q -c "$1" | tar -xf - -C "$2"', file, peerDir));
        rmSync(peerDir, { recursive: true, force: true });
      },
    );
    pair(
      () => snap.kompox.push(kompox('snapshot', root, 'src', `snap-${i}`)),
      () => snap.tool.push(sh('tar -cf - -C "$1" . | zstd -T0 -3 -q -c > "$2"', diskData, `${peerFile}.snap`)),
    );
    const snapFile = String(snap.kompox[snap.kompox.length - 1]!.out!.id);
    const peerRestore = join(work, `peer-restore-${i}`);
    pair(
      () => {
        rest.kompox.push(kompox('restore', root, `snap-${i}`, `restored-${i}`));
        dropImported(`restored-${i}`);
      },
      () => {
        mkdirSync(peerRestore);
        rest.tool.push(sh('zstd -d -q -c "$1" | tar -xf - -C "$2"', snapFile, peerRestore));
        rmSync(peerRestore, { recursive: true, force: true });
      },
    );
    // Keep the disk small: what each run made goes before the next.
    for (const p of [peerFile, `${peerFile}.snap`]) rmSync(p, { recursive: true, force: true });
  }

  process.stderr.write('sizes: gzip (version 1), zstd -3, tar | gzip -6\n');
  const v1File = join(work, 'export-v1.tar.gz');
  const v1 = kompox('export', root, 'src', v1File, 'tar.gz');
  const level3File = join(work, 'export-level3.tar.zst');
  const level3 = kompox('pack', root, 'src', level3File, '3');
  const gz6 = sh('tar -cf - -C "$1" . | gzip -6 > "$2"', diskData, join(work, 'peer.tar.gz'));
  const zstd3Bytes = Number(execFileSync('sh', ['-c', `tar -cf - -C "${diskData}" . | zstd -T0 -3 -q -c | wc -c`], { encoding: 'utf8' }).trim());
  const sizes = {
    kompoxZstd: archiveBytes,
    kompoxZstd3: statSync(level3File).size,
    kompoxGzip: statSync(v1File).size,
    tarZstd3: zstd3Bytes,
    tarGzip6: statSync(join(work, 'peer.tar.gz')).size,
  };
  const loadAfter = loadavg();
  rmSync(work, { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });

  const mb = (n: number) => (n / MiB).toFixed(1);
  const dataMB = facts.totalBytes / 1e6;
  const lines = [
    `## Data path: archive format version 2 (bench/archive.bench.ts), ${new Date().toISOString().slice(0, 10)}`,
    '',
    `Machine: nproc ${availableParallelism()}, ${cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}; load average ${loadBefore.map((l) => l.toFixed(1)).join(' ')} before, ${loadAfter.map((l) => l.toFixed(1)).join(' ')} after${loadBefore[0]! > availableParallelism() || loadAfter[0]! > availableParallelism() ? ' (a busy machine: other jobs shared the CPUs)' : ''}.`,
    `Disk (scale ${scale}): ${mb(facts.blobBytes)} MiB random blobs, ${facts.smallFiles} small text files (${mb(facts.smallBytes)} MiB), ${mb(facts.logBytes)} MiB logs; ${dataMB.toFixed(0)} MB in all. K3s driver on the local filesystem, zstd level ${ZSTD_LEVEL}, ${runs} alternating runs, medians; each command is a whole process (Kompox: node running dist/).`,
    '',
    '| operation | Kompox s | peer | peer s | throughput Kompox/peer (target ≥ 0.9) | Kompox MB/s | CPU s Kompox / peer | peak RSS MiB Kompox / peer |',
    '|---|---:|---|---:|---:|---:|---:|---:|',
    ...rows.map((r) => {
      const k = median(r.kompox.map((m) => m.wall));
      const t = median(r.tool.map((m) => m.wall));
      return `| ${r.op} | ${k.toFixed(2)} | ${r.peer} | ${t.toFixed(2)} | ${(t / k).toFixed(2)} | ${(dataMB / k).toFixed(0)} | ${median(r.kompox.map((m) => m.cpu)).toFixed(2)} / ${median(r.tool.map((m) => m.cpu)).toFixed(2)} | ${Math.max(...r.kompox.map((m) => m.rssMiB)).toFixed(0)} / ${Math.max(...r.tool.map((m) => m.rssMiB)).toFixed(0)} |`;
    }),
    `| disk copy (setup, once) | ${copy.wall.toFixed(2)} | | | | ${(dataMB / copy.wall).toFixed(0)} | ${copy.cpu.toFixed(2)} | ${copy.rssMiB.toFixed(0)} |`,
    `| disk export --format tar.gz (once) | ${v1.wall.toFixed(2)} | \`tar -c \\| gzip -6\` | ${gz6.wall.toFixed(2)} | ${(gz6.wall / v1.wall).toFixed(2)} | ${(dataMB / v1.wall).toFixed(0)} | ${v1.cpu.toFixed(2)} / ${gz6.cpu.toFixed(2)} | ${v1.rssMiB.toFixed(0)} / ${gz6.rssMiB.toFixed(0)} |`,
    `| pack at zstd level 3 (diagnostic, once) | ${level3.wall.toFixed(2)} | | | | ${(dataMB / level3.wall).toFixed(0)} | ${level3.cpu.toFixed(2)} | ${level3.rssMiB.toFixed(0)} |`,
    '',
    '| archive | bytes | vs Kompox gzip (v1) |',
    '|---|---:|---:|',
    ...(
      [
        [`Kompox tar.zst (v2, level ${ZSTD_LEVEL})`, sizes.kompoxZstd],
        ['Kompox tar.zst at level 3', sizes.kompoxZstd3],
        ['Kompox tar.gz (v1, gzip -6)', sizes.kompoxGzip],
        ['`tar -c \\| zstd -3`', sizes.tarZstd3],
        ['`tar -c \\| gzip -6`', sizes.tarGzip6],
      ] as Array<[string, number]>
    ).map(([name, n]) => `| ${name} | ${n} | ${((n / sizes.kompoxGzip) * 100).toFixed(2)}% |`),
    '',
  ];
  return { markdown: lines.join('\n') };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const scale = Number(process.argv[2] ?? process.env.KOMPOX_BENCH_SCALE ?? 0.25);
  const runs = Number(process.argv[3] ?? process.env.KOMPOX_BENCH_RUNS ?? 3);
  process.stdout.write((await runArchiveBench(scale, runs)).markdown);
}
