// Project-wide steps after all files are merged: project name, profiles,
// env_file → environment, `KEY`-only variables resolved from the environment,
// and the cross-reference checks compose makes (depends_on, named volumes,
// secrets and configs must exist).
import { posix } from 'node:path';
import { KompoxError, type Diagnostic, type Location } from '../domain/errors.js';
import { SANDBOX_CODES, sandboxError, type AppSource } from '../domain/source.js';
import { isSourceFile, readEnvFile, readSourceText, type Env } from './environment.js';
import type { ComposeProject, ServiceConfig } from './model.js';
import { enforceUnicity } from './merge.js';
import type { PositionMap } from './positions.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

export interface FinalizeOptions {
  /** env_file and label_file are read through it. */
  source: AppSource;
  projectDir: string;
  env: Env;
  optsName?: string;
  profiles: string[];
  pos: PositionMap;
  warnings: Diagnostic[];
  display: (file: string) => string;
}

/** compose-go's NormalizeProjectName: lowercase, keep [a-z0-9_-], no leading `_`/`-`. */
export function normalizeProjectName(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '')
    .replace(/^[_-]+/, '');
}

function projectName(dict: Obj, o: FinalizeOptions): string {
  const explicit: Array<[string | undefined, string]> = [
    [o.optsName, 'the project name option'],
    [typeof dict.name === 'string' && dict.name !== '' ? dict.name : undefined, 'name'],
    [o.env.COMPOSE_PROJECT_NAME || undefined, 'COMPOSE_PROJECT_NAME'],
  ];
  for (const [name, source] of explicit) {
    if (name === undefined) continue;
    if (normalizeProjectName(name) !== name || name === '') {
      throw new KompoxError('config', `invalid project name "${name}" (from ${source})`, {
        location: source === 'name' ? o.pos.at(dict, 'name') : undefined,
        field: source === 'name' ? 'name' : undefined,
        hint: 'Use only lowercase letters, digits, "-" and "_", starting with a letter or digit',
      });
    }
    return name;
  }
  const fromDir = normalizeProjectName(posix.basename(o.projectDir));
  if (fromDir === '') {
    throw new KompoxError('config', `cannot derive a project name from the directory ${o.projectDir}`, {
      hint: 'Set "name:" in the compose file',
    });
  }
  return fromDir;
}

export async function finalizeProject(dict: Obj, o: FinalizeOptions): Promise<{ project: ComposeProject; envFromFile: Record<string, string[]> }> {
  const name = projectName(dict, o);
  if (dict.version !== undefined) {
    o.warnings.push({
      level: 'warning',
      message: 'the attribute "version" is obsolete and is ignored',
      location: o.pos.at(dict, 'version'),
      key: 'version',
      hint: 'Remove it',
    });
  }
  const services: Obj = isObj(dict.services) ? dict.services : {};
  const out: Obj = { name, services: {} };
  o.pos.carry(dict, 'services', out, 'services');
  o.pos.carry(dict, 'name', out, 'name');
  for (const [k, v] of Object.entries(dict)) {
    if (k.startsWith('x-')) {
      out[k] = v;
      o.pos.carry(dict, k, out, k);
    }
  }
  for (const section of ['networks', 'volumes', 'secrets', 'configs', 'models'] as const) {
    if (!isObj(dict[section])) continue;
    const src = dict[section] as Obj;
    const dst: Obj = {};
    for (const [k, v] of Object.entries(src)) {
      dst[k] = v === null || v === undefined ? {} : v;
      o.pos.carry(src, k, dst, k);
    }
    out[section] = dst;
    o.pos.carry(dict, section, out, section);
  }
  if (o.source.sandboxed) checkSandboxedVariables(out, o);

  const enabled = enabledServices(services, o.profiles);
  const envFromFile: Record<string, string[]> = {};
  const outServices = out.services as Obj;
  for (const svcName of Object.keys(services).sort()) {
    if (!enabled.has(svcName)) continue;
    const svc = services[svcName] as Obj;
    const fromFile = await applyEnvFiles(svcName, svc, o);
    if (fromFile.length > 0) envFromFile[svcName] = fromFile;
    resolveEnvironment(svc, o.env);
    await applyLabelFiles(svcName, svc, o);
    if (isObj(svc.build) && isObj(svc.build.args)) resolveVars(svc.build.args as Record<string, string | null>, o.env);
    if (svc.pull_policy === 'if_not_present') svc.pull_policy = 'missing';
    implicitDependencies(svc, o.pos);
    enforceUnicity(svcName, svc, o.pos);
    outServices[svcName] = svc;
    o.pos.carry(services, svcName, outServices, svcName);
  }
  for (const svcName of Object.keys(outServices)) checkReferences(svcName, outServices[svcName] as Obj, services, enabled, out, o);
  checkDependencyCycles(outServices, o.pos);
  return { project: out as unknown as ComposeProject, envFromFile };
}

