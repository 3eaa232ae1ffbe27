// Disk data through the cluster, for any driver (docs/disks-and-snapshots.md,
// "Through the cluster"): a helper pod (helper-pod.ts) in the app's namespace
// mounts the disk through a PV/PVC pair like the app's, and the data travels
// as a plain tar stream over the API server's exec stream (never a network
// listener: the namespace and its NetworkPolicy stay closed). Compression,
// checksums and the manifest are Kompox's (src/archive/tar-stream.ts): the
// pod needs nothing but the pinned helper image's tar, sh, find, stat,
// readlink, cat and sha256sum (busybox has them all; only flags busybox and
// GNU tools share are used).
//   - export: the disk mounted read-only, `tar -c` → packTarStream → the
//     portable archive, the same format and verification as the host path;
//     refused while the app (any pod) uses the disk, unless the caller
//     accepts a live, crash-consistent copy (the helper then runs on that
//     pod's node: a ReadWriteOnce disk attaches to one node at a time) or
//     stops the app for it (quiesce);
//   - snapshot export: the snapshot restored into a temporary pending disk,
//     exported, and that disk deleted again (also after a failure or a
//     cancel), so the running app is never touched;
//   - import: a new pending disk (DiskCreateSpec.pending: no list shows it),
//     filled by `tar -x` from archiveToTar (every file checked against the
//     manifest on the way), read back in the pod (per-file SHA-256, modes,
//     link targets: the tree digest must equal the manifest's), and only then
//     revealed. Any failure or cancel deletes the pending disk; what a
//     crashed process left is swept by the next transfer (sweepPendingDisks).
import { posix } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { KompoxError, unsupported } from '../domain/errors.js';
import { asInterrupted, byteProgress, cancellable, destroyOnCancel, logEvent, phaseEvent, sleep, specialsLeftOut, throwIfAborted, uncounted, warningEvent, type Op } from '../domain/events.js';
import { SPECIALS_NAMED } from '../archive/tree-walk.js';
import { lookupSetting, type AppContext, type AppVolume, type Disk, type Snapshot } from '../domain/model.js';
import { appId } from '../domain/names.js';
import { DISK_ATTACHED, type ArchiveExportOptions, type ArchiveInput, type ProviderDriver } from '../domain/ports/driver.js';
import type { KubeClient, KubeObject } from '../domain/ports/kube.js';
import { CHUNK_GARBAGE, GC_EVERY, GarbagePacer, pacePromptly, pacingPipe } from '../archive/memory.js';
import { type ArchiveManifest, type ManifestEntry } from '../archive/archive.js';
import { entriesOf } from '../archive/archive-check.js';
import { digestLine } from '../archive/manifest-log.js';
import { archivePathOf, ListingError, ListingJoin, type ListedEntry as ListingEntry, type ListingSink } from '../archive/listing-join.js';
import { withHelperPod, type RunningHelper } from './helper-pod.js';
import { commandMessages, tarCreateMessages, leftOutGone, shellStatusPhrase, parseTreeBytes, stderrTail, TAR_CHANGED_MARK, helperTarCreateArgv, helperTarExtractArgv, busyboxShortRead, treeBytesArgv } from '../archive/tar-command.js';
import { HELPER_CAPABILITIES, HELPER_DEADLINE_SECONDS, HELPER_LABEL, HELPER_MEMORY_LIMIT } from '../convert/helper-pod.js';

/** Setting (app, cluster or provider settings) choosing the data path: `host`, `cluster` or `auto`. */
export const SETTING_TRANSFER_VIA = 'KOMPOX_TRANSFER_VIA';
/** `host`: the driver reads and writes the disk itself (hostTransfer: K3s). `cluster`: through a helper pod (any driver). */
export type TransferVia = 'host' | 'cluster';

/**
 * The data path of an export or import: as asked, else the setting, else
 * (`auto`) `host` where the driver reads disks itself (K3s), `cluster` otherwise.
 */
export function transferVia(ctx: AppContext, driver: ProviderDriver, operation: string, asked?: string): TransferVia {
  const s = asked === undefined ? lookupSetting(ctx, SETTING_TRANSFER_VIA) : undefined;
  const v = (asked ?? s?.value)?.trim().toLowerCase();
  if (v !== undefined && v !== 'host' && v !== 'cluster' && v !== 'auto') {
    throw new KompoxError(s ? 'config' : 'usage', `${s ? s.field : 'the transfer path'} "${asked ?? s?.value}" is not host, cluster or auto`, {
      code: 'transfer.via.invalid',
      ...(s ? { field: s.field } : {}),
      details: { value: asked ?? s?.value },
      hint: 'Use host (the driver reads the disk itself: K3s), cluster (through a helper pod: any driver) or auto (host where the driver can).',
    });
  }
  if (v === 'host' && !driver.hostTransfer) throw unsupported(`${operation} on the host path`, driver.name);
  if (v === 'host' || v === 'cluster') return v;
  return driver.hostTransfer ? 'host' : 'cluster';
}

/** The provider disk id a PersistentVolume mounts (CSI handle, local or host path), if any. */
export function pvDiskId(pv: KubeObject): string | undefined {
  const spec = (pv.spec ?? {}) as { local?: { path?: string }; csi?: { volumeHandle?: string }; hostPath?: { path?: string } };
  return spec.csi?.volumeHandle ?? spec.local?.path ?? spec.hostPath?.path;
}

/**
 * Whether a PersistentVolume mounts the disk `diskId`: its CSI handle is the
 * id; a local or host path names the disk's directory however it is written
 * (`DIR/`, `DIR/./`), or a directory inside it or above it (either way the
 * pod sees the disk's files). Compared as strings, a hand-written PV's
 * `DIR/` let the disk be deleted under it.
 */
