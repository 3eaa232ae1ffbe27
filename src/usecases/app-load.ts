// Loading an app's compose project, and `app validate`: everything a later
// deploy would read, checked without touching a cluster. Plain parameters in,
// data out (the CLI prints; the PaaS server will call the same functions).
import { dirname, resolve } from 'node:path';
import type { LoadedProject } from '../compose/index.js';
import { KompoxError, type Diagnostic, type Location } from '../domain/errors.js';
import type { AppContext } from '../domain/model.js';
import type { KubeObject } from '../domain/ports/kube.js';
import type { DriverVolumes } from '../domain/ports/driver.js';

export interface AppLoadOptions {
  /** Active compose profiles (`--profile`). */
  profiles?: string[];
  /** Environment for interpolation; default: the compose loader's (process.env). */
  env?: Record<string, string | undefined>;
}

/** The app's compose project (from app.composePath, or the inline compose text). */
export async function loadApp(ctx: AppContext, opts: AppLoadOptions = {}): Promise<LoadedProject> {
  const { loadCompose } = await import('../compose/index.js');
  const { inlineComposeSource } = await import('../config/index.js');
  const app = ctx.app;
  const projectDir = resolve(app.projectDir ?? (app.composePath ? dirname(app.composePath) : '.'));
  const common = { projectDir, ...(opts.profiles ? { profiles: opts.profiles } : {}), ...(opts.env ? { env: opts.env } : {}) };
  if (app.composePath) return loadCompose({ ...common, files: [app.composePath] });
  if (!app.compose.trim()) {
    throw new KompoxError('config', `app ${app.name} has no compose text`, { field: 'app.compose', hint: 'Give app.compose a file name or the compose YAML.' });
  }
  // Inline compose from kompoxops.yml keeps its positions there; otherwise name it after the app.
  const content = inlineComposeSource(app) ?? { text: app.compose, filename: `${app.name}.compose.yml` };
  return loadCompose({ ...common, content });
}

export interface ValidateOptions extends AppLoadOptions {
  /** Produce the canonical compose YAML. */
  compose?: boolean;
  /** Produce the Kubernetes manifest YAML (multi-document, apply order). The conversion itself always runs. */
  manifest?: boolean;
  /** Positions in kompoxops.yml, so app.* problems name file:line:column; default: appConfigLocator(ctx.app). */
  locateConfig?: (path: ReadonlyArray<string | number>) => Location | undefined;
  /** The driver's pure volume facts (placeholder PV sources: no disk exists yet). */
  volumes: DriverVolumes;
}

export interface ValidateSummary {
  app: string;
  services: string[];
  /** compose named volumes */
  composeVolumes: string[];
  /** Kompox app volumes (disks) */
  appVolumes: string[];
  /** published ports, `service:target/protocol` */
  ports: string[];
  files: string[];
  /** Number of Kubernetes objects the app converts to. */
  objects: number;
  /** Host names the app's Ingresses serve (automatic and custom), sorted. */
  hosts: string[];
}

function ingressHosts(objects: KubeObject[]): string[] {
  const hosts = new Set<string>();
  for (const o of objects) {
    if (o.kind !== 'Ingress') continue;
    const rules = (o.spec as { rules?: Array<{ host?: string }> } | undefined)?.rules ?? [];
    for (const r of rules) if (r.host) hosts.add(r.host);
  }
  return [...hosts].sort();
}

export interface ValidateResult {
  summary: ValidateSummary;
  warnings: Diagnostic[];
  /** Canonical compose YAML, when asked for. */
  composeYaml?: string;
  /** The Kubernetes objects (apply order); with placeholder volumes where no disk exists yet. */
  objects: KubeObject[];
  /** Their YAML, when asked for. */
  manifestYaml?: string;
}

/** Kubernetes objects as multi-document YAML (`---` before each, in the given order). */
export async function objectsToYaml(objects: KubeObject[]): Promise<string> {
  const { stringify } = await import('yaml');
  return objects.map((o) => `---\n${stringify(o, { lineWidth: 0 })}`).join('');
}

/**
 * Loads and checks the app: kompoxops.yml's app against the compose file, and
 * the conversion to Kubernetes objects (which finds what compose alone cannot:
 * an ingress port nobody publishes, an unsupported key). Throws KompoxError /
 * DiagnosticsError when it is not valid; nothing is written anywhere.
 */
export async function validateApp(ctx: AppContext, opts: ValidateOptions): Promise<ValidateResult> {
  const loaded = await loadApp(ctx, opts);
  const { buildAppManifest } = await import('./app-manifest.js');
  const { appConfigLocator } = await import('../config/index.js');
  const locateConfig = opts.locateConfig ?? appConfigLocator(ctx.app);
  const { pvInputs } = await import('./pv-sources.js');
  const m = await buildAppManifest(ctx, loaded, { volumes: pvInputs(ctx, opts.volumes), ...(locateConfig ? { locateConfig } : {}) });
  const warnings = [...loaded.warnings, ...m.warnings];
  const p = loaded.project;
  const services = Object.keys(p.services).sort();
  const summary: ValidateSummary = {
    app: ctx.app.name,
    services,
    composeVolumes: Object.keys(p.volumes ?? {}).sort(),
    appVolumes: ctx.app.volumes.map((v) => v.name),
    ports: services.flatMap((s) => (p.services[s]!.ports ?? []).map((port) => `${s}:${port.target}/${port.protocol}`)),
    files: loaded.files,
    objects: m.objects.length,
    hosts: ingressHosts(m.objects),
  };
  const result: ValidateResult = { summary, warnings, objects: m.objects };
  if (opts.compose) {
    const { projectToYaml } = await import('../compose/index.js');
    result.composeYaml = projectToYaml(p);
  }
  if (opts.manifest) result.manifestYaml = await objectsToYaml(m.objects);
  return result;
}
