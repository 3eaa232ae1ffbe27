// Finding and loading kompoxops.yml: discovery (-C, -f), YAML with positions,
// semantic checks plus the published JSON Schema, then domain objects.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { DiagnosticsError, KompoxError, type Diagnostic } from '../domain/errors.js';
import type { App, AppContext, Cluster, Provider, Service } from '../domain/model.js';
import type { FindOptions, OpsConfig } from './index.js';
import { schemaDiagnostics } from './schema.js';
import { fieldName, parseYamlSource } from './source.js';
import { validateConfig } from './validate.js';

export const CONFIG_FILE_NAMES = ['kompoxops.yml', 'kompoxops.yaml'];

/** A path as the user should see it: relative to the working directory `cwd` when inside it. */
export function displayPath(p: string, cwd: string | undefined): string {
  if (cwd === undefined) return p;
  const rel = relative(cwd, p);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : p;
}

export function findConfigPath(o: FindOptions): string {
  const cwd = o.cwd;
  const base = o.chdir ? resolve(cwd, o.chdir) : cwd;
  if (o.chdir && !(existsSync(base) && statSync(base).isDirectory())) {
    throw new KompoxError('notfound', `-C ${o.chdir}: no such directory (${base})`, { hint: 'Give -C an existing directory.' });
  }
  if (o.file) {
    const p = resolve(base, o.file);
    if (!existsSync(p)) {
      throw new KompoxError('notfound', `${displayPath(p, cwd)}: no such file`, {
        hint: `Check the -f argument, or run "kompoxops init${o.chdir ? ` -C ${o.chdir}` : ''} -f ${o.file}" to create it.`,
      });
    }
    if (statSync(p).isDirectory()) throw new KompoxError('config', `${displayPath(p, cwd)} is a directory`, { hint: 'Give -f a kompoxops.yml file; use -C for a directory.' });
    return p;
  }
  for (const name of CONFIG_FILE_NAMES) {
    const p = resolve(base, name);
    if (existsSync(p)) return p;
  }
  throw new KompoxError('notfound', `no kompoxops.yml in ${displayPath(base, cwd) || '.'}`, {
    hint: 'Run "kompoxops init" to create one, or point to it with -C DIR or -f FILE.',
  });
}

/** The field path a diagnostic message starts with (`app.volumes[0].size: ...`). */
function diagField(d: Diagnostic): string {
  return d.message.slice(0, d.message.indexOf(': '));
}

/** One field is the other or contains it: a schema error there repeats a semantic one. */
function related(a: string, b: string): boolean {
  const under = (x: string, y: string) => x === y || y === '(top level)' || x.startsWith(y + '.') || x.startsWith(y + '[');
  return under(a, b) || under(b, a);
}

function fail(diags: Diagnostic[], file: string): never {
  if (diags.length === 1) {
    const d = diags[0]!;
    const field = diagField(d);
    throw new KompoxError('config', d.message, { location: d.location, hint: d.hint, ...(/^[\w.[\]-]+$/.test(field) ? { field } : {}) });
  }
  const pos = (d: Diagnostic) => (d.location?.line ?? 0) * 1e6 + (d.location?.column ?? 0);
  throw new DiagnosticsError([...diags].sort((a, b) => pos(a) - pos(b)), `${file} has ${diags.length} problems`);
}

/** Loads kompoxops.yml; `cwd`, when given, makes the paths in messages relative to it. */
export async function loadConfig(path: string, cwd?: string): Promise<OpsConfig> {
  const abs = resolve(path);
  const shown = displayPath(abs, cwd);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    throw new KompoxError('notfound', `${shown}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? String(err)})`, {
      hint: 'Check the path and its permissions, or run "kompoxops init" to create it.',
      cause: err,
    });
  }
  const src = parseYamlSource(text, shown);
  if (src.syntaxErrors.length) fail(src.syntaxErrors, shown);
  const dir = dirname(abs);
  const { config, diagnostics } = validateConfig(src, dir);
  // The semantic checks give the better messages; the schema catches anything
  // they would miss (and test/config/schema.test.ts keeps the two in step).
  const schemaDiags = src.value === undefined || src.value === null ? [] : await schemaDiagnostics(src, src.value);
  const reported = diagnostics.map((d) => diagField(d));
  const extra = schemaDiags.filter((d) => !reported.some((f) => related(f, diagField(d))));
  const all = [...diagnostics, ...extra];
  if (all.length || !config) fail(all.length ? all : [{ level: 'error', message: 'the file is not valid', location: { file: shown } }], shown);

  const service: Service = { name: config.service.name };
  const provider: Provider = { name: config.provider.name, service: service.name, driver: config.provider.driver, settings: config.provider.settings };
  const cluster: Cluster = {
    name: config.cluster.name,
    provider: provider.name,
    auth: config.cluster.auth,
    ingress: config.cluster.ingress,
    ...(config.cluster.domain ? { domain: config.cluster.domain } : {}),
    settings: config.cluster.settings,
  };
  const ops: OpsConfig = { path: abs, dir, service, provider, cluster, locate: (p) => src.locate(p) };

  const a = config.app;
  if (a) {
    const app: App = {
      name: a.name,
      cluster: cluster.name,
      compose: '',
      ingress: a.ingress,
      resources: a.resources,
      settings: a.settings,
      volumes: a.volumes,
      ...(a.deployment ? { deployment: a.deployment } : {}),
    };
    if (a.compose.kind === 'inline') {
      app.compose = a.compose.text;
      app.projectDir = dir;
      // padded so that line:column in compose errors are positions in kompoxops.yml
      ops.appCompose = { text: a.compose.positioned, filename: abs };
    } else {
      ops.appCompose = { files: [a.compose.path] };
      app.composePath = a.compose.path;
      app.projectDir = dirname(a.compose.path);
      try {
        app.compose = readFileSync(a.compose.path, 'utf8');
      } catch (err) {
        // Deferred: cluster commands work before the compose file is written;
        // app commands get this error from requireApp.
        const code = (err as NodeJS.ErrnoException).code;
        ops.appError = new KompoxError('config', `app.compose: ${code === 'ENOENT' ? 'no such file' : `cannot read (${code})`}: ${displayPath(a.compose.path, cwd)}`, {
          location: src.locate(['app', 'compose']),
          hint: 'Create the compose file, or fix the path in app.compose (relative to kompoxops.yml).',
          cause: err,
        });
      }
    }
    ops.app = app;
  }
  return ops;
}

/** findConfigPath + loadConfig */
export async function loadOpsConfig(o: FindOptions): Promise<OpsConfig> {
  return loadConfig(findConfigPath(o), o.cwd);
}

/** The app context, or a clear error when kompoxops.yml has no `app`. */
export function requireApp(c: OpsConfig): AppContext {
  if (!c.app) {
    const shown = c.locate([])?.file ?? c.path; // as the loader named it
    throw new KompoxError('config', `${shown} has no app section`, {
      location: { file: shown },
      hint: 'Add an "app:" section with at least "name:" and "compose: compose.yml" (see docs/kompoxops-yml.md).',
    });
  }
  if (c.appError) throw c.appError;
  return { service: c.service, provider: c.provider, cluster: c.cluster, app: c.app };
}

export { fieldName };
