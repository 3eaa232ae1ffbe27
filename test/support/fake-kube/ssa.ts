// Server-side apply and merge patch for the fake API server, with field
// ownership tracked per (manager, operation) like the real server. Maps are
// tracked field by field down to the leaves (labels, annotations, data keys,
// spec.replicas, ...); lists are atomic (the real server merges some lists by
// key; treating them as one value is stricter, never looser, about conflicts).
// That reproduces the behaviours that matter: an apply removes only fields its
// own manager applied before, fields written by others survive applies, and a
// different manager's field with a different value is a conflict unless forced.

type Obj = Record<string, unknown>;

/** A field path; label/annotation keys contain dots and slashes, so paths are arrays. */
export type FieldPath = string[];

export interface ManagedEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: Obj;
}

/** Top-level keys that are identity or server-owned, never field-managed here. */
const SKIP_TOP = new Set(['apiVersion', 'kind', 'status']);
/** metadata keys that are field-managed (the rest is identity or server-owned). */
const META_MANAGED = new Set(['labels', 'annotations', 'finalizers', 'ownerReferences']);

export function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function leaves(v: unknown, prefix: FieldPath, out: FieldPath[]): void {
  if (isObj(v) && Object.keys(v).length > 0) {
    for (const k of Object.keys(v)) leaves(v[k], [...prefix, k], out);
  } else {
    out.push(prefix);
  }
}

/** The field paths an object (an apply configuration or a stored object) sets. */
export function fieldsOf(obj: Obj): FieldPath[] {
  const out: FieldPath[] = [];
  for (const k of Object.keys(obj)) {
    if (SKIP_TOP.has(k)) continue;
    if (k === 'metadata') {
      const meta = isObj(obj.metadata) ? obj.metadata : {};
      for (const m of Object.keys(meta)) if (META_MANAGED.has(m)) leaves(meta[m], ['metadata', m], out);
      continue;
    }
    leaves(obj[k], [k], out);
  }
  return out;
}

const key = (p: FieldPath) => p.join('\u0000');
const isEmptyMap = (v: unknown) => isObj(v) && Object.keys(v).length === 0;
const isPrefix = (a: FieldPath, b: FieldPath) => a.length <= b.length && a.every((x, i) => x === b[i]);
const related = (a: FieldPath, b: FieldPath) => isPrefix(a, b) || isPrefix(b, a);

export function toFieldsV1(paths: FieldPath[]): Obj {
  const root: Obj = {};
  for (const p of [...paths].sort((a, b) => key(a).localeCompare(key(b)))) {
    let cur = root;
    for (const part of p) {
      const k = `f:${part}`;
      if (!isObj(cur[k])) cur[k] = {};
      cur = cur[k] as Obj;
    }
  }
  return root;
}

export function fromFieldsV1(f: Obj, prefix: FieldPath = []): FieldPath[] {
  const out: FieldPath[] = [];
  for (const [k, v] of Object.entries(f)) {
    if (!k.startsWith('f:')) continue;
    const p = [...prefix, k.slice(2)];
    const children = isObj(v) ? Object.keys(v).filter((c) => c.startsWith('f:')) : [];
    if (children.length) out.push(...fromFieldsV1(v as Obj, p));
    else out.push(p);
  }
  return out;
}

export function getPath(obj: Obj, p: FieldPath): unknown {
  let cur: unknown = obj;
  for (const part of p) {
    if (!isObj(cur)) return undefined;
    cur = cur[part];
  }
  return cur;
}

function setPath(obj: Obj, p: FieldPath, v: unknown): void {
  let cur = obj;
  for (const part of p.slice(0, -1)) {
    if (!isObj(cur[part])) cur[part] = {};
    cur = cur[part] as Obj;
  }
  cur[p[p.length - 1]!] = v;
}

/** Removes the field and then every parent map the removal left empty. */
function deletePath(obj: Obj, p: FieldPath): void {
  const chain: Obj[] = [obj];
  let cur: unknown = obj;
  for (const part of p.slice(0, -1)) {
    if (!isObj(cur)) return;
    cur = cur[part];
    if (!isObj(cur)) return;
    chain.push(cur);
  }
  delete chain[chain.length - 1]![p[p.length - 1]!];
  for (let i = chain.length - 1; i > 0; i--) {
    if (Object.keys(chain[i]!).length > 0) break;
    if (i === 1 && p[0] === 'metadata') break; // never drop metadata itself
    delete chain[i - 1]![p[i - 1]!];
  }
}

export function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (isObj(v)) {
    const out: Obj = {};
    for (const k of Object.keys(v).sort()) out[k] = canonical(v[k]);
    return out;
  }
  return v;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

export class ConflictError extends Error {
  constructor(readonly conflicts: { manager: string; path: FieldPath }[]) {
    super(
      `Apply failed with ${conflicts.length} conflict${conflicts.length === 1 ? '' : 's'}: ` +
        conflicts.map((c) => `conflict with "${c.manager}": .${c.path.join('.')}`).join('\n'),
    );
  }
}