export function pvUsesDisk(pv: KubeObject, diskId: string): boolean {
  const spec = (pv.spec ?? {}) as { local?: { path?: string }; csi?: { volumeHandle?: string }; hostPath?: { path?: string } };
  if (spec.csi?.volumeHandle !== undefined) return spec.csi.volumeHandle === diskId;
  const path = spec.local?.path ?? spec.hostPath?.path;
  if (path === undefined) return false;
  if (!diskId.startsWith('/') || !path.startsWith('/')) return path === diskId;
  const a = posix.normalize(path).replace(/\/+$/, '') || '/';
  const b = posix.normalize(diskId).replace(/\/+$/, '') || '/';
  const within = (inner: string, outer: string) => inner === outer || inner.startsWith(outer === '/' ? '/' : `${outer}/`);
  return within(a, b) || within(b, a);
}

export interface DiskUser {
  namespace: string;
  pod: string;
  node?: string;
  /** Mounted read-only (a helper's export, a read-only claim). */
  readOnly: boolean;
}

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The pods (not yet ended) that mount the disk, through any PersistentVolume naming it. */
export async function podsUsingDisk(kube: KubeClient, diskId: string): Promise<DiskUser[]> {
  const claims = new Map<string, Set<string>>();
  for (const pv of await kube.list('v1', 'PersistentVolume')) {
    const ref = (pv.spec as Any | undefined)?.claimRef;
    if (!pvUsesDisk(pv, diskId) || !ref?.namespace || !ref.name) continue;
    (claims.get(ref.namespace) ?? claims.set(ref.namespace, new Set()).get(ref.namespace)!).add(ref.name);
  }
  const users: DiskUser[] = [];
  for (const [namespace, names] of claims) {
    for (const pod of await kube.list('v1', 'Pod', { namespace })) {
      const phase = (pod.status as Any | undefined)?.phase;
      if (phase === 'Succeeded' || phase === 'Failed') continue;
      const spec = (pod.spec ?? {}) as Any;
      const vols = ((spec.volumes ?? []) as Any[]).filter((v) => names.has(v.persistentVolumeClaim?.claimName));
      if (!vols.length) continue;
      const mounts = [...((spec.containers ?? []) as Any[]), ...((spec.initContainers ?? []) as Any[])].flatMap((c) => (c.volumeMounts ?? []) as Any[]);
      const readOnly = vols.every((v) => v.persistentVolumeClaim.readOnly || mounts.filter((m) => m.name === v.name).every((m) => m.readOnly));
      users.push({ namespace, pod: pod.metadata.name, ...(spec.nodeName ? { node: String(spec.nodeName) } : {}), readOnly });
    }
  }
  return users;
}

function podFailure(what: string, exitCode: number, message: string | undefined, stderr: string): KompoxError {
  const detail = stderr || message || '';
  const noSpace = /No space left on device/i.test(detail);
  // 137 is SIGKILL, which nothing in the helper sends: with the pod still running (helper-pod.ts reads the
  // pod's end first), the kernel's OOM killer took the command alone (cgroup v1, or singleProcessOOMKill)
  const killed = exitCode === 137 && !noSpace;
  const how = killed ? `in the helper pod ${shellStatusPhrase(exitCode)}` : `failed in the helper pod (exit code ${exitCode})`;
  return new KompoxError(noSpace ? 'conflict' : 'unavailable', `${what} ${how}${detail ? `: ${commandMessages(detail, 5)}` : ''}`, {
    code: noSpace ? 'transfer.disk.full' : killed ? 'transfer.pod.killed' : 'transfer.pod.failed',
    details: { exitCode },
    ...(noSpace ? { hint: 'The new disk is too small for the archive: give a larger size.' } : {}),
    ...(killed
      ? { hint: `Most likely the kernel killed it at the helper's memory limit; its commands stream their data and should stay within it (${HELPER_MEMORY_LIMIT}; no setting raises it): run it again, and report it if it happens again.` }
      : {}),
  });
}

/** A failed `tar -c` of a disk in the helper pod: busybox's stop at a file that shrank said as such (busyboxShortRead), else podFailure's. */
function tarCreateFailure(disk: string, exitCode: number, message: string | undefined, stderr: string): KompoxError {
  return (
    busyboxShortRead(`tar -c of disk ${disk} failed in the helper pod`, exitCode, stderr, 'A helper image with GNU tar (KOMPOX_HELPER_IMAGE, e.g. debian)') ??
    podFailure(`tar -c of disk ${disk}`, exitCode, message, stderr)
  );
}

/** Runs a command in the helper; its signal is the operation's, plus `abort` for a failure elsewhere. */
function helperExec(h: RunningHelper, command: string[], io: Parameters<RunningHelper['exec']>[1], op: Op, abort: AbortController) {
  const signal = op.signal ? AbortSignal.any([op.signal, abort.signal]) : abort.signal;
  return h.exec(command, io, { ...op, signal });
}

/** A file's content read in the helper (`cat`), as a stream. */
function catInHelper(h: RunningHelper, path: string, op: Op, abort: AbortController): Readable {
  const out = new PassThrough();
  const err = stderrTail();
  // A reader may stop before the end (a hard link's content is taken up to the size learnt first; on a
  // live disk the file may have grown): the exec is ended with it, else it waits for 'drain' on a stream
  // nobody reads, its socket paused and open for good.
  const gone = new AbortController();
  out.once('close', () => gone.abort());
  const signal = AbortSignal.any([abort.signal, gone.signal]);
  h.exec(['cat', '--', path], { stdout: out, stderr: err.stream }, { ...op, signal: op.signal ? AbortSignal.any([op.signal, signal]) : signal }).then(
    (r) => (r.exitCode === 0 ? out.end() : out.destroy(podFailure(`reading ${path}`, r.exitCode, r.message, err.text()))),
    (e: unknown) => out.destroy(e as Error),
  );
  return out;
}

/**
 * The size walk (treeBytesArgv) in the helper, on its own exec stream beside
 * `tar -c`: the progress total. Never rejects (a failed walk is no total);
 * `stop` ends it, and it has settled, its command ended, when this does.
 */
