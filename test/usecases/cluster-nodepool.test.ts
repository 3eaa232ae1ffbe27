// The node pool use cases with the in-memory reference node pools
// (test/support/reference-nodepools.ts), and the K3s driver, which has none:
// the spec is checked field by field before the driver is called, pools get
// the kompox.dev/node-pool label, and the refusals (existing name, unknown
// pool, the last system pool, fields fixed at creation) change nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KompoxError } from '../../src/domain/errors.js';
import type { ClusterContext } from '../../src/domain/model.js';
import { createDriver as createK3sDriver } from '../../src/providers/k3s/index.js';
import {
  createNodePool,
  deleteNodePool,
  listNodePools,
  nodePoolJson,
  nodePoolSpecFromValue,
  parseNodePoolSpec,
  updateNodePool,
  validateNodePoolSpec,
  type NodePoolSpecInput,
} from '../../src/usecases/cluster-nodepool.js';
import { ReferenceNodePools, referenceNodePoolsDriver } from '../support/reference-nodepools.js';

const ctx: ClusterContext = {
  service: { name: 'ops' },
  provider: { name: 'aks1', service: 'ops', driver: 'aks', settings: {} },
  cluster: { name: 'c1', provider: 'aks1', auth: { type: 'kubectl' }, ingress: { controller: 'traefik', namespace: 'traefik' }, settings: {} },
};

function fresh() {
  const pools = new ReferenceNodePools();
  return { pools, driver: referenceNodePoolsDriver(pools) };
}

const code = (c: string, kind?: string) => (e: unknown) => e instanceof KompoxError && e.code === c && (kind === undefined || e.kind === kind);

test('create labels the pool kompox.dev/node-pool=<name> (unless the spec sets it) and the driver gets the whole spec', async () => {
  const { pools, driver } = fresh();
  const spec: NodePoolSpecInput = {
    name: 'user1',
    mode: 'user',
    instanceType: 'Standard_D4s_v5',
    zones: ['japaneast-1', 'japaneast-2'],
    autoscaling: { min: 0, max: 5 },
    labels: { team: 'web' },
    taints: [{ key: 'dedicated', value: 'web', effect: 'NoSchedule' }],
    spot: true,
    priority: 'Spot',
    osDisk: { sizeGiB: 64, type: 'Ephemeral' },
  };
  const lines: string[] = [];
  const p = await createNodePool(ctx, driver, spec, { events: (e) => e.type === 'log' && lines.push(e.message) });
  assert.deepEqual(pools.calls.find((c) => c.method === 'create')!.spec, { ...spec, labels: { 'kompox.dev/node-pool': 'user1', team: 'web' } });
  assert.equal(p.status, 'Succeeded');
  assert.equal(p.nodeCount, 0);
  assert.deepEqual(lines, ['created node pool user1 (nodes labelled kompox.dev/node-pool=user1)']);
  // several provider pools may serve one Kompox pool (e.g. one per zone): the spec's label wins
  const z2 = await createNodePool(ctx, driver, { name: 'user1z2', labels: { 'kompox.dev/node-pool': 'user1' } });
  assert.equal(z2.labels!['kompox.dev/node-pool'], 'user1');
  assert.deepEqual((await listNodePools(ctx, driver)).map((x) => x.name), ['system', 'user1', 'user1z2']);
});

test('create refuses a name in use and changes nothing', async () => {
  const { pools, driver } = fresh();
  await createNodePool(ctx, driver, { name: 'user1', count: 2 });
  await assert.rejects(createNodePool(ctx, driver, { name: 'user1', count: 5 }), code('nodepool.exists', 'conflict'));
  assert.equal(pools.calls.filter((c) => c.method === 'create').length, 1);
  assert.equal((await listNodePools(ctx, driver)).find((x) => x.name === 'user1')!.count, 2);
});

test('update changes the given fields; new labels keep the pool label; count and autoscaling switch', async () => {
  const { driver } = fresh();
  await createNodePool(ctx, driver, { name: 'user1', autoscaling: { min: 1, max: 3 }, labels: { a: '1' } });
  const u = await updateNodePool(ctx, driver, { name: 'user1', count: 4, labels: { b: '2' } });
  assert.equal(u.count, 4);
  assert.equal(u.autoscaling, undefined);
  assert.equal(u.nodeCount, 4);
  assert.deepEqual(u.labels, { 'kompox.dev/node-pool': 'user1', b: '2' });
  const back = await updateNodePool(ctx, driver, { name: 'user1', autoscaling: { min: 2, max: 6 } });
  assert.deepEqual([back.count, back.autoscaling], [undefined, { min: 2, max: 6 }]);
  assert.deepEqual(back.labels, u.labels, 'labels left out stay');
});

