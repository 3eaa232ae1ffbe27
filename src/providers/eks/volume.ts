// EKS volume facts: Amazon EBS CSI (zones are recorded as the node label, e.g. us-east-1a).
import { csiVolumes } from '../csi.js';

export const volumes = csiVolumes({ csiDriver: 'ebs.csi.aws.com', storageClassName: 'gp3', defaultGiB: 10, minGiB: 1, sizeSetting: 'AWS_EBS_SIZE' });
