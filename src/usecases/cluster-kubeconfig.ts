// `cluster kubeconfig`: a self-contained kubeconfig for the cluster (one
// cluster, user and context; the app namespace as default namespace), built
// from the kubeconfig the composition root resolved for the cluster (driver
// text or the cluster.auth file), and merged into another one (same-named
// entries replaced, others kept). Also used by `app kubectl`. Credentials are
// copied as they are (exec plugins included). Writing it to a file is the
// front end's business.
import { dirname, isAbsolute, resolve } from 'node:path';
import type { ClusterContext } from '../domain/model.js';
import type { KubeconfigSource } from '../kube/kubeconfig.js';

type Doc = Record<string, unknown>;
type Named = { name: string; [k: string]: unknown };

export interface KubeconfigOptions {
  /** Name of the context (and cluster/user entries) in the output; default the cluster name. */
  contextName?: string;
  /** Default namespace of the context (usually the app namespace). */
  namespace?: string;
}

const FILE_KEYS = { cluster: ['certificate-authority'], user: ['client-certificate', 'client-key', 'tokenFile'] } as const;

function absolutize(entry: Record<string, unknown>, keys: readonly string[], dir: string | undefined): void {
  if (!dir) return;
  for (const k of keys) {
    const v = entry[k];
    if (typeof v === 'string' && v && !isAbsolute(v)) entry[k] = resolve(dir, v);
  }
}

/** The kubeconfig (as a YAML document object) for the selected context of `src`. */
export async function buildKubeconfig(ctx: ClusterContext, src: KubeconfigSource, opts: KubeconfigOptions = {}): Promise<Doc> {
  const { kubeconfigText, loadKubeConfig } = await import('../kube/kubeconfig.js');
  const { parse } = await import('yaml');
  const kc = await loadKubeConfig(src); // validates file, context, cluster and user
  const raw = parse(kubeconfigText(src)) as Doc;
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
  const { stringify } = await import('yaml');
  return stringify(doc, { lineWidth: 0 });
}

