// Disk export and import over SSH side by side with `ssh host 'tar -c | zstd -T0 -3' >
// file` (issue 11), against a real sshd on 127.0.0.1 (test/support/sshd.ts:
// the "node" is this machine). Kompox runs the K3s driver in this process
// (SFTP for files), once as it is (pipelined SFTP reads) and once with the
// pipelining switched off (ssh2's read stream: one 64 KiB request in flight,
// what the issue measured), alternating with the peer, on the disk of
// bench/archive.bench.ts (generated if missing). Wall time only: the node and
// the workstation share this machine's CPUs, so the numbers say how the
// transfer pattern compares, not what a real link gives.
// Kompox runs three ways: as shipped (packed on the node: `tar -c | zstd -5`
// there over one exec channel, the node's frame kept, every file checked and
// the manifest added here), the plain tar stream (HostFs.packedStream hidden:
// the node's `zstd -3` only for the link, the archive compressed here), and
// the SFTP fallback (both hidden: pipelined SFTP reads file by file).
// Then disk import, the same way: Kompox as shipped (the archive verified
// here and streamed, zstd on the link, into one `tar -x` on the node), through
// the SFTP fallback (file by file, what shipped before), and the peer
// `ssh host 'zstd -d | tar -x' < file`.
// The as-shipped run also goes once with a progress listener, as the CLI
// always has one: then the size walk for the progress total (HostFs.treeBytes)
// runs on the node beside the tar, and its cost shows in that row.
//   node --import tsx bench/archive-ssh.bench.ts [scale] [runs]   (default 0.25, 3)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'node:stream';
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { ZSTD_LEVEL } from '../src/archive/archive.js';
import { connectSshHostFs } from '../src/providers/k3s/ssh-hostfs.js';
import { K3sDriver, type HostFsFactory } from '../src/providers/k3s/driver.js';
import { sshdMissing, startSshd, type Sshd } from '../test/support/sshd.js';
import { benchDataSet } from './archive-data.js';
import { measureProcess, median } from './measure.js';
import type { AppContext, AppVolume, Disk } from '../src/domain/model.js';


function context(root: string, settings: Record<string, string>): AppContext {
  return {
    service: { name: 'bench' },
    provider: { name: 'k3s1', service: 'bench', driver: 'k3s', settings: { K3S_DISK_ROOT: `${root}/disks`, K3S_SNAPSHOT_ROOT: `${root}/snapshots`, ...settings } },
    cluster: { name: 'node1', provider: 'k3s1', auth: { type: 'kubectl' }, ingress: { controller: 'traefik', namespace: 'traefik' }, settings: {} },
    app: { name: 'bench', cluster: 'node1', compose: 'services: {}', ingress: {}, resources: {}, settings: {}, volumes: [{ name: 'default', options: {} }] },
  } as unknown as AppContext;
}

