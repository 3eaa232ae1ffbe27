// The port every provider implements (AKS, EKS, GKE, OKE, K3s). Drivers are
// stateless: everything is read back from the provider (tags/metadata), names
// are deterministic, operations are idempotent where that is safe.
import type { AppContext, AppVolume, Cluster, Disk, Provider, Service, Snapshot } from '../domain/model.js';
import type { KubeClient } from '../kube/types.js';
import type { ArchiveFormat } from '../archive/archive.js';

export interface ClusterContext {
  service: Service;
  provider: Provider;
  cluster: Cluster;
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

export interface ClusterStatusInfo {
  /** Public IP and/or FQDN of the ingress, when the provider knows it. */
  ingressIP?: string;
  ingressFQDN?: string;
  [k: string]: unknown;
}

export interface ProgressSink {
  /** total bytes when known */
  start(label: string, total?: number): void;
  advance(bytes: number): void;
  done(): void;
}

export interface DiskCreateOptions {
  name: string;
  sizeGiB?: number;
  /** Source: provider-native disk/snapshot id to copy from. */
  sourceId?: string;
}

export interface ArchiveExportOptions {
  /** Compression of the archive written: tar.zst (default) or tar.gz (for old readers). */
  format?: ArchiveFormat;
}

export interface DiskImportOptions {
  /** Expected SHA-256 (hex) of the whole archive stream; a mismatch fails the import and leaves nothing behind. */
  expectedSha256?: string;
  /** Size of the archive in bytes when known (progress). */
  totalBytes?: number;
  /** Requested size recorded for the new disk. */
  sizeGiB?: number;
}

export interface ProviderDriver {
  readonly driver: string;
  /**
   * False when snapshotCreate copies a live disk file by file (K3s), so a
   * running app's snapshot is not crash-consistent; cloud snapshots capture
   * one instant (true or absent).
   */
  readonly atomicSnapshots?: boolean;

  // ---- cluster ----
  /** Kubeconfig text the driver can supply itself (e.g. AKS admin credentials); undefined = use cluster.auth. */
  clusterKubeconfig?(ctx: ClusterContext): Promise<string | undefined>;
  clusterStatus?(ctx: ClusterContext): Promise<ClusterStatusInfo>;
  clusterProvision?(ctx: ClusterContext): Promise<void>;
  clusterDeprovision?(ctx: ClusterContext): Promise<void>;

  // ---- volumes (pure) ----
  /** PV source and class for a disk; with disk undefined, a clearly marked placeholder. */
  volumeSource(ctx: AppContext, volume: AppVolume, disk: Disk | undefined): VolumeSourceSpec;
  /** Default and minimum disk sizes in GiB. */
  diskSizeDefaults(ctx: AppContext, volume: AppVolume): { defaultGiB: number; minGiB: number };

  // ---- disks ----
  /** With usage, also usedBytes where the provider has to measure it (K3s walks the tree: slow for big disks). */
  diskList(ctx: AppContext, volume: AppVolume, opts?: { usage?: boolean }): Promise<Disk[]>;
  diskCreate(ctx: AppContext, volume: AppVolume, opts: DiskCreateOptions): Promise<Disk>;
  diskDelete(ctx: AppContext, volume: AppVolume, disk: Disk): Promise<void>;
  /**
   * Records on the disk when it was made current (tag kompox-attached-at,
   * returned by diskList), for picking the right disk after a move to another
   * cluster. Optional: without it the newest disk is picked there.
   */
  diskMarkAttached?(ctx: AppContext, volume: AppVolume, disk: Disk, at: string): Promise<void>;
  /** Stream the disk's content as a portable archive (tar.zst by default, see archive/archive.ts). Does not end `out`. */
  diskExport(ctx: AppContext, volume: AppVolume, disk: Disk, out: NodeJS.WritableStream, progress?: ProgressSink, opts?: ArchiveExportOptions): Promise<void>;
  /** Create a disk from a portable archive stream (already checksum-verified by the caller or verified here). */
  diskImport(
    ctx: AppContext,
    volume: AppVolume,
    name: string,
    archive: NodeJS.ReadableStream,
    progress?: ProgressSink,
    opts?: DiskImportOptions,
  ): Promise<Disk>;

  // ---- snapshots ----
  snapshotList(ctx: AppContext, volume: AppVolume): Promise<Snapshot[]>;
  snapshotCreate(ctx: AppContext, volume: AppVolume, disk: Disk, name: string, progress?: ProgressSink): Promise<Snapshot>;
  snapshotDelete(ctx: AppContext, volume: AppVolume, snapshot: Snapshot): Promise<void>;
  /** Always creates a new disk named `diskName`; never overwrites one. */
  snapshotRestore(ctx: AppContext, volume: AppVolume, snapshot: Snapshot, diskName: string, progress?: ProgressSink): Promise<Disk>;
  /**
   * Stream the snapshot as a portable archive. Does not end `out`. With a
   * format other than the stored one the archive is re-compressed and the
   * result says `transcoded` (the stored bytes were verified by the driver;
   * the output's SHA-256 differs from the recorded one).
   */
  snapshotExport(
    ctx: AppContext,
    volume: AppVolume,
    snapshot: Snapshot,
    out: NodeJS.WritableStream,
    progress?: ProgressSink,
    opts?: ArchiveExportOptions,
  ): Promise<{ transcoded: boolean } | void>;

  /**
   * Lets the driver learn cluster facts its pure functions need (K3s: the
   * node's name when the cluster has exactly one node). Called by
   * resolveCurrentDisks when a client is at hand; failures are ignored.
   */
  observeCluster?(ctx: ClusterContext, kube: KubeClient): Promise<void>;

  /** Releases connections the driver holds (e.g. the K3s driver's SSH session). Call when done. */
  close?(): Promise<void>;
}

export type DriverFactory = (provider: Provider) => ProviderDriver;
