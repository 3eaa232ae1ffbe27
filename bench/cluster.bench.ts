// Disk export through the cluster (the helper-pod path, `--via cluster`) side
// by side with `kubectl exec POD -- tar -c | zstd -T0 -3 > file` on the same
// volume (issue 11, "Through the cluster": target >= 0.8x).
//
// Without KOMPOX_TEST_KUBECONFIG it runs against the project's fake API server
// (test/support/fake-kube, in this process: the real wire protocol over TLS,
// its kubelet runs the pods' exec'd commands on this machine) with a K3s
// project whose disk is a local directory holding the generated data set
// (bench/archive-data.ts). With KOMPOX_TEST_KUBECONFIG it runs against that
// cluster: KOMPOX_BENCH_PROJECT names a kompoxops project for it (cluster.auth
// type kubectl without a file: the bench sets KUBECONFIG), the data set is
// archived here and imported through the cluster into a disk
// kompox-bench-SCALE, which is deleted at the end.
//
// Each run alternates (a) `kompoxops disk export --via cluster -o json` (the
// real CLI, compiled dist/, a whole process: pod start, transfer, pod
// removal) and (b) the peer: a helper pod started and held by
// bench/cluster-peer.mjs (same image, mount, user and capabilities as the
// export's; its start and removal are not timed: the peer assumes a running
// pod), then `kubectl --kubeconfig K exec -n NS POD -c helper -- tar -c -f - -C
// MOUNT . | zstd -T0 -3 -q -c > file` under /usr/bin/time. The transfer phase
// alone is measured alike on both sides: the output file's first byte to its
// last write, so start-up, the helper pod's start and its removal show as the
// rest of the wall time (the -o json summary's `transfer.seconds` is printed
// too: it starts at the first progress event, before the exec has connected). Against the fake, the CPU the "cluster"
// spends (API server in this process, the pod's tar) is measured too: this
// process's CPU plus its ended children's, minus what the timed clients used.
// Then, against the fake only, (c) `kompoxops disk import` of (a)'s archive into
// a new disk through the cluster, deleted afterwards: its wall, CPU and peak RSS
// (no peer). Not on a real cluster: the import changes the volume's current disk.
//   npm run build && node --import tsx bench/cluster.bench.ts [scale] [runs]   (default 0.1, 3)
//   KOMPOX_BENCH_LEVEL=N: the export's --level
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ZSTD_LEVEL } from '../src/archive/archive.js';
import { tarCreateArgv } from '../src/archive/tar-command.js';
import { BIN } from '../test/support/cli.js';
import { startFakeKube, type FakeKube } from '../test/support/fake-kube/index.js';
import { writeProject } from '../test/usecases/lifecycle-support.js';
import { benchDataSet } from './archive-data.js';
import { measureProcess, median, selfAndChildrenCpu, watchFileGrowth, type ProcessMeasure } from './measure.js';

const PEER = fileURLToPath(new URL('./cluster-peer.mjs', import.meta.url));
const OP = fileURLToPath(new URL('./archive-op.mjs', import.meta.url));
const KUBECTL = process.env.KUBECTL ?? '/usr/bin/kubectl';

interface Sample extends ProcessMeasure {
  /** Against the fake: CPU s of the API server (this process) and the pod's commands during the run. */
  clusterCpu?: number;
  /** The transfer phase alone: the output file's first byte to its last write. */
  transfer?: number;
  /** Kompox: the -o json summary's transfer.seconds (first progress event to the archive's end), when it has one. */
  summarySeconds?: number;
  bytes: number;
}

interface Target {
  kind: 'fake' | 'cluster';
  project: string;
  disk: string;
  kubeconfig: string;
  env: NodeJS.ProcessEnv;
  fake?: FakeKube;
  cleanup(): Promise<void>;
}