function enabledServices(services: Obj, profiles: string[]): Set<string> {
  const all = profiles.includes('*');
  const enabled = new Set<string>();
  for (const [n, s] of Object.entries(services)) {
    const p = isObj(s) && Array.isArray(s.profiles) ? (s.profiles as string[]) : [];
    if (p.length === 0 || all || p.some((x) => profiles.includes(x))) enabled.add(n);
  }
  return enabled;
}

/** env_file contents under `environment` (environment wins); returns the keys that came from files. */
async function applyEnvFiles(name: string, svc: Obj, o: FinalizeOptions): Promise<string[]> {
  if (!Array.isArray(svc.env_file)) return [];
  const files = svc.env_file as Array<{ path: string; required?: boolean; format?: string }>;
  const loc = o.pos.at(svc, 'env_file');
  const field = { field: `services.${name}.env_file`, location: loc };
  const fromFiles: Env = {};
  const where: Record<string, Location> = {};
  for (const f of files) {
    const exists = await isSourceFile(o.source, f.path, field);
    if (!exists) {
      if (f.required === false) continue;
      throw new KompoxError('config', `services.${name}.env_file: ${o.display(f.path)} not found`, {
        location: loc,
        field: `services.${name}.env_file`,
        hint: 'Create the file, fix the path, or mark it `required: false`',
      });
    }
    const lines: Record<string, number> = {};
    const vars = f.format === 'raw' ? await rawEnv(o.source, f.path, lines, field) : await readEnvFile(o.source, f.path, o.display(f.path), lookupIn(o.env), lines, field);
    Object.assign(fromFiles, vars);
    for (const k of Object.keys(vars)) where[k] = { file: o.display(f.path), line: lines[k] };
  }
  const env: Record<string, string | null> = isObj(svc.environment) ? (svc.environment as Record<string, string | null>) : {};
  const merged: Record<string, string | null> = {};
  const keys: string[] = [];
  for (const [k, v] of Object.entries(fromFiles)) {
    if (k in env) continue;
    merged[k] = v;
    keys.push(k);
    // a value from an env_file points at its line in that file
    o.pos.set(merged, k, { value: where[k]! });
  }
  for (const [k, v] of Object.entries(env)) {
    merged[k] = v;
    o.pos.carry(env, k, merged, k);
  }
  svc.environment = merged;
  o.pos.carry(svc, 'env_file', svc, 'environment');
  delete svc.env_file;
  return keys.sort();
}

