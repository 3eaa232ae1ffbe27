// kompoxops cluster nodepool: every flag of create/update as commander parses
// it (the program's real option definitions) and as it becomes the spec;
// --spec files merged with flags; then the commands end to end, one process
// per command as users run them, through the real program and composition
// root with the in-memory reference node pools in place of the aks driver
// (test/support/reference-cli.ts), and through the real binary with K3s,
// which has no node pools.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/kompoxops/main.js';
import { mergeNodePoolSpec, nodePoolSpecFromFlags, type NodePoolFlags } from '../../src/cli/kompoxops/cluster-nodepool.js';
import { KompoxError } from '../../src/domain/errors.js';
import { STACK_LINE, TSX, runCli, type CliResult } from '../support/cli.js';

/** The options commander hands the action of `cluster nodepool VERB ARGS` (the action itself is replaced). */
async function parsed(verb: 'create' | 'update', args: string[]): Promise<NodePoolFlags> {
  const program = buildProgram();
  program.exitOverride();
  const np = program.commands.find((c) => c.name() === 'cluster')!.commands.find((c) => c.name() === 'nodepool')!;
  const cmd = np.commands.find((c) => c.name() === verb)! as Command;
  let got: NodePoolFlags | undefined;
  cmd.action((opts: NodePoolFlags) => {
    got = opts;
  });
  await program.parseAsync(['node', 'kompoxops', 'cluster', 'nodepool', verb, ...args]);
  return got!;
}

for (const verb of ['create', 'update'] as const) {
  test(`nodepool ${verb}: every flag becomes its spec field`, async () => {
    const f = await parsed(verb, [
      '-N', 'user1', '--mode', 'user', '--instance-type', 'Standard_D4s_v5',
      '--zone', 'japaneast-1', '--zone', 'japaneast-2,japaneast-3',
      '--min-count', '0', '--max-count', '5',
      '--label', 'team=web', '--label', 'tier=1,env=prod',
      '--taint', 'dedicated=web:NoSchedule', '--taint', 'gpu:NoExecute',
      '--spot', '--priority', 'Spot', '--os-disk-size', '64Gi', '--os-disk-type', 'Ephemeral',
    ]);
    assert.deepEqual(await nodePoolSpecFromFlags(f), {
      name: 'user1',
      mode: 'user',
      instanceType: 'Standard_D4s_v5',
      zones: ['japaneast-1', 'japaneast-2', 'japaneast-3'],
      autoscaling: { min: 0, max: 5 },
      labels: { team: 'web', tier: '1', env: 'prod' },
      taints: [{ key: 'dedicated', value: 'web', effect: 'NoSchedule' }, { key: 'gpu', effect: 'NoExecute' }],
      spot: true,
      priority: 'Spot',
      osDisk: { sizeGiB: 64, type: 'Ephemeral' },
    });
    assert.deepEqual(await nodePoolSpecFromFlags(await parsed(verb, ['-N', 'x', '--count', '3', '--no-spot'])), { name: 'x', count: 3, spot: false });
    assert.deepEqual(await nodePoolSpecFromFlags(await parsed(verb, ['--name', 'x', '--spec', 'p.yml'])), { name: 'x' }, 'a flag left out is no field (update leaves it)');
    assert.equal((await parsed(verb, ['--spec', 'p.yml'])).spec, 'p.yml');
    assert.equal((await parsed(verb, ['-N', 'x', '-o', 'json'])).output, 'json');
  });
}

test('flag values that are wrong are usage errors naming the flag', async () => {
  const bad: Array<[NodePoolFlags, RegExp]> = [
    [{ count: 'three' }, /--count "three" is not a whole number/],
    [{ count: '-1' }, /--count "-1"/],
    [{ minCount: '1' }, /--min-count and --max-count go together/],
    [{ maxCount: '1' }, /--min-count and --max-count go together/],
    [{ minCount: '1', maxCount: 'x' }, /--max-count "x"/],
    [{ label: ['team'] }, /--label "team" is not KEY=VALUE/],
    [{ taint: ['dedicated=web'] }, /--taint: taint "dedicated=web" has no effect/],
    [{ osDiskSize: '64GB' }, /--os-disk-size "64GB" is not a size in GiB/],
  ];
  for (const [flags, says] of bad) {
    await assert.rejects(nodePoolSpecFromFlags(flags), (e: unknown) => e instanceof KompoxError && e.kind === 'usage' && says.test(e.message), String(says));
  }
});