async function kompoxops(t: Pick<Target, 'project' | 'env'>, args: string[]): Promise<ProcessMeasure> {
  return measureProcess(process.execPath, [BIN.kompoxops, '-C', t.project, ...args], t.env);
}

/** The fake API server with a K3s project whose disk `src` holds the data set. */
export async function fakeTarget(dir: string, src: string): Promise<Target> {
  const fake = await startFakeKube({ tls: true });
  const project = join(dir, 'cluster-project');
  rmSync(project, { recursive: true, force: true });
  mkdirSync(project, { recursive: true });
  await writeProject(project, { diskRoot: join(project, 'disks'), snapshotRoot: join(project, 'snapshots'), kubeconfig: fake.kubeconfigPath });
  const env = { ...process.env, NO_COLOR: '1' };
  const t: Target = {
    kind: 'fake',
    project,
    disk: 'src',
    kubeconfig: fake.kubeconfigPath,
    env,
    fake,
    cleanup: async () => {
      await fake.close();
      rmSync(project, { recursive: true, force: true });
    },
  };
  await kompoxops(t, ['disk', 'create', '-N', 'src']);
  const list = JSON.parse((await kompoxops(t, ['disk', 'list', '-o', 'json'])).stdout) as Array<{ name: string; id: string }>;
  const id = list.find((d) => d.name === 'src')!.id;
  const cp = spawnSync('cp', ['-a', `${src}/.`, id]);
  if (cp.status !== 0) throw new Error(`copying the data set into the disk failed: ${cp.stderr}`);
  return t;
}

/** A real cluster: the data set archived here (K3s driver on a temp dir) and imported through the cluster. */
async function clusterTarget(dir: string, src: string, scale: number, kubeconfig: string): Promise<Target> {
  const project = process.env.KOMPOX_BENCH_PROJECT;
  if (!project) throw new Error('KOMPOX_TEST_KUBECONFIG is set: KOMPOX_BENCH_PROJECT must name the kompoxops project (directory of kompoxops.yml) for that cluster');
  const env = { ...process.env, NO_COLOR: '1', KUBECONFIG: kubeconfig };
  const root = join(dir, 'cluster-archive');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const archive = join(root, 'data.tar.zst');
  await measureProcess(process.execPath, [OP, 'copy', root, src, 'src']);
  const packed = JSON.parse((await measureProcess(process.execPath, [OP, 'export', root, 'src', archive])).stdout) as { sha256: string };
  const disk = `kompox-bench-${String(scale).replace('.', '-')}`;
  const t: Target = {
    kind: 'cluster',
    project,
    disk,
    kubeconfig,
    env,
    cleanup: async () => {
      await kompoxops(t, ['disk', 'delete', '-N', disk]).catch((e: Error) => process.stderr.write(`could not delete disk ${disk}: ${e.message}\n`));
      rmSync(root, { recursive: true, force: true });
    },
  };
  process.stderr.write(`importing the data set into disk ${disk} through the cluster\n`);
  await kompoxops(t, ['disk', 'import', archive, '-N', disk, '--via', 'cluster', '--sha256', packed.sha256]);
  rmSync(root, { recursive: true, force: true });
  return t;
}

/** Runs `fn` with the CPU this process and its ended children spent meanwhile (minus the timed client's own). */
async function withClusterCpu(t: Target, fn: () => Promise<Omit<Sample, 'clusterCpu'>>): Promise<Sample> {
  const a = selfAndChildrenCpu();
  const m = await fn();
  const b = selfAndChildrenCpu();
  if (t.kind !== 'fake') return m;
  return { ...m, clusterCpu: b.self - a.self + (b.children - a.children) - m.cpu };
}

interface PeerPod {
  namespace: string;
  pod: string;
  container: string;
  mountPath: string;
  release(): Promise<void>;
}

