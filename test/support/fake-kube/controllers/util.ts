// Helpers the controllers share: label and node selectors, owner references,
// conditions, quantities. Each follows the Kubernetes function it names.
import { isObj } from '../ssa.js';
import type { Obj } from '../store.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Any = Record<string, any>;

export const meta = (o: Obj): Any => (o.metadata ?? {}) as Any;
export const nameOf = (o: Obj): string => String(meta(o).name);
export const nsOf = (o: Obj): string | undefined => meta(o).namespace as string | undefined;
export const uidOf = (o: Obj): string => String(meta(o).uid);
export const deleting = (o: Obj): boolean => Boolean(meta(o).deletionTimestamp);
export const annotations = (o: Obj): Record<string, string> => (meta(o).annotations ?? {}) as Record<string, string>;
export const labelsOf = (o: Obj): Record<string, string> => (meta(o).labels ?? {}) as Record<string, string>;

/** metav1.LabelSelectorAsSelector(...).Matches: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist). An empty selector matches everything. */
export function labelSelectorMatches(selector: unknown, labels: Record<string, string>): boolean {
  if (!isObj(selector)) return false;
  for (const [k, v] of Object.entries((selector.matchLabels ?? {}) as Record<string, string>)) if (labels[k] !== v) return false;
  for (const ex of (Array.isArray(selector.matchExpressions) ? selector.matchExpressions : []) as Any[]) {
    const has = Object.prototype.hasOwnProperty.call(labels, ex.key);
    const values = (ex.values ?? []) as string[];
    if (ex.operator === 'In' && !(has && values.includes(labels[ex.key]!))) return false;
    if (ex.operator === 'NotIn' && has && values.includes(labels[ex.key]!)) return false;
    if (ex.operator === 'Exists' && !has) return false;
    if (ex.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

/** One NodeSelectorRequirement against a node (v1helper.NodeSelectorRequirementsAsSelector: In, NotIn, Exists, DoesNotExist, Gt, Lt). */
function requirementMatches(req: Any, values: Record<string, string>): boolean {
  const has = Object.prototype.hasOwnProperty.call(values, req.key);
  const v = values[req.key];
  const vals = (req.values ?? []) as string[];
  switch (req.operator) {
    case 'In':
      return has && vals.includes(v!);
    case 'NotIn':
      return !has || !vals.includes(v!);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    case 'Gt':
      return has && Number(v) > Number(vals[0]);
    case 'Lt':
      return has && Number(v) < Number(vals[0]);
    default:
      return false;
  }
}

/** corev1.NodeSelector: the terms are ORed, the requirements of a term ANDed; an empty term matches nothing. */
export function nodeSelectorMatches(selector: unknown, node: Obj): boolean {
  const terms = (isObj(selector) && Array.isArray(selector.nodeSelectorTerms) ? selector.nodeSelectorTerms : []) as Any[];
  const labels = labelsOf(node);
  const fields = { 'metadata.name': nameOf(node) };
  return terms.some((t) => {
    const exprs = (t.matchExpressions ?? []) as Any[];
    const fieldExprs = (t.matchFields ?? []) as Any[];
    if (!exprs.length && !fieldExprs.length) return false;
    return exprs.every((r) => requirementMatches(r, labels)) && fieldExprs.every((r) => requirementMatches(r, fields));
  });
}

export interface OwnerRef {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export const ownerRefs = (o: Obj): OwnerRef[] => ((meta(o).ownerReferences ?? []) as OwnerRef[]).filter((r) => isObj(r));
export const controllerRef = (o: Obj): OwnerRef | undefined => ownerRefs(o).find((r) => r.controller === true);

export function controllerRefTo(owner: Obj, apiVersion: string, kind: string): OwnerRef {
  return { apiVersion, kind, name: nameOf(owner), uid: uidOf(owner), controller: true, blockOwnerDeletion: true };
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastUpdateTime?: string;
  lastProbeTime?: null;
}

/** Sets a condition; lastTransitionTime changes only when the status does (and lastUpdateTime, if tracked, when anything does). */
export function setCondition(list: Condition[] | undefined, c: Condition, now: string, opts: { updateTime?: boolean; probeTime?: boolean } = {}): Condition[] {
  const out = [...(list ?? [])];
  const i = out.findIndex((x) => x.type === c.type);
  const old = i >= 0 ? out[i] : undefined;
  const next: Condition = { type: c.type, status: c.status };
  if (opts.probeTime) next.lastProbeTime = null;
  if (opts.updateTime) {
    const same = old && old.status === c.status && old.reason === c.reason && old.message === c.message;
    next.lastUpdateTime = same ? old!.lastUpdateTime : now;
  }
  next.lastTransitionTime = old && old.status === c.status ? old.lastTransitionTime : now;
  if (c.reason !== undefined) next.reason = c.reason;
  if (c.message !== undefined) next.message = c.message;
  if (i >= 0) out[i] = next;
  else out.push(next);
  return out;
}

export const getCondition = (list: unknown, type: string): Condition | undefined =>
  (Array.isArray(list) ? (list as Condition[]) : []).find((c) => c.type === type);

const SUFFIX: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
  m: 1e-3,
};

/** resource.Quantity's value in base units (bytes for storage): `10Gi`, `500M`, `1e3`. NaN when unparsable. */
export function quantity(q: unknown): number {
  const s = String(q ?? '').trim();
  const m = /^([+-]?[0-9.]+(?:[eE][+-]?\d+)?)([a-zA-Z]*)$/.exec(s);
  if (!m || !(m[2]! in SUFFIX)) return NaN;
  return Number(m[1]) * SUFFIX[m[2]!]!;
}

/** A pod that still runs or may run (FilterActivePods): not finished, not being deleted. */
export function podActive(p: Obj): boolean {
  const phase = (p.status as Any | undefined)?.phase;
  return !deleting(p) && phase !== 'Succeeded' && phase !== 'Failed';
}

export function podReady(p: Obj): boolean {
  return getCondition((p.status as Any | undefined)?.conditions, 'Ready')?.status === 'True';
}

/** The claim names a pod mounts (persistentVolumeClaim volumes and generic ephemeral volumes, `<pod>-<volume>`). */
export function podClaims(p: Obj): string[] {
  const vols = (((p.spec as Any | undefined)?.volumes ?? []) as Any[]).filter((v): v is Any => isObj(v));
  return vols.flatMap((v) => (v.persistentVolumeClaim?.claimName ? [String(v.persistentVolumeClaim.claimName)] : v.ephemeral ? [`${nameOf(p)}-${v.name}`] : []));
}
