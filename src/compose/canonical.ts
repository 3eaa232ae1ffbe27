// Per-file canonicalisation: every short syntax becomes the long one and
// relative paths become absolute (against `baseDir`: the project directory, or
// the directory of an extended / included file), so that files can be merged
// by the Compose merge rules and the converter sees one shape per field.
// Runs after interpolation and schema validation, before merging.
import { posix } from 'node:path';
import { KompoxError, type Diagnostic, type Location } from '../domain/errors.js';
import { isAbsolutePath, type AppSource } from '../domain/source.js';
import { normaliseDuration } from './duration.js';
import type { PositionMap } from './positions.js';
import { projectPath } from './project-path.js';
import { canonicalLongPort, parseShortPort, PortSyntaxError } from './ports.js';
import { shlexSplit, ShlexError } from './shlex.js';
import { Tagged, isTagged } from './tags.js';
import { parseShortVolume, VolumeSyntaxError } from './volumes.js';

export interface CanonContext {
  /** Decides what a path may be (sandboxed: inside the project only) and where `~` is. */
  source: AppSource;
  baseDir: string;
  pos: PositionMap;
  file: string;
  warnings: Diagnostic[];
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v) && !isTagged(v);

/** Applies `fn` to the value inside a merge tag (keeping the tag), or to the value itself. */
function inTag(v: unknown, fn: (x: unknown) => unknown): unknown {
  if (isTagged(v)) return new Tagged(v.tag, v.tag === 'reset' ? v.value : fn(v.value));
  return fn(v);
}

function fail(ctx: CanonContext, loc: Location | undefined, field: string, message: string, hint?: string): never {
  throw new KompoxError('config', `${field}: ${message}`, { location: loc ?? { file: ctx.file }, field, hint });
}

export function canonicalFile(dict: Obj, ctx: CanonContext): Obj {
  const services = dict.services;
  if (isObj(services)) {
    for (const name of Object.keys(services)) {
      services[name] = inTag(services[name], (svc) => (isObj(svc) ? canonicalService(name, svc, ctx) : svc));
    }
  }
  for (const top of ['networks', 'volumes', 'secrets', 'configs']) {
    const section = dict[top];
    if (!isObj(section)) continue;
    for (const k of Object.keys(section)) {
      section[k] = inTag(section[k], (e) => {
        const o: Obj = isObj(e) ? e : {};
        if (!isObj(e)) ctx.pos.carryAll(e, o);
        if ((top === 'secrets' || top === 'configs') && typeof o.file === 'string') o.file = hostPath(o.file, ctx, `${top}.${k}.file`, ctx.pos.valueAt(o, 'file'));
        if (isObj(o.labels) || Array.isArray(o.labels)) o.labels = toMap(o.labels, ctx, '');
        // a local volume with `o: bind` is a bind mount in disguise: its device is a host path
        const opts = o.driver_opts;
        if (top === 'volumes' && isObj(opts) && typeof opts.device === 'string' && String(opts.o ?? '').split(',').includes('bind')) {
          opts.device = hostPath(opts.device, ctx, `volumes.${k}.driver_opts.device`, ctx.pos.valueAt(opts, 'device'));
        }
        if (typeof o.external === 'object' && isObj(o.external)) {
          // legacy `external: {name: x}`
          const ext = o.external;
          if (typeof ext.name === 'string' && o.name === undefined) o.name = ext.name;
          o.external = true;
        }
        return o;
      });
    }
  }
  return dict;
}

/**
 * Absolute host path: `~` expanded to the home directory (with a warning), relative
 * paths against baseDir. A sandboxed source refuses `~`, absolute paths and paths
 * out of the project; without a home directory `~` stays as written (the converter
 * rejects it).
 */
function hostPath(p: string, ctx: CanonContext, field: string, loc: Location | undefined, service?: string): string {
  if (ctx.source.sandboxed) return projectPath(ctx.source, p, ctx.baseDir, { field, location: loc ?? { file: ctx.file } }, { home: true });
  if (p === '~' || p.startsWith('~/')) {
    const home = ctx.source.homeDir;
    if (home === undefined) return p;
    const abs = posix.resolve(home, p === '~' ? '.' : p.slice(2));
    ctx.warnings.push({
      level: 'warning',
      message: `${field}: "${p}" refers to the home directory; it was expanded to "${abs}"`,
      location: loc,
      service,
      key: field.split('.').slice(2).join('.') || field,
    });
    return abs;
  }
  if (isAbsolutePath(p)) return p;
  return posix.resolve(ctx.baseDir, p);
}

