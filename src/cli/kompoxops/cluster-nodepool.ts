// kompoxops cluster nodepool list | create | update | delete: the cluster's
// node pools, with a provider-neutral spec given by flags and/or a YAML/JSON
// file (--spec FILE; `-f` stays the global kompoxops.yml option). Flags win
// over the file's fields; --label and --taint add to the file's. Thin shell:
// flags → use case (src/usecases/cluster-nodepool.ts) → print.
import type { Command } from 'commander';
import { action, globalOptions, parseOutputFormat, printData, withOutput, type Column, type GlobalOptions, type OutputFormat } from '../common.js';
import type { KompoxError, Location } from '../../domain/errors.js';
import type { Op } from '../../domain/events.js';
import type { ClusterContext } from '../../domain/model.js';
import type { NodePool, NodePoolSpec, ProviderDriver } from '../../domain/ports/driver.js';
import type { NodePoolSpecInput } from '../../usecases/cluster-nodepool.js';

/** The flags of create and update, as commander parses them. */
export interface NodePoolFlags {
  name?: string;
  mode?: string;
  instanceType?: string;
  zone?: string[];
  count?: string;
  minCount?: string;
  maxCount?: string;
  label?: string[];
  taint?: string[];
  spot?: boolean;
  priority?: string;
  osDiskSize?: string;
  osDiskType?: string;
  spec?: string;
  output?: string;
}

/** A usage error (the errors module is loaded with the action, not at start-up). */
async function usage(message: string, hint: string): Promise<KompoxError> {
  const { KompoxError } = await import('../../domain/errors.js');
  return new KompoxError('usage', message, { hint });
}

/** Repeatable flags: every use, each split at commas. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function items(list: string[] | undefined): string[] {
  return (list ?? []).flatMap((x) => x.split(',')).map((x) => x.trim()).filter((x) => x !== '');
}

/** The spec fields the flags set (a flag's problem is a usage error naming the flag). */
export async function nodePoolSpecFromFlags(f: NodePoolFlags): Promise<NodePoolSpecInput> {
  const { parseTaint } = await import('../../usecases/cluster-nodepool.js');
  const { KompoxError } = await import('../../domain/errors.js');
  const usage = (message: string, hint: string) => new KompoxError('usage', message, { hint });
  const count = (v: string, flag: string): number => {
    if (!/^\d+$/.test(v.trim())) throw usage(`${flag} "${v}" is not a whole number`, `Give ${flag} a number of nodes, e.g. ${flag} 3.`);
    return Number(v.trim());
  };
  const s: NodePoolSpecInput = {};
  if (f.name !== undefined) s.name = f.name;
  if (f.mode !== undefined) s.mode = f.mode as NodePoolSpec['mode'];
  if (f.instanceType !== undefined) s.instanceType = f.instanceType;
  if (f.zone !== undefined) s.zones = items(f.zone);
  if (f.count !== undefined) s.count = count(f.count, '--count');
  if (f.minCount !== undefined || f.maxCount !== undefined) {
    if (f.minCount === undefined || f.maxCount === undefined) {
      throw usage('--min-count and --max-count go together (autoscaling)', 'Give both, e.g. --min-count 1 --max-count 5.');
    }
    s.autoscaling = { min: count(f.minCount, '--min-count'), max: count(f.maxCount, '--max-count') };
  }
  if (f.label !== undefined) {
    const labels: Record<string, string> = {};
    for (const l of items(f.label)) {
      const eq = l.indexOf('=');
      if (eq <= 0) throw usage(`--label "${l}" is not KEY=VALUE`, 'Write e.g. --label team=web (repeat --label, or separate with commas).');
      labels[l.slice(0, eq)] = l.slice(eq + 1);
    }
    s.labels = labels;
  }
  if (f.taint !== undefined) {
    s.taints = items(f.taint).map((t) => {
      const parsed = parseTaint(t);
      if (typeof parsed === 'string') throw usage(`--taint: ${parsed}`, 'Write KEY=VALUE:EFFECT or KEY:EFFECT, e.g. --taint dedicated=gpu:NoSchedule.');
      return parsed;
    });
  }
  if (f.spot !== undefined) s.spot = f.spot;
  if (f.priority !== undefined) s.priority = f.priority;
  if (f.osDiskSize !== undefined || f.osDiskType !== undefined) {
    const osDisk: NonNullable<NodePoolSpec['osDisk']> = {};
    if (f.osDiskSize !== undefined) {
      const m = /^(\d+)\s*(G|Gi|GiB)?$/i.exec(f.osDiskSize.trim());
      if (!m) throw usage(`--os-disk-size "${f.osDiskSize}" is not a size in GiB`, 'Write e.g. --os-disk-size 64 or 64Gi.');
      osDisk.sizeGiB = Number(m[1]);
    }
    if (f.osDiskType !== undefined) osDisk.type = f.osDiskType;
    s.osDisk = osDisk;
  }
  return s;
}

