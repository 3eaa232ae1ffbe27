// Registry credentials as Kubernetes uses them: a Docker config.json (`auths`)
// stored as a `kubernetes.io/dockerconfigjson` Secret, matched against image
// references with the kubelet's rules (pkg/credentialprovider/keyring.go). No
// I/O; no value of a credential ever goes into a message.
import { KompoxError } from './errors.js';
import { canonicalRegistry, type ImageRef } from './images.js';

/** The Secret type and data key Kubernetes reads pull credentials from. */
export const DOCKER_CONFIG_JSON_TYPE = 'kubernetes.io/dockerconfigjson';
export const DOCKER_CONFIG_JSON_KEY = '.dockerconfigjson';

/** One `auths` entry, as the kubelet reads it (DockerConfigEntry). */
interface AuthEntry {
  username?: string;
  password?: string;
  auth?: string;
  email?: string;
}

export interface DockerConfig {
  /** The minimal config.json Kubernetes needs: `{"auths": {...}}` with only the fields the kubelet reads. */
  json: string;
  /** The `auths` keys as written (registry names, possibly URLs): names, never secret. */
  registries: string[];
}

const ENTRY_FIELDS = ['username', 'password', 'auth', 'email'] as const;

/** `auth` is base64 of `user:password`. */
function authDecodes(auth: string): boolean {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(auth)) return false;
  return Buffer.from(auth, 'base64').toString('utf8').includes(':');
}

/** Where in `text` a JSON.parse error happened, as line:column (V8 says `position N`); the message itself quotes the text, so it is never shown. */
function jsonErrorLine(text: string, e: unknown): { line: number; column: number } | undefined {
  const msg = (e as Error).message;
  const lc = /\(line (\d+) column (\d+)\)/.exec(msg);
  if (lc) return { line: Number(lc[1]), column: Number(lc[2]) };
  const m = /position (\d+)/.exec(msg);
  if (!m) return undefined;
  const before = text.slice(0, Number(m[1]));
  const lines = before.split('\n');
  return { line: lines.length, column: lines.at(-1)!.length + 1 };
}

/**
 * Checks and minimises a Docker config.json (`docker login` writes one) for a
 * pull Secret: JSON with an `auths` object whose entries carry usable
 * credentials (`auth`, or `username` and `password`). Entries of a
 * credential store (`credsStore`, `credHelpers`: Docker Desktop keeps the
 * passwords in the OS keychain and writes `{}` here) cannot be used by a
 * cluster and are refused with what to do. `file` names the input in messages.
 */
export function parseDockerConfig(text: string, file: string): DockerConfig {
  const fail = (message: string, hint: string, location?: { line: number; column: number }): never => {
    throw new KompoxError('usage', message, { code: 'secret.pull.invalid', location: { file, ...location }, details: { file }, hint });
  };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return fail('is not valid JSON (the content is not shown: it holds credentials)', 'Give the config.json that docker login (or podman login --authfile) wrote.', jsonErrorLine(text, e));
  }
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(doc) || !isObject(doc.auths)) {
    return fail('has no "auths" object', 'A Docker config.json lists its registries under "auths", e.g. {"auths": {"registry.example.com": {"auth": "…"}}}.');
  }
  const store = typeof doc.credsStore === 'string' ? doc.credsStore : undefined;
  const helpers = isObject(doc.credHelpers) ? Object.keys(doc.credHelpers) : [];
  const auths: Record<string, AuthEntry> = {};
  const unusable: string[] = [];
  for (const [registry, raw] of Object.entries(doc.auths).sort(([a], [b]) => a.localeCompare(b))) {
    if (!isObject(raw)) return fail(`auths["${registry}"] is not an object`, 'Each registry maps to {"auth": "base64 of user:password"} or {"username": …, "password": …}.');
    const entry: AuthEntry = {};
    for (const f of ENTRY_FIELDS) {
      const v = raw[f];
      if (v === undefined) continue;
      if (typeof v !== 'string') return fail(`auths["${registry}"].${f} is not a string`, 'Give the config.json that docker login wrote.');
      entry[f] = v;
    }
    if (entry.auth !== undefined && !authDecodes(entry.auth)) {
      return fail(`auths["${registry}"].auth is not base64 of user:password`, 'Write it as base64 of "user:password" (e.g. the output of: printf %s user:password | base64), or give "username" and "password".');
    }
    if (entry.auth === undefined && !(entry.username && entry.password)) {
      unusable.push(registry);
      continue;
    }
    auths[registry] = entry;
  }
  if (unusable.length || Object.keys(auths).length === 0) {
    const where = store ? ` (Docker keeps them in the credential store "${store}")` : helpers.length ? ` (Docker gets them from credential helpers)` : '';
    const names = unusable.length ? `auths ${unusable.map((r) => `"${r}"`).join(', ')} ${unusable.length === 1 ? 'has' : 'have'} no credentials` : 'auths lists no registry';
    return fail(`${names}${where}`, 'A cluster can only use credentials written in the file itself. Write a config without a credential store, e.g. log in with DOCKER_CONFIG pointing to an empty directory (docker login REGISTRY), and give that directory\'s config.json.');
  }
  return { json: JSON.stringify({ auths }), registries: Object.keys(auths) };
}

