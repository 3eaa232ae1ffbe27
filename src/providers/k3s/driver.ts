// The K3s driver: self-hosted single-node clusters. A disk is a directory on
// the node, bound into the pod as a `local` PersistentVolume; snapshots are
// portable archives on the node. Layout (see docs/disks-and-snapshots.md):
//
//   {K3S_DISK_ROOT}/{appNamespace}/{volume}/{disk}/data            disk id = this path
//   {K3S_DISK_ROOT}/{appNamespace}/{volume}/{disk}/kompox-disk.json  tags, size, node
//   {K3S_DISK_ROOT}/{appNamespace}/{volume}/{disk}/kompox-attached.json  when last made current
//   {K3S_SNAPSHOT_ROOT}/{appNamespace}/{volume}/{snap}.tar.zst     snapshot id = this path
//                                                        (.tar.gz: snapshots made before archive version 2)
//   {K3S_SNAPSHOT_ROOT}/{appNamespace}/{volume}/{snap}.json        tags, sha256, source disk
//
// Everything is read back from these files: the driver keeps no state beyond
// an open SSH session. New disks and snapshots are built under a dot-named
// temp path and renamed into place only when complete, so a failure or a
// crash never leaves a half-made disk visible (dot names are never listed);
// what a crash leaves behind is swept later (sweepLeftovers). A pending disk
// (DiskCreateSpec.pending: an import through the cluster being filled) lives
// under `.pending-{name}-{suffix}` until reveal renames it into place.
import { isIP } from 'node:net';
import { PassThrough, Readable, type Writable } from 'node:stream';
import { KompoxError, interruptedError, ownCode, unsupported } from '../../domain/errors.js';
import { byteProgress, cancellable, destroyOnCancel, logEvent, specialsLeftOut, throwIfAborted, unlessCancelled, warningEvent, type Op, type ProgressSink } from '../../domain/events.js';
import { SPECIALS_NAMED } from '../../archive/tree-walk.js';
import {
  TAG_APP,
  TAG_ATTACHED_AT,
  TAG_PENDING,
  TAG_VOLUME,
  type AppContext,
  type AppVolume,
  type ClusterContext,
  type Disk,
  type Snapshot,
} from '../../domain/model.js';
import { appId, appNamespace, dnsLabelProblem, nowRfc3339, ownershipTags, tagMatchesApp } from '../../domain/names.js';
import {
  diskSizeDefaults,
  type ArchiveInput,
  type ClusterFacts,
  type ClusterPart,
  type ArchiveExportOptions,
  type ClusterStatusInfo,
  type DiskCreateSpec,
  type DiskListOptions,
  type DisksPart,
  type DriverCapabilities,
  type DriverHost,
  type HostTransferPart,
  type ProviderDriver,
  type RegistryAccessPart,
  type SnapshotCreateSpec,
  type SnapshotsPart,
  type VolumeClass,
  type VolumeSourceSpec,
} from '../../domain/ports/driver.js';
import {
  DEFAULT_ARCHIVE_FORMAT,
  archiveExtension,
  detectArchiveFormat,
  digestTree,
  packTree,
  sniffFormat,
  transcodeArchive,
  unpackArchive,
  writeAll,
  type ArchiveFormat,
  type ArchiveManifest,
  type ArchiveResult,
  type PackOptions,
  type UnpackOptions,
} from '../../archive/archive.js';
import { LocalHostFs, type HostFs, type HostTarStream } from './hostfs.js';
import { copyOnNode, restoreOnNode, snapshotOnNode } from './node-local.js';
import { k3sNodeRegistries, k3sSettings, type K3sSettings } from './settings.js';
import { credentialMatches } from '../../domain/registry.js';
import { volumes } from './volume.js';

export const DISK_META = 'kompox-disk.json';
export const DATA = 'data';
/**
 * When the disk was last made current. Kept apart from kompox-disk.json
 * (written once, when the disk is made) because it is rewritten on every
 * attach: losing it only loses a hint, never the disk's ownership record.
 */
export const ATTACHED_META = 'kompox-attached.json';
/** Directory name prefix of a pending disk (DiskCreateSpec.pending), never listed. */
export const PENDING_PREFIX = '.pending-';
const GiB = 1024 ** 3;
/** Compression of new snapshots. */
const SNAPSHOT_FORMAT: ArchiveFormat = 'tar.zst';
/** A snapshot archive's file name ends in one of these. */
const SNAPSHOT_ARCHIVE = /\.tar\.(zst|gz)$/;

/** The metadata file beside a snapshot archive. */
function snapshotMetaPath(archivePath: string): string {
  return archivePath.replace(SNAPSHOT_ARCHIVE, '.json');
}

interface DiskMeta {
  kind: 'kompox-disk';
  name: string;
  volume: string;
  sizeGiB: number;
  createdAt: string;
  /** Host name of the node that holds the directory (the K3s node name by default). */
  node?: string;
  tags: Record<string, string>;
  source?: Record<string, string>;
}

interface SnapshotMeta {
  kind: 'kompox-snapshot';
  name: string;
  volume: string;
  sizeGiB: number;
  createdAt: string;
  sourceDiskId: string;
  sha256: string;
  bytes: number;
  /** Compression of the archive file; absent in snapshots made before archive version 2 (tar.gz). */
  format?: ArchiveFormat;
  fileCount: number;
  totalBytes: number;
  treeDigest: string;
  tags: Record<string, string>;
}

export { tagMatchesApp };

/**
 * What is wrong with a metadata file's parsed JSON (undefined: nothing):
 * the fields every command reads must be there. `kind` is 'kompox-disk' or
 * 'kompox-snapshot'; a snapshot also needs the SHA-256 its archive is checked against.
 */
function metaProblem(m: unknown, kind: 'kompox-disk' | 'kompox-snapshot'): string | undefined {
  if (!m || typeof m !== 'object' || Array.isArray(m)) return 'does not hold a JSON object';
  const o = m as Record<string, unknown>;
  if (o.kind !== kind) return `does not say "kind": "${kind}"`;
  const missing = ['name', 'volume', 'createdAt', ...(kind === 'kompox-snapshot' ? ['sha256'] : [])].filter((k) => typeof o[k] !== 'string');
  if (typeof o.sizeGiB !== 'number') missing.push('sizeGiB');
  if (!o.tags || typeof o.tags !== 'object' || Array.isArray(o.tags)) missing.push('tags');
  return missing.length ? `lacks ${missing.join(', ')}` : undefined;
}

/**
 * A disk's or snapshot's metadata file that is there but cannot be read or
 * is not valid: one refusal naming it. Never "not found" or silently left
 * out (the data is there), and never a reason to pick another disk.
 */
function damagedMeta(what: 'disk' | 'snapshot', name: string, file: string, problem: string, remove: string, cause?: unknown): KompoxError {
  return new KompoxError('integrity', `the metadata of ${what} ${name}, ${file}, ${problem}; nothing was changed`, {
    code: `${what}.meta.damaged`,
    details: { [what]: name, path: file },
    hint:
      `Restore that file (from a backup, or rewrite it: it is the JSON Kompox wrote when the ${what} was made), or fix its permissions if it cannot be read; ` +
      `if the ${what} is not wanted, move ${remove} out of its directory. Until then commands that list the volume's ${what}s refuse to guess.`,
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** Reads and parses a metadata file: undefined when it does not exist; throws damagedMeta when it is unreadable or not valid. */
async function readMetaFile<T>(fs: HostFs, file: string, kind: 'kompox-disk' | 'kompox-snapshot', name: string, remove: string): Promise<T | undefined> {
  const what = kind === 'kompox-disk' ? 'disk' : 'snapshot';
  let text: string;
  try {
    text = (await fs.readFile(file)).toString('utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    // the node unreachable (a KompoxError of the connection) is not the file's fault
    if (e instanceof KompoxError) throw e;
    throw damagedMeta(what, name, file, `cannot be read (${(e as Error).message})`, remove, e);
  }
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw damagedMeta(what, name, file, `is not valid JSON (${(e as Error).message})`, remove, e);
  }
  const problem = metaProblem(m, kind);
  if (problem) throw damagedMeta(what, name, file, problem, remove);
  return m as T;
}

function checkName(what: 'disk' | 'snapshot', name: string): void {
  const problem = dnsLabelProblem(name);
  if (problem) {
    throw new KompoxError('usage', `${what} name "${name}" ${problem}`, {
      hint: `${what === 'disk' ? 'Disk' : 'Snapshot'} names are DNS labels: lower-case letters, digits and '-', at most 63 characters.`,
    });
  }
}

function suffix(): string {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * Leftovers of a crash: temp disks/snapshots (`.tmp-*`), half-deleted
 * disks (`.deleting-*`) and snapshot archives without metadata (see
 * sweepLeftovers) whose mtime is older than this are removed by the
 * next disk or snapshot made for the same volume; so are the temps of a
 * disk's metadata files (sweepDiskMetaTemps), also when it is next
 * attached. A temp directory being filled is kept fresh by a heartbeat
 * (below) however long the copy takes, and a temp archive is written
 * continuously, so only dead ones age.
 */
export const LEFTOVER_AGE_MS = 60 * 60_000;
const HEARTBEAT_MS = 5 * 60_000;

/**
 * Refreshes a temp directory's mtime while it is being filled, by creating
 * and removing an entry in it: the node's clock sets the mtime, so a
 * workstation clock that is off never makes a live temp directory look old.
 */
export function heartbeat(fs: HostFs, dir: string, everyMs = HEARTBEAT_MS): { stop(): Promise<void> } {
  let beating: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    beating = beating.then(async () => {
      const p = `${dir}/.alive`;
      await fs.writeFileAtomic(p, '').catch(() => undefined);
      await fs.rm(p).catch(() => undefined);
    });
  }, everyMs);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await beating;
    },
  };
}