test('update: an unknown pool is notfound listing the pools; a field fixed at creation is the driver\'s conflict', async () => {
  const { driver } = fresh();
  await createNodePool(ctx, driver, { name: 'user1', instanceType: 'a' });
  await assert.rejects(updateNodePool(ctx, driver, { name: 'nope', count: 1 }), (e: unknown) => code('nodepool.notfound', 'notfound')(e) && /Node pools: system, user1/.test((e as KompoxError).hint ?? ''));
  await assert.rejects(updateNodePool(ctx, driver, { name: 'user1', instanceType: 'b' }), code('nodepool.immutable', 'conflict'));
  await assert.rejects(updateNodePool(ctx, driver, { name: 'user1' }), (e: unknown) => code('nodepool.spec.invalid', 'usage')(e) && /nothing to change on node pool user1/.test((e as Error).message));
});

test('delete: never the only system pool; a pool that does not exist is notfound; otherwise gone', async () => {
  const { pools, driver } = fresh();
  await assert.rejects(deleteNodePool(ctx, driver, 'system'), code('nodepool.delete.last-system', 'conflict'));
  await assert.rejects(deleteNodePool(ctx, driver, 'ghost'), code('nodepool.notfound', 'notfound'));
  assert.equal(pools.calls.filter((c) => c.method === 'delete').length, 0);
  await createNodePool(ctx, driver, { name: 'system2', mode: 'system' });
  await deleteNodePool(ctx, driver, 'system');
  await createNodePool(ctx, driver, { name: 'user1' });
  const gone = await deleteNodePool(ctx, driver, 'user1');
  assert.equal(gone.name, 'user1');
  assert.deepEqual((await listNodePools(ctx, driver)).map((x) => x.name), ['system2']);
});

test('the K3s driver has no node pools: every verb is the typed unsupported error', async () => {
  const k3s = createK3sDriver({ env: {} });
  for (const [verb, run] of [
    ['list', () => listNodePools(ctx, k3s)],
    ['create', () => createNodePool(ctx, k3s, { name: 'x' })],
    ['update', () => updateNodePool(ctx, k3s, { name: 'x', count: 1 })],
    ['delete', () => deleteNodePool(ctx, k3s, 'x')],
  ] as const) {
    await assert.rejects(run(), (e: unknown) => {
      assert.ok(e instanceof KompoxError);
      assert.equal(e.kind, 'unsupported');
      assert.equal(e.code, 'driver.unsupported');
      assert.equal(e.message, `node pool ${verb} is not supported by the k3s driver`);
      return true;
    });
  }
});

test('a cancelled operation changes nothing', async () => {
  const { driver } = fresh();
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(createNodePool(ctx, driver, { name: 'user1' }, { signal: ac.signal }), code('interrupted', 'interrupted'));
  assert.deepEqual((await listNodePools(ctx, driver)).map((x) => x.name), ['system']);
});

// One bad value per field: the message names the field.
const BAD: Array<[string, NodePoolSpecInput, RegExp]> = [
  ['no name', { count: 1 }, /^node pool spec: name: is required/],
  ['name not a DNS label', { name: 'User_1' }, /name: "User_1" must be lower case/],
  ['unknown mode', { name: 'a', mode: 'worker' as 'user' }, /mode: unknown mode "worker".*system.*user/],
  ['empty instance type', { name: 'a', instanceType: ' ' }, /instanceType: is empty/],
  ['empty zone list', { name: 'a', zones: [] }, /zones: is an empty list/],
  ['zone not a label value', { name: 'a', zones: ['ok', 'no way'] }, /zones\[1\]: zone "no way" may contain only/],
  ['zone twice', { name: 'a', zones: ['z', 'z'] }, /zones\[1\]: zone "z" is listed twice/],
  ['negative count', { name: 'a', count: -1 }, /count: -1 is not a node count/],
  ['count and autoscaling', { name: 'a', count: 1, autoscaling: { min: 1, max: 2 } }, /count: and autoscaling exclude each other/],
  ['max below min', { name: 'a', autoscaling: { min: 3, max: 2 } }, /autoscaling\.max: 2 is below autoscaling\.min \(3\)/],
  ['max zero', { name: 'a', autoscaling: { min: 0, max: 0 } }, /autoscaling\.max: 0 is not a node count/],
  ['bad label key', { name: 'a', labels: { 'Bad Key': 'x' } }, /labels\.Bad Key: label key "Bad Key"/],
  ['bad label value', { name: 'a', labels: { team: 'a b' } }, /labels\.team: label value "a b"/],
  ['empty pool label', { name: 'a', labels: { 'kompox.dev/node-pool': '' } }, /labels\.kompox\.dev\/node-pool: label value "" must not be empty/],
  ['bad taint effect', { name: 'a', taints: [{ key: 'k', effect: 'Never' as 'NoSchedule' }] }, /taints\[0\]\.effect: unknown taint effect "Never".*NoSchedule/],
  ['bad taint key', { name: 'a', taints: [{ key: '', effect: 'NoSchedule' }] }, /taints\[0\]\.key: taint key ""/],
  ['taint twice', { name: 'a', taints: [{ key: 'k', effect: 'NoSchedule' }, { key: 'k', value: 'v', effect: 'NoSchedule' }] }, /taints\[1\]: taint k with effect NoSchedule is listed twice/],
  ['empty priority', { name: 'a', priority: '' }, /priority: is empty/],
  ['OS disk size zero', { name: 'a', osDisk: { sizeGiB: 0 } }, /osDisk\.sizeGiB: 0 is not a size in GiB/],
  ['OS disk empty', { name: 'a', osDisk: {} }, /osDisk: is empty/],
];

