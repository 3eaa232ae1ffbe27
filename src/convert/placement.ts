// Where the pod may run: app.deployment (node pools, zones) becomes required
// node affinity, checked against the node affinity of the app's PVs (a zonal
// disk attaches only in its zone) so that a pod that could never be scheduled
// is a conversion error naming the disk and the zone, not a pod that stays
// Pending. With the cluster's nodes (plain data, app deploy), a placement no
// node satisfies today is a warning: an autoscaled pool may still add one.
import { appVolumes } from '../domain/model.js';
import {
  NODE_POOL_LABEL,
  describePlacement,
  nodeFitsPv,
  nodeSatisfies,
  placementRequirements,
  podAffinity,
  pvZones,
} from '../domain/placement.js';
import type { Diagnostics } from './diagnostics.js';
import type { ConvertInput } from './types.js';

const ZONE_FIELD = ['app', 'deployment', 'zone'];

/** The pod's `affinity` (or undefined); conflicts and unmatched placements go to `diags`. */
export function convertPlacement(input: ConvertInput, diags: Diagnostics): Record<string, unknown> | undefined {
  const { ctx } = input;
  const deployment = ctx.app.deployment;
  const appZones = deployment?.zones?.length ? deployment.zones : undefined;

  // The zones each volume's disk confines the pod to (only volumes whose PV says so).
  const confined: { volume: string; index: number; disk?: string; zones: string[] }[] = [];
  appVolumes(ctx).forEach((volume, index) => {
    const given = input.volumes[volume.name];
    if (!given || 'error' in given.source) return;
    const zones = pvZones(given.source.source);
    if (zones) confined.push({ volume: volume.name, index, disk: input.disks[volume.name]?.name, zones });
  });
  const diskPhrase = (c: (typeof confined)[number]) => `${c.disk ? `disk ${c.disk} of ` : ''}volume ${c.volume}`;

  let conflict = false;
  if (appZones) {
    for (const c of confined) {
      if (c.zones.some((z) => appZones.includes(z))) continue;
      conflict = true;
      diags.error({
        message: `${diskPhrase(c)} is in zone ${c.zones.join(' or ')}, but app.deployment.zone allows only ${appZones.join(', ')}: the pod could never start next to the disk`,
        path: ZONE_FIELD,
        hint: `Copy the disk (or restore a snapshot) into zone ${appZones[0]} and attach the copy, or add ${c.zones[0]} to app.deployment.zone.`,
      });
    }
  }
  if (!conflict && confined.length > 1) {
    // The pod mounts every volume: their disks must share a zone (and one the app allows).
    let common = new Set(confined[0]!.zones);
    for (const c of confined.slice(1)) common = new Set(c.zones.filter((z) => common.has(z)));
    if (appZones) common = new Set([...common].filter((z) => appZones.includes(z)));
    if (common.size === 0) {
      diags.error({
        message: `the app's disks are in different zones (${confined.map((c) => `${diskPhrase(c)}: ${c.zones.join(' or ')}`).join('; ')}): one pod cannot attach them all`,
        path: appZones ? ZONE_FIELD : ['app', 'volumes', confined[1]!.index],
        hint: 'Copy the disks (or restore snapshots) into one zone and attach the copies.',
      });
      conflict = true;
    }
  }

  const nodes = input.nodes;
  const reqs = placementRequirements(deployment);
  if (!conflict && nodes?.length && reqs.length) {
    const pools = deployment?.pools;
    if (pools?.length && !nodes.some((n) => n.labels[NODE_POOL_LABEL] !== undefined)) {
      diags.warn({
        message: `no node of the cluster carries the ${NODE_POOL_LABEL} label, so the pod (app.deployment.pool ${pools.join(', ')}) cannot be scheduled until nodes have it`,
        path: ['app', 'deployment', 'pool'],
        hint: `Label the nodes of the pool with ${NODE_POOL_LABEL}=${pools[0]} (cloud drivers label the pools they create).`,
      });
    } else {
      const sources = Object.values(input.volumes).flatMap((v) => ('error' in v.source || v.source.placeholder ? [] : [v.source.source]));
      const fits = nodes.filter((n) => nodeSatisfies(n.labels, reqs) && sources.every((s) => nodeFitsPv(n.labels, s)));
      if (!fits.length) {
        const seen = [...new Set(nodes.map((n) => `${n.labels[NODE_POOL_LABEL] ?? '(no pool label)'}/${n.zone ?? '(no zone)'}`))].sort();
        diags.warn({
          message: `no node of the cluster matches ${describePlacement(deployment)}${sources.length ? " and the disks' node affinity" : ''} now (nodes by pool/zone: ${seen.join(', ')}): the pod stays Pending until one does`,
          path: pools?.length ? ['app', 'deployment', 'pool'] : ZONE_FIELD,
          hint: 'An autoscaled node pool adds a node for the pending pod; otherwise check app.deployment against the labels of the nodes.',
        });
      }
    }
  }
  return podAffinity(deployment);
}