/**
 * Removes leftovers (see LEFTOVER_AGE_MS) in `dir`. `nodeNowMs` is a time
 * read from the node's clock (the mtime of a file just written there), so
 * the age is measured on one clock. Errors are ignored: sweeping is a
 * courtesy, never a reason for the operation that triggered it to fail.
 *
 * In a snapshot directory two more: a snapshot archive without its
 * metadata (orphanArchive) and a metadata file's temp (`{snap}.json.tmp-*`,
 * writeFileAtomic's, killed before its rename). Disk names hold no dots, so
 * neither ever matches in a disk directory.
 */
export async function sweepLeftovers(fs: HostFs, dir: string, nodeNowMs: number): Promise<string[]> {
  const removed: string[] = [];
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const metas = new Set(names.filter((n) => n.endsWith('.json')));
  for (const n of names.sort()) {
    const orphan = SNAPSHOT_ARCHIVE.test(n) && !n.startsWith('.') && !metas.has(snapshotMetaPath(n));
    if (!n.startsWith('.tmp-') && !n.startsWith('.deleting-') && !orphan && !/\.json\.tmp-[^/]*$/.test(n)) continue;
    const st = await fs.lstat(`${dir}/${n}`).catch(() => undefined);
    if (!st || nodeNowMs - st.mtimeMs < LEFTOVER_AGE_MS) continue;
    await fs.rm(`${dir}/${n}`).then(
      () => removed.push(n),
      () => undefined,
    );
  }
  return removed;
}

/** writeFileAtomic's temp of a disk's metadata file (`{file}.tmp-{suffix}`), left by a kill before its rename. */
const DISK_META_TEMP = /^kompox-(disk|attached)\.json\.tmp-[0-9a-z]+$/;

/**
 * Removes the metadata temps (DISK_META_TEMP) in the disk directories
 * `diskDirs` that are older than LEFTOVER_AGE_MS on the node's clock
 * (`nodeNowMs`, as for sweepLeftovers): written in milliseconds, an old one
 * is dead whichever machine wrote it. Errors are ignored (a courtesy).
 */
export async function sweepDiskMetaTemps(fs: HostFs, diskDirs: string[], nodeNowMs: number): Promise<string[]> {
  const removed: string[] = [];
  for (const dir of diskDirs) {
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    for (const n of names.sort()) {
      if (!DISK_META_TEMP.test(n)) continue;
      const st = await fs.lstat(`${dir}/${n}`).catch(() => undefined);
      if (st?.kind !== 'file' || nodeNowMs - st.mtimeMs < LEFTOVER_AGE_MS) continue;
      await fs.rm(`${dir}/${n}`).then(
        () => removed.push(`${dir}/${n}`),
        () => undefined,
      );
    }
  }
  return removed;
}

async function closeWriter(ws: Writable): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    ws.once('close', () => resolve());
    ws.end();
  });
}

/**
 * How long a snapshot create waits for the metadata of a young archive of its
 * name that has none yet (another create of that name between its renames).
 */
const ORPHAN_SETTLE_MS = 3000;

/**
 * Waits until a stream of HostFs.openWrite has opened its file (fs's and
 * SFTP's streams open lazily and say `pending` until then); the open's error
 * is thrown. A stream without `pending` has nothing to wait for.
 */
async function opened(ws: Writable): Promise<void> {
  if ((ws as Writable & { pending?: boolean }).pending !== true) return;
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
}

export type HostFsFactory = (s: K3sSettings, host: DriverHost, op: Op) => Promise<HostFs>;

const defaultHostFs: HostFsFactory = async (s, host, op) => {
  if (!s.ssh) return new LocalHostFs();
  const { connectSshHostFs } = await import('./ssh-hostfs.js');
  return connectSshHostFs({
    target: s.ssh,
    keyPath: s.sshKey,
    knownHosts: s.sshKnownHosts,
    agent: host.env.SSH_AUTH_SOCK,
    homeDir: host.homeDir,
    warn: (message) => op.events?.({ type: 'warning', diagnostic: { level: 'warning', message } }),
  });
};

export class K3sDriver implements ProviderDriver {
  readonly name = 'k3s' as const;
  readonly capabilities: DriverCapabilities = { atomicSnapshots: false, zones: false, nodePools: false, hostTransfer: true, archiveSnapshots: true };
  private readonly hosts = new Map<string, Promise<HostFs>>();
  /** The connections of `hosts` that have been made (close() waits for these only). */
  private readonly made = new WeakSet<Promise<HostFs>>();

  constructor(
    private readonly hostEnv: DriverHost = { env: {} },
    private readonly hostFsFactory: HostFsFactory = defaultHostFs,
  ) {}

  /**
   * One connection per target, opened on first use. A cancel ends the
   * caller's own wait for it (not the connection, which other callers may
   * share): an SSH handshake with a node that does not answer takes up to
   * its 20 s timeout, and Ctrl-C (or a hang-up) went unheard for that long.
   */
  private host(s: K3sSettings, op: Op): Promise<HostFs> {
    const key = s.ssh ?? 'local';
    let h = this.hosts.get(key);
    if (!h) {
      const connecting = this.hostFsFactory(s, this.hostEnv, op);
      connecting.then(
        () => this.made.add(connecting),
        () => this.hosts.delete(key),
      );
      this.hosts.set(key, (h = connecting));
    }
    return unlessCancelled(h, op.signal, `connecting to the node${s.ssh ? ` (ssh ${s.ssh})` : ''}`);
  }

  async close(): Promise<void> {
    const all = [...this.hosts.values()];
    this.hosts.clear();
    for (const h of all) {
      if (this.made.has(h)) await (await h).close();
      // Still connecting (a cancelled command whose node does not answer the handshake): closed once
      // made, not waited for; that held the cancelled command until the handshake's timeout (20 s).
      else void h.then((fs) => fs.close(), () => undefined);
    }
  }

  private paths(ctx: AppContext, volume: AppVolume) {
    // Volume names become path segments: only DNS labels (config validation
    // guarantees it; this keeps any other caller from escaping the roots).
    const problem = dnsLabelProblem(volume.name);
    if (problem) throw new KompoxError('config', `volume name "${volume.name}" ${problem}`, { field: 'app.volumes' });
    const s = k3sSettings(ctx);
    const ns = appNamespace(ctx);
    const diskVolDir = `${s.diskRoot}/${ns}/${volume.name}`;
    const snapVolDir = `${s.snapshotRoot}/${ns}/${volume.name}`;
    return {
      s,
      diskVolDir,
      snapVolDir,
      diskDir: (name: string) => `${diskVolDir}/${name}`,
      snapArchive: (name: string, format: ArchiveFormat = SNAPSHOT_FORMAT) => `${snapVolDir}/${name}${archiveExtension(format)}`,
      snapMeta: (name: string) => `${snapVolDir}/${name}.json`,
    };
  }

  // ---------------------------------------------------------------- registry access by identity

  /** Registries the nodes hold credentials for themselves (registries.yaml), named by K3S_NODE_REGISTRIES. */
  readonly registryAccess: RegistryAccessPart = {
    byIdentity: (ctx, registry) => {
      const hit = k3sNodeRegistries(ctx).find((r) => credentialMatches(r, { registry, repository: '' }));
      return hit ? `the K3s nodes' own credentials (K3S_NODE_REGISTRIES: ${hit})` : undefined;
    },
  };

  // ---------------------------------------------------------------- cluster

  readonly cluster: ClusterPart = {
    kubeconfig: (ctx, op) => this.clusterKubeconfig(ctx, op),
    status: (ctx) => this.clusterStatus(ctx),
  };

