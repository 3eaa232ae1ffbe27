// Label and field selectors as the real API server parses them
// (equality `=`/`==`/`!=`, set-based `in`/`notin`, existence `k`/`!k`).

export type Requirement =
  | { key: string; op: 'eq' | 'ne'; value: string }
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | 'notexists' };

export class SelectorError extends Error {}

/** Splits on commas that are not inside parentheses. */
function splitTerms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur.trim() !== '') out.push(cur);
  return out.map((t) => t.trim()).filter((t) => t !== '');
}

export function parseLabelSelector(s: string | null | undefined): Requirement[] {
  if (!s) return [];
  return splitTerms(s).map((term) => {
    let m = /^(\S+?)\s+(in|notin)\s*\(([^)]*)\)$/.exec(term);
    if (m) {
      return { key: m[1]!, op: m[2] as 'in' | 'notin', values: m[3]!.split(',').map((v) => v.trim()).filter((v) => v !== '') };
    }
    m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term);
    if (m) return { key: m[1]!, op: m[2] === '!=' ? 'ne' : 'eq', value: m[3]! };
    m = /^!\s*([^=!\s]+)$/.exec(term);
    if (m) return { key: m[1]!, op: 'notexists' };
    m = /^([^=!\s()]+)$/.exec(term);
    if (m) return { key: m[1]!, op: 'exists' };
    throw new SelectorError(`unable to parse requirement: "${term}"`);
  });
}

export function matches(reqs: Requirement[], get: (key: string) => string | undefined): boolean {
  return reqs.every((r) => {
    const v = get(r.key);
    switch (r.op) {
      case 'eq':
        return v === r.value;
      case 'ne':
        return v !== r.value;
      case 'in':
        return v !== undefined && r.values.includes(v);
      case 'notin':
        return v === undefined || !r.values.includes(v);
      case 'exists':
        return v !== undefined;
      case 'notexists':
        return v === undefined;
    }
  });
}

/** Reads a dotted field path (`metadata.name`, `involvedObject.name`) as a string. */
export function fieldValue(obj: unknown, path: string): string | undefined {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur === undefined || cur === null ? undefined : String(cur);
}
