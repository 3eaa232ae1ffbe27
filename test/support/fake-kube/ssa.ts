// Server-side apply and field ownership for the fake API server, following
// sigs.k8s.io/structured-merge-diff (the library the real API server uses):
// - every object is seen as a set of field paths (FieldsV1: `f:name`, list
//   items `k:{"name":"web"}`, set items `v:"x"`), shaped by the merge schema
//   (schema.ts): atomic structs, maps and lists are one member; granular ones
//   contribute their fields; keyed lists their items;
// - Apply merges the configuration into the live object (config wins on
//   scalars and atomic values; keyed lists merge item by item), removes what
//   the manager applied last time and no longer applies unless another
//   manager owns it, and reports conflicts: fields another manager owns that
//   the apply would change (force moves them to the applier);
// - Update (create, PUT, merge patch, controller writes) gives the changed
//   fields to the writer and takes them from everyone else.
// `status` and the identity parts of metadata are not field-managed here.
import type { MergeSchema, TypeRef } from './schema.js';
import { DEDUCED } from './schema.js';

type Obj = Record<string, unknown>;

/** A field path as FieldsV1 path elements (`f:spec`, `k:{"name":"web"}`, `v:"x"`). */
export type FieldPath = string[];

export interface ManagedEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: Obj;
  subresource?: string;
}

export function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
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

const SEP = '\u0000';
const keyOf = (p: FieldPath) => p.join(SEP);
const pathOf = (k: string): FieldPath => (k === '' ? [] : k.split(SEP));

/** metadata keys that are field-managed (the rest is identity or server-owned). */
const META_MANAGED = new Set(['labels', 'annotations', 'finalizers', 'ownerReferences']);

/** The part of an object that is field-managed: no apiVersion/kind/status, metadata reduced to labels, annotations, finalizers, ownerReferences. */
export function managedView(obj: Obj): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'apiVersion' || k === 'kind' || k === 'status') continue;
    if (k === 'metadata') {
      const meta: Obj = {};
      for (const [mk, mv] of Object.entries(isObj(v) ? v : {})) if (META_MANAGED.has(mk)) meta[mk] = mv;
      if (Object.keys(meta).length) out.metadata = meta;
      continue;
    }
    out[k] = v;
  }
  return out;
}

interface Member {
  path: FieldPath;
  leaf: boolean;
  value?: unknown;
}
type FieldSet = Map<string, Member>;

export class ConflictError extends Error {
  constructor(readonly conflicts: { manager: string; path: FieldPath }[]) {
    const paths = conflicts.map((c) => `conflict with "${c.manager}": ${pathString(c.path)}`);
    super(`Apply failed with ${conflicts.length} conflict${conflicts.length === 1 ? '' : 's'}: ${paths.join('\n')}`);
  }
}

/** The path as structured-merge-diff prints it: `.spec.containers[name="web"].image`. */
export function pathString(p: FieldPath): string {
  return p
    .map((pe) => {
      if (pe.startsWith('f:')) return `.${pe.slice(2)}`;
      if (pe.startsWith('k:')) {
        const k = JSON.parse(pe.slice(2)) as Obj;
        return `[${Object.entries(k).map(([n, v]) => `${n}=${JSON.stringify(v)}`).join(',')}]`;
      }
      if (pe.startsWith('v:')) return `[=${pe.slice(2)}]`;
      return `[${pe.slice(2)}]`;
    })
    .join('');
}

// ---- FieldsV1 encoding ----

export function toFieldsV1(paths: Iterable<FieldPath>): Obj {
  const root: Obj = {};
  for (const p of paths) {
    let cur = root;
    for (const pe of p) {
      if (!isObj(cur[pe])) cur[pe] = {};
      cur = cur[pe] as Obj;
    }
    cur['.'] = {};
  }
  // a member without children is written as `{}`; `.` marks a member that also has children
  const tidy = (node: Obj): Obj => {
    const out: Obj = {};
    const keys = Object.keys(node).filter((k) => k !== '.').sort();
    if (keys.length && '.' in node) out['.'] = {};
    for (const k of keys) out[k] = tidy(node[k] as Obj);
    return out;
  };
  return tidy(root);
}

export function fromFieldsV1(f: Obj, prefix: FieldPath = []): FieldPath[] {
  const out: FieldPath[] = [];
  for (const [k, v] of Object.entries(f)) {
    if (k === '.') continue;
    const p = [...prefix, k];
    const children = isObj(v) ? Object.keys(v).filter((c) => c !== '.') : [];
    if (!children.length || (isObj(v) && '.' in v)) out.push(p);
    if (children.length) out.push(...fromFieldsV1(v as Obj, p));
  }
  return out;
}

