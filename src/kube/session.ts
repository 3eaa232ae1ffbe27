// Opening a cluster for a command: kompoxops.yml → context → driver → client.
// Shared by the app lifecycle and cluster commands so they all resolve the
// kubeconfig the same way (driver-supplied text first, then cluster.auth).
import type { AppContext } from '../domain/model.js';
import type { OpsConfig, FindOptions } from '../config/index.js';
import type { ClusterContext, ProviderDriver } from '../providers/driver.js';
import type { KubeClient } from './types.js';

export interface ClusterSession {
  config: OpsConfig;
  ctx: ClusterContext;
  driver: ProviderDriver;
  kube: KubeClient;
}

export interface AppSession extends ClusterSession {
  ctx: AppContext;
}

export async function openClusterConfig(find: FindOptions): Promise<{ config: OpsConfig; ctx: ClusterContext; driver: ProviderDriver }> {
  const { loadOpsConfig } = await import('../config/index.js');
  const { loadDriver } = await import('../providers/index.js');
  const config = await loadOpsConfig(find);
  const ctx: ClusterContext = { service: config.service, provider: config.provider, cluster: config.cluster };
  const driver = await loadDriver(config.provider);
  return { config, ctx, driver };
}

/**
 * Runs `fn` with the cluster's config and driver, and always releases the
 * driver afterwards: a driver may hold an SSH connection (K3s with K3S_SSH)
 * that would otherwise keep the CLI process alive after the command is done.
 */
export async function withClusterConfig<T>(find: FindOptions, fn: (s: { config: OpsConfig; ctx: ClusterContext; driver: ProviderDriver }) => Promise<T>): Promise<T> {
  const base = await openClusterConfig(find);
  try {
    return await fn(base);
  } finally {
    await base.driver.close?.();
  }
}

/** Runs `fn` with the app's session (config, driver, cluster client); the driver is released as in withClusterConfig. */
export async function withApp<T>(find: FindOptions, fn: (s: AppSession) => Promise<T>, opts: { timeoutMs?: number } = {}): Promise<T> {
  const { requireApp } = await import('../config/index.js');
  const { connectKube } = await import('./index.js');
  return withClusterConfig(find, async (base) => {
    const ctx = requireApp(base.config);
    const kube = await connectKube(ctx, { baseDir: base.config.dir, driver: base.driver, timeoutMs: opts.timeoutMs });
    return fn({ ...base, ctx, kube });
  });
}
