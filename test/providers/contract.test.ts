// The driver contract suite (test/providers/contract/driver-contract.ts) run
// against the K3s driver (on temp dirs as its node) and against the in-memory
// reference block-storage driver (test/support/reference-driver/), each with
// the fake Kubernetes API server for the use cases.
import { lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import type { AppContext, AppVolume, Disk } from '../../src/domain/model.js';
import { appNamespace } from '../../src/domain/names.js';
import { K3sDriver } from '../../src/providers/k3s/index.js';
import { startFakeCluster } from '../support/kube.js';
import { ReferenceCloud, referenceDriver } from '../support/reference-driver/index.js';
import { driverContract } from './contract/driver-contract.js';
import type { DriverHarness, Files } from './contract/harness.js';
import { appCtx, sandbox, snapshotOfTree } from './k3s-fixtures.js';

let apps = 0;
const nextApp = () => `app-${++apps}`;

function withDeployment(ctx: AppContext, zones: string[] | undefined): AppContext {
  if (zones) ctx.app.deployment = { zones };
  return ctx;
}

/** Regular files under `root`, path → content. */
async function readTree(root: string): Promise<Files> {
  const out: Files = {};
  const go = async (dir: string): Promise<void> => {
    for (const n of (await readdir(dir)).sort()) {
      const p = join(dir, n);
      const st = await lstat(p);
      if (st.isDirectory()) await go(p);
      else if (st.isFile()) out[relative(root, p)] = await readFile(p, 'utf8');
    }
  };
  await go(root);
  return out;
}

async function writeTree(root: string, files: Files): Promise<void> {
  for (const [p, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, p)), { recursive: true });
    await writeFile(join(root, p), content);
  }
}

const k3s: DriverHarness = {
  label: 'k3s',
  async start() {
    const sb = await sandbox();
    const { fake, kube } = await startFakeCluster();
    const driver = new K3sDriver();
    let foreign = 0;
    return {
      driver,
      kube,
      app: (over = {}) => withDeployment(appCtx(sb, { app: over.app ?? nextApp(), ...(over.cluster ? { cluster: over.cluster } : {}), ...(over.volumes ? { volumes: over.volumes } : {}) }), over.zones),
      write: (disk, files) => writeTree(disk.id, files),
      read: (disk) => readTree(disk.id),
      // a directory under the volume's disk root without kompox-disk.json (e.g. left by local-path)
      async foreignDisk(ctx: AppContext, volume: AppVolume, files: Files) {
        const id = join(sb.diskRoot, appNamespace(ctx), volume.name, `foreign-${++foreign}`, 'data');
        await mkdir(id, { recursive: true });
        await writeTree(id, files);
        return id;
      },
      zones: [],
      // the layout's directories ({root}/{namespace}/{volume}/) are made once and kept; what is in them counts
      residue: async () => (await snapshotOfTree(sb.dir)).filter((e) => !/^\/(disks|snapshots)(\/[^/]+){0,2}\/$/.test(e)),
      async close() {
        await driver.close();
        await fake.close();
        await sb.cleanup();
      },
    };
  },
};

const reference: DriverHarness = {
  label: 'reference',
  async start() {
    const cloud = new ReferenceCloud();
    const driver = referenceDriver(cloud);
    const { fake, kube } = await startFakeCluster();
    let foreign = 0;
    return {
      driver,
      kube,
      app(over = {}) {
        const name = over.app ?? nextApp();
        const cluster = over.cluster ?? 'c1';
        const ctx: AppContext = {
          service: { name: 'ops' },
          provider: { name: 'ref1', service: 'ops', driver: 'aks', settings: {} },
          cluster: { name: cluster, provider: 'ref1', auth: { type: 'kubectl' }, ingress: { controller: 'traefik', namespace: 'traefik' }, settings: {} },
          app: { name, cluster, compose: 'services: {}', ingress: {}, resources: {}, settings: {}, volumes: (over.volumes ?? ['default']).map((v) => ({ name: v, options: {} })) },
        };
        return withDeployment(ctx, over.zones);
      },
      write: async (disk: Disk, files) => cloud.write(disk.id, files),
      read: async (disk: Disk) => Object.fromEntries(Object.entries(cloud.read(disk.id)).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])),
      foreignDisk: (_ctx, _volume, files) => cloud.foreignDisk('kompox-ref1', `legacy-${++foreign}`, files),
      async attach(disk: Disk) {
        cloud.attach(disk.id, 'node-1');
        return async () => cloud.detach(disk.id);
      },
      zones: cloud.zones.map((z) => `${cloud.region}-${z}`),
      option: { key: 'sku', valid: 'premium', invalid: 'gold-plated', read: async (disk: Disk) => (await cloud.getDisk(disk.id)).sku },
      residue: async () => cloud.resourceIds(),
      close: () => fake.close(),
    };
  },
};

driverContract(k3s);
driverContract(reference);