async function sizeWalkInHelper(h: RunningHelper, dir: string, op: Op, stop: AbortController): Promise<number | undefined> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString('utf8')));
  try {
    const r = await helperExec(h, treeBytesArgv(dir), { stdout: out, stderr: new PassThrough().resume() }, op, stop);
    return r.exitCode === 0 && !stop.signal.aborted ? parseTreeBytes(text)?.bytes : undefined;
  } catch {
    return undefined;
  }
}

/** Bytes the exec stream's end in this process buffers (each side of the pipe). */
const EXEC_PIPE_HIGH_WATER = 256 * 1024;
/**
 * Chunks the pipe from the pod holds for its reader, given out one by one
 * (pacingPipe's readableChunks): the exec stream's messages average about
 * 64 KiB, so about EXEC_PIPE_HIGH_WATER. A byte stream's reader took
 * everything buffered as one new concatenated buffer instead, a copy of
 * 40% of an export's bytes that also kept packTarStream from freeing the
 * messages as it finishes them (markReleasable): 349 paced GCs in an export
 * of the benchmark disk through the cluster, 198 now (docs/benchmarks.md).
 */
const EXEC_PIPE_CHUNKS = 4;

/**
 * The pipe between the bulk exec stream and the archive code, pacing the
 * GC by what crosses it: every byte leaves buffers behind in the exec
 * stream (arriving: the TLS record's and the WebSocket message's; leaving:
 * exec-stream's frame, and over plain HTTP ws's masked copy), which
 * otherwise wait for V8's own GCs. Full GCs both ways: the buffers in
 * flight at a scavenge are promoted and die in the old generation. An
 * export's (tar's stdout) were paced by scavenges until a disk of 200,000
 * small files (its tar arrives in tens of thousands of chunks under 1 KiB,
 * each counted as CHUNK_GARBAGE more) peaked at 116-138 MiB: 93-103 with
 * full GCs, and the benchmark disk at scale 1 96-98 instead of 100-105, for
 * 25-30% more CPU in that export (docs/benchmarks.md). An import's (tar's
 * stdin) wait in the socket's queue and outlive scavenges anyway, counted
 * as three buffers per byte, one of them the decompressed piece it came
 * from (the archive's pacer counts that as it is read, but it waits in this
 * pipe and the socket's queue too): peaks 108-111 MiB against 114-118
 * counting two. Over TLS the masked copy is gone (exec-stream.ts, zeroMask)
 * and three still measured lower than two (98-99 against 103-104 MiB).
 * With half the usual allowance (its bytes count double in the process's
 * one budget): the scale-1 disk's import through the cluster, 3 alternating
 * runs, 99.1-100.4 against 101.4-102.9 MiB, for more GCs. exec-stream now
 * frees each frame once the socket has it (releaseBuffer), yet counting two
 * still peaked at 98-102 MiB (7 runs) against 95-98 with three: the
 * decompressed pieces and TLS's records are the garbage left. Now the
 * import hands its tar over in buffers of its own (archiveToTar's
 * handOver), freed by exec-stream once in frames, and frees the decompressed
 * pieces as it reads them: a handed-over byte counts one (TLS's record), the
 * rest three still; 1,068 paced GCs in an import of the benchmark disk
 * became 284 and its CPU fell by half, the peak (the read-back at the end,
 * not the transfer) unchanged at 95-98 MiB. An export's messages that
 * exec-stream hands over (markReleasable) count one buffer less:
 * packTarStream frees them as it finishes them.
 * docs/benchmarks.md, "Through the cluster within 100 MiB", has the numbers.
 */
function execPipe(direction: 'from-pod' | 'to-pod'): PassThrough {
  // at the line: no paced GC waits on the headroom (RSS_CEILING)
  pacePromptly();
  if (direction === 'to-pod') {
    // archiveToTar hands its buffers over (handOver) and exec-stream frees them and its frames: TLS's
    // records are what is left of a handed-over byte; one 256 KiB buffer waits for the reader at a time
    return pacingPipe(new GarbagePacer(GC_EVERY / 2), 3, { highWaterMark: EXEC_PIPE_HIGH_WATER, readableChunks: 1, perHandedOverByte: 1 }) as PassThrough;
  }
  return pacingPipe(new GarbagePacer(), 2, { highWaterMark: EXEC_PIPE_HIGH_WATER, perChunk: CHUNK_GARBAGE, readableChunks: EXEC_PIPE_CHUNKS }) as PassThrough;
}

export interface ClusterExportOptions extends ArchiveExportOptions {
  /** Read the disk even while a pod uses it (a crash-consistent copy, like a live snapshot). */
  live?: boolean;
  startTimeoutMs?: number;
}

/**
 * Streams the disk as a portable archive into `out` (not ended) through a
 * helper pod. Refused while a pod uses the disk, unless `live`.
 */
