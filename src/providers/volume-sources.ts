// Pure per-driver PersistentVolume sources and default disk sizes, used by
// buildAppManifest when the caller does not pass a driver's own volumeSource.
// Static PVs: the disk exists before the PV (the disk use cases create it), so
// the PV names it by provider id and the storage class is only a binding label.
import { KompoxError } from '../domain/errors.js';
import type { AppContext, AppVolume, Disk, DriverName } from '../domain/model.js';
import type { VolumeSourceSpec } from './driver.js';

export const PLACEHOLDER_PREFIX = 'kompox-placeholder://';

/** Node setting that pins K3s local volumes to the node holding the directory. */
export const SETTING_K3S_NODE = 'K3S_NODE';

interface DriverVolumeInfo {
  csiDriver?: string;
  storageClassName: string;
  defaultGiB: number;
  minGiB: number;
  /** App/cluster/provider setting with the default disk size in GiB (spec: AZURE_DISK_SIZE). */
  sizeSetting: string;
  /** Zone label for nodeAffinity when the disk records its zone. */
  zoneLabel?: string;
}

export const DRIVER_VOLUMES: Readonly<Record<DriverName, DriverVolumeInfo>> = {
  aks: { csiDriver: 'disk.csi.azure.com', storageClassName: 'managed-csi', defaultGiB: 32, minGiB: 1, sizeSetting: 'AZURE_DISK_SIZE', zoneLabel: 'topology.kubernetes.io/zone' },
  eks: { csiDriver: 'ebs.csi.aws.com', storageClassName: 'gp3', defaultGiB: 10, minGiB: 1, sizeSetting: 'AWS_EBS_SIZE', zoneLabel: 'topology.kubernetes.io/zone' },
  gke: { csiDriver: 'pd.csi.storage.gke.io', storageClassName: 'standard-rwo', defaultGiB: 10, minGiB: 10, sizeSetting: 'GCP_DISK_SIZE', zoneLabel: 'topology.kubernetes.io/zone' },
  oke: { csiDriver: 'blockvolume.csi.oraclecloud.com', storageClassName: 'oci-bv', defaultGiB: 50, minGiB: 50, sizeSetting: 'OCI_VOLUME_SIZE', zoneLabel: 'topology.kubernetes.io/zone' },
  k3s: { storageClassName: 'kompox-local', defaultGiB: 10, minGiB: 1, sizeSetting: 'K3S_DISK_SIZE' },
};

function setting(ctx: AppContext, key: string): { value: string; field: string } | undefined {
  for (const [scope, settings] of [['app', ctx.app.settings], ['cluster', ctx.cluster.settings], ['provider', ctx.provider.settings]] as const) {
    const v = settings?.[key];
    if (v !== undefined && v !== '') return { value: v, field: `${scope}.settings.${key}` };
  }
  return undefined;
}

/** Default size of a new disk for `volume` (volume size, then the driver size setting, then the driver default), and the minimum. */
export function diskSizeDefaults(ctx: AppContext, volume: AppVolume): { defaultGiB: number; minGiB: number } {
  const info = DRIVER_VOLUMES[ctx.provider.driver];
  let def = volume.sizeGiB;
  if (def === undefined) {
    const s = setting(ctx, info.sizeSetting);
    if (s) {
      const n = Number(s.value);
      if (!Number.isInteger(n) || n <= 0) {
        throw new KompoxError('config', `${s.field} must be a whole number of GiB, got "${s.value}"`, { field: s.field, hint: `Write e.g. ${info.sizeSetting}: ${info.defaultGiB}.` });
      }
      def = n;
    }
  }
  return { defaultGiB: Math.max(def ?? info.defaultGiB, info.minGiB), minGiB: info.minGiB };
}

/**
 * The node label value of a disk's zone. Azure records zones as "1"/"2"/"3" while AKS nodes
 * are labelled "<location>-<n>" (japaneast-1), so AKS needs AZURE_LOCATION; without it no
 * affinity is added (regional disks have no zone either).
 */
function nodeZone(ctx: AppContext, zone: string | undefined): string | undefined {
  if (!zone) return undefined;
  if (ctx.provider.driver !== 'aks' || zone.includes('-')) return zone;
  const location = setting(ctx, 'AZURE_LOCATION')?.value;
  return location && /^\d+$/.test(zone) ? `${location.toLowerCase()}-${zone}` : undefined;
}

/** The PV source for one disk of one volume; a marked placeholder when there is no disk yet. */
export function volumeSourceFor(ctx: AppContext, volume: AppVolume, disk: Disk | undefined): VolumeSourceSpec {
  const driver = ctx.provider.driver;
  const info = DRIVER_VOLUMES[driver];
  const placeholder = disk === undefined;
  const handle = disk?.id ?? `${PLACEHOLDER_PREFIX}${volume.name}`;
  if (driver === 'k3s') {
    const node = setting(ctx, SETTING_K3S_NODE);
    if (!node && !placeholder) {
      throw new KompoxError('config', `the K3s node that holds disk ${disk.name} is not configured`, {
        field: `cluster.settings.${SETTING_K3S_NODE}`,
        hint: `Set cluster.settings.${SETTING_K3S_NODE} (or provider.settings.${SETTING_K3S_NODE}) to the node name (kubectl get nodes).`,
      });
    }
    // A local PV must name an absolute directory on the node and be pinned to that node.
    const path = placeholder ? `/var/lib/kompox/placeholder/${volume.name}` : disk.id;
    return {
      storageClassName: info.storageClassName,
      source: {
        local: { path },
        nodeAffinity: {
          required: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node?.value ?? 'kompox-placeholder'] }] }],
          },
        },
      },
      accessModes: ['ReadWriteOnce'],
      ...(placeholder ? { placeholder: true } : {}),
    };
  }
  const source: Record<string, unknown> = { csi: { driver: info.csiDriver, volumeHandle: handle, fsType: 'ext4' } };
  const zone = nodeZone(ctx, disk?.zone);
  if (zone && info.zoneLabel) {
    // A zonal disk attaches only to nodes of its zone: keep the pod there.
    source.nodeAffinity = {
      required: { nodeSelectorTerms: [{ matchExpressions: [{ key: info.zoneLabel, operator: 'In', values: [zone] }] }] },
    };
  }
  return { storageClassName: info.storageClassName, source, accessModes: ['ReadWriteOnce'], ...(placeholder ? { placeholder: true } : {}) };
}
