// An in-memory reference implementation of the node pools part of the driver
// port (NodePoolsPart), modelled on what the managed Kubernetes APIs do (AKS
// agent pools, EKS managed node groups, GKE node pools, OKE node pools), so
// the node pool use cases and the CLI can be tested end to end before a cloud
// driver implements the part:
//   - a name is unique per cluster; create never overwrites (conflict);
//   - fields fixed at creation (instance type, zones, spot/priority, OS disk)
//     cannot be updated (as in AKS and GKE): a conflict naming the field;
//   - count and autoscaling exclude each other; an update giving one switches
//     the pool to it; nodeCount follows (count, or autoscaling min);
//   - delete is idempotent; every call honours the Op's AbortSignal.
// State lives in memory, optionally mirrored to a JSON file so that separate
// CLI processes (one per command) see the same pools.
// The reference block-storage driver (test/support/reference-driver/) takes
// this part as its node pools (referenceNodePoolsDriver below).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { KompoxError, interruptedError } from '../../src/domain/errors.js';
import type { Op } from '../../src/domain/events.js';
import type { ClusterContext } from '../../src/domain/model.js';
import type { DriverHost, NodePool, NodePoolSpec, NodePoolsPart, ProviderDriver } from '../../src/domain/ports/driver.js';
import { volumes as aksVolumes } from '../../src/providers/aks/volume.js';
import { ReferenceCloud, referenceDriver } from './reference-driver/index.js';

const IMMUTABLE = ['instanceType', 'zones', 'spot', 'priority', 'osDisk'] as const;

export interface ReferenceNodePoolsOptions {
  /** Mirror the state to this JSON file (read on every call, written after every change). */
  stateFile?: string;
  /** Pools every cluster starts with (default: one system pool `system`). */
  initial?: NodePoolSpec[];
}

type State = Record<string, NodePool[]>;

function clusterKey(ctx: ClusterContext): string {
  return `${ctx.service.name}/${ctx.provider.name}/${ctx.cluster.name}`;
}

function copy<T>(x: T): T {
  return JSON.parse(JSON.stringify(x)) as T;
}

function checkSignal(op: Op): void {
  if (op.signal?.aborted) throw interruptedError('interrupted: nothing was changed');
}

export class ReferenceNodePools implements NodePoolsPart {
  private state: State = {};
  /** Every call, for tests that check what reached the driver. */
  readonly calls: { method: 'list' | 'create' | 'update' | 'delete'; cluster: string; spec?: NodePoolSpec; name?: string }[] = [];

  constructor(private readonly opts: ReferenceNodePoolsOptions = {}) {}

  private load(): void {
    if (this.opts.stateFile && existsSync(this.opts.stateFile)) this.state = JSON.parse(readFileSync(this.opts.stateFile, 'utf8')) as State;
  }

  private save(): void {
    if (this.opts.stateFile) writeFileSync(this.opts.stateFile, JSON.stringify(this.state, null, 2));
  }

  private pools(ctx: ClusterContext): NodePool[] {
    this.load();
    const key = clusterKey(ctx);
    this.state[key] ??= (this.opts.initial ?? [{ name: 'system', mode: 'system', instanceType: 'ref.medium', count: 1, labels: { 'kompox.dev/node-pool': 'system' } }]).map((s) => settle(copy(s)));
    return this.state[key]!;
  }

  async list(ctx: ClusterContext, op: Op): Promise<NodePool[]> {
    checkSignal(op);
    this.calls.push({ method: 'list', cluster: clusterKey(ctx) });
    return copy(this.pools(ctx));
  }

  async create(ctx: ClusterContext, spec: NodePoolSpec, op: Op): Promise<NodePool> {
    checkSignal(op);
    this.calls.push({ method: 'create', cluster: clusterKey(ctx), spec: copy(spec) });
    const pools = this.pools(ctx);
    if (pools.some((p) => p.name === spec.name)) {
      throw new KompoxError('conflict', `node pool "${spec.name}" already exists`, { code: 'nodepool.exists', details: { nodePool: spec.name } });
    }
    if (spec.count !== undefined && spec.autoscaling !== undefined) throw new KompoxError('usage', 'count and autoscaling exclude each other');
    const pool = settle({ mode: 'user', instanceType: 'ref.small', ...copy(spec) });
    pools.push(pool);
    this.save();
    return copy(pool);
  }

  async update(ctx: ClusterContext, spec: NodePoolSpec, op: Op): Promise<NodePool> {
    checkSignal(op);
    this.calls.push({ method: 'update', cluster: clusterKey(ctx), spec: copy(spec) });
    const pools = this.pools(ctx);
    const i = pools.findIndex((p) => p.name === spec.name);
    if (i < 0) throw new KompoxError('notfound', `node pool "${spec.name}" does not exist`, { code: 'nodepool.notfound' });
    const cur = pools[i]!;
    for (const f of IMMUTABLE) {
      if (spec[f] !== undefined && JSON.stringify(spec[f]) !== JSON.stringify(cur[f])) {
        throw new KompoxError('conflict', `${f} of node pool "${spec.name}" cannot be changed after it is created`, {
          code: 'nodepool.immutable',
          details: { nodePool: spec.name, field: f },
          hint: 'Create a new pool with the new value, move the apps, then delete this one.',
        });
      }
    }
    const next: NodePool = { ...cur };
    if (spec.mode !== undefined) next.mode = spec.mode;
    if (spec.labels !== undefined) next.labels = { ...spec.labels };
    if (spec.taints !== undefined) next.taints = copy(spec.taints);
    if (spec.count !== undefined) {
      next.count = spec.count;
      delete next.autoscaling;
    }
    if (spec.autoscaling !== undefined) {
      next.autoscaling = { ...spec.autoscaling };
      delete next.count;
    }
    pools[i] = settle(next);
    this.save();
    return copy(pools[i]!);
  }

  async delete(ctx: ClusterContext, name: string, op: Op): Promise<void> {
    checkSignal(op);
    this.calls.push({ method: 'delete', cluster: clusterKey(ctx), name });
    const pools = this.pools(ctx);
    const i = pools.findIndex((p) => p.name === name);
    if (i >= 0) pools.splice(i, 1);
    this.save();
  }
}

/** The provider's view after a change: state and the nodes it runs now. */
function settle(p: NodePool): NodePool {
  return { ...p, status: 'Succeeded', nodeCount: p.count ?? p.autoscaling?.min ?? 0 };
}

/**
 * The reference driver (test/support/reference-driver/) with these node
 * pools and the AKS volume facts, in the `aks` slot: what the node pool use
 * cases and CLI tests run against. Its disks live in a fresh in-memory cloud
 * of this process (CLI runs do not share them; node pools share stateFile).
 */
export function referenceNodePoolsDriver(nodePools: ReferenceNodePools, _host?: DriverHost): ProviderDriver {
  return referenceDriver(new ReferenceCloud(), { name: 'aks', nodePools, volumes: aksVolumes });
}
