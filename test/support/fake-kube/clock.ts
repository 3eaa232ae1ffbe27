// Time for the fake's controllers. Kubernetes waits in seconds (termination
// grace periods, crash-loop back-off, minReadySeconds, progress deadlines);
// tests must not. Two modes keep the order of events real while making waits
// short or explicit:
// - scaled (default): a simulated second lasts `msPerSecond` real
//   milliseconds (default 10, so a 30 s grace period takes 0.3 s); object
//   timestamps are wall-clock time plus the simulated time the fired waits
//   skipped (when a wait fires, "now" is at least its due time, as the
//   controllers that compare now() with a due time expect);
// - manual: simulated time stands still until the test calls `advance`, so a
//   test can look at a Terminating pod for as long as it likes.

export interface ClockOptions {
  mode?: 'scaled' | 'manual';
  /** Real milliseconds per simulated second in scaled mode (default 10). */
  msPerSecond?: number;
}

interface Timer {
  at: number; // simulated ms
  fn: () => void;
  handle?: NodeJS.Timeout;
}

export class FakeClock {
  readonly mode: 'scaled' | 'manual';
  readonly msPerSecond: number;
  private readonly start = Date.now();
  /** Simulated ms elapsed (manual mode). */
  private offset = 0;
  /** Scaled mode: simulated ms ahead of wall time (the part of each fired wait that was skipped). */
  private skew = 0;
  private readonly timers = new Set<Timer>();
  private closed = false;

  constructor(opts: ClockOptions = {}) {
    this.mode = opts.mode ?? 'scaled';
    this.msPerSecond = opts.msPerSecond ?? 10;
  }

  /** Simulated "now" in ms since the epoch: wall time (plus skipped waits) when scaled, start + advanced time when manual. */
  now(): number {
    return this.mode === 'manual' ? this.start + this.offset : Date.now() + this.skew;
  }

  rfc3339(at = this.now()): string {
    return new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  /** Runs `fn` after `seconds` of simulated time; returns a canceller. */
  after(seconds: number, fn: () => void): () => void {
    const t: Timer = { at: this.now() + seconds * 1000, fn };
    if (this.closed) return () => undefined;
    this.timers.add(t);
    if (this.mode === 'scaled') {
      t.handle = setTimeout(() => {
        this.timers.delete(t);
        // the wait is over in simulated time: a controller comparing now() with t.at must see it due
        this.skew = Math.max(this.skew, t.at - Date.now());
        fn();
      }, Math.max(0, seconds * this.msPerSecond));
      t.handle.unref?.();
    }
    return () => {
      if (t.handle) clearTimeout(t.handle);
      this.timers.delete(t);
    };
  }

  /** Manual mode: moves simulated time forward, firing due timers in order. */
  async advance(seconds: number): Promise<void> {
    if (this.mode !== 'manual') throw new Error('fake clock: advance() needs clock mode "manual"');
    const target = this.offset + seconds * 1000;
    for (;;) {
      const due = [...this.timers].filter((t) => t.at - this.start <= target).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.offset = Math.max(this.offset, due.at - this.start);
      this.timers.delete(due);
      due.fn();
      // let the controllers react before the next timer fires
      await new Promise((r) => setImmediate(r));
    }
    this.offset = target;
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) if (t.handle) clearTimeout(t.handle);
    this.timers.clear();
  }
}