/** Starts the peer's helper pod (bench/cluster-peer.mjs) and resolves once it runs. */
function startPeerPod(t: Target): Promise<PeerPod> {
  const child = spawn(process.execPath, [PEER, t.project, t.disk], { env: t.env, stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (!out.includes('\n')) return;
      const p = JSON.parse(out.slice(0, out.indexOf('\n'))) as Omit<PeerPod, 'release'>;
      resolve({
        ...p,
        release: async () => {
          child.stdin.end();
          const code = await exited;
          if (code !== 0) throw new Error(`the peer's helper pod was not removed cleanly (${code}): ${err}`);
        },
      });
    });
    void exited.then((code) => reject(new Error(`the peer's helper pod did not start (${code}): ${err}`)));
  });
}

export async function runClusterBench(scale = 0.1, runs = 3, base = process.env.KOMPOX_BENCH_DIR ?? tmpdir()): Promise<{ markdown: string }> {
  if (!existsSync(new URL('../dist/cli/kompoxops/main.js', import.meta.url))) {
    throw new Error('dist/ is missing: run "npm run build" first (the benchmark runs the CLI as users do)');
  }
  const kubectlMissing = existsSync(KUBECTL) ? undefined : `${KUBECTL} is not installed (set KUBECTL to another kubectl)`;
  if (kubectlMissing) process.stderr.write(`the peer rows are skipped: ${kubectlMissing}\n`);
  if (spawnSync('sh', ['-c', 'command -v zstd']).status !== 0) throw new Error('zstd is needed for the peer');
  const realKubeconfig = process.env.KOMPOX_TEST_KUBECONFIG;
  const { dir, src, facts } = await benchDataSet(base, scale);
  const loadBefore = loadavg();
  const t = realKubeconfig ? await clusterTarget(dir, src, scale, realKubeconfig) : await fakeTarget(dir, src);
  const work = join(dir, 'work-cluster');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const kompox: Sample[] = [];
  const peer: Sample[] = [];
  const imports: Sample[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      process.stderr.write(`run ${i + 1}/${runs}\n`);
      const file = join(work, `kompox-${i}.tar.zst`);
      const peerFile = join(work, `peer-${i}.tar.zst`);
      const runKompox = async () => {
        kompox.push(
          await withClusterCpu(t, async () => {
            // the CLI writes a temporary file next to FILE and links it into place at the end
            const growth = watchFileGrowth(work, (n) => n.startsWith(`.${basename(file)}.tmp-`));
            const level = process.env.KOMPOX_BENCH_LEVEL; // the export's --level (default the archives')
            const m = await kompoxops(t, ['disk', 'export', '-N', t.disk, '-O', file, '--via', 'cluster', '-o', 'json', ...(level ? ['--level', level] : [])]);
            const w = growth.stop(file);
            const summary = JSON.parse(m.stdout) as { transfer?: { seconds: number } | null };
            if (process.env.KOMPOX_BENCH_VERBOSE) for (const l of m.stderrLines) process.stderr.write(`  ${(l.ms / 1000).toFixed(3)} ${l.line}\n`);
            const fromFile = w.firstByteAt !== undefined && w.lastWriteAt !== undefined ? (w.lastWriteAt - w.firstByteAt) / 1000 : undefined;
            const transfer = { ...(fromFile !== undefined ? { transfer: fromFile } : {}), ...(summary.transfer ? { summarySeconds: summary.transfer.seconds } : {}) };
            return { ...m, bytes: statSync(file).size, ...transfer };
          }),
        );
      };
      const runPeer = async () => {
        if (kubectlMissing) return;
        const p = await startPeerPod(t);
        try {
          peer.push(
            await withClusterCpu(t, async () => {
              // the same tar command line the export runs in its pod
              const tar = tarCreateArgv(p.mountPath);
              const growth = watchFileGrowth(work, (n) => n === basename(peerFile));
              const m = await measureProcess(
                '/bin/sh',
                ['-c', 'k="$1" ns="$2" pod="$3" c="$4" out="$5"; shift 5; "$KUBECTL" --kubeconfig "$k" exec -n "$ns" "$pod" -c "$c" -- "$@" | zstd -T0 -3 -q -c > "$out"', 'sh', t.kubeconfig, p.namespace, p.pod, p.container, peerFile, ...tar],
                { ...t.env, KUBECTL },
              );
              const w = growth.stop(peerFile);
              const transfer = w.firstByteAt !== undefined && w.lastWriteAt !== undefined ? { transfer: (w.lastWriteAt - w.firstByteAt) / 1000 } : {};
              return { ...m, bytes: statSync(peerFile).size, ...transfer };
            }),
          );
        } finally {
          await p.release();
        }
      };
      if (i % 2) {
        await runPeer();
        await runKompox();
      } else {
        await runKompox();
        await runPeer();
      }
      // the export read back as a new disk, through the cluster too (its memory: the goal is every data command's);
      // against the fake only: the import makes the new disk the volume's current one, and putting the bench's disk
      // back and deleting the copy (forced: the rollback target) is for the bench's own project, never a user's
      if (t.kind === 'fake') {
        const imported = `bench-import-${i}`;
        const sha256 = createHash('sha256').update(readFileSync(file)).digest('hex');
        imports.push(
          await withClusterCpu(t, async () => {
            const m = await kompoxops(t, ['disk', 'import', file, '-N', imported, '--via', 'cluster', '--sha256', sha256]);
            if (process.env.KOMPOX_BENCH_VERBOSE) for (const l of m.stderrLines) process.stderr.write(`  ${(l.ms / 1000).toFixed(3)} ${l.line}\n`);
            return { ...m, bytes: statSync(file).size };
          }),
        );
        // the newest disk is the volume's current one unless another is attached: the bench's own again, then the copy
        // goes (--force: it is the rollback target now)
        await kompoxops(t, ['disk', 'attach', '-N', t.disk]);
        await kompoxops(t, ['disk', 'delete', '-N', imported, '--force']);
      }
      // a peer archive that is not the whole tree would make its time meaningless
      if (!kubectlMissing && i === 0) {
        const listed = spawnSync('sh', ['-c', 'zstd -d -q -c "$1" | tar -t | wc -l', 'sh', peerFile], { encoding: 'utf8' });
        const entries = Number(listed.stdout.trim());
        if (!(entries >= facts.smallFiles)) throw new Error(`the peer's archive lists ${entries} entries, fewer than the ${facts.smallFiles} small files of the data set`);
      }
      rmSync(file, { force: true });
      rmSync(peerFile, { force: true });
    }
  } finally {
    await t.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
  const loadAfter = loadavg();

  const dataMB = facts.totalBytes / 1e6;
  const wallK = median(kompox.map((m) => m.wall));
  const transferK = median(kompox.map((m) => m.transfer ?? Number.NaN));
  const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');
  const cpuCell = (xs: Sample[]) => `${f2(median(xs.map((m) => m.cpu)))}${t.kind === 'fake' ? ` + ${f2(median(xs.map((m) => m.clusterCpu ?? Number.NaN)))}` : ''}`;
  const busy = loadBefore[0]! > availableParallelism() / 2 || loadAfter[0]! > availableParallelism() / 2;
  const lines = [
    `## Through the cluster (helper pod) vs kubectl exec tar (bench/cluster.bench.ts), ${new Date().toISOString().slice(0, 10)}`,
    '',
    t.kind === 'fake'
      ? 'Against the fake API server (no KOMPOX_TEST_KUBECONFIG): test/support/fake-kube in the benchmark\'s process, TLS, WebSocket exec (v5.channel.k8s.io); its kubelet runs the pods\' commands on this machine over a local directory (the K3s disk). The "cluster" shares the two CPUs with the clients.'
      : `Against the cluster of KOMPOX_TEST_KUBECONFIG (project ${t.project}, disk ${t.disk}).`,
    `Machine: nproc ${availableParallelism()}, ${cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}; load average ${loadBefore.map((l) => l.toFixed(1)).join(' ')} before, ${loadAfter.map((l) => l.toFixed(1)).join(' ')} after${busy ? ' (load above half the CPUs: other jobs, or the fake cluster itself, shared them)' : ''}.`,
    `Disk (scale ${scale}): ${facts.smallFiles} small files and ${(facts.totalBytes / 1e6).toFixed(0)} MB in all; Kompox zstd level ${process.env.KOMPOX_BENCH_LEVEL ?? ZSTD_LEVEL}; ${runs} alternating runs, medians.${kubectlMissing ? ` Peer skipped: ${kubectlMissing}.` : ''}`,
    '',
    `| export | wall s | transfer s | throughput vs peer, wall (target ≥ 0.8) | same, transfer phase only | MB/s (wall) | CPU s client${t.kind === 'fake' ? ' + cluster' : ''} | peak RSS MiB | archive bytes |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const rss = (xs: Sample[]) => Math.max(...xs.map((m) => m.rssMiB)).toFixed(0);
  if (peer.length) {
    const wallP = median(peer.map((m) => m.wall));
    const transferP = median(peer.map((m) => m.transfer ?? Number.NaN));
    lines.push(`| \`kubectl exec POD -- tar -c \\| zstd -T0 -3\` (peer, pod already running) | ${f2(wallP)} | ${f2(transferP)} | 1.00 | 1.00 | ${(dataMB / wallP).toFixed(0)} | ${cpuCell(peer)} | ${rss(peer)} | ${peer[0]!.bytes} |`);
    lines.push(`| Kompox \`disk export --via cluster\` (pod start, transfer, pod removal) | ${f2(wallK)} | ${f2(transferK)} | ${f2(wallP / wallK)} | ${f2(transferP / transferK)} | ${(dataMB / wallK).toFixed(0)} | ${cpuCell(kompox)} | ${rss(kompox)} | ${kompox[0]!.bytes} |`);
  } else {
    lines.push(`| Kompox \`disk export --via cluster\` (pod start, transfer, pod removal) | ${f2(wallK)} | ${f2(transferK)} | n/a (no peer) | n/a | ${(dataMB / wallK).toFixed(0)} | ${cpuCell(kompox)} | ${rss(kompox)} | ${kompox[0]!.bytes} |`);
  }
  if (t.kind !== 'fake') lines.push(`| Kompox \`disk import --via cluster\` | not run: against the fake only (it changes the volume's current disk) | | | | | | | |`);
  if (imports.length) {
    const wallI = median(imports.map((m) => m.wall));
    lines.push(`| Kompox \`disk import --via cluster\` of that archive (pod start, transfer, check, pod removal) | ${f2(wallI)} | n/a | n/a (no peer) | n/a | ${(dataMB / wallI).toFixed(0)} | ${cpuCell(imports)} | ${rss(imports)} | ${imports[0]!.bytes} |`);
  }
  lines.push(
    '',
    `Transfer s: the output file's first byte (polled every 20 ms) to its last write, on both sides. Kompox per run (wall / transfer s / -o json transfer.seconds): ${kompox.map((m) => `${f2(m.wall)} / ${f2(m.transfer ?? Number.NaN)} / ${f2(m.summarySeconds ?? Number.NaN)}`).join(', ')}; peer per run (wall / transfer s): ${peer.map((m) => `${f2(m.wall)} / ${f2(m.transfer ?? Number.NaN)}`).join(', ') || 'n/a'}.`,
    '',
  );
  return { markdown: lines.join('\n') };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const scale = Number(process.argv[2] ?? process.env.KOMPOX_BENCH_SCALE ?? 0.1);
  const runs = Number(process.argv[3] ?? process.env.KOMPOX_BENCH_RUNS ?? 3);
  process.stdout.write((await runClusterBench(scale, runs)).markdown);
}
