// The drivers' pure volume facts, loaded statically for tests that convert
// synchronously (production code loads them lazily: providers/index.ts).
import type { AppContext, Disk, DriverName } from '../../src/domain/model.js';
import type { ClusterFacts, DriverVolumes } from '../../src/domain/ports/driver.js';
import type { VolumeInput } from '../../src/convert/types.js';
import { volumes as aks } from '../../src/providers/aks/volume.js';
import { volumes as eks } from '../../src/providers/eks/volume.js';
import { volumes as gke } from '../../src/providers/gke/volume.js';
import { volumes as oke } from '../../src/providers/oke/volume.js';
import { volumes as k3s } from '../../src/providers/k3s/volume.js';
import { pvInputs } from '../../src/usecases/pv-sources.js';

export const DRIVER_VOLUMES: Readonly<Record<DriverName, DriverVolumes>> = { aks, eks, gke, oke, k3s };

/** What the use cases hand the converter for `ctx`'s driver: PV sources of `disks` (placeholders without) and sizes. */
export function volumeInputs(ctx: AppContext, disks: Record<string, Disk | undefined> = {}, facts?: ClusterFacts): Record<string, VolumeInput> {
  return pvInputs(ctx, DRIVER_VOLUMES[ctx.provider.driver], disks, facts);
}
