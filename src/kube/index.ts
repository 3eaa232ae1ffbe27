// Entry point of the Kubernetes layer. Importing this module is cheap;
// @kubernetes/client-node is loaded by connectKube (it is heavy).
import { KompoxError } from '../domain/errors.js';
import type { ClusterContext, ProviderDriver } from '../providers/driver.js';
import type { KubeClient } from './types.js';
import { defaultKubeconfigPath, expandPath, type KubeconfigSource } from './kubeconfig.js';

export type * from './types.js';
export { KubeApiError } from './errors.js';
export { expandPath, defaultKubeconfigPath, type KubeconfigSource } from './kubeconfig.js';
export { FIELD_MANAGER, describeRef, refOf } from './client.js';

export interface ConnectOptions {
  /** Directory of kompoxops.yml: a relative cluster.auth.kubeconfig resolves against it. */
  baseDir?: string;
  /** The provider driver: its clusterKubeconfig() is preferred when it returns text. */
  driver?: Pick<ProviderDriver, 'clusterKubeconfig'>;
  /** Per-request timeout in ms (default 30 s). */
  timeoutMs?: number;
  /** Check the server answers (GET /version) before returning; default true. */
  verify?: boolean;
}

/** Where the cluster's kubeconfig comes from: driver text, or cluster.auth (type kubectl). */
export async function resolveKubeconfigSource(ctx: ClusterContext, opts: ConnectOptions = {}): Promise<KubeconfigSource> {
  const text = opts.driver?.clusterKubeconfig ? await opts.driver.clusterKubeconfig(ctx) : undefined;
  if (text) return { text, context: ctx.cluster.auth.context, origin: `credentials from the ${ctx.provider.driver} driver for cluster ${ctx.cluster.name}` };
  const auth = ctx.cluster.auth;
  if (auth.type !== 'kubectl') {
    throw new KompoxError('config', `cluster.auth.type "${auth.type}" cannot be used with the ${ctx.provider.driver} driver here`, {
      field: 'cluster.auth.type',
      hint: 'Use `type: kubectl` with `kubeconfig` (and optionally `context`).',
    });
  }
  // like kubectl: without an explicit file, $KUBECONFIG's first entry or ~/.kube/config
  const path = auth.kubeconfig ? expandPath(auth.kubeconfig, opts.baseDir) : defaultKubeconfigPath();
  return { path, context: auth.context };
}

/** Connects to a kubeconfig directly (tests, kubeconfig export). */
export async function connectKubeconfig(src: KubeconfigSource, opts: Pick<ConnectOptions, 'timeoutMs' | 'verify'> = {}): Promise<KubeClient> {
  const { loadKubeConfig } = await import('./kubeconfig.js');
  const { HttpKubeClient } = await import('./client.js');
  const kc = await loadKubeConfig(src);
  const where = src.path ?? src.origin ?? 'kubeconfig';
  const client = new HttpKubeClient(kc, where, opts.timeoutMs);
  if (opts.verify ?? true) await client.version();
  return client;
}

/** A client for the app's (or cluster's) Kubernetes API server. */
export async function connectKube(ctx: ClusterContext, opts: ConnectOptions = {}): Promise<KubeClient> {
  return connectKubeconfig(await resolveKubeconfigSource(ctx, opts), opts);
}
