// kompoxops's composition: kompoxops.yml (found from -C/-f and the working
// directory) is loaded into an in-memory repository set, the context is built
// from it, and a session (driver, Kubernetes client) is opened for it with
// this process as the host: its environment (SSH agent, $KUBECONFIG) and home
// directory. Only the CLI and this module read the process's state.
import type { OpsConfig } from '../config/index.js';
import type { AppContext, ClusterContext } from '../domain/model.js';
import type { Repositories } from '../domain/ports/repositories.js';
import { processHost, type HostEnv } from './host.js';
import { withSession, type Session, type SessionOptions } from './session.js';

/** -C DIR and -f FILE, as the CLI parsed them. */
export interface OpsLocation {
  chdir?: string;
  file?: string;
}

export interface OpsProject {
  config: OpsConfig;
  repos: Repositories;
  host: HostEnv;
}

/** Loads kompoxops.yml into an in-memory repository set. */
export async function loadOps(where: OpsLocation, host: HostEnv = processHost()): Promise<OpsProject> {
  const { loadOpsConfig } = await import('../config/index.js');
  const { memoryRepositories } = await import('../store/memory.js');
  const config = await loadOpsConfig({ chdir: where.chdir, file: where.file, cwd: host.cwd });
  const repos = memoryRepositories({
    services: [config.service],
    providers: [config.provider],
    clusters: [config.cluster],
    apps: config.app ? [config.app] : [],
  });
  return { config, repos, host };
}

/** The session options of kompoxops: the process is the host. */
export function opsSessionOptions(p: OpsProject, over: Partial<SessionOptions> = {}): SessionOptions {
  return {
    driverHost: { env: { SSH_AUTH_SOCK: p.host.env.SSH_AUTH_SOCK }, homeDir: p.host.homeDir },
    configDir: p.config.dir,
    kubeconfigHost: { env: { KUBECONFIG: p.host.env.KUBECONFIG }, homeDir: p.host.homeDir },
    registryProbe: true,
    ...over,
  };
}

/** The cluster of kompoxops.yml. */
export async function opsClusterContext(p: OpsProject): Promise<ClusterContext> {
  const { clusterContext } = await import('./context.js');
  return clusterContext(p.repos, p.config.cluster.name);
}

/** The app of kompoxops.yml, or the config error saying it has none (or its compose file is missing). */
export async function opsAppContext(p: OpsProject): Promise<AppContext> {
  const { requireApp } = await import('../config/index.js');
  const { appContext } = await import('./context.js');
  requireApp(p.config);
  return appContext(p.repos, p.config.app!.name);
}

/** Runs `fn` with the cluster's session; the driver is always released. */
export async function withOpsCluster<T>(where: OpsLocation, fn: (s: Session<ClusterContext>, p: OpsProject) => Promise<T>, over?: Partial<SessionOptions>): Promise<T> {
  const p = await loadOps(where);
  return withSession(await opsClusterContext(p), opsSessionOptions(p, over), (s) => fn(s, p));
}

/** Runs `fn` with the app's session; the driver is always released. */
export async function withOpsApp<T>(where: OpsLocation, fn: (s: Session<AppContext>, p: OpsProject) => Promise<T>, over?: Partial<SessionOptions>): Promise<T> {
  const p = await loadOps(where);
  return withSession(await opsAppContext(p), opsSessionOptions(p, over), (s) => fn(s, p));
}

/**
 * The app's source as kompoxops reads it: the project directory of
 * kompoxops.yml (-C/-f), the host's environment for interpolation, its working
 * directory for file names in messages and its home directory for `~`. Use
 * cases only ever see the source.
 */
export async function opsAppSource(p: OpsProject): Promise<import('../domain/source.js').AppSource> {
  const { appSource } = await import('../config/app-source.js');
  return appSource(p.config, { env: p.host.env, displayDir: p.host.cwd, ...(p.host.homeDir ? { homeDir: p.host.homeDir } : {}) });
}
