// Loading a kubeconfig, given as text (e.g. what a provider driver supplies)
// or as an absolute file path; which one a cluster uses is the composition
// root's decision (src/app), not this module's: it knows no providers. Every
// problem names the file and what to do.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeConfigLite, type KubeAccess } from './kubeconfig-lite.js';
import { KompoxError } from '../domain/errors.js';

export interface KubeconfigSource {
  /** File the kubeconfig came from (for messages and relative paths inside it). */
  path?: string;
  /** Kubeconfig text (driver-supplied or already read). */
  text?: string;
  /** Context to use; default: current-context. */
  context?: string;
  /** Where the choice came from, for messages, e.g. `kompoxops.yml cluster.auth`. */
  origin?: string;
}

/** The kubeconfig's text: as given, or read from its file (with a clear error when it is missing). */
export function kubeconfigText(src: KubeconfigSource): string {
  if (src.text !== undefined) return src.text;
  if (!src.path) throw new KompoxError('config', 'no kubeconfig was given', { field: 'cluster.auth.kubeconfig' });
  if (!existsSync(src.path)) {
    throw new KompoxError('config', `kubeconfig file ${src.path} does not exist`, {
      code: 'kubeconfig.missing',
      field: 'cluster.auth.kubeconfig',
      hint: 'Fix cluster.auth.kubeconfig or fetch credentials for the cluster first (e.g. az aks get-credentials / aws eks update-kubeconfig).',
    });
  }
  try {
    return readFileSync(src.path, 'utf8');
  } catch (e) {
    throw new KompoxError('config', `cannot read kubeconfig file ${src.path}: ${(e as Error).message}`, { field: 'cluster.auth.kubeconfig', cause: e });
  }
}

/**
 * Loads and checks a kubeconfig; the context is selected and verified to
 * exist. The result is a KubeConfigLite (./kubeconfig-lite.ts: client-node's
 * KubeConfig without its generated API), or client-node's own KubeConfig
 * for a cluster behind a proxy.
 */
export async function loadKubeConfig(src: KubeconfigSource): Promise<KubeAccess> {
  const kc = new KubeConfigLite();
  const where = src.path ?? src.origin ?? 'kubeconfig';
  // with a file, the location carries the path (formatError prints it); otherwise name the origin
  const pre = src.path ? '' : `${where}: `;
  const text = kubeconfigText(src);
  try {
    kc.loadFromString(text);
    if (src.path) kc.makePathsAbsolute(resolve(src.path, '..'));
  } catch (e) {
    const m = (e as Error).message.split('\n')[0];
    throw new KompoxError('config', `${pre}not a valid kubeconfig: ${m}`, {
      location: src.path ? { file: src.path } : undefined,
      hint: 'A kubeconfig is YAML with clusters, users, contexts and current-context (kubectl config view shows one).',
      cause: e,
    });
  }
  const contextName = src.context ?? kc.getCurrentContext();
  if (!contextName) {
    throw new KompoxError('config', `${pre}no context given and current-context is not set`, {
      location: src.path ? { file: src.path } : undefined,
      field: 'cluster.auth.context',
      hint: `Set cluster.auth.context in kompoxops.yml to one of: ${kc.getContexts().map((c) => c.name).join(', ') || '(none defined)'}.`,
    });
  }
  const ctx = kc.getContextObject(contextName);
  if (!ctx) {
    throw new KompoxError('config', `${pre}context "${contextName}" is not defined`, {
      location: src.path ? { file: src.path } : undefined,
      field: 'cluster.auth.context',
      hint: `Contexts in this kubeconfig: ${kc.getContexts().map((c) => c.name).join(', ') || '(none)'}.`,
    });
  }
  kc.setCurrentContext(contextName);
  const cluster = kc.getCluster(ctx.cluster);
  if (!cluster) {
    throw new KompoxError('config', `${pre}context "${contextName}" refers to cluster "${ctx.cluster}", which is not defined`, {
      location: src.path ? { file: src.path } : undefined,
    });
  }
  if (!/^https?:\/\//.test(cluster.server)) {
    throw new KompoxError('config', `${pre}cluster "${cluster.name}" has server "${cluster.server}", which is not an http(s) URL`, {
      location: src.path ? { file: src.path } : undefined,
    });
  }
  if (ctx.user && !kc.getUser(ctx.user)) {
    throw new KompoxError('config', `${pre}context "${contextName}" refers to user "${ctx.user}", which is not defined`, {
      location: src.path ? { file: src.path } : undefined,
    });
  }
  if (cluster.proxyUrl) return fullKubeConfig(text, src, contextName);
  return kc;
}

/** client-node's whole KubeConfig (its proxy agents), for the context already checked. */
async function fullKubeConfig(text: string, src: KubeconfigSource, contextName: string): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  kc.loadFromString(text);
  if (src.path) kc.makePathsAbsolute(resolve(src.path, '..'));
  kc.setCurrentContext(contextName);
  return kc;
}

/** A clear error for a failure while obtaining credentials (exec plugins, auth providers, unreadable cert files). */
export function credentialError(err: unknown, kc: KubeAccess, where: string): KompoxError {
  const user = kc.getCurrentUser();
  const exec = user?.exec as { command?: string } | undefined;
  const e = err as NodeJS.ErrnoException;
  if (exec?.command) {
    if (e?.code === 'ENOENT') {
      return new KompoxError('auth', `the credential plugin "${exec.command}" of kubeconfig user "${user!.name}" (${where}) could not be run: command not found`, {
        hint: `Install ${exec.command} (e.g. kubelogin, gke-gcloud-auth-plugin, aws CLI) and make sure it is on PATH.`,
        cause: err,
      });
    }
    const detail = String(e?.message ?? err).trim().split('\n').slice(0, 5).join(' ');
    return new KompoxError('auth', `the credential plugin "${exec.command}" of kubeconfig user "${user!.name}" (${where}) failed: ${detail || 'no output'}`, {
      hint: 'Log in again with your cloud CLI (az login / aws sso login / gcloud auth login) and retry.',
      cause: err,
    });
  }
  if (e?.code === 'ENOENT') {
    return new KompoxError('config', `${where}: a file named in the kubeconfig does not exist: ${e.path ?? e.message}`, {
      hint: 'Check client-certificate, client-key, certificate-authority and tokenFile paths.',
      cause: err,
    });
  }
  return new KompoxError('auth', `cannot get credentials for kubeconfig user "${user?.name ?? '?'}" (${where}): ${e?.message ?? String(err)}`, { cause: err });
}