  /**
   * With `cluster.auth.type: k3s`, the kubeconfig K3s writes on the node
   * (K3S_KUBECONFIG, default /etc/rancher/k3s/k3s.yaml), read locally or over
   * SSH; its loopback server address is replaced by K3S_API_SERVER, or by the
   * SSH host. Any other auth type: undefined (cluster.auth is used).
   */
  private async clusterKubeconfig(ctx: ClusterContext, op: Op): Promise<string | undefined> {
    if (ctx.cluster.auth.type !== 'k3s') return undefined;
    const s = k3sSettings(ctx);
    const fs = await this.host(s, op);
    let text: string;
    try {
      text = (await fs.readFile(s.kubeconfigPath)).toString('utf8');
    } catch (e) {
      throw new KompoxError('auth', `cannot read the K3s kubeconfig ${s.kubeconfigPath} on the node (${fs.describe}): ${(e as Error).message}`, {
        field: 'cluster.settings.K3S_KUBECONFIG',
        hint: 'Point K3S_KUBECONFIG at the kubeconfig K3s wrote, readable by the SSH user; or use cluster.auth.type kubectl with a kubeconfig file.',
      });
    }
    let server = s.apiServer;
    if (!server && s.ssh) {
      const { parseSshTarget } = await import('./ssh-hostfs.js');
      const host = parseSshTarget(s.ssh).host;
      server = host.includes(':') ? `[${host}]` : host;
    }
    if (!server) return text;
    // Only loopback addresses are rewritten: a kubeconfig already naming a
    // reachable server is left as it is.
    const url = server;
    return text.replace(/(server:\s*)https:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?/g, (_m, pre: string, _h: string, port?: string) =>
      /^https?:\/\//.test(url) ? `${pre}${url}` : `${pre}https://${url}${port ?? ''}`,
    );
  }

  /** What the settings say about the node's public address (no connection is made). */
  private async clusterStatus(ctx: ClusterContext): Promise<ClusterStatusInfo> {
    const s = k3sSettings(ctx);
    const info: ClusterStatusInfo = { diskRoot: s.diskRoot, snapshotRoot: s.snapshotRoot, access: s.ssh ? `ssh ${s.ssh}` : 'local' };
    if (s.node) info.node = s.node;
    let host: string | undefined;
    if (s.ssh) {
      const { parseSshTarget } = await import('./ssh-hostfs.js');
      host = parseSshTarget(s.ssh).host;
    }
    const ip = s.publicIP ?? (host && isIP(host) ? host : undefined);
    const fqdn = s.publicFQDN ?? (host && !isIP(host) ? host : undefined);
    if (ip) info.ingressIP = ip;
    if (fqdn) info.ingressFQDN = fqdn;
    return info;
  }

  // ---------------------------------------------------------------- volumes (pure: k3s/volume.ts)

  volumeClass(ctx: AppContext, volume: AppVolume): VolumeClass {
    return volumes.volumeClass(ctx, volume);
  }

  pvSource(ctx: AppContext, volume: AppVolume, disk: Disk | undefined, facts: ClusterFacts): VolumeSourceSpec {
    return volumes.pvSource(ctx, volume, disk, facts);
  }

  // ---------------------------------------------------------------- disks

  readonly disks: DisksPart = {
    list: (ctx, volume, opts, op) => this.diskList(ctx, volume, opts, op),
    create: (ctx, volume, spec, op) => this.diskCreate(ctx, volume, spec, op),
    delete: (ctx, volume, disk, op) => this.diskDelete(ctx, volume, disk, op),
    reveal: (ctx, volume, disk, op) => this.diskReveal(ctx, volume, disk, op),
    markAttached: (ctx, volume, disk, at, op) => this.diskMarkAttached(ctx, volume, disk, at, op),
  };

