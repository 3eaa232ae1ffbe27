// The `-o json|yaml` summary of a data command's transfers (disk export and
// import, snapshot create, restore and export): what moved and how fast. It is read
// off the operation's own progress events (the archive code ends each
// transfer with the files and bytes of its manifest), so the use cases and
// drivers need nothing extra, and a command that moved nothing through
// Kompox (a cloud-side copy) says so with null.
import type { KompoxEvent, Op } from '../domain/events.js';

/** The documented `transfer` object: file bytes (uncompressed), files, wall seconds, MB/s (10^6 bytes per second). */
export interface TransferJson {
  bytes: number;
  files: number;
  seconds: number;
  mbPerSecond: number;
}

export interface TransferWatch {
  /** The operation to hand to the use case (events still reach the renderer). */
  op: Op;
  /** The summary of every transfer that ended, or null when none did. */
  summary(): TransferJson | null;
}

/** Watches `op`'s progress events; `now` in milliseconds (tests pass a clock). */
export function watchTransfers(op: Op, now: () => number = () => performance.now()): TransferWatch {
  const started = new Map<string, number>();
  let bytes = 0;
  let files = 0;
  let ms = 0;
  let ended = 0;
  const events = (e: KompoxEvent) => {
    if (e.type === 'progress') {
      if (!started.has(e.id)) started.set(e.id, now());
      if (e.end && e.counts) {
        bytes += e.counts.bytes;
        files += e.counts.files;
        ms += now() - started.get(e.id)!;
        ended++;
      }
    }
    op.events?.(e);
  };
  return {
    op: { ...op, events },
    summary() {
      if (ended === 0) return null;
      // The rate from the seconds as printed, so the two always agree.
      const seconds = round(ms / 1000, 3);
      return { bytes, files, seconds, mbPerSecond: seconds > 0 ? round(bytes / 1e6 / seconds, 1) : 0 };
    },
  };
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
