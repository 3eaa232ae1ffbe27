// Copies that stay on a K3s node (snapshot restore, disk copy, snapshot
// create) done by commands on the node over SSH (HostFs.run), so no byte of
// the data crosses to the workstation: checksums are computed on the node
// and read back, and Kompox checks them exactly as unpackArchive would
// (same manifest, per-file SHA-256, tree digest, refusals). Each returns
// undefined, after a log event saying why, when the node lacks the tools
// (the caller then takes the streaming path); locally (no `run`) nothing
// changes. The commands and their parsers are in node-commands.ts.
import { KompoxError } from '../../domain/errors.js';
import { asInterrupted, byteProgress, logEvent, type Op, type ProgressSink } from '../../domain/events.js';
import {
  MANIFEST_NAME,
  buildManifest,
  checkExpectedSha256,
  integrity,
  manifestBody,
  parseManifest,
  treeDigestOf,
  verifyManifest,
  type ArchiveFormat,
  type ArchiveResult,
  type ArchiveSource,
} from '../../archive/archive.js';
import { tarCreateOutcome } from '../../archive/tar-command.js';
import type { HostFs, HostRunOptions, HostRunResult } from './hostfs.js';
import {
  PROGRESS_MARK,
  archiveStreamEstimate,
  checkArchiveNames,
  copyTreeArgv,
  extractArgv,
  listTreeArgv,
  listingChange,
  manifestEntriesOf,
  missingTools,
  extractedSha256,
  hostProblem,
  parseTarNames,
  withoutSha256,
  parseTools,
  parseTreeListing,
  seenOf,
  snapshotArgv,
  snapshotStreamEstimate,
  splitExtractOutput,
  stageStatuses,
  tarCheckpointBytes,
  tarRefusal,
  toolsProbeArgv,
  type ListedEntry,
  type NodeLocalTools,
  type NodeLocalWork,
} from './node-commands.js';

/** A HostFs that runs commands on its host (over SSH). */
type NodeFs = HostFs & Required<Pick<HostFs, 'run'>>;

const probes = new WeakMap<HostFs, Promise<NodeLocalTools | undefined>>();

/** The node's tools, probed once per connection; undefined when the probe itself failed. */
function nodeTools(fs: NodeFs): Promise<NodeLocalTools | undefined> {
  let p = probes.get(fs);
  if (!p) {
    p = fs.run(toolsProbeArgv()).then(
      (r) => (r.code === 0 ? parseTools(r.stdout.toString('utf8')) : undefined),
      () => undefined,
    );
    probes.set(fs, p);
  }
  return p;
}

/** FS when the node can do `work` itself; undefined otherwise, said in a log event when it is remote and cannot. */
async function onNode(fs: HostFs, work: NodeLocalWork, op: Op, format?: ArchiveFormat): Promise<NodeFs | undefined> {
  if (!fs.run) return undefined;
  const nfs = fs as NodeFs;
  const tools = await nodeTools(nfs);
  const why = tools ? missingTools(tools, work, format) : 'the probe for its tools failed';
  if (why) logEvent(op, `${work} through this machine, not on the node (${fs.describe}): ${why}`);
  return why ? undefined : nfs;
}

function suffix(): string {
  return Math.random().toString(36).slice(2, 10);
}

function parentOf(path: string): string {
  return path.replace(/\/[^/]+\/?$/, '') || '/';
}

/** Runs a command on the node (cancellable through op), handing its progress reports to `progress`. */
async function run(fs: NodeFs, argv: string[], op: Op, what: string, progress?: HostRunOptions['progress']): Promise<HostRunResult> {
  try {
    return await fs.run(argv, { ...(op.signal ? { signal: op.signal } : {}), ...(progress ? { progress } : {}) });
  } catch (e) {
    const err = asInterrupted(op, e, what);
    if (err !== e) throw err;
    throw new KompoxError('unavailable', `${what} on ${fs.describe} failed: ${(e as Error).message}`);
  }
}

/**
 * The progress of one command on the node: each number it reports is
 * mapped by `toDone` onto PROGRESS's unit and shown as it grows (a smaller
 * one is ignored), never beyond `total`, which `finish` shows once the work
 * is done and checked.
 */