export async function exportDiskThroughCluster(
  ctx: AppContext,
  driver: ProviderDriver,
  kube: KubeClient,
  volume: AppVolume,
  disk: Disk,
  out: NodeJS.WritableStream,
  opts: ClusterExportOptions,
  op: Op,
): Promise<{ skipped: string[] }> {
  const users = (await podsUsingDisk(kube, disk.id)).filter((u) => !u.readOnly);
  if (users.length && !opts.live) {
    const who = users.map((u) => `${u.namespace}/${u.pod}`).join(', ');
    throw new KompoxError('conflict', `disk "${disk.name}" is in use by pod ${who}; reading it while the app writes would give an inconsistent copy`, {
      code: 'transfer.disk.in-use',
      details: { disk: disk.name, volume: volume.name, pods: users.map((u) => `${u.namespace}/${u.pod}`) },
      hint: 'Stop the app for the export (quiesce), export a snapshot instead, or accept a live (crash-consistent) export.',
    });
  }
  const nodes = [...new Set(users.map((u) => u.node).filter((n): n is string => Boolean(n)))];
  if (nodes.length > 1) {
    throw new KompoxError('conflict', `disk "${disk.name}" is mounted on several nodes (${nodes.join(', ')}); refusing to add another reader`, { code: 'transfer.disk.in-use' });
  }
  if (users.length) logEvent(op, `note: disk ${disk.name} is in use by ${users.map((u) => u.pod).join(', ')}; exporting it live (crash-consistent) from node ${nodes[0] ?? '(unknown)'}`);
  phaseEvent(op, 'helper', `starting a helper pod to read disk ${disk.name}`);
  return withHelperPod(
    ctx,
    driver,
    kube,
    {
      purpose: 'transfer',
      disks: [{ volume, disk, readOnly: true }],
      capabilities: HELPER_CAPABILITIES.read,
      ...(nodes[0] ? { node: nodes[0] } : {}),
      description: `export of disk ${disk.name}`,
      ...(opts.startTimeoutMs ? { startTimeoutMs: opts.startTimeoutMs } : {}),
    },
    op,
    async (h) => {
      phaseEvent(op, 'transfer', `exporting disk ${disk.name} through pod ${h.pod}`);
      const mp = h.mountPaths[0]!;
      const abort = new AbortController();
      const tarOut = execPipe('from-pod');
      const err = stderrTail();
      const messages = tarCreateMessages(SPECIALS_NAMED);
      err.stream.on('data', (c: Buffer) => messages.feed(c));
      /** busybox tar's exit 1 for files deleted between its directory read and their open (a live disk), and nothing else: a live copy without them. */
      const vanishedOnly = (r: { exitCode: number }) => (r.exitCode === 1 ? messages.vanishedOnly() : undefined);
      const running = helperExec(h, helperTarCreateArgv(mp), { stdout: tarOut, stderr: err.stream }, op, abort).then(
        (r) => {
          // A failed tar -c may still have written a whole stream (tar goes on past a file it cannot read
          // and exits 1 at the end): the stream ends as the tree only when tar succeeded, so the archive
          // never gets its manifest otherwise (what reached the output is no archive an import takes).
          // Files that were gone when tar came to them are no failure: the stream holds the tree as it was.
          if (r.exitCode === 0 || vanishedOnly(r)) tarOut.end();
          else tarOut.destroy(tarCreateFailure(disk.name, r.exitCode, r.message, err.text()));
          return r;
        },
        (e: unknown) => {
          tarOut.destroy(e as Error);
          throw e;
        },
      );
      running.catch(() => undefined);
      const walkStop = new AbortController();
      const walking = sizeWalkInHelper(h, mp, op, walkStop);
      try {
        const { packTarStream, CLUSTER_ZSTD_JOBS } = await import('../archive/tar-stream.js');
        // a cancel also releases a reader that stopped reading (backpressure)
        const packed = await cancellable(op, destroyOnCancel(out), () =>
          packTarStream(tarOut, out, {
            source: { app: appId(ctx), volume: volume.name, disk: disk.name, id: disk.id, sizeGiB: disk.sizeGiB },
            format: opts.format,
            level: opts.level,
            progress: byteProgress(op),
            progressLabel: `export ${disk.name}`,
            totalBytes: walking,
            readLinkTarget: async (p) => catInHelper(h, `${mp}/${p}`, op, abort),
            jobs: CLUSTER_ZSTD_JOBS,
          }),
        );
        const r = await running;
        const vanished = vanishedOnly(r);
        if (r.exitCode !== 0 && !vanished) throw tarCreateFailure(disk.name, r.exitCode, r.message, err.text());
        if (vanished) logEvent(op, `note: ${leftOutGone(vanished)}`);
        // the script's own last line (a file name in tar's messages could hold the mark)
        if (err.text().split('\n').at(-1) === TAR_CHANGED_MARK) logEvent(op, `note: files of disk ${disk.name} changed while tar read them: the archive is a live (crash-consistent) copy`);
        const ignored = messages.found();
        specialsLeftOut(op, { count: packed.skipped.length + ignored.count, first: [...packed.skipped, ...ignored.first].slice(0, SPECIALS_NAMED) });
        return { skipped: packed.skipped };
      } catch (e) {
        abort.abort();
        // the command's own failure says more than the truncated stream it left
        const r = await running.catch(() => undefined);
        if (r && r.exitCode !== 0 && !op.signal?.aborted) throw tarCreateFailure(disk.name, r.exitCode, r.message, err.text());
        throw asInterrupted(op, e, `the export of disk ${disk.name} is incomplete`);
      } finally {
        // ended before the helper pod goes
        walkStop.abort();
        await walking;
      }
    },
  );
}

/** A name for a temporary disk: never shown (the disk is pending), unique. */
function temporaryDiskName(purpose: string): string {
  return `kompox-${purpose}-${randomBytes(4).toString('hex')}`;
}

/**
 * Deletes a disk, waiting while the provider still has it attached (the
 * helper pod has just gone; detaching follows). Uncancellable but bounded.
 */
export async function deleteWhenDetached(ctx: AppContext, driver: ProviderDriver, volume: AppVolume, disk: Disk, op: Op, timeoutMs = 5 * 60_000): Promise<void> {
  const quiet: Op = op.events ? { events: op.events } : {};
  const deadline = Date.now() + timeoutMs;
  for (let wait = 500; ; wait = Math.min(wait * 2, 10_000)) {
    try {
      await driver.disks.delete(ctx, volume, disk, quiet);
      return;
    } catch (e) {
      if (!(e instanceof KompoxError && e.code === DISK_ATTACHED) || Date.now() > deadline) throw e;
    }
    await sleep(wait);
  }
}

/** Deletes a disk that must not stay, saying so when it cannot (it is never listed: pending). */
async function dropDisk(ctx: AppContext, driver: ProviderDriver, volume: AppVolume, disk: Disk, op: Op): Promise<void> {
  try {
    await deleteWhenDetached(ctx, driver, volume, disk, op);
  } catch (e) {
    warningEvent(op, {
      level: 'warning',
      message: `could not delete the temporary disk ${disk.name} (${disk.id}): ${(e as Error).message}; it is not listed (pending) and can be deleted by its id`,
    });
  }
}

