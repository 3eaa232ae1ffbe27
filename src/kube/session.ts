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

export async function openCluster(find: FindOptions, opts: { timeoutMs?: number } = {}): Promise<ClusterSession> {
  const { connectKube } = await import('./index.js');
  const base = await openClusterConfig(find);
  const kube = await connectKube(base.ctx, { baseDir: base.config.dir, driver: base.driver, timeoutMs: opts.timeoutMs });
  return { ...base, kube };
}

export async function openApp(find: FindOptions, opts: { timeoutMs?: number } = {}): Promise<AppSession> {
  const { requireApp } = await import('../config/index.js');
  const { connectKube } = await import('./index.js');
  const base = await openClusterConfig(find);
  const ctx = requireApp(base.config);
  const kube = await connectKube(ctx, { baseDir: base.config.dir, driver: base.driver, timeoutMs: opts.timeoutMs });
  return { ...base, ctx, kube };
}
