// `docker compose config`-like YAML: top-level keys in compose's order,
// services sorted by name, every mapping's keys sorted, lists in their order.
import { Document, isScalar, visit } from 'yaml';
import type { ComposeProject } from './model.js';

const TOP = ['name', 'services', 'networks', 'volumes', 'secrets', 'configs', 'models'];

// Strings a YAML 1.1 reader would take for booleans, nulls or base-60 numbers
// (docker-compose v1, PyYAML, yaml.v2): quoted so every reader sees a string,
// as docker compose (yaml.v3) does.
const AMBIGUOUS = /^(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF|~|null|Null|NULL|[-+]?\d+(:[0-5]?\d)+(\.\d*)?)$/;

function sorted(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sorted);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const e = (v as Record<string, unknown>)[k];
      if (e !== undefined) out[k] = sorted(e);
    }
    return out;
  }
  return v;
}

export function projectToYaml(p: ComposeProject): string {
  const src = p as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of TOP) if (src[k] !== undefined) out[k] = k === 'name' ? src[k] : sorted(src[k]);
  for (const k of Object.keys(src).sort()) if (!TOP.includes(k) && src[k] !== undefined) out[k] = sorted(src[k]);
  const doc = new Document(out, { aliasDuplicateObjects: false });
  visit(doc, {
    Scalar(_key, node) {
      if (isScalar(node) && typeof node.value === 'string' && AMBIGUOUS.test(node.value)) node.type = 'QUOTE_DOUBLE';
    },
  });
  return doc.toString({ lineWidth: 0 });
}
