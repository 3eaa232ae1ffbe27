// Loading an app's compose project, and `app validate`: everything a later
// deploy would read, checked without touching a cluster. Plain parameters in,
// data out (the CLI prints; the PaaS server will call the same functions).
import type { LoadedProject } from '../compose/index.js';
import { KompoxError, type Diagnostic, type Location } from '../domain/errors.js';
import type { AppContext } from '../domain/model.js';
import type { AppSource } from '../domain/source.js';
import type { KubeObject } from '../domain/ports/kube.js';
import type { DriverVolumes } from '../domain/ports/driver.js';
import type { AppSecretRefs } from '../convert/types.js';

export interface AppLoadOptions {
  /** Active compose profiles (`--profile`). */
  profiles?: string[];
}

/**
 * The app's compose project, read from `source` only: its compose text or files,
 * its project files and its variables (the front end decides what they are).
 */
export async function loadApp(ctx: AppContext, source: AppSource, opts: AppLoadOptions = {}): Promise<LoadedProject> {
  const { loadCompose } = await import('../compose/index.js');
  const compose = source.compose;
  if (compose !== undefined && 'text' in compose && !compose.text.trim()) {
    throw new KompoxError('config', `app ${ctx.app.name} has no compose text`, { field: 'app.compose', hint: 'Give app.compose a file name or the compose YAML.' });
  }
  return loadCompose({ source, ...(opts.profiles ? { profiles: opts.profiles } : {}) });
}

export interface ValidateOptions extends AppLoadOptions {
  /** Produce the canonical compose YAML. */
  compose?: boolean;
  /** Produce the Kubernetes manifest YAML (multi-document, apply order). The conversion itself always runs. */
  manifest?: boolean;
  /** Positions in kompoxops.yml (or wherever the app's settings came from), so app.* problems name file:line:column. */
  locateConfig?: (path: ReadonlyArray<string | number>) => Location | undefined;
  /** The driver's pure volume facts (placeholder PV sources: no disk exists yet). */
  volumes: DriverVolumes;
  /** The app's stored secrets (names only), when the front end knows them: the manifest references them as a deploy would. */
  secrets?: AppSecretRefs;
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
  const { toYamlDocuments } = await import('../domain/yaml-text.js');
  return toYamlDocuments(objects);
}

/**
 * Loads and checks the app: kompoxops.yml's app against the compose file, and
 * the conversion to Kubernetes objects (which finds what compose alone cannot:
 * an ingress port nobody publishes, an unsupported key). Throws KompoxError /
 * DiagnosticsError when it is not valid; nothing is written anywhere.
 */
export async function validateApp(ctx: AppContext, source: AppSource, opts: ValidateOptions): Promise<ValidateResult> {
  const loaded = await loadApp(ctx, source, opts);
  const { buildAppManifest } = await import('./app-manifest.js');
  const { pvInputs } = await import('./pv-sources.js');
  const m = await buildAppManifest(ctx, loaded, {
    volumes: pvInputs(ctx, opts.volumes),
    ...(opts.locateConfig ? { locateConfig: opts.locateConfig } : {}),
    ...(opts.secrets ? { secrets: opts.secrets } : {}),
  });
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
