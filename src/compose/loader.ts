// The compose loader: files → one canonical ComposeProject, following
// `docker compose config` (compose-go): per file parse → interpolate →
// validate → canonicalise → include → extends; then files merge in order,
// then profiles, env_file and the project-wide checks.
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { KompoxError, type Diagnostic, type Location } from '../domain/errors.js';
import { canonicalFile } from './canonical.js';
import { definedOnly, withEnvFile, type Env } from './environment.js';
import { finalizeProject } from './finalize.js';
import type { ComposeLoadOptions, LoadedProject } from './index.js';
import { interpolateTree } from './interpolate.js';
import { mergeMaps, mergeValues } from './merge.js';
import { PositionMap } from './positions.js';
import { validateComposeFile } from './schema.js';
import { isTagged, stripTags } from './tags.js';
import { parseYamlDocuments } from './yaml-source.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v) && !isTagged(v);

export const DEFAULT_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml'];
export const DEFAULT_OVERRIDE_FILES = ['compose.override.yml', 'compose.override.yaml', 'docker-compose.override.yml', 'docker-compose.override.yaml'];

/** State shared by every file of one load. */
interface LoadState {
  pos: PositionMap;
  warnings: Diagnostic[];
  warned: Set<string>;
  files: string[];
  /** directories file names in messages are made relative to, first match wins */
  displayBases: string[];
}

/** The context one file is loaded in (an included project has its own). */
interface Scope {
  env: Env;
  /** relative paths in this file resolve against it */
  baseDir: string;
  /** files being included, for cycle detection */
  includeStack: string[];
}

export async function loadCompose(opts: ComposeLoadOptions): Promise<LoadedProject> {
  const projectDir = resolve(opts.projectDir);
  const displayBases = opts.displayDir !== undefined ? [resolve(opts.displayDir)] : [process.cwd(), projectDir];
  const state: LoadState = { pos: new PositionMap(), warnings: [], warned: new Set(), files: [], displayBases };
  const baseEnv = definedOnly(opts.env ?? process.env);
  const envFile = opts.envFile ? resolve(projectDir, opts.envFile) : resolve(projectDir, '.env');
  const env = withEnvFile(baseEnv, envFile, display(state, envFile), opts.envFile !== undefined);
  const scope: Scope = { env, baseDir: projectDir, includeStack: [] };

  let merged: Obj;
  if (opts.content) {
    const file = isAbsolute(opts.content.filename) ? opts.content.filename : resolve(projectDir, opts.content.filename);
    merged = await loadText(opts.content.text, file, scope, state);
  } else {
    const files = selectFiles(opts.files ?? [], projectDir, env, state);
    merged = await loadFiles(files, scope, state);
  }
  stripTags(merged);
  const project = finalizeProject(merged, {
    projectDir,
    env,
    optsName: opts.projectName,
    profiles: [...(opts.profiles ?? []), ...(env.COMPOSE_PROFILES ?? '').split(',')].map((p) => p.trim()).filter(Boolean),
    pos: state.pos,
    warnings: state.warnings,
    display: (f) => display(state, f),
  });
  const root = project.project;
  return {
    project: root,
    projectDir,
    files: state.files,
    warnings: state.warnings,
    envFromFile: project.envFromFile,
    locate: (path) => state.pos.locate(root, path),
  };
}

function display(state: LoadState, file: string): string {
  for (const base of state.displayBases) {
    const rel = relative(base, file);
    if (rel && !rel.startsWith('..') && !isAbsolute(rel)) return rel;
  }
  return file;
}

