// What the fake kubelet resolves for a container before starting it, as the
// real one does (pkg/kubelet: image pull secrets, makeEnvironmentVariables):
// - pull credentials: an image from a registry the test made private pulls
//   only with a matching entry in one of the pod's imagePullSecrets
//   (kubernetes.io/dockerconfigjson Secrets of its namespace); otherwise
//   ErrImagePull ("pull access denied"). A referenced Secret that does not
//   exist gives the FailedToRetrieveImagePullSecret event and is skipped.
// - the environment: envFrom sources in order (a later one wins), then env
//   (wins over every envFrom), with $(VAR) expansion of env values; a missing
//   Secret or ConfigMap (or key) that is not optional fails the container
//   with CreateContainerConfigError.
// Self-contained on purpose: it shares no code with Kompox's own parsing.
import type { ApiCore } from '../apiserver.js';
import type { Obj } from '../store.js';
import { type Any, nameOf, nsOf } from './util.js';

/** A registry that refuses anonymous pulls: only these credentials pull from it. */
export interface PrivateRegistry {
  /** host[:port], e.g. registry.example.com or 127.0.0.1:5000 */
  registry: string;
  username: string;
  password: string;
}

const HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

function hostOf(image: string): string {
  const first = image.split('/')[0]!;
  const host = image.includes('/') && (/[.:]/.test(first) || first === 'localhost') ? first.toLowerCase() : 'docker.io';
  return HUB.has(host) ? 'docker.io' : host;
}

function keyHost(key: string): string {
  const h = key.replace(/^https?:\/\//i, '').split('/')[0]!.toLowerCase();
  return HUB.has(h) ? 'docker.io' : h;
}

function entryCredentials(e: Any): { username?: string; password?: string } {
  if (typeof e?.auth === 'string') {
    const text = Buffer.from(e.auth, 'base64').toString('utf8');
    const i = text.indexOf(':');
    if (i > 0) return { username: text.slice(0, i), password: text.slice(i + 1) };
  }
  return { username: e?.username, password: e?.password };
}

export type PullVerdict = { ok: true } | { ok: false; message: string };

/** Whether the pod may pull `image`; events for pull secrets it references but that do not exist. */
export function checkPull(api: ApiCore, pod: Obj, image: string, registries: readonly PrivateRegistry[], event: (reason: string, message: string) => void): PullVerdict {
  const secrets = api.kind('v1', 'Secret');
  const refs = (((pod.spec as Any)?.imagePullSecrets ?? []) as Any[]).map((r) => String(r.name));
  const found: Obj[] = [];
  const missing: string[] = [];
  for (const name of refs) {
    const s = api.store.get(secrets, nsOf(pod), name);
    if (s && s.type === 'kubernetes.io/dockerconfigjson') found.push(s);
    else missing.push(name);
  }
  if (missing.length) event('FailedToRetrieveImagePullSecret', `Unable to retrieve some image pull secrets (${missing.join(', ')}); attempting to pull the image may not succeed.`);
  const host = hostOf(image);
  const reg = registries.find((r) => r.registry.toLowerCase() === host);
  if (!reg) return { ok: true };
  for (const s of found) {
    let cfg: Any;
    try {
      cfg = JSON.parse(Buffer.from(String((s.data as Any)?.['.dockerconfigjson'] ?? ''), 'base64').toString('utf8'));
    } catch {
      continue;
    }
    for (const [key, entry] of Object.entries((cfg?.auths ?? {}) as Record<string, Any>)) {
      if (keyHost(key) !== host) continue;
      const c = entryCredentials(entry);
      if (c.username === reg.username && c.password === reg.password) return { ok: true };
    }
  }
  return {
    ok: false,
    message: `failed to pull and unpack image "${image}": failed to resolve reference "${image}": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed`,
  };
}

export type EnvVerdict = { ok: true; env: Record<string, string> } | { ok: false; message: string };

/** `$(VAR)` → its value when defined (else kept as written); `$$` → `$` (k8s.io/kubernetes third_party/forked/golang/expansion). */
function expand(value: string, vars: Record<string, string>): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (ch !== '$' || i + 1 >= value.length) {
      out += ch;
      continue;
    }
    const next = value[i + 1]!;
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '(') {
      const end = value.indexOf(')', i + 2);
      if (end < 0) {
        out += value.slice(i);
        break;
      }
      const name = value.slice(i + 2, end);
      out += Object.prototype.hasOwnProperty.call(vars, name) ? vars[name] : `$(${name})`;
      i = end;
    } else out += ch;
  }
  return out;
}

/** The container's environment as the kubelet builds it, or why the container cannot be created. */
export function resolveEnv(api: ApiCore, pod: Obj, container: Any): EnvVerdict {
  const secrets = api.kind('v1', 'Secret');
  const configMaps = api.kind('v1', 'ConfigMap');
  const ns = nsOf(pod);
  const source = (kind: 'Secret' | 'ConfigMap', name: string): Record<string, string> | undefined => {
    const o = api.store.get(kind === 'Secret' ? secrets : configMaps, ns, name);
    if (!o) return undefined;
    const data = (o.data ?? {}) as Record<string, string>;
    return kind === 'Secret' ? Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])) : { ...data };
  };
  const env: Record<string, string> = {};
  for (const from of (container.envFrom ?? []) as Any[]) {
    const kind = from.secretRef ? 'Secret' : 'ConfigMap';
    const ref = from.secretRef ?? from.configMapRef ?? {};
    const data = source(kind, String(ref.name));
    if (!data) {
      if (ref.optional) continue;
      return { ok: false, message: `${kind === 'Secret' ? 'secret' : 'configmap'} "${ref.name}" not found` };
    }
    for (const [k, v] of Object.entries(data)) env[`${from.prefix ?? ''}${k}`] = v;
  }
  for (const e of (container.env ?? []) as Any[]) {
    if (e.valueFrom) {
      const ref = e.valueFrom.secretKeyRef ?? e.valueFrom.configMapKeyRef;
      if (!ref) continue; // fieldRef / resourceFieldRef: not modelled
      const kind = e.valueFrom.secretKeyRef ? 'Secret' : 'ConfigMap';
      const data = source(kind, String(ref.name));
      if (!data || data[ref.key] === undefined) {
        if (ref.optional) continue;
        return { ok: false, message: data ? `couldn't find key ${ref.key} in ${kind} ${ns}/${ref.name}` : `${kind === 'Secret' ? 'secret' : 'configmap'} "${ref.name}" not found` };
      }
      env[e.name] = data[ref.key]!;
    } else env[e.name] = expand(String(e.value ?? ''), env);
  }
  return { ok: true, env };
}

export const podKey = (pod: Obj, container: string) => `${nsOf(pod)}/${nameOf(pod)}/${container}`;
