// The compose loader: files → one canonical ComposeProject, following
// `docker compose config` (compose-go): per file parse → interpolate →
// validate → canonicalise → include → extends; then files merge in order,
// then profiles, env_file and the project-wide checks.
import { delimiter, posix } from 'node:path';
import { KompoxError, type Diagnostic, type Location } from '../domain/errors.js';
import { SourceAccessError, isAbsolutePath, type AppSource } from '../domain/source.js';
import { canonicalFile } from './canonical.js';
import { envOf, isSourceFile, withEnvFile, type Env } from './environment.js';
import { finalizeProject } from './finalize.js';
import type { ComposeLoadOptions, LoadedProject } from './index.js';
import { interpolateTree } from './interpolate.js';
import { mergeMaps, mergeValues } from './merge.js';
import { PositionMap } from './positions.js';
import { projectPath, sourceFieldError } from './project-path.js';
import { validateComposeFile } from './schema.js';
import { isTagged, stripTags } from './tags.js';
import { parseYamlDocuments } from './yaml-source.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v) && !isTagged(v);

export const DEFAULT_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml'];
export const DEFAULT_OVERRIDE_FILES = ['compose.override.yml', 'compose.override.yaml', 'docker-compose.override.yml', 'docker-compose.override.yaml'];

const { dirname, relative } = posix;

/** State shared by every file of one load. */
interface LoadState {
  /** Every file is read through it. */
  source: AppSource;
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
  const { source } = opts;
  const projectDir = source.root;
  const displayBases =
    opts.displayDir !== undefined ? [posix.resolve(projectDir, opts.displayDir)] : [...(source.displayDir !== undefined ? [source.displayDir] : []), projectDir];
  const state: LoadState = { source, pos: new PositionMap(), warnings: [], warned: new Set(), files: [], displayBases };
  const envFile = opts.envFile !== undefined ? projectPath(source, opts.envFile, projectDir, { field: 'the env file option' }) : posix.join(projectDir, '.env');
  const env = await withEnvFile(source, envOf(source.env), envFile, display(state, envFile), opts.envFile !== undefined, undefined, opts.envFile !== undefined ? 'the env file option' : '.env');
  const scope: Scope = { env, baseDir: projectDir, includeStack: [] };

