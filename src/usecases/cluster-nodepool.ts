// Node pools of a cluster (the spec's node-pool feature): list, create,
// update and delete through the driver's nodePools part, with one
// provider-neutral spec (NodePoolSpec). The rules that do not depend on the
// provider live here: the spec is checked field by field before the driver is
// called (each message names the field, and file:line when the spec came from
// a file), a pool is labelled `kompox.dev/node-pool` with its name unless the
// spec says otherwise (app.deployment.pool selects by that label), an
// existing name is never created again, and the cluster's last system pool is
// never deleted. What a provider cannot do (a field it has no equivalent for,
// an immutable field) is the driver's answer; a driver without node pools
// answers `unsupported`.
import { DiagnosticsError, KompoxError, fieldName, type Diagnostic, type Location } from '../domain/errors.js';
import { logEvent, type Op } from '../domain/events.js';
import type { ClusterContext } from '../domain/model.js';
import { dnsLabelProblem, labelKeyProblem, labelValueProblem } from '../domain/names.js';
import { NODE_POOL_LABEL } from '../domain/placement.js';
import { closest } from '../domain/suggest.js';
import { requirePart, type NodePool, type NodePoolSpec, type NodePoolsPart, type ProviderDriver } from '../domain/ports/driver.js';

export const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const;
export const NODE_POOL_MODES = ['system', 'user'] as const;
/** The keys of a node pool spec (YAML/JSON), in the documented order. */
export const NODE_POOL_SPEC_KEYS = ['name', 'mode', 'instanceType', 'zones', 'count', 'autoscaling', 'labels', 'taints', 'spot', 'priority', 'osDisk'] as const;

type Path = ReadonlyArray<string | number>;
/** Where a field of the spec was written (file:line), when it came from a file. */
export type SpecLocator = (path: Path) => Location | undefined;

/** A spec in the making: the fields as given, each checked for its type only (see parseNodePoolSpec). */
export type NodePoolSpecInput = Partial<NodePoolSpec>;

class Problems {
  readonly list: (Diagnostic & { field?: string })[] = [];
  constructor(private readonly locate?: SpecLocator) {}
  add(path: Path, problem: string, hint?: string): void {
    const location = this.locate?.(path);
    const field = path.length ? fieldName(path) : undefined;
    this.list.push({ level: 'error', message: field ? `${field}: ${problem}` : problem, ...(field ? { field } : {}), ...(location ? { location } : {}), ...(hint ? { hint } : {}) });
  }
  /** One problem: a usage error naming the field (and file:line); several: one error listing them all. */
  throwIfAny(): void {
    if (!this.list.length) return;
    if (this.list.length === 1) {
      const d = this.list[0]!;
      throw new KompoxError('usage', `node pool spec: ${d.message}`, { code: 'nodepool.spec.invalid', ...(d.field ? { field: d.field } : {}), ...(d.location ? { location: d.location } : {}), ...(d.hint ? { hint: d.hint } : {}) });
    }
    const summary = new DiagnosticsError(this.list, `the node pool spec has ${this.list.length} problems`).message;
    throw new KompoxError('usage', summary, { code: 'nodepool.spec.invalid', details: { problems: this.list.map((d) => d.message) } });
  }
}

