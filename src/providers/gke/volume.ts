// GKE volume facts: Compute Engine persistent disk CSI (a PD is at least 10 GiB).
import { csiVolumes } from '../csi.js';

export const volumes = csiVolumes({ csiDriver: 'pd.csi.storage.gke.io', storageClassName: 'standard-rwo', defaultGiB: 10, minGiB: 10, sizeSetting: 'GCP_DISK_SIZE' });