// ---- the schema walk ----

export class FieldManager {
  constructor(readonly schema: MergeSchema) {}

  private keyPE(item: unknown, t: Extract<TypeRef, { kind: 'list' }>): string {
    if (t.rel === 'set') return `v:${JSON.stringify(item)}`;
    const defaults = this.schema.keyDefaults(t.elem);
    const k: Obj = {};
    for (const name of [...t.keys].sort()) {
      const v = isObj(item) ? (item[name] ?? defaults[name]) : undefined;
      if (v !== undefined) k[name] = v;
    }
    return `k:${JSON.stringify(k)}`;
  }

  /** Every member of `v` (typed `t`) under `path`. */
  private collect(v: unknown, t: TypeRef, path: FieldPath, out: FieldSet): void {
    const add = (p: FieldPath, leaf: boolean, value?: unknown) => {
      const k = keyOf(p);
      const had = out.get(k);
      out.set(k, { path: p, leaf: leaf || Boolean(had?.leaf), value: leaf ? value : had?.value });
    };
    if (v === null || typeof v !== 'object' || t.kind === 'scalar') return add(path, true, v);
    if (t.kind === 'deduced') {
      if (Array.isArray(v)) return add(path, true, v);
      return this.collectMap(v as Obj, t, path, out, false);
    }
    if (t.kind === 'struct' || t.kind === 'map') {
      if (t.atomic || !isObj(v)) return add(path, true, v);
      return this.collectMap(v, t, path, out, this.schema.declared(t));
    }
    // lists
    if (!Array.isArray(v) || t.rel === 'atomic') return add(path, true, v);
    for (const item of v) {
      const p = [...path, this.keyPE(item, t)];
      if (t.rel === 'set') add(p, true, item);
      else {
        this.collect(item, t.elem, p, out);
        add(p, false);
      }
    }
  }

  private collectMap(m: Obj, t: TypeRef, path: FieldPath, out: FieldSet, declared: boolean): void {
    for (const [k, val] of Object.entries(m)) {
      const ct = t.kind === 'deduced' ? DEDUCED : this.schema.field(t, k);
      const p = [...path, `f:${k}`];
      this.collect(val, ct, p, out);
      const empty = val === null || (isObj(val) && Object.keys(val).length === 0);
      if (empty) out.set(keyOf(p), { path: p, leaf: true, value: val });
      else if (!declared && !out.has(keyOf(p))) out.set(keyOf(p), { path: p, leaf: false });
    }
  }

  fieldSet(obj: Obj): FieldSet {
    const out: FieldSet = new Map();
    const root = this.schema.root(String(obj.apiVersion ?? ''), String(obj.kind ?? ''));
    this.collectMap(managedView(obj), root, [], out, true);
    return out;
  }

  // ---- merging ----

  private merge(lhs: unknown, rhs: unknown, t: TypeRef): unknown {
    if (rhs === undefined) return structuredClone(lhs);
    if (lhs === undefined || lhs === null || rhs === null || typeof rhs !== 'object') return structuredClone(rhs);
    if (t.kind === 'list') {
      if (t.rel === 'atomic' || !Array.isArray(lhs) || !Array.isArray(rhs)) return structuredClone(rhs);
      return this.mergeList(lhs, rhs, t);
    }
    const separable = t.kind === 'deduced' ? isObj(rhs) : (t.kind === 'struct' || t.kind === 'map') && !t.atomic;
    if (!separable || !isObj(lhs) || !isObj(rhs)) return structuredClone(rhs);
    const out = structuredClone(lhs);
    for (const [k, v] of Object.entries(rhs)) {
      if (v === null) {
        delete out[k];
        continue;
      }
      out[k] = this.merge(lhs[k], v, t.kind === 'deduced' ? DEDUCED : this.schema.field(t, k));
    }
    return out;
  }

