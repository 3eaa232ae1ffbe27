// The documented `-o json|yaml` shapes of disks, snapshots and attach results
// (docs/disks-and-snapshots.md). They live beside the use cases, not in the
// CLI, so every front end (kompoxops now, the PaaS API later) prints the same
// shape. Pure: no I/O.
import type { Disk, Snapshot } from '../domain/model.js';

/**
 * The `-o json|yaml` shape of a disk: every key always present (null when
 * unknown), in this order, tags sorted. Documented in
 * docs/disks-and-snapshots.md; scripts rely on it, so change it only additively.
 */
export function diskJson(d: Disk, previousId?: string) {
  return {
    name: d.name,
    volume: d.volume,
    current: Boolean(d.current),
    previous: !d.current && previousId !== undefined && d.id === previousId,
    sizeGiB: d.sizeGiB,
    usedBytes: d.usedBytes ?? null,
    createdAt: d.createdAt,
    zone: d.zone ?? null,
    id: d.id,
    tags: sortedTags(d.tags),
  };
}

/** The `-o json|yaml` shape of a snapshot (same rules as diskJson). */
export function snapshotJson(s: Snapshot) {
  return {
    name: s.name,
    volume: s.volume,
    sizeGiB: s.sizeGiB,
    usedBytes: s.usedBytes ?? null,
    createdAt: s.createdAt,
    sourceDiskId: s.sourceDiskId ?? null,
    sha256: s.sha256 ?? null,
    id: s.id,
    tags: sortedTags(s.tags),
  };
}

function sortedTags(t: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(t).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** An attach result (`disk attach`, `snapshot restore --attach`) in JSON/YAML. */
export function attachJson(r: { volume: string; disk: Disk; previous?: Disk; changed: boolean; deploy?: { exitCode: number; message: string }; released: string[] }) {
  return {
    volume: r.volume,
    disk: diskJson(r.disk),
    previous: r.previous ? diskJson(r.previous, r.previous.id) : null,
    changed: r.changed,
    deploy: r.deploy ?? null,
    released: r.released,
  };
}

