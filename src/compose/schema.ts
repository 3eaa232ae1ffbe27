// Validation of one compose file against the official Compose JSON schema
// (vendored in schema/compose/, see its README), turning Ajv's errors into
// diagnostics that name the key, the service and the source position.
// The validator is compiled lazily, once per process: the loader runs on
// every CLI command and most of them never reach this point twice.
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { DiagnosticsError, KompoxError, type Diagnostic, type Location } from '../domain/errors.js';
import { closest } from '../domain/suggest.js';
import { COMPOSE_SCHEMA, loadValidator } from '../schema/codegen.js';
import { fieldPath, type PositionMap } from './positions.js';
import { isTagged } from './tags.js';

let compiled: { validate: ValidateFunction; schema: SchemaNode } | undefined;

/** The validator, loaded once per process (pre-generated when current, see src/schema/codegen.ts). */
async function validator(): Promise<{ validate: ValidateFunction; schema: SchemaNode }> {
  if (compiled) return compiled;
  const { validate, schema } = await loadValidator<ValidateFunction>(COMPOSE_SCHEMA);
  compiled = { validate, schema: schema as SchemaNode };
  return compiled;
}

/** The validator the loader uses (exported for tests). */
export async function composeValidator(): Promise<ValidateFunction> {
  return (await validator()).validate;
}

/**
 * A copy of `v` without `!reset`/`!override` wrappers (reset entries removed),
 * with positions carried over, so the schema sees what the user means.
 */
function untagged(v: unknown, pos: PositionMap): unknown {
  if (isTagged(v)) return v.tag === 'reset' ? undefined : untagged(v.value, pos);
  if (Array.isArray(v)) {
    const out: unknown[] = [];
    v.forEach((e, i) => {
      const u = untagged(e, pos);
      if (u === undefined) return;
      pos.carry(v, i, out, out.length);
      out.push(u);
    });
    return out;
  }
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, e] of Object.entries(v)) {
      const u = untagged(e, pos);
      if (u === undefined) continue;
      out[k] = u;
      pos.carry(v, k, out, k);
    }
    return out;
  }
  return v;
}

export async function validateComposeFile(data: unknown, file: string, pos: PositionMap): Promise<void> {
  const { validate, schema } = await validator();
  const view = untagged(data, pos);
  if (validate(view)) return;
  const errors = validate.errors ?? [];
  const diags = explain(errors, view, pos, file, schema);
  if (diags.length === 0) {
    // only combinator errors (e.g. a value matching two oneOf branches): name the place
    const segs = segments(errors[0]?.instancePath ?? '');
    const { keys } = walk(view, segs);
    diags.push({ level: 'error', message: `${fieldPath(keys) || '(top level)'}: ${errors[0]?.message ?? 'is not valid'}`, location: pos.locate(view, keys) ?? { file } });
  }
  if (diags.length === 1) {
    const d = diags[0]!;
    // the field is the path the message starts with, so the formatted error does not repeat it
    const field = /^[^\s:]+/.exec(d.message)?.[0];
    throw new KompoxError('config', d.message, { location: d.location, field: field && field !== '(top' ? field : d.key, hint: d.hint });
  }
  throw new DiagnosticsError(diags, `${file} does not match the Compose Specification`);
}

function segments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

export { fieldPath };

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'object') return 'mapping';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

const TYPE_NAMES: Record<string, string> = { object: 'mapping', array: 'list' };

function walk(root: unknown, segs: string[]): { parent: unknown; key: string | number | undefined; value: unknown; keys: (string | number)[] } {
  let parent: unknown = undefined;
  let key: string | number | undefined;
  let cur: unknown = root;
  const keys: (string | number)[] = [];
  for (const s of segs) {
    parent = cur;
    key = Array.isArray(cur) ? Number(s) : s;
    keys.push(key);
    cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[s] : undefined;
  }
  return { parent, key, value: cur, keys };
}