  /**
   * The disk's metadata; undefined when `dir` has no metadata file (not a
   * Kompox disk). A metadata file that cannot be read or is not valid is
   * refused (damagedMeta): the disk is there, only its record is damaged.
   */
  private async readDiskMeta(fs: HostFs, dir: string): Promise<DiskMeta | undefined> {
    const name = dir.replace(/^.*\//, '');
    return readMetaFile<DiskMeta>(fs, `${dir}/${DISK_META}`, 'kompox-disk', name, dir);
  }

  private toDisk(dir: string, m: DiskMeta, usedBytes?: number): Disk {
    const d: Disk = { name: m.name, volume: m.volume, id: `${dir}/${DATA}`, sizeGiB: m.sizeGiB, createdAt: m.createdAt, tags: { ...m.tags } };
    if (m.node) d.zone = m.node;
    if (usedBytes !== undefined) d.usedBytes = usedBytes;
    return d;
  }

  private async usedBytes(fs: HostFs, dataDir: string): Promise<number> {
    let total = 0;
    const go = async (p: string): Promise<void> => {
      for (const name of await fs.readdir(p)) {
        const st = await fs.lstat(`${p}/${name}`);
        if (!st) continue;
        if (st.kind === 'file') total += st.size;
        else if (st.kind === 'dir') await go(`${p}/${name}`);
      }
    };
    await go(dataDir).catch(() => undefined);
    return total;
  }

  private async diskList(ctx: AppContext, volume: AppVolume, opts: DiskListOptions, op: Op): Promise<Disk[]> {
    const p = this.paths(ctx, volume);
    const fs = await this.host(p.s, op);
    if (!(await fs.lstat(p.diskVolDir))) return [];
    const disks: Disk[] = [];
    for (const name of (await fs.readdir(p.diskVolDir)).sort()) {
      // dot names: temp dirs of a disk being built, pending disks (listed only when asked for), trash
      if (opts.pending ? !name.startsWith(PENDING_PREFIX) : name.startsWith('.')) continue;
      const dir = p.diskDir(name);
      const m = await this.readDiskMeta(fs, dir);
      if (!m || !tagMatchesApp(m.tags[TAG_APP], ctx) || m.tags[TAG_VOLUME] !== volume.name) continue;
      const d = this.toDisk(dir, m, opts.usage ? await this.usedBytes(fs, `${dir}/${DATA}`) : undefined);
      if (opts.pending) d.pending = true;
      const attachedAt = await this.readAttachedAt(fs, dir);
      if (attachedAt) d.tags[TAG_ATTACHED_AT] = attachedAt;
      disks.push(d);
    }
    return disks.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.name < b.name ? -1 : 1));
  }

  private async readAttachedAt(fs: HostFs, dir: string): Promise<string | undefined> {
    try {
      const v = (JSON.parse((await fs.readFile(`${dir}/${ATTACHED_META}`)).toString('utf8')) as { attachedAt?: unknown }).attachedAt;
      return typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? v : undefined;
    } catch {
      return undefined; // never attached (or unreadable: only a hint)
    }
  }

  private async diskMarkAttached(ctx: AppContext, volume: AppVolume, disk: Disk, at: string, op: Op): Promise<void> {
    const found = await this.ownedDiskDir(ctx, volume, disk, op);
    if (!found) throw new KompoxError('notfound', `disk ${disk.name} (${disk.id}) no longer exists`);
    const path = `${found.dir}/${ATTACHED_META}`;
    const text = JSON.stringify({ attachedAt: at }) + '\n';
    // Local writes replace atomically; SFTP renames never replace, so the old
    // record goes first there (a crash in between only loses the hint).
    await found.fs.writeFileAtomic(path, text).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
      await found.fs.rm(path);
      await found.fs.writeFileAtomic(path, text);
    });
    // an earlier attach or reveal of this disk killed before its rename left its temp here
    const written = await found.fs.lstat(path).catch(() => undefined);
    if (written) await sweepDiskMetaTemps(found.fs, [found.dir], written.mtimeMs);
  }

  /**
   * Builds a new disk under a temp name, lets `fill` put the data in place,
   * writes the metadata and renames it into place. Nothing is left on failure
   * or cancellation (fill's streams are stopped; the temp dir is removed).
   */
  private async materialize(
    ctx: AppContext,
    volume: AppVolume,
    name: string,
    sizeGiB: number | undefined,
    source: Record<string, string> | undefined,
    op: Op,
    fill: (fs: HostFs, dataDir: string) => Promise<{ totalBytes?: number; sizeGiB?: number } | void>,
    pending = false,
  ): Promise<Disk> {
    checkName('disk', name);
    // a cancelled operation makes nothing (an empty disk's fill has no stream to stop)
    throwIfAborted(op, `disk ${name} was not made`);
    const p = this.paths(ctx, volume);
    const fs = await this.host(p.s, op);
    const final = p.diskDir(name);
    // a pending disk keeps its name taken too
    const taken = (await fs.lstat(final)) ? final : await this.pendingDir(fs, p.diskVolDir, name);
    if (taken) {
      throw new KompoxError('conflict', `disk "${name}" already exists for volume ${volume.name} (${taken})`, {
        code: 'disk.exists',
        details: { disk: name, volume: volume.name },
        hint: 'Choose another name, or delete the old disk first.',
      });
    }
    const dir = pending ? `${p.diskVolDir}/${PENDING_PREFIX}${name}-${suffix()}` : final;
    await fs.mkdirp(p.diskVolDir, 0o755);
    const tmp = `${p.diskVolDir}/.tmp-${name}-${suffix()}`;
    await fs.mkdir(tmp, 0o755);
    const alive = heartbeat(fs, tmp);
    // the node's name for the disk's metadata, asked beside the fill (over SSH a command of its own)
    const nodeName = fs.hostname();
    nodeName.catch(() => undefined);
    try {
      let r: { totalBytes?: number; sizeGiB?: number };
      try {
        r = (await fill(fs, `${tmp}/${DATA}`)) ?? {};
      } finally {
        await alive.stop();
      }
      const createdAt = nowRfc3339();
      const defaults = diskSizeDefaults(ctx, this.volumeClass(ctx, volume), volume);
      const fromData = r.totalBytes !== undefined ? Math.ceil(r.totalBytes / GiB) : 0;
      const size = Math.max(sizeGiB ?? r.sizeGiB ?? volume.sizeGiB ?? defaults.defaultGiB, fromData, defaults.minGiB);
      const meta: DiskMeta = {
        kind: 'kompox-disk',
        name,
        volume: volume.name,
        sizeGiB: size,
        createdAt,
        node: await nodeName,
        tags: { ...ownershipTags(ctx, volume.name, name, createdAt), ...(pending ? { [TAG_PENDING]: createdAt } : {}) },
      };
      if (source && Object.keys(source).length) meta.source = source;
      await fs.writeFileAtomic(`${tmp}/${DISK_META}`, JSON.stringify(meta, null, 2) + '\n');
      // the tree on the disk before its name (once for the whole tree: see HostFs.syncTree)
      await fs.syncTree(tmp);
      await fs.rename(tmp, dir).catch((e: unknown) => {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST' || (e as NodeJS.ErrnoException).code === 'ENOTEMPTY') {
          throw new KompoxError('conflict', `disk "${name}" was created by someone else meanwhile (${dir})`, {
            code: 'disk.exists',
            details: { disk: name, volume: volume.name },
            hint: 'Choose another name.',
          });
        }
        throw e;
      });
      await syncPublished(fs, p.diskVolDir, [dir]);
      const written = await fs.lstat(`${dir}/${DISK_META}`).catch(() => undefined);
      if (written) {
        await sweepLeftovers(fs, p.diskVolDir, written.mtimeMs);
        // and inside the disks (visible and pending), the temps of their metadata
        const names = await fs.readdir(p.diskVolDir).catch(() => [] as string[]);
        const disks = names.filter((n) => !n.startsWith('.') || n.startsWith(PENDING_PREFIX)).map((n) => `${p.diskVolDir}/${n}`);
        await sweepDiskMetaTemps(fs, disks, written.mtimeMs);
      }
      const disk = this.toDisk(dir, meta, r.totalBytes);
      if (pending) disk.pending = true;
      return disk;
    } catch (e) {
      await fs.rm(tmp).catch(() => undefined);
      throw hostFull(e, fs, p.diskVolDir, `disk ${name} was not created`) ?? e;
    }
  }

  private async diskCreate(ctx: AppContext, volume: AppVolume, spec: DiskCreateSpec, op: Op): Promise<Disk> {
    // A K3s disk lives on its node: there are no zones, and no options to choose.
    if (spec.zone !== undefined) throw unsupported('disk create in a zone', this.name);
    for (const key of Object.keys(spec.options ?? {})) throw unsupported(`disk option ${key}`, this.name);
    const src = spec.source;
    const pending = Boolean(spec.pending);
    if (!src) {
      return this.materialize(
        ctx,
        volume,
        spec.name,
        spec.sizeGiB,
        undefined,
        op,
        async (fs, dataDir) => {
          await fs.mkdir(dataDir, 0o777);
          // Containers run as any uid (like K3s's local-path provisioner), so
          // the empty disk is world-writable; mkdir's mode is cut by the umask.
          await fs.chmod(dataDir, 0o777);
          return { totalBytes: 0 };
        },
        pending,
      );
    }
    if (src.kind === 'snapshot') return this.restore(ctx, volume, src.id, spec, op);
    return this.copyFrom(ctx, volume, spec.name, src.id, spec.sizeGiB, op, pending);
  }

  /** The directory of the pending disk `name`, if there is one. */
  private async pendingDir(fs: HostFs, diskVolDir: string, name: string): Promise<string | undefined> {
    const names = await fs.readdir(diskVolDir).catch(() => [] as string[]);
    // `.pending-{name}-{suffix}`: the suffix has no '-', so the name is everything before the last one
    const hit = names.find((n) => n.startsWith(PENDING_PREFIX) && n.slice(PENDING_PREFIX.length, n.lastIndexOf('-')) === name);
    return hit ? `${diskVolDir}/${hit}` : undefined;
  }

  /** A pending disk renamed into place (its metadata loses the pending tag first). */
  private async diskReveal(ctx: AppContext, volume: AppVolume, disk: Disk, op: Op): Promise<Disk> {
    const found = await this.ownedDiskDir(ctx, volume, disk, op);
    if (!found) throw new KompoxError('notfound', `disk ${disk.name} (${disk.id}) no longer exists`, { code: 'disk.notfound' });
    const { fs, dir } = found;
    const m = (await this.readDiskMeta(fs, dir))!;
    const volDir = dir.replace(/\/[^/]+$/, '');
    const base = dir.slice(volDir.length + 1);
    if (!base.startsWith(PENDING_PREFIX)) return this.toDisk(dir, m); // already visible
    const final = `${volDir}/${m.name}`;
    const tags = { ...m.tags };
    delete tags[TAG_PENDING];
    const meta: DiskMeta = { ...m, tags };
    const metaPath = `${dir}/${DISK_META}`;
    const text = JSON.stringify(meta, null, 2) + '\n';
    await fs.writeFileAtomic(metaPath, text).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
      await fs.rm(metaPath);
      await fs.writeFileAtomic(metaPath, text);
    });
    // the data filled in through the cluster, on the disk before the disk is listed
    await fs.syncTree(dir);
    await fs.rename(dir, final).catch((e: unknown) => {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' || code === 'ENOTEMPTY') {
        throw new KompoxError('conflict', `disk "${m.name}" was created by someone else meanwhile (${final})`, {
          code: 'disk.exists',
          details: { disk: m.name, volume: volume.name },
          hint: 'Choose another name.',
        });
      }
      throw e;
    });
    // (a failure here leaves the disk in place: its data was synced, and it was a pending disk's before)
    await fs.syncDir(volDir);
    return this.toDisk(final, meta);
  }

  /**
   * A new disk from a provider-native id on this node: a directory (another
   * disk's data dir, or any directory, e.g. a Docker volume being migrated)
   * is copied through the archive format (so it is verified like an import);
   * a file is imported as a Kompox archive (a snapshot or an export).
   */
  private async copyFrom(ctx: AppContext, volume: AppVolume, name: string, sourceId: string, sizeGiB: number | undefined, op: Op, pending = false): Promise<Disk> {
    const s = k3sSettings(ctx);
    const fs = await this.host(s, op);
    if (!sourceId.startsWith('/')) {
      throw new KompoxError('usage', `source "${sourceId}" is not a K3s disk or snapshot id`, {
        code: 'disk.source.invalid-id',
        details: { source: sourceId },
        hint: "K3s ids are absolute paths on the node: a disk's data directory or a snapshot archive (the id in the disk or snapshot list).",
      });
    }
    const st = await fs.lstat(sourceId);
    if (!st) throw new KompoxError('notfound', `source ${sourceId} does not exist on the K3s node (${fs.describe})`, { code: 'disk.source.missing', details: { source: sourceId } });
    if (st.kind === 'dir') {
      const srcMeta = await this.readDiskMeta(fs, sourceId.replace(/\/[^/]+$/, ''));
      return this.materialize(ctx, volume, name, sizeGiB ?? srcMeta?.sizeGiB, { fromId: sourceId }, op, async (fs2, dataDir) => {
        const label = `copy ${srcMeta?.name ?? sourceId}`;
        // over SSH the node copies and verifies the tree itself when it can
        const onNode = await copyOnNode(fs2, sourceId, dataDir, label, op);
        if (onNode) return onNode;
        const r = await copyTree(fs2, sourceId, dataDir, { app: srcMeta?.tags[TAG_APP], disk: srcMeta?.name, id: sourceId }, op, byteProgress(op, label));
        return { totalBytes: r.manifest.totalBytes };
      }, pending);
    }
    if (st.kind === 'file') {
      const m = await this.readSnapshotMeta(fs, sourceId, sourceId.startsWith(`${s.snapshotRoot}/`));
      return this.materialize(
        ctx,
        volume,
        name,
        sizeGiB ?? m?.sizeGiB,
        { fromId: sourceId },
        op,
        (fs2, dataDir) => this.unpackFile(fs2, sourceId, dataDir, st.size, m, `import ${m?.name ?? sourceId}`, op),
        pending,
      );
    }
    // a FIFO, socket, device or symlink: nothing a disk is copied or imported from (a FIFO would block the read)
    throw new KompoxError('usage', `source ${sourceId} is neither a directory nor an archive file (it is ${st.kind === 'symlink' ? 'a symlink' : 'a FIFO, socket or device'})`, {
      code: 'disk.source.not-a-disk',
      details: { source: sourceId, kind: st.kind },
      hint: "Give a disk's data directory or a snapshot or export archive on the node (the ids in the disk and snapshot lists are such paths).",
    });
  }

  /**
   * The snapshot's metadata (beside its archive), when `archivePath` is a
   * snapshot. Under the snapshot root (`stored`) a damaged metadata file is
   * refused (damagedMeta): its SHA-256 is what the archive is checked
   * against. Elsewhere (an archive imported by its path) a JSON file beside
   * it that is not a snapshot's is not one (undefined).
   */
  private async readSnapshotMeta(fs: HostFs, archivePath: string, stored = true): Promise<SnapshotMeta | undefined> {
    const metaPath = snapshotMetaPath(archivePath);
    if (metaPath === archivePath) return undefined;
    const name = metaPath.replace(/^.*\//, '').replace(/\.json$/, '');
    const read = readMetaFile<SnapshotMeta>(fs, metaPath, 'kompox-snapshot', name, `${metaPath} and ${archivePath}`);
    return stored ? read : read.catch((e: unknown) => {
      if (e instanceof KompoxError && e.code === 'snapshot.meta.damaged') return undefined;
      throw e;
    });
  }

  /** Extracts an archive file on the node into dataDir; `meta` (a snapshot's) gives the checksum to verify and the format. */
  private async unpackFile(fs: HostFs, archivePath: string, dataDir: string, size: number, meta: SnapshotMeta | undefined, label: string, op: Op) {
    const expectedSha256 = meta?.sha256;
    if (fs.run) {
      // over SSH the node checks, extracts and verifies the archive itself when it can
      // (the format from the snapshot's metadata, absent before version 2; else from the file's first bytes)
      const format = meta ? (meta.format ?? 'tar.gz') : await this.storedFormat(fs, archivePath);
      // the snapshot's counts let the node's progress map tar's plain bytes onto the archive's
      const content = meta && meta.fileCount >= 0 && meta.totalBytes >= 0 ? { fileCount: meta.fileCount, totalBytes: meta.totalBytes } : undefined;
      const onNode = format ? await restoreOnNode(fs, archivePath, dataDir, { format, expectedSha256, size, label, ...(content ? { content } : {}) }, op) : undefined;
      if (onNode) return onNode;
    }
    // over SSH one `cat` on an exec channel: no round trip per 64 KiB
    const input = fs.streamFile ? await fs.streamFile(archivePath) : fs.openRead(archivePath);
    const r = await cancellable(op, destroyOnCancel(input), () =>
      unpackDisk(fs, input, dataDir, { expectedSha256, totalBytes: size, progress: byteProgress(op), progressLabel: label }, op),
    );
    return { totalBytes: r.manifest.totalBytes };
  }

  /** Restore: a new disk from a snapshot archive of this driver (never over an existing disk). */
  private async restore(ctx: AppContext, volume: AppVolume, snapshotId: string, spec: DiskCreateSpec, op: Op): Promise<Disk> {
    this.checkSnapshotPath(ctx, snapshotId);
    const fs = await this.host(k3sSettings(ctx), op);
    const m = await this.readSnapshotMeta(fs, snapshotId);
    const label = m?.name ?? snapshotId.replace(/^.*\//, '').replace(SNAPSHOT_ARCHIVE, '');
    const source: Record<string, string> = { fromId: snapshotId, ...(m ? { fromSnapshot: m.name } : {}) };
    return this.materialize(
      ctx,
      volume,
      spec.name,
      spec.sizeGiB ?? m?.sizeGiB,
      source,
      op,
      async (fs2, dataDir) => {
        const st = await fs2.lstat(snapshotId);
        if (!st) throw new KompoxError('notfound', `snapshot archive ${snapshotId} is missing on the node`);
        return this.unpackFile(fs2, snapshotId, dataDir, st.size, m, `restore ${label}`, op);
      },
      Boolean(spec.pending),
    );
  }

  /** Finds a disk by its id and checks it lives under this driver's disk root (never delete anything else). */
  private async ownedDiskDir(ctx: AppContext, volume: AppVolume, disk: Disk, op: Op): Promise<{ fs: HostFs; dir: string } | undefined> {
    const p = this.paths(ctx, volume);
    const fs = await this.host(p.s, op);
    const dir = disk.id.replace(/\/data\/?$/, '');
    if (!disk.id.endsWith(`/${DATA}`) || !dir.startsWith(`${p.s.diskRoot}/`) || dir.split('/').includes('..')) {
      throw new KompoxError('conflict', `disk id ${disk.id} is not under the disk root ${p.s.diskRoot}; refusing to touch it`);
    }
    if (!(await fs.lstat(dir))) return undefined;
    const m = await this.readDiskMeta(fs, dir);
    if (!m) throw new KompoxError('conflict', `${dir} has no ${DISK_META}; it is not a Kompox disk, refusing to touch it`);
    return { fs, dir };
  }

  private async diskDelete(ctx: AppContext, volume: AppVolume, disk: Disk, op: Op): Promise<void> {
    const found = await this.ownedDiskDir(ctx, volume, disk, op);
    if (!found) return; // already gone
    // Rename first so a half-deleted disk never shows up in lists.
    const trash = `${found.dir.replace(/\/[^/]+$/, '')}/.deleting-${disk.name}-${suffix()}`;
    await found.fs.rename(found.dir, trash);
    await found.fs.rm(trash);
  }

  // ---------------------------------------------------------------- direct transfer (the node's files)

  readonly hostTransfer: HostTransferPart = {
    exportDisk: (ctx, volume, disk, out, op, opts) => this.exportDisk(ctx, volume, disk, out, op, opts),
    importDisk: (ctx, volume, spec, archive, op) => this.importDisk(ctx, volume, spec, archive, op),
    exportSnapshot: (ctx, volume, snapshot, out, op, opts) => this.exportSnapshot(ctx, volume, snapshot, out, op, opts),
  };

  private async exportDisk(ctx: AppContext, volume: AppVolume, disk: Disk, out: NodeJS.WritableStream, op: Op, opts: ArchiveExportOptions = {}): Promise<void> {
    const fs = await this.host(k3sSettings(ctx), op);
    await cancellable(op, destroyOnCancel(out), () =>
      packDisk(
        fs,
        disk.id,
        out,
        {
          source: { app: appId(ctx), volume: volume.name, disk: disk.name, id: disk.id, sizeGiB: disk.sizeGiB },
          progress: byteProgress(op),
          progressLabel: `export ${disk.name}`,
          format: opts.format,
          level: opts.level,
        },
        op,
      ),
    );
  }

  private async importDisk(ctx: AppContext, volume: AppVolume, spec: { name: string; sizeGiB?: number }, archive: ArchiveInput, op: Op): Promise<Disk> {
    return this.materialize(ctx, volume, spec.name, spec.sizeGiB, { from: 'archive' }, op, async (fs, dataDir) => {
      const sizeOf = (m: ArchiveManifest) => {
        const size = m.source?.sizeGiB;
        return typeof size === 'number' && Number.isInteger(size) && size > 0 ? size : undefined;
      };
      if (fs.run && archive.stream instanceof Readable) {
        // over SSH the node extracts, lists and hashes the archive streamed to it when it can (its
        // format from the first bytes), as a restore there; only the archive's SHA-256 is taken here
        const input = archive.stream;
        const onNode = await cancellable(op, destroyOnCancel(input), async () => {
          // not an archive: the same refusal as the other paths give
          const format = await sniffFormat(input);
          const label = `import ${spec.name}`;
          return restoreOnNode(fs, { stream: input }, dataDir, { format, expectedSha256: archive.expectedSha256, size: archive.totalBytes, label }, op);
        });
        if (onNode) return { totalBytes: onNode.totalBytes, sizeGiB: sizeOf(onNode.manifest) };
      }
      const r = await cancellable(op, destroyOnCancel(archive.stream), () =>
        unpackDisk(
          fs,
          archive.stream,
          dataDir,
          {
            expectedSha256: archive.expectedSha256,
            progress: byteProgress(op),
            progressLabel: `import ${spec.name}`,
            totalBytes: archive.totalBytes,
          },
          op,
        ),
      );
      return { totalBytes: r.manifest.totalBytes, sizeGiB: sizeOf(r.manifest) };
    });
  }

  /**
   * The snapshot's archive as it is stored, or, when another format or a
   * level is asked for, re-compressed on the way (verified against the
   * recorded SHA-256 and the manifest; then the result says `transcoded`).
   */
  private async exportSnapshot(
    ctx: AppContext,
    _volume: AppVolume,
    snapshot: Snapshot,
    out: NodeJS.WritableStream,
    op: Op,
    opts: ArchiveExportOptions = {},
  ): Promise<{ transcoded: boolean }> {
    const { level } = opts;
    const format = opts.format ?? (level !== undefined ? DEFAULT_ARCHIVE_FORMAT : undefined);
    this.checkSnapshotPath(ctx, snapshot.id);
    const fs = await this.host(k3sSettings(ctx), op);
    const st = await fs.lstat(snapshot.id);
    if (!st) throw new KompoxError('notfound', `snapshot archive ${snapshot.id} is missing on the node`);
    const progress = byteProgress(op);
    if (format && (level !== undefined || format !== (await this.storedFormat(fs, snapshot.id)))) {
      const stored = fs.streamFile ? await fs.streamFile(snapshot.id) : fs.openRead(snapshot.id);
      await cancellable(op, destroyOnCancel(stored), () =>
        transcodeArchive(stored, out, { format, ...(level !== undefined ? { level } : {}), expectedSha256: snapshot.sha256, progress, progressLabel: `export ${snapshot.name}`, totalBytes: st.size }),
      );
      return { transcoded: true };
    }
    // The snapshot already is a portable archive: send its bytes as they are.
    // over SSH one `cat` on an exec channel: no round trip per 64 KiB
    const input = fs.streamFile ? await fs.streamFile(snapshot.id) : fs.openRead(snapshot.id);
    await cancellable(op, destroyOnCancel(input), async () => {
      progress?.start(`export ${snapshot.name}`, st.size);
      for await (const chunk of input as AsyncIterable<Buffer>) {
        progress?.advance(chunk.length);
        await writeAll(out, chunk);
      }
      // what the archive holds, as recorded when it was made (the bytes sent are checked against its SHA-256)
      const m = progress ? await this.readSnapshotMeta(fs, snapshot.id) : undefined;
      progress?.done(m ? { files: m.fileCount, bytes: m.totalBytes } : undefined);
    });
    return { transcoded: false };
  }

  /** The compression of a stored archive, from its first bytes. */
  private async storedFormat(fs: HostFs, path: string): Promise<ArchiveFormat | undefined> {
    const rs = fs.openRead(path);
    try {
      for await (const chunk of rs as AsyncIterable<Buffer>) return detectArchiveFormat(chunk);
      return undefined;
    } finally {
      rs.destroy();
    }
  }

  // ---------------------------------------------------------------- snapshots

  readonly snapshots: SnapshotsPart = {
    list: (ctx, volume, op) => this.snapshotList(ctx, volume, op),
    create: (ctx, volume, disk, name, op, spec) => this.snapshotCreate(ctx, volume, disk, name, op, spec),
    delete: (ctx, volume, snapshot, op) => this.snapshotDelete(ctx, volume, snapshot, op),
    remnant: (ctx, volume, name, op) => this.snapshotRemnant(ctx, volume, name, op),
  };

  /** The snapshot `name` of this app and volume whose metadata is there but whose archive is not (see SnapshotsPart.remnant). */
  private async snapshotRemnant(ctx: AppContext, volume: AppVolume, name: string, op: Op): Promise<Snapshot | undefined> {
    if (dnsLabelProblem(name)) return undefined;
    const p = this.paths(ctx, volume);
    const fs = await this.host(p.s, op);
    const m = await readMetaFile<SnapshotMeta>(fs, p.snapMeta(name), 'kompox-snapshot', name, `${p.snapMeta(name)} and its archive`);
    if (!m || !tagMatchesApp(m.tags[TAG_APP], ctx) || m.tags[TAG_VOLUME] !== volume.name) return undefined;
    const archive = p.snapArchive(name, m.format ?? 'tar.gz');
    if (await fs.lstat(archive)) return undefined; // a listed snapshot, no remnant
    return this.toSnapshot(archive, m);
  }

  private async snapshotList(ctx: AppContext, volume: AppVolume, op: Op): Promise<Snapshot[]> {
    const p = this.paths(ctx, volume);
    const fs = await this.host(p.s, op);
    if (!(await fs.lstat(p.snapVolDir))) return [];
    const out: Snapshot[] = [];
    for (const f of (await fs.readdir(p.snapVolDir)).sort()) {
      if (f.startsWith('.') || !f.endsWith('.json')) continue;
      const name = f.slice(0, -'.json'.length);
      const m = await readMetaFile<SnapshotMeta>(fs, p.snapMeta(name), 'kompox-snapshot', name, `${p.snapMeta(name)} and its archive`);
      if (!m || m.kind !== 'kompox-snapshot' || !tagMatchesApp(m.tags[TAG_APP], ctx) || m.tags[TAG_VOLUME] !== volume.name) continue;
      const archive = p.snapArchive(name, m.format ?? 'tar.gz');
      if (!(await fs.lstat(archive))) continue;
      out.push(this.toSnapshot(archive, m));
    }
    return out.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.name < b.name ? -1 : 1));
  }

  private toSnapshot(path: string, m: SnapshotMeta): Snapshot {
    return {
      name: m.name,
      volume: m.volume,
      id: path,
      sizeGiB: m.sizeGiB,
      createdAt: m.createdAt,
      sourceDiskId: m.sourceDiskId,
      usedBytes: m.bytes,
      sha256: m.sha256,
      tags: { ...m.tags },
    };
  }

  private async snapshotCreate(ctx: AppContext, volume: AppVolume, disk: Disk, name: string, op: Op, spec: SnapshotCreateSpec = {}): Promise<Snapshot> {
    checkName('snapshot', name);
    throwIfAborted(op, `snapshot ${name} was not made`);
    const p = this.paths(ctx, volume);
    const fs = await this.host(p.s, op);
    const archivePath = p.snapArchive(name);
    const archives = [archivePath, p.snapArchive(name, 'tar.gz')];
    const exists = (what: string) =>
      new KompoxError('conflict', `snapshot "${name}" already exists for volume ${volume.name} (${what})`, {
        code: 'snapshot.exists',
        details: { snapshot: name, volume: volume.name },
        hint: 'Choose another name, or delete the old snapshot first.',
      });
    // An archive without its metadata is a create of this name in its last
    // moments (between its two renames) or one interrupted: a young one is
    // given a moment to get its metadata, so a concurrent create of the same
    // name is told the snapshot exists, not that it was interrupted.
    const settleUntil = Date.now() + ORPHAN_SETTLE_MS;
    let hasMeta: boolean;
    let orphan: string | undefined;
    for (;;) {
      hasMeta = Boolean(await fs.lstat(p.snapMeta(name)));
      orphan = hasMeta ? undefined : await orphanArchive(fs, archives);
      if (!orphan || Date.now() >= settleUntil) break;
      const st = await fs.lstat(orphan);
      if (st && Math.abs(Date.now() - st.mtimeMs) > LEFTOVER_AGE_MS) break; // long dead (clocks apart: no matter, only the wait is skipped)
      await new Promise((r) => setTimeout(r, 100));
    }
    if (orphan) {
      // removed only once old (sweepLeftovers), never by a create that finds it
      throw new KompoxError('conflict', `snapshot "${name}" cannot be made yet: ${orphan} is the archive of a snapshot create or delete that was interrupted, or of a create of this name still finishing (it has no metadata, so no snapshot uses it)`, {
        code: 'snapshot.leftover',
        details: { snapshot: name, volume: volume.name, path: orphan },
        hint: 'Choose another name, or remove that file; the next snapshot of this volume removes it once it is an hour old.',
      });
    }
    if (hasMeta) {
      const archive = await orphanArchive(fs, archives);
      if (archive) throw exists(archive);
      // only outside damage leaves this (a create writes the archive first, a delete removes the metadata first)
      const recorded = p.snapArchive(name, (await this.readSnapshotMeta(fs, archivePath))?.format ?? SNAPSHOT_FORMAT);
      throw new KompoxError(
        'conflict',
        `snapshot "${name}" cannot be made: ${p.snapMeta(name)} records a snapshot of that name whose archive (${recorded}) is missing, moved or removed outside Kompox`,
        {
          code: 'snapshot.archive.missing',
          details: { snapshot: name, volume: volume.name, path: p.snapMeta(name) },
          hint: 'Put the archive back; or delete the snapshot, which removes that metadata and frees the name; or choose another name.',
        },
      );
    }
    const taken = await orphanArchive(fs, archives);
    if (taken) throw exists(taken);
    await fs.mkdirp(p.snapVolDir, 0o755);
    const tmp = `${p.snapVolDir}/.tmp-${name}-${suffix()}${archiveExtension(SNAPSHOT_FORMAT)}`;
    let r: ArchiveResult;
    const source = { app: appId(ctx), volume: volume.name, disk: disk.name, id: disk.id, snapshot: name, sizeGiB: disk.sizeGiB };
    try {
      // over SSH the node lists, hashes and archives the disk itself when it can
      const onNode = await snapshotOnNode(fs, disk.id, tmp, { source, label: `snapshot ${name}`, keepAlive: (dir) => heartbeat(fs, dir), level: spec.level }, op);
      if (onNode) r = onNode;
      else {
        const ws = fs.openWrite(tmp, 0o600);
        // a failed write (a full disk) reaches packDisk's writes or closeWriter as the stream's error, never as a stray event
        ws.on('error', () => undefined);
        // The file exists before anything can fail: a stream opens lazily, and an open
        // still pending when packing fails would create the temp after its removal below.
        await opened(ws);
        let packed = false;
        try {
          r = await cancellable(op, destroyOnCancel(ws), () =>
            packDisk(fs, disk.id, ws, { source, progress: byteProgress(op), progressLabel: `snapshot ${name}`, format: SNAPSHOT_FORMAT, level: spec.level }, op),
          );
          packed = true;
        } finally {
          // a failed or cancelled write is dropped (the temp file goes below); a complete one is flushed
          if (packed) await closeWriter(ws);
          else ws.destroy();
        }
      }
      // the archive's data on the disk before its name (a backup that reads back as zeros is none)
      await fs.syncFile(tmp);
      await fs.rename(tmp, archivePath).catch(async (e: unknown) => {
        // a create of this name that was faster (renames never replace; over SFTP the failure has no errno)
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EEXIST' || code === 'ENOTEMPTY' || (await fs.lstat(archivePath).catch(() => undefined))) throw exists(`${archivePath}, made by another snapshot create meanwhile`);
        throw e;
      });
    } catch (e) {
      await fs.rm(tmp).catch(() => undefined);
      throw hostFull(e, fs, p.snapVolDir, `snapshot ${name} was not created`) ?? e;
    }
    const createdAt = nowRfc3339();
    const meta: SnapshotMeta = {
      kind: 'kompox-snapshot',
      name,
      volume: volume.name,
      sizeGiB: disk.sizeGiB,
      createdAt,
      sourceDiskId: disk.id,
      sha256: r.sha256,
      bytes: r.bytes,
      format: r.format,
      fileCount: r.manifest.fileCount,
      totalBytes: r.manifest.totalBytes,
      treeDigest: r.manifest.treeDigest,
      tags: ownershipTags(ctx, volume.name, name, createdAt),
    };
    try {
      // (the metadata's temp file is synced before its rename: writeFileAtomic)
      await fs.writeFileAtomic(p.snapMeta(name), JSON.stringify(meta, null, 2) + '\n');
    } catch (e) {
      await fs.rm(archivePath).catch(() => undefined);
      throw hostFull(e, fs, p.snapVolDir, `snapshot ${name} was not created`) ?? e;
    }
    // both renames on the disk before the snapshot is reported made
    await syncPublished(fs, p.snapVolDir, [p.snapMeta(name), archivePath]).catch((e: unknown) => {
      throw hostFull(e, fs, p.snapVolDir, `snapshot ${name} was not created`) ?? e;
    });
    const written = await fs.lstat(p.snapMeta(name)).catch(() => undefined);
    if (written) await sweepLeftovers(fs, p.snapVolDir, written.mtimeMs);
    return this.toSnapshot(archivePath, meta);
  }

  private checkSnapshotPath(ctx: AppContext, id: string): void {
    const s = k3sSettings(ctx);
    if (!id.startsWith(`${s.snapshotRoot}/`) || !SNAPSHOT_ARCHIVE.test(id) || id.split('/').includes('..')) {
      throw new KompoxError('conflict', `snapshot id ${id} is not an archive under ${s.snapshotRoot}; refusing to touch it`);
    }
  }

  private async snapshotDelete(ctx: AppContext, _volume: AppVolume, snapshot: Snapshot, op: Op): Promise<void> {
    this.checkSnapshotPath(ctx, snapshot.id);
    const fs = await this.host(k3sSettings(ctx), op);
    // Metadata first: without it the snapshot is no longer listed.
    await fs.rm(snapshotMetaPath(snapshot.id));
    await fs.rm(snapshot.id);
  }

  /** Content digest of a disk (tests, verification after copies). */
  async diskDigest(ctx: AppContext, disk: Disk): Promise<string> {
    const fs = await this.host(k3sSettings(ctx), {});
    return (await digestTree(fs, disk.id)).treeDigest;
  }
}

