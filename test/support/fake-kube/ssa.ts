// Server-side apply and merge patch for the fake API server, with field
// ownership tracked per (manager, operation) like the real server, at the
// granularity Kompox relies on: top-level fields (spec, data, rules, ...) and
// individual metadata labels/annotations. That is enough to reproduce the
// behaviours that matter: an apply removes only fields its own manager applied
// before, fields written by merge patch survive applies, and a different
// manager's field with a different value is a conflict unless forced.

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

const META_MAPS = ['labels', 'annotations'];
const SERVER_TOP = new Set(['apiVersion', 'kind', 'metadata', 'status']);

export function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The field paths an object (an apply configuration or a patch) sets. */
export function fieldsOf(obj: Obj): FieldPath[] {
  const out: FieldPath[] = [];
  for (const k of Object.keys(obj)) {
    if (SERVER_TOP.has(k)) continue;
    out.push([k]);
  }
  const meta = isObj(obj.metadata) ? obj.metadata : {};
  for (const m of META_MAPS) {
    const map = meta[m];
    if (isObj(map)) for (const key of Object.keys(map)) out.push(['metadata', m, key]);
  }
  return out;
}

const key = (p: FieldPath) => p.join('\u0000');

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
    const isMetaMap = p.length === 2 && p[0] === 'metadata' && META_MAPS.includes(p[1]!);
    if ((p.length === 1 && p[0] === 'metadata') || isMetaMap) out.push(...fromFieldsV1(v as Obj, p));
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

function deletePath(obj: Obj, p: FieldPath): void {
  let cur: unknown = obj;
  for (const part of p.slice(0, -1)) {
    if (!isObj(cur)) return;
    cur = cur[part];
  }
  if (isObj(cur)) delete cur[p[p.length - 1]!];
  // drop empty label/annotation maps like the real server's output
  const meta = obj.metadata;
  if (isObj(meta)) for (const m of META_MAPS) if (isObj(meta[m]) && Object.keys(meta[m] as Obj).length === 0) delete meta[m];
}

export function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
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

export class ConflictError extends Error {
  constructor(
    readonly conflicts: { manager: string; path: FieldPath }[],
  ) {
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

/**
 * Server-side apply of `config` by `manager` onto `live` (undefined: create).
 * Returns the new object (server metadata is the caller's business).
 */
export function applyConfig(live: Obj | undefined, config: Obj, manager: string, force: boolean, now: string): Obj {
  const result: Obj = live ? structuredClone(live) : { apiVersion: config.apiVersion, kind: config.kind, metadata: {} };
  const entries = entriesOf(live);
  const applied = fieldsOf(config);
  const appliedKeys = new Set(applied.map(key));

  // conflicts: another manager owns a field we set, with a different value
  const conflicts: { manager: string; path: FieldPath }[] = [];
  for (const e of entries) {
    if (e.manager === manager && e.operation === 'Apply') continue;
    for (const p of fromFieldsV1(e.fieldsV1)) {
      if (appliedKeys.has(key(p)) && !deepEqual(getPath(result, p), getPath(config, p))) conflicts.push({ manager: e.manager, path: p });
    }
  }
  if (conflicts.length && !force) throw new ConflictError(conflicts);

  // forced: the conflicting fields move to us
  if (conflicts.length) {
    const lost = new Set(conflicts.map((c) => key(c.path)));
    for (const e of entries) {
      if (e.manager === manager && e.operation === 'Apply') continue;
      e.fieldsV1 = toFieldsV1(fromFieldsV1(e.fieldsV1).filter((p) => !lost.has(key(p))));
    }
  }

  // fields we applied before and no longer apply: removed unless someone else owns them
  const mine = entries.find((e) => e.manager === manager && e.operation === 'Apply');
  const ownedByOthers = new Set(
    entries.filter((e) => e !== mine).flatMap((e) => fromFieldsV1(e.fieldsV1).map(key)),
  );
  for (const p of mine ? fromFieldsV1(mine.fieldsV1) : []) {
    if (!appliedKeys.has(key(p)) && !ownedByOthers.has(key(p))) deletePath(result, p);
  }
  for (const p of applied) setPath(result, p, structuredClone(getPath(config, p)));

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

/** A non-apply write (create, merge patch): changed fields move to `manager` (operation Update). */
export function recordUpdate(before: Obj | undefined, after: Obj, manager: string, apiVersion: string, now: string): void {
  const entries = entriesOf(before);
  const changed = fieldsOf(after).filter((p) => !before || !deepEqual(getPath(before, p), getPath(after, p)));
  const removed = before ? fieldsOf(before).filter((p) => getPath(after, p) === undefined) : [];
  const drop = new Set([...changed, ...removed].map(key));
  for (const e of entries) {
    if (e.manager === manager && e.operation === 'Update') continue;
    e.fieldsV1 = toFieldsV1(fromFieldsV1(e.fieldsV1).filter((p) => !drop.has(key(p))));
  }
  if (changed.length) {
    let mine = entries.find((e) => e.manager === manager && e.operation === 'Update');
    if (!mine) {
      mine = { manager, operation: 'Update', apiVersion, time: now, fieldsType: 'FieldsV1', fieldsV1: {} };
      entries.push(mine);
    }
    const set = new Map(fromFieldsV1(mine.fieldsV1).map((p) => [key(p), p] as const));
    for (const p of changed) set.set(key(p), p);
    for (const p of removed) set.delete(key(p));
    mine.fieldsV1 = toFieldsV1([...set.values()]);
    mine.time = now;
  }
  if (!isObj(after.metadata)) after.metadata = {};
  setEntries(after, entries);
}