function nodeProgress(progress: ProgressSink | undefined, total: number, toDone: (n: number) => number) {
  let shown = 0;
  const to = (v: number) => {
    const next = Math.min(total, Math.floor(v));
    if (next > shown) {
      progress?.advance(next - shown);
      shown = next;
    }
  };
  return {
    /** For run(): the reports of the command. */
    reports: { mark: PROGRESS_MARK, report: (n: number) => to(toDone(n)) },
    finish: () => to(total),
  };
}

function failed(fs: HostFs, what: string, r: { code: number | null; stderr: string }, detail = r.stderr): KompoxError {
  return new KompoxError('unavailable', `${what} on ${fs.describe} failed (exit code ${r.code ?? 'none'})${detail ? `: ${detail.split('\n').slice(-5).join('; ')}` : ''}`);
}

/** Lists (and hashes) the tree DIR on the node. */
async function listTree(fs: NodeFs, dir: string, op: Op, opts: { hashes?: boolean } = {}): Promise<ListedEntry[]> {
  const what = `listing ${dir}`;
  const r = await run(fs, listTreeArgv(dir, opts), op, what);
  if (r.code !== 0) throw failed(fs, what, r);
  return parseListing(fs, dir, r.stdout, opts);
}

function parseListing(fs: HostFs, dir: string, out: Buffer, opts: { hashes?: boolean } = {}): ListedEntry[] {
  try {
    return parseTreeListing(out, opts);
  } catch (e) {
    throw new KompoxError('unavailable', `listing ${dir} on ${fs.describe}: ${(e as Error).message}`);
  }
}

export interface NodeRestoreOptions {
  format: ArchiveFormat;
  expectedSha256?: string;
  /** The archive's size (progress). */
  size: number;
  /**
   * What the archive holds, when known (a snapshot's metadata): tar's
   * progress counts the plain stream, mapped onto the archive's bytes
   * through an estimate of that stream's size; without it the restore only
   * reports its end.
   */
  content?: { fileCount: number; totalBytes: number };
  label: string;
}

/**
 * Extracts the archive file ARCHIVE into DATADIR (which must not exist) on
 * the node, in one pass beside DATADIR, while the node computes the
 * archive's SHA-256. Before the tree is renamed to DATADIR (nothing is
 * visible until then) Kompox checks, as unpackArchive does: the SHA-256
 * against the snapshot's metadata, the member names (no absolute paths, no
 * `..`, nothing outside data/, nothing twice, the manifest last), and the
 * extracted tree, listed and hashed on the node, against the manifest
 * (every path, type, mode, size, SHA-256 and link target, and the tree
 * digest). Undefined when the node cannot (logged).
 */
