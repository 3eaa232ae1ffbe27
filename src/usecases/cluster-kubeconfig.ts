// `cluster kubeconfig`: a self-contained kubeconfig for the cluster (one
// cluster, user and context; the app namespace as default namespace), written
// to a file, merged into an existing one (same-named entries replaced, others
// kept), or returned as text. Also used by `app kubectl` for its temporary
// kubeconfig. Credentials are copied as they are (exec plugins included).
import { existsSync, readFileSync, renameSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { KompoxError } from '../domain/errors.js';
import type { ClusterContext, ProviderDriver } from '../providers/driver.js';
import type { KubeconfigSource } from '../kube/kubeconfig.js';

type Doc = Record<string, unknown>;
type Named = { name: string; [k: string]: unknown };

export interface KubeconfigOptions {
  /** Name of the context (and cluster/user entries) in the output; default the cluster name. */
  contextName?: string;
  /** Default namespace of the context (usually the app namespace). */
  namespace?: string;
  baseDir?: string;
  driver?: Pick<ProviderDriver, 'clusterKubeconfig'>;
}

const FILE_KEYS = { cluster: ['certificate-authority'], user: ['client-certificate', 'client-key', 'tokenFile'] } as const;

function absolutize(entry: Record<string, unknown>, keys: readonly string[], dir: string | undefined): void {
  if (!dir) return;
  for (const k of keys) {
    const v = entry[k];
    if (typeof v === 'string' && v && !isAbsolute(v)) entry[k] = resolve(dir, v);
  }
}

/** The kubeconfig (as a YAML document object) for the cluster's selected context. */
export async function buildKubeconfig(ctx: ClusterContext, opts: KubeconfigOptions = {}): Promise<Doc> {
  const { resolveKubeconfigSource } = await import('../kube/index.js');
  const { loadKubeConfig } = await import('../kube/kubeconfig.js');
  const { parse } = await import('yaml');
  const src: KubeconfigSource = await resolveKubeconfigSource(ctx, { baseDir: opts.baseDir, driver: opts.driver });
  const kc = await loadKubeConfig(src); // validates file, context, cluster and user
  const text = src.text ?? readFileSync(src.path!, 'utf8');
  const raw = parse(text) as Doc;
  const contextName = kc.getCurrentContext();
  const dir = src.path ? dirname(src.path) : undefined;
  const find = (list: unknown, name: string) => ((Array.isArray(list) ? list : []) as Named[]).find((e) => e.name === name);
  const c = find(raw.contexts, contextName)!;
  const cctx = { ...(c.context as Record<string, unknown>) };
  const cluster = structuredClone(find(raw.clusters, String(cctx.cluster))!);
  const user = cctx.user ? structuredClone(find(raw.users, String(cctx.user))) : undefined;
  absolutize(cluster.cluster as Record<string, unknown>, FILE_KEYS.cluster, dir);
  if (user?.user) absolutize(user.user as Record<string, unknown>, FILE_KEYS.user, dir);
  const name = opts.contextName ?? ctx.cluster.name;
  const context: Record<string, unknown> = { cluster: name };
  if (user) context.user = name;
  if (opts.namespace) context.namespace = opts.namespace;
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: cluster.cluster }],
    users: user ? [{ name, user: user.user ?? {} }] : [],
    contexts: [{ name, context }],
    'current-context': name,
  };
}

/** Merges `add` into `base`: entries with the same name are replaced, others kept; current-context becomes add's. */
export function mergeKubeconfig(base: Doc, add: Doc): Doc {
  const out: Doc = { ...base, apiVersion: base.apiVersion ?? 'v1', kind: base.kind ?? 'Config' };
  for (const key of ['clusters', 'users', 'contexts']) {
    const existing = (Array.isArray(base[key]) ? base[key] : []) as Named[];
    const added = (Array.isArray(add[key]) ? add[key] : []) as Named[];
    const names = new Set(added.map((e) => e.name));
    out[key] = [...existing.filter((e) => !names.has(e.name)), ...added];
  }
  out['current-context'] = add['current-context'];
  return out;
}

export async function kubeconfigYaml(doc: Doc): Promise<string> {
  const { toYamlText } = await import('../domain/yaml-text.js');
  return toYamlText(doc);
}

export interface WriteOptions {
  merge?: boolean;
  force?: boolean;
}

/** Writes (mode 600) or merges into `file`; never replaces an existing file without merge or force. */
export async function writeKubeconfig(file: string, doc: Doc, opts: WriteOptions = {}): Promise<{ file: string; merged: boolean }> {
  let out = doc;
  let merged = false;
  if (existsSync(file)) {
    if (opts.merge) {
      const { parse } = await import('yaml');
      let base: unknown;
      try {
        base = parse(readFileSync(file, 'utf8'));
      } catch (e) {
        throw new KompoxError('config', `${file}: cannot merge into it: not valid YAML (${(e as Error).message.split('\n')[0]})`, { location: { file } });
      }
      if (base !== null && base !== undefined && (typeof base !== 'object' || Array.isArray(base))) {
        throw new KompoxError('config', `${file}: cannot merge into it: not a kubeconfig`, { location: { file } });
      }
      out = mergeKubeconfig((base as Doc) ?? {}, doc);
      merged = true;
    } else if (!opts.force) {
      throw new KompoxError('conflict', `${file} already exists`, { hint: 'Use --merge to add the cluster to it, --force to replace it, or -o - to print.' });
    }
  }
  const tmp = `${file}.kompox-${process.pid}.tmp`;
  writeFileSync(tmp, await kubeconfigYaml(out), { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return { file, merged };
}