/** Explicit files, else COMPOSE_FILE, else the default file plus its override file. */
function selectFiles(files: string[], projectDir: string, env: Env, state: LoadState): string[] {
  if (files.length > 0) return files.map((f) => resolve(projectDir, f));
  if (env.COMPOSE_FILE) {
    const sep = env.COMPOSE_PATH_SEPARATOR ?? (process.platform === 'win32' ? ';' : ':');
    return env.COMPOSE_FILE.split(sep)
      .filter(Boolean)
      .map((f) => resolve(projectDir, f));
  }
  const found = DEFAULT_FILES.filter((f) => isFile(resolve(projectDir, f)));
  if (found.length === 0) {
    throw new KompoxError('config', `no compose file found in ${projectDir}`, {
      location: { file: projectDir },
      hint: `Create one of ${DEFAULT_FILES.join(', ')} or name the file explicitly`,
    });
  }
  if (found.length > 1) {
    state.warnings.push({
      level: 'warning',
      message: `found multiple compose files (${found.join(', ')}); using ${found[0]}`,
      location: { file: found[0] },
    });
  }
  const out = [resolve(projectDir, found[0]!)];
  const override = DEFAULT_OVERRIDE_FILES.find((f) => isFile(resolve(projectDir, f)));
  if (override) out.push(resolve(projectDir, override));
  return out;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

async function loadFiles(files: string[], scope: Scope, state: LoadState): Promise<Obj> {
  let merged: Obj | undefined;
  for (const f of files) {
    const dict = await loadFile(f, scope, state);
    merged = merged === undefined ? dict : mergeMaps(merged, dict, [], state.pos);
  }
  return merged ?? {};
}

function readText(file: string, state: LoadState, from?: Location): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new KompoxError('config', code === 'ENOENT' ? `compose file ${display(state, file)} does not exist` : `cannot read compose file ${display(state, file)}: ${code ?? String(e)}`, {
      location: from ?? { file: display(state, file) },
      hint: code === 'ENOENT' ? 'Check the file name and the project directory' : 'Check the file permissions',
    });
  }
}

async function loadFile(file: string, scope: Scope, state: LoadState, from?: Location): Promise<Obj> {
  return loadText(readText(file, state, from), file, scope, state);
}

/** One file: parse, interpolate, validate, canonicalise; then its includes and extends. */
async function loadText(text: string, file: string, scope: Scope, state: LoadState): Promise<Obj> {
  state.files.push(file);
  const dict = await parseFile(text, file, scope, state);
  if (dict.include !== undefined) {
    await applyIncludes(dict, file, scope, state);
    delete dict.include;
  }
  await applyExtends(dict, file, scope, state, new Map());
  return dict;
}

/** Each YAML document: interpolate, validate, canonicalise; documents then merge in order. */
async function parseFile(text: string, file: string, scope: Scope, state: LoadState): Promise<Obj> {
  const name = display(state, file);
  const docs = parseYamlDocuments(text, name, state.pos);
  if (docs.length === 0) {
    throw new KompoxError('config', `compose file ${name} is empty`, { location: { file: name }, hint: 'Define at least one service under "services:"' });
  }
  let merged: Obj | undefined;
  for (const raw of docs) {
    if (!isObj(raw)) {
      throw new KompoxError('config', `compose file ${name} must be a mapping at the top level`, { location: { file: name, line: 1, column: 1 } });
    }
    interpolateTree(raw, { lookup: (k) => scope.env[k], positions: state.pos, file: name, warnings: state.warnings, warned: state.warned });
    await validateComposeFile(raw, name, state.pos);
    const dict = canonicalFile(raw, { baseDir: scope.baseDir, pos: state.pos, file: name, warnings: state.warnings });
    merged = merged === undefined ? dict : mergeMaps(merged, dict, [], state.pos);
  }
  return merged!;
}

// ---------------------------------------------------------------- include

async function applyIncludes(dict: Obj, file: string, scope: Scope, state: LoadState): Promise<void> {
  const entries = Array.isArray(dict.include) ? dict.include : [];
  // as compose-go: include paths, project_directory and env_file are relative
  // to the including project's directory (not to the including file)
  const dir = scope.baseDir;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i];
    const loc = state.pos.valueAt(dict.include as object, i);
    const spec: Obj = typeof entry === 'string' ? { path: entry } : (entry as Obj);
    const paths = (Array.isArray(spec.path) ? spec.path : [spec.path]).map((p) => resolve(dir, String(p)));
    for (const p of paths) {
      if (scope.includeStack.includes(p) || p === file) {
        throw new KompoxError('config', `include cycle: ${[...scope.includeStack, file, p].map((f) => display(state, f)).join(' → ')}`, {
          location: loc,
          hint: 'Remove one of the include entries',
        });
      }
      if (!isFile(p)) {
        throw new KompoxError('config', `included file ${display(state, p)} does not exist`, { location: loc, hint: 'Fix the include path' });
      }
    }
    const projectDir = typeof spec.project_directory === 'string' ? resolve(dir, spec.project_directory) : dirname(paths[0]!);
    let env = { ...scope.env };
    const envFiles = spec.env_file === undefined ? undefined : (Array.isArray(spec.env_file) ? spec.env_file : [spec.env_file]).map((p) => resolve(dir, String(p)));
    if (envFiles) for (const f of envFiles) env = withEnvFile(env, f, display(state, f), true);
    else env = withEnvFile(env, resolve(projectDir, '.env'), display(state, resolve(projectDir, '.env')), false);
    const sub: Scope = { env, baseDir: projectDir, includeStack: [...scope.includeStack, file] };
    const included = await loadFiles(paths, sub, state);
    stripTags(included);
    for (const section of ['services', 'networks', 'volumes', 'secrets', 'configs']) {
      const src = included[section];
      if (!isObj(src)) continue;
      const dst: Obj = isObj(dict[section]) ? (dict[section] as Obj) : {};
      for (const [k, v] of Object.entries(src)) {
        if (k in dst && JSON.stringify(dst[k]) !== JSON.stringify(v)) {
          throw new KompoxError('config', `${section}.${k} is defined both here and in the included ${paths.map((p) => display(state, p)).join(', ')}`, {
            location: state.pos.at(dst, k) ?? loc,
            field: `${section}.${k}`,
            hint: 'Rename one of them, or drop the local definition (use an override file to change an included resource)',
          });
        }
        dst[k] = v;
        state.pos.carry(src, k, dst, k);
      }
      dict[section] = dst;
    }
  }
}