export async function restoreOnNode(hostFs: HostFs, archive: string, dataDir: string, opts: NodeRestoreOptions, op: Op): Promise<{ totalBytes: number } | undefined> {
  const fs = await onNode(hostFs, 'restore', op, opts.format);
  if (!fs) return undefined;
  const progress = byteProgress(op);
  progress?.start(opts.label, opts.size);
  logEvent(op, `${opts.label}: on the node (${fs.describe}): extracted, checked and verified there`);
  const decompressor = opts.format === 'tar.gz' ? 'gzip' : 'zstd';
  const x = `${parentOf(dataDir)}/.extract-${suffix()}`;
  try {
    const extracting = `extracting ${archive}`;
    const plain = opts.content ? archiveStreamEstimate(opts.content.fileCount, opts.content.totalBytes) : 0;
    const shown = nodeProgress(progress, opts.size, (n) => (plain > 0 ? (tarCheckpointBytes(n) * opts.size) / plain : 0));
    const e = await run(fs, extractArgv(archive, x, opts.format), op, extracting, plain > 0 ? shown.reports : undefined);
    const es = stageStatuses(withoutSha256(e.stderr), 2);
    if (es.codes[0] === undefined || es.codes[1] === undefined) throw failed(fs, extracting, e, es.text);
    const sha256 = extractedSha256(e.stderr);
    if (!sha256) throw failed(fs, extracting, e, `no SHA-256 of the archive${es.text ? `: ${es.text}` : ''}`);
    // the recorded checksum first: it names the problem best (a changed or damaged file)
    checkExpectedSha256(sha256, opts.expectedSha256);
    if (es.codes[0] !== 0) throw integrity(`the archive is not a valid ${decompressor} stream: it is truncated or corrupt (${es.text || `exit code ${es.codes[0]}`})`);
    const refused = tarRefusal(es.text);
    if (refused) throw refused;
    const out = splitExtractOutput(e.stdout);
    const names = parseTarNames(out.names);
    if (es.codes[1] !== 0) {
      if (hostProblem(es.text)) throw failed(fs, extracting, { code: es.codes[1], stderr: es.text });
      throw integrity(`the archive is not a valid tar archive: it is truncated or corrupt (${es.text || `exit code ${es.codes[1]}`})`);
    }
    checkArchiveNames(names);
    // only what the names said (stripped absolute names would land here too)
    const top = (await fs.readdir(x)).sort();
    if (top.join('/') !== ['data', MANIFEST_NAME].sort().join('/')) throw integrity(`the archive holds ${top.filter((n) => n !== 'data' && n !== MANIFEST_NAME).join(', ') || 'no data directory'} outside data/`);
    if ((await fs.lstat(`${x}/data`))?.kind !== 'dir') throw integrity('archive entry data is not a directory');
    const { entries, others } = manifestEntriesOf(parseListing(fs, `${x}/data`, out.listing));
    if (others.length) throw integrity(`archive entry ${others[0]} is not a file, directory or symlink, which Kompox archives never contain`);
    const manifest = parseManifest(await fs.readFile(`${x}/${MANIFEST_NAME}`));
    verifyManifest(manifest, seenOf(entries));
    await fs.rename(`${x}/data`, dataDir);
    shown.finish();
    progress?.done({ files: manifest.fileCount, bytes: manifest.totalBytes });
    return { totalBytes: manifest.totalBytes };
  } finally {
    await fs.rm(x).catch(() => undefined);
  }
}

/**
 * Copies the tree SRC to DEST (which must not exist) on the node with
 * `cp -a`, then checks that the copy's listing (made by the same command) (every path, type, mode,
 * size, SHA-256 and link target) has SRC's tree digest. Undefined when the
 * node cannot, or SRC holds sockets, fifos or devices (archives leave them
 * out; the streaming copy does), logged.
 */
export async function copyOnNode(hostFs: HostFs, src: string, dest: string, label: string, op: Op): Promise<{ totalBytes: number } | undefined> {
  const fs = await onNode(hostFs, 'copy', op);
  if (!fs) return undefined;
  const before = manifestEntriesOf(await listTree(fs, src, op));
  if (before.others.length) {
    logEvent(op, `copy through this machine, not on the node: ${src} holds ${before.others[0]}, which is not a file, directory or symlink (left out of copies)`);
    return undefined;
  }
  const totalBytes = before.entries.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0);
  const progress = byteProgress(op);
  progress?.start(label, totalBytes);
  logEvent(op, `${label}: on the node (${fs.describe}): copied with cp -a and verified there`);
  const copying = `copying ${src}`;
  // the bytes cp has written so far (copyTreeArgv)
  const shown = nodeProgress(progress, totalBytes, (n) => n);
  const r = await run(fs, copyTreeArgv(src, dest), op, copying, shown.reports);
  if (r.code !== 0) throw failed(fs, copying, r);
  const after = manifestEntriesOf(parseListing(fs, dest, r.stdout));
  const want = treeDigestOf(before.entries);
  const got = treeDigestOf(after.entries);
  if (got !== want || after.others.length) {
    throw integrity(`the copy's tree digest ${got} differs from the source's ${want}`, 'The source changed during the copy (stop the app using it), or the copy was damaged; try again.');
  }
  shown.finish();
  progress?.done({ files: after.entries.filter((e) => e.type === 'file').length, bytes: totalBytes });
  return { totalBytes };
}

export interface NodeSnapshotOptions {
  source: ArchiveSource;
  label: string;
  /**
   * Keeps a temp directory fresh while tar runs (the driver's heartbeat):
   * the manifest waits in one until tar reaches its end, and leftovers of
   * a crash (`.tmp-*`) are swept by age.
   */
  keepAlive?: (dir: string) => { stop(): Promise<void> };
}

