// Pure deploy planning: apply/delete order, prune set, inventory round trip, diff.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '../../src/kube/types.js';
import {
  changedFields,
  classify,
  formatChange,
  inventoryObject,
  parseInventory,
  planPrune,
  refKey,
  sortForApply,
  sortForDelete,
  summarize,
} from '../../src/usecases/plan.js';

const o = (kind: string, name: string, apiVersion = 'v1', namespace: string | undefined = 'ns'): KubeObject => ({
  apiVersion,
  kind,
  metadata: namespace ? { name, namespace } : { name },
});

test('sortForApply puts dependencies first (a claim before its volume, whose claimRef then carries the claim\'s uid) and keeps the order within a kind', () => {
  const input = [
    o('Ingress', 'i', 'networking.k8s.io/v1'),
    o('Middleware', 'm', 'traefik.io/v1alpha1'),
    o('Service', 's'),
    o('Deployment', 'd', 'apps/v1'),
    o('ConfigMap', 'c2'),
    o('PersistentVolumeClaim', 'pvc'),
    o('ConfigMap', 'c1'),
    o('PersistentVolume', 'pv', 'v1', undefined),
    o('NetworkPolicy', 'np', 'networking.k8s.io/v1'),
    o('Secret', 'sec'),
    o('RoleBinding', 'rb', 'rbac.authorization.k8s.io/v1'),
    o('Namespace', 'ns', 'v1', undefined),
  ];
  assert.deepEqual(sortForApply(input).map((x) => x.metadata.name), ['ns', 'rb', 'np', 'c2', 'c1', 'sec', 'pvc', 'pv', 'd', 's', 'm', 'i']);
});

test('sortForDelete is the reverse: dependents first, PVC before PV', () => {
  const refs = [o('PersistentVolume', 'pv', 'v1', undefined), o('Deployment', 'd', 'apps/v1'), o('PersistentVolumeClaim', 'pvc'), o('Ingress', 'i', 'networking.k8s.io/v1')].map(
    (x) => ({ apiVersion: x.apiVersion, kind: x.kind, name: x.metadata.name, namespace: x.metadata.namespace }),
  );
  assert.deepEqual(sortForDelete(refs).map((r) => r.name), ['i', 'd', 'pvc', 'pv']);
});

test('planPrune: previous minus desired, never Namespace/PV/PVC, identity ignores the API version', () => {
  const prev = [
    { apiVersion: 'v1', kind: 'Namespace', name: 'ns' },
    { apiVersion: 'v1', kind: 'ConfigMap', name: 'old', namespace: 'ns' },
    { apiVersion: 'v1', kind: 'ConfigMap', name: 'kept', namespace: 'ns' },
    { apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'data-1', namespace: 'ns' },
    { apiVersion: 'v1', kind: 'PersistentVolume', name: 'ns-data-1' },
    { apiVersion: 'networking.k8s.io/v1beta1', kind: 'Ingress', name: 'web', namespace: 'ns' },
    { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', name: 'gone', namespace: 'ns' },
  ];
  const desired = [o('ConfigMap', 'kept'), o('Ingress', 'web', 'networking.k8s.io/v1')];
  assert.deepEqual(planPrune(prev, desired).map((r) => `${r.kind}/${r.name}`), ['Ingress/gone', 'ConfigMap/old']);
  assert.equal(refKey(prev[5]!), refKey(desired[1]!));
});

test('inventory round trip is sorted, de-duplicated and deterministic', () => {
  const refs = [
    { apiVersion: 'v1', kind: 'Service', name: 'b', namespace: 'ns' },
    { apiVersion: 'v1', kind: 'Namespace', name: 'ns' },
    { apiVersion: 'v1', kind: 'Service', name: 'a', namespace: 'ns' },
    { apiVersion: 'v1', kind: 'Service', name: 'b', namespace: 'ns' },
  ];
  const cm = inventoryObject('ns', { l: 'v' }, refs);
  assert.equal(cm.metadata.name, 'kompox-inventory');
  assert.deepEqual(parseInventory(cm).map((r) => r.name), ['ns', 'a', 'b']);
  assert.deepEqual(inventoryObject('ns', { l: 'v' }, [...refs].reverse()), cm);
  assert.deepEqual(parseInventory({ ...cm, data: { objects: 'not json' } }), []);
  assert.deepEqual(parseInventory(undefined), []);
});

test('changedFields ignores server-populated metadata and status', () => {
  const live: KubeObject = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'd', namespace: 'ns', resourceVersion: '5', uid: 'u', generation: 2, creationTimestamp: 't', managedFields: [{}], labels: { a: '1' } },
    spec: { replicas: 1 },
    status: { readyReplicas: 1 },
  };
  const same: KubeObject = { ...live, metadata: { name: 'd', namespace: 'ns', labels: { a: '1' } }, status: {} };
  assert.deepEqual(changedFields(same, live), []);
  const next: KubeObject = { ...same, metadata: { ...same.metadata, labels: { a: '2' } }, spec: { replicas: 2 } };
  assert.deepEqual(changedFields(next, live), ['metadata.labels', 'spec']);
});

test('classify: create, unchanged by resourceVersion after a real apply, fields for dry runs', () => {
  const live: KubeObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'ns', resourceVersion: '7' }, data: { a: '1' } };
  assert.equal(classify(live, undefined).action, 'create');
  assert.equal(classify({ ...live }, live).action, 'unchanged');
  const dry: KubeObject = { ...live, data: { a: '2' } }; // dry run keeps the old resourceVersion
  assert.deepEqual(classify(dry, live, { dryRun: true }), { ref: { apiVersion: 'v1', kind: 'ConfigMap', name: 'c', namespace: 'ns' }, action: 'change', fields: ['data'] });
  const changes = [classify(dry, live, { dryRun: true }), classify(live, undefined)];
  assert.deepEqual(summarize(changes), { create: 1, change: 1, unchanged: 0, prune: 0 });
  assert.equal(formatChange(changes[0]!, true), 'would change ConfigMap/ns/c (data)');
  assert.equal(formatChange(changes[1]!, false), 'created ConfigMap/ns/c');
});
