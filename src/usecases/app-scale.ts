// Stopping the app (its Deployments scaled to 0, waiting until its pods are
// gone) and starting it again with the replica counts it had: the steps of a
// maintenance box, which spans commands (the counts are recorded in between),
// and of snapshot.ts's withAppStopped, which does them within one call.
//
// A quiesce (withAppStopped) records the count to give back on each
// Deployment, in the patch that stops it, and removes the record in the patch
// that starts it again: a process killed in between (SIGKILL, a crash, the
// laptop asleep, the connection lost so the start fails) leaves the app
// stopped, and only the cluster can say so and what to restore. The next
// quiesce, a box, app status and app deploy read the record.
//
// While it runs, the quiesce renews the record (a lease on the annotations
// already there: no new object, no new permission), so a reader tells a
// quiesce still running (LIVE: renewed within the staleness threshold) from
// one whose process died (STALE). A LIVE record is not taken over: two
// quiesces at once would start the app under the other's copy.
//
// The times in a record are its writer's clock. As client-go's leader
// election does, a reader does not trust them to take a record over (a
// quiesce) or start the app over it (app deploy): one that looks STALE (or is
// ahead of the reader's clock) is watched for longer than a renewal period,
// and taken over or overridden only if it did not change meanwhile.
import { performance } from 'node:perf_hooks';
import { KompoxError } from '../domain/errors.js';
import { logEvent, sleep, throwIfAborted, type Op } from '../domain/events.js';
import type { AppContext } from '../domain/model.js';
import { APP_SELECTOR_LABEL, BOX_POD_NAME, appNamespace, nowRfc3339 } from '../domain/names.js';
import type { KubeClient, KubeObject } from '../domain/ports/kube.js';

/** Deployment annotation: the replica count a quiesce gives back when it starts the Deployment again. */
export const ANN_QUIESCED_REPLICAS = 'kompox.dev/quiesced-replicas';
/** Deployment annotation: when the quiesce stopped it (RFC 3339). */
export const ANN_QUIESCED_SINCE = 'kompox.dev/quiesced-since';
/** Deployment annotation: what stopped it, e.g. `snapshot quiet` (a quiesced snapshot) or `export of disk d1`. */
export const ANN_QUIESCED_BY = 'kompox.dev/quiesced-by';
/** Deployment annotation: when the running quiesce last said it still runs (RFC 3339); absent until its first renewal. */
export const ANN_QUIESCED_RENEWED = 'kompox.dev/quiesced-renewed';
const QUIESCE_ANNOTATIONS = [ANN_QUIESCED_REPLICAS, ANN_QUIESCED_SINCE, ANN_QUIESCED_BY, ANN_QUIESCED_RENEWED] as const;
/**
 * Deployment annotation: a maintenance box stopped it (its time, RFC 3339),
 * written by the box's stop in place of any quiesce record it took over and
 * removed by its start. What the box gives back is on the namespace
 * (box.ts); this says, on the Deployment, whose stop it is.
 */
export const ANN_BOX_STOPPED = 'kompox.dev/box-stopped';
/** The patch that removes every quiesce annotation (a record, and its renewal). */
const clearQuiesce = (): Record<string, null> => Object.fromEntries(QUIESCE_ANNOTATIONS.map((k) => [k, null]));

/** How often a running quiesce renews its record by default. */
export const DEFAULT_QUIESCE_RENEW_MS = 30_000;
/** After how long without a renewal a record is STALE by default: 3 periods, so one or two failed renewals (a blip of the API server) do not make it so. */
export const DEFAULT_QUIESCE_STALE_MS = 3 * DEFAULT_QUIESCE_RENEW_MS;
/** How long a record that looks STALE is watched before it is taken over by default: 2 periods, so a renewal late by up to a period is still seen. */
export const DEFAULT_QUIESCE_OBSERVE_MS = 2 * DEFAULT_QUIESCE_RENEW_MS;
/** How far ahead of this clock a record's time may be and still count as LIVE at its word (clocks a little apart); further ahead, it is watched like a STALE one. */
export const QUIESCE_CLOCK_TOLERANCE_MS = 5_000;

