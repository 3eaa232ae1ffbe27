// One typed event stream for every long operation (deploy, destroy, disk and
// snapshot transfers, cluster deploy) and every driver method. A use case
// never prints: it emits events, and the front end decides what to do with
// them (the CLI renders them, one renderer for all commands; a server stores
// or streams them). The Op also carries the AbortSignal: Ctrl-C in the CLI, a
// cancelled request in the server.
import { KompoxError, interruptedError, type Diagnostic } from './errors.js';

export type KompoxEvent =
  /** A step of a longer operation begins, e.g. 'apply', 'rollout', 'quiesce'. */
  | { type: 'phase'; phase: string; message: string }
  /** A note: applied objects, created disks, which disk was chosen. */
  | { type: 'log'; message: string }
  | { type: 'warning'; diagnostic: Diagnostic }
  /** The current state, one line that replaces the previous one (rollout wait). */
  | { type: 'status'; message: string }
  /** Work done so far; `end` closes the progress `id`. */
  | { type: 'progress'; id: string; label: string; done: number; total?: number; unit: 'bytes' | 'items'; end?: boolean; counts?: TransferCounts };

/** What a finished data transfer moved: the files and their bytes (uncompressed), for summaries. */
export interface TransferCounts {
  files: number;
  bytes: number;
}

export type EventSink = (e: KompoxEvent) => void;

/** What every long use case and every driver method takes besides its parameters. */
export interface Op {
  signal?: AbortSignal;
  events?: EventSink;
}

export function emit(op: Op | undefined, e: KompoxEvent): void {
  op?.events?.(e);
}

export function logEvent(op: Op | undefined, message: string): void {
  op?.events?.({ type: 'log', message });
}

export function phaseEvent(op: Op | undefined, phase: string, message: string): void {
  op?.events?.({ type: 'phase', phase, message });
}

export function statusEvent(op: Op | undefined, message: string): void {
  op?.events?.({ type: 'status', message });
}

export function warningEvent(op: Op | undefined, diagnostic: Diagnostic): void {
  op?.events?.({ type: 'warning', diagnostic });
}

/**
 * The one warning of an export, snapshot or copy that left out sockets,
 * FIFOs or devices (archives and copies hold only files, directories and
 * symlinks), the same on every data path: how many, and the first few
 * archive paths (`first`, each optionally with its kind). None: no event.
 */
export function specialsLeftOut(op: Op | undefined, left: { count: number; first: readonly string[] } | undefined): void {
  if (!left?.count) return;
  const more = left.count > left.first.length ? ` and ${left.count - left.first.length} more` : '';
  warningEvent(op, {
    level: 'warning',
    message: `left out ${left.count} ${left.count === 1 ? 'entry that is' : 'entries that are'} not a file, directory or symlink (a socket, FIFO or device): ${left.first.join(', ')}${more}`,
    hint: 'Archives and copies hold only files, directories and symlinks; the app must make such entries again (most make their sockets and FIFOs when they start).',
  });
}

/**
 * Byte progress as the archive code reports it (start, advance, done). The
 * archive keeps this minimal callback; byteProgress turns it into events.
 */
export interface ProgressSink {
  /** total bytes when known */
  start(label: string, total?: number): void;
  advance(bytes: number): void;
  /**
   * The total, learnt after the start (a size walk running alongside the
   * transfer, e.g. on the node over SSH); ignored once the transfer ended.
   */
  total?(bytes: number): void;
  /** The end; `counts` says what was moved when the producer knows (an archive's manifest). */
  done(counts?: TransferCounts): void;
}

let progressIds = 0;

/**
 * A ProgressSink that emits `progress` events on `op`, or undefined when
 * nothing listens (so the archive code skips the bookkeeping). Events are
 * coalesced: one per 1% of a known total, or per MiB without one, plus the
 * start and the end, so a server storing them is not flooded.
 */
export function byteProgress(op: Op | undefined, label?: string): ProgressSink | undefined {
  const events = op?.events;
  if (!events) return undefined;
  const id = `p${++progressIds}`;
  let name = label ?? '';
  let total: number | undefined;
  let done = 0;
  let sent = 0;
  let ended = false;
  const send = (end?: boolean, counts?: TransferCounts) => {
    sent = done;
    events({ type: 'progress', id, label: name, done, ...(total !== undefined ? { total } : {}), unit: 'bytes', ...(end ? { end: true } : {}), ...(counts ? { counts } : {}) });
  };
  return {
    start(l, t) {
      name = label ?? l;
      total = t;
      done = 0;
      ended = false;
      send();
    },
    total(t) {
      if (ended || !(t >= 0)) return;
      total = t;
      send();
    },
    advance(n) {
      done += n;
      const step = total && total > 0 ? Math.max(total / 100, 1) : 1024 * 1024;
      if (done - sent >= step) send();
    },
    done(counts) {
      ended = true;
      send(true, counts);
    },
  };
}

