// The Compose Specification merge rules (13-merge.md, compose-go `override`),
// applied to canonical dicts: mappings merge recursively, sequences append
// (deduplicated by each field's unique key), `command`, `entrypoint` and
// `healthcheck.test` are replaced, `x-` extensions are replaced, `!reset`
// removes the inherited value and `!override` replaces it without merging.
import type { PositionMap } from './positions.js';
import { isTagged, stripTags } from './tags.js';

type Obj = Record<string, unknown>;
type Path = ReadonlyArray<string>;

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v) && !isTagged(v);

function matches(path: Path, pattern: string): boolean {
  const p = pattern.split('.');
  if (p.length !== path.length) return false;
  return p.every((s, i) => s === '*' || s === path[i]);
}

const REPLACED = ['services.*.command', 'services.*.entrypoint', 'services.*.healthcheck.test'];

type Indexer = (e: unknown) => string;

const portKey: Indexer = (e) => {
  if (!isObj(e)) return String(e);
  return `${e.host_ip ?? '0.0.0.0'}:${e.published ?? ''}:${e.target}/${e.protocol ?? 'tcp'}`;
};
const mountKey =
  (dir: string): Indexer =>
  (e) =>
    isObj(e) ? String(e.target ?? `${dir}/${e.source}`) : `${dir}/${e}`;

const UNIQUE: Array<[string, Indexer]> = [
  ['services.*.volumes', (e) => (isObj(e) ? String(e.target) : String(e))],
  ['services.*.ports', portKey],
  ['services.*.secrets', mountKey('/run/secrets')],
  ['services.*.configs', mountKey('')],
  ['services.*.env_file', (e) => (isObj(e) ? String(e.path) : String(e))],
];

function indexerFor(path: Path): Indexer | undefined {
  for (const [pattern, idx] of UNIQUE) if (matches(path, pattern)) return idx;
  return undefined;
}

/** JSON with sorted keys: strict identity of two entries, whatever their key order. */
function identity(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(identity).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${identity((v as Obj)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'undefined';
}

/**
 * compose-go's EnforceUnicity: within one list of a unique-keyed field, a
 * later entry with the same key replaces the earlier one. Mutates `svc`.
 */
export function enforceUnicity(name: string, svc: Obj, pos: PositionMap): void {
  for (const field of ['volumes', 'ports', 'secrets', 'configs', 'env_file']) {
    const list = svc[field];
    if (!Array.isArray(list)) continue;
    const deduped = mergeLists([], list, ['services', name, field], pos);
    if (deduped.length !== list.length) {
      svc[field] = deduped;
    }
  }
}

/** Merges `over` into `base` (neither is modified); positions follow the winning values. */
export function mergeValues(base: unknown, over: unknown, path: Path, pos: PositionMap): unknown {
  if (isTagged(over)) return over.tag === 'reset' ? undefined : stripTags(over.value);
  if (REPLACED.some((p) => matches(path, p))) return over;
  // logging options only merge when both files use the same driver (or one names none)
  if (matches(path, 'services.*.logging') && isObj(base) && isObj(over) && base.driver !== undefined && over.driver !== undefined && base.driver !== over.driver) {
    return over;
  }
  if (isObj(base) && isObj(over)) return mergeMaps(base, over, path, pos);
  if (Array.isArray(base) && Array.isArray(over)) return mergeLists(base, over, path, pos);
  return over;
}

export function mergeMaps(base: Obj, over: Obj, path: Path, pos: PositionMap): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(base)) {
    out[k] = v;
    pos.carry(base, k, out, k);
  }
  for (const [k, v] of Object.entries(over)) {
    const merged = k in out && !k.startsWith('x-') ? mergeValues(out[k], v, [...path, k], pos) : isTagged(v) ? (v.tag === 'reset' ? undefined : stripTags(v.value)) : v;
    if (merged === undefined) {
      delete out[k];
      continue;
    }
    out[k] = merged;
    pos.carry(over, k, out, k);
  }
  return out;
}

export function mergeLists(base: unknown[], over: unknown[], path: Path, pos: PositionMap): unknown[] {
  const out: unknown[] = [];
  const idx = indexerFor(path);
  const keys = new Map<string, number>();
  const add = (src: unknown[], i: number) => {
    const e = src[i];
    // unique-keyed fields: a later entry with the same key replaces the earlier;
    // other lists: strictly identical entries are dropped (compose-go merge dedup)
    const key = idx ? idx(e) : `=${identity(e)}`;
    if (keys.has(key)) {
      const j = keys.get(key)!;
      // a later definition of the same unique key replaces the earlier one
      out[j] = e;
      pos.carry(src, i, out, j);
      return;
    }
    keys.set(key, out.length);
    pos.carry(src, i, out, out.length);
    out.push(e);
  };
  base.forEach((_, i) => add(base, i));
  over.forEach((_, i) => add(over, i));
  return out;
}
