// Per-driver PV sources and default sizes (src/providers/volume-sources.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diskSizeDefaults, volumeSourceFor } from '../../src/providers/volume-sources.js';
import { KompoxError } from '../../src/domain/errors.js';
import type { Disk } from '../../src/domain/model.js';
import { makeCtx } from './helpers.js';

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
