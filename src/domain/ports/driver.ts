// The port every provider implements (AKS, EKS, GKE, OKE, K3s), split by
// what a provider does: the cluster, its node pools, the volume class and PV
// source (pure data), disks, snapshots, and (K3s only) direct host transfer.
//
// Drivers are stateless: everything is read back from the provider (tags,
// metadata), names are deterministic, operations are idempotent where that is
// safe. What a pure function needs to know about the cluster (ClusterFacts)
// is read by the use case from Kubernetes and passed in. Every method that
// does I/O takes an Op: an AbortSignal and an event sink for progress.
//
// A driver lacking an operation omits it (or the whole part); callers reach
// optional parts through requirePart, which throws the typed `unsupported`
// error ("X is not supported by the Y driver").
import { KompoxError, unsupported } from '../errors.js';
import type { Op } from '../events.js';
import type { KubernetesVersion } from '../kube-version.js';
import { lookupSetting, type AppContext, type AppVolume, type ClusterContext, type Disk, type DriverName, type Snapshot } from '../model.js';

// ---------------------------------------------------------------- facts

/** What a driver may say about itself; front ends and use cases adapt (e.g. warn about non-atomic snapshots). */
export interface DriverCapabilities {
  /**
   * False when snapshots copy a live disk file by file (K3s), so a running
   * app's snapshot is not crash-consistent; cloud snapshots capture one instant.
   */
  atomicSnapshots: boolean;
  /** Disks live in availability zones, and DiskCreateSpec.zone is honoured. */
  zones: boolean;
  /** The nodePools part is implemented. */
  nodePools: boolean;
  /** The hostTransfer part is implemented (the driver can read and write disk content itself). */
  hostTransfer: boolean;
  /**
   * Snapshots are Kompox archives the driver writes (K3s), so their
   * compression level can be chosen (SnapshotCreateSpec.level); cloud
   * snapshots are the cloud's own block copies.
   */
  archiveSnapshots: boolean;
}

/** What the use case reads from Kubernetes for the driver's pure functions. */
export interface ClusterFacts {
  nodes: ClusterNode[];
  serverVersion?: KubernetesVersion;
}

export interface ClusterNode {
  name: string;
  /** topology.kubernetes.io/zone */
  zone?: string;
  /** kompox.dev/node-pool (or the provider's own pool label) */
  pool?: string;
  labels: Record<string, string>;
}

export const NO_CLUSTER_FACTS: ClusterFacts = Object.freeze({ nodes: [] }) as ClusterFacts;

// ---------------------------------------------------------------- cluster

export interface ClusterStatusInfo {
  /** Public IP and/or FQDN of the ingress, when the provider knows it. */
  ingressIP?: string;
  ingressFQDN?: string;
  [k: string]: unknown;
}

export interface ClusterPart {
  /** Kubeconfig text the driver can supply itself (e.g. AKS admin credentials); undefined = use cluster.auth. */
  kubeconfig?(ctx: ClusterContext, op: Op): Promise<string | undefined>;
  status?(ctx: ClusterContext, op: Op): Promise<ClusterStatusInfo>;
  provision?(ctx: ClusterContext, op: Op): Promise<void>;
  deprovision?(ctx: ClusterContext, op: Op): Promise<void>;
}

// ---------------------------------------------------------------- node pools

/**
 * A provider-neutral node pool (spec: node pools). Fields a provider cannot
 * honour are reported as `unsupported`. The use cases check the spec first
 * (src/usecases/cluster-nodepool.ts) and hand create a `labels` that always
 * holds kompox.dev/node-pool: the driver puts `labels` on the pool's nodes.
 */
