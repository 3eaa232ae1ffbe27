// app.deployment (node pools, zones) → required node affinity on the pod, and
// the checks against the disks' zones (errors: the pod could never start) and
// the cluster's nodes (warnings: no node matches now). The golden cases
// deployment-* and volumes-zones-split cover the same through the real loaders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convert, makeCtx, makeLoaded, podSpec, validateObjects } from './helpers.js';
import { convertApp } from '../../src/convert/index.js';
import { volumeInputs } from '../support/volumes.js';
import type { AppContext, Disk } from '../../src/domain/model.js';
import type { ClusterNode } from '../../src/domain/ports/driver.js';
import { describePlacement, nodeFitsPv, nodeSatisfies, placementRequirements, pvZones } from '../../src/domain/placement.js';

const loaded = makeLoaded({ services: { db: { image: 'postgres:16', volumes: [{ type: 'volume', source: 'pg', target: '/var/lib/postgresql/data' }] } }, volumes: { pg: {} } });

function disk(over: Partial<Disk> = {}): Disk {
  return { name: 'd1', volume: 'default', id: 'projects/p/zones/z/disks/d1', sizeGiB: 10, createdAt: '2026-01-01T00:00:00Z', tags: {}, ...over };
}

function withDeployment(d: AppContext['app']['deployment'], over: Parameters<typeof makeCtx>[0] = {}): AppContext {
  return makeCtx({ ...over, app: { ...over.app, deployment: d } });
}

function run(ctx: AppContext, disks: Record<string, Disk | undefined> = {}, nodes?: ClusterNode[]) {
  return convertApp({
    ctx,
    project: loaded.project,
    projectDir: loaded.projectDir,
    envFromFile: {},
    facts: { files: {}, env: {} },
    disks,
    volumes: volumeInputs(ctx, disks),
    ...(nodes ? { nodes } : {}),
  });
}

function node(name: string, labels: Record<string, string>): ClusterNode {
  return { name, labels: { 'kubernetes.io/hostname': name, ...labels }, ...(labels['topology.kubernetes.io/zone'] ? { zone: labels['topology.kubernetes.io/zone'] } : {}) };
}

test('without app.deployment the pod has no affinity (manifests of apps not using the feature are unchanged)', () => {
  const r = convert(makeCtx(), loaded);
  assert.deepEqual(r.errors, []);
  assert.equal(podSpec(r.objects).affinity, undefined);
  assert.equal(podSpec(convert(withDeployment({}), loaded).objects).affinity, undefined, 'an empty deployment is no constraint');
});

test('pools and zones become one required node selector term on kompox.dev/node-pool and topology.kubernetes.io/zone', () => {
  const r = convert(withDeployment({ pools: ['user', 'spot'], zones: ['japaneast-1'] }), loaded);
  assert.deepEqual(r.errors, []);
  validateObjects(r.objects);
  assert.deepEqual(podSpec(r.objects).affinity, {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          {
            matchExpressions: [
              { key: 'kompox.dev/node-pool', operator: 'In', values: ['user', 'spot'] },
              { key: 'topology.kubernetes.io/zone', operator: 'In', values: ['japaneast-1'] },
            ],
          },
        ],
      },
    },
  });
  const poolOnly = podSpec(convert(withDeployment({ pools: ['user'] }), loaded).objects).affinity;
  assert.deepEqual(poolOnly.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions, [{ key: 'kompox.dev/node-pool', operator: 'In', values: ['user'] }]);
});

test('a zonal disk outside app.deployment.zone is a conversion error naming the disk, both zones and what to do', () => {
  // AKS records zone "1"; with AZURE_LOCATION the PV pins the pod to japaneast-1
  const ctx = withDeployment({ zones: ['japaneast-2'] }, { providerSettings: { AZURE_LOCATION: 'japaneast' } });
  const r = run(ctx, { default: disk({ zone: '1' }) });
  assert.equal(r.errors.length, 1);
  const e = r.errors[0]!;
  assert.match(e.message, /disk d1 of volume default is in zone japaneast-1, but app\.deployment\.zone allows only japaneast-2/);
  assert.match(e.hint ?? '', /into zone japaneast-2 and attach the copy, or add japaneast-1 to app\.deployment\.zone/);
  // one of several allowed zones is enough
  assert.deepEqual(run(withDeployment({ zones: ['japaneast-2', 'japaneast-1'] }, { providerSettings: { AZURE_LOCATION: 'japaneast' } }), { default: disk({ zone: '1' }) }).errors, []);
});

test('no error when the disk does not confine the zone: placeholders, regional disks, K3s host-name pins', () => {
  const ctx = withDeployment({ zones: ['zone-b'] });
  assert.deepEqual(run(ctx).errors, [], 'placeholder (no disk yet)');
  assert.deepEqual(run(ctx, { default: disk() }).errors, [], 'a disk without zone');
  const k3s = withDeployment({ zones: ['zone-b'] }, { driver: 'k3s', providerSettings: { K3S_NODE: 'node1' } });
  assert.deepEqual(run(k3s, { default: disk({ id: '/var/lib/kompox/disks/d1', zone: 'node1' }) }).errors, [], 'K3s disk.zone is its node, not a zone');
});