/**
 * File fields, then flags: flags replace the file's fields, except labels
 * (flag keys win) and taints (a flag's taint replaces the file's with the
 * same key and effect) which add up; an --os-disk-* flag replaces that part.
 */
export function mergeNodePoolSpec(file: NodePoolSpecInput, flags: NodePoolSpecInput): NodePoolSpecInput {
  const out: NodePoolSpecInput = { ...file, ...flags };
  if (file.labels && flags.labels) out.labels = { ...file.labels, ...flags.labels };
  if (file.taints && flags.taints) {
    const id = (t: { key: string; effect: string }) => `${t.key}:${t.effect}`;
    const given = new Set(flags.taints.map(id));
    out.taints = [...file.taints.filter((t) => !given.has(id(t))), ...flags.taints];
  }
  if (file.osDisk && flags.osDisk) out.osDisk = { ...file.osDisk, ...flags.osDisk };
  if (flags.count !== undefined && flags.autoscaling === undefined) delete out.autoscaling;
  if (flags.autoscaling !== undefined && flags.count === undefined) delete out.count;
  return out;
}

/**
 * `-f` after `cluster nodepool create|update` is the global kompoxops.yml
 * option (commander reads global options anywhere), not the spec: refuse it
 * there, so a spec file is never read as kompoxops.yml or silently ignored.
 */
export async function refuseFileAfterCommand(cmd: Command): Promise<void> {
  let root: Command = cmd;
  while (root.parent) root = root.parent;
  const raw = (root as unknown as { rawArgs?: string[] }).rawArgs ?? [];
  const at = raw.indexOf('nodepool');
  if (at < 0) return;
  const after = raw.slice(at + 1);
  if (after.some((a) => a === '-f' || a === '--file' || a.startsWith('--file=') || (/^-f./.test(a)))) {
    throw await usage(`-f after "cluster nodepool ${cmd.name()}" names kompoxops.yml (a global option), not the node pool spec`, 'Give the spec with --spec FILE; put -f FILE before "cluster" to use another kompoxops.yml.');
  }
}

interface SpecRead {
  spec: NodePoolSpecInput;
  locate?: (path: ReadonlyArray<string | number>) => Location | undefined;
}

