// One node-local operation of the K3s driver over SSH (snapshot create,
// snapshot restore, disk copy: commands on the node, see
// src/providers/k3s/node-local.ts), run in its own process by
// bench/node-local-many.bench.ts so that its peak RSS is its own. The node
// is this machine, reached through an sshd on 127.0.0.1 given by the
// KOMPOX_BENCH_SSH (user@127.0.0.1:port), KOMPOX_BENCH_SSH_KEY and
// KOMPOX_BENCH_SSH_KNOWN_HOSTS environment variables. Compiled dist/ code,
// as the CLI runs (see bench/archive-op.mjs). Prints one JSON line.
//   node bench/node-local-op.mjs OP ROOT [ARGS...]
//     snapshot ROOT DISK SNAP      snapshot create (on the node)
//     restore  ROOT SNAP DISK      snapshot restore into a new disk (on the node)
//     copy     ROOT DISK NEWDISK   disk copy (on the node)
// Every operation fails when it did not run on the node (a fallback would measure another path).
// The binary's V8 settings (young generation, no TurboFan): what is measured is what kompoxops does.
import '../bin/cli-flags.mjs';
// KOMPOX_BENCH_DIST: another build's dist/ (a baseline kept aside for an A/B)
const DIST = process.env.KOMPOX_BENCH_DIST ? new URL(`file://${process.env.KOMPOX_BENCH_DIST.replace(/\/?$/, '/')}`).href : new URL('../dist/', import.meta.url).href;

async function main() {
  if (process.env.KOMPOX_BENCH_MEMLOG) {
    setInterval(() => {
      const m = process.memoryUsage();
      process.stderr.write(`rss ${m.rss >> 20} heap ${m.heapUsed >> 20} external ${m.external >> 20} arrayBuffers ${m.arrayBuffers >> 20} MiB\n`);
    }, 1000).unref();
  }
  const [what, root, a, b] = process.argv.slice(2);
  if (!what || !root) throw new Error('usage: node-local-op.mjs OP ROOT ARGS...');
  const { K3sDriver } = await import(`${DIST}providers/k3s/index.js`);
  const { benchContext, findDisk, findSnapshot } = await import('./archive-op.mjs');
  const { ctx, volume } = benchContext(root);
  Object.assign(ctx.provider.settings, {
    K3S_SSH: process.env.KOMPOX_BENCH_SSH,
    K3S_SSH_KEY: process.env.KOMPOX_BENCH_SSH_KEY,
    K3S_SSH_KNOWN_HOSTS: process.env.KOMPOX_BENCH_SSH_KNOWN_HOSTS,
  });
  const driver = new K3sDriver({ env: {} });
  const logs = [];
  const op = { events: (e) => e.type === 'log' && logs.push(e.message) };
  const t0 = process.hrtime.bigint();
  let out = {};
  const disk = (name) => findDisk(driver, ctx, volume, op, name);
  if (what === 'snapshot') {
    const s = await driver.snapshots.create(ctx, volume, await disk(a), b, op);
    out = { id: s.id, bytes: s.usedBytes, sha256: s.sha256 };
  } else if (what === 'restore') {
    const s = await findSnapshot(driver, ctx, volume, op, a);
    const d = await driver.disks.create(ctx, volume, { name: b, sizeGiB: s.sizeGiB, source: { kind: 'snapshot', id: s.id } }, op);
    out = { id: d.id };
  } else if (what === 'copy') {
    const d = await driver.disks.create(ctx, volume, { name: b, source: { kind: 'disk', id: (await disk(a)).id } }, op);
    out = { id: d.id };
  } else throw new Error(`unknown operation ${what}`);
  await driver.close();
  if (!logs.some((m) => /: on the node/.test(m))) throw new Error(`${what} did not run on the node: ${logs.join(' | ')}`);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  process.stdout.write(JSON.stringify({ op: what, ms, ...out }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${e?.stack ?? String(e)}\n`);
  process.exit(1);
});