function typeName(v: unknown): string {
  if (v === null || v === undefined) return 'empty';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `the ${typeof v} ${JSON.stringify(v)}`;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A node pool spec from parsed YAML/JSON: the known keys with the right
 * types (a unknown key is an error with a suggestion). Values are checked
 * later, on the complete spec (validateNodePoolSpec).
 */
export function nodePoolSpecFromValue(value: unknown, locate?: SpecLocator): NodePoolSpecInput {
  const p = new Problems(locate);
  if (!isObj(value)) {
    p.add([], `a node pool spec is a mapping (${NODE_POOL_SPEC_KEYS.join(', ')}), not ${typeName(value)}`);
    p.throwIfAny();
  }
  const v = value as Record<string, unknown>;
  const out: NodePoolSpecInput = {};
  for (const k of Object.keys(v)) {
    if ((NODE_POOL_SPEC_KEYS as readonly string[]).includes(k)) continue;
    const guess = closest(k, NODE_POOL_SPEC_KEYS);
    p.add([k], 'unknown key', guess ? `Did you mean "${guess}"?` : `Keys: ${NODE_POOL_SPEC_KEYS.join(', ')}.`);
  }
  const str = (k: string, path: Path = [k], x: unknown = v[k]): string | undefined => {
    if (x === undefined) return undefined;
    if (typeof x === 'string') return x;
    if (typeof x === 'number' && Number.isFinite(x)) return String(x);
    p.add(path, `must be a string, not ${typeName(x)}`);
    return undefined;
  };
  const int = (path: Path, x: unknown): number | undefined => {
    if (x === undefined) return undefined;
    if (typeof x === 'number' && Number.isInteger(x)) return x;
    p.add(path, `must be a whole number, not ${typeName(x)}`);
    return undefined;
  };
  const strMap = (path: Path, x: unknown): Record<string, string> | undefined => {
    if (x === undefined || x === null) return x === null ? {} : undefined;
    if (!isObj(x)) {
      p.add(path, `must be a mapping (key: value), not ${typeName(x)}`);
      return undefined;
    }
    const m: Record<string, string> = {};
    for (const [k, val] of Object.entries(x)) {
      if (typeof val === 'string') m[k] = val;
      else if (typeof val === 'number' || typeof val === 'boolean') m[k] = String(val);
      else p.add([...path, k], `must be a string, not ${typeName(val)}`);
    }
    return m;
  };
  const name = str('name');
  if (name !== undefined) out.name = name;
  const mode = str('mode');
  if (mode !== undefined) out.mode = mode as NodePoolSpec['mode'];
  const instanceType = str('instanceType');
  if (instanceType !== undefined) out.instanceType = instanceType;
  if (v.zones !== undefined) {
    const z = v.zones;
    if (Array.isArray(z)) {
      const zones = z.map((x, i) => str('zones', ['zones', i], x));
      if (zones.every((x) => x !== undefined)) out.zones = zones as string[];
    } else {
      const one = str('zones');
      if (one !== undefined) out.zones = [one];
    }
  }
  const count = int(['count'], v.count);
  if (count !== undefined) out.count = count;
  if (v.autoscaling !== undefined) {
    if (!isObj(v.autoscaling)) p.add(['autoscaling'], `must be a mapping (min, max), not ${typeName(v.autoscaling)}`);
    else {
      const a = v.autoscaling;
      for (const k of Object.keys(a)) if (k !== 'min' && k !== 'max') p.add(['autoscaling', k], 'unknown key', 'Keys: min, max.');
      const min = int(['autoscaling', 'min'], a.min);
      const max = int(['autoscaling', 'max'], a.max);
      if (a.min === undefined || a.max === undefined) p.add(['autoscaling'], 'needs both min and max', 'Write autoscaling: {min: 1, max: 3}.');
      else if (min !== undefined && max !== undefined) out.autoscaling = { min, max };
    }
  }
  const labels = strMap(['labels'], v.labels);
  if (labels) out.labels = labels;
  if (v.taints !== undefined && v.taints !== null) {
    if (!Array.isArray(v.taints)) p.add(['taints'], `must be a list, not ${typeName(v.taints)}`, 'Write each taint as "key=value:Effect" or {key, value, effect}.');
    else {
      const taints: NonNullable<NodePoolSpec['taints']> = [];
      v.taints.forEach((t, i) => {
        if (typeof t === 'string') {
          const parsed = parseTaint(t);
          if (typeof parsed === 'string') p.add(['taints', i], parsed, 'Write key=value:Effect or key:Effect, e.g. dedicated=gpu:NoSchedule.');
          else taints.push(parsed);
        } else if (isObj(t)) {
          for (const k of Object.keys(t)) if (!['key', 'value', 'effect'].includes(k)) p.add(['taints', i, k], 'unknown key', 'Keys: key, value, effect.');
          const key = str('key', ['taints', i, 'key'], t.key);
          const value = str('value', ['taints', i, 'value'], t.value);
          const effect = str('effect', ['taints', i, 'effect'], t.effect);
          if (key === undefined) p.add(['taints', i], 'needs a key');
          if (effect === undefined) p.add(['taints', i], 'needs an effect', `Effects: ${TAINT_EFFECTS.join(', ')}.`);
          if (key !== undefined && effect !== undefined) taints.push({ key, ...(value !== undefined ? { value } : {}), effect: effect as 'NoSchedule' });
        } else p.add(['taints', i], `must be "key=value:Effect" or a mapping, not ${typeName(t)}`);
      });
      out.taints = taints;
    }
  }
  if (v.spot !== undefined) {
    if (typeof v.spot === 'boolean') out.spot = v.spot;
    else p.add(['spot'], `must be true or false, not ${typeName(v.spot)}`);
  }
  const priority = str('priority');
  if (priority !== undefined) out.priority = priority;
  if (v.osDisk !== undefined) {
    if (!isObj(v.osDisk)) p.add(['osDisk'], `must be a mapping (sizeGiB, type), not ${typeName(v.osDisk)}`);
    else {
      const o = v.osDisk;
      for (const k of Object.keys(o)) if (k !== 'sizeGiB' && k !== 'type') p.add(['osDisk', k], 'unknown key', `Keys: sizeGiB, type.${closest(k, ['sizeGiB', 'type']) ? ` Did you mean "${closest(k, ['sizeGiB', 'type'])}"?` : ''}`);
      const sizeGiB = int(['osDisk', 'sizeGiB'], o.sizeGiB);
      const type = str('type', ['osDisk', 'type'], o.type);
      out.osDisk = { ...(sizeGiB !== undefined ? { sizeGiB } : {}), ...(type !== undefined ? { type } : {}) };
    }
  }
  p.throwIfAny();
  return out;
}

/** `key=value:Effect` or `key:Effect` (kubectl taint's syntax), or why not. */
export function parseTaint(s: string): NonNullable<NodePoolSpec['taints']>[number] | string {
  const colon = s.lastIndexOf(':');
  if (colon <= 0) return `taint "${s}" has no effect`;
  const effect = s.slice(colon + 1);
  const kv = s.slice(0, colon);
  const eq = kv.indexOf('=');
  const key = eq >= 0 ? kv.slice(0, eq) : kv;
  const value = eq >= 0 ? kv.slice(eq + 1) : undefined;
  return { key, ...(value !== undefined ? { value } : {}), effect: effect as 'NoSchedule' };
}

/**
 * A node pool spec from YAML or JSON text (a file, a request body); errors
 * name the field and its line:column in `filename`.
 */
export async function parseNodePoolSpec(text: string, filename: string): Promise<{ spec: NodePoolSpecInput; locate: SpecLocator }> {
  const { parseYamlSource } = await import('../config/source.js');
  const src = parseYamlSource(text, filename);
  if (src.syntaxErrors.length) {
    const d = src.syntaxErrors[0]!;
    throw new KompoxError('usage', d.message, { code: 'nodepool.spec.invalid', ...(d.location ? { location: d.location } : {}), ...(d.hint ? { hint: d.hint } : {}) });
  }
  if (src.value === undefined || src.value === null) {
    throw new KompoxError('usage', 'the node pool spec is empty', { code: 'nodepool.spec.invalid', location: { file: filename }, hint: `Write the spec as YAML or JSON with ${NODE_POOL_SPEC_KEYS.join(', ')}.` });
  }
  const locate: SpecLocator = (path) => src.locate(path);
  return { spec: nodePoolSpecFromValue(src.value, locate), locate };
}

/**
 * Checks a complete spec (after a file and flags were merged). `create` needs
 * a name; `update` needs a name and something to change. Every problem names
 * the field; `locate` gives file:line for fields that came from a file.
 */
export function validateNodePoolSpec(spec: NodePoolSpecInput, mode: 'create' | 'update', locate?: SpecLocator): NodePoolSpec {
  const p = new Problems(locate);
  if (spec.name === undefined) p.add(['name'], 'is required', 'Name the node pool.');
  else {
    const problem = dnsLabelProblem(spec.name);
    if (problem) p.add(['name'], `"${spec.name}" ${problem}`, "Node pool names are DNS labels (a-z, 0-9, '-'); a driver may allow fewer characters.");
  }
  if (spec.mode !== undefined && !(NODE_POOL_MODES as readonly string[]).includes(spec.mode)) {
    p.add(['mode'], `unknown mode "${spec.mode}"`, 'Use system (cluster add-ons may run there) or user (apps).');
  }
  if (spec.instanceType !== undefined && spec.instanceType.trim() === '') p.add(['instanceType'], 'is empty', 'Give the provider\'s instance type, e.g. Standard_D4s_v5 or m6i.large.');
  if (spec.zones !== undefined) {
    if (spec.zones.length === 0) p.add(['zones'], 'is an empty list', 'Name at least one zone, or leave zones out.');
    const seen = new Set<string>();
    spec.zones.forEach((z, i) => {
      const problem = labelValueProblem(z);
      if (problem) p.add(['zones', i], `zone "${z}" ${problem}`, "Give zones as the nodes' topology.kubernetes.io/zone label shows them.");
      else if (seen.has(z)) p.add(['zones', i], `zone "${z}" is listed twice`);
      seen.add(z);
    });
  }
  if (spec.count !== undefined && (!Number.isInteger(spec.count) || spec.count < 0)) p.add(['count'], `${spec.count} is not a node count`, 'Give a whole number, 0 or more.');
  if (spec.autoscaling !== undefined) {
    const { min, max } = spec.autoscaling;
    if (!Number.isInteger(min) || min < 0) p.add(['autoscaling', 'min'], `${min} is not a node count`, 'Give a whole number, 0 or more.');
    if (!Number.isInteger(max) || max < 1) p.add(['autoscaling', 'max'], `${max} is not a node count`, 'Give a whole number, 1 or more.');
    else if (Number.isInteger(min) && min > max) p.add(['autoscaling', 'max'], `${max} is below autoscaling.min (${min})`, 'Make max at least min.');
    if (spec.count !== undefined) p.add(['count'], 'and autoscaling exclude each other', 'Give count for a fixed size, or autoscaling min and max for an autoscaled pool, not both.');
  }
  for (const [k, v] of Object.entries(spec.labels ?? {})) {
    const kp = labelKeyProblem(k);
    if (kp) p.add(['labels', k], `label key "${k}" ${kp}`, 'Write keys like kompox.dev/node-pool or team.');
    const vp = v === '' && k !== NODE_POOL_LABEL ? undefined : labelValueProblem(v);
    if (vp) p.add(['labels', k], `label value "${v}" ${vp}`);
  }
  const taintKeys = new Set<string>();
  (spec.taints ?? []).forEach((t, i) => {
    const kp = labelKeyProblem(t.key);
    if (kp) p.add(['taints', i, 'key'], `taint key "${t.key}" ${kp}`);
    if (t.value !== undefined && t.value !== '') {
      const vp = labelValueProblem(t.value);
      if (vp) p.add(['taints', i, 'value'], `taint value "${t.value}" ${vp}`);
    }
    if (!(TAINT_EFFECTS as readonly string[]).includes(t.effect)) p.add(['taints', i, 'effect'], `unknown taint effect "${t.effect}"`, `Effects: ${TAINT_EFFECTS.join(', ')}.`);
    const id = `${t.key}:${t.effect}`;
    if (taintKeys.has(id)) p.add(['taints', i], `taint ${t.key} with effect ${t.effect} is listed twice`);
    taintKeys.add(id);
  });
  if (spec.priority !== undefined && spec.priority.trim() === '') p.add(['priority'], 'is empty');
  if (spec.osDisk !== undefined) {
    const { sizeGiB, type } = spec.osDisk;
    if (sizeGiB !== undefined && (!Number.isInteger(sizeGiB) || sizeGiB < 1)) p.add(['osDisk', 'sizeGiB'], `${sizeGiB} is not a size in GiB`, 'Give a whole number of GiB, e.g. 64.');
    if (type !== undefined && type.trim() === '') p.add(['osDisk', 'type'], 'is empty');
    if (sizeGiB === undefined && type === undefined) p.add(['osDisk'], 'is empty', 'Give sizeGiB and/or type, or leave osDisk out.');
  }
  if (mode === 'update' && spec.name !== undefined && Object.keys(spec).filter((k) => k !== 'name' && (spec as Record<string, unknown>)[k] !== undefined).length === 0) {
    p.add(['name'], `nothing to change on node pool ${spec.name}`, 'Give the fields to change.');
  }
  p.throwIfAny();
  return spec as NodePoolSpec;
}

function part(driver: ProviderDriver, operation: string): NodePoolsPart {
  return requirePart(driver, 'nodePools', operation);
}

function byName(a: NodePool, b: NodePool): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function notFound(name: string, pools: NodePool[]): KompoxError {
  return new KompoxError('notfound', `node pool "${name}" does not exist`, {
    code: 'nodepool.notfound',
    details: { nodePool: name, nodePools: pools.map((x) => x.name) },
    hint: pools.length ? `Node pools: ${pools.map((x) => x.name).join(', ')}.` : 'The cluster has no node pools.',
  });
}

export async function listNodePools(ctx: ClusterContext, driver: ProviderDriver, op: Op = {}): Promise<NodePool[]> {
  return (await part(driver, 'node pool list').list(ctx, op)).sort(byName);
}

/** Creates a node pool; a name in use is a conflict (never an update). */
export async function createNodePool(ctx: ClusterContext, driver: ProviderDriver, input: NodePoolSpecInput, op: Op = {}, locate?: SpecLocator): Promise<NodePool> {
  const pools = part(driver, 'node pool create');
  const spec = validateNodePoolSpec(input, 'create', locate);
  const existing = await pools.list(ctx, op);
  if (existing.some((x) => x.name === spec.name)) {
    throw new KompoxError('conflict', `node pool "${spec.name}" already exists`, {
      code: 'nodepool.exists',
      details: { nodePool: spec.name },
      hint: 'Choose another name, or update the existing pool.',
    });
  }
  // app.deployment.pool selects nodes by this label: every pool carries it (its name unless the spec says otherwise)
  const labels = { [NODE_POOL_LABEL]: spec.name, ...spec.labels };
  const created = await pools.create(ctx, { ...spec, labels }, op);
  logEvent(op, `created node pool ${created.name} (nodes labelled ${NODE_POOL_LABEL}=${labels[NODE_POOL_LABEL]})`);
  return created;
}

/** Changes the given fields of an existing node pool. */
export async function updateNodePool(ctx: ClusterContext, driver: ProviderDriver, input: NodePoolSpecInput, op: Op = {}, locate?: SpecLocator): Promise<NodePool> {
  const pools = part(driver, 'node pool update');
  const spec = validateNodePoolSpec(input, 'update', locate);
  const all = await pools.list(ctx, op);
  const current = all.find((x) => x.name === spec.name);
  if (!current) throw notFound(spec.name, all);
  // new labels replace the old ones, but the pool keeps its kompox.dev/node-pool label unless the spec sets it
  const keep = current.labels?.[NODE_POOL_LABEL] ?? spec.name;
  const labels = spec.labels ? { [NODE_POOL_LABEL]: keep, ...spec.labels } : undefined;
  return pools.update(ctx, { ...spec, ...(labels ? { labels } : {}) }, op);
}

/** Deletes a node pool; never the cluster's last system pool. */
export async function deleteNodePool(ctx: ClusterContext, driver: ProviderDriver, name: string, op: Op = {}): Promise<NodePool> {
  const pools = part(driver, 'node pool delete');
  const all = await pools.list(ctx, op);
  const pool = all.find((x) => x.name === name);
  if (!pool) throw notFound(name, all);
  if (pool.mode === 'system' && !all.some((x) => x.name !== name && x.mode === 'system')) {
    throw new KompoxError('conflict', `node pool "${name}" is the cluster's only system pool; refusing to delete it`, {
      code: 'nodepool.delete.last-system',
      details: { nodePool: name },
      hint: 'Create another system pool first.',
    });
  }
  await pools.delete(ctx, name, op);
  return pool;
}

/**
 * The `-o json|yaml` shape of a node pool: every key present (null when
 * unknown), labels sorted. Documented in docs/cluster.md.
 */
export function nodePoolJson(n: NodePool) {
  return {
    name: n.name,
    mode: n.mode ?? null,
    instanceType: n.instanceType ?? null,
    zones: n.zones ?? [],
    count: n.count ?? null,
    autoscaling: n.autoscaling ?? null,
    nodeCount: n.nodeCount ?? null,
    labels: Object.fromEntries(Object.entries(n.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    taints: n.taints ?? [],
    spot: n.spot ?? false,
    priority: n.priority ?? null,
    osDisk: n.osDisk ?? null,
    status: n.status ?? null,
  };
}
