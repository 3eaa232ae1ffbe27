// The in-memory "cloud" behind the reference block-storage driver: what a
// cloud's disk API does (Azure managed disks, EBS, GCE persistent disks), in
// memory, so the driver above it is written the way a cloud driver is:
//   - disks and snapshots live in resource groups; a name is unique in its
//     group (a create with a taken name is refused, 409), ids are derived
//     from group and name;
//   - a disk has a zone of the region (or none: regional), a SKU and a size;
//     a copy or a restore is never smaller than its source;
//   - creating a disk from a disk or snapshot, and a snapshot, are
//     long-running operations: the resource exists (state Creating) from the
//     start and is filled step by step, one file per poll, so a caller can
//     be interrupted in the middle (deterministically, without timers);
//   - tags are free-form key/values, set at create and updated later; lists
//     filter by group only (tag filters with wildcards are the caller's job);
//   - a disk attached to a node (what the CSI controller does for a running
//     pod) cannot be deleted (409 VolumeInUse); deleting what is gone is 404;
//   - content is a map of file paths to bytes: what a pod wrote to the disk.
// The store is shared by every driver object over it (drivers are stateless,
// the cloud is not), like one cloud account seen by several processes.
export type CloudState = 'Creating' | 'Succeeded';

export interface CloudDisk {
  id: string;
  resourceGroup: string;
  name: string;
  /** Zone in the cloud's notation ("1", "2", "3"); absent: a regional disk. */
  zone?: string;
  sku: string;
  sizeGiB: number;
  tags: Record<string, string>;
  state: CloudState;
  /** RFC 3339 with milliseconds, set by the cloud. */
  timeCreated: string;
  /** Id of the disk or snapshot this one was made from. */
  sourceId?: string;
  /** Node the disk is attached to. */
  attachedTo?: string;
  content: Map<string, Uint8Array>;
}

export interface CloudSnapshot {
  id: string;
  resourceGroup: string;
  name: string;
  sizeGiB: number;
  sourceDiskId: string;
  tags: Record<string, string>;
  state: CloudState;
  timeCreated: string;
  content: Map<string, Uint8Array>;
}

/** An error of the cloud API: an HTTP status and the API's error code. */
export class CloudError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    readonly code: string,
    message: string,
  ) {
    super(`${status} ${code}: ${message}`);
  }
}

/** A long-running operation: poll until it is done (each poll moves it one step). */
export interface CloudOperation {
  readonly resourceId: string;
  readonly total: number;
  readonly done: number;
  poll(): Promise<CloudState>;
}

export interface CreateDiskRequest {
  name: string;
  zone?: string;
  sku: string;
  sizeGiB: number;
  tags: Record<string, string>;
  /** A disk or snapshot id to copy. */
  sourceId?: string;
}

function copyContent(c: Map<string, Uint8Array>): Map<string, Uint8Array> {
  return new Map([...c].map(([k, v]) => [k, new Uint8Array(v)]));
}