/**
 * `op` for a step whose transfer is not what the command moved (a snapshot
 * restored into a temporary disk only to be exported again): its progress
 * is still shown, but its end carries no counts, so a transfer summary
 * (src/cli/transfer-summary.ts) counts the files once.
 */
export function uncounted(op: Op): Op {
  const events = op.events;
  if (!events) return op;
  return {
    ...op,
    events: (e) => {
      if (e.type === 'progress' && e.counts) {
        const { counts: _dropped, ...rest } = e;
        events(rest);
      } else events(e);
    },
  };
}

/** Throws the `interrupted` error when the operation was cancelled; `what` says what was (not) done. */
export function throwIfAborted(op: Op | undefined, what?: string): void {
  if (op?.signal?.aborted) throw interruptedError(what ? `interrupted: ${what}` : 'interrupted');
}

/** An error from a cancelled operation becomes the `interrupted` error (whatever the aborted stream said). */
export function asInterrupted(op: Op | undefined, e: unknown, what?: string): unknown {
  if (!op?.signal?.aborted || (e instanceof KompoxError && e.kind === 'interrupted')) return e;
  return interruptedError(what ? `interrupted: ${what}` : 'interrupted', { cause: e });
}

/**
 * The bare `interrupted` error (what a driver or a destroyed stream says)
 * made to say what was not done, e.g. `interrupted: disk d2 was not
 * created`; any other error as it is.
 */
export function interruptedSaying(e: unknown, what: string): unknown {
  return e instanceof KompoxError && e.kind === 'interrupted' && e.message === 'interrupted' ? interruptedError(`interrupted: ${what}`, { cause: e }) : e;
}

/**
 * `step`, or `interrupted` as soon as `signal` aborts (`interrupted: DOING`
 * when given, else the bare one the use case says more of: interruptedSaying):
 * a step that takes no signal (an SSH handshake, a tool probe on a node, a
 * `find` on a hung filesystem) does not hold a cancel until it ends, which
 * may be never. It is left to run; closing its connection ends what can be.
 */
export function unlessCancelled<T>(step: Promise<T>, signal: AbortSignal | undefined, doing?: string): Promise<T> {
  if (!signal) return step;
  const cancelled = () => interruptedError(doing ? `interrupted: ${doing}` : 'interrupted');
  if (signal.aborted) return Promise.reject(cancelled());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(cancelled());
    signal.addEventListener('abort', onAbort, { once: true });
    step.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Stops a stream the operation reads or writes when it is cancelled, so the operation fails and cleans up (a `cancel` for `cancellable`). */
export function destroyOnCancel(stream: NodeJS.ReadableStream | NodeJS.WritableStream): (reason: Error) => void {
  return (reason) => {
    // The operation fails through the stream it was using (and reports
    // `interrupted`); the stream's own 'error' event must not go unheard
    // (an uncaught exception when nothing else listens at that moment).
    stream.on('error', () => undefined);
    (stream as unknown as { destroy?(e?: Error): void }).destroy?.(reason);
  };
}

/**
 * Runs `fn` with `cancel` hooked to the signal: cancel stops the work (e.g.
 * destroys the stream being read or written), so `fn` fails, cleans up after
 * itself and its failure is reported as `interrupted`.
 */
export async function cancellable<T>(op: Op | undefined, cancel: (reason: Error) => void, fn: () => Promise<T>, what?: string): Promise<T> {
  const signal = op?.signal;
  throwIfAborted(op, what);
  const onAbort = () => cancel(interruptedError(what ? `interrupted: ${what}` : 'interrupted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await fn();
  } catch (e) {
    throw asInterrupted(op, e, what);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** Waits `ms`; a cancelled operation ends the wait at once with the `interrupted` error. */
export function sleep(ms: number, op?: Op): Promise<void> {
  return new Promise((resolve, reject) => {
    const signal = op?.signal;
    if (signal?.aborted) return reject(interruptedError());
    const onAbort = () => {
      clearTimeout(t);
      reject(interruptedError());
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