/**
 * Writes a Kompox archive (tar.zst) of the tree SRC to the new file ARCHIVE
 * on the node: the tree is listed and hashed there, Kompox builds the
 * manifest from that listing, and `tar -c | zstd` on the node writes the
 * tree with the manifest as its last member; the archive's SHA-256 is
 * computed there. A tree that changed between the listing and tar (a
 * listing of sizes, times and modes after tar differs, or tar saw a change)
 * is not archived here (see liveFallback). Undefined when the node cannot
 * or the tree changed (logged).
 * On failure ARCHIVE may be left: the caller removes it.
 */
export async function snapshotOnNode(hostFs: HostFs, src: string, archive: string, opts: NodeSnapshotOptions, op: Op): Promise<ArchiveResult | undefined> {
  const fs = await onNode(hostFs, 'snapshot', op, 'tar.zst');
  if (!fs) return undefined;
  const listed = await listTree(fs, src, op);
  const { entries, others } = manifestEntriesOf(listed);
  if (others.length) {
    logEvent(op, `snapshot through this machine, not on the node: ${src} holds ${others[0]}, which is not a file, directory or symlink (left out of archives)`);
    return undefined;
  }
  const manifest = buildManifest(entries, 'tar.zst', { source: opts.source });
  const progress = byteProgress(op);
  progress?.start(opts.label, manifest.totalBytes);
  logEvent(op, `${opts.label}: on the node (${fs.describe}): listed, hashed, archived and compressed there`);
  const mdir = `${parentOf(archive)}/.tmp-manifest-${suffix()}`;
  let alive: { stop(): Promise<void> } | undefined;
  try {
    await fs.mkdir(mdir, 0o700);
    alive = opts.keepAlive?.(mdir);
    const body = manifestBody(manifest);
    await fs.writeFileAtomic(`${mdir}/${MANIFEST_NAME}`, body, 0o644);
    const what = `archiving ${src}`;
    // tar counts the plain stream (headers, padding, the manifest): mapped onto the data bytes
    const plain = snapshotStreamEstimate(entries, body.length);
    const shown = nodeProgress(progress, manifest.totalBytes, (n) => (tarCheckpointBytes(n) * manifest.totalBytes) / plain);
    const r = await run(fs, snapshotArgv(src, mdir, archive), op, what, shown.reports);
    const st = stageStatuses(r.stderr, 2);
    const tarOutcome = st.codes[0] === undefined ? 'failed' : tarCreateOutcome('gnu', st.codes[0]);
    if (tarOutcome === 'changed') return await liveFallback(fs, src, archive, `tar saw files change while it read them: ${st.text}`, op);
    if (r.code !== 0 || tarOutcome === 'failed' || st.codes[1] !== 0) throw failed(fs, what, r, st.text);
    const sha = /^([0-9a-f]{64})\b/m.exec(r.stdout.toString('utf8'))?.[1];
    if (!sha) throw failed(fs, what, r, 'no SHA-256 of the archive');
    const change = listingChange(listed, await listTree(fs, src, op, { hashes: false }));
    if (change) return await liveFallback(fs, src, archive, change, op);
    const bytes = (await fs.lstat(archive))?.size ?? 0;
    shown.finish();
    progress?.done({ files: manifest.fileCount, bytes: manifest.totalBytes });
    return { manifest, sha256: sha, bytes, format: 'tar.zst' };
  } finally {
    await alive?.stop();
    await fs.rm(mdir).catch(() => undefined);
  }
}

/**
 * A tree that changed while the node archived it (a live disk): the
 * manifest made from the listing would not describe the archive, so the
 * archive is dropped and the snapshot is made by the streaming path, which
 * builds the manifest from what tar actually read (a crash-consistent copy).
 */
async function liveFallback(fs: NodeFs, src: string, archive: string, detail: string, op: Op): Promise<undefined> {
  await fs.rm(archive);
  logEvent(op, `snapshot through this machine, not on the node: ${src} changed while the node archived it (${detail}); stop the app (--quiesce) for a consistent snapshot`);
  return undefined;
}