/** label_file contents under `labels` (labels win), as compose-go does. */
async function applyLabelFiles(name: string, svc: Obj, o: FinalizeOptions): Promise<void> {
  if (!Array.isArray(svc.label_file)) return;
  const loc = o.pos.at(svc, 'label_file');
  const field = { field: `services.${name}.label_file`, location: loc };
  const fromFiles: Env = {};
  const where: Record<string, Location> = {};
  for (const path of svc.label_file as string[]) {
    if (!(await isSourceFile(o.source, path, field))) {
      throw new KompoxError('config', `services.${name}.label_file: ${o.display(path)} not found`, {
        location: loc,
        field: `services.${name}.label_file`,
        hint: 'Create the file or fix the path',
      });
    }
    const lines: Record<string, number> = {};
    const vars = await readEnvFile(o.source, path, o.display(path), lookupIn(o.env), lines, field);
    Object.assign(fromFiles, vars);
    for (const k of Object.keys(vars)) where[k] = { file: o.display(path), line: lines[k] };
  }
  const labels: Record<string, string> = isObj(svc.labels) ? (svc.labels as Record<string, string>) : {};
  const merged: Record<string, string> = {};
  for (const [k, v] of Object.entries(fromFiles)) {
    if (k in labels) continue;
    merged[k] = v;
    o.pos.set(merged, k, { value: where[k]! });
  }
  for (const [k, v] of Object.entries(labels)) {
    merged[k] = v;
    o.pos.carry(labels, k, merged, k);
  }
  if (!isObj(svc.labels)) o.pos.carry(svc, 'label_file', svc, 'labels');
  svc.labels = merged;
  delete svc.label_file;
}

/** `format: raw`: KEY=VALUE lines taken literally (no quotes, no expansion). */
async function rawEnv(source: AppSource, path: string, lines: Record<string, number>, where: { field: string; location?: Location }): Promise<Env> {
  const out: Env = {};
  const text = await readSourceText(source, path, where);
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    const eq = line.indexOf('=');
    if (eq < 0) return;
    const k = line.slice(0, eq).trim();
    out[k] = line.slice(eq + 1);
    lines[k] = i + 1;
  });
  return out;
}


/** `KEY` without a value takes the project environment's value when it is set (compose does the same). */
function resolveEnvironment(svc: Obj, env: Env): void {
  if (isObj(svc.environment)) resolveVars(svc.environment as Record<string, string | null>, env);
}

function resolveVars(vars: Record<string, string | null>, env: Env): void {
  for (const k of Object.keys(vars)) if (vars[k] === null && Object.hasOwn(env, k)) vars[k] = env[k]!;
}

/** A lookup that finds only the environment's own variables. */
function lookupIn(env: Env): (k: string) => string | undefined {
  return (k) => (Object.hasOwn(env, k) ? env[k] : undefined);
}

/**
 * A sandboxed project may take `environment:` secrets and configs only from the
 * variables given with it: naming any other variable is an error here, before
 * anything is converted (the converter looks them up in the same variables).
 */
function checkSandboxedVariables(project: Obj, o: FinalizeOptions): void {
  for (const section of ['secrets', 'configs'] as const) {
    const defs = project[section];
    if (!isObj(defs)) continue;
    for (const [name, def] of Object.entries(defs)) {
      if (!isObj(def) || def.environment === undefined || def.external === true) continue;
      const v = String(def.environment);
      if (Object.hasOwn(o.source.env, v)) continue;
      throw sandboxError(SANDBOX_CODES.variable, `${section}.${name}.environment`, `variable ${v} is not one of the variables given with the app`, {
        location: o.pos.at(def, 'environment'),
        hint: `Give ${v} with the app's variables, or use "file:" (a file sent with the project) or "content:"`,
      });
    }
  }
}

/**
 * compose-go adds the services a service needs through `network_mode`/`ipc`/
 * `pid`/`uts`/`cgroup: service:x`, `links` and `volumes_from` to depends_on.
 */
