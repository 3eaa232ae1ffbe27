// Object storage of the fake API server. resourceVersion is a global counter
// bumped only when an object's stored content changes (as etcd writes are
// skipped for no-op updates); generation is bumped when `spec` changes, for
// the resource kinds that have one. Listeners hear about every stored change
// (the controllers' informers).
import { randomUUID } from 'node:crypto';
import type { ResourceInfo } from './resources.js';
import { canonical, deepEqual, isObj } from './ssa.js';

export type Obj = Record<string, unknown> & { metadata?: Record<string, unknown> };

export function nowRfc3339(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function storeKey(r: ResourceInfo, namespace: string | undefined, name: string): string {
  return `${r.group}|${r.plural}|${r.namespaced ? (namespace ?? '') : ''}|${name}`;
}

/** Kinds whose metadata.generation the real server maintains (spec-bearing workload/network kinds and custom resources). */
function hasGeneration(r: ResourceInfo): boolean {
  return r.group !== '' && r.group !== 'rbac.authorization.k8s.io' && r.group !== 'storage.k8s.io';
}

export type StoreListener = (r: ResourceInfo, obj: Obj, change: 'put' | 'remove') => void;

export class FakeStore {
  private objects = new Map<string, { r: ResourceInfo; obj: Obj }>();
  private rv = 100;
  private readonly listeners: StoreListener[] = [];

  /** `now` gives creation timestamps (the fake's clock). */
  constructor(private readonly now: () => string = nowRfc3339) {}

  onChange(l: StoreListener): void {
    this.listeners.push(l);
  }

  private notify(r: ResourceInfo, obj: Obj, change: 'put' | 'remove'): void {
    for (const l of this.listeners) l(r, obj, change);
  }

  get resourceVersion(): string {
    return String(this.rv);
  }

  get(r: ResourceInfo, namespace: string | undefined, name: string): Obj | undefined {
    const e = this.objects.get(storeKey(r, namespace, name));
    return e ? structuredClone(e.obj) : undefined;
  }

  list(r: ResourceInfo, namespace?: string): Obj[] {
    const out: Obj[] = [];
    for (const e of this.objects.values()) {
      if (e.r.group !== r.group || e.r.plural !== r.plural) continue;
      if (r.namespaced && namespace !== undefined && e.obj.metadata?.namespace !== namespace) continue;
      out.push(structuredClone(e.obj));
    }
    return out.sort((a, b) =>
      `${a.metadata?.namespace ?? ''}/${a.metadata?.name}`.localeCompare(`${b.metadata?.namespace ?? ''}/${b.metadata?.name}`),
    );
  }

  /** Everything stored (for tests: "nothing changed" assertions). */
  all(): { resource: ResourceInfo; obj: Obj }[] {
    return [...this.objects.values()].map((e) => ({ resource: e.r, obj: structuredClone(e.obj) }));
  }

  /**
   * Stores `obj` (create or update). Server-owned metadata is filled in here;
   * a write that changes nothing returns the stored object untouched.
   */
  put(r: ResourceInfo, obj: Obj, opts: { dryRun?: boolean } = {}): { obj: Obj; created: boolean; changed: boolean } {
    const meta = (obj.metadata ??= {});
    const name = String(meta.name);
    const k = storeKey(r, meta.namespace as string | undefined, name);
    const before = this.objects.get(k)?.obj;
    const next = structuredClone(obj) as Obj;
    const m = next.metadata!;
    if (!r.namespaced) delete m.namespace;
    if (before) {
      const bm = before.metadata!;
      m.uid = bm.uid;
      m.creationTimestamp = bm.creationTimestamp;
      m.resourceVersion = bm.resourceVersion;
      if (bm.generation !== undefined) m.generation = bm.generation;
      else delete m.generation;
      if (bm.deletionTimestamp && !m.deletionTimestamp) {
        // once set, deletion cannot be undone by a write (the API server copies it from the stored object)
        m.deletionTimestamp = bm.deletionTimestamp;
        if (bm.deletionGracePeriodSeconds !== undefined) m.deletionGracePeriodSeconds = bm.deletionGracePeriodSeconds;
      }
      if (deepEqual(before, next)) return { obj: structuredClone(before), created: false, changed: false };
      if (m.generation !== undefined && !deepEqual(before.spec, next.spec)) m.generation = Number(m.generation) + 1;
    } else {
      m.uid = randomUUID();
      m.creationTimestamp = this.now();
      if (hasGeneration(r)) m.generation = 1;
      else delete m.generation;
    }
    if (opts.dryRun) {
      if (!before) delete m.resourceVersion;
      return { obj: structuredClone(next), created: !before, changed: true };
    }
    m.resourceVersion = String(++this.rv);
    this.objects.set(k, { r, obj: canonicalize(next) });
    this.notify(r, next, 'put');
    return { obj: structuredClone(next), created: !before, changed: true };
  }

  remove(r: ResourceInfo, namespace: string | undefined, name: string): Obj | undefined {
    const k = storeKey(r, namespace, name);
    const e = this.objects.get(k);
    if (!e) return undefined;
    this.objects.delete(k);
    this.rv++;
    this.notify(r, e.obj, 'remove');
    return e.obj;
  }

  /** Removes every namespaced object in `namespace` (namespace deletion). */
  removeNamespaceContents(namespace: string): void {
    for (const [k, e] of this.objects) {
      if (!e.r.namespaced || e.obj.metadata?.namespace !== namespace) continue;
      this.objects.delete(k);
      this.notify(e.r, e.obj, 'remove');
    }
    this.rv++;
  }
}

/** Keeps a stable key order for stored objects (apiVersion, kind, metadata first). */
function canonicalize(o: Obj): Obj {
  const { apiVersion, kind, metadata, ...rest } = o;
  const out: Obj = {};
  if (apiVersion !== undefined) out.apiVersion = apiVersion;
  if (kind !== undefined) out.kind = kind;
  out.metadata = metadata;
  for (const [k, v] of Object.entries(rest)) out[k] = isObj(v) ? (canonical(v) as Obj) : v;
  return out;
}
