// K3s volume facts: a disk is a directory on the node, bound as a `local`
// PersistentVolume pinned to that node (node affinity on the host name).
// The node is K3S_NODE when set; else the cluster's only node (ClusterFacts,
// read by the use case); else the host name recorded on the disk when it was
// created (K3s names its node after the host by default).
import { KompoxError } from '../../domain/errors.js';
import { lookupSetting, type AppContext, type AppVolume, type Disk } from '../../domain/model.js';
import type { ClusterFacts, DriverVolumes, VolumeClass, VolumeSourceSpec } from '../../domain/ports/driver.js';

/** Node setting that pins K3s local volumes to the node holding the directory. */
export const SETTING_K3S_NODE = 'K3S_NODE';
const HOSTNAME_LABEL = 'kubernetes.io/hostname';

function volumeClass(): VolumeClass {
  return { storageClassName: 'kompox-local', parameters: {}, topologyKey: HOSTNAME_LABEL, defaultGiB: 10, minGiB: 1, sizeSetting: 'K3S_DISK_SIZE' };
}

function pvSource(ctx: AppContext, volume: AppVolume, disk: Disk | undefined, facts: ClusterFacts): VolumeSourceSpec {
  const placeholder = disk === undefined;
  const node = lookupSetting(ctx, SETTING_K3S_NODE)?.value ?? (facts.nodes.length === 1 ? facts.nodes[0]!.name : undefined) ?? disk?.zone;
  if (!node && !placeholder) {
    throw new KompoxError('config', `the K3s node that holds disk ${disk.name} is not configured`, {
      field: `cluster.settings.${SETTING_K3S_NODE}`,
      hint: `Set cluster.settings.${SETTING_K3S_NODE} (or provider.settings.${SETTING_K3S_NODE}) to the node name (kubectl get nodes).`,
    });
  }
  // A local PV must name an absolute directory on the node and be pinned to that node.
  const path = placeholder ? `/var/lib/kompox/placeholder/${volume.name}` : disk.id;
  const cls = volumeClass();
  return {
    storageClassName: cls.storageClassName,
    source: {
      local: { path },
      nodeAffinity: {
        required: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: HOSTNAME_LABEL, operator: 'In', values: [node ?? 'kompox-placeholder'] }] }],
        },
      },
    },
    accessModes: ['ReadWriteOnce'],
    ...(placeholder ? { placeholder: true } : {}),
  };
}

export const volumes: DriverVolumes = { volumeClass, pvSource };