/**
 * A pending disk older than this belongs to no running transfer: its helper
 * pod (started after the disk was created) has passed its deadline, and the
 * reveal or delete that follows the pod takes seconds, not an hour.
 */
export const PENDING_LEFTOVER_AGE_MS = (HELPER_DEADLINE_SECONDS + 3600) * 1000;

/**
 * Deletes the pending disks of the volume that a crashed transfer left (the
 * process ended before it could delete them): older than any running
 * transfer's, and mounted by no helper pod's PersistentVolume. They were
 * never visible; deleting them frees their names and space.
 * Best effort: a failure here never fails the transfer.
 */
export async function sweepPendingDisks(ctx: AppContext, driver: ProviderDriver, kube: KubeClient, volume: AppVolume, op: Op, olderThanMs = PENDING_LEFTOVER_AGE_MS): Promise<string[]> {
  const removed: string[] = [];
  try {
    const pending = await driver.disks.list(ctx, volume, { pending: true }, op);
    if (!pending.length) return removed;
    const inUse = new Set((await kube.list('v1', 'PersistentVolume', { labelSelector: HELPER_LABEL })).map(pvDiskId));
    const quiet: Op = op.events ? { events: op.events } : {};
    for (const d of pending) {
      if (inUse.has(d.id) || !(Date.now() - Date.parse(d.createdAt) > olderThanMs)) continue;
      await driver.disks.delete(ctx, volume, d, quiet);
      removed.push(d.name);
      logEvent(op, `removed the unfinished disk ${d.name} (${d.id}), left by an interrupted transfer; it was never visible`);
    }
  } catch (e) {
    if (op.signal?.aborted) throw asInterrupted(op, e);
    // a courtesy: a later transfer tries again
  }
  return removed;
}

/**
 * Streams a snapshot as a portable archive into `out` (not ended): restored
 * into a temporary disk nobody sees, exported through a helper pod, and the
 * temporary disk deleted, whatever happens.
 */
export async function exportSnapshotThroughCluster(
  ctx: AppContext,
  driver: ProviderDriver,
  kube: KubeClient,
  volume: AppVolume,
  snapshot: Snapshot,
  out: NodeJS.WritableStream,
  opts: ClusterExportOptions,
  op: Op,
): Promise<void> {
  await sweepPendingDisks(ctx, driver, kube, volume, op);
  phaseEvent(op, 'restore', `restoring snapshot ${snapshot.name} into a temporary disk`);
  // the restore is a means: the export below is the transfer the summary counts
  const temp = await driver.disks.create(
    ctx,
    volume,
    { name: temporaryDiskName('export'), sizeGiB: snapshot.sizeGiB, source: { kind: 'snapshot', id: snapshot.id }, pending: true },
    uncounted(op),
  );
  try {
    await exportDiskThroughCluster(ctx, driver, kube, volume, temp, out, { ...opts, live: false }, op);
  } finally {
    phaseEvent(op, 'cleanup', `deleting the temporary disk ${temp.name}`);
    await dropDisk(ctx, driver, volume, temp, op);
  }
}

/**
 * A new disk from an archive through a helper pod: created pending, filled,
 * verified in the pod against the archive's manifest, then revealed.
 * Nothing stays after a failure or a cancel.
 */
export async function importDiskThroughCluster(
  ctx: AppContext,
  driver: ProviderDriver,
  kube: KubeClient,
  volume: AppVolume,
  spec: { name: string; sizeGiB?: number; zone?: string; startTimeoutMs?: number },
  archive: ArchiveInput,
  op: Op,
): Promise<Disk> {
  await sweepPendingDisks(ctx, driver, kube, volume, op);
  phaseEvent(op, 'create', `creating disk ${spec.name} (not visible until verified)`);
  const disk = await driver.disks.create(
    ctx,
    volume,
    { name: spec.name, ...(spec.sizeGiB !== undefined ? { sizeGiB: spec.sizeGiB } : {}), ...(spec.zone !== undefined ? { zone: spec.zone } : {}), pending: true },
    op,
  );
  try {
    await withHelperPod(
      ctx,
      driver,
      kube,
      {
        purpose: 'transfer',
        disks: [{ volume, disk, readOnly: false }],
        capabilities: HELPER_CAPABILITIES.write,
        description: `import of disk ${spec.name}`,
        ...(spec.startTimeoutMs ? { startTimeoutMs: spec.startTimeoutMs } : {}),
      },
      op,
      async (h) => {
        const mp = h.mountPaths[0]!;
        phaseEvent(op, 'transfer', `filling disk ${spec.name} through pod ${h.pod}`);
        const abort = new AbortController();
        const stdin = execPipe('to-pod');
        const err = stderrTail();
        const running = helperExec(h, helperTarExtractArgv(mp), { stdin, stderr: err.stream }, op, abort);
        // stop feeding on a cancel, and when tar -x has failed (nobody reads stdin any more)
        const feed = new AbortController();
        // The pipe to the pod goes too: nobody reads it any more (an exec refused before it read anything
        // never does), and archiveToTar waiting for it to drain never sees the abort (its pipeline keeps a
        // stage waiting on a destination it does not destroy): the import hung instead of failing.
        const stopFeed = () => {
          feed.abort(op.signal?.reason ?? new Error('tar -x ended'));
          stdin.destroy();
        };
        if (op.signal?.aborted) stopFeed();
        else op.signal?.addEventListener('abort', stopFeed, { once: true });
        // the exec's own failure (its stream lost before an exit status) is why the feed stopped
        let execFailure: unknown;
        running.then(
          (r) => r.exitCode !== 0 && stopFeed(),
          (x: unknown) => {
            execFailure = x;
            stopFeed();
          },
        );
        const { archiveToTar, CLUSTER_ZSTD_JOBS } = await import('../archive/tar-stream.js');
        let manifest;
        try {
          const fed = await archiveToTar(archive.stream, stdin, {
            signal: feed.signal,
            expectedSha256: archive.expectedSha256,
            progress: byteProgress(op),
            progressLabel: `import ${spec.name}`,
            totalBytes: archive.totalBytes,
            jobs: CLUSTER_ZSTD_JOBS,
            // exec-stream frees each chunk once it is in frames
            handOver: true,
          });
          stdin.end();
          manifest = fed.manifest;
        } catch (e) {
          // before the abort below, which fails the exec too
          const lost = execFailure;
          abort.abort();
          stdin.destroy();
          (archive.stream as { destroy?(): void }).destroy?.();
          const r = await running.catch(() => undefined);
          // unless cancelled or the archive is bad, the pod side says why the feed stopped
          const podExplains = !op.signal?.aborted && !(e instanceof KompoxError && e.kind === 'integrity');
          // a full disk makes tar stop reading: its message says why the stream stopped
          if (r && r.exitCode !== 0 && podExplains) throw podFailure(`tar -x into disk ${spec.name}`, r.exitCode, r.message, err.text());
          if (lost !== undefined && podExplains) throw lost;
          throw asInterrupted(op, e, `no disk was created`);
        } finally {
          op.signal?.removeEventListener('abort', stopFeed);
        }
        const r = await running.catch((e: unknown) => {
          throw asInterrupted(op, e, 'no disk was created');
        });
        if (r.exitCode !== 0) throw podFailure(`tar -x into disk ${spec.name}`, r.exitCode, r.message, err.text());
        phaseEvent(op, 'verify', `verifying disk ${spec.name} in the pod against the archive's manifest`);
        const listing = await readBack(h, mp, op);
        try {
          compareWithManifest(readBackEntries(listing), manifest);
        } finally {
          listing.close();
        }
        logEvent(op, `verified disk ${spec.name}: ${manifest.fileCount} files, ${manifest.totalBytes} bytes, tree digest ${manifest.treeDigest}`);
      },
    );
    throwIfAborted(op, 'no disk was created');
    const visible = await driver.disks.reveal(ctx, volume, disk, op);
    return visible;
  } catch (e) {
    phaseEvent(op, 'cleanup', `deleting the unfinished disk ${disk.name}`);
    await dropDisk(ctx, driver, volume, disk, op);
    throw e;
  }
}

