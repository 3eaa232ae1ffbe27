// Input and output of the pure converter. Everything the converter needs to
// know about the outside world (file contents, environment values, disks) is
// gathered beforehand into plain data, so conversion is deterministic and
// testable without a file system.
import type { Diagnostic, Location } from '../domain/errors.js';
import type { AppContext, Disk } from '../domain/model.js';
import type { ComposeProject } from '../compose/model.js';
import type { KubeObject } from '../domain/ports/kube.js';
import type { ClusterNode, VolumeSourceSpec } from '../domain/ports/driver.js';
import type { KubernetesVersion } from '../domain/kube-version.js';

/** What the use case found at one absolute path. */
export interface FileFact {
  kind: 'file' | 'dir' | 'missing';
  /** Set when the path resolves (through symbolic links) to somewhere outside the project directory. */
  resolvesOutside?: string;
  /** File content (files only; absent when the file is too large to embed). */
  content?: Uint8Array;
  /** Size in bytes (files). */
  size?: number;
  /** Number of directory entries (dirs). */
  entries?: number;
  /**
   * Files of a read-only bind directory by relative path (read so the directory can
   * become a ConfigMap). Absent when the directory was not read or is too large.
   */
  tree?: Record<string, Uint8Array>;
  /** Total bytes of the directory's files when it was too large to read. */
  treeBytes?: number;
  /** Entries of the directory that are neither files nor directories (symlinks, sockets...), not read. */
  skipped?: string[];
}

export interface ConvertFacts {
  /** Keyed by absolute path: bind sources and secret/config files. */
  files: Record<string, FileFact>;
  /** Environment for `secrets.*.environment` / `configs.*.environment`. */
  env: Record<string, string | undefined>;
  /** The user's home directory, to recognise expanded `~` bind sources. */
  homeDir?: string;
}

export interface ConvertInput {
  ctx: AppContext;
  project: ComposeProject;
  projectDir: string;
  /** Per service: env keys whose effective value came from env_file. */
  envFromFile: Record<string, string[]>;
  locate?: (path: ReadonlyArray<string | number>) => Location | undefined;
  /** Positions in kompoxops.yml (app.ingress.http_80, app.volumes[0]...), when known. */
  locateConfig?: (path: ReadonlyArray<string | number>) => Location | undefined;
  facts: ConvertFacts;
  /** Current disk per app volume name (absent = placeholder). */
  disks: Record<string, Disk | undefined>;
  /** Per app volume name: its PV source and sizes, computed by the use case from the driver's volume facts. */
  volumes: Record<string, VolumeInput>;
  /**
   * The target API server's version, when known (app deploy reads it first).
   * Absent (app validate, no cluster): a Kubernetes that serves everything
   * Kompox writes is assumed.
   */
  kubernetes?: KubernetesVersion;
  /**
   * The cluster's nodes and their labels, when known (app deploy reads them
   * first): a placement (app.deployment) no node satisfies is reported as a
   * warning. Absent (app validate): not checked.
   */
  nodes?: ClusterNode[];
  /** Secrets stored for the app outside its compose files (names only: the converter never sees a value). */
  secrets?: AppSecretRefs;
}

/**
 * The app's stored secrets as plain names: "the app has pull credentials
 * named X", "service S has environment overrides K1, K2 in Secret Y". Read by
 * the use case (kompoxops: from the cluster; a server: from its own records).
 */
export interface AppSecretRefs {
  /** Name of the kubernetes.io/dockerconfigjson Secret the pod pulls its images with. */
  pull?: string;
  /** Per compose service: the Secret its container reads with envFrom, and that Secret's key names (they override compose `environment:`). */
  env?: Record<string, { secret: string; keys: string[] }>;
  /** Changes whenever a stored secret changes: put on the pod template, so a deploy after a change restarts the pod. */
  revision?: string;
}

/** What the converter needs to know about one app volume's storage (plain data). */
export interface VolumeInput {
  /** The PV source for the volume's current disk (a placeholder without one), or why there is none. */
  source: VolumeSourceSpec | { error: { message: string; hint?: string; field?: string } };
  /** Default and minimum size of a new disk for the volume. */
  defaultGiB: number;
  minGiB: number;
}

export interface ConvertResult {
  /** In apply order. */
  objects: KubeObject[];
  warnings: Diagnostic[];
  errors: Diagnostic[];
}