function explain(errors: ErrorObject[], root: unknown, pos: PositionMap, file: string, schema: SchemaNode): Diagnostic[] {
  const relevant = errors.filter((e) => !['oneOf', 'anyOf', 'if', 'then', 'else', 'not', 'allOf'].includes(e.keyword));
  // A `type` error of one oneOf branch is noise when another branch (with the
  // matching type) reported something more specific at the same place or deeper.
  const specific = relevant.filter((e) => e.keyword !== 'type');
  const kept = relevant.filter(
    (e) =>
      e.keyword !== 'type' ||
      !specific.some((o) => o.instancePath === e.instancePath || o.instancePath.startsWith(e.instancePath + '/')),
  );
  const byPathType = new Map<string, Set<string>>();
  const out: Diagnostic[] = [];
  const seen = new Set<string>();
  const locOf = (keys: (string | number)[]): Location => pos.locate(root, keys) ?? { file };
  for (const e of kept) {
    const segs = segments(e.instancePath);
    const { value, keys } = walk(root, segs);
    const path = fieldPath(keys);
    const service = keys[0] === 'services' && typeof keys[1] === 'string' ? keys[1] : undefined;
    let d: Diagnostic | undefined;
    switch (e.keyword) {
      case 'additionalProperties': {
        const extra = String((e.params as { additionalProperty: string }).additionalProperty);
        const at = schemaAt(schema, root, segs);
        const known = Object.keys(at?.properties ?? {});
        const namePatterns = Object.keys(at?.patternProperties ?? {}).filter((p) => p !== '^x-');
        const loc = locOf([...keys, extra]);
        if (known.length === 0 && namePatterns.length > 0) {
          d = {
            level: 'error',
            message: `${path || '(top level)'}: invalid name "${extra}"`,
            hint: 'Names may contain only letters, digits, ".", "_" and "-"',
            location: loc,
            service,
            key: [...keys, extra].join('.'),
          };
        } else {
          const best = closest(extra, known);
          d = {
            level: 'error',
            message: `${path || '(top level)'}: unknown key "${extra}"${best ? ` — did you mean "${best}"?` : ''}`,
            hint: best ? undefined : `Known keys: ${known.sort().join(', ')}; custom keys must start with "x-"`,
            location: loc,
            service,
            key: [...keys, extra].join('.'),
          };
        }
        break;
      }
      case 'type': {
        const t = String((e.params as { type: string | string[] }).type);
        const set = byPathType.get(e.instancePath) ?? new Set<string>();
        for (const x of t.split(',')) set.add(TYPE_NAMES[x] ?? x);
        byPathType.set(e.instancePath, set);
        continue;
      }
      case 'required': {
        const missing = String((e.params as { missingProperty: string }).missingProperty);
        d = { level: 'error', message: `${path}: missing required key "${missing}"`, location: locOf(keys), service, key: path };
        break;
      }
      case 'enum': {
        const allowed = ((e.params as { allowedValues: unknown[] }).allowedValues ?? []).map((x) => JSON.stringify(x));
        d = {
          level: 'error',
          message: `${path}: ${JSON.stringify(value)} is not allowed; use one of ${allowed.join(', ')}`,
          location: locOf(keys),
          service,
          key: path,
        };
        break;
      }
      case 'uniqueItems': {
        // Ajv scans from the end: i is the earlier index, j the later duplicate
        const { i, j } = e.params as { i: number; j: number };
        const [first, dup] = i < j ? [i, j] : [j, i];
        d = { level: 'error', message: `${path}: items ${first} and ${dup} are duplicates`, hint: 'Remove the repeated entry', location: locOf([...keys, dup]), service, key: path };
        break;
      }
      default:
        d = { level: 'error', message: `${path || '(top level)'}: ${e.message ?? 'is not valid'}`, location: locOf(keys), service, key: path };
    }
    const id = `${d.message}@${d.location?.line}`;
    if (!seen.has(id)) {
      seen.add(id);
      out.push(d);
    }
  }
  for (const [ptr, types] of byPathType) {
    const { value, keys } = walk(root, segments(ptr));
    const path = fieldPath(keys);
    const service = keys[0] === 'services' && typeof keys[1] === 'string' ? keys[1] : undefined;
    const list = [...types].sort();
    const expected = list.length === 1 ? list[0] : `${list.slice(0, -1).join(', ')} or ${list[list.length - 1]}`;
    out.push({
      level: 'error',
      message: `${path || '(top level)'} must be ${expected}, not ${typeOf(value)}`,
      location: locOf(keys),
      service,
      key: path,
    });
  }
  out.sort((a, b) => (a.location?.line ?? 0) - (b.location?.line ?? 0) || (a.location?.column ?? 0) - (b.location?.column ?? 0));
  return out;
}

// ------------------------------------------------------------ schema lookup

interface SchemaNode {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
  patternProperties?: Record<string, SchemaNode>;
  additionalProperties?: SchemaNode | boolean;
  items?: SchemaNode;
  oneOf?: SchemaNode[];
  anyOf?: SchemaNode[];
  allOf?: SchemaNode[];
  [k: string]: unknown;
}

function deref(s: SchemaNode | undefined, root: SchemaNode): SchemaNode | undefined {
  let cur = s;
  for (let i = 0; cur?.$ref && i < 20; i++) {
    const ref = cur.$ref;
    if (!ref.startsWith('#/')) return undefined;
    let target: unknown = root;
    for (const part of ref.slice(2).split('/')) target = (target as Record<string, unknown> | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    cur = target as SchemaNode | undefined;
  }
  return cur;
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** The branch of a oneOf/anyOf that applies to a value of this JSON type. */
function branch(s: SchemaNode | undefined, value: unknown, root: SchemaNode): SchemaNode | undefined {
  const node = deref(s, root);
  if (!node) return undefined;
  const alts = node.oneOf ?? node.anyOf;
  if (!alts) return node;
  const t = jsonType(value);
  for (const a of alts) {
    const b = branch(a, value, root);
    if (!b) continue;
    const types = b.type === undefined ? (b.properties ? ['object'] : []) : Array.isArray(b.type) ? b.type : [b.type];
    if (types.includes(t) || (t === 'integer' && types.includes('number'))) return b;
  }
  return node;
}

/** The (sub)schema that describes the value at `segs` of `data`, following the data through oneOf branches. */
function schemaAt(root: SchemaNode, data: unknown, segs: string[]): SchemaNode | undefined {
  let s: SchemaNode | undefined = root;
  let cur: unknown = data;
  for (const seg of segs) {
    s = branch(s, cur, root);
    if (!s) return undefined;
    if (Array.isArray(cur)) s = s.items;
    else {
      const pattern = Object.entries(s.patternProperties ?? {}).find(([p]) => new RegExp(p, 'u').test(seg));
      s = s.properties?.[seg] ?? pattern?.[1] ?? (typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined);
    }
    cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[seg] : undefined;
  }
  return branch(s, cur, root);
}