// ---------------------------------------------------------------- verification in the pod

/**
 * Lists the tree under DIR in the helper, in self-describing batches (names
 * are NUL-terminated, so any file name survives): `B<n>\0`, n names, n lines
 * `<raw mode hex> <size>`, then for each symlink its target, `\n\0`; then
 * `H<n>\0`, n regular files' names and `sha256sum -- names` of them; `E\0` at
 * the end. Each file is hashed in the pod; only the listing travels.
 */
export const READ_BACK_SCRIPT = [
  'cd -- "$1" || exit 90',
  `find . -exec sh -c 'printf "B%d\\0" "$#"; printf "%s\\0" "$@"; stat -c "%f %s" -- "$@" || exit 91; for f do if [ -L "$f" ]; then readlink -- "$f" || exit 92; printf "\\0"; fi; done' sh {} + || exit 93`,
  `find . -type f -exec sh -c 'printf "H%d\\0" "$#"; printf "%s\\0" "$@"; sha256sum -- "$@" || exit 94' sh {} + || exit 95`,
  'printf "E\\0"',
].join('\n');

/** An entry of the read-back listing, as compareWithManifest takes it (`path`: the archive path). */
export interface ListedEntry {
  /** Archive path (`data`, `data/x`). */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  size: number;
  sha256?: string;
  linkpath?: string;
}

const READ_BACK = 'the listing';
/**
 * Bytes of entries each of the read-back's two sorters gathers in memory at
 * a time (a quarter of EntrySorter's default): the read-back comes when the
 * transfer has left the process at its peak, and 2 MiB runs put 4 MiB of
 * objects on top of it (an import of 20,040 files through the cluster: 100
 * MiB at the read-back); more, smaller runs only cost a merge level more.
 */
const READ_BACK_RUN = 512 * 1024;

function badListing(why: string): KompoxError {
  return new KompoxError('integrity', `the read-back listing from the helper pod is malformed (${why})`, { code: 'transfer.verify.listing' });
}

/**
 * Runs READ_BACK_SCRIPT in the helper and streams what it prints into a
 * ListingJoin (entries and hashes sorted apart, spilled past a few MiB):
 * nothing of the listing is held whole, whatever the file count (a disk of
 * 20,040 files held 24 MiB more at the end of an import through the cluster
 * when the listing was parsed from one buffer into Maps). The caller closes it.
 */
async function readBack(h: RunningHelper, dir: string, op: Op): Promise<ListingJoin> {
  const listing = new ListingJoin({ what: READ_BACK, runBytes: READ_BACK_RUN });
  const parser = new ReadBackParser(listing);
  let failure: unknown;
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      // the first failure is kept (the command's exit status may say more); the rest is not read
      if (failure === undefined) {
        try {
          parser.write(chunk);
        } catch (e) {
          failure = e;
        }
      }
      cb();
    },
  });
  const err = stderrTail();
  try {
    const r = await h.exec(['sh', '-c', READ_BACK_SCRIPT, 'sh', dir], { stdout: out, stderr: err.stream }, op);
    if (r.exitCode !== 0) throw podFailure('reading the imported files back', r.exitCode, r.message, err.text());
    if (failure !== undefined) throw failure;
    parser.end();
    return listing;
  } catch (e) {
    listing.close();
    throw e;
  }
}

/** The read-back listing in path order, as compareWithManifest takes it (a listing it cannot join is malformed). */
function* readBackEntries(listing: ListingJoin): Generator<ListedEntry> {
  try {
    for (const e of listing.sorted()) {
      const out: ListedEntry = { path: archivePathOf(e), type: e.kind, mode: e.mode, size: e.size };
      if (e.sha256 !== undefined) out.sha256 = e.sha256;
      if (e.linkpath !== undefined) out.linkpath = e.linkpath;
      yield out;
    }
  } catch (e) {
    throw e instanceof ListingError ? badListing(e.message) : e;
  }
}

