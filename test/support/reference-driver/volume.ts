// Volume facts of the reference driver, as data: a CSI driver, a static-PV
// storage class label, the SKU as a class parameter (app.volumes options
// `sku`), the zone label as topology. Disks record their zone in the node
// label notation (refregion-1), so the PV's node affinity uses it as it is.
import type { AppContext, AppVolume } from '../../../src/domain/model.js';
import type { DriverVolumes, VolumeClass } from '../../../src/domain/ports/driver.js';
import { csiVolumes } from '../../../src/providers/csi.js';

export const REFERENCE_CSI_DRIVER = 'disk.csi.reference.kompox.dev';
export const DEFAULT_SKU = 'standard';

export function referenceVolumes(region: string): DriverVolumes {
  const base = csiVolumes({
    csiDriver: REFERENCE_CSI_DRIVER,
    storageClassName: 'reference-disk',
    defaultGiB: 8,
    minGiB: 1,
    sizeSetting: 'REFERENCE_DISK_SIZE',
    nodeZone: (_ctx, zone) => (zone.startsWith(`${region}-`) ? zone : undefined),
  });
  return {
    volumeClass(ctx: AppContext, volume: AppVolume): VolumeClass {
      return { ...base.volumeClass(ctx, volume), parameters: { skuName: volume.options.sku ?? DEFAULT_SKU } };
    },
    pvSource: base.pvSource,
  };
}
