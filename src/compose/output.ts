// `docker compose config`-like YAML: top-level keys in compose's order,
// services sorted by name, every mapping's keys sorted, lists in their order.
// Strings that a YAML 1.1 reader (docker-compose v1, PyYAML, yaml.v2) would
// take for booleans, nulls or numbers are quoted, as docker compose (yaml.v3)
// does: the shared printer (domain/yaml-text.ts) takes care of that.
import { toYamlText } from '../domain/yaml-text.js';
import type { ComposeProject } from './model.js';

const TOP = ['name', 'services', 'networks', 'volumes', 'secrets', 'configs', 'models'];

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
  return toYamlText(out);
}