const S_IFMT = 0o170000;
/** A name, a stat line or a checksum line longer than this is not a listing's (names are bounded by PATH_MAX). */
const READ_BACK_FIELD_MAX = 64 * 1024;

/** GNU sha256sum's escaping of a name with a backslash or a line break (the line then starts with `\`). */
function escapedNames(name: Buffer): Buffer[] {
  const esc = (withCr: boolean) => {
    const out: number[] = [];
    for (const b of name) {
      if (b === 0x5c) out.push(0x5c, 0x5c);
      else if (b === 0x0a) out.push(0x5c, 0x6e);
      else if (b === 0x0d && withCr) out.push(0x5c, 0x72);
      else out.push(b);
    }
    return Buffer.from(out);
  };
  return [esc(true), esc(false)];
}

/** A listed name (`.`, `./x`) as a path relative to the listed directory (`` for itself). */
function readBackPath(name: Buffer): string {
  const s = name.toString('utf8');
  if (s === '.') return '';
  if (!s.startsWith('./')) throw badListing(`unexpected name ${JSON.stringify(s)}`);
  return s.slice(2);
}

/**
 * Parses READ_BACK_SCRIPT's output as it streams (chunks cut anywhere) into
 * a ListingSink: entries as their stat lines come (symlinks once their
 * targets have), hashes as their lines do. What is held is one batch's names
 * (as one buffer: a batch is one command line, bounded by ARG_MAX), the
 * batch's symlinks until their targets come, and a partial field.
 * Malformed output is an error (never a silent pass): write() throws it, and
 * end() when the listing stopped short.
 */
export class ReadBackParser {
  private state: 'tag' | 'count' | 'names' | 'stats' | 'links' | 'hashes' | 'done' = 'tag';
  private rest: Buffer | undefined;
  private batch = 0;
  private count = 0;
  /** The batch's names, end to end, and where each ends. */
  private names = Buffer.alloc(0);
  private namesLength = 0;
  private ends: number[] = [];
  /** Index of the next name to take stats or a checksum line for. */
  private i = 0;
  /** The batch's symlinks waiting for their targets, in the order the names came. */
  private links: ListingEntry[] = [];
  private link = 0;

  constructor(private readonly sink: ListingSink) {}

  private name(i: number): Buffer {
    return this.names.subarray(i === 0 ? 0 : this.ends[i - 1]!, this.ends[i]!);
  }

  private addName(b: Buffer): void {
    if (this.namesLength + b.length > this.names.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.names.length, this.namesLength + b.length, 4096));
      this.names.copy(grown, 0, 0, this.namesLength);
      this.names = grown;
    }
    b.copy(this.names, this.namesLength);
    this.namesLength += b.length;
    this.ends.push(this.namesLength);
  }

  private endBatch(): void {
    this.ends = [];
    this.namesLength = 0;
    // a big batch's buffer is not kept for the next
    if (this.names.length > 1024 * 1024) this.names = Buffer.alloc(0);
    this.links = [];
    this.state = 'tag';
  }

  write(chunk: Buffer): void {
    const buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    this.rest = undefined;
    let pos = 0;
    const until = (byte: number): Buffer | undefined => {
      const end = buf.indexOf(byte, pos);
      if (end < 0) return undefined;
      const b = buf.subarray(pos, end);
      pos = end + 1;
      return b;
    };
    for (;;) {
      if (this.state === 'done') {
        if (pos < buf.length) throw badListing('data after the end marker');
        return;
      }
      if (this.state === 'tag') {
        if (pos >= buf.length) break;
        const tag = buf[pos]!;
        if (tag === 0x45 /* E */) {
          if (pos + 1 >= buf.length) break;
          if (buf[pos + 1] !== 0) throw badListing('no end marker');
          pos += 2;
          this.state = 'done';
          continue;
        }
        if (tag !== 0x42 /* B */ && tag !== 0x48 /* H */) throw badListing(`unknown batch ${JSON.stringify(String.fromCharCode(tag))}`);
        this.batch = tag;
        pos++;
        this.state = 'count';
      } else if (this.state === 'count') {
        const f = until(0);
        if (!f) break;
        const n = Number(f.toString('ascii'));
        if (!Number.isInteger(n) || n < 1 || f.length > 9) throw badListing('bad batch size');
        this.count = n;
        this.state = 'names';
      } else if (this.state === 'names') {
        const f = until(0);
        if (!f) break;
        this.addName(f);
        if (this.ends.length === this.count) {
          this.i = 0;
          this.state = this.batch === 0x42 ? 'stats' : 'hashes';
        }
      } else if (this.state === 'stats') {
        const f = until(0x0a);
        if (!f) break;
        const m = /^([0-9a-f]+) (\d+)$/.exec(f.toString('ascii'));
        if (!m) throw badListing('bad stat line');
        const raw = parseInt(m[1]!, 16);
        const fmt = raw & S_IFMT;
        const kind = fmt === 0o100000 ? 'file' : fmt === 0o040000 ? 'dir' : fmt === 0o120000 ? 'symlink' : 'other';
        // no times: the read-back compares what the manifest holds
        const e: ListingEntry = { path: readBackPath(this.name(this.i)), kind, mode: raw & 0o7777, size: kind === 'file' ? Number(m[2]) : 0, mtimeMs: 0, ctime: '' };
        if (kind === 'symlink') this.links.push(e);
        else this.sink.entry(e);
        if (++this.i === this.count) {
          this.link = 0;
          if (this.links.length) this.state = 'links';
          else this.endBatch();
        }
      } else if (this.state === 'links') {
        const t = until(0);
        if (!t) break;
        const e = this.links[this.link]!;
        e.linkpath = (t[t.length - 1] === 0x0a ? t.subarray(0, -1) : t).toString('utf8');
        this.sink.entry(e);
        if (++this.link === this.links.length) this.endBatch();
      } else {
        // hashes: `[\]<64 hex>  <name>\n`, the name as listed (GNU sha256sum escapes one with \ or a line break)
        if (pos >= buf.length) break;
        const escaped = buf[pos] === 0x5c;
        const at = pos + (escaped ? 1 : 0);
        if (buf.length < at + 66) break;
        const hex = buf.toString('ascii', at, at + 64);
        if (!/^[0-9a-f]{64}$/.test(hex)) throw badListing('bad checksum line');
        if (buf[at + 64] !== 0x20 || (buf[at + 65] !== 0x20 && buf[at + 65] !== 0x2a)) throw badListing('bad checksum separator');
        const name = this.name(this.i);
        const forms = escaped ? escapedNames(name) : [name];
        const from = at + 66;
        const form = forms.find((f) => buf.length > from + f.length && buf.subarray(from, from + f.length).equals(f) && buf[from + f.length] === 0x0a);
        if (!form) {
          // a form that may still come whole: wait for more
          if (forms.some((f) => buf.length <= from + f.length)) break;
          throw badListing('checksum line does not name the expected file');
        }
        pos = from + form.length + 1;
        this.sink.hash(readBackPath(name), hex);
        if (++this.i === this.count) this.endBatch();
      }
    }
    if (buf.length - pos > READ_BACK_FIELD_MAX + 2 * 4096) throw badListing(`a field of over ${READ_BACK_FIELD_MAX} bytes`);
    // a copy: the chunk's buffer may be the source's
    if (pos < buf.length) this.rest = Buffer.from(buf.subarray(pos));
  }

  /** The listing ended: throws unless its end marker came. */
  end(): void {
    if (this.state !== 'done') throw badListing(this.state === 'tag' && !this.rest ? 'no end marker' : 'truncated');
  }
}

