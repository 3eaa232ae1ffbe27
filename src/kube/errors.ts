// Turns what goes wrong between Kompox and an API server into one clear
// KompoxError each: unreachable server, expired credentials, missing RBAC
// permission, invalid object, conflict. The API server's own Status message is
// kept because it names the verb, resource and namespace precisely.
import { KompoxError } from '../domain/errors.js';

/** The `Status` object the API server returns with every error. */
export interface KubeStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; group?: string; kind?: string; causes?: { reason?: string; message?: string; field?: string }[] };
}

/** An error response of the API server (kept as `cause` of the KompoxError). */
export class KubeApiError extends Error {
  constructor(
    readonly code: number,
    readonly status: KubeStatus,
    readonly method: string,
    readonly path: string,
  ) {
    super(status.message ?? `HTTP ${code}`);
    this.name = 'KubeApiError';
  }
  get reason(): string | undefined {
    return this.status.reason;
  }
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);
const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/;

/** A network/TLS failure talking to `server`. */
export function networkError(err: NodeJS.ErrnoException, server: string): KompoxError {
  const code = err.code ?? '';
  if (TLS_CODES.test(code)) {
    return new KompoxError('unavailable', `cannot verify the TLS certificate of the Kubernetes API server at ${server}: ${err.message}`, {
      hint: 'Check certificate-authority(-data) of the cluster in the kubeconfig.',
      cause: err,
    });
  }
  const why =
    code === 'ECONNREFUSED'
      ? 'connection refused'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'host name not found'
        : code === 'ETIMEDOUT' || code === 'KOMPOX_TIMEOUT'
          ? 'timed out'
          : err.message || code;
  return new KompoxError('unavailable', `cannot reach the Kubernetes API server at ${server}: ${why}`, {
    hint: 'Check that the cluster is running and that the kubeconfig (server URL, context) is right.',
    cause: err,
  });
}

export function isNetworkError(err: unknown): err is NodeJS.ErrnoException {
  const code = (err as NodeJS.ErrnoException)?.code;
  return typeof code === 'string' && (NETWORK_CODES.has(code) || TLS_CODES.test(code) || code === 'KOMPOX_TIMEOUT');
}

/** What an API error means for the user. `what` names the operation, e.g. `apply Deployment ns/app`. */
export function apiError(err: KubeApiError, server: string, what: string): KompoxError {
  const msg = err.status.message ?? `HTTP ${err.code}`;
  switch (err.code) {
    case 401:
      return new KompoxError('auth', `the Kubernetes API server at ${server} rejected the credentials (401 Unauthorized) during ${what}`, {
        hint: 'The credentials in the kubeconfig are missing or expired: log in again (e.g. az aks get-credentials, aws eks update-kubeconfig, gcloud container clusters get-credentials) or refresh the token.',
        cause: err,
      });
    case 403:
      if (/because it is being terminated/.test(msg)) {
        return new KompoxError('conflict', `${what} failed: ${msg}`, {
          code: 'kube.terminating',
          hint: 'The namespace is still being deleted (Terminating): wait until it is gone, then retry. Without a running controller manager it never finishes; remove it with the cluster administrator.',
          cause: err,
        });
      }
      return new KompoxError('auth', `permission denied during ${what}: ${msg}`, {
        code: 'kube.forbidden',
        hint: permissionHint(msg),
        cause: err,
      });
    case 404:
      return new KompoxError('notfound', `${what} failed: ${msg}`, { code: 'kube.notfound', cause: err });
    case 409:
      // Conflict: a resourceVersion precondition failed or field managers disagree; AlreadyExists: a create lost a race
      return new KompoxError('conflict', `${what} failed: ${msg}`, { code: err.status.reason === 'AlreadyExists' ? 'kube.exists' : 'kube.conflict', cause: err });
    case 422:
    case 400: {
      const causes = err.status.details?.causes ?? [];
      const fields = causes.filter((c) => c.field).map((c) => `${c.field}: ${c.message}`);
      const isWrite = /apply|patch|create/.test(what);
      // an update that changes a field the server never lets change (PV source/node affinity, PVC spec, Deployment selector)
      const immutable = causes.some((c) => /immutable|may not change once set/.test(c.message ?? ''));
      return new KompoxError(isWrite ? 'config' : 'usage', `${what} was rejected by the API server: ${msg}`, {
        field: fields.length === 1 ? causes.find((c) => c.field)!.field : undefined,
        hint: immutable
          ? 'The object already exists with a different value in a field that cannot change after creation (named above). Delete that object and deploy again (PersistentVolumes use reclaim policy Retain: deleting a PV or PVC never deletes the disk).'
          : isWrite
            ? 'This usually means the app definition produced an invalid object; check the compose file and kompoxops.yml values named above.'
            : undefined,
        cause: err,
      });
    }
    default:
      return new KompoxError('unavailable', `${what} failed: the Kubernetes API server at ${server} answered ${err.code} ${err.status.reason ?? ''}: ${msg}`.replace(/\s+:/, ':'), {
        hint: 'Retry later; if it persists, check the API server health.',
        cause: err,
      });
  }
}

/** "User x cannot create resource y in API group g in the namespace n" → which permission to grant. */
export function permissionHint(message: string): string {
  const m = /cannot (\S+) resource "([^"]+)" in API group "([^"]*)"(?: in the namespace "([^"]+)"| at the cluster scope)?/.exec(message);
  if (!m) return 'Ask a cluster administrator for the missing RBAC permission.';
  const [, verb, resource, group, ns] = m;
  const res = group ? `${resource}.${group}` : resource;
  return `The identity in the kubeconfig needs permission to ${verb} ${res} ${ns ? `in namespace ${ns}` : 'at cluster scope'} (an RBAC ${ns ? 'Role/RoleBinding' : 'ClusterRole/ClusterRoleBinding'}); ask a cluster administrator.`;
}
