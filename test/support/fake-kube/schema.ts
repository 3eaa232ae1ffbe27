// The merge schema of server-side apply: for each kind the fake serves, how
// every field merges (atomic or granular structs and maps; lists atomic, as
// sets, or keyed by merge keys). The rules come from schema-markers.json,
// extracted from the schema Kubernetes publishes (see its provenance); fields
// it does not list follow the API server's deduced rules for schema-less data
// (objects granular, arrays atomic), which is also how custom resources
// without x-kubernetes-* markers merge.
import { readFileSync } from 'node:fs';

export type TypeRef =
  | { kind: 'struct'; name: string; atomic: boolean }
  | { kind: 'map'; atomic: boolean }
  | { kind: 'list'; rel: 'atomic' | 'set' | 'map'; keys: string[]; elem: TypeRef }
  | { kind: 'scalar' }
  | { kind: 'deduced' };

interface TypeDef {
  atomic?: boolean;
  fields?: Record<string, string>;
  keyDefaults?: Record<string, unknown>;
}

interface Override {
  from: string;
  before: string;
  type: string;
  field: string;
  spec: string;
}

interface Markers {
  provenance: Record<string, string>;
  roots: Record<string, string>;
  types: Record<string, TypeDef>;
  versionOverrides: Override[];
}

const markers = JSON.parse(readFileSync(new URL('./schema-markers.json', import.meta.url), 'utf8')) as Markers;

export const SCHEMA_PROVENANCE = markers.provenance;

export const DEDUCED: TypeRef = { kind: 'deduced' };
const OBJECT_META: TypeRef = { kind: 'struct', name: 'meta.v1.ObjectMeta', atomic: false };

function minor(v: string): number {
  const m = /^v?(\d+)\.(\d+)/.exec(v);
  return m ? Number(m[1]) * 1000 + Number(m[2]) : 0;
}

/** The merge schema as served by one Kubernetes version (`v1.31.0`). */
export class MergeSchema {
  private readonly fieldOverrides = new Map<string, string>();

  constructor(readonly serverVersion: string) {
    const v = minor(serverVersion);
    for (const o of markers.versionOverrides) {
      if (v >= minor(o.from) && v < minor(o.before)) this.fieldOverrides.set(`${o.type}.${o.field}`, o.spec);
    }
  }

  /** The type of a whole object of `apiVersion`/`kind`; unknown kinds (custom resources) are deduced apart from metadata. */
  root(apiVersion: string, kind: string): TypeRef {
    const name = markers.roots[`${apiVersion}/${kind}`];
    return name ? this.named(name) : { kind: 'struct', name: '', atomic: false };
  }

  private named(name: string): TypeRef {
    return { kind: 'struct', name, atomic: Boolean(markers.types[name]?.atomic) };
  }

  private parse(spec: string): TypeRef {
    if (spec === 'map') return { kind: 'map', atomic: false };
    if (spec === 'map!atomic') return { kind: 'map', atomic: true };
    if (spec === 'list!atomic') return { kind: 'list', rel: 'atomic', keys: [], elem: DEDUCED };
    if (spec === 'set') return { kind: 'list', rel: 'set', keys: [], elem: { kind: 'scalar' } };
    const m = /^list<([^>]+)>\[([^\]]+)\]$/.exec(spec);
    if (m) return { kind: 'list', rel: 'map', keys: m[2]!.split(','), elem: this.named(m[1]!) };
    if (spec.endsWith('!granular')) return { kind: 'struct', name: spec.slice(0, -'!granular'.length), atomic: false };
    return this.named(spec);
  }

  /** The type of field `key` inside a value of type `t`. */
  field(t: TypeRef, key: string): TypeRef {
    if (t.kind === 'struct') {
      if (t.name === '') return key === 'metadata' ? OBJECT_META : DEDUCED;
      const override = this.fieldOverrides.get(`${t.name}.${key}`);
      const spec = override ?? markers.types[t.name]?.fields?.[key];
      return spec ? this.parse(spec) : DEDUCED;
    }
    if (t.kind === 'map') return { kind: 'scalar' };
    return DEDUCED;
  }

  /** Whether the keys of a value of type `t` are declared fields (a struct) rather than map keys or deduced keys, which are members of a field set themselves. */
  declared(t: TypeRef): boolean {
    return t.kind === 'struct' && t.name !== '';
  }

  /** Schema defaults of key fields (e.g. a container port's protocol is TCP when not given). */
  keyDefaults(t: TypeRef): Record<string, unknown> {
    return t.kind === 'struct' ? (markers.types[t.name]?.keyDefaults ?? {}) : {};
  }
}