function implicitDependencies(svc: Obj, pos: PositionMap): void {
  const add = (name: string, restart: boolean, from: string) => {
    const deps: Obj = isObj(svc.depends_on) ? svc.depends_on : {};
    if (!(name in deps)) {
      deps[name] = restart ? { condition: 'service_started', restart: true, required: true } : { condition: 'service_started', required: true };
      pos.carry(svc, from, deps, name);
    }
    if (!isObj(svc.depends_on)) pos.carry(svc, from, svc, 'depends_on');
    svc.depends_on = deps;
  };
  for (const k of ['network_mode', 'ipc', 'pid', 'uts', 'cgroup']) {
    const v = svc[k];
    if (typeof v === 'string' && v.startsWith('service:')) add(v.slice('service:'.length), true, k);
  }
  if (Array.isArray(svc.links)) for (const l of svc.links) add(String(l).split(':')[0]!, true, 'links');
  if (Array.isArray(svc.volumes_from)) {
    for (const v of svc.volumes_from) {
      const s = String(v);
      if (!s.startsWith('container:')) add(s.split(':')[0]!, false, 'volumes_from');
    }
  }
}

function checkReferences(name: string, svc: Obj, all: Obj, enabled: Set<string>, project: Obj, o: FinalizeOptions): void {
  const s = svc as ServiceConfig;
  if (s.depends_on) {
    for (const [dep, d] of Object.entries(s.depends_on)) {
      const loc = o.pos.at(s.depends_on, dep);
      if (!(dep in all)) {
        throw new KompoxError('config', `service "${name}" depends on undefined service "${dep}"`, {
          location: loc,
          field: `services.${name}.depends_on.${dep}`,
          hint: `Define service "${dep}" or remove the dependency`,
        });
      }
      if (!enabled.has(dep)) {
        if (d.required === false) {
          delete s.depends_on[dep];
          continue;
        }
        const profiles = ((all[dep] as Obj).profiles as string[]).join(', ');
        throw new KompoxError('config', `service "${name}" depends on service "${dep}", which is disabled by its profiles (${profiles})`, {
          location: loc,
          field: `services.${name}.depends_on.${dep}`,
          hint: `Activate one of its profiles (${profiles}) or mark the dependency "required: false"`,
        });
      }
    }
  }
  const declared = (section: string) => (isObj(project[section]) ? (project[section] as Obj) : {});
  (s.volumes ?? []).forEach((v, i) => {
    if (v.type !== 'volume' || !v.source) return;
    if (!(v.source in declared('volumes'))) {
      throw new KompoxError('config', `service "${name}" refers to undefined volume "${v.source}"`, {
        location: o.pos.at(s.volumes, i),
        field: `services.${name}.volumes[${i}]`,
        hint: `Declare it under the top-level "volumes:" (e.g. "volumes: {${v.source}: {}}"), or use a path starting with "./" for a bind mount`,
      });
    }
  });
  for (const kind of ['secrets', 'configs'] as const) {
    (s[kind] ?? []).forEach((ref, i) => {
      if (!(ref.source in declared(kind))) {
        throw new KompoxError('config', `service "${name}" refers to undefined ${kind === 'secrets' ? 'secret' : 'config'} "${ref.source}"`, {
          location: o.pos.at(s[kind], i),
          field: `services.${name}.${kind}[${i}]`,
          hint: `Declare it under the top-level "${kind}:"`,
        });
      }
    });
  }
}

/** compose refuses a service that (indirectly) depends on itself: nothing could start first. */
function checkDependencyCycles(services: Obj, pos: PositionMap): void {
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]): void => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      const cycle = [...path.slice(path.indexOf(name)), name];
      const from = cycle[cycle.length - 2]!;
      const deps = (services[from] as Obj).depends_on;
      throw new KompoxError('config', `dependency cycle detected: ${cycle.join(' -> ')}`, {
        location: pos.at(deps, name),
        field: `services.${from}.depends_on.${name}`,
        hint: 'Remove one of the depends_on entries of the cycle',
      });
    }
    state.set(name, 'visiting');
    const deps = (services[name] as Obj | undefined)?.depends_on;
    if (isObj(deps)) for (const d of Object.keys(deps).sort()) if (d in services) visit(d, [...path, name]);
    state.set(name, 'done');
  };
  for (const name of Object.keys(services).sort()) visit(name, []);
}