export async function runSshBench(scale = 0.25, runs = 3, base = process.env.KOMPOX_BENCH_DIR ?? tmpdir()): Promise<{ markdown: string }> {
  const missing = sshdMissing();
  if (missing) throw new Error(`the SSH benchmark needs sshd: ${missing}`);
  const { dir, src, facts } = await benchDataSet(base, scale);
  const root = join(dir, 'k3s-ssh');
  const work = join(dir, 'work-ssh');
  rmSync(root, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const loadBefore = loadavg();
  const sshd = await startSshd();
  try {
    const settings = { K3S_SSH: sshd.target, K3S_SSH_KEY: sshd.keyPath, K3S_SSH_KNOWN_HOSTS: sshd.knownHostsPath };
    // The source disk, made locally.
    const localDriver = new K3sDriver();
    const ctxLocal = context(root, {});
    const vol = ctxLocal.app.volumes[0]!;
    const disk = await localDriver.disks.create(ctxLocal, vol, { name: 'src' }, {});
    execFileSync('cp', ['-a', `${src}/.`, disk.id]);
    await localDriver.close();

    // Packed on the node (as shipped), the plain tar stream (packedStream hidden: the archive compressed
    // here) and the SFTP fallback (both hidden: pipelined SFTP reads).
    const sshFs: HostFsFactory = async () => connectSshHostFs({ target: sshd.target, keyPath: sshd.keyPath, knownHosts: sshd.knownHostsPath });
    const plainTar = hiding(sshFs, ['packedStream']);
    const sftpOnly = hiding(sshFs, ['packedStream', 'tarStream']);
    const ctx = context(root, settings);
    const kompox = async (factory: HostFsFactory, file: string, progress = false) => {
      const driver = new K3sDriver({ env: {} }, factory);
      const t0 = performance.now();
      const out = new PassThrough();
      const writing = pipeline(out, createWriteStream(file));
      await driver.hostTransfer.exportDisk(ctx, vol, disk, out, progress ? { events: () => undefined } : {});
      out.end();
      await writing;
      const s = (performance.now() - t0) / 1000;
      await driver.close();
      return s;
    };
    const peer = (file: string) => {
      const t0 = performance.now();
      const r = spawnSync(
        'sh',
        ['-c', `ssh -p ${sshd.port} -i "$1" -o UserKnownHostsFile="$2" -o BatchMode=yes ${sshd.user}@127.0.0.1 "tar -cf - -C '${disk.id}' . | zstd -T0 -3 -q -c" > "$3"`, 'sh', sshd.keyPath, sshd.knownHostsPath, file],
        { encoding: 'utf8' },
      );
      if (r.status !== 0) throw new Error(`ssh tar | zstd failed: ${r.stderr}`);
      return (performance.now() - t0) / 1000;
    };
    const rows = { tar: [] as number[], walk: [] as number[], plain: [] as number[], sftp: [] as number[], peer: [] as number[] };
    for (let i = 0; i < runs; i++) {
      process.stderr.write(`ssh run ${i + 1}/${runs}\n`);
      const f = (n: string) => join(work, `${n}-${i}`);
      const order = i % 2 ? ['peer', 'walk', 'plain', 'tar', 'sftp'] : ['tar', 'walk', 'sftp', 'plain', 'peer'];
      for (const o of order) {
        if (o === 'tar') rows.tar.push(await kompox(sshFs, f('tar')));
        else if (o === 'walk') rows.walk.push(await kompox(sshFs, f('walk'), true));
        else if (o === 'plain') rows.plain.push(await kompox(plainTar, f('plain')));
        else if (o === 'sftp') rows.sftp.push(await kompox(sftpOnly, f('sftp')));
        else rows.peer.push(peer(f('peer')));
      }
      for (const n of ['tar', 'walk', 'plain', 'sftp', 'peer']) if (i < runs - 1) rmSync(f(n), { force: true });
    }
    const last = runs - 1;
    const size = (n: string) => statSync(join(work, `${n}-${last}`)).size;
    const imports = await importRows(ctx, vol, sshd, sshFs, join(work, `tar-${last}`), join(work, `peer-${last}`), root, runs);
    const loadAfter = loadavg();
    const dataMB = facts.totalBytes / 1e6;
    const p = median(rows.peer);
    const ip = median(imports.peer);
    const iline = (name: string, xs: number[]) => `| ${name} | ${median(xs).toFixed(2)} | ${(ip / median(xs)).toFixed(2)} | ${(dataMB / median(xs)).toFixed(0)} |`;
    const line = (name: string, xs: number[]) => `| ${name} | ${median(xs).toFixed(2)} | ${(p / median(xs)).toFixed(2)} | ${(dataMB / median(xs)).toFixed(0)} |`;
    return {
      markdown: [
        `## Disk export and import over SSH (bench/archive-ssh.bench.ts), ${new Date().toISOString().slice(0, 10)}`,
        '',
        `Machine: nproc ${availableParallelism()}, ${cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}; load average ${loadBefore.map((l) => l.toFixed(1)).join(' ')} before, ${loadAfter.map((l) => l.toFixed(1)).join(' ')} after. sshd on 127.0.0.1 (the node is this machine: node and workstation share its CPUs). Disk (scale ${scale}): ${dataMB.toFixed(0)} MB, ${facts.smallFiles} small files. zstd level ${ZSTD_LEVEL}; ${runs} alternating runs, medians of wall time.`,
        '',
        '| export | s | throughput vs peer (target ≥ 0.8) | MB/s |',
        '|---|---:|---:|---:|',
        `| \`ssh host 'tar -c \\| zstd -T0 -3' > file\` (peer) | ${p.toFixed(2)} | 1.00 | ${(dataMB / p).toFixed(0)} |`,
        line(`Kompox, packed on the node (\`tar -c \\| zstd -T0 -${ZSTD_LEVEL}\` there over one exec channel; checked and completed here: as shipped)`, rows.tar),
        line('Kompox, as shipped with a progress listener (the size walk runs beside the tar: what the CLI does)', rows.walk),
        line('Kompox, the plain tar stream (`tar -c \\| zstd -T0 -3` on the node for the link; the archive compressed here)', rows.plain),
        line('Kompox, SFTP fallback (pipelined reads, file by file)', rows.sftp),
        '',
        `Archive bytes: Kompox packed on the node ${size('tar')}, compressed here ${size('plain')}, peer ${size('peer')}.`,
        '',
        '| import | s | throughput vs peer (target ≥ 0.8) | MB/s |',
        '|---|---:|---:|---:|',
        `| \`ssh host 'zstd -d \\| tar -x' < file\` (peer) | ${median(imports.peer).toFixed(2)} | 1.00 | ${(dataMB / median(imports.peer)).toFixed(0)} |`,
        iline('Kompox, the archive streamed to one `zstd -d \\| tar -x` on the node over one exec channel and verified there (as shipped)', imports.node),
        iline('Kompox, archive verified here into one `zstd -d \\| tar -x` on the node (the fallback for a node without the tools to verify)', imports.tar),
        iline('Kompox, SFTP fallback (file by file)', imports.sftp),
        '',
        await memoryRows(root, sshd, join(work, `tar-${last}`), runs),
        '',
        // KOMPOX_BENCH_LEVEL=N: the snapshots' --level (default the archives')
        await nodeLocalRows({ sshd, ctx, vol, disk, work, runs, dataMB, factory: sshFs, ...(process.env.KOMPOX_BENCH_LEVEL ? { level: Number(process.env.KOMPOX_BENCH_LEVEL) } : {}) }),
      ].join('\n'),
    };
  } finally {
    await sshd.close();
    rmSync(root, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The SSH HostFs with `names` hidden from the driver, which then takes the
 * path of a node without those tools. The HostFs's own methods still reach
 * them (they run bound to the real object): its syncs and probes use `run`
 * whatever the driver chose, as on a real node, where the exec channel is
 * always there.
 */
function hiding(sshFs: HostFsFactory, names: string[]): HostFsFactory {
  return async (s, h, op) => {
    const fs = await sshFs(s, h, op);
    return new Proxy(fs, {
      get: (t, k) => {
        if (names.includes(String(k))) return undefined;
        const v = Reflect.get(t, k) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
  };
}

/**
 * Disk import over SSH, alternating: Kompox as shipped (the archive's bytes
 * streamed to one `zstd -d | tar -x` on the node and verified there, as a
 * restore on the node), Kompox verifying here into one `tar -x` on the node
 * (HostFs.run hidden: the fallback for a node without the restore's tools),
 * Kompox through the SFTP fallback (run and untarStream hidden: file by
 * file), and the peer `ssh host 'zstd -d | tar -x' < file` of the peer's own
 * export.
 */
async function importRows(
  ctx: AppContext,
  vol: AppContext['app']['volumes'][number],
  sshd: Awaited<ReturnType<typeof startSshd>>,
  sshFs: HostFsFactory,
  archive: string,
  peerArchive: string,
  root: string,
  runs: number,
): Promise<{ node: number[]; tar: number[]; sftp: number[]; peer: number[] }> {
  const noRun = hiding(sshFs, ['run']);
  const noUntar = hiding(sshFs, ['run', 'untarStream']);
  const kompox = async (factory: HostFsFactory, name: string) => {
    const driver = new K3sDriver({ env: {} }, factory);
    const t0 = performance.now();
    const d = await driver.hostTransfer.importDisk(ctx, vol, { name }, { stream: createReadStream(archive, { highWaterMark: 1024 * 1024 }) }, {});
    const s = (performance.now() - t0) / 1000;
    await driver.disks.delete(ctx, vol, d, {});
    await driver.close();
    return s;
  };
  const peer = (i: number) => {
    const dest = join(root, `peer-import-${i}`);
    const t0 = performance.now();
    const r = spawnSync(
      'sh',
      ['-c', `ssh -p ${sshd.port} -i "$1" -o UserKnownHostsFile="$2" -o BatchMode=yes ${sshd.user}@127.0.0.1 "mkdir -p '${dest}' && zstd -d -q -c | tar -xf - -C '${dest}'" < "$3"`, 'sh', sshd.keyPath, sshd.knownHostsPath, peerArchive],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`ssh zstd -d | tar -x failed: ${r.stderr}`);
    const s = (performance.now() - t0) / 1000;
    rmSync(dest, { recursive: true, force: true });
    return s;
  };
  const rows = { node: [] as number[], tar: [] as number[], sftp: [] as number[], peer: [] as number[] };
  for (let i = 0; i < runs; i++) {
    process.stderr.write(`ssh import run ${i + 1}/${runs}\n`);
    const order = i % 2 ? ['peer', 'tar', 'node', 'sftp'] : ['node', 'sftp', 'tar', 'peer'];
    for (const o of order) {
      if (o === 'node') rows.node.push(await kompox(sshFs, `imp-node-${i}`));
      else if (o === 'tar') rows.tar.push(await kompox(noRun, `imp-tar-${i}`));
      else if (o === 'sftp') rows.sftp.push(await kompox(noUntar, `imp-sftp-${i}`));
      else rows.peer.push(peer(i));
    }
  }
  return rows;
}

const OP = fileURLToPath(new URL('./archive-op.mjs', import.meta.url));

/**
 * Peak RSS of export and import over SSH (issue 11: within 100 MiB), each a
 * process of its own under /usr/bin/time: bench/archive-op.mjs runs the
 * compiled dist/ with the binary's V8 settings, as `kompoxops` does (the rows
 * above run in this process, whose memory is the benchmark's).
 */
async function memoryRows(root: string, sshd: Sshd, archive: string, runs: number): Promise<string> {
  if (!existsSync(new URL('../dist/archive/archive.js', import.meta.url))) return 'Peak memory: not measured (dist/ is missing: `npm run build` first).';
  const env = { ...process.env, KOMPOX_BENCH_SSH: JSON.stringify({ K3S_SSH: sshd.target, K3S_SSH_KEY: sshd.keyPath, K3S_SSH_KNOWN_HOSTS: sshd.knownHostsPath }) };
  writeFileSync(`${archive}.sha256`, execFileSync('sha256sum', [archive]));
  const rss = { export: [] as number[], import: [] as number[] };
  for (let i = 0; i < runs; i++) {
    process.stderr.write(`ssh memory run ${i + 1}/${runs}\n`);
    const file = `${archive}.mem-${i}`;
    rss.export.push((await measureProcess(process.execPath, [OP, 'export', root, 'src', file], env)).rssMiB);
    rmSync(file, { force: true });
    rss.import.push((await measureProcess(process.execPath, [OP, 'import', root, archive, `mem-${i}`], env)).rssMiB);
    // the imported disk is not needed again (each is the whole data set: the benchmark's filesystem fills up)
    execFileSync('sh', ['-c', 'rm -rf -- "$1"/disks/*/default/"$2"', 'sh', root, `mem-${i}`]);
  }
  const cell = (xs: number[]) => `${Math.max(...xs).toFixed(0)} | ${xs.map((x) => x.toFixed(1)).join(', ')}`;
  return [
    '| over SSH, a process of its own | peak RSS MiB (max; target ≤ 100) | runs |',
    '|---|---:|---|',
    `| disk export | ${cell(rss.export)} |`,
    `| disk import | ${cell(rss.import)} |`,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const scale = Number(process.argv[2] ?? process.env.KOMPOX_BENCH_SCALE ?? 0.25);
  const runs = Number(process.argv[3] ?? process.env.KOMPOX_BENCH_RUNS ?? 3);
  process.stdout.write((await runSshBench(scale, runs)).markdown);
}

/**
 * Copies that stay on the node (snapshot create, restore, disk copy: one
 * command each on the node, see src/providers/k3s/node-local.ts) side by
 * side with the same work done by a plain `ssh host '...'`, alternating.
 * Kompox also lists and hashes the tree on the node (and restore checks the
 * archive's SHA-256 and member names first), which the peers do not.
 */
export async function nodeLocalRows(a: { sshd: Sshd; ctx: AppContext; vol: AppVolume; disk: Disk; work: string; runs: number; dataMB: number; factory: HostFsFactory; level?: number }): Promise<string> {
  const { sshd, ctx, vol, disk, work } = a;
  const ssh = (cmd: string) => {
    const t0 = performance.now();
    const r = spawnSync('ssh', ['-p', String(sshd.port), '-i', sshd.keyPath, '-o', `UserKnownHostsFile=${sshd.knownHostsPath}`, '-o', 'BatchMode=yes', `${sshd.user}@127.0.0.1`, cmd], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ssh ${cmd} failed: ${r.stderr}`);
    return (performance.now() - t0) / 1000;
  };
  const driver = new K3sDriver({ env: {} }, a.factory);
  const rows = { snap: [] as number[], restore: [] as number[], copy: [] as number[], peerSnap: [] as number[], peerRestore: [] as number[], peerCopy: [] as number[] };
  const timed = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
    const t0 = performance.now();
    const v = await fn();
    return [v, (performance.now() - t0) / 1000];
  };
  try {
    for (let i = 0; i < a.runs; i++) {
      process.stderr.write(`node-local run ${i + 1}/${a.runs}\n`);
      const kompox = async () => {
        const [snap, s] = await timed(() => driver.snapshots.create(ctx, vol, disk, `nl-${i}`, {}, a.level === undefined ? {} : { level: a.level }));
        const [restored, r] = await timed(() => driver.disks.create(ctx, vol, { name: `nl-r-${i}`, source: { kind: 'snapshot', id: snap.id } }, {}));
        const [copied, c] = await timed(() => driver.disks.create(ctx, vol, { name: `nl-c-${i}`, source: { kind: 'disk', id: disk.id } }, {}));
        rows.snap.push(s);
        rows.restore.push(r);
        rows.copy.push(c);
        for (const d of [restored, copied]) await driver.disks.delete(ctx, vol, d, {});
        await driver.snapshots.delete(ctx, vol, snap, {});
      };
      const peer = () => {
        const f = `${work}/peer-${i}.tar.zst`;
        rows.peerSnap.push(ssh(`tar -cf - -C '${disk.id}' . | zstd -T0 -3 -q > '${f}'`));
        rows.peerRestore.push(ssh(`mkdir '${work}/peer-r-${i}' && zstd -dc -q < '${f}' | tar -xpf - -C '${work}/peer-r-${i}'`));
        rows.peerCopy.push(ssh(`cp -a '${disk.id}' '${work}/peer-c-${i}'`));
        rmSync(f, { force: true });
        rmSync(`${work}/peer-r-${i}`, { recursive: true, force: true });
        rmSync(`${work}/peer-c-${i}`, { recursive: true, force: true });
      };
      if (i % 2) {
        peer();
        await kompox();
      } else {
        await kompox();
        peer();
      }
    }
  } finally {
    await driver.close();
  }
  const line = (name: string, xs: number[], peer: number[]) =>
    `| ${name} | ${median(xs).toFixed(2)} | ${median(peer).toFixed(2)} | ${(median(peer) / median(xs)).toFixed(2)} | ${(a.dataMB / median(xs)).toFixed(0)} |`;
  return [
    '| on the node | Kompox s | peer s | throughput vs peer | Kompox MB/s |',
    '|---|---:|---:|---:|---:|',
    line(`snapshot create${a.level === undefined ? '' : ` --level ${a.level}`} vs \`ssh host 'tar -c \\| zstd -T0 -3 > f'\``, rows.snap, rows.peerSnap),
    line("restore vs `ssh host 'zstd -dc f \\| tar -x'`", rows.restore, rows.peerRestore),
    line("disk copy vs `ssh host 'cp -a src dst'`", rows.copy, rows.peerCopy),
    '',
  ].join('\n');
}
