// Per-driver volume facts (src/providers/<driver>/volume.ts): PV sources as
// plain data, the volume class, default sizes (domain diskSizeDefaults), and
// what the use case hands the converter (pvInputs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KompoxError } from '../../src/domain/errors.js';
import type { AppContext, AppVolume, Disk } from '../../src/domain/model.js';
import { NO_CLUSTER_FACTS, diskSizeDefaults as sizesOf, type ClusterFacts } from '../../src/domain/ports/driver.js';
import { loadDriverVolumes } from '../../src/providers/index.js';
import { pvInputs } from '../../src/usecases/pv-sources.js';
import { makeCtx } from '../convert/helpers.js';
import { DRIVER_VOLUMES } from '../support/volumes.js';

const volumeSourceFor = (ctx: AppContext, v: AppVolume, d: Disk | undefined, facts: ClusterFacts = NO_CLUSTER_FACTS) => DRIVER_VOLUMES[ctx.provider.driver].pvSource(ctx, v, d, facts);
const diskSizeDefaults = (ctx: AppContext, v: AppVolume) => sizesOf(ctx, DRIVER_VOLUMES[ctx.provider.driver].volumeClass(ctx, v), v);

const vol = { name: 'default', options: {} };
const disk = (id: string, zone?: string): Disk => ({ name: 'd1', volume: 'default', id, sizeGiB: 10, createdAt: '2026-01-01T00:00:00Z', tags: {}, ...(zone ? { zone } : {}) });

test('CSI drivers and classes', () => {
  const cases = [
    ['aks', 'disk.csi.azure.com', 'managed-csi'],
    ['eks', 'ebs.csi.aws.com', 'gp3'],
    ['gke', 'pd.csi.storage.gke.io', 'standard-rwo'],
    ['oke', 'blockvolume.csi.oraclecloud.com', 'oci-bv'],
  ] as const;
  for (const [driver, csi, cls] of cases) {
    const s = volumeSourceFor(makeCtx({ driver }), vol, disk('id-1'));
    assert.equal(s.storageClassName, cls);
    assert.deepEqual(s.source.csi, { driver: csi, volumeHandle: 'id-1', fsType: 'ext4' });
    assert.equal(s.placeholder, undefined);
  }
});

test('zone affinity when the disk knows its zone (AKS: <location>-<zone>, needs AZURE_LOCATION)', () => {
  const eks = volumeSourceFor(makeCtx({ driver: 'eks' }), vol, disk('vol-1', 'us-east-1a'));
  assert.deepEqual((eks.source.nodeAffinity as any).required.nodeSelectorTerms[0].matchExpressions[0], { key: 'topology.kubernetes.io/zone', operator: 'In', values: ['us-east-1a'] });
  assert.equal(volumeSourceFor(makeCtx({ driver: 'aks' }), vol, disk('x', '1')).source.nodeAffinity, undefined);
  const aks = volumeSourceFor(makeCtx({ driver: 'aks', providerSettings: { AZURE_LOCATION: 'japaneast' } }), vol, disk('x', '2'));
  assert.deepEqual((aks.source.nodeAffinity as any).required.nodeSelectorTerms[0].matchExpressions[0].values, ['japaneast-2']);
});

test('placeholder without a disk', () => {
  const s = volumeSourceFor(makeCtx({ driver: 'gke' }), vol, undefined);
  assert.equal(s.placeholder, true);
  assert.equal((s.source.csi as any).volumeHandle, 'kompox-placeholder://default');
  const k = volumeSourceFor(makeCtx({ driver: 'k3s' }), vol, undefined);
  assert.equal(k.placeholder, true);
  assert.ok((k.source.local as any).path.startsWith('/'));
});

test('K3s: local path pinned to K3S_NODE; a disk without the setting is an error naming it', () => {
  const ctx = makeCtx({ driver: 'k3s', providerSettings: { K3S_NODE: 'node7' } });
  const s = volumeSourceFor(ctx, vol, disk('/srv/kompox/disks/a/data'));
  assert.deepEqual(s.source.local, { path: '/srv/kompox/disks/a/data' });
  assert.deepEqual((s.source.nodeAffinity as any).required.nodeSelectorTerms[0].matchExpressions[0].values, ['node7']);
  assert.throws(() => volumeSourceFor(makeCtx({ driver: 'k3s' }), vol, disk('/srv/x')), (e: unknown) => e instanceof KompoxError && /K3S_NODE/.test(e.field ?? '') && /K3S_NODE/.test(e.hint ?? ''));
});

