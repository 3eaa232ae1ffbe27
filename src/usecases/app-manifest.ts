// The app manifest use case: gathers the file facts the converter needs (bind
// sources, secret/config files: kind, size, content) and runs the pure
// converter. The only I/O of conversion happens here.
import { posix } from 'node:path';
import { DiagnosticsError, KompoxError, fieldName, type Diagnostic, type Location } from '../domain/errors.js';
import type { AppContext, Disk } from '../domain/model.js';
import { SANDBOX_CODES, SourceAccessError, sandboxError, withinRoot, type AppSource } from '../domain/source.js';
import type { LoadedProject } from '../compose/index.js';
import type { KubeObject } from '../domain/ports/kube.js';
import { convertApp } from '../convert/convert.js';
import { MAX_FILE_BYTES } from '../convert/files.js';
import type { AppSecretRefs, ConvertFacts, FileFact, VolumeInput } from '../convert/types.js';
import type { KubernetesVersion } from '../domain/kube-version.js';
import type { ClusterNode } from '../domain/ports/driver.js';

export interface ManifestOptions {
  /** Current disk per app volume name; absent = placeholder PV sources (validate before any disk exists). */
  disks?: Record<string, Disk | undefined>;
  /** Per app volume: PV source and sizes, from the driver's volume facts (pvInputs in pv-sources.ts). */
  volumes: Record<string, VolumeInput>;
  /** Positions in kompoxops.yml (OpsConfig.locate), so app.* diagnostics carry file:line. */
  locateConfig?: (path: ReadonlyArray<string | number>) => Location | undefined;
  /** The target API server's version (app deploy); absent: a current Kubernetes is assumed. */
  kubernetes?: KubernetesVersion;
  /** The app's stored secrets (names only), referenced by the pod (readStoredSecrets in app-secrets.ts). */
  secrets?: AppSecretRefs;
  /** The cluster's nodes (app deploy): a placement no node satisfies is a warning. */
  nodes?: ClusterNode[];
}

export interface AppManifest {
  /** In apply order. */
  objects: KubeObject[];
  warnings: Diagnostic[];
}

/** Reads every regular file under `dir` (relative paths), up to MAX_FILE_BYTES in total; symlinks and others are listed as skipped. */
async function readTree(source: AppSource, dir: string): Promise<Pick<FileFact, 'tree' | 'treeBytes' | 'skipped'>> {
  const tree: Record<string, Uint8Array> = {};
  const skipped: string[] = [];
  let total = 0;
  const walk = async (rel: string): Promise<void> => {
    for (const e of await source.readdir(rel ? `${dir}/${rel}` : dir)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.kind === 'dir') await walk(r);
      else if (e.kind === 'file') {
        const st = await source.stat(`${dir}/${r}`);
        total += st?.size ?? 0;
        if (total <= MAX_FILE_BYTES) tree[r] = await source.readFile(`${dir}/${r}`);
      } else skipped.push(r);
    }
  };
  await walk('');
  return total > MAX_FILE_BYTES ? { treeBytes: total, ...(skipped.length ? { skipped } : {}) } : { tree, ...(skipped.length ? { skipped } : {}) };
}

/**
 * What is at `path`, read through the source. For a bind source (`confined`), a path
 * that resolves through symbolic links to somewhere outside the project is reported
 * and not read: a project must not pull files of the machine running Kompox into a
 * ConfigMap (a sandboxed source refuses it outright).
 */
async function fileFact(source: AppSource, path: string, confined: boolean, readDirTree: boolean): Promise<FileFact> {
  try {
    if (confined && !source.sandboxed) {
      const real = await source.realpath(path);
      const root = await source.realpath(source.root).catch(() => source.root);
      if (!withinRoot(root, real)) return { kind: (await source.stat(path))?.kind === 'dir' ? 'dir' : 'file', resolvesOutside: real };
    }
    const st = await source.stat(path);
    if (st === undefined || st.kind === 'other') return { kind: 'missing' };
    if (st.kind === 'dir') return { kind: 'dir', entries: (await source.readdir(path)).length, ...(readDirTree ? await readTree(source, path) : {}) };
    const fact: FileFact = { kind: 'file', size: st.size };
    if (st.size <= MAX_FILE_BYTES) fact.content = await source.readFile(path);
    return fact;
  } catch (e) {
    if (e instanceof SourceAccessError && e.reason === 'missing') return { kind: 'missing' };
    throw e;
  }
}

/** Facts about every path the converter may need: bind sources in the project, secret and config files; and the source's variables. */
export async function gatherFacts(loaded: LoadedProject): Promise<ConvertFacts> {
  const { project, projectDir, source } = loaded;
  const inProject = (p: string) => withinRoot(projectDir, p);
  /** path → the compose field that named it first (for messages), bind source or not, read as a tree (read-only bind) */
  const wanted = new Map<string, { field: ReadonlyArray<string | number>; bind: boolean; tree: boolean }>();
  for (const [name, svc] of Object.entries(project.services ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    (svc.volumes ?? []).forEach((v, i) => {
      // Only paths inside the project are looked at: host paths are rejected without touching them.
      if (v.type === 'bind' && v.source && posix.isAbsolute(v.source) && inProject(v.source)) {
        const prev = wanted.get(v.source);
        wanted.set(v.source, { field: prev?.field ?? ['services', name, 'volumes', i], bind: true, tree: Boolean(prev?.tree || v.read_only) });
      }
    });
  }
  for (const section of ['secrets', 'configs'] as const) {
    for (const [name, def] of Object.entries(project[section] ?? {})) {
      if (def.file && !def.external && !wanted.has(def.file)) wanted.set(def.file, { field: [section, name, 'file'], bind: false, tree: false });
    }
  }
  const files: Record<string, FileFact> = {};
  for (const path of [...wanted.keys()].sort()) {
    const w = wanted.get(path)!;
    try {
      files[path] = await fileFact(source, path, w.bind, w.tree);
    } catch (e) {
      // a sandboxed source refuses a symbolic link out of the project: name the field that asked for it
      if (e instanceof SourceAccessError && e.reason === 'outside') {
        throw sandboxError(SANDBOX_CODES.symlink, fieldName(w.field), e.message, { location: loaded.locate(w.field), hint: e.hint, cause: e });
      }
      if (e instanceof SourceAccessError) throw new KompoxError('config', `${fieldName(w.field)}: ${e.message}`, { location: loaded.locate(w.field), field: fieldName(w.field), hint: e.hint, cause: e });
      throw e;
    }
  }
  return { files, env: source.env, ...(source.homeDir !== undefined ? { homeDir: source.homeDir } : {}) };
}

/** Converts the loaded compose project into the app's Kubernetes objects. Throws DiagnosticsError on errors. */
export async function buildAppManifest(ctx: AppContext, loaded: LoadedProject, opts: ManifestOptions): Promise<AppManifest> {
  const facts = await gatherFacts(loaded);
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
    ...(opts.kubernetes ? { kubernetes: opts.kubernetes } : {}),
    ...(opts.secrets ? { secrets: opts.secrets } : {}),
    ...(opts.nodes ? { nodes: opts.nodes } : {}),
  });
  if (result.errors.length) {
    throw new DiagnosticsError(result.errors, `the app ${ctx.app.name} cannot be converted (${result.errors.length} error${result.errors.length === 1 ? '' : 's'})`);
  }
  // Loader warnings (loaded.warnings) are the caller's to print: they exist even when conversion is not run.
  return { objects: result.objects, warnings: result.warnings };
}
