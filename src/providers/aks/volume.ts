// AKS volume facts: Azure Disk CSI. Azure records zones as "1"/"2"/"3" while
// AKS nodes are labelled "<location>-<n>" (japaneast-1), so the zone maps to
// the node label with AZURE_LOCATION; without it no affinity is added
// (regional disks have no zone either).
import { lookupSetting } from '../../domain/model.js';
import { csiVolumes } from '../csi.js';

export const volumes = csiVolumes({
  csiDriver: 'disk.csi.azure.com',
  storageClassName: 'managed-csi',
  defaultGiB: 32,
  minGiB: 1,
  sizeSetting: 'AZURE_DISK_SIZE',
  nodeZone(ctx, zone) {
    if (zone.includes('-')) return zone;
    const location = lookupSetting(ctx, 'AZURE_LOCATION')?.value;
    return location && /^\d+$/.test(zone) ? `${location.toLowerCase()}-${zone}` : undefined;
  },
});
