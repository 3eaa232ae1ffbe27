// Source positions for the loaded model. Positions are attached to the JS
// containers (objects/arrays) the YAML was turned into, keyed by child key, so
// they survive merging and normalisation as long as the transforming code
// carries them over (see `carry`). A path lookup then walks the final model.
import type { Location } from '../domain/errors.js';

export interface EntryPosition {
  /** where the key was written (maps only) */
  key?: Location;
  /** where the value was written (for an empty value: the key) */
  value: Location;
}

export class PositionMap {
  private readonly byContainer = new WeakMap<object, Map<string | number, EntryPosition>>();
  root?: Location;

  set(container: object, key: string | number, pos: EntryPosition | undefined): void {
    if (!pos) return;
    let m = this.byContainer.get(container);
    if (!m) {
      m = new Map();
      this.byContainer.set(container, m);
    }
    m.set(key, pos);
  }

  get(container: unknown, key: string | number): EntryPosition | undefined {
    if (container === null || typeof container !== 'object') return undefined;
    return this.byContainer.get(container)?.get(key);
  }

  /** Copies the position of `from[fromKey]` to `to[toKey]` (no-op when unknown). */
  carry(from: unknown, fromKey: string | number, to: object, toKey: string | number): void {
    const p = this.get(from, fromKey);
    if (p) this.set(to, toKey, p);
  }

  /** Copies every child position of `from` onto `to` (same keys). */
  carryAll(from: unknown, to: object): void {
    if (from === null || typeof from !== 'object') return;
    const m = this.byContainer.get(from);
    if (!m) return;
    for (const [k, p] of m) this.set(to, k, p);
  }

  /** Deep copy of plain containers, positions included (so callers may mutate the copy). */
  clone<T>(v: T): T {
    if (Array.isArray(v)) {
      const out = v.map((e) => this.clone(e));
      this.carryAll(v, out);
      return out as T;
    }
    if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
      const out: Record<string, unknown> = {};
      for (const [k, e] of Object.entries(v)) out[k] = this.clone(e);
      this.carryAll(v, out);
      return out as T;
    }
    return v;
  }

  /** Where the value at `key` of `container` was written; the key's line for map entries. */
  at(container: unknown, key: string | number): Location | undefined {
    const p = this.get(container, key);
    return p ? (p.key ?? p.value) : undefined;
  }

  /** Where the value itself was written (for interpolation errors). */
  valueAt(container: unknown, key: string | number): Location | undefined {
    return this.get(container, key)?.value;
  }

  /**
   * Best-effort location of a model path: the deepest element of the path
   * with a known position (so a value created by normalisation points at the
   * node it was derived from).
   */
  locate(root: unknown, path: ReadonlyArray<string | number>): Location | undefined {
    let cur: unknown = root;
    let best = this.root;
    for (const k of path) {
      if (cur === null || typeof cur !== 'object') break;
      const loc = this.at(cur, k);
      if (loc) best = loc;
      cur = (cur as Record<string | number, unknown>)[k];
    }
    return best;
  }
}

/** A model path as users read it: `services.web.ports[0].target`. */
export function fieldPath(segs: ReadonlyArray<string | number>): string {
  let s = '';
  for (const p of segs) {
    if (typeof p === 'number' || /^\d+$/.test(String(p))) s += `[${p}]`;
    else s += s ? `.${p}` : String(p);
  }
  return s;
}
