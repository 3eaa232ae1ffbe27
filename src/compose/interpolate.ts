// Interpolation of a parsed compose file: every string value (never a key) is
// substituted, then values at the paths where compose-go casts types are
// converted (so `read_only: ${RO}` with RO=true becomes a boolean before the
// schema sees it).
import { KompoxError, type Diagnostic } from '../domain/errors.js';
import { fieldPath, type PositionMap } from './positions.js';
import { Tagged, isTagged } from './tags.js';
import { substitute, TemplateError, type Lookup } from './template.js';

type Cast = 'int' | 'float' | 'bool' | 'bytes';

// From compose-go loader/interpolate.go; `*` matches any key or list index.
const CASTS: Array<[string[], Cast]> = [
  [['services', '*', 'configs', '*', 'mode'], 'int'],
  [['services', '*', 'secrets', '*', 'mode'], 'int'],
  [['services', '*', 'cpu_count'], 'int'],
  [['services', '*', 'cpu_percent'], 'float'],
  [['services', '*', 'cpu_period'], 'int'],
  [['services', '*', 'cpu_quota'], 'int'],
  [['services', '*', 'cpu_rt_period'], 'int'],
  [['services', '*', 'cpu_rt_runtime'], 'int'],
  [['services', '*', 'cpus'], 'float'],
  [['services', '*', 'cpu_shares'], 'int'],
  [['services', '*', 'init'], 'bool'],
  [['services', '*', 'deploy', 'replicas'], 'int'],
  [['services', '*', 'deploy', 'restart_policy', 'max_attempts'], 'int'],
  [['services', '*', 'healthcheck', 'retries'], 'int'],
  [['services', '*', 'healthcheck', 'disable'], 'bool'],
  [['services', '*', 'mem_limit'], 'bytes'],
  [['services', '*', 'mem_reservation'], 'bytes'],
  [['services', '*', 'memswap_limit'], 'bytes'],
  [['services', '*', 'mem_swappiness'], 'int'],
  [['services', '*', 'oom_kill_disable'], 'bool'],
  [['services', '*', 'oom_score_adj'], 'int'],
  [['services', '*', 'pids_limit'], 'int'],
  [['services', '*', 'ports', '*', 'target'], 'int'],
  [['services', '*', 'privileged'], 'bool'],
  [['services', '*', 'read_only'], 'bool'],
  [['services', '*', 'scale'], 'int'],
  [['services', '*', 'shm_size'], 'bytes'],
  [['services', '*', 'stdin_open'], 'bool'],
  [['services', '*', 'tty'], 'bool'],
  [['services', '*', 'ulimits', '*'], 'int'],
  [['services', '*', 'ulimits', '*', 'hard'], 'int'],
  [['services', '*', 'ulimits', '*', 'soft'], 'int'],
  [['services', '*', 'volumes', '*', 'read_only'], 'bool'],
  [['services', '*', 'volumes', '*', 'volume', 'nocopy'], 'bool'],
  [['services', '*', 'volumes', '*', 'tmpfs', 'size'], 'bytes'],
  [['networks', '*', 'external'], 'bool'],
  [['networks', '*', 'internal'], 'bool'],
  [['networks', '*', 'attachable'], 'bool'],
  [['volumes', '*', 'external'], 'bool'],
  [['secrets', '*', 'external'], 'bool'],
  [['configs', '*', 'external'], 'bool'],
];

function castFor(path: ReadonlyArray<string | number>): Cast | undefined {
  outer: for (const [pattern, cast] of CASTS) {
    if (pattern.length !== path.length) continue;
    for (let i = 0; i < pattern.length; i++) {
      if (pattern[i] !== '*' && pattern[i] !== path[i]) continue outer;
    }
    return cast;
  }
  return undefined;
}

/**
 * The typed value, or a CastError like compose-go's "failed to cast to
 * expected type". Byte sizes also accept unit strings ("512m"), kept as written.
 */
function cast(v: string, c: Cast): unknown {
  switch (c) {
    case 'int':
      if (/^[+-]?\d+$/.test(v)) return Number(v);
      throw new CastError(`"${v}" is not an integer`);
    case 'bytes':
      return /^[+-]?\d+$/.test(v) ? Number(v) : v;
    case 'float':
      if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v)) return Number(v);
      throw new CastError(`"${v}" is not a number`);
    case 'bool': {
      const l = v.toLowerCase();
      if (['y', 'yes', 'true', 'on'].includes(l)) return true;
      if (['n', 'no', 'false', 'off'].includes(l)) return false;
      throw new CastError(`"${v}" is not a boolean`);
    }
  }
}

class CastError extends Error {}

export interface InterpolateContext {
  lookup: Lookup;
  positions: PositionMap;
  file: string;
  warnings: Diagnostic[];
  /** variables already warned about (compose warns once per variable) */
  warned: Set<string>;
}

/** Interpolates `root` in place. */
export function interpolateTree(root: unknown, ctx: InterpolateContext): unknown {
  return visit(root, [], undefined, undefined, ctx);
}

function visit(v: unknown, path: (string | number)[], parent: object | undefined, key: string | number | undefined, ctx: InterpolateContext): unknown {
  if (isTagged(v)) return new Tagged(v.tag, visit(v.value, path, parent, key, ctx));
  if (typeof v === 'string') {
    const loc = parent !== undefined && key !== undefined ? ctx.positions.valueAt(parent, key) : undefined;
    let s: string;
    try {
      s = substitute(v, ctx.lookup, {
        onUnset: (name) => {
          if (ctx.warned.has(name)) return;
          ctx.warned.add(name);
          ctx.warnings.push({
            level: 'warning',
            message: `the "${name}" variable is not set, defaulting to a blank string`,
            location: loc ?? { file: ctx.file },
            hint: `Set ${name} in the environment or the .env file`,
          });
        },
      });
    } catch (e) {
      if (e instanceof TemplateError) {
        const field = fieldPath(path);
        throw new KompoxError('config', `${e.message} (in ${field})`, {
          location: loc ?? { file: ctx.file },
          field,
          hint:
            e.kind === 'required'
              ? `Set ${e.variable} in the environment or in the project's .env file`
              : 'Write $$ for a literal $ and ${NAME} for a variable',
        });
      }
      throw e;
    }
    const c = castFor(path);
    if (!c) return s;
    try {
      return cast(s, c);
    } catch (e) {
      if (!(e instanceof CastError)) throw e;
      const field = fieldPath(path);
      throw new KompoxError('config', `${field}: ${e.message}`, {
        location: loc ?? { file: ctx.file },
        field,
        hint: c === 'bool' ? 'Use true or false' : c === 'int' ? 'Use a whole number' : 'Use a number',
      });
    }
  }
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = visit(v[i], [...path, i], v, i, ctx);
    return v;
  }
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) o[k] = visit(o[k], [...path, k], o, k, ctx);
    return o;
  }
  return v;
}