test('--spec file and flags: flags replace fields; labels and taints add up; count and autoscaling replace each other', () => {
  const file = { name: 'a', instanceType: 'x', autoscaling: { min: 1, max: 2 }, labels: { a: '1', b: '2' }, taints: [{ key: 'k', effect: 'NoSchedule' as const }, { key: 'm', effect: 'NoSchedule' as const }], osDisk: { sizeGiB: 30, type: 'Managed' } };
  assert.deepEqual(mergeNodePoolSpec(file, { instanceType: 'y', count: 3, labels: { b: '3' }, taints: [{ key: 'k', value: 'v', effect: 'NoSchedule' }], osDisk: { sizeGiB: 64 } }), {
    name: 'a',
    instanceType: 'y',
    count: 3,
    labels: { a: '1', b: '3' },
    taints: [{ key: 'm', effect: 'NoSchedule' }, { key: 'k', value: 'v', effect: 'NoSchedule' }],
    osDisk: { sizeGiB: 64, type: 'Managed' },
  });
  assert.deepEqual(mergeNodePoolSpec({ name: 'a', count: 3 }, { autoscaling: { min: 0, max: 4 } }), { name: 'a', autoscaling: { min: 0, max: 4 } });
});

const REFERENCE_CLI = fileURLToPath(new URL('../support/reference-cli.ts', import.meta.url));
const OPS = 'version: 1\nservice: {name: ops}\nprovider: {name: aks1, driver: aks}\ncluster: {name: c1}\n';

