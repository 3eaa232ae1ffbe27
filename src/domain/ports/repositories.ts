// Where the resource model (spec: Service, Provider, Cluster, App) is kept.
// kompoxops loads kompoxops.yml into an in-memory set (src/store/memory.ts);
// kompoxsvc will keep them in a database. The composition root (src/app)
// builds contexts from them. Types only.
import type { App, Cluster, Provider, Service } from '../model.js';

export interface ServiceRepo {
  get(name: string): Promise<Service | undefined>;
  list(): Promise<Service[]>;
}

export interface ProviderRepo {
  get(name: string): Promise<Provider | undefined>;
  /** Providers of one service, or all. */
  list(service?: string): Promise<Provider[]>;
}

export interface ClusterRepo {
  get(name: string): Promise<Cluster | undefined>;
  /** Clusters of one provider, or all. */
  list(provider?: string): Promise<Cluster[]>;
}

export interface AppRepo {
  get(name: string): Promise<App | undefined>;
  /** Apps on one cluster, or all. */
  list(cluster?: string): Promise<App[]>;
}

export interface Repositories {
  services: ServiceRepo;
  providers: ProviderRepo;
  clusters: ClusterRepo;
  apps: AppRepo;
}