  /** structured-merge-diff's list merge: items matched by key, configuration order for shared items, live-only items kept in place. */
  private mergeList(lhs: unknown[], rhs: unknown[], t: Extract<TypeRef, { kind: 'list' }>): unknown[] {
    const lPEs = lhs.map((x) => this.keyPE(x, t));
    const rPEs = rhs.map((x) => this.keyPE(x, t));
    const obsL = new Map<string, unknown>();
    const obsR = new Map<string, unknown>();
    lhs.forEach((x, i) => obsL.set(lPEs[i]!, x));
    rhs.forEach((x, i) => obsR.set(rPEs[i]!, x));
    const item = (pe: string) => (t.rel === 'set' ? structuredClone(obsR.get(pe) ?? obsL.get(pe)) : this.merge(obsL.get(pe), obsR.get(pe), t.elem));
    const sharedOrder = rPEs.filter((pe) => obsL.has(pe));
    let nextShared = sharedOrder.shift();
    const mergedR = new Set<string>();
    const out: unknown[] = [];
    for (let lI = 0, rI = 0; lI < lhs.length || rI < rhs.length; ) {
      if (lI < lhs.length && rI < rhs.length) {
        const pe = lPEs[lI]!;
        if (pe === rPEs[rI]) {
          mergedR.add(pe);
          out.push(item(pe));
          lI++;
          rI++;
          nextShared = sharedOrder.shift();
          continue;
        }
        if (obsR.has(pe) && nextShared !== undefined && nextShared !== pe) {
          lI++;
          continue;
        }
      }
      if (lI < lhs.length) {
        const pe = lPEs[lI]!;
        if (!obsR.has(pe)) {
          out.push(structuredClone(lhs[lI]));
          lI++;
          continue;
        } else if (mergedR.has(pe)) {
          lI++;
          continue;
        }
      }
      if (rI < rhs.length) {
        const pe = rPEs[rI]!;
        mergedR.add(pe);
        out.push(item(pe));
        rI++;
        if (nextShared !== undefined && nextShared === pe) nextShared = sharedOrder.shift();
      }
    }
    return out;
  }

  // ---- removing fields ----

  /** Removes the field at `path` (a member), then parents it left empty that nobody owns. */
  private removePath(obj: Obj, path: FieldPath, owned: Set<string>): void {
    const root = this.schema.root(String(obj.apiVersion ?? ''), String(obj.kind ?? ''));
    // walk down, remembering each container and how to delete the child from it
    const chain: { container: Obj | unknown[]; at: string | number; type: TypeRef; key: string }[] = [];
    let cur: unknown = obj;
    let t: TypeRef = root;
    for (let i = 0; i < path.length; i++) {
      const pe = path[i]!;
      const sub = keyOf(path.slice(0, i + 1));
      if (pe.startsWith('f:')) {
        if (!isObj(cur)) return;
        const name = pe.slice(2);
        const ct = t.kind === 'deduced' ? DEDUCED : this.schema.field(t, name);
        chain.push({ container: cur, at: name, type: ct, key: sub });
        cur = cur[name];
        t = ct;
      } else {
        if (!Array.isArray(cur) || t.kind !== 'list') return;
        const lt = t;
        const idx = cur.findIndex((x) => this.keyPE(x, lt) === pe);
        if (idx < 0) return;
        chain.push({ container: cur, at: idx, type: lt.elem, key: sub });
        cur = cur[idx];
        t = lt.elem;
      }
      if (cur === undefined) return;
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      const { container, at, key } = chain[i]!;
      if (i < chain.length - 1) {
        // a parent: only when the removal left it empty and it is nobody's member
        const v = Array.isArray(container) ? container[at as number] : (container as Obj)[at as string];
        const empty = Array.isArray(v) ? v.length === 0 : isObj(v) && Object.keys(v).length === 0;
        if (!empty || owned.has(key) || (i === 0 && at === 'metadata')) break;
      }
      if (Array.isArray(container)) container.splice(at as number, 1);
      else delete (container as Obj)[at as string];
    }
  }

  // ---- the operations ----