/** A quiesce's record on a Deployment it stopped. */
export interface QuiesceRecord {
  /** The replica count to give back. */
  replicas: number;
  /** When it was stopped (RFC 3339; empty when the annotation is missing). */
  since: string;
  /** What stopped it: `snapshot NAME` or `export of disk NAME` (quiesced). */
  by: string;
  /** When the quiesce last renewed it (RFC 3339); absent when it never did. */
  renewed?: string;
}

/** Whether the quiesce that wrote a record still runs, as far as its renewals tell. */
export interface QuiesceLiveness {
  /** Renewed (or, never renewed, stopped) within the staleness threshold. */
  live: boolean;
  /** Its last sign of life (RFC 3339): the renewal, else the stop; empty when neither is readable. */
  last: string;
  /** How long ago that was, in whole seconds (0 for a time ahead of this clock). */
  agoS: number;
  /** When a LIVE record turns STALE unless renewed (RFC 3339). */
  staleAt?: string;
  /** How far ahead of this clock that was, in whole seconds, when beyond the tolerance (its writer's clock is ahead). */
  aheadS?: number;
}

/**
 * A record's liveness by this clock. The times are the writers' clocks: a
 * skew between the machines larger than the threshold misjudges it, so app
 * status (and a dry-run deploy) go by it, but a quiesce takes a record over,
 * and a deploy starts the app over it, only once it watched it unchanged
 * (confirmQuiesceRecordsDead). An unreadable time is STALE (a record no
 * quiesce can be renewing).
 */
export function quiesceLiveness(r: QuiesceRecord, staleMs = DEFAULT_QUIESCE_STALE_MS, now = Date.now()): QuiesceLiveness {
  const last = r.renewed || r.since;
  const t = Date.parse(last);
  if (!last || Number.isNaN(t)) return { live: false, last: '', agoS: Infinity };
  const agoMs = Math.max(0, now - t);
  const ahead = t - now > QUIESCE_CLOCK_TOLERANCE_MS ? { aheadS: Math.round((t - now) / 1000) } : {};
  return agoMs <= staleMs ? { live: true, last, agoS: Math.round(agoMs / 1000), staleAt: nowRfc3339(new Date(t + staleMs + 1000)), ...ahead } : { live: false, last, agoS: Math.round(agoMs / 1000) };
}

/** `running (renewed 12s ago)` or `interrupted (not renewed since T)`: app status, log lines, deploy's warning. */
export function describeLiveness(r: QuiesceRecord, l: QuiesceLiveness): string {
  // not "renewed 0s ago": a time ahead says only that the writer's clock is
  if (l.live && l.aheadS) return `running by its own clock (${r.renewed ? 'renewed' : 'stopped'} at ${l.last}, ${l.aheadS}s ahead of this machine's clock)`;
  if (l.live) return `running (${r.renewed ? `renewed ${l.agoS}s ago` : `stopped ${l.agoS}s ago, not renewed yet`})`;
  return l.last ? `interrupted (not renewed since ${l.last})` : 'interrupted (no readable time)';
}

const deploymentRef = (ctx: AppContext, name: string) => ({ apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: appNamespace(ctx) });

const replicasOf = (d: KubeObject): number => (d.spec as { replicas?: number } | undefined)?.replicas ?? 1;

/** Whether any of the quiesce annotations is on the Deployment (also a stale one on a running Deployment). */
export function hasQuiesceAnnotations(d: KubeObject): boolean {
  const a = d.metadata.annotations ?? {};
  return QUIESCE_ANNOTATIONS.some((k) => a[k] !== undefined);
}

/**
 * The record of a quiesce that stopped this Deployment and has not started it
 * again: a quiesce still running, or one that was interrupted (the cluster
 * cannot tell them apart). A record on a Deployment that runs (replicas > 0:
 * someone started it since) is stale and ignored, as is an unreadable count.
 */
export function quiesceRecord(d: KubeObject): QuiesceRecord | undefined {
  const a = d.metadata.annotations ?? {};
  const count = Number(a[ANN_QUIESCED_REPLICAS]);
  if (replicasOf(d) !== 0 || a[ANN_QUIESCED_REPLICAS] === undefined || !Number.isInteger(count) || count < 1) return undefined;
  const renewed = a[ANN_QUIESCED_RENEWED];
  return { replicas: count, since: a[ANN_QUIESCED_SINCE] ?? '', by: a[ANN_QUIESCED_BY] ?? 'an operation', ...(renewed ? { renewed } : {}) };
}

