// Contexts from repositories: an app → its cluster → provider → service. One
// place turns names into the context every use case takes.
import { KompoxError } from '../domain/errors.js';
import type { AppContext, ClusterContext } from '../domain/model.js';
import type { Repositories } from '../domain/ports/repositories.js';

function missing(kind: string, name: string, from?: string): KompoxError {
  return new KompoxError('notfound', `${kind} "${name}" does not exist${from ? ` (named by ${from})` : ''}`, { code: `${kind}.notfound`, details: { [kind]: name } });
}

export async function clusterContext(repos: Repositories, cluster: string): Promise<ClusterContext> {
  const c = await repos.clusters.get(cluster);
  if (!c) throw missing('cluster', cluster);
  const provider = await repos.providers.get(c.provider);
  if (!provider) throw missing('provider', c.provider, `cluster ${c.name}`);
  const service = await repos.services.get(provider.service);
  if (!service) throw missing('service', provider.service, `provider ${provider.name}`);
  return { service, provider, cluster: c };
}

export async function appContext(repos: Repositories, app: string): Promise<AppContext> {
  const a = await repos.apps.get(app);
  if (!a) throw missing('app', app);
  return { ...(await clusterContext(repos, a.cluster)), app: a };
}
