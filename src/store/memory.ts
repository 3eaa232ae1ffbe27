// Repositories held in memory: kompoxops loads kompoxops.yml into them, tests
// build them directly. Names are unique per kind (as in kompoxops.yml, where
// there is one of each); a later duplicate replaces the earlier one.
import type { App, Cluster, Provider, Service } from '../domain/model.js';
import type { Repositories } from '../domain/ports/repositories.js';

export interface MemoryContent {
  services?: Service[];
  providers?: Provider[];
  clusters?: Cluster[];
  apps?: App[];
}

function byName<T extends { name: string }>(items: T[] | undefined): Map<string, T> {
  return new Map((items ?? []).map((x) => [x.name, x]));
}

export function memoryRepositories(content: MemoryContent): Repositories {
  const services = byName(content.services);
  const providers = byName(content.providers);
  const clusters = byName(content.clusters);
  const apps = byName(content.apps);
  return {
    services: { get: async (n) => services.get(n), list: async () => [...services.values()] },
    providers: { get: async (n) => providers.get(n), list: async (s) => [...providers.values()].filter((p) => s === undefined || p.service === s) },
    clusters: { get: async (n) => clusters.get(n), list: async (p) => [...clusters.values()].filter((c) => p === undefined || c.provider === p) },
    apps: { get: async (n) => apps.get(n), list: async (c) => [...apps.values()].filter((a) => c === undefined || a.cluster === c) },
  };
}