function tick(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

export class ReferenceCloud {
  readonly region: string;
  readonly zones: readonly string[];
  readonly skus: readonly string[];
  private readonly disks = new Map<string, CloudDisk>();
  private readonly snapshots = new Map<string, CloudSnapshot>();
  /** Every API call, for tests that check what reached the cloud. */
  readonly calls: string[] = [];

  constructor(opts: { region?: string; zones?: string[]; skus?: string[] } = {}) {
    this.region = opts.region ?? 'refregion';
    this.zones = opts.zones ?? ['1', '2', '3'];
    this.skus = opts.skus ?? ['standard', 'premium'];
  }

  private now(): string {
    return new Date().toISOString();
  }

  // ---------------------------------------------------------------- disks

  diskId(resourceGroup: string, name: string): string {
    return `/resourceGroups/${resourceGroup}/disks/${name}`;
  }

  snapshotId(resourceGroup: string, name: string): string {
    return `/resourceGroups/${resourceGroup}/snapshots/${name}`;
  }

  async listDisks(resourceGroup: string): Promise<CloudDisk[]> {
    this.calls.push(`listDisks ${resourceGroup}`);
    await tick();
    return [...this.disks.values()].filter((d) => d.resourceGroup === resourceGroup).map((d) => this.view(d));
  }

  async getDisk(id: string): Promise<CloudDisk> {
    this.calls.push(`getDisk ${id}`);
    await tick();
    const d = this.disks.get(id);
    if (!d) throw new CloudError(404, 'ResourceNotFound', `disk ${id} not found`);
    return this.view(d);
  }

  private view(d: CloudDisk): CloudDisk {
    return { ...d, tags: { ...d.tags }, content: d.content };
  }

  /** Starts creating a disk: empty, or a copy of a disk or snapshot (any group, any zone of the region). */
  async beginCreateDisk(resourceGroup: string, req: CreateDiskRequest): Promise<CloudOperation> {
    this.calls.push(`beginCreateDisk ${resourceGroup}/${req.name}`);
    await tick();
    const id = this.diskId(resourceGroup, req.name);
    if (this.disks.has(id)) throw new CloudError(409, 'ResourceExists', `disk ${req.name} already exists in ${resourceGroup}`);
    if (req.zone !== undefined && !this.zones.includes(req.zone)) {
      throw new CloudError(400, 'InvalidZone', `zone "${req.zone}" is not a zone of region ${this.region} (zones: ${this.zones.join(', ')})`);
    }
    if (!this.skus.includes(req.sku)) throw new CloudError(400, 'InvalidSku', `SKU "${req.sku}" does not exist (SKUs: ${this.skus.join(', ')})`);
    if (!Number.isInteger(req.sizeGiB) || req.sizeGiB < 1) throw new CloudError(400, 'InvalidSize', `size ${req.sizeGiB} GiB is not allowed`);
    let source: Map<string, Uint8Array> | undefined;
    if (req.sourceId !== undefined) {
      const src = this.disks.get(req.sourceId) ?? this.snapshots.get(req.sourceId);
      if (!src) throw new CloudError(404, 'SourceNotFound', `source ${req.sourceId} not found`);
      if (src.state !== 'Succeeded') throw new CloudError(409, 'SourceNotReady', `source ${req.sourceId} is still being created`);
      if (req.sizeGiB < src.sizeGiB) throw new CloudError(400, 'InvalidSize', `a copy of ${req.sourceId} needs at least ${src.sizeGiB} GiB`);
      source = copyContent(src.content);
    }
    const disk: CloudDisk = {
      id,
      resourceGroup,
      name: req.name,
      sku: req.sku,
      sizeGiB: req.sizeGiB,
      tags: { ...req.tags },
      state: source && source.size ? 'Creating' : 'Succeeded',
      timeCreated: this.now(),
      content: new Map(),
      ...(req.zone !== undefined ? { zone: req.zone } : {}),
      ...(req.sourceId !== undefined ? { sourceId: req.sourceId } : {}),
    };
    this.disks.set(id, disk);
    return this.filling(id, disk, source);
  }

  /** The operation that fills `target` from `source` one file per poll. */
  private filling(id: string, target: { state: CloudState; content: Map<string, Uint8Array> }, source: Map<string, Uint8Array> | undefined): CloudOperation {
    const pending = [...(source ?? new Map<string, Uint8Array>())];
    const total = pending.length;
    let done = 0;
    return {
      resourceId: id,
      total,
      get done() {
        return done;
      },
      poll: async () => {
        await tick();
        const next = pending.shift();
        if (next) {
          target.content.set(next[0], next[1]);
          done++;
        }
        if (pending.length === 0) target.state = 'Succeeded';
        return target.state;
      },
    };
  }

  async updateDiskTags(id: string, tags: Record<string, string>): Promise<CloudDisk> {
    this.calls.push(`updateDiskTags ${id}`);
    await tick();
    const d = this.disks.get(id);
    if (!d) throw new CloudError(404, 'ResourceNotFound', `disk ${id} not found`);
    d.tags = { ...tags };
    return this.view(d);
  }

  /** Deletes a disk (also one being created: its operation stops). An attached disk is refused. */
  async deleteDisk(id: string): Promise<void> {
    this.calls.push(`deleteDisk ${id}`);
    await tick();
    const d = this.disks.get(id);
    if (!d) throw new CloudError(404, 'ResourceNotFound', `disk ${id} not found`);
    if (d.attachedTo) throw new CloudError(409, 'VolumeInUse', `disk ${d.name} is attached to node ${d.attachedTo}`);
    this.disks.delete(id);
  }

  // ---------------------------------------------------------------- snapshots

  async listSnapshots(resourceGroup: string): Promise<CloudSnapshot[]> {
    this.calls.push(`listSnapshots ${resourceGroup}`);
    await tick();
    return [...this.snapshots.values()].filter((s) => s.resourceGroup === resourceGroup).map((s) => ({ ...s, tags: { ...s.tags } }));
  }

  async getSnapshot(id: string): Promise<CloudSnapshot> {
    this.calls.push(`getSnapshot ${id}`);
    await tick();
    const s = this.snapshots.get(id);
    if (!s) throw new CloudError(404, 'ResourceNotFound', `snapshot ${id} not found`);
    return { ...s, tags: { ...s.tags } };
  }

  async beginCreateSnapshot(resourceGroup: string, req: { name: string; sourceDiskId: string; tags: Record<string, string> }): Promise<CloudOperation> {
    this.calls.push(`beginCreateSnapshot ${resourceGroup}/${req.name}`);
    await tick();
    const id = this.snapshotId(resourceGroup, req.name);
    if (this.snapshots.has(id)) throw new CloudError(409, 'ResourceExists', `snapshot ${req.name} already exists in ${resourceGroup}`);
    const src = this.disks.get(req.sourceDiskId);
    if (!src) throw new CloudError(404, 'SourceNotFound', `disk ${req.sourceDiskId} not found`);
    if (src.state !== 'Succeeded') throw new CloudError(409, 'SourceNotReady', `disk ${req.sourceDiskId} is still being created`);
    // the point in time is now: later writes to the disk do not reach the snapshot
    const content = copyContent(src.content);
    const snap: CloudSnapshot = {
      id,
      resourceGroup,
      name: req.name,
      sizeGiB: src.sizeGiB,
      sourceDiskId: src.id,
      tags: { ...req.tags },
      state: content.size ? 'Creating' : 'Succeeded',
      timeCreated: this.now(),
      content: new Map(),
    };
    this.snapshots.set(id, snap);
    return this.filling(id, snap, content);
  }

  async updateSnapshotTags(id: string, tags: Record<string, string>): Promise<CloudSnapshot> {
    this.calls.push(`updateSnapshotTags ${id}`);
    await tick();
    const s = this.snapshots.get(id);
    if (!s) throw new CloudError(404, 'ResourceNotFound', `snapshot ${id} not found`);
    s.tags = { ...tags };
    return { ...s, tags: { ...s.tags } };
  }

  async deleteSnapshot(id: string): Promise<void> {
    this.calls.push(`deleteSnapshot ${id}`);
    await tick();
    if (!this.snapshots.delete(id)) throw new CloudError(404, 'ResourceNotFound', `snapshot ${id} not found`);
  }

  // ---------------------------------------------------------------- what happens outside the API

  /** The CSI controller attaches the disk to a node (a pod mounts it). */
  attach(id: string, node: string): void {
    const d = this.disks.get(id);
    if (!d) throw new CloudError(404, 'ResourceNotFound', `disk ${id} not found`);
    if (d.attachedTo && d.attachedTo !== node) throw new CloudError(409, 'VolumeInUse', `disk ${d.name} is attached to node ${d.attachedTo}`);
    d.attachedTo = node;
  }

  detach(id: string): void {
    const d = this.disks.get(id);
    if (d) delete d.attachedTo;
  }

  /** A pod writes files to the disk. */
  write(id: string, files: Record<string, string | Uint8Array>): void {
    const d = this.disks.get(id);
    if (!d) throw new CloudError(404, 'ResourceNotFound', `disk ${id} not found`);
    for (const [path, data] of Object.entries(files)) d.content.set(path, typeof data === 'string' ? new TextEncoder().encode(data) : new Uint8Array(data));
  }

  /** What a pod reads from the disk. */
  read(id: string): Record<string, string> {
    const d = this.disks.get(id);
    if (!d) throw new CloudError(404, 'ResourceNotFound', `disk ${id} not found`);
    return Object.fromEntries([...d.content].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
  }

  /** A disk made outside Kompox (no tags), e.g. one to migrate from. */
  async foreignDisk(resourceGroup: string, name: string, files: Record<string, string> = {}): Promise<string> {
    const op = await this.beginCreateDisk(resourceGroup, { name, sku: this.skus[0]!, sizeGiB: 1, tags: {} });
    while ((await op.poll()) !== 'Succeeded');
    this.write(op.resourceId, files);
    return op.resourceId;
  }

  /** Every id of every resource (visible to Kompox or not): proves "nothing was left behind". */
  resourceIds(): string[] {
    return [...this.disks.keys(), ...this.snapshots.keys()].sort();
  }
}