// ---------------------------------------------------------------- extends

interface ExtendsFile {
  dict: Obj;
  file: string;
  /** `extends.file` in this file is relative to it: the project directory, or the extended file's directory */
  baseDir: string;
  resolved: Map<string, Obj>;
}

async function applyExtends(dict: Obj, file: string, scope: Scope, state: LoadState, cache: Map<string, ExtendsFile>): Promise<void> {
  if (!isObj(dict.services)) return;
  const self: ExtendsFile = { dict, file, baseDir: scope.baseDir, resolved: new Map() };
  cache.set(file, self);
  const services = dict.services;
  for (const name of Object.keys(services)) {
    services[name] = await resolveService(self, name, scope, state, cache, []);
  }
}

async function resolveService(f: ExtendsFile, name: string, scope: Scope, state: LoadState, cache: Map<string, ExtendsFile>, chain: string[]): Promise<Obj> {
  const id = `${f.file}#${name}`;
  const done = f.resolved.get(name);
  if (done) return done;
  const services = f.dict.services as Obj;
  const svc = services[name];
  if (!isObj(svc) || svc.extends === undefined) {
    if (isObj(svc)) f.resolved.set(name, svc);
    return svc as Obj;
  }
  if (chain.includes(id)) {
    const names = [...chain, id].map((c) => {
      const [file, s] = c.split('#') as [string, string];
      return `${s} (${display(state, file)})`;
    });
    throw new KompoxError('config', `extends cycle: ${names.join(' → ')}`, {
      location: state.pos.at(svc, 'extends'),
      field: `services.${name}.extends`,
      hint: 'A service cannot extend itself, directly or through other services',
    });
  }
  const ext = svc.extends;
  const ref: Obj = typeof ext === 'string' ? { service: ext } : (ext as Obj);
  const baseName = String(ref.service);
  const loc = state.pos.at(svc, 'extends');
  let baseFile = f;
  if (typeof ref.file === 'string') {
    const path = resolve(f.baseDir, ref.file);
    let other = cache.get(path);
    if (!other) {
      const text = readText(path, state, loc);
      state.files.push(path);
      // paths in the extended file are relative to that file, not to the project
      const dict = await parseFile(text, path, { ...scope, baseDir: dirname(path) }, state);
      stripTags(dict);
      other = { dict, file: path, baseDir: dirname(path), resolved: new Map() };
      cache.set(path, other);
    }
    baseFile = other;
  }
  const baseServices = isObj(baseFile.dict.services) ? baseFile.dict.services : {};
  if (!isObj(baseServices[baseName])) {
    throw new KompoxError('config', `service "${name}" extends "${baseName}", which is not defined in ${display(state, baseFile.file)}`, {
      location: loc,
      field: `services.${name}.extends`,
      hint: `Define service "${baseName}" there or fix the name`,
    });
  }
  const base = await resolveService(baseFile, baseName, scope, state, cache, [...chain, id]);
  const baseCopy = state.pos.clone(base);
  const own = state.pos.clone(svc);
  delete own.extends;
  const merged = mergeValues(baseCopy, own, ['services', name], state.pos) as Obj;
  f.resolved.set(name, merged);
  return merged;
}
