// Where an app's pod may run, as Kubernetes sees it: node pools (the nodes'
// `kompox.dev/node-pool` label) and availability zones (the well-known
// `topology.kubernetes.io/zone` label), from kompoxops.yml `app.deployment`.
// Pure: the converter turns it into required node affinity, the use cases
// check it against the disks' zones and the cluster's nodes before anything
// is written.
import type { AppDeployment } from './model.js';

/** The zone label on nodes (well-known; every managed Kubernetes sets it). */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';
/** The node pool label: cloud drivers set it on the pools they create; elsewhere users label their nodes. */
export const NODE_POOL_LABEL = 'kompox.dev/node-pool';

/** One term of a node selector (Kubernetes NodeSelectorRequirement). */
export interface NodeRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';
  values?: string[];
}

/** The requirements app.deployment puts on a node (all must hold); empty: any node. */
export function placementRequirements(d: AppDeployment | undefined): NodeRequirement[] {
  const out: NodeRequirement[] = [];
  if (d?.pools?.length) out.push({ key: NODE_POOL_LABEL, operator: 'In', values: [...d.pools] });
  if (d?.zones?.length) out.push({ key: ZONE_LABEL, operator: 'In', values: [...d.zones] });
  return out;
}

/**
 * The pod's `affinity` for app.deployment: required node affinity (the pod is
 * never placed elsewhere; IgnoredDuringExecution: a running pod is not evicted
 * when labels change), or undefined when the app names no pool or zone.
 */
export function podAffinity(d: AppDeployment | undefined): Record<string, unknown> | undefined {
  const reqs = placementRequirements(d);
  if (!reqs.length) return undefined;
  return { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: reqs }] } } };
}

interface SelectorTerm {
  matchExpressions?: NodeRequirement[];
  matchLabels?: Record<string, string>;
}

/** The nodeSelectorTerms of a PV source's `nodeAffinity.required` (none: the PV fits every node). */
export function pvSelectorTerms(source: Record<string, unknown>): SelectorTerm[] | undefined {
  const na = source.nodeAffinity as { required?: { nodeSelectorTerms?: SelectorTerm[] } } | undefined;
  const terms = na?.required?.nodeSelectorTerms;
  return Array.isArray(terms) && terms.length ? terms : undefined;
}

/**
 * The zones a PV's node affinity confines its pod to (terms are alternatives:
 * the union of each term's `zone In` values), or undefined when some term does
 * not constrain the zone (a regional disk, a K3s host-name pin).
 */
export function pvZones(source: Record<string, unknown>): string[] | undefined {
  const terms = pvSelectorTerms(source);
  if (!terms) return undefined;
  const zones = new Set<string>();
  for (const t of terms) {
    const inZone = (t.matchExpressions ?? []).filter((e) => e.key === ZONE_LABEL && e.operator === 'In');
    if (!inZone.length) return undefined;
    // several `In` on the same key in one term: all must hold (intersection)
    let allowed = new Set(inZone[0]!.values ?? []);
    for (const e of inZone.slice(1)) allowed = new Set((e.values ?? []).filter((v) => allowed.has(v)));
    for (const z of allowed) zones.add(z);
  }
  return [...zones].sort();
}

function requirementHolds(labels: Record<string, string>, r: NodeRequirement): boolean {
  const v = labels[r.key];
  switch (r.operator) {
    case 'In':
      return v !== undefined && (r.values ?? []).includes(v);
    case 'NotIn':
      return v === undefined || !(r.values ?? []).includes(v);
    case 'Exists':
      return v !== undefined;
    case 'DoesNotExist':
      return v === undefined;
    case 'Gt':
    case 'Lt': {
      const n = Number(v);
      const bound = Number(r.values?.[0]);
      if (v === undefined || !Number.isInteger(n) || !Number.isInteger(bound)) return false;
      return r.operator === 'Gt' ? n > bound : n < bound;
    }
  }
}

/** Whether a node with `labels` satisfies every requirement (Kubernetes' semantics for match expressions). */
export function nodeSatisfies(labels: Record<string, string>, reqs: readonly NodeRequirement[]): boolean {
  return reqs.every((r) => requirementHolds(labels, r));
}

/** Whether a node with `labels` satisfies a PV's node affinity (some term holds; no affinity: yes). */
export function nodeFitsPv(labels: Record<string, string>, source: Record<string, unknown>): boolean {
  const terms = pvSelectorTerms(source);
  if (!terms) return true;
  return terms.some((t) => nodeSatisfies(labels, t.matchExpressions ?? []) && Object.entries(t.matchLabels ?? {}).every(([k, v]) => labels[k] === v));
}

/** `pool a or b, zone z1` — the placement as a phrase for messages. */
export function describePlacement(d: AppDeployment | undefined): string {
  const parts: string[] = [];
  if (d?.pools?.length) parts.push(`node pool ${d.pools.join(' or ')}`);
  if (d?.zones?.length) parts.push(`zone ${d.zones.join(' or ')}`);
  return parts.join(', ') || 'any node';
}