for (const [name, spec, says] of BAD) {
  test(`spec check: ${name} (the field is named, the driver is not called)`, async () => {
    const { pools, driver } = fresh();
    await assert.rejects(createNodePool(ctx, driver, spec), (e: unknown) => {
      assert.ok(e instanceof KompoxError, String(e));
      assert.equal(e.code, 'nodepool.spec.invalid');
      assert.equal(e.kind, 'usage');
      assert.match(`${e.message} ${e.hint ?? ''}`, says);
      return true;
    });
    assert.ok(!pools.calls.some((c) => c.method === 'create'));
  });
}

test('several problems are reported together', () => {
  assert.throws(() => validateNodePoolSpec({ name: 'A', count: -2 }, 'create'), (e: unknown) => e instanceof KompoxError && /has 2 problems/.test(e.message) && /name: "A"/.test(e.message) && /count: -2/.test(e.message));
});

test('a spec file: YAML or JSON, type errors with file:line:column and the field, unknown keys with a suggestion', async () => {
  const yml = await parseNodePoolSpec('name: user1\nzones: [1, 2]\nautoscaling: {min: 0, max: 3}\ntaints: ["a=b:NoSchedule", {key: c, effect: NoExecute}]\nlabels: {tier: 1}\n', 'pool.yml');
  assert.deepEqual(yml.spec, { name: 'user1', zones: ['1', '2'], autoscaling: { min: 0, max: 3 }, taints: [{ key: 'a', value: 'b', effect: 'NoSchedule' }, { key: 'c', effect: 'NoExecute' }], labels: { tier: '1' } });
  const json = await parseNodePoolSpec('{"name": "u2", "count": 2, "spot": true, "osDisk": {"sizeGiB": 64}}', 'pool.json');
  assert.deepEqual(json.spec, { name: 'u2', count: 2, spot: true, osDisk: { sizeGiB: 64 } });
  await assert.rejects(parseNodePoolSpec('name: u\ncount: three\n', 'pool.yml'), (e: unknown) => {
    assert.ok(e instanceof KompoxError);
    assert.deepEqual([e.location?.file, e.location?.line, e.location?.column, e.field], ['pool.yml', 2, 8, 'count']);
    assert.match(e.message, /count: must be a whole number, not the string "three"/);
    return true;
  });
  await assert.rejects(parseNodePoolSpec('name: u\ninstancetype: x\n', 'pool.yml'), (e: unknown) => e instanceof KompoxError && e.location?.line === 2 && /Did you mean "instanceType"/.test(e.hint ?? ''));
  await assert.rejects(parseNodePoolSpec('name: [u\n', 'pool.yml'), (e: unknown) => e instanceof KompoxError && /YAML syntax error/.test(e.message) && e.location?.file === 'pool.yml');
  await assert.rejects(parseNodePoolSpec('# nothing\n', 'pool.yml'), /the node pool spec is empty/);
  assert.throws(() => nodePoolSpecFromValue(['a']), /a node pool spec is a mapping/);
  // a value problem found later, on the whole spec, still points into the file
  const { spec, locate } = await parseNodePoolSpec('name: u\nautoscaling:\n  min: 3\n  max: 1\n', 'pool.yml');
  assert.throws(() => validateNodePoolSpec(spec, 'create', locate), (e: unknown) => e instanceof KompoxError && e.location?.line === 4 && e.field === 'autoscaling.max');
});

test('the -o json|yaml shape of a pool: every key, labels sorted', () => {
  assert.deepEqual(Object.keys(nodePoolJson({ name: 'x' })), ['name', 'mode', 'instanceType', 'zones', 'count', 'autoscaling', 'nodeCount', 'labels', 'taints', 'spot', 'priority', 'osDisk', 'status']);
  assert.deepEqual(Object.keys(nodePoolJson({ name: 'x', labels: { b: '1', a: '2' } }).labels), ['a', 'b']);
});
