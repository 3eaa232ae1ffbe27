// App volumes → one PersistentVolume + PersistentVolumeClaim per volume, bound
// statically (volumeName + claimRef) to the volume's current disk, and the
// mapping of compose volumes / relative bind dirs onto those disks.
import { ANN_APP, DEFAULT_VOLUME, appVolumes, type AppVolume } from '../domain/model.js';
import { appId, appLabels, appNamespace, pvName, pvcName } from '../domain/names.js';
import type { KubeObject } from '../domain/ports/kube.js';
import type { VolumeSourceSpec } from '../domain/ports/driver.js';
import type { Diagnostics } from './diagnostics.js';
import { dnsLabel } from './naming.js';
import type { ConvertInput } from './types.js';

export const ANN_PLACEHOLDER = 'kompox.dev/placeholder';
/** Where the init container mounts each disk to create the data directories. */
export const INIT_MOUNT_ROOT = '/kompox';

export interface AppVolumePlan {
  volume: AppVolume;
  /** Pod volume name for this disk. */
  podVolume: string;
  claim: string;
  capacityGiB: number;
}

export interface StoragePlan {
  volumes: Map<string, AppVolumePlan>;
  /** The app volume that takes compose volumes / bind dirs without their own app volume. */
  fallback?: AppVolumePlan;
  objects: { pvs: KubeObject[]; pvcs: KubeObject[] };
}

export { appVolumes };

export interface StaticBindingInput {
  pvName: string;
  claim: string;
  namespace: string;
  capacityGiB: number;
  /** The disk's PV source (the driver's pvSource). */
  source: VolumeSourceSpec;
  pvLabels: Record<string, string>;
  pvAnnotations: Record<string, string>;
  pvcLabels: Record<string, string>;
  pvcAnnotations?: Record<string, string>;
}

/**
 * One disk bound statically: a PersistentVolume reserved for its claim
 * (claimRef) and the claim naming it (volumeName), so the PV binder pairs
 * exactly these two. Reclaim policy Retain: deleting the pair never deletes
 * the disk. The app's volumes and the helper pods (helper-pod.ts) use it.
 */
export function staticBinding(b: StaticBindingInput): { pv: KubeObject; pvc: KubeObject } {
  const storage = `${b.capacityGiB}Gi`;
  const pv: KubeObject = {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: b.pvName, labels: { ...b.pvLabels }, annotations: { ...b.pvAnnotations } },
    spec: {
      capacity: { storage },
      accessModes: b.source.accessModes ?? ['ReadWriteOnce'],
      // Retain: deleting the claim (disk swap, destroy) must never delete the disk.
      persistentVolumeReclaimPolicy: 'Retain',
      storageClassName: b.source.storageClassName,
      volumeMode: 'Filesystem',
      claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: b.namespace, name: b.claim },
      ...b.source.source,
    },
  };
  const pvc: KubeObject = {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: b.claim, namespace: b.namespace, labels: { ...b.pvcLabels }, ...(b.pvcAnnotations ? { annotations: { ...b.pvcAnnotations } } : {}) },
    spec: {
      accessModes: b.source.accessModes ?? ['ReadWriteOnce'],
      storageClassName: b.source.storageClassName,
      volumeName: b.pvName,
      volumeMode: 'Filesystem',
      resources: { requests: { storage } },
    },
  };
  return { pv, pvc };
}

export function planStorage(input: ConvertInput, diags: Diagnostics): StoragePlan {
  const { ctx } = input;
  const ns = appNamespace(ctx);
  const labels = appLabels(ctx);
  const volumes = new Map<string, AppVolumePlan>();
  const pvs: KubeObject[] = [];
  const pvcs: KubeObject[] = [];
  appVolumes(ctx).forEach((volume, i) => {
    const disk = input.disks[volume.name];
    const given = input.volumes[volume.name];
    const spec = given && !('error' in given.source) ? given.source : undefined;
    if (!given || !spec) {
      const err: { message: string; hint?: string; field?: string } = given && 'error' in given.source ? given.source.error : { message: `no storage is known for volume ${volume.name}` };
      diags.error({ message: err.message, hint: err.hint, key: err.field, path: err.field ? err.field.split('.') : ['app', 'volumes', i] });
      // Still known as a volume, so its compose volumes are not reported a second time.
      volumes.set(volume.name, { volume, podVolume: dnsLabel(`disk-${volume.name}`), claim: pvcName(volume.name, disk?.id), capacityGiB: 0 });
      return;
    }
    const { defaultGiB, minGiB } = given;
    let capacityGiB = disk?.sizeGiB ?? defaultGiB;
    if (!disk && volume.sizeGiB !== undefined && volume.sizeGiB < minGiB) {
      diags.warn({
        message: `app.volumes[${i}] (${volume.name}): ${volume.sizeGiB} GiB is below the ${ctx.provider.driver} minimum; ${minGiB} GiB is used`,
        path: ['app', 'volumes', i],
      });
      capacityGiB = minGiB;
    }
    const claim = pvcName(volume.name, disk?.id);
    const volumeLabels = { ...labels, 'kompox.dev/volume': volume.name };
    const { pv, pvc } = staticBinding({
      pvName: pvName(ns, volume.name, disk?.id),
      claim,
      namespace: ns,
      capacityGiB,
      source: spec,
      pvLabels: volumeLabels,
      pvAnnotations: { [ANN_APP]: appId(ctx), ...(spec.placeholder ? { [ANN_PLACEHOLDER]: 'true' } : {}) },
      pvcLabels: volumeLabels,
    });
    if (spec.placeholder) {
      diags.warn({
        message: `volume ${volume.name} has no disk yet: the PersistentVolume is a placeholder; app deploy creates the disk`,
        path: ['app', 'volumes', i],
      });
    }
    pvs.push(pv);
    pvcs.push(pvc);
    volumes.set(volume.name, { volume, podVolume: dnsLabel(`disk-${volume.name}`), claim, capacityGiB });
  });
  const fallback = volumes.get(DEFAULT_VOLUME) ?? (volumes.size === 1 ? [...volumes.values()][0] : undefined);
  return { volumes, fallback, objects: { pvs, pvcs } };
}
