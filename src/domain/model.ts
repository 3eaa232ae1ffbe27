// The Kompox resource model (spec: Service, Provider, Cluster, App), shared by
// kompoxops (which reads it from kompoxops.yml) and kompoxsvc (which stores it).
// No I/O here.

export const DRIVERS = ['aks', 'eks', 'gke', 'oke', 'k3s'] as const;
export type DriverName = (typeof DRIVERS)[number];

export type Settings = Record<string, string>;

export interface Service {
  name: string; // RFC 1123 label
}

export interface Provider {
  name: string;
  service: string;
  driver: DriverName;
  settings: Settings;
}

export interface ClusterAuth {
  type: string; // "kubectl" (kubeconfig + context) or a driver-specific type
  kubeconfig?: string;
  context?: string;
}

export interface ClusterIngress {
  controller: string; // "traefik"
  namespace: string; // default "traefik"
}

export interface Cluster {
  name: string;
  provider: string;
  auth: ClusterAuth;
  ingress: ClusterIngress;
  domain?: string;
  settings: Settings;
}

/** A data volume of an app (extension `app.volumes`; default: one volume named `default`). */
export interface AppVolume {
  name: string;
  /** Size in GiB, when given. */
  sizeGiB?: number;
  options: Settings;
}

/**
 * Where the app's pod may run (kompoxops.yml `app.deployment`): node pools
 * (the nodes' `kompox.dev/node-pool` label) and availability zones (their
 * `topology.kubernetes.io/zone` label). Absent or empty: anywhere.
 */
export interface AppDeployment {
  pools?: string[];
  zones?: string[];
}

export interface App {
  name: string;
  cluster: string;
  /** Compose YAML text (inline, or read from the file `composePath`). */
  compose: string;
  /** Absolute path of the compose file when the compose came from a file. */
  composePath?: string;
  /** Project directory: relative bind mounts, env_file and .env resolve against it. */
  projectDir?: string;
  /** Custom hosts, `http_80: www.example.com`. */
  ingress: Record<string, string>;
  resources: Record<string, string>;
  settings: Settings;
  volumes: AppVolume[];
  /** Node pools and zones the pod is placed in; absent: no constraint. */
  deployment?: AppDeployment;
}

/** Everything an operation on one cluster needs to know about where it lives. */
export interface ClusterContext {
  service: Service;
  provider: Provider;
  cluster: Cluster;
}

/** Everything an operation on one app needs to know about where it lives. */
export interface AppContext extends ClusterContext {
  app: App;
}

/**
 * A setting looked up where it is most specific: app.settings, then
 * cluster.settings, then provider.settings. Blank values count as unset.
 * `field` names where it was found, for messages.
 */
export function lookupSetting(
  ctx: { provider: Pick<Provider, 'settings'>; cluster?: Pick<Cluster, 'settings'>; app?: { settings?: Settings } },
  key: string,
): { value: string; field: string } | undefined {
  const layers: Array<[Settings | undefined, string]> = [
    [ctx.app?.settings, 'app.settings'],
    [ctx.cluster?.settings, 'cluster.settings'],
    [ctx.provider.settings, 'provider.settings'],
  ];
  for (const [settings, where] of layers) {
    const v = settings?.[key];
    if (v !== undefined && String(v).trim() !== '') return { value: String(v).trim(), field: `${where}.${key}` };
  }
  return undefined;
}

export const DEFAULT_VOLUME = 'default';

/** The app's volumes: `app.volumes`, or the implicit single volume `default`. */
export function appVolumes(ctx: { app: Pick<App, 'volumes'> }): AppVolume[] {
  return ctx.app.volumes?.length ? ctx.app.volumes : [{ name: DEFAULT_VOLUME, options: {} }];
}

/** A provider disk that holds one app volume's data. */
export interface Disk {
  /** Kompox name of the disk (unique within app+volume). */
  name: string;
  volume: string;
  /** Provider-native id (Azure resource id, EBS volume id, K3s path...). */
  id: string;
  sizeGiB: number;
  zone?: string;
  createdAt: string; // RFC 3339
  /** True when this disk is the one bound to the app's volume. */
  current?: boolean;
  /** Bytes actually used, when the provider can tell (K3s: sum of file sizes). */
  usedBytes?: number;
  /** Created pending (not yet visible, see DiskCreateSpec.pending); only lists asking for pending disks show it. */
  pending?: boolean;
  tags: Record<string, string>;
}

export interface Snapshot {
  name: string;
  volume: string;
  id: string;
  sizeGiB: number;
  createdAt: string;
  /** Provider id of the disk the snapshot was taken from. */
  sourceDiskId?: string;
  /** Bytes the snapshot occupies, when the provider can tell (K3s: archive size). */
  usedBytes?: number;
  /** SHA-256 of the snapshot's portable archive, when it is stored as one (K3s). */
  sha256?: string;
  tags: Record<string, string>;
}

/** Tag keys written on every disk and snapshot (spec). */
export const TAG_APP = 'kompox-app';
export const TAG_CREATED_AT = 'kompox-created-at';
export const TAG_VOLUME = 'kompox-volume';
export const TAG_NAME = 'kompox-name';
/**
 * When the disk was last made current (RFC 3339 with milliseconds). Not in the
 * spec: recorded on the disk itself so that an app moved to another cluster,
 * where the namespace records nothing yet, picks the disk it used last.
 */
export const TAG_ATTACHED_AT = 'kompox-attached-at';
/**
 * On a disk that is not yet visible (DiskCreateSpec.pending: an import being
 * filled and verified): when it was created. Lists leave such disks out; the
 * driver's reveal removes the tag.
 */
export const TAG_PENDING = 'kompox-pending';

/** Namespace annotations that hold an app's state (spec). */
export const ANN_APP = 'kompox.dev/app';
export const ANN_PROVIDER = 'kompox.dev/provider';
export const ANN_DISK_CURRENT = 'kompox.dev/disk-current-id';
export const ANN_DISK_PREVIOUS = 'kompox.dev/disk-previous-id';
