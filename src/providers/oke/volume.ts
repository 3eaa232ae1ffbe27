// OKE volume facts: OCI Block Volume CSI (a block volume is at least 50 GiB).
import { csiVolumes } from '../csi.js';

export const volumes = csiVolumes({ csiDriver: 'blockvolume.csi.oraclecloud.com', storageClassName: 'oci-bv', defaultGiB: 50, minGiB: 50, sizeSetting: 'OCI_VOLUME_SIZE' });
