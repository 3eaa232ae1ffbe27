// The plain data the converter needs about each app volume's storage: the PV
// source of its current disk (or a placeholder) and the disk sizes, computed
// from the driver's pure volume facts before converting, so the converter
// never calls into a driver.
import { KompoxError } from '../domain/errors.js';
import type { AppContext, Disk } from '../domain/model.js';
import { diskSizeDefaults, NO_CLUSTER_FACTS, type ClusterFacts, type DriverVolumes } from '../domain/ports/driver.js';
import type { KubeClient } from '../domain/ports/kube.js';
import { kubernetesVersion } from '../domain/kube-version.js';
import { NODE_POOL_LABEL as POOL_LABEL, ZONE_LABEL } from '../domain/placement.js';
import type { VolumeInput } from '../convert/types.js';
import { appVolumes } from './volumes.js';

/**
 * Per app volume: the PV source for `disks[volume]` (placeholder when absent)
 * and the default/minimum disk size. A source the driver cannot give (a
 * setting missing) becomes the volume's error, reported with the others by
 * the converter; a malformed size setting throws.
 */
export function pvInputs(
  ctx: AppContext,
  volumes: DriverVolumes,
  disks: Record<string, Disk | undefined> = {},
  facts: ClusterFacts = NO_CLUSTER_FACTS,
): Record<string, VolumeInput> {
  const out: Record<string, VolumeInput> = {};
  for (const volume of appVolumes(ctx)) {
    let source: VolumeInput['source'];
    try {
      source = volumes.pvSource(ctx, volume, disks[volume.name], facts);
    } catch (e) {
      if (!(e instanceof KompoxError)) throw e;
      out[volume.name] = { source: { error: { message: e.message, ...(e.hint ? { hint: e.hint } : {}), ...(e.field ? { field: e.field } : {}) } }, defaultGiB: 0, minGiB: 0 };
      continue;
    }
    out[volume.name] = { source, ...diskSizeDefaults(ctx, volumes.volumeClass(ctx, volume), volume) };
  }
  return out;
}


/**
 * What the driver's pure functions may need to know about the cluster: its
 * nodes (name, zone, pool, labels) and the server version. Best effort: an
 * identity that may not list nodes gets no node facts (the driver then needs
 * its settings, e.g. K3S_NODE), never a failure.
 */
export async function readClusterFacts(kube: KubeClient): Promise<ClusterFacts> {
  const facts: ClusterFacts = { nodes: [] };
  const nodes = await kube.list('v1', 'Node').catch(() => []);
  facts.nodes = nodes.map((n) => {
    const labels = { ...(n.metadata.labels ?? {}) };
    return { name: n.metadata.name, labels, ...(labels[ZONE_LABEL] ? { zone: labels[ZONE_LABEL] } : {}), ...(labels[POOL_LABEL] ? { pool: labels[POOL_LABEL] } : {}) };
  });
  const v = await kube.version().catch(() => undefined);
  const version = v && kubernetesVersion(v);
  if (version) facts.serverVersion = version;
  return facts;
}
