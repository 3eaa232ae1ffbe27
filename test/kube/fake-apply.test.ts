// Server-side apply of the fake API server follows structured-merge-diff with
// the merge rules Kubernetes publishes (test/support/fake-kube/schema-markers.json):
// keyed lists, sets, atomic and granular structs and maps, field ownership
// per manager, conflicts and force.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { KompoxError } from '../../src/domain/errors.js';
import type { KubeClient, KubeObject } from '../../src/kube/index.js';
import { SCHEMA_PROVENANCE, type FakeKube } from '../support/fake-kube/index.js';
import { startFakeCluster } from '../support/kube.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const NS = 'apply';

function deployment(containers: Any[], extra: Any = {}): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: NS },
    spec: { replicas: 0, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers, ...extra } } },
  };
}

function managed(o: KubeObject, manager: string): Any | undefined {
  return (o.metadata.managedFields as Any[] | undefined)?.find((e) => e.manager === manager);
}

describe('server-side apply merge rules (fake API server)', () => {
  let fake: FakeKube;
  let kube: KubeClient;
  before(async () => {
    // no controllers: only what the appliers write is in the objects
    ({ fake, kube } = await startFakeCluster({ controllers: false }));
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  });
  after(async () => fake.close());

  test('keyed lists merge item by item: containers by name, ports by containerPort+protocol (TCP when omitted), env by name', async () => {
    await kube.apply(
      deployment([
        { name: 'web', image: 'nginx:1', ports: [{ containerPort: 80 }], env: [{ name: 'A', value: '1' }] },
        { name: 'side', image: 'busybox:1' },
      ]),
    );
    // another manager adds an env var to the container web only: no conflict, nothing else touched
    await kube.apply(
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: NS }, spec: { template: { spec: { containers: [{ name: 'web', env: [{ name: 'B', value: '2' }] }] } } } } as KubeObject,
      { fieldManager: 'other-tool', force: false },
    );
    // our next apply drops the container side and adds a port; B stays (other-tool owns it)
    const out = await kube.apply(deployment([{ name: 'web', image: 'nginx:1', ports: [{ containerPort: 80 }, { containerPort: 81, protocol: 'TCP' }], env: [{ name: 'A', value: '1' }] }]));
    const containers = (out.spec as Any).template.spec.containers as Any[];
    assert.deepEqual(containers.map((c) => c.name), ['web']);
    assert.deepEqual(containers[0].env, [{ name: 'A', value: '1' }, { name: 'B', value: '2' }]);
    assert.deepEqual(containers[0].ports.map((p: Any) => [p.containerPort, p.protocol]), [[80, 'TCP'], [81, 'TCP']]);
    const f = managed(out, 'kompox')!.fieldsV1;
    const web = f['f:spec']['f:template']['f:spec']['f:containers']['k:{"name":"web"}'];
    assert.ok(web['f:ports']['k:{"containerPort":80,"protocol":"TCP"}'], JSON.stringify(web));
    assert.ok(web['f:env']['k:{"name":"A"}']);
    assert.equal(web['f:env']['k:{"name":"B"}'], undefined);
    assert.ok(managed(out, 'other-tool')!.fieldsV1['f:spec']['f:template']['f:spec']['f:containers']['k:{"name":"web"}']['f:env']['k:{"name":"B"}']);
  });

  test('a change to a field another manager owns conflicts, naming manager and path; force takes it over', async () => {
    await kube.apply(deployment([{ name: 'web', image: 'nginx:1' }]));
    await assert.rejects(kube.apply(deployment([{ name: 'web', image: 'nginx:2' }]), { fieldManager: 'other-tool', force: false }), (e: unknown) => {
      assert.ok(e instanceof KompoxError);
      assert.equal(e.kind, 'conflict');
      assert.match(e.message, /conflict with "kompox": \.spec\.template\.spec\.containers\[name="web"\]\.image/);
      return true;
    });
    const forced = await kube.apply(deployment([{ name: 'web', image: 'nginx:2' }]), { fieldManager: 'other-tool', force: true });
    assert.equal((forced.spec as Any).template.spec.containers[0].image, 'nginx:2');
    assert.equal(managed(forced, 'kompox')!.fieldsV1['f:spec']['f:template']['f:spec']['f:containers']['k:{"name":"web"}']['f:image'], undefined);
  });

  test('atomic maps and structs are replaced whole: a Service selector, a node affinity NodeSelector, a LabelSelector', async () => {
    const svc = (selector: Record<string, string>, labels: Record<string, string>): KubeObject => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'svc', namespace: NS, labels },
      spec: { selector, ports: [{ name: 'http', port: 80 }] },
    });
    await kube.apply(svc({ a: '1', b: '2' }, { mine: 'x' }));
    const out = await kube.apply(svc({ c: '3' }, { theirs: 'y' }), { fieldManager: 'other-tool', force: true });
    // spec.selector is x-kubernetes-map-type: atomic; metadata.labels is granular
    assert.deepEqual((out.spec as Any).selector, { c: '3' });
    assert.deepEqual(out.metadata.labels, { mine: 'x', theirs: 'y' });

    const affinity = (values: string[]) => ({ nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values }] }] } } });
    await kube.apply(deployment([{ name: 'web', image: 'nginx:2' }], { affinity: affinity(['a']) }), { force: true });
    const dep = await kube.apply(
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: NS }, spec: { template: { spec: { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] }] } } } } } } } as KubeObject,
      { fieldManager: 'other-tool', force: true },
    );
    assert.deepEqual((dep.spec as Any).template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution, { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] }] });
  });

  test('sets merge by value (finalizers); a manager removing its own value leaves the others\'', async () => {
    const cm = (finalizers: string[]): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'fin', namespace: NS, finalizers }, data: { a: '1' } });
    await kube.apply(cm(['example.com/a']));
    await kube.apply(cm(['example.com/b']), { fieldManager: 'other-tool', force: false });
    let live = await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', name: 'fin', namespace: NS });
    assert.deepEqual(live!.metadata.finalizers, ['example.com/a', 'example.com/b']);
    await kube.apply(cm([]));
    live = await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', name: 'fin', namespace: NS });
    assert.deepEqual(live!.metadata.finalizers, ['example.com/b']);
    await kube.apply(cm([]), { fieldManager: 'other-tool', force: false });
    await kube.delete({ apiVersion: 'v1', kind: 'ConfigMap', name: 'fin', namespace: NS });
    assert.equal(await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', name: 'fin', namespace: NS }), undefined);
  });

  test('fields no manager owns (server defaults) stay; a container removed by its only manager goes with its defaults', async () => {
    const out = await kube.apply(deployment([{ name: 'web', image: 'nginx:2' }, { name: 'extra', image: 'busybox:1' }]), { force: true });
    const extra = ((out.spec as Any).template.spec.containers as Any[]).find((c) => c.name === 'extra')!;
    assert.equal(extra.terminationMessagePath, '/dev/termination-log');
    const again = await kube.apply(deployment([{ name: 'web', image: 'nginx:2' }]), { force: true });
    const cs = (again.spec as Any).template.spec.containers as Any[];
    assert.deepEqual(cs.map((c) => c.name), ['web']);
    assert.equal(cs[0].terminationMessagePath, '/dev/termination-log');
    assert.equal((again.spec as Any).template.spec.dnsPolicy, 'ClusterFirst');
  });
});