  let merged: Obj;
  const compose = source.compose;
  if (compose !== undefined && 'text' in compose) {
    const file = posix.resolve(projectDir, compose.filename);
    merged = await loadText(compose.text, file, scope, state);
  } else {
    const files = await selectFiles(compose?.files ?? [], projectDir, env, state);
    merged = await loadFiles(files, scope, state);
  }
  stripTags(merged);
  const project = await finalizeProject(merged, {
    source,
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
    source,
    files: state.files,
    warnings: state.warnings,
    envFromFile: project.envFromFile,
    locate: (path) => state.pos.locate(root, path),
  };
}

function display(state: LoadState, file: string): string {
  for (const base of state.displayBases) {
    const rel = relative(base, file);
    if (rel && !rel.startsWith('..') && !isAbsolutePath(rel)) return rel;
  }
  return file;
}

/** Explicit files, else COMPOSE_FILE, else the default file plus its override file. */
async function selectFiles(files: string[], projectDir: string, env: Env, state: LoadState): Promise<string[]> {
  const { source } = state;
  if (files.length > 0) return files.map((f) => projectPath(source, f, projectDir, { field: 'compose file' }));
  if (env.COMPOSE_FILE) {
    const sep = env.COMPOSE_PATH_SEPARATOR ?? delimiter;
    return env.COMPOSE_FILE.split(sep)
      .filter(Boolean)
      .map((f) => projectPath(source, f, projectDir, { field: 'COMPOSE_FILE' }));
  }
  const where = { field: 'compose file' };
  const found: string[] = [];
  for (const f of DEFAULT_FILES) if (await isSourceFile(source, posix.join(projectDir, f), where)) found.push(f);
  if (found.length === 0) {
    throw new KompoxError('config', `no compose file found in ${source.sandboxed ? source.label : projectDir}`, {
      location: { file: source.sandboxed ? source.label : projectDir },
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
  const out = [posix.join(projectDir, found[0]!)];
  for (const f of DEFAULT_OVERRIDE_FILES) {
    if (await isSourceFile(source, posix.join(projectDir, f), where)) {
      out.push(posix.join(projectDir, f));
      break;
    }
  }
  return out;
}

async function loadFiles(files: string[], scope: Scope, state: LoadState): Promise<Obj> {
  let merged: Obj | undefined;
  for (const f of files) {
    const dict = await loadFile(f, scope, state);
    merged = merged === undefined ? dict : mergeMaps(merged, dict, [], state.pos);
  }
  return merged ?? {};
}

async function readText(file: string, state: LoadState, from?: Location): Promise<string> {
  const name = display(state, file);
  try {
    return new TextDecoder().decode(await state.source.readFile(file));
  } catch (e) {
    if (e instanceof SourceAccessError && e.reason !== 'outside') {
      const code = (e.cause as NodeJS.ErrnoException | undefined)?.code;
      throw new KompoxError('config', e.reason === 'missing' ? `compose file ${name} does not exist` : `cannot read compose file ${name}: ${code ?? e.message}`, {
        location: from ?? { file: name },
        hint: e.reason === 'missing' ? 'Check the file name and the project directory' : 'Check the file permissions',
      });
    }
    throw sourceFieldError(e, { field: 'compose file', location: from ?? { file: name } });
  }
}

async function loadFile(file: string, scope: Scope, state: LoadState, from?: Location): Promise<Obj> {
  return loadText(await readText(file, state, from), file, scope, state);
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
    interpolateTree(raw, { lookup: (k) => (Object.hasOwn(scope.env, k) ? scope.env[k] : undefined), positions: state.pos, file: name, warnings: state.warnings, warned: state.warned });
    await validateComposeFile(raw, name, state.pos);
    const dict = canonicalFile(raw, { source: state.source, baseDir: scope.baseDir, pos: state.pos, file: name, warnings: state.warnings });
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
    const { source } = state;
    const field = `include[${i}]`;
    const paths = (Array.isArray(spec.path) ? spec.path : [spec.path]).map((p) => projectPath(source, String(p), dir, { field, location: loc }));
    for (const p of paths) {
      if (scope.includeStack.includes(p) || p === file) {
        throw new KompoxError('config', `include cycle: ${[...scope.includeStack, file, p].map((f) => display(state, f)).join(' → ')}`, {
          location: loc,
          hint: 'Remove one of the include entries',
        });
      }
      if (!(await isSourceFile(source, p, { field, location: loc }))) {
        throw new KompoxError('config', `included file ${display(state, p)} does not exist`, { location: loc, hint: 'Fix the include path' });
      }
    }
    const projectDir =
      typeof spec.project_directory === 'string' ? projectPath(source, spec.project_directory, dir, { field: `${field}.project_directory`, location: loc }) : dirname(paths[0]!);
    let env = envOf(scope.env);
    const envWhere = { field: `${field}.env_file`, location: loc };
    const envFiles = spec.env_file === undefined ? undefined : (Array.isArray(spec.env_file) ? spec.env_file : [spec.env_file]).map((p) => projectPath(source, String(p), dir, envWhere));
    if (envFiles) for (const f of envFiles) env = await withEnvFile(source, env, f, display(state, f), true, loc, envWhere.field);
    else {
      const dotenv = posix.join(projectDir, '.env');
      env = await withEnvFile(source, env, dotenv, display(state, dotenv), false, loc, envWhere.field);
    }
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
    const path = projectPath(state.source, ref.file, f.baseDir, { field: `services.${name}.extends.file`, location: loc });
    let other = cache.get(path);
    if (!other) {
      const text = await readText(path, state, loc);
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