/** Parses READ_BACK_SCRIPT's output whole (tests, small listings): its entries in path order. */
export function parseReadBack(buf: Buffer): ListedEntry[] {
  const listing = new ListingJoin({ what: READ_BACK });
  try {
    const p = new ReadBackParser(listing);
    p.write(buf);
    p.end();
    return [...readBackEntries(listing)];
  } finally {
    listing.close();
  }
}

/**
 * The tree as read back (LISTING, in path order: readBackEntries) must be
 * the manifest's, entry by entry (a fresh filesystem's empty lost+found
 * aside); the first difference is the error: the manifest's entries first,
 * then what only the disk has. A merge of the two in path order (the
 * manifest an import returns streams its entries in path order), with no
 * table of either (issue 11: flat memory whatever the file count).
 */
export function compareWithManifest(listing: Iterable<ListedEntry>, manifest: ArchiveManifest): void {
  const fail = (what: string) =>
    new KompoxError('integrity', `the imported disk does not match the archive: ${what}`, {
      code: 'transfer.verify.mismatch',
      hint: 'Nothing was kept. Retry the import; if it fails again, check the disk and the helper image.',
    });
  const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  // the manifest's entries in path order: as they come when they do (one pass to see), else sorted
  let prev: string | undefined;
  let inOrder = true;
  for (const w of entriesOf(manifest)) {
    if (prev !== undefined && !(prev < w.path)) {
      inOrder = false;
      break;
    }
    prev = w.path;
  }
  const wanted: Iterable<ManifestEntry> = inOrder ? entriesOf(manifest) : [...manifest.entries].sort(byPath);
  const LF = 'data/lost+found';
  const listed = listing[Symbol.iterator]();
  let cur = listed.next();
  let last: string | undefined;
  /** The listing's next entry, checked to come in path order. */
  const take = (): ListedEntry => {
    const g = cur.value as ListedEntry;
    if (last !== undefined && !(last < g.path)) throw new Error(`compareWithManifest: the listing is not in path order at ${JSON.stringify(g.path)}`);
    last = g.path;
    // anything inside lost+found makes a lost+found the archive has not an extra entry
    if (lostFound && g.path.startsWith(`${LF}/`)) lostFoundFull = true;
    cur = listed.next();
    return g;
  };
  const digest = createHash('sha256');
  let extra: string | undefined;
  /** The listing has a lost+found directory the archive has not: allowed while nothing inside it is listed. */
  let lostFound = false;
  let lostFoundFull = false;
  /** Listed entries before `path` that the archive does not have. */
  const skipTo = (path: string | undefined) => {
    while (!cur.done && (path === undefined || cur.value.path < path)) {
      const g = take();
      if (g.path === LF && g.type === 'dir') {
        lostFound = true;
        continue;
      }
      extra ??= g.path;
      digest.update(digestLine(g as ManifestEntry));
    }
  };
  for (const w of wanted) {
    skipTo(w.path);
    const g = !cur.done && cur.value.path === w.path ? take() : undefined;
    if (!g) throw fail(`${w.path} is missing`);
    if (g.type !== w.type) throw fail(`${w.path} is a ${g.type}, the archive has a ${w.type}`);
    if ((g.mode & 0o7777) !== (w.mode & 0o7777)) throw fail(`${w.path} has mode ${(g.mode & 0o7777).toString(8)}, the archive ${(w.mode & 0o7777).toString(8)}`);
    if (w.type === 'file' && (g.size !== w.size || g.sha256 !== w.sha256)) throw fail(`file ${w.path} has ${g.size} bytes with SHA-256 ${g.sha256 ?? '?'}, the archive ${w.size} bytes with ${w.sha256}`);
    if (w.type === 'symlink' && g.linkpath !== w.linkpath) throw fail(`symlink ${w.path} points to ${g.linkpath}, the archive to ${w.linkpath}`);
    digest.update(digestLine(g as ManifestEntry));
  }
  skipTo(undefined);
  // a lost+found with something in it is the first extra entry in path order (it comes before what is inside it)
  if (lostFoundFull && (extra === undefined || LF < extra)) extra = LF;
  if (extra !== undefined) throw fail(`${extra} is not in the archive`);
  // and, as every import checks it, the tree digest
  const got = digest.digest('hex');
  if (got !== manifest.treeDigest) throw fail(`its tree digest is ${got}, the archive's ${manifest.treeDigest}`);
}
