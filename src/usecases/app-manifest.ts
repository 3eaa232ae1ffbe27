// The app manifest use case: gathers the file facts the converter needs (bind
// sources, secret/config files: kind, size, content) and runs the pure
// converter. The only I/O of conversion happens here.
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { posix } from 'node:path';
import { DiagnosticsError, type Diagnostic, type Location } from '../domain/errors.js';
import type { AppContext, Disk } from '../domain/model.js';
import type { LoadedProject } from '../compose/index.js';
import type { KubeObject } from '../domain/ports/kube.js';
import { convertApp } from '../convert/convert.js';
import { MAX_FILE_BYTES } from '../convert/files.js';
import type { ConvertFacts, FileFact, VolumeInput } from '../convert/types.js';

export interface ManifestOptions {
  /** Current disk per app volume name; absent = placeholder PV sources (validate before any disk exists). */
  disks?: Record<string, Disk | undefined>;
  /** Per app volume: PV source and sizes, from the driver's volume facts (pvInputs in pv-sources.ts). */
  volumes: Record<string, VolumeInput>;
  /** Environment for secrets/configs declared with `environment:`; default process.env. */
  env?: Record<string, string | undefined>;
  /** Positions in kompoxops.yml (OpsConfig.locate), so app.* diagnostics carry file:line. */
  locateConfig?: (path: ReadonlyArray<string | number>) => Location | undefined;
  /** Home directory used to recognise expanded `~` paths; default os.homedir(). */
  homeDir?: string;
}

export interface AppManifest {
  /** In apply order. */
  objects: KubeObject[];
  warnings: Diagnostic[];
}

const within = (root: string, p: string) => p === root || p.startsWith(root.replace(/\/+$/, '') + '/');

/**
 * What is at `path`. With `confineTo`, a path that resolves through symbolic links to
 * somewhere outside that directory is reported and not read: a project (possibly
 * uploaded to the PaaS) must not pull files of the machine running Kompox into a ConfigMap.
 */
/** Reads every regular file under `dir` (relative paths), up to MAX_FILE_BYTES in total; symlinks and others are listed as skipped. */
async function readTree(dir: string): Promise<Pick<FileFact, 'tree' | 'treeBytes' | 'skipped'>> {
  const tree: Record<string, Uint8Array> = {};
  const skipped: string[] = [];
  let total = 0;
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(rel ? `${dir}/${rel}` : dir, { withFileTypes: true });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile()) {
        const st = await stat(`${dir}/${r}`);
        total += st.size;
        if (total <= MAX_FILE_BYTES) tree[r] = new Uint8Array(await readFile(`${dir}/${r}`));
      } else skipped.push(r);
    }
  };
  await walk('');
  return total > MAX_FILE_BYTES ? { treeBytes: total, ...(skipped.length ? { skipped } : {}) } : { tree, ...(skipped.length ? { skipped } : {}) };
}

async function fileFact(path: string, withContent: boolean, confineTo?: string, readDirTree = false): Promise<FileFact> {
  try {
    if (confineTo !== undefined) {
      const real = await realpath(path);
      const root = await realpath(confineTo).catch(() => confineTo);
      if (!within(root, real)) return { kind: (await stat(path)).isDirectory() ? 'dir' : 'file', resolvesOutside: real };
    }
    const st = await stat(path);
    if (st.isDirectory()) return { kind: 'dir', entries: (await readdir(path)).length, ...(readDirTree ? await readTree(path) : {}) };
    if (!st.isFile()) return { kind: 'missing' };
    const fact: FileFact = { kind: 'file', size: st.size };
    if (withContent && st.size <= MAX_FILE_BYTES) fact.content = new Uint8Array(await readFile(path));
    return fact;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return { kind: 'missing' };
    throw e;
  }
}

/** Facts about every path the converter may need: bind sources in the project, secret and config files. */
export async function gatherFacts(loaded: LoadedProject, opts: Pick<ManifestOptions, 'env' | 'homeDir'> = {}): Promise<ConvertFacts> {
  const { project, projectDir } = loaded;
  const inProject = (p: string) => within(projectDir, p);
  const wanted = new Map<string, boolean>(); // path → read content
  const binds = new Set<string>();
  const readOnlyBinds = new Set<string>();
  for (const svc of Object.values(project.services ?? {})) {
    for (const v of svc.volumes ?? []) {
      // Only paths inside the project are looked at: host paths are rejected without touching them.
      if (v.type === 'bind' && v.source && posix.isAbsolute(v.source) && inProject(v.source)) {
        wanted.set(v.source, true);
        binds.add(v.source);
        if (v.read_only) readOnlyBinds.add(v.source);
      }
    }
  }
  for (const section of ['secrets', 'configs'] as const) {
    for (const def of Object.values(project[section] ?? {})) if (def.file && !def.external) wanted.set(def.file, true);
  }
  const files: Record<string, FileFact> = {};
  for (const path of [...wanted.keys()].sort()) files[path] = await fileFact(path, wanted.get(path)!, binds.has(path) ? projectDir : undefined, readOnlyBinds.has(path));
  return { files, env: opts.env ?? process.env, homeDir: opts.homeDir ?? homedir() };
}

/** Converts the loaded compose project into the app's Kubernetes objects. Throws DiagnosticsError on errors. */
export async function buildAppManifest(ctx: AppContext, loaded: LoadedProject, opts: ManifestOptions): Promise<AppManifest> {
  const facts = await gatherFacts(loaded, opts);
  const result = convertApp({
    ctx,
    project: loaded.project,
    projectDir: loaded.projectDir,
    envFromFile: loaded.envFromFile ?? {},
    locate: (p) => loaded.locate(p),
    locateConfig: opts.locateConfig,
    facts,
    disks: opts.disks ?? {},
    volumes: opts.volumes,
  });
  if (result.errors.length) {
    throw new DiagnosticsError(result.errors, `the app ${ctx.app.name} cannot be converted (${result.errors.length} error${result.errors.length === 1 ? '' : 's'})`);
  }
  // Loader warnings (loaded.warnings) are the caller's to print: they exist even when conversion is not run.
  return { objects: result.objects, warnings: result.warnings };
}
