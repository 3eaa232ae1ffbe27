// Pure planning of a deploy: in which order objects are applied, what an
// earlier deploy left that must be pruned, and what changed between the live
// object and the one the server would store (a server-side dry run), ignoring
// fields the server populates. No I/O here.
import { refString, toRef, type KubeObject, type ObjectRef } from '../domain/ports/kube.js';

export { refString, toRef };

/**
 * Apply order: what others depend on first. Kinds not listed (e.g. Traefik
 * Middlewares) go right before Ingress, which may reference them.
 */
export const APPLY_ORDER = [
  'Namespace',
  'ServiceAccount',
  'ClusterRole',
  'Role',
  'ClusterRoleBinding',
  'RoleBinding',
  'NetworkPolicy',
  'ConfigMap',
  'Secret',
  'StorageClass',
  // claims before their volumes: the volume's claimRef is then applied with the claim's uid (volume-bindings.ts)
  'PersistentVolumeClaim',
  'PersistentVolume',
  'Deployment',
  'StatefulSet',
  'Service',
  '*',
  'Ingress',
] as const;

export const MANAGED_BY = 'app.kubernetes.io/managed-by';
export const INSTANCE = 'app.kubernetes.io/instance';

/** True when the live object carries the labels Kompox puts on what it creates for this app. */
export function isOurs(o: KubeObject | undefined, namespace: string): boolean {
  const l = o?.metadata.labels ?? {};
  return l[MANAGED_BY] === 'kompox' && l[INSTANCE] === namespace;
}

/** Kinds that are never pruned implicitly: volume bindings go through releaseOldVolumeBindings, the namespace through destroy. */
export const NEVER_PRUNE = new Set(['Namespace', 'PersistentVolume', 'PersistentVolumeClaim']);

/** Name of the ConfigMap (in the app namespace) that lists what the last deploy applied. */
export const INVENTORY_NAME = 'kompox-inventory';
const INVENTORY_KEY = 'objects';

export function kindRank(kind: string): number {
  const i = (APPLY_ORDER as readonly string[]).indexOf(kind);
  return i >= 0 ? i : APPLY_ORDER.indexOf('*');
}

export function groupOf(apiVersion: string): string {
  return apiVersion.includes('/') ? apiVersion.split('/')[0]! : '';
}

/** Identity of an object across API versions of the same group. */
export function refKey(o: KubeObject | ObjectRef): string {
  const r = toRef(o);
  return `${groupOf(r.apiVersion)}|${r.kind}|${r.namespace ?? ''}|${r.name}`;
}

function compareRefs(a: ObjectRef, b: ObjectRef): number {
  return kindRank(a.kind) - kindRank(b.kind) || refKey(a).localeCompare(refKey(b));
}

/** Objects in apply order (stable: the converter's order within a kind is kept). */
export function sortForApply<T extends KubeObject>(objects: T[]): T[] {
  return objects
    .map((o, i) => ({ o, i }))
    .sort((a, b) => kindRank(a.o.kind) - kindRank(b.o.kind) || a.i - b.i)
    .map((x) => x.o);
}

/** Objects in delete order: dependents first (the reverse of the apply order). */
export function sortForDelete(refs: ObjectRef[]): ObjectRef[] {
  // a claim goes before its volume (the reverse of apply order would be the other way round):
  // the volume is then released rather than left Bound to a claim that is going
  const rank = (r: ObjectRef) => (r.kind === 'PersistentVolume' ? kindRank('PersistentVolumeClaim') - 0.5 : kindRank(r.kind));
  return [...refs].sort((a, b) => rank(b) - rank(a) || refKey(b).localeCompare(refKey(a)));
}

/** What the previous deploy applied and the current manifests no longer contain. */
export function planPrune(previous: ObjectRef[], desired: (KubeObject | ObjectRef)[]): ObjectRef[] {
  const want = new Set(desired.map(refKey));
  return sortForDelete(previous.filter((r) => !want.has(refKey(r)) && !NEVER_PRUNE.has(r.kind)));
}

// ---- inventory ----

