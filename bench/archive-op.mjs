// One data-path operation of the K3s driver on the local filesystem
// (LocalHostFs), run in its own process by bench/archive.bench.ts so that its
// wall time and peak RSS are its own. Prints one JSON line:
// { op, ms, bytes?, sha256?, id? }. It runs the compiled code in dist/ (as
// the CLI does: `npm run build` first), so its memory is the product's, not
// a TypeScript loader's (plain JavaScript for the same reason: Node's type
// stripping would load a WebAssembly compiler into the measured process).
//   node bench/archive-op.mjs OP ROOT [ARGS...]
//     copy     ROOT SRC_DIR DISK       disk create from a directory (the bench's source disk)
//     export   ROOT DISK FILE [FORMAT] disk export to FILE (through the use case's ChecksumWriter)
//     import   ROOT FILE DISK          disk import from FILE (checked against its SHA-256)
//     import-refused ROOT FILE DISK    disk import from FILE against a wrong SHA-256: the archive is
//                                      extracted, refused at its end and what was extracted removed
//                                      (fails unless the import is refused, and leaves no disk DISK)
//     delete   ROOT DISK               disk delete (its whole tree removed)
//     snapshot ROOT DISK SNAP [LEVEL]  snapshot create (at a zstd level: --level)
//     restore  ROOT SNAP DISK          snapshot restore into a new disk
//     pack     ROOT DISK FILE LEVEL    packTree alone at a zstd level (diagnostics, not the driver path)
//     packtar  ROOT DISK FILE          `tar -c` of the disk → packTarStream (the packer of exports over
//                                      SSH and through the cluster) into FILE, in this process
// KOMPOX_BENCH_SSH='{"K3S_SSH":…,"K3S_SSH_KEY":…,"K3S_SSH_KNOWN_HOSTS":…}': the driver reaches the
// same roots over SSH (an sshd on this machine): export then streams one `tar -c` from the "node".
// The binary's V8 settings (young generation, no TurboFan): what is measured is what kompoxops does.
import '../bin/cli-flags.mjs';
import { createReadStream, createWriteStream, readFileSync, statSync } from 'node:fs';
const DIST = new URL('../dist/', import.meta.url).href;

/** An app context whose K3s roots are under `root`. */
export function benchContext(root, extra = {}) {
  const ctx = {
    service: { name: 'bench' },
    provider: { name: 'k3s1', service: 'bench', driver: 'k3s', settings: { K3S_DISK_ROOT: `${root}/disks`, K3S_SNAPSHOT_ROOT: `${root}/snapshots`, ...extra } },
    cluster: { name: 'node1', provider: 'k3s1', auth: { type: 'kubectl' }, ingress: { controller: 'traefik', namespace: 'traefik' }, settings: {} },
    app: { name: 'bench', cluster: 'node1', compose: 'services: {}', ingress: {}, resources: {}, settings: {}, volumes: [{ name: 'default', options: {} }] },
  };
  return { ctx, volume: ctx.app.volumes[0] };
}

/** The disk or snapshot of the bench's volume named `name` (an error when there is none). */
export async function findDisk(driver, ctx, volume, op, name) {
  const d = (await driver.disks.list(ctx, volume, {}, op)).find((x) => x.name === name);
  if (!d) throw new Error(`no disk ${name}`);
  return d;
}
export async function findSnapshot(driver, ctx, volume, op, name) {
  const s = (await driver.snapshots.list(ctx, volume, op)).find((x) => x.name === name);
  if (!s) throw new Error(`no snapshot ${name}`);
  return s;
}

async function closed(ws) {
  await new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('close', () => resolve());
    ws.end();
  });
}

