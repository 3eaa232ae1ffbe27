// Entry point of the Kubernetes layer. Importing this module is cheap;
// @kubernetes/client-node is loaded by connectKubeconfig (it is heavy).
// It takes a kubeconfig (text or a file path) and knows nothing of providers:
// which kubeconfig a cluster uses is decided by the composition root (src/app).
import type { KubeClient } from '../domain/ports/kube.js';
import type { KubeconfigSource } from './kubeconfig.js';

export type * from '../domain/ports/kube.js';
export { KubeApiError } from './errors.js';
export type { KubeconfigSource } from './kubeconfig.js';
export { FIELD_MANAGER } from './client.js';
export { refString, toRef } from '../domain/ports/kube.js';

export interface ConnectOptions {
  /** Per-request timeout in ms (default 30 s). */
  timeoutMs?: number;
  /** Check the server answers (GET /version) before returning; default true. */
  verify?: boolean;
}

/** A client for the API server the kubeconfig names (its selected context). */
export async function connectKubeconfig(src: KubeconfigSource, opts: ConnectOptions = {}): Promise<KubeClient> {
  const { loadKubeConfig } = await import('./kubeconfig.js');
  const { HttpKubeClient } = await import('./client.js');
  const kc = await loadKubeConfig(src);
  const where = src.path ?? src.origin ?? 'kubeconfig';
  const client = new HttpKubeClient(kc, where, opts.timeoutMs);
  if (opts.verify ?? true) await client.version();
  return client;
}