test('disks of one app in different zones are an error even without app.deployment', () => {
  const ctx = makeCtx({ driver: 'gke', app: { volumes: [{ name: 'default', options: {} }, { name: 'db', options: {} }] } });
  const r = run(ctx, { default: disk({ zone: 'a' }), db: disk({ name: 'd2', volume: 'db', zone: 'b' }) });
  assert.equal(r.errors.length, 1);
  assert.match(r.errors[0]!.message, /disks are in different zones \(disk d1 of volume default: a; disk d2 of volume db: b\)/);
  assert.deepEqual(run(ctx, { default: disk({ zone: 'a' }), db: disk({ name: 'd2', volume: 'db', zone: 'a' }) }).errors, []);
  // same zone as each other, but not one the app allows: the per-disk error says it
  const r2 = run(withDeployment({ zones: ['c'] }, { driver: 'gke', app: { volumes: ctx.app.volumes } }), { default: disk({ zone: 'a' }), db: disk({ name: 'd2', volume: 'db', zone: 'a' }) });
  assert.equal(r2.errors.length, 2);
});

test('with the cluster nodes: no node carrying the pool label is a warning that says to label them', () => {
  const r = run(withDeployment({ pools: ['user'] }), {}, [node('n1', {}), node('n2', {})]);
  assert.deepEqual(r.errors, []);
  const w = r.warnings.find((x) => x.message.includes('kompox.dev/node-pool'));
  assert.ok(w, JSON.stringify(r.warnings));
  assert.match(w.message, /no node of the cluster carries the kompox\.dev\/node-pool label/);
  assert.match(w.hint ?? '', /kompox\.dev\/node-pool=user/);
});

test('with the cluster nodes: a placement no node matches now is a warning listing the nodes by pool/zone; a match is silent', () => {
  const nodes = [node('n1', { 'kompox.dev/node-pool': 'system', 'topology.kubernetes.io/zone': 'z1' }), node('n2', { 'kompox.dev/node-pool': 'user', 'topology.kubernetes.io/zone': 'z2' })];
  const miss = run(withDeployment({ pools: ['user'], zones: ['z1'] }), {}, nodes);
  const w = miss.warnings.find((x) => x.message.includes('no node of the cluster matches'));
  assert.ok(w, JSON.stringify(miss.warnings));
  assert.match(w.message, /matches node pool user, zone z1 now \(nodes by pool\/zone: system\/z1, user\/z2\): the pod stays Pending/);
  const hit = run(withDeployment({ pools: ['user'], zones: ['z1', 'z2'] }), {}, nodes);
  assert.ok(!hit.warnings.some((x) => x.message.includes('no node')), JSON.stringify(hit.warnings));
  // the disks' node affinity counts too: a K3s disk pinned to n1 (pool system) and pool user
  const k3s = withDeployment({ pools: ['user'] }, { driver: 'k3s', providerSettings: { K3S_NODE: 'n1' } });
  const pinned = run(k3s, { default: disk({ id: '/var/lib/kompox/disks/d1' }) }, nodes);
  assert.ok(pinned.warnings.some((x) => /matches node pool user and the disks' node affinity now/.test(x.message)), JSON.stringify(pinned.warnings));
});

test('domain placement helpers: requirements, PV zones, Kubernetes match-expression semantics', () => {
  assert.deepEqual(placementRequirements(undefined), []);
  assert.equal(describePlacement({ pools: ['a', 'b'], zones: ['z'] }), 'node pool a or b, zone z');
  const term = (exprs: object[]) => ({ matchExpressions: exprs });
  const src = (terms: object[]) => ({ nodeAffinity: { required: { nodeSelectorTerms: terms } } });
  const zoneIn = (...v: string[]) => ({ key: 'topology.kubernetes.io/zone', operator: 'In', values: v });
  assert.deepEqual(pvZones(src([term([zoneIn('a', 'b')])])), ['a', 'b']);
  assert.deepEqual(pvZones(src([term([zoneIn('b')]), term([zoneIn('a')])])), ['a', 'b'], 'terms are alternatives');
  assert.deepEqual(pvZones(src([term([zoneIn('a', 'b'), zoneIn('b', 'c')])])), ['b'], 'expressions of one term all hold');
  assert.equal(pvZones(src([term([zoneIn('a')]), term([{ key: 'kubernetes.io/hostname', operator: 'In', values: ['n'] }])])), undefined, 'a term without zone: not confined');
  assert.equal(pvZones({ csi: {} }), undefined);
  const labels = { a: '1', n: '5' };
  assert.ok(nodeSatisfies(labels, [{ key: 'a', operator: 'In', values: ['1'] }, { key: 'b', operator: 'DoesNotExist' }, { key: 'n', operator: 'Gt', values: ['4'] }]));
  assert.ok(!nodeSatisfies(labels, [{ key: 'a', operator: 'NotIn', values: ['1'] }]));
  assert.ok(!nodeSatisfies(labels, [{ key: 'n', operator: 'Lt', values: ['5'] }]));
  assert.ok(nodeFitsPv(labels, {}), 'no affinity fits every node');
  assert.ok(nodeFitsPv(labels, src([term([{ key: 'x', operator: 'Exists' }]), term([{ key: 'a', operator: 'Exists' }])])));
});