export interface NodePoolSpec {
  name: string;
  mode?: 'system' | 'user';
  instanceType?: string;
  /** As the nodes' topology.kubernetes.io/zone label shows them (AKS japaneast-1); the driver maps them to its API. */
  zones?: string[];
  /** Fixed size (without autoscaling). */
  count?: number;
  autoscaling?: { min: number; max: number };
  labels?: Record<string, string>;
  taints?: { key: string; value?: string; effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' }[];
  /** Spot / preemptible capacity. */
  spot?: boolean;
  /** Provider-specific priority class of the capacity (e.g. Azure `Spot`/`Regular`). */
  priority?: string;
  osDisk?: { sizeGiB?: number; type?: string };
}

export interface NodePool extends NodePoolSpec {
  /** Provider state, e.g. `Succeeded`, `Updating`. */
  status?: string;
  /** Nodes in the pool now. */
  nodeCount?: number;
}

export interface NodePoolsPart {
  list(ctx: ClusterContext, op: Op): Promise<NodePool[]>;
  create(ctx: ClusterContext, spec: NodePoolSpec, op: Op): Promise<NodePool>;
  update(ctx: ClusterContext, spec: NodePoolSpec, op: Op): Promise<NodePool>;
  delete(ctx: ClusterContext, name: string, op: Op): Promise<void>;
}

// ---------------------------------------------------------------- volumes (pure data)

/** The storage a volume's disks are, as data (the converter and the reference driver read it). */
export interface VolumeClass {
  /** CSI driver name; absent for K3s local volumes. */
  csiDriver?: string;
  /** PV/PVC storageClassName (a binding label: PVs are static). */
  storageClassName: string;
  fsType?: string;
  /** Class parameters (SKU, IOPS...). */
  parameters: Record<string, string>;
  /** Node label that places a pod next to its disk (zone, or the K3s node's host name). */
  topologyKey?: string;
  /** Default and minimum size of a new disk in GiB (see diskSizeDefaults). */
  defaultGiB: number;
  minGiB: number;
  /** App/cluster/provider setting with the default disk size in GiB (spec: AZURE_DISK_SIZE). */
  sizeSetting: string;
}

/** What the converter puts into a PersistentVolume for one disk (pure; no I/O). */
export interface VolumeSourceSpec {
  storageClassName: string;
  /** Fields merged into PersistentVolume.spec: e.g. { csi: {...} } or { local: {...}, nodeAffinity: {...} } */
  source: Record<string, unknown>;
  /** Filesystem mode; always ReadWriteOnce for Kompox. */
  accessModes?: string[];
  /**
   * True when `disk` was undefined and the source is a placeholder (app validate
   * before any disk exists). The converter marks such PVs with an annotation.
   */
  placeholder?: boolean;
}

/**
 * Default size of a new disk for `volume` (the volume's size, then the class's
 * size setting, then the class default, never below the minimum), and the minimum.
 */
export function diskSizeDefaults(ctx: AppContext, cls: VolumeClass, volume: AppVolume): { defaultGiB: number; minGiB: number } {
  let def = volume.sizeGiB;
  if (def === undefined) {
    const s = lookupSetting(ctx, cls.sizeSetting);
    if (s) {
      const n = Number(s.value);
      if (!Number.isInteger(n) || n <= 0) {
        throw new KompoxError('config', `${s.field} must be a whole number of GiB, got "${s.value}"`, { field: s.field, hint: `Write e.g. ${cls.sizeSetting}: ${cls.defaultGiB}.` });
      }
      def = n;
    }
  }
  return { defaultGiB: Math.max(def ?? cls.defaultGiB, cls.minGiB), minGiB: cls.minGiB };
}

/**
 * The pure volume facts of a driver. Loadable without the driver itself (no
 * SDK): `app validate` uses them for every driver.
 */
export interface DriverVolumes {
  volumeClass(ctx: AppContext, volume: AppVolume): VolumeClass;
  /** PV source and class for a disk; with disk undefined, a clearly marked placeholder. Throws a KompoxError naming the setting to fix. */
  pvSource(ctx: AppContext, volume: AppVolume, disk: Disk | undefined, facts: ClusterFacts): VolumeSourceSpec;
}

// ---------------------------------------------------------------- disks and snapshots

/** Where a new disk's content comes from. Without one, the disk is empty. */
export interface DiskSource {
  /** disk: a provider disk id; snapshot: a provider snapshot id; native: any id the provider knows (e.g. a K3s directory). */
  kind: 'disk' | 'snapshot' | 'native';
  id: string;
}

export interface DiskCreateSpec {
  name: string;
  sizeGiB?: number;
  /**
   * Availability zone (only when capabilities.zones), as the nodes'
   * topology.kubernetes.io/zone label shows it (AKS japaneast-1, not "1"):
   * the driver maps it to its API's notation.
   */
  zone?: string;
  /** Provider options: SKU, IOPS... */
  options?: Record<string, string>;
  source?: DiskSource;
  /**
   * Create the disk *pending*: it exists (it can be mounted, filled and
   * deleted through the returned Disk) but no list shows it, and its name
   * stays taken, until `reveal` makes it visible. An import through the
   * cluster fills and verifies such a disk first (src/usecases/transfer.ts).
   * Cloud drivers mark it with the tag TAG_PENDING (`kompox-pending`); K3s keeps it under
   * a dot-named directory.
   */
  pending?: boolean;
}

/**
 * Error codes drivers use for refusals the use cases act on (kind `conflict`):
 * a disk still attached to a node (clouds refuse to delete it: Azure, EBS
 * `VolumeInUse`, GCE `resourceInUseByAnotherResource`); the transfer retries
 * a delete until the volume is detached.
 */
export const DISK_ATTACHED = 'disk.delete.attached';

export interface DiskListOptions {
  /** Also usedBytes where the provider has to measure it (K3s walks the tree: slow for big disks). */
  usage?: boolean;
  /** Only the pending disks (DiskCreateSpec.pending; each with `pending: true`), e.g. to find what a crash left. */
  pending?: boolean;
}

export interface DisksPart {
  /** The volume's visible disks (never the pending ones, unless asked for them alone). */
  list(ctx: AppContext, volume: AppVolume, opts: DiskListOptions, op: Op): Promise<Disk[]>;
  /** A new disk; never overwrites one (an existing name is a conflict). Nothing half-made is visible after a failure or a cancel. */
  create(ctx: AppContext, volume: AppVolume, spec: DiskCreateSpec, op: Op): Promise<Disk>;
  /**
   * Makes a pending disk visible and returns it as lists show it (its id may
   * change: K3s renames the directory into place). Idempotent for a disk
   * already visible; a conflict when its name was taken meanwhile.
   */
  reveal(ctx: AppContext, volume: AppVolume, disk: Disk, op: Op): Promise<Disk>;
  /** Idempotent: a disk already gone is success. A disk still attached to a node is refused (code DISK_ATTACHED). */
  delete(ctx: AppContext, volume: AppVolume, disk: Disk, op: Op): Promise<void>;
  /**
   * Records on the disk when it was made current (tag kompox-attached-at,
   * returned by list), for picking the right disk after a move to another
   * cluster. Optional: without it the newest disk is picked there.
   */
  markAttached?(ctx: AppContext, volume: AppVolume, disk: Disk, at: string, op: Op): Promise<void>;
}

/** How a snapshot is made, beyond its disk and name. */
export interface SnapshotCreateSpec {
  /**
   * zstd level of the snapshot's archive (drivers with
   * capabilities.archiveSnapshots; checked by the use case): lower is
   * faster (a shorter quiesced stop) and larger. Default: the archives'
   * level (ZSTD_LEVEL).
   */
  level?: number;
}

export interface SnapshotsPart {
  list(ctx: AppContext, volume: AppVolume, op: Op): Promise<Snapshot[]>;
  create(ctx: AppContext, volume: AppVolume, disk: Disk, name: string, op: Op, spec?: SnapshotCreateSpec): Promise<Snapshot>;
  delete(ctx: AppContext, volume: AppVolume, snapshot: Snapshot, op: Op): Promise<void>;
  /**
   * The snapshot `name` when what is left of it is not listed because its
   * data is gone (K3s: its metadata without its archive, moved or removed
   * outside Kompox): only to be deleted, which frees its name. Undefined
   * when there is no such remnant.
   */
  remnant?(ctx: AppContext, volume: AppVolume, name: string, op: Op): Promise<Snapshot | undefined>;
  // restore = disks.create with source {kind: 'snapshot'}: always a new disk
}

/** A portable archive stream (tar.zst or tar.gz, see src/archive) and what is known about it. */
export interface ArchiveInput {
  stream: NodeJS.ReadableStream;
  /** Expected SHA-256 (hex) of the whole stream; a mismatch fails the import and leaves nothing behind. */
  expectedSha256?: string;
  /** Size in bytes when known (progress). */
  totalBytes?: number;
}

/**
 * Reading and writing disk content directly, where the driver reaches the
 * disk's files itself (K3s: a directory on the node). Other drivers move data
 * through the cluster (a helper pod) instead.
 */
/** How an exported archive is compressed (src/archive): tar.zst (version 2, the default) or tar.gz (version 1, for old readers). */
export interface ArchiveExportOptions {
  format?: 'tar.zst' | 'tar.gz';
  /** Compression level (src/archive/archive.ts, ARCHIVE_LEVELS); default the format's. */
  level?: number;
}

export interface HostTransferPart {
  /** Streams the disk as a portable archive into `out` (not ended). */
  exportDisk(ctx: AppContext, volume: AppVolume, disk: Disk, out: NodeJS.WritableStream, op: Op, opts?: ArchiveExportOptions): Promise<void>;
  /** A new disk from an archive (either format), verified before it becomes visible. */
  importDisk(ctx: AppContext, volume: AppVolume, spec: { name: string; sizeGiB?: number }, archive: ArchiveInput, op: Op): Promise<Disk>;
  /**
   * Streams the snapshot as a portable archive into `out` (not ended): as
   * stored, or re-compressed when another format is asked for; then the
   * result says `transcoded` (the stored bytes were checked against the
   * recorded SHA-256 by the driver; the output's SHA-256 differs from it).
   */
  exportSnapshot(
    ctx: AppContext,
    volume: AppVolume,
    snapshot: Snapshot,
    out: NodeJS.WritableStream,
    op: Op,
    opts?: ArchiveExportOptions,
  ): Promise<{ transcoded: boolean } | void>;
}

// ---------------------------------------------------------------- registry access by identity

/**
 * Registries the cluster's nodes pull from with their own identity instead of
 * a stored pull secret: AKS (the kubelet identity with AcrPull on an attached
 * Azure Container Registry), EKS (the node role's ECR permissions), GKE
 * (the node service account on Artifact Registry), K3s (credentials in the
 * nodes' registries.yaml). `app deploy` consults it before warning that an
 * image's registry has no stored credentials. Pure: answered from the
 * settings (a driver that must ask its cloud does that in a future async part).
 */
export interface RegistryAccessPart {
  /** How the nodes reach `registry` (a host[:port], e.g. myacr.azurecr.io) without a stored secret, in words for messages; undefined when they do not. */
  byIdentity(ctx: ClusterContext, registry: string): string | undefined;
}

// ---------------------------------------------------------------- the driver

export interface ProviderDriver extends DriverVolumes {
  readonly name: DriverName;
  readonly capabilities: DriverCapabilities;
  readonly cluster: ClusterPart;
  readonly nodePools?: NodePoolsPart;
  readonly disks: DisksPart;
  readonly snapshots: SnapshotsPart;
  readonly hostTransfer?: HostTransferPart;
  /** Registry access by identity (optional: without it every private registry needs a stored pull secret). */
  readonly registryAccess?: RegistryAccessPart;
  /** Releases connections the driver holds (e.g. the K3s driver's SSH session). The composition root always calls it. */
  close?(): Promise<void>;
}

/**
 * What the composition root hands a driver from the host it runs on. Only
 * the front end decides what goes in (the CLI: the user's SSH agent and home
 * directory; a server: nothing of its own).
 */
export interface DriverHost {
  /** Environment variables the driver may use (e.g. SSH_AUTH_SOCK). */
  env: Readonly<Record<string, string | undefined>>;
  /** Home directory for `~` in settings and default key files; absent: none. */
  homeDir?: string;
}

export type DriverFactory = (host: DriverHost) => ProviderDriver;

/** An optional part of the driver, or the typed `unsupported` error naming `operation`. */
export function requirePart<K extends 'nodePools' | 'hostTransfer'>(driver: ProviderDriver, part: K, operation: string): NonNullable<ProviderDriver[K]> {
  const p = driver[part];
  if (!p) throw unsupported(operation, driver.name);
  return p as NonNullable<ProviderDriver[K]>;
}

/** An optional cluster operation, or the typed `unsupported` error. */
export function requireClusterOp<K extends keyof ClusterPart>(driver: ProviderDriver, op: K, operation: string): NonNullable<ClusterPart[K]> {
  const f = driver.cluster[op];
  if (!f) throw unsupported(operation, driver.name);
  return f.bind(driver.cluster) as NonNullable<ClusterPart[K]>;
}
