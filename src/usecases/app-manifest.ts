// (stub: the converter issue implements this)
import type { Diagnostic } from '../domain/errors.js';
import type { AppContext, AppVolume, Disk } from '../domain/model.js';
import type { LoadedProject } from '../compose/index.js';
import type { KubeObject } from '../kube/types.js';
import type { VolumeSourceSpec } from '../providers/driver.js';

export interface ManifestOptions {
  /** Current disk per app volume name; absent = placeholder PV sources (validate before any disk exists). */
  disks?: Record<string, Disk | undefined>;
  /** PV source for a disk; default: the pure per-driver sources in providers/volume-sources.ts. */
  volumeSource?: (volume: AppVolume, disk: Disk | undefined) => VolumeSourceSpec;
}

export interface AppManifest {
  /** In apply order. */
  objects: KubeObject[];
  warnings: Diagnostic[];
}

/** Converts the loaded compose project into the app's Kubernetes objects. Throws DiagnosticsError on errors. */
export async function buildAppManifest(_ctx: AppContext, _loaded: LoadedProject, _opts: ManifestOptions = {}): Promise<AppManifest> {
  throw new Error('not implemented yet');
}