/**
 * A write that found the filesystem full, here (ENOSPC, EDQUOT) or on the
 * node (its tools say so): one error saying where, and what to do. Anything
 * else is not this (undefined).
 */
function hostFull(e: unknown, fs: HostFs, dir: string, what: string): KompoxError | undefined {
  // an errno of this machine's calls (a KompoxError's code is its own)
  const code = e instanceof KompoxError ? undefined : (e as NodeJS.ErrnoException | undefined)?.code;
  const text = e instanceof Error ? e.message : '';
  const full = code === 'ENOSPC' || code === 'EDQUOT' || /No space left on device|Disk quota exceeded/i.test(text);
  if (!full || (e instanceof KompoxError && e.kind !== 'unavailable')) return undefined;
  const quota = code === 'EDQUOT' || /Disk quota exceeded/i.test(text);
  // what the node's tools said about it (the file they could not write), once; an errno says nothing more
  const said = code
    ? undefined
    : text
        .split(/;\s|\n/)
        .find((l) => /No space left on device|Disk quota exceeded/i.test(l))
        ?.replace(/^.*\bfailed \([^)]*\): /, '')
        .trim();
  return new KompoxError('unavailable', `${what}: ${quota ? 'the disk quota is exceeded' : 'no space left'} under ${dir}${fs.describe === 'local' ? '' : ` on ${fs.describe}`}${said ? ` (${said})` : ''}`, {
    code: 'host.disk.full',
    details: { dir },
    hint: 'Free space there (delete disks or snapshots no longer needed), or move K3S_DISK_ROOT or K3S_SNAPSHOT_ROOT to a larger filesystem.',
    cause: e,
  });
}