export function inventoryObject(namespace: string, labels: Record<string, string>, refs: ObjectRef[]): KubeObject {
  const unique = new Map(refs.map((r) => [refKey(r), toRef(r)] as const));
  const sorted = [...unique.values()].sort(compareRefs);
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: INVENTORY_NAME,
      namespace,
      labels: { ...labels },
      annotations: { 'kompox.dev/description': 'objects applied by the last kompoxops app deploy (used to prune what is no longer wanted)' },
    },
    data: { [INVENTORY_KEY]: JSON.stringify(sorted, null, 1) + '\n' },
  };
}

export function parseInventory(cm: KubeObject | undefined): ObjectRef[] {
  const text = (cm?.data as Record<string, string> | undefined)?.[INVENTORY_KEY];
  if (!text) return [];
  try {
    const v = JSON.parse(text) as unknown;
    if (!Array.isArray(v)) return [];
    return v.filter(
      (r): r is ObjectRef =>
        typeof r === 'object' && r !== null && typeof r.apiVersion === 'string' && typeof r.kind === 'string' && typeof r.name === 'string',
    );
  } catch {
    return [];
  }
}

// ---- diff ----

export type ChangeAction = 'create' | 'change' | 'unchanged' | 'prune';

export interface ObjectChange {
  ref: ObjectRef;
  action: ChangeAction;
  /** Top-level fields that differ (`spec`, `data`, `metadata.labels`, ...), for action `change`. */
  fields: string[];
}

const SERVER_META = new Set(['resourceVersion', 'uid', 'creationTimestamp', 'generation', 'managedFields', 'selfLink', 'deletionTimestamp', 'deletionGracePeriodSeconds']);
const SERVER_TOP = new Set(['status']);

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = canonical((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

/**
 * Which top-level fields differ between the object as the server would store
 * it (`next`: a dry-run result, so defaults are filled in the same way) and the
 * live object. Server-populated metadata and status are ignored.
 */
export function changedFields(next: KubeObject, live: KubeObject): string[] {
  const out = new Set<string>();
  const keys = new Set([...Object.keys(next), ...Object.keys(live)]);
  for (const k of keys) {
    if (k === 'metadata' || SERVER_TOP.has(k)) continue;
    if (!same(next[k], live[k])) out.add(k);
  }
  const nm = next.metadata ?? {};
  const lm = live.metadata ?? {};
  for (const k of new Set([...Object.keys(nm), ...Object.keys(lm)])) {
    if (SERVER_META.has(k)) continue;
    if (!same(nm[k], lm[k])) out.add(`metadata.${k}`);
  }
  return [...out].sort();
}

/**
 * The change for one object: live undefined = create. After a real apply an
 * equal resourceVersion proves nothing was written; a dry-run result keeps the
 * old resourceVersion even when it differs, so then only the fields count.
 */
export function classify(next: KubeObject, live: KubeObject | undefined, opts: { dryRun?: boolean } = {}): ObjectChange {
  const ref = toRef(next);
  if (!live) return { ref, action: 'create', fields: [] };
  if (!opts.dryRun && live.metadata.resourceVersion && next.metadata.resourceVersion === live.metadata.resourceVersion) {
    return { ref, action: 'unchanged', fields: [] };
  }
  const fields = changedFields(next, live);
  return { ref, action: fields.length ? 'change' : 'unchanged', fields };
}

export function summarize(changes: ObjectChange[]): Record<ChangeAction, number> {
  const s: Record<ChangeAction, number> = { create: 0, change: 0, unchanged: 0, prune: 0 };
  for (const c of changes) s[c.action]++;
  return s;
}

/** One line per change, e.g. `changed Deployment/ns/web (spec)`. */
export function formatChange(c: ObjectChange, dryRun: boolean): string {
  const verb = {
    create: dryRun ? 'would create' : 'created',
    change: dryRun ? 'would change' : 'changed',
    unchanged: 'unchanged',
    prune: dryRun ? 'would prune' : 'pruned',
  }[c.action];
  return `${verb} ${refString(c.ref)}${c.fields.length ? ` (${c.fields.join(', ')})` : ''}`;
}
