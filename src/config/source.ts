// kompoxops.yml as YAML text with source positions: every later error can say
// file:line:column.
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import { fieldName, type Diagnostic, type Location } from '../domain/errors.js';

export type FieldPath = ReadonlyArray<string | number>;

export interface YamlSource {
  /** Path shown to the user (relative to the current directory when inside it). */
  displayPath: string;
  text: string;
  doc: Document;
  /** Plain JS value of the document (undefined for an empty file). */
  value: unknown;
  syntaxErrors: Diagnostic[];
  /** Position of the value at `path`, or of its key with `key: true`; the nearest existing ancestor otherwise. */
  locate(path: FieldPath, opts?: { key?: boolean }): Location;
  /** The YAML node at `path`, if it exists. */
  node(path: FieldPath): Node | undefined;
  lineCol(offset: number): { line: number; col: number };
}

export { fieldName };

/** YAML parser messages end in " at line L, column C:" plus a source excerpt; we print our own location. */
function shortYamlMessage(m: string): string {
  return m.replace(/ at line \d+, column \d+:[\s\S]*$/, '').trim();
}

export function parseYamlSource(text: string, displayPath: string): YamlSource {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: true });
  const syntaxErrors: Diagnostic[] = doc.errors.map((e) => ({
    level: 'error',
    message: `YAML syntax error: ${shortYamlMessage(e.message)}`,
    location: { file: displayPath, line: e.linePos?.[0]?.line, column: e.linePos?.[0]?.col },
    hint: 'Fix the YAML syntax (indentation, colons, quotes, brackets).',
  }));
  const value = syntaxErrors.length ? undefined : doc.toJS({ maxAliasCount: 100 });

  const lineCol = (offset: number) => lc.linePos(offset);

  // Walks the node tree; returns the deepest node reached plus, when the last
  // step was a map lookup, the key node.
  const walk = (path: FieldPath): { node?: Node; key?: Node; complete: boolean } => {
    let cur: Node | undefined = (doc.contents as Node | null) ?? undefined;
    let key: Node | undefined;
    for (const p of path) {
      if (isMap(cur)) {
        const pair = cur.items.find((it) => isScalar(it.key) && String(it.key.value) === String(p));
        if (!pair) return { node: cur, complete: false };
        key = pair.key as Node;
        cur = (pair.value as Node | null) ?? undefined;
        if (!cur) return { node: key, key, complete: false };
      } else if (isSeq(cur) && typeof p === 'number') {
        const item = cur.items[p] as Node | undefined;
        if (!item) return { node: cur, complete: false };
        key = undefined;
        cur = item;
      } else {
        return { node: cur, complete: false };
      }
    }
    return { node: cur, key, complete: true };
  };

  const locate = (path: FieldPath, opts: { key?: boolean } = {}): Location => {
    const w = walk(path);
    const target = opts.key && w.complete && w.key ? w.key : w.node;
    if (!target?.range) return { file: displayPath };
    const { line, col } = lineCol(target.range[0]);
    return { file: displayPath, line, column: col };
  };
  const node = (path: FieldPath) => {
    const w = walk(path);
    return w.complete ? w.node : undefined;
  };
  return { displayPath, text, doc, value, syntaxErrors, locate, node, lineCol };
}