/**
 * Syncs `dir` after what `made` names was renamed into it, so the names last
 * a crash. When that fails (EIO) the operation fails, and what it made is
 * removed again (in order: a snapshot's metadata first, so it is never
 * listed without its archive): nothing is reported made that may not last.
 */
async function syncPublished(fs: HostFs, dir: string, made: string[]): Promise<void> {
  try {
    await fs.syncDir(dir);
  } catch (e) {
    for (const m of made) await fs.rm(m).catch(() => undefined);
    throw e;
  }
}

/**
 * The first of a snapshot's archive paths that is there, when its metadata is
 * not: what a create killed between renaming its archive into place and
 * writing the metadata leaves (and a delete killed between removing the two).
 * Never listed (a snapshot is its metadata), so nothing could reach it; it
 * holds its name until sweepLeftovers removes it.
 */
async function orphanArchive(fs: HostFs, paths: string[]): Promise<string | undefined> {
  for (const p of paths) if (await fs.lstat(p)) return p;
  return undefined;
}

/** How a host command ended: its error when it failed, undefined when it succeeded. */
function commandFailure(finished: Promise<unknown>): Promise<Error | undefined> {
  return finished.then(
    () => undefined,
    (x: unknown) => x as Error,
  );
}

/**
 * Packs the disk directory DIR into `out` as a portable archive. Where the
 * host streams a tree itself (SSH: one `tar -c` on the node, see
 * HostFs.tarStream), the archive is built from that stream by packTarStream
 * (the same manifest, per-file SHA-256 and tree digest as packTree's walk);
 * otherwise, or when the node has no tar (a warning), file by file.
 */
