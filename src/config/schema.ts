// Validation against schema/kompoxops.schema.json (the schema editors use), so
// the published schema and the loader cannot silently disagree. Ajv is loaded
// lazily: it is only needed when a kompoxops.yml is actually read.
import { readFileSync } from 'node:fs';
import type { Diagnostic } from '../domain/errors.js';
import { CONFIG_SCHEMA, loadValidator } from '../schema/codegen.js';
import { fieldName, type FieldPath, type YamlSource } from './source.js';

type Validate = ((data: unknown) => boolean) & {
  errors?: Array<{ instancePath: string; keyword: string; message?: string; params: Record<string, unknown> }> | null;
};
let compiled: Validate | undefined;

export function readSchema(): Record<string, unknown> {
  return JSON.parse(readFileSync(CONFIG_SCHEMA.schemaUrl, 'utf8')) as Record<string, unknown>;
}

/**
 * The validator, loaded once per process (pre-generated when current, see
 * src/schema/codegen.ts). `compile` forces a fresh Ajv compilation, uncached.
 */
export async function schemaValidator(opts: { compile?: boolean } = {}): Promise<Validate> {
  if (opts.compile) return (await loadValidator<Validate>(CONFIG_SCHEMA, { compile: true })).validate;
  compiled ??= (await loadValidator<Validate>(CONFIG_SCHEMA)).validate;
  return compiled;
}

function pointerToPath(p: string): FieldPath {
  if (!p) return [];
  return p
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** Schema violations as diagnostics (one per field; oneOf branches collapse into one). */
export async function schemaDiagnostics(src: YamlSource, value: unknown): Promise<Diagnostic[]> {
  const validate = await schemaValidator();
  if (validate(value)) return [];
  // Ajv reports each failed oneOf branch separately; group by field and list the alternatives.
  const byField = new Map<string, { path: FieldPath; key: boolean; messages: string[] }>();
  for (const e of validate.errors ?? []) {
    let path = pointerToPath(e.instancePath);
    let key = false;
    if (e.keyword === 'additionalProperties' && typeof e.params.additionalProperty === 'string') {
      path = [...path, e.params.additionalProperty];
      key = true;
    } else if (e.keyword === 'propertyNames' && typeof e.params.propertyName === 'string') {
      path = [...path, e.params.propertyName];
      key = true;
    }
    const f = fieldName(path);
    const entry = byField.get(f) ?? { path, key, messages: [] };
    byField.set(f, entry);
    const m = key ? 'key not allowed here' : e.message ?? e.keyword;
    if (e.keyword !== 'oneOf' && e.keyword !== 'anyOf' && !entry.messages.includes(m)) entry.messages.push(m);
    if ((e.keyword === 'oneOf' || e.keyword === 'anyOf') && entry.messages.length === 0) entry.messages.push(m);
  }
  const out: Diagnostic[] = [];
  for (const [f, { path, key, messages }] of byField) {
    const msgs = messages.filter((m, i) => i === 0 || !/exactly one schema|any schema/.test(m));
    out.push({
      level: 'error',
      message: `${f || '(top level)'}: ${msgs.join(', or ')} (schema)`,
      location: src.locate(path, { key }),
      hint: 'See docs/kompoxops-yml.md for the format.',
    });
  }
  return out;
}
