// (stub: the disks/snapshots issue implements this)
import type { AppContext, Disk } from '../domain/model.js';
import type { KubeClient } from '../kube/types.js';
import type { ProviderDriver } from '../providers/driver.js';

export interface ResolveDisksOptions {
  /** Create and record an empty disk for a volume that has none (first deploy). */
  createMissing: boolean;
  /** Log progress lines (e.g. "created disk ..."). */
  log?: (line: string) => void;
}

/**
 * The current disk of every app volume, read from the namespace annotations
 * (kompox.dev/disk-current-id) and the provider's disk list; with
 * createMissing, creates an empty disk for a volume that has none and records
 * it. Never creates a disk when one exists.
 */
export async function resolveCurrentDisks(
  _ctx: AppContext,
  _driver: ProviderDriver,
  _kube: KubeClient | undefined,
  _opts: ResolveDisksOptions,
): Promise<Record<string, Disk | undefined>> {
  throw new Error('not implemented yet');
}