test('default sizes: volume size, then the size setting, then the driver default; minimums honoured', () => {
  assert.deepEqual(diskSizeDefaults(makeCtx({ driver: 'aks' }), vol), { defaultGiB: 32, minGiB: 1 });
  assert.equal(diskSizeDefaults(makeCtx({ driver: 'aks', app: { settings: { AZURE_DISK_SIZE: '50' } } }), vol).defaultGiB, 50);
  assert.equal(diskSizeDefaults(makeCtx({ driver: 'aks', app: { settings: { AZURE_DISK_SIZE: '50' } } }), { ...vol, sizeGiB: 20 }).defaultGiB, 20);
  assert.equal(diskSizeDefaults(makeCtx({ driver: 'oke' }), { ...vol, sizeGiB: 20 }).defaultGiB, 50);
  assert.throws(() => diskSizeDefaults(makeCtx({ driver: 'aks', app: { settings: { AZURE_DISK_SIZE: 'big' } } }), vol), /app\.settings\.AZURE_DISK_SIZE must be a whole number/);
});

test('K3s without K3S_NODE: the cluster\'s only node (facts read by the use case), else the node recorded on the disk', () => {
  const ctx = makeCtx({ driver: 'k3s' });
  const one: ClusterFacts = { nodes: [{ name: 'only-node', labels: {} }] };
  const values = (s: ReturnType<typeof volumeSourceFor>) => (s.source.nodeAffinity as any).required.nodeSelectorTerms[0].matchExpressions[0].values;
  assert.deepEqual(values(volumeSourceFor(ctx, vol, disk('/srv/x', 'recorded-host'), one)), ['only-node']);
  const two: ClusterFacts = { nodes: [{ name: 'a', labels: {} }, { name: 'b', labels: {} }] };
  assert.deepEqual(values(volumeSourceFor(ctx, vol, disk('/srv/x', 'recorded-host'), two)), ['recorded-host']);
  const pinned = makeCtx({ driver: 'k3s', providerSettings: { K3S_NODE: 'node7' } });
  assert.deepEqual(values(volumeSourceFor(pinned, vol, disk('/srv/x', 'recorded-host'), one)), ['node7']);
});

test('volume classes are data: CSI driver, class, fsType, topology key, sizes and the size setting', async () => {
  const aks = (await loadDriverVolumes('aks')).volumeClass(makeCtx({ driver: 'aks' }), vol);
  assert.deepEqual(aks, { csiDriver: 'disk.csi.azure.com', storageClassName: 'managed-csi', fsType: 'ext4', parameters: {}, topologyKey: 'topology.kubernetes.io/zone', defaultGiB: 32, minGiB: 1, sizeSetting: 'AZURE_DISK_SIZE' });
  const k3s = (await loadDriverVolumes('k3s')).volumeClass(makeCtx({ driver: 'k3s' }), vol);
  assert.equal(k3s.csiDriver, undefined);
  assert.equal(k3s.topologyKey, 'kubernetes.io/hostname');
  assert.equal(k3s.sizeSetting, 'K3S_DISK_SIZE');
  await assert.rejects(loadDriverVolumes('nope'), /unknown provider driver "nope"/);
});

test('pvInputs: a source the driver cannot give becomes the volume\'s error (reported by the converter); sizes come with each source', () => {
  const ctx = makeCtx({ driver: 'k3s' });
  const inputs = pvInputs(ctx, DRIVER_VOLUMES.k3s, { default: disk('/srv/x') });
  const src = inputs.default!.source;
  assert.ok('error' in src);
  assert.match(src.error.message, /K3s node that holds disk d1 is not configured/);
  assert.equal(src.error.field, 'cluster.settings.K3S_NODE');
  const ok = pvInputs(makeCtx({ driver: 'oke' }), DRIVER_VOLUMES.oke, {});
  assert.equal(ok.default!.defaultGiB, 50);
  assert.equal(ok.default!.minGiB, 50);
  assert.ok(!('error' in ok.default!.source) && ok.default!.source.placeholder);
});