describe('PersistentVolume spec.claimRef under server-side apply, per server version', () => {
  const claimRef = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: NS, name: 'data' };
  const pv: KubeObject = {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: 'pv-apply' },
    spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], persistentVolumeReclaimPolicy: 'Retain', hostPath: { path: '/tmp/x' }, claimRef },
  };
  /** What the PV binder writes when it binds (a PUT by kube-controller-manager). */
  async function bindAsController(fake: FakeKube): Promise<void> {
    const r = fake.resource('v1', 'PersistentVolume')!;
    const live = fake.store.get(r, undefined, 'pv-apply')!;
    const res = await fetch(`${fake.url}/api/v1/persistentvolumes/pv-apply?fieldManager=kube-controller-manager`, {
      method: 'PUT',
      headers: { authorization: 'Bearer fake-token', 'content-type': 'application/json' },
      body: JSON.stringify({ ...live, spec: { ...(live.spec as Any), claimRef: { ...claimRef, uid: 'claim-uid', resourceVersion: '42' } } }),
    });
    assert.equal(res.status, 200);
  }

  test('v1.25 and later (+structType=granular): a forced re-apply keeps the uid the binder wrote', async () => {
    const { fake, kube } = await startFakeCluster({ controllers: false, version: 'v1.31.0' });
    try {
      await kube.apply(pv);
      await bindAsController(fake);
      const again = await kube.apply(pv);
      assert.equal((again.spec as Any).claimRef.uid, 'claim-uid');
      assert.ok(managed(again, 'kube-controller-manager')!.fieldsV1['f:spec']['f:claimRef']['f:uid']);
    } finally {
      await fake.close();
    }
  });

  test('v1.22 to v1.24 (ObjectReference +structType=atomic): the binder owns claimRef, a re-apply conflicts, a forced one drops the uid', async () => {
    const { fake, kube } = await startFakeCluster({ controllers: false, version: 'v1.24.17' });
    try {
      await kube.apply(pv);
      await bindAsController(fake);
      await assert.rejects(kube.apply(pv, { force: false }), /conflict with "kube-controller-manager": \.spec\.claimRef/);
      const again = await kube.apply(pv);
      assert.deepEqual((again.spec as Any).claimRef, claimRef);
    } finally {
      await fake.close();
    }
  });
});

test('the merge rules are vendored with their provenance, not guessed', () => {
  assert.equal(SCHEMA_PROVENANCE.repository, 'kubernetes/kubernetes');
  assert.match(SCHEMA_PROVENANCE.commit!, /^[0-9a-f]{40}$/);
  assert.match(SCHEMA_PROVENANCE.path!, /applyconfigurations\/internal\/internal\.go$/);
  const markers = JSON.parse(readFileSync(new URL('../support/fake-kube/schema-markers.json', import.meta.url), 'utf8')) as Any;
  assert.equal(markers.types['core.v1.PodSpec'].fields.containers, 'list<core.v1.Container>[name]');
  assert.equal(markers.types['core.v1.ServiceSpec'].fields.ports, 'list<core.v1.ServicePort>[port,protocol]');
  assert.equal(markers.types['core.v1.PersistentVolumeSpec'].fields.claimRef, 'core.v1.ObjectReference!granular');
  assert.equal(markers.types['core.v1.ObjectReference'].atomic, true);
});
