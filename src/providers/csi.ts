// The PersistentVolume source every CSI-backed driver (AKS, EKS, GKE, OKE)
// gives its disks: the CSI driver with the disk's provider id as volume
// handle, and node affinity on the zone label for a zonal disk. The facts
// (driver name, class, sizes, how a disk's zone maps to the node label) live
// in each provider's folder; this is the one place the shape is built.
// Static PVs: the disk exists before the PV (the disk use cases create it),
// so the PV names it by provider id and the storage class is only a binding label.
import type { AppContext, AppVolume, Disk } from '../domain/model.js';
import type { DriverVolumes, VolumeClass, VolumeSourceSpec } from '../domain/ports/driver.js';
import { ZONE_LABEL } from '../domain/placement.js';

export const PLACEHOLDER_PREFIX = 'kompox-placeholder://';

export interface CsiFacts {
  csiDriver: string;
  storageClassName: string;
  fsType?: string;
  defaultGiB: number;
  minGiB: number;
  sizeSetting: string;
  /**
   * The node label value of a disk's zone; default the zone as recorded on
   * the disk. Undefined: no affinity (regional disk, or not knowable).
   */
  nodeZone?(ctx: AppContext, zone: string): string | undefined;
}

/** The pure volume facts (DriverVolumes) of a CSI-backed driver. */
export function csiVolumes(f: CsiFacts): DriverVolumes {
  const volumeClass = (): VolumeClass => ({
    csiDriver: f.csiDriver,
    storageClassName: f.storageClassName,
    fsType: f.fsType ?? 'ext4',
    parameters: {},
    topologyKey: ZONE_LABEL,
    defaultGiB: f.defaultGiB,
    minGiB: f.minGiB,
    sizeSetting: f.sizeSetting,
  });
  return {
    volumeClass,
    pvSource(ctx: AppContext, volume: AppVolume, disk: Disk | undefined): VolumeSourceSpec {
      const cls = volumeClass();
      const placeholder = disk === undefined;
      const handle = disk?.id ?? `${PLACEHOLDER_PREFIX}${volume.name}`;
      const source: Record<string, unknown> = { csi: { driver: cls.csiDriver, volumeHandle: handle, fsType: cls.fsType } };
      const zone = disk?.zone ? (f.nodeZone ? f.nodeZone(ctx, disk.zone) : disk.zone) : undefined;
      if (zone) {
        // A zonal disk attaches only to nodes of its zone: keep the pod there.
        source.nodeAffinity = {
          required: { nodeSelectorTerms: [{ matchExpressions: [{ key: cls.topologyKey, operator: 'In', values: [zone] }] }] },
        };
      }
      return { storageClassName: cls.storageClassName, source, accessModes: ['ReadWriteOnce'], ...(placeholder ? { placeholder: true } : {}) };
    },
  };
}
