// The volume-binding assessment `app status` shows (pure): claim and volume
// phases, whether they point at each other (claim.spec.volumeName ↔ PV
// claimRef namespace/name/uid), and each problem with what to do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '../../src/kube/index.js';
import { assessVolumeBindings } from '../../src/usecases/volume-bindings.js';

const NS = 'k4x-web';
const labels = { 'app.kubernetes.io/managed-by': 'kompox', 'app.kubernetes.io/instance': NS, 'kompox.dev/volume': 'default' };

function claim(name: string, o: { phase?: string; volumeName?: string; uid?: string; deleting?: boolean } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace: NS, uid: o.uid ?? `uid-${name}`, labels, ...(o.deleting ? { deletionTimestamp: '2025-01-01T00:00:00Z', finalizers: ['kubernetes.io/pvc-protection'] } : {}) },
    spec: { volumeName: o.volumeName },
    status: { phase: o.phase ?? 'Bound' },
  };
}

function volume(name: string, o: { phase?: string; ref?: { namespace?: string; name?: string; uid?: string } | null; deleting?: boolean } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name, labels, ...(o.deleting ? { deletionTimestamp: '2025-01-01T00:00:00Z', finalizers: ['kubernetes.io/pv-protection'] } : {}) },
    spec: { ...(o.ref === null ? {} : { claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', ...(o.ref ?? {}) } }) },
    status: { phase: o.phase ?? 'Bound' },
  };
}

const codes = (b: ReturnType<typeof assessVolumeBindings>) => b.map((x) => x.problems.map((p) => p.code));

test('a claim and its volume that point at each other (namespace, name, uid): matched, no problem', () => {
  const [b] = assessVolumeBindings(NS, [claim('data', { volumeName: 'pv1' })], [volume('pv1', { ref: { namespace: NS, name: 'data', uid: 'uid-data' } })]);
  assert.deepEqual(b, {
    volume: 'default',
    claim: { name: 'data', phase: 'Bound', uid: 'uid-data', volumeName: 'pv1', terminating: false },
    persistentVolume: { name: 'pv1', phase: 'Bound', claimRef: { namespace: NS, name: 'data', uid: 'uid-data' }, terminating: false },
    matched: true,
    problems: [],
  });
});

test('Lost: the volume no longer carries the claim\'s uid (what a forced re-apply did on Kubernetes 1.22–1.24); deploy again', () => {
  const [b] = assessVolumeBindings(NS, [claim('data', { phase: 'Lost', volumeName: 'pv1' })], [volume('pv1', { phase: 'Available', ref: { namespace: NS, name: 'data' } })]);
  assert.equal(b!.matched, false);
  assert.deepEqual(b!.problems.map((p) => [p.code, p.remedy]), [['binding.lost', 'deploy']]);
  assert.match(b!.problems[0]!.message, /claim data is Lost: PersistentVolume pv1 no longer carries the claim's uid in its claimRef; a new pod of the app cannot start/);
  assert.match(b!.problems[0]!.hint, /^Deploy the app again: .*claim's uid/);
});

test('Lost: the volume is gone', () => {
  const [b] = assessVolumeBindings(NS, [claim('data', { phase: 'Lost', volumeName: 'pv1' })], []);
  assert.equal(b!.persistentVolume, null);
  assert.match(b!.problems[0]!.message, /PersistentVolume pv1 does not exist/);
});

test('misbound: Bound, but the volume names an earlier claim of the same name, or a claim of another namespace', () => {
  const earlier = assessVolumeBindings(NS, [claim('data', { volumeName: 'pv1' })], [volume('pv1', { ref: { namespace: NS, name: 'data', uid: 'old' } })]);
  assert.deepEqual(codes(earlier), [['binding.misbound']]);
  assert.match(earlier[0]!.problems[0]!.message, /names an earlier claim of the same name \(uid old, this claim's is uid-data\)/);
  const foreign = assessVolumeBindings(NS, [claim('data', { volumeName: 'pv1' })], [volume('pv1', { ref: { namespace: 'other', name: 'steal', uid: 'x' } })]);
  assert.deepEqual(codes(foreign), [['binding.misbound']]);
  assert.match(foreign[0]!.problems[0]!.message, /bound to claim other\/steal, not to this one/);
  assert.match(foreign[0]!.problems[0]!.hint, /another claim \(other\/steal\) is bound to it: its data may be exposed/);
  const noRef = assessVolumeBindings(NS, [claim('data', { volumeName: 'pv1' })], [volume('pv1', { ref: null })]);
  assert.match(noRef[0]!.problems[0]!.message, /has no claimRef \(any claim could bind it\)/);
});

test('Pending: waiting for the binder, or its volume missing', () => {
  const waiting = assessVolumeBindings(NS, [claim('data', { phase: 'Pending' })], [volume('pv1', { phase: 'Available', ref: { namespace: NS, name: 'data' } })]);
  assert.deepEqual(codes(waiting), [['binding.pending']]);
  assert.equal(waiting[0]!.persistentVolume?.name, 'pv1', 'paired by the claimRef');
  assert.match(waiting[0]!.problems[0]!.hint, /binds it within seconds.*without a controller manager nothing binds it/);
  // pre-bound by Kompox (volumeName set, claimRef by namespace and name): the normal wait, not a broken binding
  const preBound = assessVolumeBindings(NS, [claim('data', { phase: 'Pending', volumeName: 'pv1' })], [volume('pv1', { phase: 'Available', ref: { namespace: NS, name: 'data' } })]);
  assert.deepEqual(preBound[0]!.problems.map((p) => [p.code, p.remedy]), [['binding.pending', 'wait']]);
  assert.equal(preBound[0]!.problems[0]!.message, 'claim data is Pending (not bound yet)');
  const missing = assessVolumeBindings(NS, [claim('data', { phase: 'Pending', volumeName: 'pv1' })], []);
  assert.match(missing[0]!.problems[0]!.message, /Pending \(not bound yet; its PersistentVolume pv1 does not exist\)/);
  assert.match(missing[0]!.problems[0]!.hint, /^Deploy the app again/);
});

test('Terminating claim and volume: what holds them and that a deploy waits', () => {
  const b = assessVolumeBindings(NS, [claim('data', { volumeName: 'pv1', deleting: true })], [volume('pv1', { ref: { namespace: NS, name: 'data', uid: 'uid-data' }, deleting: true })]);
  assert.deepEqual(codes(b), [['binding.terminating', 'binding.terminating']]);
  assert.match(b[0]!.problems[0]!.message, /claim data is being deleted \(since 2025-01-01T00:00:00Z; finalizers: kubernetes.io\/pvc-protection\)/);
  assert.match(b[0]!.problems[1]!.message, /PersistentVolume pv1 is being deleted .*pv-protection/);
  assert.match(b[0]!.problems[0]!.hint, /a deploy waits for that/);
  assert.equal(b[0]!.claim?.terminating, true);
});

test('a volume no claim uses (Released), and volumes that could not be read', () => {
  const b = assessVolumeBindings(NS, [], [volume('pv0', { phase: 'Released', ref: { namespace: NS, name: 'old', uid: 'gone' } })]);
  assert.deepEqual(codes(b), [['binding.released']]);
  assert.equal(b[0]!.claim, null);
  assert.match(b[0]!.problems[0]!.message, /PersistentVolume pv0 is Released: no claim of the app uses it \(it is reserved for k4x-web\/old\)/);
  // a namespace-limited identity: only the claim's own state
  const unknown = assessVolumeBindings(NS, [claim('data', { volumeName: 'pv1' })], undefined);
  assert.deepEqual(codes(unknown), [[]]);
  assert.equal(unknown[0]!.persistentVolume, null);
  assert.equal(unknown[0]!.matched, false);
});