/** list `KEY=VAL` / `KEY` or map → map; `missing` is the value for `KEY` without `=`. */
function toMap(v: unknown, ctx: CanonContext, missing: string | null): unknown {
  return inTag(v, (x) => {
    const out: Record<string, string | null> = {};
    if (Array.isArray(x)) {
      x.forEach((e, i) => {
        const s = String(e);
        const eq = s.indexOf('=');
        const k = eq < 0 ? s : s.slice(0, eq);
        out[k] = eq < 0 ? missing : s.slice(eq + 1);
        ctx.pos.carry(x, i, out, k);
      });
      return out;
    }
    if (isObj(x)) {
      for (const [k, e] of Object.entries(x)) {
        out[k] = e === null || e === undefined ? missing : typeof e === 'object' ? JSON.stringify(e) : String(e);
        ctx.pos.carry(x, k, out, k);
      }
      return out;
    }
    return x;
  });
}

/** `Array.map` that keeps each element's source position. */
function mapList(ctx: CanonContext, list: unknown[], fn: (e: unknown, i: number) => unknown): unknown[] {
  const out = list.map(fn);
  ctx.pos.carryAll(list, out);
  return out;
}

function toList(v: unknown): unknown {
  return inTag(v, (x) => (typeof x === 'string' ? [x] : x));
}