  /**
   * Server-side apply of `config` by `manager` onto `live` (undefined: create).
   * Returns the new object with its managedFields; throws ConflictError.
   */
  apply(live: Obj | undefined, config: Obj, manager: string, force: boolean, now: string): Obj {
    const base: Obj = live ? structuredClone(live) : { apiVersion: config.apiVersion, kind: config.kind, metadata: {} };
    if (!isObj(base.metadata)) base.metadata = {};
    const root = this.schema.root(String(config.apiVersion ?? ''), String(config.kind ?? ''));
    const view = managedView(config);
    const merged = this.merge(base, view, root) as Obj;
    const entries = entriesOf(live);
    const mine = entries.find((e) => e.manager === manager && e.operation === 'Apply' && !e.subresource);
    const lastSet = mine ? fromFieldsV1(mine.fieldsV1) : [];
    const applied = this.fieldSet({ apiVersion: config.apiVersion, kind: config.kind, ...view });

    // prune: what this manager applied before and no longer applies, unless someone else owns it (or something inside it)
    const owned = new Set<string>(applied.keys());
    for (const e of entries) if (e !== mine) for (const p of fromFieldsV1(e.fieldsV1)) owned.add(keyOf(p));
    const ownedPrefixes = new Set<string>();
    for (const k of owned) {
      const p = pathOf(k);
      for (let i = 1; i <= p.length; i++) ownedPrefixes.add(keyOf(p.slice(0, i)));
    }
    for (const p of [...lastSet].sort((a, b) => a.length - b.length)) {
      const k = keyOf(p);
      if (applied.has(k) || ownedPrefixes.has(k)) continue;
      this.removePath(merged, p, owned);
    }

    // conflicts: fields of other managers this apply changes or adds
    const cmp = compare(this.fieldSet(base), this.fieldSet(merged));
    const conflicts: { manager: string; path: FieldPath }[] = [];
    for (const e of entries) {
      if (e === mine || e.subresource) continue;
      for (const p of fromFieldsV1(e.fieldsV1)) {
        const k = keyOf(p);
        if (cmp.modified.has(k) || cmp.added.has(k)) conflicts.push({ manager: e.manager, path: p });
      }
    }
    if (conflicts.length && !force) throw new ConflictError(conflicts);
    for (const e of entries) {
      if (e === mine) continue;
      const drop = new Set([...conflicts.filter((c) => c.manager === e.manager).map((c) => keyOf(c.path)), ...cmp.removed]);
      if (drop.size) e.fieldsV1 = toFieldsV1(fromFieldsV1(e.fieldsV1).filter((p) => !drop.has(keyOf(p))));
    }
    const fieldsV1 = toFieldsV1([...applied.values()].map((m) => m.path));
    if (mine) {
      if (!deepEqual(mine.fieldsV1, fieldsV1)) {
        mine.fieldsV1 = fieldsV1;
        mine.time = now;
      }
    } else {
      entries.push({ manager, operation: 'Apply', apiVersion: String(config.apiVersion), time: now, fieldsType: 'FieldsV1', fieldsV1 });
    }
    setEntries(merged, entries);
    return merged;
  }

  /** A non-apply write (create, update, patch, a controller's write): fields it changed become `manager`'s (operation Update). */
  update(before: Obj | undefined, after: Obj, manager: string, apiVersion: string, now: string): void {
    const entries = entriesOf(before);
    const cmp = compare(before ? this.fieldSet(before) : new Map(), this.fieldSet(after));
    const touched = new Set([...cmp.modified, ...cmp.added]);
    for (const e of entries) {
      if (e.manager === manager && e.operation === 'Update' && !e.subresource) continue;
      if (e.subresource) continue;
      const kept = fromFieldsV1(e.fieldsV1).filter((p) => !touched.has(keyOf(p)) && !cmp.removed.has(keyOf(p)));
      e.fieldsV1 = toFieldsV1(kept);
    }
    let mine = entries.find((e) => e.manager === manager && e.operation === 'Update' && !e.subresource);
    if (touched.size || mine) {
      if (!mine) {
        mine = { manager, operation: 'Update', apiVersion, time: now, fieldsType: 'FieldsV1', fieldsV1: {} };
        entries.push(mine);
      }
      const set = fromFieldsV1(mine.fieldsV1).filter((p) => !cmp.removed.has(keyOf(p)));
      const keys = new Set(set.map(keyOf));
      for (const k of touched) if (!keys.has(k)) set.push(pathOf(k));
      const next = toFieldsV1(set);
      if (!deepEqual(next, mine.fieldsV1)) {
        mine.fieldsV1 = next;
        mine.time = now;
      }
    }
    if (!isObj(after.metadata)) after.metadata = {};
    setEntries(after, entries);
  }
}

function compare(a: FieldSet, b: FieldSet): { added: Set<string>; removed: Set<string>; modified: Set<string> } {
  const added = new Set<string>();
  const removed = new Set<string>();
  const modified = new Set<string>();
  for (const [k, m] of b) {
    const o = a.get(k);
    if (!o) added.add(k);
    else if (m.leaf && o.leaf && !deepEqual(m.value, o.value)) modified.add(k);
    else if (m.leaf !== o.leaf) modified.add(k);
  }
  for (const k of a.keys()) if (!b.has(k)) removed.add(k);
  return { added, removed, modified };
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
