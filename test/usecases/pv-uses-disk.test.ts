// Which PersistentVolumes mount a disk: disk delete refuses a disk one of them
// mounts, and the transfer finds the pods using it through them. A local or
// host path compared as a plain string let a hand-written PV's `DIR/` pass,
// and the disk was deleted under it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KubeObject } from '../../src/domain/ports/kube.js';
import { pvUsesDisk } from '../../src/usecases/transfer.js';

const pv = (spec: Record<string, unknown>): KubeObject => ({ apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: 'p' }, spec });
const disk = '/var/lib/kompox/disks/k4x-app/default/d1/data';

test('a local or host path names the disk however it is written, or a directory inside or above it', () => {
  for (const path of [disk, `${disk}/`, `${disk}//`, `${disk}/.`, `${disk}/./`, `/var/lib/kompox/disks/k4x-app/default/d1/../d1/data`, `${disk}/sub`, '/var/lib/kompox/disks', '/']) {
    assert.equal(pvUsesDisk(pv({ local: { path } }), disk), true, path);
    assert.equal(pvUsesDisk(pv({ hostPath: { path } }), disk), true, `hostPath ${path}`);
  }
  for (const path of [`${disk}x`, '/var/lib/kompox/disks/k4x-app/default/d10/data', '/var/lib/kompox/disks/k4x-app/default/d1/dat']) {
    assert.equal(pvUsesDisk(pv({ local: { path } }), disk), false, path);
  }
});

test('a CSI handle is the disk id exactly (a cloud disk id is not a path)', () => {
  const id = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/d1';
  assert.equal(pvUsesDisk(pv({ csi: { driver: 'disk.csi.azure.com', volumeHandle: id } }), id), true);
  assert.equal(pvUsesDisk(pv({ csi: { driver: 'disk.csi.azure.com', volumeHandle: `${id}/` } }), id), false);
  assert.equal(pvUsesDisk(pv({ csi: { driver: 'ebs.csi.aws.com', volumeHandle: 'vol-1' } }), 'vol-1'), true);
  assert.equal(pvUsesDisk(pv({}), disk), false);
});
