// The registry probe over the registry HTTP API (the OCI distribution spec):
// an anonymous HEAD of the image's manifest; on `401` with a Bearer challenge,
// an anonymous token from the challenge's realm for `repository:NAME:pull`,
// and the HEAD again. The manifest served = public; refused or not found for
// an anonymous user = private; anything else (no answer, timeout, a server
// error) = unknown. HTTPS, except plain HTTP for loopback registries (as
// Docker allows them). Loaded only by commands that deploy.
import type { Op } from '../domain/events.js';
import { DOCKER_HUB, type ImageRef } from '../domain/images.js';
import type { ImageVisibility, RegistryProbe } from '../domain/ports/registry.js';

export interface HttpProbeOptions {
  /** Per request, in ms (default 5 s). */
  timeoutMs?: number;
}

const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

function isLoopback(host: string): boolean {
  return host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '[::1]';
}

/** The registry's base URL: Docker Hub's API lives at registry-1.docker.io. */
export function registryBaseUrl(registry: string): string {
  if (registry === DOCKER_HUB) return 'https://registry-1.docker.io';
  const host = registry.replace(/:\d+$/, '');
  return `${isLoopback(host) ? 'http' : 'https'}://${registry}`;
}

/** `Bearer realm="…",service="…",scope="…"` → its parameters. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header) ?? ['', '', ''];
  const params: Record<string, string> = {};
  for (const p of (m[2] ?? '').matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) params[p[1]!.toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1');
  return { scheme: (m[1] ?? '').toLowerCase(), params };
}

type Verdict = { visibility: ImageVisibility; reason?: string };

export function httpRegistryProbe(opts: HttpProbeOptions = {}): RegistryProbe {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const request = (url: string, init: RequestInit, op: Op) => {
    const signals = [AbortSignal.timeout(timeoutMs), ...(op.signal ? [op.signal] : [])];
    return fetch(url, { ...init, redirect: 'follow', signal: AbortSignal.any(signals) });
  };
  return {
    async visibility(image: ImageRef, op: Op): Promise<Verdict> {
      const base = registryBaseUrl(image.registry);
      const reference = image.digest ?? image.tag ?? 'latest';
      const manifest = `${base}/v2/${image.repository}/manifests/${reference}`;
      const head = (token?: string) => request(manifest, { method: 'HEAD', headers: { accept: MANIFEST_TYPES, ...(token ? { authorization: `Bearer ${token}` } : {}) } }, op);
      const verdict = (status: number, anonymousToken: boolean): Verdict => {
        if (status >= 200 && status < 300) return { visibility: 'public' };
        if (status === 401 || status === 403) return { visibility: 'private', reason: `${status} for an anonymous pull${anonymousToken ? ' (with an anonymous token)' : ''}` };
        if (status === 404) return { visibility: 'private', reason: 'not found for an anonymous pull' };
        return { visibility: 'unknown', reason: `${image.registry} answered ${status}` };
      };
      try {
        const first = await head();
        if (first.status !== 401) return verdict(first.status, false);
        const challenge = parseChallenge(first.headers.get('www-authenticate') ?? '');
        if (challenge.scheme !== 'bearer' || !challenge.params.realm) return verdict(401, false);
        const url = new URL(challenge.params.realm);
        if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
        url.searchParams.set('scope', `repository:${image.repository}:pull`);
        const t = await request(url.toString(), { headers: { accept: 'application/json' } }, op);
        if (t.status === 401 || t.status === 403) return { visibility: 'private', reason: `the token service refused an anonymous token (${t.status})` };
        if (!t.ok) return { visibility: 'unknown', reason: `the token service of ${image.registry} answered ${t.status}` };
        const body = (await t.json().catch(() => ({}))) as { token?: string; access_token?: string };
        const token = body.token ?? body.access_token;
        if (!token) return { visibility: 'unknown', reason: `the token service of ${image.registry} gave no token` };
        return verdict((await head(token)).status, true);
      } catch (e) {
        const err = e as Error & { cause?: { code?: string } };
        const why = err.name === 'TimeoutError' ? `no answer from ${image.registry} within ${timeoutMs / 1000}s` : `${image.registry} cannot be reached (${err.cause?.code ?? err.message})`;
        return { visibility: 'unknown', reason: op.signal?.aborted ? 'interrupted' : why };
      }
    },
  };
}