export async function packDisk(fs: HostFs, dir: string, out: Writable | NodeJS.WritableStream, opts: PackOptions, op: Op): Promise<ArchiveResult> {
  // The node compresses (at the archives' level), the workstation decompresses, hashes and adds the manifest
  const packed = fs.packedStream && (opts.format ?? DEFAULT_ARCHIVE_FORMAT) === 'tar.zst' && !opts.uncompressed ? await fs.packedStream(dir, opts.level, op.signal) : undefined;
  if (packed) return adoptPacked(fs, dir, packed, out, opts, op);
  const tar = fs.tarStream ? await fs.tarStream(dir, op.signal) : undefined;
  if (!tar) {
    if (fs.tarStream) {
      warningEvent(op, {
        level: 'warning',
        message: `${fs.describe} has no usable tar; reading ${dir} file by file over SFTP (much slower)`,
        hint: 'Install tar (and zstd) on the node for streaming transfers.',
      });
    }
    const r = await packTree(fs, dir, out, opts);
    logLeftOut(op, r);
    specialsLeftOut(op, r.special);
    return r;
  }
  const { packTarStream } = await import('../../archive/tar-stream.js');
  const r = await packFromHost(fs, dir, tar, opts, op, (totalBytes) =>
    packTarStream(tar.stream, out, {
      ...opts,
      ...(totalBytes ? { totalBytes } : {}),
      finished: tar.finished,
      // a K3s disk is a directory, not a filesystem: a lost+found in it is the app's (packTree keeps it too)
      skipLostFound: false,
      // a file tar stored as a hard link to another: its content read again, its size from a stat (not a second read)
      readLinkTarget: async (p, link) => readListedFile(fs, `${dir}/${p.replace(/^(\.\/)+/, '')}`, link),
      linkTargetSize: async (p) => {
        const st = await fs.lstat(`${dir}/${p.replace(/^(\.\/)+/, '')}`);
        return st?.kind === 'file' ? st.size : undefined;
      },
    }),
  );
  const sockets = tar.ignored?.() ?? { count: 0, first: [] };
  specialsLeftOut(op, { count: r.skipped.length + sockets.count, first: [...r.skipped, ...sockets.first].slice(0, SPECIALS_NAMED) });
  return r;
}

/**
 * Says which listed files packTree left out (deleted or replaced since the listing): a replaced one may be a
 * tenant's race for a node file; and which shrank while read (padded with zeros, as GNU tar says it does).
 */
