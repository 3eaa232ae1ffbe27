// A minimal applied app (namespace, a PV/PVC pair, a ConfigMap) for tests of
// apply/destroy rules that don't need the converter.
import { appLabels, appNamespace } from '../../src/domain/names.js';
import type { AppContext } from '../../src/domain/model.js';
import type { KubeObject } from '../../src/kube/index.js';

export function minimalApp(ctx: AppContext): { ns: string; labels: Record<string, string>; pvName: string; objects(): KubeObject[] } {
  const ns = appNamespace(ctx);
  const labels = appLabels(ctx);
  const pvName = `${ns}-default-aaaa`;
  return {
    ns,
    labels,
    pvName,
    objects: () => [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels } },
      { apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: pvName, labels }, spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], persistentVolumeReclaimPolicy: 'Retain', hostPath: { path: '/data/aaaa' }, claimRef: { namespace: ns, name: 'default-aaaa' } } },
      { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'default-aaaa', namespace: ns, labels }, spec: { accessModes: ['ReadWriteOnce'], volumeName: pvName, resources: { requests: { storage: '1Gi' } } } },
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'conf', namespace: ns, labels }, data: { a: '1' } },
    ],
  };
}
