// The `!reset` and `!override` YAML tags of the Compose Specification
// (13-merge.md): a tagged value is kept wrapped until files are merged, where
// `reset` removes the inherited value and `override` replaces it without merging.

export type MergeTag = 'reset' | 'override';

export class Tagged {
  constructor(
    readonly tag: MergeTag,
    readonly value: unknown,
  ) {}
}

export function isTagged(v: unknown): v is Tagged {
  return v instanceof Tagged;
}

/**
 * Drops the tags once there is nothing left to merge with: `!reset` entries
 * disappear, `!override` values stay as written. Mutates and returns `v`.
 */
export function stripTags(v: unknown): unknown {
  if (isTagged(v)) return v.tag === 'reset' ? undefined : stripTags(v.value);
  if (Array.isArray(v)) {
    for (let i = v.length - 1; i >= 0; i--) {
      const s = stripTags(v[i]);
      if (s === undefined) v.splice(i, 1);
      else v[i] = s;
    }
    return v;
  }
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      const s = stripTags(o[k]);
      if (s === undefined) delete o[k];
      else o[k] = s;
    }
  }
  return v;
}
