// The pod the peer of bench/cluster.bench.ts runs `kubectl exec POD -- tar -c`
// in: a Kompox helper pod (src/usecases/helper-pod.ts, compiled dist/) that
// mounts the disk read-only exactly as the export's helper does (same image,
// mount, user and capabilities), so both sides read the same volume the same
// way. It is started, its coordinates are printed as one JSON line
// ({ namespace, pod, container, mountPath, node }), and it is held until
// stdin closes; then it is removed as every helper pod is (pod, claim and
// volume waited for), so a ReadWriteOnce disk is free for the export again.
//   node bench/cluster-peer.mjs PROJECT_DIR DISK
const DIST = new URL('../dist/', import.meta.url).href;

async function main() {
  const [dir, diskName] = process.argv.slice(2);
  if (!dir || !diskName) throw new Error('usage: cluster-peer.mjs PROJECT_DIR DISK');
  const { withOpsApp } = await import(`${DIST}app/kompoxops.js`);
  const { findDisk } = await import(`${DIST}usecases/disk.js`);
  const { withHelperPod } = await import(`${DIST}usecases/helper-pod.js`);
  const { HELPER_CAPABILITIES } = await import(`${DIST}convert/helper-pod.js`);
  await withOpsApp({ chdir: dir }, async (s) => {
    const driver = await s.driver();
    const kube = await s.kube();
    const volume = s.ctx.app.volumes[0];
    const { disk } = await findDisk(s.ctx, driver, kube, volume, diskName, {});
    const req = { purpose: 'bench', disks: [{ volume, disk, readOnly: true }], capabilities: HELPER_CAPABILITIES.read, description: 'the kubectl exec tar peer of bench/cluster.bench.ts' };
    await withHelperPod(s.ctx, driver, kube, req, {}, async (h) => {
      process.stdout.write(JSON.stringify({ namespace: h.namespace, pod: h.pod, container: h.container, mountPath: h.mountPaths[0], node: h.node }) + '\n');
      if (!process.stdin.readableEnded) await new Promise((resolve) => process.stdin.on('end', resolve).on('close', resolve).resume());
    });
  });
}

main().catch((e) => {
  process.stderr.write(`${e?.stack ?? String(e)}\n`);
  process.exit(1);
});