/** The `auths` keys of a stored config (the names only); undefined when it cannot be read. */
export function dockerConfigRegistries(json: string): string[] | undefined {
  try {
    const doc = JSON.parse(json) as { auths?: Record<string, unknown> };
    return doc && typeof doc.auths === 'object' && doc.auths ? Object.keys(doc.auths).sort() : undefined;
  } catch {
    return undefined;
  }
}

interface CredentialKey {
  hostParts: string[];
  port: string;
  path: string;
}

/**
 * An `auths` key as the kubelet reads it: scheme removed, `/v1/` or `/v2/`
 * dropped from the path (the Docker client treats them as the host alone),
 * the host split into its labels (each may be a glob, e.g. `*.example.com`).
 */
function credentialKey(key: string): CredentialKey | undefined {
  let url: URL;
  try {
    url = new URL(/^https?:\/\//i.test(key) ? key : `https://${key}`);
  } catch {
    return undefined;
  }
  let path = decodeURIComponent(url.pathname);
  if (path.startsWith('/v2/') || path.startsWith('/v1/')) path = path.slice(3);
  if (path === '/') path = '';
  // the host as written (URL lower-cases it and would escape the glob's `*`)
  const hostText = key.replace(/^https?:\/\//i, '').split('/')[0]!;
  const colon = hostText.lastIndexOf(':');
  const host = colon > 0 ? hostText.slice(0, colon) : hostText;
  const port = colon > 0 ? hostText.slice(colon + 1) : '';
  return { hostParts: canonicalRegistry(host).split('.'), port, path };
}

/** filepath.Match for one host label: `*` any run of characters, `?` one, `[...]` a class. */
function globMatch(glob: string, text: string): boolean {
  const re = glob.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  try {
    return new RegExp(`^${re}$`, 'i').test(text);
  } catch {
    return glob.toLowerCase() === text.toLowerCase();
  }
}

/**
 * Whether the credentials stored under `key` apply to `image` (the kubelet's
 * URLsMatch): same port, same number of host labels, each matching its glob,
 * and the key's path a prefix of the image's repository path.
 */
export function credentialMatches(key: string, image: ImageRef): boolean {
  const k = credentialKey(key);
  if (!k) return false;
  const colon = image.registry.lastIndexOf(':');
  const host = colon > 0 ? image.registry.slice(0, colon) : image.registry;
  const port = colon > 0 ? image.registry.slice(colon + 1) : '';
  const parts = host.split('.');
  if (k.port !== port || k.hostParts.length !== parts.length) return false;
  if (!k.hostParts.every((g, i) => globMatch(g, parts[i]!))) return false;
  return `/${image.repository}`.startsWith(k.path);
}

/** The `auths` keys among `registries` that give credentials for `image`. */
export function credentialsFor(registries: readonly string[], image: ImageRef): string[] {
  return registries.filter((r) => credentialMatches(r, image));
}