async function main() {
  // KOMPOX_BENCH_MEMLOG=1: the process's memory once a second on stderr (where a peak comes from).
  if (process.env.KOMPOX_BENCH_MEMLOG) {
    setInterval(() => {
      const m = process.memoryUsage();
      process.stderr.write(`rss ${m.rss >> 20} heap ${m.heapUsed >> 20} external ${m.external >> 20} arrayBuffers ${m.arrayBuffers >> 20} MiB\n`);
    }, 1000).unref();
  }
  const [what, root, a, b, c] = process.argv.slice(2);
  if (!what || !root) throw new Error('usage: archive-op.ts OP ROOT ARGS...');
  const { ChecksumWriter, packTree, parseArchiveFormat } = await import(`${DIST}archive/archive.js`);
  const { LocalHostFs } = await import(`${DIST}providers/k3s/hostfs.js`);
  const { K3sDriver } = await import(`${DIST}providers/k3s/index.js`);
  const { ctx, volume } = benchContext(root, process.env.KOMPOX_BENCH_SSH ? JSON.parse(process.env.KOMPOX_BENCH_SSH) : {});
  const driver = new K3sDriver();
  const op = {};
  const t0 = process.hrtime.bigint();
  let out = {};
  const disk = (name) => findDisk(driver, ctx, volume, op, name);
  if (what === 'copy') {
    const d = await driver.disks.create(ctx, volume, { name: b, source: { kind: 'native', id: a } }, op);
    out = { id: d.id };
  } else if (what === 'export') {
    const d = await disk(a);
    const file = createWriteStream(b, { flags: 'wx' });
    const w = new ChecksumWriter(file);
    await driver.hostTransfer.exportDisk(ctx, volume, d, w, op, { format: c ? parseArchiveFormat(c) : undefined });
    await new Promise((resolve, reject) => w.end((err) => (err ? reject(err) : resolve())));
    await closed(file);
    out = { bytes: w.bytes, sha256: w.sha256() };
  } else if (what === 'import') {
    const sha = readFileSync(`${a}.sha256`, 'utf8').trim().split(/\s+/)[0]; // sha256sum's format, or the bare hash
    const stream = createReadStream(a, { highWaterMark: 1024 * 1024 });
    const d = await driver.hostTransfer.importDisk(ctx, volume, { name: b }, { stream, expectedSha256: sha, totalBytes: statSync(a).size }, op);
    out = { id: d.id };
  } else if (what === 'import-refused') {
    const stream = createReadStream(a, { highWaterMark: 1024 * 1024 });
    const refused = await driver.hostTransfer.importDisk(ctx, volume, { name: b }, { stream, expectedSha256: '0'.repeat(64), totalBytes: statSync(a).size }, op).then(
      () => undefined,
      (e) => e,
    );
    if (refused?.kind !== 'integrity') throw new Error(`the import was not refused for its checksum: ${refused?.message ?? 'it went through'}`);
    if ((await driver.disks.list(ctx, volume, {}, op)).some((x) => x.name === b)) throw new Error(`a refused import left disk ${b}`);
    out = { refused: refused.message };
  } else if (what === 'delete') {
    await driver.disks.delete(ctx, volume, await disk(a), op);
    out = {};
  } else if (what === 'snapshot') {
    const s = await driver.snapshots.create(ctx, volume, await disk(a), b, op, c ? { level: Number(c) } : {});
    out = { id: s.id, bytes: s.usedBytes, sha256: s.sha256 };
  } else if (what === 'restore') {
    const s = await findSnapshot(driver, ctx, volume, op, a);
    const d = await driver.disks.create(ctx, volume, { name: b, sizeGiB: s.sizeGiB, source: { kind: 'snapshot', id: s.id } }, op);
    out = { id: d.id };
  } else if (what === 'pack') {
    const d = await disk(a);
    const file = createWriteStream(b, { flags: 'wx' });
    const r = await packTree(new LocalHostFs(), d.id, file, { level: Number(c) });
    await closed(file);
    out = { bytes: r.bytes, sha256: r.sha256 };
  } else if (what === 'packtar') {
    const { packTarStream } = await import(`${DIST}archive/tar-stream.js`);
    const { spawn } = await import('node:child_process');
    const d = await disk(a);
    const tar = spawn('tar', ['-c', '-f', '-', '-C', d.id, '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => tar.on('close', resolve));
    const file = createWriteStream(b, { flags: 'wx' });
    const w = new ChecksumWriter(file);
    const r = await packTarStream(tar.stdout, w, { skipLostFound: false, readLinkTarget: async (p) => createReadStream(`${d.id}/${p}`) });
    if ((await exited) !== 0) throw new Error('tar -c failed');
    await new Promise((resolve, reject) => w.end((err) => (err ? reject(err) : resolve())));
    await closed(file);
    out = { bytes: r.bytes, sha256: r.sha256, files: r.manifest.fileCount };
  } else throw new Error(`unknown operation ${what}`);
  await driver.close();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  process.stdout.write(JSON.stringify({ op: what, ms, ...out }) + '\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => {
    process.stderr.write(`${e?.stack ?? String(e)}\n`);
    process.exit(1);
  });
}