function entriesOf(live: Obj | undefined): ManagedEntry[] {
  const meta = live && isObj(live.metadata) ? live.metadata : {};
  return Array.isArray(meta.managedFields) ? (structuredClone(meta.managedFields) as ManagedEntry[]) : [];
}

function setEntries(obj: Obj, entries: ManagedEntry[]): void {
  const meta = obj.metadata as Obj;
  const kept = entries.filter((e) => Object.keys(e.fieldsV1).length > 0);
  if (kept.length) meta.managedFields = kept;
  else delete meta.managedFields;
}

function without(e: ManagedEntry, drop: FieldPath[]): void {
  e.fieldsV1 = toFieldsV1(fromFieldsV1(e.fieldsV1).filter((p) => !drop.some((d) => related(d, p))));
}

/**
 * Server-side apply of `config` by `manager` onto `live` (undefined: create).
 * Returns the new object (server metadata is the caller's business).
 */
export function applyConfig(live: Obj | undefined, config: Obj, manager: string, force: boolean, now: string): Obj {
  const result: Obj = live ? structuredClone(live) : { apiVersion: config.apiVersion, kind: config.kind, metadata: {} };
  if (!isObj(result.metadata)) result.metadata = {};
  const entries = entriesOf(live);
  const applied = fieldsOf(config);

  // conflicts: another manager owns a field we set (or one inside/above it) with a different value
  const conflicts: { manager: string; path: FieldPath }[] = [];
  for (const e of entries) {
    if (e.manager === manager && e.operation === 'Apply') continue;
    for (const p of fromFieldsV1(e.fieldsV1)) {
      // an empty map in the configuration claims the map, not the keys others put in it
      const mine = applied.find((a) => related(a, p) && !(isEmptyMap(getPath(config, a)) && a.length < p.length));
      if (!mine) continue;
      const deeper = mine.length >= p.length ? mine : p;
      if (!deepEqual(getPath(result, deeper), getPath(config, deeper))) conflicts.push({ manager: e.manager, path: p });
    }
  }
  if (conflicts.length && !force) throw new ConflictError(conflicts);
  if (conflicts.length) {
    // forced: the conflicting fields move to us
    for (const e of entries) if (!(e.manager === manager && e.operation === 'Apply')) without(e, conflicts.map((c) => c.path));
  }

  // fields we applied before and no longer apply: removed unless someone else owns them
  const mine = entries.find((e) => e.manager === manager && e.operation === 'Apply');
  const others = entries.filter((e) => e !== mine).flatMap((e) => fromFieldsV1(e.fieldsV1));
  for (const p of mine ? fromFieldsV1(mine.fieldsV1) : []) {
    if (applied.some((a) => related(a, p) && !(isEmptyMap(getPath(config, a)) && a.length < p.length))) continue;
    if (others.some((o) => related(o, p))) continue;
    deletePath(result, p);
  }
  for (const p of applied) {
    const v = getPath(config, p);
    if (isEmptyMap(v) && isObj(getPath(result, p))) continue; // keep the keys others own
    setPath(result, p, structuredClone(v));
  }

  const fieldsV1 = toFieldsV1(applied);
  if (mine) {
    if (!deepEqual(mine.fieldsV1, fieldsV1)) {
      mine.fieldsV1 = fieldsV1;
      mine.time = now;
    }
  } else {
    entries.push({ manager, operation: 'Apply', apiVersion: String(config.apiVersion), time: now, fieldsType: 'FieldsV1', fieldsV1 });
  }
  setEntries(result, entries);
  return result;
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return structuredClone(patch);
  const out: Obj = isObj(target) ? structuredClone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** A non-apply write (create, merge patch, update): changed fields move to `manager` (operation Update). */
export function recordUpdate(before: Obj | undefined, after: Obj, manager: string, apiVersion: string, now: string): void {
  const entries = entriesOf(before);
  const afterFields = fieldsOf(after);
  const changed = afterFields.filter((p) => !before || !deepEqual(getPath(before, p), getPath(after, p)));
  const removed = before ? fieldsOf(before).filter((p) => !afterFields.some((a) => related(a, p))) : [];
  const touched = [...changed, ...removed];
  for (const e of entries) if (!(e.manager === manager && e.operation === 'Update')) without(e, touched);
  if (touched.length) {
    let mineEntry = entries.find((e) => e.manager === manager && e.operation === 'Update');
    if (!mineEntry) {
      mineEntry = { manager, operation: 'Update', apiVersion, time: now, fieldsType: 'FieldsV1', fieldsV1: {} };
      entries.push(mineEntry);
    }
    const kept = fromFieldsV1(mineEntry.fieldsV1).filter((p) => !touched.some((t) => related(t, p)));
    mineEntry.fieldsV1 = toFieldsV1([...kept, ...changed]);
    mineEntry.time = now;
  }
  if (!isObj(after.metadata)) after.metadata = {};
  setEntries(after, entries);
}