/** The app's Deployments, by name (sorted). */
export async function appDeployments(kube: KubeClient, ctx: AppContext): Promise<Map<string, KubeObject>> {
  const ns = appNamespace(ctx);
  const deps = await kube.list('apps/v1', 'Deployment', { namespace: ns, labelSelector: `app.kubernetes.io/instance=${ns}` });
  return new Map(deps.map((d) => [d.metadata.name, d] as const).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** How a Deployment stopped by a quiesce that did not start it again is described (log lines, app status). */
export function describeQuiesced(name: string, r: QuiesceRecord): string {
  return `${name} was stopped${r.since ? ` at ${r.since}` : ''} by the quiesced ${r.by}`;
}

/** Whether two reads of a record are the same write: a renewal, or another quiesce's takeover, changes it. */
const sameRecord = (a: QuiesceRecord | undefined, b: QuiesceRecord | undefined): boolean =>
  Boolean(a && b && a.replicas === b.replicas && a.since === b.since && a.by === b.by && a.renewed === b.renewed);

/** Whether a record counts as LIVE at its word: renewed within the threshold by this clock, and not ahead of it beyond the tolerance. */
export function looksLive(r: QuiesceRecord, staleMs = DEFAULT_QUIESCE_STALE_MS): boolean {
  const l = quiesceLiveness(r, staleMs);
  return l.live && !l.aheadS;
}

/** How a record watched unchanged is described: interrupted, also one whose time is ahead of this clock. */
export function describeDeadRecord(r: QuiesceRecord, staleMs = DEFAULT_QUIESCE_STALE_MS): string {
  const l = quiesceLiveness(r, staleMs);
  return l.live ? `interrupted (not renewed while watched; its last renewal, ${l.last}, is ahead of this clock)` : describeLiveness(r, l);
}

/**
 * Who judges the records, for its wait and refusals: a quiesce or a box
 * (which take a dead record over) or app deploy (which starts the app over it).
 */
export interface QuiesceReader {
  /** The code of its refusals. */
  code: string;
  /** What a refusal refuses, after the record: `refusing to stop the app under it`. */
  refusing: string;
  /** What becomes of a record confirmed dead: `is taken over`. */
  outcome: string;
  /** Said first in a refusal's hint (none when the message says it). */
  hintPrefix: string;
  /** What a cancel during the watch leaves. */
  interrupted: string;
}

/** A quiesce (or a box) about to stop the app. */
export const QUIESCE_READER: QuiesceReader = {
  code: 'snapshot.quiesce.busy',
  refusing: 'refusing to stop the app under it',
  outcome: 'is taken over',
  hintPrefix: 'Nothing was changed. ',
  interrupted: 'nothing was changed (the app was not stopped)',
};

/** The records confirmed dead, by Deployment, and the Deployments as last read. */
export interface DeadQuiesceRecords {
  deployments: Map<string, KubeObject>;
  dead: Map<string, QuiesceRecord>;
}

/**
 * Reads the app's Deployments and confirms that the quiesce records on them
 * are dead. A record LIVE at its word refuses at once. One that looks STALE,
 * or ahead of this clock, says so by its writer's clock: it is watched for
 * `observeMs` and refuses if it changed meanwhile; a record that appeared
 * meanwhile (not watched) refuses too. Returns the last read.
 */
export async function confirmQuiesceRecordsDead(
  kube: KubeClient,
  ctx: AppContext,
  reader: QuiesceReader,
  op?: Op,
  opts: { staleMs?: number; observeMs?: number } = {},
): Promise<DeadQuiesceRecords> {
  const staleMs = opts.staleMs ?? DEFAULT_QUIESCE_STALE_MS;
  const observeMs = opts.observeMs ?? DEFAULT_QUIESCE_OBSERVE_MS;
  let deployments = await appDeployments(kube, ctx);
  const suspects = new Map<string, QuiesceRecord>();
  for (const [name, d] of deployments) {
    const record = quiesceRecord(d);
    if (!record) continue;
    if (looksLive(record, staleMs)) throw quiesceBusy(name, record, quiesceLiveness(record, staleMs), observeMs, reader);
    suspects.set(name, record);
  }
  if (suspects.size) deployments = await watchSuspects(kube, ctx, suspects, observeMs, reader, op);
  const dead = new Map<string, QuiesceRecord>();
  for (const [name, d] of deployments) {
    const record = quiesceRecord(d);
    if (!record) continue;
    // a record not watched (a quiesce that began meanwhile) is not known to be dead
    if (!sameRecord(record, suspects.get(name))) throw busyUnwatched(name, record, staleMs, observeMs, reader);
    dead.set(name, record);
  }
  return { deployments, dead };
}

/**
 * Re-reads the records just before the write that confirmQuiesceRecordsDead
 * allowed (`known`: the records it confirmed dead). A record that appeared or
 * changed since is a quiesce begun meanwhile: refused at once, not watched
 * again (a second watch would open another gap, and the caller can retry).
 */
export async function recheckQuiesceRecords(
  kube: KubeClient,
  ctx: AppContext,
  known: ReadonlyMap<string, QuiesceRecord>,
  reader: QuiesceReader,
  opts: { staleMs?: number; observeMs?: number } = {},
): Promise<void> {
  for (const [name, d] of await appDeployments(kube, ctx)) checkQuiesceRecord(name, d, known, reader, opts);
}

/**
 * recheckQuiesceRecords for one Deployment as read (`d`): a quiesce record
 * there that is not one of those `known` (confirmed dead) refuses. app deploy
 * calls it again with the Deployment it reads just before its apply, which
 * is then conditional on that version: a quiesce's stop landing in between
 * makes the apply fail (409) and the check run again.
 */
export function checkQuiesceRecord(name: string, d: KubeObject, known: ReadonlyMap<string, QuiesceRecord>, reader: QuiesceReader, opts: { staleMs?: number; observeMs?: number } = {}): void {
  const record = quiesceRecord(d);
  if (record && !sameRecord(record, known.get(name))) throw busyUnwatched(name, record, opts.staleMs ?? DEFAULT_QUIESCE_STALE_MS, opts.observeMs ?? DEFAULT_QUIESCE_OBSERVE_MS, reader);
}

/** The counts appReplicas found, and the records it confirmed dead (by watching them), which stopApp may take over. */
export interface AppReplicas {
  counts: Record<string, number>;
  takeover: ReadonlyMap<string, QuiesceRecord>;
}

/**
 * The app's Deployments and the replica counts to give back, by name: the
 * count now, except for a Deployment an interrupted quiesce stopped (its
 * record confirmed dead), which counts with the count it recorded (its count
 * now, 0, would keep the app stopped for good); such a one is said in a log
 * event. A LIVE record refuses, before anything is stopped: that quiesce
 * still copies, and taking its record over would start the app under its
 * copy (when either ends) and make its quiesced snapshot crash-consistent.
 */
export async function appReplicas(kube: KubeClient, ctx: AppContext, op?: Op, opts: { staleMs?: number; observeMs?: number } = {}): Promise<AppReplicas> {
  const { deployments, dead } = await confirmQuiesceRecordsDead(kube, ctx, QUIESCE_READER, op, opts);
  const counts: Record<string, number> = {};
  for (const [name, d] of deployments) {
    const record = dead.get(name);
    if (record) logEvent(op, `${describeQuiesced(name, record)}, which was ${describeDeadRecord(record, opts.staleMs)} and has not started it again; it will be started again with replicas ${record.replicas}`);
    counts[name] = record ? record.replicas : replicasOf(d);
  }
  return { counts, takeover: dead };
}

/**
 * Re-reads the Deployments until `observeMs` has passed on this machine's
 * monotonic clock; a watched record that changed (its writer renewed it, or
 * another quiesce took it over) refuses at once. Returns the last read.
 */
async function watchSuspects(kube: KubeClient, ctx: AppContext, suspects: ReadonlyMap<string, QuiesceRecord>, observeMs: number, reader: QuiesceReader, op?: Op): Promise<Map<string, KubeObject>> {
  const bys = [...new Set([...suspects.values()].map((r) => r.by))].join(', ');
  const ahead = [...suspects.values()].every((r) => quiesceLiveness(r).aheadS);
  const why = ahead ? "is dated ahead of this machine's clock" : "looks interrupted by this machine's clock";
  logEvent(op, `waiting up to ${Math.ceil(observeMs / 1000)}s to confirm that the quiesced ${bys} is gone: its record of ${[...suspects.keys()].join(', ')} ${why}, and ${reader.outcome} only if not renewed meanwhile`);
  const end = performance.now() + observeMs;
  const step = Math.min(1000, Math.max(10, observeMs / 10));
  for (;;) {
    const left = end - performance.now();
    await sleep(Math.max(0, Math.min(step, left)), op).catch(() => throwIfAborted(op, reader.interrupted));
    const deployments = await appDeployments(kube, ctx);
    for (const [name, was] of suspects) {
      const d = deployments.get(name);
      const record = d && quiesceRecord(d);
      if (record && !sameRecord(record, was)) throw busyWatched(name, record, observeMs, reader);
    }
    if (left <= step) return deployments;
  }
}

const recordDetails = (name: string, r: QuiesceRecord) => ({ deployment: name, by: r.by, since: r.since, ...(r.renewed ? { renewed: r.renewed } : {}) });

/** A record LIVE at its word: that quiesce still runs, or (if it died) its record looks stale at `staleAt` and is then watched. */
export function quiesceBusy(name: string, r: QuiesceRecord, l: QuiesceLiveness, observeMs = DEFAULT_QUIESCE_OBSERVE_MS, reader = QUIESCE_READER): KompoxError {
  return new KompoxError('conflict', `${describeQuiesced(name, r)}, which is still ${describeLiveness(r, l)}; ${reader.refusing}`, {
    code: reader.code,
    details: { ...recordDetails(name, r), staleAt: l.staleAt },
    hint: `${reader.hintPrefix}Wait for it to finish, or retry after ${l.staleAt} (if it was interrupted, its record looks stale by then, and ${reader.outcome} once it was watched unchanged for ${Math.ceil(observeMs / 1000)}s).`,
  });
}

/** A record that changed while it was watched: its quiesce runs, whatever its times say. */
function busyWatched(name: string, r: QuiesceRecord, observeMs: number, reader: QuiesceReader): KompoxError {
  return new KompoxError('conflict', `${describeQuiesced(name, r)}, which is still running (its record changed within ${Math.ceil(observeMs / 1000)}s of watching; its times are by another clock); ${reader.refusing}`, {
    code: reader.code,
    details: recordDetails(name, r),
    hint: `${reader.hintPrefix}Wait for it to finish, then retry (if it was interrupted, its record stops changing, and ${reader.outcome} once it was watched unchanged for ${Math.ceil(observeMs / 1000)}s).`,
  });
}

/** A record not watched (written since the look): refused as LIVE by its times, else as not known to be dead. */
function busyUnwatched(name: string, r: QuiesceRecord, staleMs: number, observeMs: number, reader: QuiesceReader): KompoxError {
  if (looksLive(r, staleMs)) return quiesceBusy(name, r, quiesceLiveness(r, staleMs), observeMs, reader);
  return new KompoxError('conflict', `${describeQuiesced(name, r)}, which wrote its record since this one looked; ${reader.refusing}`, {
    code: reader.code,
    details: recordDetails(name, r),
    hint: `${reader.hintPrefix}Retry: a record that stopped changing ${reader.outcome} once it was watched unchanged for ${Math.ceil(observeMs / 1000)}s.`,
  });
}

/** What a quiesce refused for a box (`by`: `snapshot NAME`, `export of disk NAME`) says to do, and which operation it was. */
export function quiesceBoxAdvice(by: string): { operation: 'snapshot' | 'export'; hint: string } {
  const operation = by.startsWith('export') ? 'export' : 'snapshot';
  return { operation, hint: `Remove the box first (box destroy; that starts the app again) and retry, or ${operation} without quiescing (crash-consistent).` };
}

/** A quiesce's stop finds a Deployment the box stopped (its mark): refused, not recorded over (its start would then start it under the box). */
function quiesceBoxStopped(ctx: AppContext, name: string, boxSince: string, by: string): KompoxError {
  const { operation, hint } = quiesceBoxAdvice(by);
  return new KompoxError('conflict', `${name} was stopped at ${boxSince} by the maintenance box ${BOX_POD_NAME} of app ${ctx.app.name}; refusing to quiesce the app for the ${by} under it: ${QUIESCE_BOX_UNDONE}`, {
    code: 'snapshot.quiesce.box',
    details: { app: ctx.app.name, box: BOX_POD_NAME, deployment: name, boxSince, by, operation },
    hint,
  });
}

/** What a quiesce refused for a box once it stopped leaves. */
export const QUIESCE_BOX_UNDONE = 'nothing was copied; what it had stopped was started again';

/** A Deployment a start left alone: another quiesce's record is on it (`record`), or the box's mark (`box`: its time). */
export type LeftStopped = { deployment: string; record: QuiesceRecord } | { deployment: string; box: string };

/** Which quiesce a record is: its `by` and `since` (what its own stop wrote). */
export interface QuiesceOwner {
  by: string;
  since: string;
}

const isOwnRecord = (d: KubeObject, own: QuiesceOwner): boolean => d.metadata.annotations?.[ANN_QUIESCED_BY] === own.by && d.metadata.annotations?.[ANN_QUIESCED_SINCE] === own.since;

const PATCH_ATTEMPTS = 5;

/**
 * Reads the Deployment, lets `decide` look at it and say the patch to make
 * (none: nothing to do), and makes it conditional on the version read:
 * another writer in between (a quiesce, a deploy, the controllers writing
 * status) makes it fail with 409 Conflict, and it is read and decided again.
 * Returns the Deployment as read, or undefined when it does not exist.
 */
async function patchIfUnchanged(kube: KubeClient, ctx: AppContext, name: string, decide: (d: KubeObject) => Record<string, unknown> | undefined): Promise<KubeObject | undefined> {
  for (let attempt = 1; ; attempt++) {
    const d = await kube.get(deploymentRef(ctx, name));
    if (!d) return undefined;
    const patch = decide(d);
    if (!patch) return d;
    const metadata = { ...((patch.metadata as Record<string, unknown> | undefined) ?? {}), resourceVersion: d.metadata.resourceVersion };
    try {
      await kube.mergePatch(deploymentRef(ctx, name), { ...patch, metadata });
      return d;
    } catch (e) {
      if (!(e instanceof KompoxError && e.code === 'kube.conflict') || attempt >= PATCH_ATTEMPTS) throw e;
    }
  }
}

/** What the records a stop looked at were: those appReplicas confirmed dead (`takeover`), by the timings it judged them with. */
interface StopLook {
  takeover?: ReadonlyMap<string, QuiesceRecord>;
  staleMs?: number;
  observeMs?: number;
}

/** Who stops the app, and what it records on each Deployment it stops: a quiesce (its record), or a maintenance box (its mark). */
export type Stopper = (QuiesceOwner & StopLook) | ({ box: { since: string } } & StopLook);

/**
 * Stops each named Deployment (replicas 0; those that no longer exist, and
 * those with nothing to give back, are skipped). The same patch records who
 * stopped it: a quiesce, the count to give back (`counts`), when and by what,
 * so a stop whose process dies is found and undone (startApp removes the
 * record); a box, its mark (ANN_BOX_STOPPED; the counts are on the
 * namespace), removing the quiesce record it took over. Either way, any
 * quiesce record found there then but the one appReplicas confirmed dead
 * (`takeover`: a quiesce that began since it looked) refuses, the patch being
 * conditional on what was looked at (re-read and decided again on a 409).
 * A quiesce that finds a Deployment the box stopped (its mark) refuses
 * (snapshot.quiesce.box): recorded over, its start would start it under the
 * box.
 */
export async function stopApp(kube: KubeClient, ctx: AppContext, counts: Record<string, number>, op: Op, by?: Stopper): Promise<void> {
  for (const [name, count] of Object.entries(counts)) {
    if (count === 0) continue;
    let current = 0;
    await patchIfUnchanged(kube, ctx, name, (d) => {
      current = replicasOf(d);
      if (!by) return current === 0 ? undefined : { spec: { replicas: 0 } };
      const record = quiesceRecord(d);
      // only the very record appReplicas watched and found dead is taken over
      if (record && !sameRecord(record, by.takeover?.get(name))) throw busyUnwatched(name, record, by.staleMs ?? DEFAULT_QUIESCE_STALE_MS, by.observeMs ?? DEFAULT_QUIESCE_OBSERVE_MS, QUIESCE_READER);
      // a Deployment stopped already (an interrupted quiesce): its record is taken over, with this operation's own
      const mark = d.metadata.annotations?.[ANN_BOX_STOPPED];
      if (!('box' in by) && mark !== undefined && current === 0) throw quiesceBoxStopped(ctx, name, mark, by.by);
      if ('box' in by) return { metadata: { annotations: { ...clearQuiesce(), [ANN_BOX_STOPPED]: by.box.since } }, spec: { replicas: 0 } };
      // a box's mark on a Deployment that runs is stale (started since, by hand or by an older build): left
      // there, it would have this quiesce's start leave the app stopped for a box that no longer holds it
      const stale = mark !== undefined ? { [ANN_BOX_STOPPED]: null } : {};
      const annotations = { [ANN_QUIESCED_REPLICAS]: String(count), [ANN_QUIESCED_SINCE]: by.since, [ANN_QUIESCED_BY]: by.by, [ANN_QUIESCED_RENEWED]: null, ...stale };
      return { metadata: { annotations }, spec: { replicas: 0 } };
    });
    if (current !== 0) logEvent(op, `stopping ${name} (replicas ${current} → 0)`);
  }
}

/**
 * Starts each named Deployment again with its count (those that no longer
 * exist are skipped), removing a quiesce's record and a box's mark in the
 * same patch. With `own` (a quiesce starting what it stopped), a Deployment
 * whose record is another quiesce's is left alone: that one took it over
 * (once this one's record was stale: its process paused, its renewals lost)
 * and still copies; starting the app would make its quiesced snapshot
 * crash-consistent, and it gives the count back itself. A box (`{ box: true }`:
 * its removal, or the undo of its deploy) leaves alone every Deployment a
 * quiesce's record is on: the box's own stop replaced any record it took
 * over, so one there now is a quiesce's that stopped it since (one the box's
 * conditional stop refused over, or one that did not see the box); only the
 * box's mark is removed there. A quiesce leaves alone a Deployment with the
 * box's mark (stopped at 0): the box holds it (it took this one's record
 * over once it was stale) and gives it back when it is removed. Returns those
 * left alone, with the record or the box's time.
 */
export async function startApp(kube: KubeClient, ctx: AppContext, counts: Record<string, number>, op: Op, own?: QuiesceOwner | { box: true }): Promise<LeftStopped[]> {
  const left: LeftStopped[] = [];
  for (const [name, count] of Object.entries(counts)) {
    let current = count;
    let patched = false;
    let leaving: LeftStopped | undefined;
    await patchIfUnchanged(kube, ctx, name, (d) => {
      current = replicasOf(d);
      patched = false;
      const recorded = hasQuiesceAnnotations(d);
      const mark = d.metadata.annotations?.[ANN_BOX_STOPPED];
      const marked = mark !== undefined;
      const other = !own ? undefined : 'box' in own ? quiesceRecord(d) : recorded && !isOwnRecord(d, own) ? quiesceRecord(d) : undefined;
      leaving = other ? { deployment: name, record: other } : own && !('box' in own) && marked && current === 0 ? { deployment: name, box: mark } : undefined;
      if (leaving) return marked && own && 'box' in own ? { metadata: { annotations: { [ANN_BOX_STOPPED]: null } } } : undefined;
      if (current === count && !recorded && !marked) return undefined;
      patched = true;
      const clear = recorded || marked ? { metadata: { annotations: { ...clearQuiesce(), ...(marked ? { [ANN_BOX_STOPPED]: null } : {}) } } } : {};
      return { ...clear, spec: { replicas: count } };
    });
    if (leaving) left.push(leaving);
    if (patched && current !== count) logEvent(op, `started ${name} again (replicas ${count})`);
  }
  return left;
}

/**
 * Renews a running quiesce's record on the named Deployments (metadata only:
 * no rollout), those whose record is still its own. A failed renewal is said
 * and otherwise ignored: the copy goes on, and a record goes STALE only after
 * several periods without one.
 */
export async function renewQuiesce(kube: KubeClient, ctx: AppContext, names: readonly string[], own: QuiesceOwner, op: Op): Promise<void> {
  for (const name of names) {
    try {
      // milliseconds: renewals closer than a second apart (short periods) stay distinct
      await patchIfUnchanged(kube, ctx, name, (d) => (isOwnRecord(d, own) && replicasOf(d) === 0 ? { metadata: { annotations: { [ANN_QUIESCED_RENEWED]: new Date().toISOString() } } } : undefined));
    } catch (e) {
      logEvent(op, `could not renew the quiesce record of ${name} (the copy goes on): ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

/** The app's Deployments a quiesce stopped and has not started again, with its record and whether that quiesce still runs. */
export async function quiescedDeployments(kube: KubeClient, ctx: AppContext, staleMs = DEFAULT_QUIESCE_STALE_MS): Promise<({ deployment: string; liveness: QuiesceLiveness } & QuiesceRecord)[]> {
  return [...(await appDeployments(kube, ctx))].flatMap(([name, d]) => {
    const record = quiesceRecord(d);
    return record ? [{ deployment: name, ...record, liveness: quiesceLiveness(record, staleMs) }] : [];
  });
}

/**
 * Removes the quiesce records (and a box's marks) of the named Deployments
 * that run: after app deploy applied them (its replica count included,
 * forced), a record there is stale, and left in place it would make a later
 * stop (kubectl scale) look like an interrupted quiesce; a box's mark would
 * have the next quiesce leave the app stopped for a box that is gone (app
 * deploy runs only with no stopped box deployed). Each patch is conditional on the version
 * read, retried on 409 Conflict (the controllers write status meanwhile), so
 * a quiesce that stopped the Deployment since keeps its record. Returns the
 * names it cleared.
 */
export async function clearStaleQuiesceRecords(kube: KubeClient, ctx: AppContext, names: readonly string[]): Promise<{ deployment: string; cleared: string }[]> {
  const cleared: { deployment: string; cleared: string }[] = [];
  for (const name of names) {
    let what: string | undefined;
    await patchIfUnchanged(kube, ctx, name, (d) => {
      const marked = d.metadata.annotations?.[ANN_BOX_STOPPED] !== undefined;
      const recorded = hasQuiesceAnnotations(d);
      what = replicasOf(d) === 0 ? undefined : [recorded && 'the quiesce record', marked && "the maintenance box's mark"].filter(Boolean).join(' and ') || undefined;
      return what ? { metadata: { annotations: { ...clearQuiesce(), ...(marked ? { [ANN_BOX_STOPPED]: null } : {}) } } } : undefined;
    });
    if (what) cleared.push({ deployment: name, cleared: what });
  }
  return cleared;
}

/**
 * Waits until the app has no pod left (Terminating ones included); `what`
 * says, on a timeout (`code`, `hint`) or a cancel (`interrupted`), what was
 * (not) done.
 */
export async function waitAppStopped(
  kube: KubeClient,
  ctx: AppContext,
  timeoutMs: number,
  op: Op,
  what: { code: string; hint: string; interrupted?: string },
): Promise<void> {
  const ns = appNamespace(ctx);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    throwIfAborted(op, what.interrupted);
    const pods = await kube.list('v1', 'Pod', { namespace: ns, labelSelector: `${APP_SELECTOR_LABEL}=${ns}` });
    if (pods.length === 0) return;
    if (Date.now() > deadline) {
      throw new KompoxError('timeout', `the app's pod did not stop in time (${pods.map((p) => p.metadata.name).join(', ')} still there)`, { code: what.code, hint: what.hint });
    }
    await sleep(250, op).catch(() => throwIfAborted(op, what.interrupted));
  }
}