function logLeftOut(op: Op, r: ArchiveResult): void {
  const more = (x: { count: number; first: string[] }) => (x.count > x.first.length ? ` and ${x.count - x.first.length} more` : '');
  if (r.shrank) logEvent(op, `note: ${r.shrank.count} file(s) shrank while they were read (a live disk: truncated by the app, as logrotate's copytruncate does), stored padded with zeros to the size they were listed with: ${r.shrank.first.join(', ')}${more(r.shrank)}; stop the app (--quiesce) for a consistent copy`);
  if (!r.leftOut) return;
  logEvent(op, `left out ${r.leftOut.count} file(s) deleted or replaced since they were listed (a live disk): ${r.leftOut.first.join(', ')}${more(r.leftOut)}`);
}

/**
 * A file of a disk that tar listed, read through openFile: never through a
 * symlink that replaced it or a parent since (the tenant's pod may swap
 * them; SFTP's open follows them), and only while it has the owner tar saw
 * (see SshHostFs.openFile). Fails when it is gone or replaced.
 */
async function readListedFile(fs: HostFs, path: string, owner: { uid: number; gid: number }): Promise<Readable> {
  if (!fs.openFile) return fs.openRead(path);
  const st = await fs.lstat(path);
  const file = st?.kind === 'file' ? await fs.openFile(path, { ...st, uid: owner.uid, gid: owner.gid }) : undefined;
  if (!file) throw new Error(`${path} was deleted or replaced since tar read it`);
  let at = 0;
  return new Readable({
    read() {
      const buf = Buffer.allocUnsafe(256 * 1024);
      file.read(buf, 0, buf.length, at).then(
        (n) => {
          at += n;
          this.push(n ? buf.subarray(0, n) : null);
        },
        (e: Error) => this.destroy(e),
      );
    },
    // closed however the reader lets go of it (the end, a failure, a destroy before the first read)
    destroy(err, cb) {
      file.close().then(
        () => cb(err),
        () => cb(err),
      );
    },
  });
}

/** packDisk's path when the host packed the archive's data itself (HostFs.packedStream). */
async function adoptPacked(fs: HostFs, dir: string, packed: HostTarStream, out: Writable | NodeJS.WritableStream, opts: PackOptions, op: Op): Promise<ArchiveResult> {
  const { adoptPackedStream } = await import('../../archive/tar-stream.js');
  logEvent(op, `archive data packed on the node (${fs.describe}): tar | zstd there; every file checked and the manifest made here`);
  return packFromHost(fs, dir, packed, opts, op, (totalBytes) =>
    adoptPackedStream(packed.stream, out, {
      ...(opts.source ? { source: opts.source } : {}),
      ...(opts.progress ? { progress: opts.progress } : {}),
      ...(opts.progressLabel ? { progressLabel: opts.progressLabel } : {}),
      ...(opts.createdAt ? { createdAt: opts.createdAt } : {}),
      ...(totalBytes ? { totalBytes } : {}),
      finished: packed.finished,
    }),
  );
}

/**
 * Runs `pack` on the stream of a command on the host (HostFs.tarStream or
 * packedStream). The progress total comes from a size walk on the host,
 * started once the command runs, on its own channel: the transfer never
 * waits for it, and it is stopped and settled before this returns (nothing
 * of it outlives the transfer). The command's note (files changed) is
 * logged; when it failed, its own message says more than the truncated
 * stream it left.
 */
async function packFromHost<R>(
  fs: HostFs,
  dir: string,
  command: HostTarStream,
  opts: PackOptions,
  op: Op,
  pack: (totalBytes: PromiseLike<number | undefined> | undefined) => Promise<R>,
): Promise<R> {
  const walkStop = new AbortController();
  const walking = fs.treeBytes && opts.progress ? fs.treeBytes(dir, walkStop.signal).catch(() => undefined) : undefined;
  // a cancel (which destroys the output) must also reach a packing that waits on a node sending nothing (a hung tar, a link gone quiet)
  const onAbort = () => command.stream.destroy(interruptedError());
  if (op.signal?.aborted) onAbort();
  else op.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const r = await pack(walking?.then((t) => t?.bytes));
    const note = await command.finished;
    if (note) logEvent(op, `note: ${note}`);
    return r;
  } catch (e) {
    // a stream this side gave up on before its end: the command fails of the stop (SIGPIPE), which says nothing of why
    const cutHere = !command.stream.readableEnded && !command.stream.errored;
    walkStop.abort(); // its end waited for (below) alongside the command's, not after it
    command.stop();
    // waited for after a cancel too: the command was killed (the signal it was
    // started with), and nothing of it runs on the host once this returns
    // (bounded: a host that no longer answers never confirms the end); its end
    // then says nothing
    const failed = await commandFailure(command.finished);
    if (failed && !op.signal?.aborted && (e === failed || (!cutHere && e instanceof KompoxError && e.kind === 'integrity'))) {
      // the command's own advice when it has one (the node's zstd failed), else what most often fails it: a file the SSH user cannot read;
      // and its own code (k3s.ssh.lost: the connection was cut), which scripts key on
      throw new KompoxError('unavailable', failed.message, { hint: (failed instanceof KompoxError && failed.hint) || 'Check that the SSH user can read every file of the disk.', ...ownCode(failed) });
    }
    throw e;
  } finally {
    op.signal?.removeEventListener('abort', onAbort);
    walkStop.abort();
    await walking;
  }
}

/**
 * Extracts a portable archive into DIR (which must not exist; on failure the
 * caller removes it, as after unpackArchive). Where the host extracts a tar
 * stream itself (SSH: one `tar -x` on the node, see HostFs.untarStream), the
 * archive is verified and turned into that stream here by archiveToTar
 * (every file's SHA-256, the manifest and the archive's SHA-256: the same
 * checks as unpackArchive); otherwise, or when the node has no tar (a
 * warning), file by file.
 */
export async function unpackDisk(fs: HostFs, input: Readable | NodeJS.ReadableStream, dir: string, opts: UnpackOptions, op: Op): Promise<ArchiveResult> {
  if (!fs.untarStream) return unpackArchive(fs, input, dir, opts);
  // tar -x -C needs DIR; the archive's top entry sets its mode, owner and mtime
  await fs.mkdir(dir, 0o700);
  const untar = await fs.untarStream(dir, op.signal);
  if (!untar) {
    warningEvent(op, {
      level: 'warning',
      message: `${fs.describe} has no usable tar; writing ${dir} file by file over SFTP (much slower)`,
      hint: 'Install tar (and zstd) on the node for streaming transfers.',
    });
    await fs.rm(dir);
    return unpackArchive(fs, input, dir, opts);
  }
  // stop reading the archive on a cancel, and once tar -x has failed (nobody reads what we send)
  const feed = new AbortController();
  const stopFeed = () => feed.abort(op.signal?.reason ?? new Error('tar -x ended'));
  if (op.signal?.aborted) stopFeed();
  else op.signal?.addEventListener('abort', stopFeed, { once: true });
  untar.finished.catch(stopFeed);
  // whether the archive itself could not be read here (then tar's complaint about the cut stream says less);
  // not the feed's own stop destroying it (a command that ended first: its failure is the one to report)
  let inputFailed = false;
  (input as Readable).once?.('error', () => (inputFailed ||= !feed.signal.aborted));
  const { archiveToTar } = await import('../../archive/tar-stream.js');
  try {
    const r = await archiveToTar(input, untar.stream, { ...opts, signal: feed.signal, ...(untar.freesHandedOver ? { handOver: true } : {}) });
    untar.stream.end();
    await untar.finished;
    return r;
  } catch (e) {
    untar.stop();
    // the command's own failure (a full disk) says more than the stream it cut; one
    // that only followed the cut (the archive could not be read here, or a member of it was refused:
    // a name that is not UTF-8) says less
    const failed = await commandFailure(untar.finished);
    if (failed && !inputFailed && !op.signal?.aborted && !(e instanceof KompoxError && (e.kind === 'integrity' || e.code === 'archive.name.encoding'))) {
      throw new KompoxError('unavailable', failed.message, { hint: 'Check the free space on the node and that the SSH user can write under the disk root.' });
    }
    throw e;
  } finally {
    op.signal?.removeEventListener('abort', stopFeed);
  }
}

/** Copies a tree through the archive format (pack → verify → extract) on one host, uncompressed (nothing is stored). */
async function copyTree(
  fs: HostFs,
  src: string,
  dest: string,
  source: Record<string, string | undefined>,
  op: Op,
  progress?: ProgressSink,
): Promise<ArchiveResult> {
  const pipe = new PassThrough();
  return cancellable(op, destroyOnCancel(pipe), async () => {
    const packing = packTree(fs, src, pipe, { uncompressed: true, source: Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined)), progress }).then(
      (r) => {
        pipe.end();
        logLeftOut(op, r);
        specialsLeftOut(op, r.special);
        return r;
      },
      (e: unknown) => {
        pipe.destroy(e as Error);
        throw e;
      },
    );
    const [packed, unpacked] = await Promise.all([packing, unpackArchive(fs, pipe, dest, { uncompressed: true })]);
    if (packed.sha256 !== unpacked.sha256) throw new KompoxError('integrity', `copy of ${src} changed in transit`);
    return unpacked;
  });
}