describe('kompoxops cluster nodepool end to end (reference node pools behind the aks driver)', () => {
  let dir: string;
  const run = (args: string[], stdin?: string): Promise<CliResult> =>
    runCli(args, { cwd: dir, script: REFERENCE_CLI, nodeArgs: ['--import', TSX], env: { KOMPOX_TEST_NODEPOOLS_STATE: join(dir, 'pools.json') }, ...(stdin !== undefined ? { stdin } : {}) });
  const refused = (r: CliResult, code: number, re: RegExp) => {
    assert.equal(r.code, code, `exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, /^error: /);
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kompox-nodepool-cli-'));
    writeFileSync(join(dir, 'kompoxops.yml'), OPS);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('list, create from --spec and flags, update, delete; -o table|json|yaml', async () => {
    const first = await run(['cluster', 'nodepool', 'list']);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, 'NAME    MODE    INSTANCE TYPE  ZONES  SIZE  NODES  SPOT  STATUS\nsystem  system  ref.medium            1     1            Succeeded\n');

    writeFileSync(join(dir, 'user.yml'), 'name: user1\nzones: [japaneast-1, japaneast-2]\nautoscaling: {min: 0, max: 3}\nlabels: {team: web}\ntaints: ["dedicated=web:NoSchedule"]\n');
    const created = await run(['cluster', 'nodepool', 'create', '--spec', 'user.yml', '--instance-type', 'Standard_D4s_v5', '--label', 'tier=1', '-o', 'json']);
    assert.equal(created.code, 0, created.stderr);
    const pool = JSON.parse(created.stdout);
    assert.deepEqual(pool, {
      name: 'user1',
      mode: 'user',
      instanceType: 'Standard_D4s_v5',
      zones: ['japaneast-1', 'japaneast-2'],
      count: null,
      autoscaling: { min: 0, max: 3 },
      nodeCount: 0,
      labels: { 'kompox.dev/node-pool': 'user1', team: 'web', tier: '1' },
      taints: [{ key: 'dedicated', value: 'web', effect: 'NoSchedule' }],
      spot: false,
      priority: null,
      osDisk: null,
      status: 'Succeeded',
    });
    assert.match(created.stderr, /created node pool user1 \(nodes labelled kompox\.dev\/node-pool=user1\)/);

    const fromStdin = await run(['cluster', 'nodepool', 'create', '--spec', '-'], '{"name": "spot1", "spot": true, "priority": "Spot", "count": 2}');
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.match(fromStdin.stdout, /^spot1\s+user\s+ref\.small\s+2\s+2\s+yes\s+Succeeded$/m);

    const updated = await run(['cluster', 'nodepool', 'update', '-N', 'user1', '--count', '2', '-o', 'yaml']);
    assert.equal(updated.code, 0, updated.stderr);
    assert.match(updated.stdout, /^count: 2$/m);
    assert.match(updated.stdout, /^autoscaling: null$/m);

    const list = await run(['cluster', 'nodepool', 'list', '-o', 'json']);
    assert.deepEqual(JSON.parse(list.stdout).map((p: { name: string; nodeCount: number }) => [p.name, p.nodeCount]), [['spot1', 2], ['system', 1], ['user1', 2]]);

    const del = await run(['cluster', 'nodepool', 'delete', '-N', 'spot1']);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(del.stdout, 'deleted node pool spot1\n');
    assert.deepEqual(JSON.parse((await run(['cluster', 'nodepool', 'list', '-o', 'json'])).stdout).map((p: { name: string }) => p.name), ['system', 'user1']);
  });

  test('refusals: one clear message naming the field, the flag or file:line; nothing changes', async () => {
    const before = (await run(['cluster', 'nodepool', 'list', '-o', 'json'])).stdout;
    writeFileSync(join(dir, 'bad.yml'), 'name: bad1\ncount: three\n');
    refused(await run(['cluster', 'nodepool', 'create', '--spec', 'bad.yml']), 2, /^error: bad\.yml:2:8: node pool spec: count: must be a whole number, not the string "three"\n$/);
    writeFileSync(join(dir, 'minmax.yml'), 'name: mm\nautoscaling:\n  min: 3\n  max: 1\n');
    refused(await run(['cluster', 'nodepool', 'create', '--spec', 'minmax.yml']), 2, /^error: minmax\.yml:4:8: node pool spec: autoscaling\.max: 1 is below autoscaling\.min \(3\)/);
    refused(await run(['cluster', 'nodepool', 'create', '-N', 'mm', '--min-count', '3', '--max-count', '1']), 2, /^error: node pool spec: autoscaling\.max: 1 is below autoscaling\.min \(3\) \(--min-count\/--max-count\)/);
    refused(await run(['cluster', 'nodepool', 'create', '-N', 'Bad_Name']), 2, /name: "Bad_Name" must be lower case \(-N\/--name\)/);
    refused(await run(['cluster', 'nodepool', 'create', '-f', 'bad.yml']), 2, /-f after "cluster nodepool create" names kompoxops\.yml \(a global option\), not the node pool spec\. Give the spec with --spec FILE/);
    refused(await run(['cluster', 'nodepool', 'create', '--spec', 'missing.yml']), 1, /--spec missing\.yml: no such file/);
    refused(await run(['cluster', 'nodepool', 'create', '-N', 'system']), 1, /node pool "system" already exists\. Choose another name with -N/);
    refused(await run(['cluster', 'nodepool', 'update', '-N', 'ghost', '--count', '1']), 1, /node pool "ghost" does not exist\. Node pools: system, user1\./);
    refused(await run(['cluster', 'nodepool', 'delete', '-N', 'system']), 1, /only system pool; refusing to delete it\. Create another system pool first \(kompoxops cluster nodepool create --mode system\)/);
    assert.equal((await run(['cluster', 'nodepool', 'list', '-o', 'json'])).stdout, before);
    // the global -f before the command still names kompoxops.yml
    writeFileSync(join(dir, 'other.yml'), OPS.replace('name: c1', 'name: c2'));
    const other = await run(['-f', 'other.yml', 'cluster', 'nodepool', 'list', '-o', 'json']);
    assert.equal(other.code, 0, other.stderr);
    assert.deepEqual(JSON.parse(other.stdout).map((p: { name: string }) => p.name), ['system'], 'another cluster, its own pools');
  });
});

test('the real binary with the K3s driver: cluster nodepool says the driver has no node pools', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kompox-nodepool-k3s-'));
  try {
    writeFileSync(join(dir, 'kompoxops.yml'), 'version: 1\nservice: {name: ops}\nprovider: {name: k3s1, driver: k3s}\ncluster: {name: c1}\n');
    for (const args of [['list'], ['create', '-N', 'x'], ['delete', '-N', 'x']]) {
      const r = await runCli(['cluster', 'nodepool', ...args], { cwd: dir });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr, `error: node pool ${args[0]} is not supported by the k3s driver\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