/** --spec FILE (or - for stdin) merged with the flags; locations only for fields the file gave. */
async function readSpec(f: NodePoolFlags, resolvePath: (p: string) => string): Promise<SpecRead> {
  const flags = await nodePoolSpecFromFlags(f);
  if (f.spec === undefined) return { spec: flags };
  const { parseNodePoolSpec } = await import('../../usecases/cluster-nodepool.js');
  let text: string;
  let shown: string;
  if (f.spec === '-') {
    if (process.stdin.isTTY) throw await usage('--spec - reads the node pool spec from stdin, but stdin is a terminal', 'Pipe or redirect the spec into it, or give --spec FILE.');
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    text = Buffer.concat(chunks).toString('utf8');
    shown = 'stdin';
  } else {
    const { readFile } = await import('node:fs/promises');
    shown = f.spec;
    try {
      text = await readFile(resolvePath(f.spec), 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const { KompoxError } = await import('../../domain/errors.js');
      throw new KompoxError('notfound', `--spec ${f.spec}: ${code === 'ENOENT' ? 'no such file' : `cannot read the file (${code})`}`, { hint: 'Give --spec a YAML or JSON node pool spec (see docs/cluster.md).', cause: e });
    }
  }
  const file = await parseNodePoolSpec(text, shown);
  const fromFlag = (path: ReadonlyArray<string | number>) => {
    const top = String(path[0]);
    if (top === 'labels' && path.length > 1) return flags.labels?.[String(path[1])] !== undefined;
    if (top === 'taints' || top === 'labels') return false; // merged lists: positions of the file's own entries
    return (flags as Record<string, unknown>)[top] !== undefined;
  };
  return { spec: mergeNodePoolSpec(file.spec, flags), locate: (path) => (fromFlag(path) ? undefined : file.locate(path)) };
}

function poolColumns(): Column<NodePool>[] {
  return [
    { header: 'name', get: (p) => p.name },
    { header: 'mode', get: (p) => p.mode },
    { header: 'instance type', get: (p) => p.instanceType },
    { header: 'zones', get: (p) => (p.zones ?? []).join(',') },
    { header: 'size', get: (p) => (p.autoscaling ? `${p.autoscaling.min}-${p.autoscaling.max} (auto)` : p.count) },
    { header: 'nodes', get: (p) => p.nodeCount },
    { header: 'spot', get: (p) => (p.spot ? 'yes' : '') },
    { header: 'status', get: (p) => p.status },
  ];
}

async function printPools(data: NodePool[] | NodePool, format: OutputFormat): Promise<void> {
  if (format === 'table') return printData(data, format, poolColumns());
  const { nodePoolJson } = await import('../../usecases/cluster-nodepool.js');
  return printData(Array.isArray(data) ? data.map(nodePoolJson) : nodePoolJson(data), format);
}

/** The cluster's session (kompoxops.yml, the driver, always released) and an Op rendered on stderr. */
async function withPools<T>(g: GlobalOptions, fn: (ctx: ClusterContext, driver: ProviderDriver, op: Op, path: (p: string) => string) => Promise<T>): Promise<T> {
  const { resolve } = await import('node:path');
  const { withOpsCluster } = await import('../../app/kompoxops.js');
  const { withOp } = await import('../op.js');
  return withOp({}, (op) => withOpsCluster(g, async (s, p) => fn(s.ctx, await s.driver(), op, (x) => resolve(p.host.cwd, g.chdir ?? '.', x))));
}

function specOptions(cmd: Command, verb: 'create' | 'update'): Command {
  return cmd
    .option('-N, --name <name>', verb === 'create' ? 'node pool name (a DNS label)' : 'the node pool to change')
    .option('--spec <file>', 'node pool spec, YAML or JSON (- reads stdin); flags override its fields')
    .option('--mode <mode>', 'system or user')
    .option('--instance-type <type>', "the provider's instance type (VM size, machine type, shape)")
    .option('--zone <zone>', 'availability zone, as the nodes are labelled (repeat, or separate with commas)', collect)
    .option('--count <n>', 'fixed number of nodes')
    .option('--min-count <n>', 'autoscaling: fewest nodes (with --max-count)')
    .option('--max-count <n>', 'autoscaling: most nodes (with --min-count)')
    .option('--label <key=value>', 'node label (repeat, or separate with commas)', collect)
    .option('--taint <key=value:effect>', 'node taint, effect NoSchedule, PreferNoSchedule or NoExecute (repeat)', collect)
    .option('--spot', 'spot / preemptible capacity')
    .option('--no-spot', 'regular capacity')
    .option('--priority <priority>', "the provider's capacity priority (e.g. Azure Spot or Regular)")
    .option('--os-disk-size <GiB>', 'OS disk size in GiB')
    .option('--os-disk-type <type>', "the provider's OS disk type (e.g. Managed, Ephemeral)");
}

const SPEC_HELP = `
The spec (--spec FILE, YAML or JSON) has the fields:
  name, mode (system|user), instanceType, zones: [..], count, autoscaling: {min, max},
  labels: {key: value}, taints: ["key=value:Effect" | {key, value, effect}], spot, priority,
  osDisk: {sizeGiB, type}
Flags override the file's fields; --label and --taint add to them. Every pool gets the
label kompox.dev/node-pool=<name> unless its labels set it (app.deployment.pool selects
nodes by it). -f is the global kompoxops.yml option: give the spec with --spec.`;

export function register(cluster: Command): void {
  const np = cluster.command('nodepool').description("the cluster's node pools: list, create, update, delete (drivers with node pools)");

  withOutput(np.command('list').description('list the node pools of the cluster')).action(
    action(async (opts: { output?: string }, cmd: Command) => {
      const format = parseOutputFormat(opts.output);
      await withPools(globalOptions(cmd), async (ctx, driver, op) => {
        const { listNodePools } = await import('../../usecases/cluster-nodepool.js');
        await printPools(await listNodePools(ctx, driver, op), format);
      });
    }),
  );

  for (const verb of ['create', 'update'] as const) {
    withOutput(
      specOptions(np.command(verb).description(verb === 'create' ? 'create a node pool' : 'change fields of a node pool (fields left out stay as they are)'), verb).addHelpText('after', SPEC_HELP),
    ).action(
      action(async (opts: NodePoolFlags, cmd: Command) => {
        await refuseFileAfterCommand(cmd);
        const format = parseOutputFormat(opts.output);
        await withPools(globalOptions(cmd), async (ctx, driver, op, path) => {
          const { createNodePool, updateNodePool } = await import('../../usecases/cluster-nodepool.js');
          const { spec, locate } = await readSpec(opts, path);
          const pool = verb === 'create' ? await createNodePool(ctx, driver, spec, op, locate) : await updateNodePool(ctx, driver, spec, op, locate);
          await printPools(pool, format);
        });
      }),
    );
  }

  np.command('delete')
    .description("delete a node pool (never the cluster's only system pool); its nodes go, the apps' disks stay")
    .requiredOption('-N, --name <name>', 'the node pool to delete')
    .action(
      action(async (opts: { name: string }, cmd: Command) => {
        await withPools(globalOptions(cmd), async (ctx, driver, op) => {
          const { deleteNodePool } = await import('../../usecases/cluster-nodepool.js');
          const p = await deleteNodePool(ctx, driver, opts.name, op);
          process.stdout.write(`deleted node pool ${p.name}\n`);
        });
      }),
    );
}