function canonicalService(name: string, svc: Obj, ctx: CanonContext): Obj {
  const field = (k: string) => `services.${name}.${k}`;
  const at = (k: string) => ctx.pos.at(svc, k);

  if (svc.ports !== undefined) {
    svc.ports = inTag(svc.ports, (ports) => {
      if (!Array.isArray(ports)) return ports;
      const out: unknown[] = [];
      ports.forEach((p, i) => {
        const loc = ctx.pos.valueAt(ports, i);
        let list: unknown[];
        if (isObj(p) && p.target === undefined) {
          fail(ctx, loc, `${field('ports')}[${i}]`, 'the port has no target (container port)', 'Add "target: <port>"');
        }
        try {
          list = isObj(p) ? [canonicalLongPort(p)] : parseShortPort(p as string | number);
        } catch (e) {
          if (e instanceof PortSyntaxError) fail(ctx, loc, `${field('ports')}[${i}]`, e.message, 'Write [HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL], e.g. "8080:80"');
          throw e;
        }
        for (const e of list) {
          if (isObj(p)) ctx.pos.carryAll(p, e as object);
          ctx.pos.carry(ports, i, out, out.length);
          out.push(e);
        }
      });
      return out;
    });
  }

  if (svc.expose !== undefined) svc.expose = inTag(svc.expose, (x) => (Array.isArray(x) ? mapList(ctx, x, (e) => String(e)) : x));

  if (svc.volumes !== undefined) {
    svc.volumes = inTag(svc.volumes, (vols) => {
      if (!Array.isArray(vols)) return vols;
      return mapList(ctx, vols, (v, i) => {
        const loc = ctx.pos.valueAt(vols, i);
        let out: Obj;
        if (typeof v === 'string') {
          try {
            out = parseShortVolume(v) as unknown as Obj;
          } catch (e) {
            if (e instanceof VolumeSyntaxError) fail(ctx, loc, `${field('volumes')}[${i}]`, e.message, 'Write [SOURCE:]TARGET[:ro], e.g. "./data:/data" or "dbdata:/var/lib/data"');
            throw e;
          }
        } else if (isObj(v)) {
          out = v;
          if (typeof out.target !== 'string' || out.target === '') {
            fail(ctx, loc, `${field('volumes')}[${i}]`, 'the volume has no target (path in the container)', 'Add "target: /path/in/container"');
          }
        } else return v;
        if (out.type === 'bind' && typeof out.source === 'string') {
          out.source = hostPath(out.source, ctx, `${field('volumes')}[${i}]`, loc, name);
        }
        return out;
      });
    });
  }

  if (svc.environment !== undefined) svc.environment = toMap(svc.environment, ctx, null);
  if (svc.labels !== undefined) svc.labels = toMap(svc.labels, ctx, '');
  if (svc.annotations !== undefined) svc.annotations = toMap(svc.annotations, ctx, '');
  if (svc.sysctls !== undefined) svc.sysctls = toMap(svc.sysctls, ctx, '');
  if (isObj(svc.deploy) && svc.deploy.labels !== undefined) svc.deploy.labels = toMap(svc.deploy.labels, ctx, '');

  if (svc.env_file !== undefined) {
    svc.env_file = inTag(svc.env_file, (x) => {
      const list = typeof x === 'string' ? [x] : Array.isArray(x) ? x : [];
      return mapList(ctx, list, (e) => {
        const o: Obj = typeof e === 'string' ? { path: e } : { ...(e as Obj) };
        o.path = hostPath(String(o.path), ctx, field('env_file'), at('env_file'), name);
        if (o.required === undefined) o.required = true;
        return o;
      });
    });
  }

  if (svc.label_file !== undefined) {
    svc.label_file = inTag(svc.label_file, (x) => {
      const list = typeof x === 'string' ? [x] : Array.isArray(x) ? x : [];
      return mapList(ctx, list, (e) => hostPath(String(e), ctx, field('label_file'), at('label_file'), name));
    });
  }

  if (svc.depends_on !== undefined) {
    svc.depends_on = inTag(svc.depends_on, (x) => {
      const out: Obj = {};
      if (Array.isArray(x)) {
        x.forEach((d, i) => {
          out[String(d)] = { condition: 'service_started', required: true };
          ctx.pos.carry(x, i, out, String(d));
        });
        return out;
      }
      if (isObj(x)) {
        for (const [k, d] of Object.entries(x)) {
          const dep: Obj = isObj(d) ? { ...d } : {};
          if (dep.condition === undefined) dep.condition = 'service_started';
          if (dep.required === undefined) dep.required = true;
          out[k] = dep;
          ctx.pos.carry(x, k, out, k);
        }
        return out;
      }
      return x;
    });
  }

  for (const k of ['secrets', 'configs'] as const) {
    if (svc[k] === undefined) continue;
    svc[k] = inTag(svc[k], (x) => (Array.isArray(x) ? mapList(ctx, x, (e) => (typeof e === 'string' ? { source: e } : e)) : x));
  }

  if (isObj(svc.healthcheck)) {
    const hc = svc.healthcheck;
    if (typeof hc.test === 'string') hc.test = ['CMD-SHELL', hc.test];
    for (const d of ['interval', 'timeout', 'start_period', 'start_interval']) {
      if (hc[d] !== undefined) hc[d] = normaliseDuration(hc[d]);
    }
  }
  if (svc.stop_grace_period !== undefined) svc.stop_grace_period = normaliseDuration(svc.stop_grace_period);

  for (const k of ['command', 'entrypoint'] as const) {
    if (typeof svc[k] !== 'string') continue;
    try {
      svc[k] = shlexSplit(svc[k] as string);
    } catch (e) {
      if (e instanceof ShlexError) fail(ctx, ctx.pos.valueAt(svc, k), field(k), e.message, 'Close the quote, or write the command as a list');
      throw e;
    }
  }

  for (const k of ['dns', 'dns_search', 'tmpfs']) if (svc[k] !== undefined) svc[k] = toList(svc[k]);

  if (svc.networks !== undefined) {
    svc.networks = inTag(svc.networks, (x) => {
      if (!Array.isArray(x)) return x;
      const out: Obj = {};
      x.forEach((n, i) => {
        out[String(n)] = null;
        ctx.pos.carry(x, i, out, String(n));
      });
      return out;
    });
  }

  if (svc.build !== undefined) {
    svc.build = inTag(svc.build, (b) => {
      const o: Obj = typeof b === 'string' ? { context: b } : isObj(b) ? b : {};
      if (o.context === undefined) o.context = '.';
      if (typeof o.context === 'string' && !isRemoteContext(o.context)) o.context = hostPath(o.context, ctx, field('build.context'), at('build'), name);
      if (o.dockerfile === undefined && o.dockerfile_inline === undefined) o.dockerfile = 'Dockerfile';
      if (o.args !== undefined) o.args = toMap(o.args, ctx, null);
      if (o.labels !== undefined) o.labels = toMap(o.labels, ctx, '');
      if (o.additional_contexts !== undefined) {
        const extra = toMap(o.additional_contexts, ctx, '');
        // local directories become absolute; images, URLs and `service:` references stay
        if (isObj(extra)) {
          for (const [k, v] of Object.entries(extra)) {
            if (typeof v === 'string' && v !== '' && !isRemoteContext(v) && !/^[a-z-]+:/.test(v)) extra[k] = hostPath(v, ctx, field(`build.additional_contexts.${k}`), at('build'), name);
          }
        }
        o.additional_contexts = extra;
      }
      if (Array.isArray(o.secrets)) o.secrets = mapList(ctx, o.secrets, (e) => (typeof e === 'string' ? { source: e } : e));
      return o;
    });
  }

  if (svc.extra_hosts !== undefined) {
    svc.extra_hosts = inTag(svc.extra_hosts, (x) => {
      const entries: string[] = [];
      if (Array.isArray(x)) {
        for (const e of x) {
          const s = String(e);
          const eq = s.indexOf('=');
          const colon = s.indexOf(':');
          const sep = eq >= 0 ? eq : colon;
          entries.push(sep < 0 ? s : `${s.slice(0, sep)}=${s.slice(sep + 1)}`);
        }
      } else if (isObj(x)) {
        for (const [h, ip] of Object.entries(x)) {
          for (const one of Array.isArray(ip) ? ip : [ip]) entries.push(`${h}=${String(one)}`);
        }
      } else return x;
      return entries;
    });
  }
  return svc;
}

function isRemoteContext(c: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(c) || c.startsWith('git@') || c.startsWith('github.com/');
}
