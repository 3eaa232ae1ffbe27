// YAML 1.2 → plain JS values, recording where each value was written.
// We walk the AST ourselves (instead of `toJS`) so that merge keys (`<<`) and
// aliases keep the position of the node where the value was written, and so
// that the Compose `!reset` / `!override` tags survive until merging.
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node, type ScalarTag, type Tags } from 'yaml';
import { KompoxError, type Location } from '../domain/errors.js';
import type { PositionMap } from './positions.js';
import { Tagged } from './tags.js';

const MAX_DEPTH = 200;

// compose-go's YAML decoder (yaml.v3) reads `0400` as octal (file modes are
// written that way); YAML 1.2's core schema would read 400.
const legacyOctal: ScalarTag = {
  identify: (v) => typeof v === 'number',
  default: true,
  tag: 'tag:yaml.org,2002:int',
  format: 'OCT',
  test: /^[-+]?0[0-7]+$/,
  resolve: (s: string) => parseInt(s, 8),
};

/**
 * The documents of a YAML stream as plain values (empty documents skipped;
 * compose-go merges the documents of one file in order, like separate files).
 */
export function parseYamlDocuments(text: string, file: string, positions: PositionMap): unknown[] {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, {
    merge: true,
    customTags: (tags: Tags) => [legacyOctal, ...tags],
    lineCounter: lc,
    prettyErrors: true,
    uniqueKeys: true,
    strict: true,
  });
  const where = (offset: number | undefined): Location =>
    offset === undefined ? { file } : { file, line: lc.linePos(offset).line, column: lc.linePos(offset).col };
  // the first file read (the main compose file) stands for the whole project
  positions.root ??= { file, line: 1, column: 1 };
  if (!Array.isArray(docs)) return []; // an empty stream: no documents at all
  const out: unknown[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      let msg = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      if (e.code === 'DUPLICATE_KEY') {
        // name the key: "Map keys must be unique" alone does not say which
        const key = /^[^:\n]*/.exec(text.slice(e.pos[0]))?.[0]?.trim();
        if (key) msg = `duplicate key "${key.replace(/^["']|["']$/g, '')}" in this mapping`;
      }
      throw new KompoxError('config', `YAML syntax error: ${msg}`, {
        location: where(e.pos[0]),
        hint: 'Fix the YAML syntax (indentation, quoting, colons) at that position',
      });
    }
    const v = new Builder(doc, where, positions, file).value(doc.contents as Node | null, 0);
    if (v !== null) out.push(v);
  }
  return out;
}

class Builder {
  constructor(
    private readonly doc: Document,
    private readonly where: (offset: number | undefined) => Location,
    private readonly pos: PositionMap,
    private readonly file: string,
  ) {}

  loc(node: Node | null | undefined): Location | undefined {
    return node?.range ? this.where(node.range[0]) : undefined;
  }

  value(node: Node | null | undefined, depth: number): unknown {
    if (depth > MAX_DEPTH) {
      throw new KompoxError('config', 'YAML nesting is too deep (recursive alias?)', { location: this.loc(node) });
    }
    if (node === null || node === undefined) return null;
    if (isAlias(node)) {
      const target = node.resolve(this.doc);
      if (!target) throw new KompoxError('config', `unknown YAML alias *${node.source}`, { location: this.loc(node) });
      return this.value(target as Node, depth + 1);
    }
    let v: unknown;
    if (isScalar(node)) {
      v = node.value;
      if (typeof v === 'symbol') v = '<<';
      if (typeof v === 'bigint') v = Number(v);
    } else if (isMap(node)) {
      v = this.map(node, depth);
    } else if (isSeq(node)) {
      const arr: unknown[] = [];
      node.items.forEach((item, i) => {
        const n = item as Node | null;
        arr.push(this.value(n, depth + 1));
        const l = this.loc(n);
        if (l) this.pos.set(arr, i, { value: l });
      });
      v = arr;
    } else {
      throw new KompoxError('config', 'unsupported YAML node', { location: this.loc(node) });
    }
    const tag = (node as { tag?: string }).tag;
    if (tag === '!reset') return new Tagged('reset', v);
    if (tag === '!override') return new Tagged('override', v);
    return v;
  }

  private map(node: import('yaml').YAMLMap, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const merges: Node[] = [];
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const keyNode = pair.key as Node | null;
      if (isScalar(keyNode) && (typeof keyNode.value === 'symbol' || (keyNode.value === '<<' && keyNode.type === 'PLAIN'))) {
        merges.push(pair.value as Node);
        continue;
      }
      const rawKey = isScalar(keyNode) ? keyNode.value : isAlias(keyNode) ? this.value(keyNode, depth + 1) : undefined;
      if (rawKey === null || rawKey === undefined || typeof rawKey === 'object') {
        throw new KompoxError('config', 'mapping keys must be plain strings', { location: this.loc(keyNode) });
      }
      const key = String(rawKey);
      const valueNode = pair.value as Node | null;
      out[key] = this.value(valueNode, depth + 1);
      const keyLoc = this.loc(keyNode);
      this.pos.set(out, key, { key: keyLoc, value: this.loc(valueNode) ?? keyLoc ?? { file: this.file } });
    }
    // YAML merge keys: explicit keys win, then earlier sources win over later ones.
    for (const m of merges) {
      const sources = isSeq(m) ? (m.items as Node[]) : [m];
      for (const s of sources) {
        const src = this.value(s, depth + 1);
        if (src === null || typeof src !== 'object' || Array.isArray(src) || src instanceof Tagged) {
          throw new KompoxError('config', 'a merge key (<<) needs a mapping or a list of mappings', { location: this.loc(s) });
        }
        for (const [k, v] of Object.entries(src)) {
          if (k in out) continue;
          out[k] = v;
          this.pos.carry(src, k, out, k);
        }
      }
    }
    return out;
  }
}
