// Collecting what an operation emits (src/domain/events.ts), for assertions.
import type { KompoxEvent, Op } from '../../src/domain/events.js';

export interface Collected {
  op: Op;
  events: KompoxEvent[];
  /** The messages of `log` events, in order. */
  logs: string[];
}

export function collectEvents(signal?: AbortSignal): Collected {
  const events: KompoxEvent[] = [];
  const logs: string[] = [];
  return {
    op: {
      ...(signal ? { signal } : {}),
      events: (e) => {
        events.push(e);
        if (e.type === 'log') logs.push(e.message);
      },
    },
    events,
    logs,
  };
}

/** An Op whose `log` messages go into `lines`. */
export function logInto(lines: string[]): Op {
  return { events: (e) => e.type === 'log' && void lines.push(e.message) };
}
