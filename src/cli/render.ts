// The one renderer of operation events (src/domain/events.ts) for every
// kompoxops command, on stderr. Notes and warnings are plain lines (phases
// are not shown: the notes and the live line already say what happens). On a
// terminal, one live line is redrawn in place: a transfer's progress bar
// (percentage, amounts, rate) or the current state of a wait (with the
// elapsed time, refreshed every second). When stderr is not a terminal (CI,
// logs) nothing is drawn in place: each new state is one plain line and
// progress bars are left out, so output stays clean and deterministic; the
// same on a terminal that says it cannot move the cursor (TERM=dumb).
import { formatDiagnostic } from '../domain/errors.js';
import type { EventSink, KompoxEvent } from '../domain/events.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 1536 → `1.5 KiB` (`sep` '' gives the compact `1.5KiB` of tables). */
export function formatBytes(n: number, sep = ' '): string {
  let v = n;
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v}${sep}B` : `${v.toFixed(1)}${sep}${UNITS[i]}`;
}

export interface RendererOptions {
  /** Where to write; default process.stderr. */
  stream?: NodeJS.WriteStream;
  /** Draw in place; default: the stream is a terminal that can (not TERM=dumb: no cursor control, e.g. an editor's shell). */
  tty?: boolean;
  /** Print `log` events (a dry run prints its changes on stdout instead); default true. */
  logs?: boolean;
  /** Put before each `status` line, e.g. `waiting: `. */
  statusPrefix?: string;
  /**
   * The width when the terminal reports none (0 columns: script(1), some CI
   * runners and editor shells); default $COLUMNS, as the shell has it, else 100.
   */
  fallbackColumns?: number;
  /** Minimum ms between redraws of a progress bar. */
  intervalMs?: number;
  now?: () => number;
}

interface Transfer {
  label: string;
  done: number;
  total?: number;
  unit: 'bytes' | 'items';
  started: number;
  /** The transfer's end event arrived: `done` is what moved, whatever the total said. */
  ended?: boolean;
  /** When the first bytes were seen to move, and how many: the rate is measured from there. */
  firstAt?: number;
  firstDone?: number;
}

/**
 * Bytes (or items) per second: the average since the first bytes moved, so
 * the time a transfer takes to get going (an SSH session, a helper pod's
 * exec, a size walk) does not drag the rate and the ETA for its whole run.
 * Until that has been measured for half a second, the average since the
 * start, which is no base for an ETA (`measured` false): at 1% after a slow
 * start it would say minutes for seconds.
 */
function perSecond(t: Transfer, now: number): { bps: number; measured: boolean } {
  const since = t.firstAt === undefined ? 0 : (now - t.firstAt) / 1000;
  const moved = t.done - (t.firstDone ?? 0);
  if (since >= 0.5 && moved > 0) return { bps: moved / since, measured: true };
  return { bps: t.done / Math.max((now - t.started) / 1000, 0.001), measured: false };
}

export class EventRenderer {
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly intervalMs: number;
  private readonly fallbackColumns: number;
  private readonly transfers = new Map<string, Transfer>();
  /** The text of the live line for a width in columns, and how to redraw it (terminal only). */
  private live?: (cols: number) => string;
  private lastDraw = 0;
  /** What the live line shows: a wait's state keeps its elapsed time across its updates. */
  private liveKind?: 'status' | 'progress';
  private statusStarted = 0;
  private timer?: NodeJS.Timeout;

  constructor(private readonly opts: RendererOptions = {}) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? (Boolean(this.stream.isTTY) && process.env.TERM !== 'dumb');
    this.now = opts.now ?? Date.now;
    this.intervalMs = opts.intervalMs ?? 100;
    const env = Number(process.env.COLUMNS);
    this.fallbackColumns = opts.fallbackColumns ?? (Number.isInteger(env) && env > 0 ? env : 100);
  }

  /** The sink to hand to an Op. */
  readonly sink: EventSink = (e) => this.render(e);

  render(e: KompoxEvent): void {
    switch (e.type) {
      case 'log':
        if (this.opts.logs !== false) this.line(e.message);
        return;
      case 'warning':
        this.line(formatDiagnostic(e.diagnostic));
        return;
      case 'phase':
        // the steps are for a server's event log; the CLI's notes and live line already say what happens
        return;
      case 'status':
        this.status(`${this.opts.statusPrefix ?? ''}${e.message}`);
        return;
      case 'progress':
        this.progress(e);
        return;
    }
  }

  /** Ends the live line (call when the operation is over, also after a failure). */
  end(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.tty && this.live) this.stream.write('\n');
    this.live = undefined;
    this.liveKind = undefined;
  }

  /**
   * A progress bar's text (without the carriage return), the richest form that
   * fits in `cols` columns: on a narrow terminal (or with a long label, e.g. a
   * default disk name) the bar goes first, then the amounts, then the rate, so
   * the percentage and the ETA stay visible; only then is the text cut.
   */
  static transferLine(t: Transfer, now: number, cols = Infinity): string {
    const amount = (n: number) => (t.unit === 'bytes' ? formatBytes(n) : String(n));
    const { bps, measured } = perSecond(t, now);
    const rate = t.unit === 'bytes' ? ` ${formatBytes(Math.round(bps))}/s` : '';
    let forms: string[];
    if (t.total && t.total > 0) {
      // At the end, what moved is the whole (files removed or added since the size walk made the total short or long).
      const total = t.ended ? t.done : t.total;
      // Past a total that fell short (files grew or were added after the walk) the transfer is not over:
      // 99%, a bar not yet full and no ETA (nothing says how much more), until its end.
      const over = !t.ended && t.done > total;
      const frac = over ? 0.99 : total > 0 ? Math.min(t.done / total, 1) : 1;
      const width = 24;
      // floored like the percentage: the bar is full only when the transfer is
      const full = Math.min(Math.floor(frac * width), over ? width - 1 : width);
      // ETA at the average rate (steadier than the latest burst); none until that rate is measured.
      const left = total - t.done;
      const eta = measured && left > 0 ? ` ETA ${formatDuration(Math.ceil(left / bps))}` : '';
      const amounts = over ? `${amount(t.done)} (more than the ${amount(total)} measured)` : `${amount(t.done)}/${amount(total)}`;
      const bar = ` [${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
      const pct = ` ${String(Math.floor(frac * 100)).padStart(3)}%`;
      forms = [
        `${t.label}${bar}${pct} ${amounts}${rate}${eta}`,
        `${t.label}${pct} ${amounts}${rate}${eta}`,
        `${t.label}${pct} ${amount(t.done)}${rate}${eta}`,
        `${t.label}${pct}${eta}`,
        `${t.label}${pct}`,
      ];
    } else {
      forms = [`${t.label} ${amount(t.done)}${rate}`, `${t.label} ${amount(t.done)}`];
    }
    return forms.find((f) => f.length <= cols) ?? forms.at(-1)!;
  }

  private line(text: string): void {
    if (this.tty && this.live) this.stream.write('\r\x1b[K');
    this.stream.write(`${text}\n`);
    if (this.tty && this.live) this.draw(true);
  }

  private status(text: string): void {
    if (!this.tty) {
      this.stream.write(`${text}\n`);
      return;
    }
    if (!this.live || this.liveKind !== 'status') this.statusStarted = this.now();
    this.liveKind = 'status';
    this.setLive(() => `[${Math.round((this.now() - this.statusStarted) / 1000)}s] ${text}`);
  }

  private progress(e: Extract<KompoxEvent, { type: 'progress' }>): void {
    if (!this.tty) return;
    let t = this.transfers.get(e.id);
    const first = !t;
    if (!t) {
      t = { label: e.label, done: 0, unit: e.unit, started: this.now() };
      this.transfers.set(e.id, t);
    }
    t.label = e.label;
    t.done = e.done;
    t.total = e.total;
    t.ended = e.end === true;
    if (t.firstAt === undefined && e.done > 0) {
      t.firstAt = this.now();
      t.firstDone = e.done;
    }
    const text = (cols: number) => EventRenderer.transferLine(t!, this.now(), cols);
    if (e.end) {
      this.live = text;
      this.draw(true);
      this.stream.write('\n');
      this.live = undefined;
      this.liveKind = undefined;
      if (this.timer) clearInterval(this.timer);
      this.timer = undefined;
      this.transfers.delete(e.id);
      return;
    }
    this.liveKind = 'progress';
    if (first) {
      this.setLive(text);
      return;
    }
    this.live = text;
    this.draw(false);
  }

  /**
   * Makes `text` the live line, redrawn every second as well: a wait's
   * elapsed time goes on, and a transfer that stalls (a network hang, a
   * node busy with a step it reports no progress for) shows its rate
   * falling and its ETA growing, not the last values frozen.
   */
  private setLive(text: (cols: number) => string): void {
    this.live = text;
    if (!this.timer) {
      this.timer = setInterval(() => this.draw(true), 1000);
      this.timer.unref();
    }
    this.draw(true);
  }

  private draw(force: boolean): void {
    if (!this.live) return;
    const t = this.now();
    if (!force && t - this.lastDraw < this.intervalMs) return;
    this.lastDraw = t;
    // One column is left free: a line as wide as the terminal wraps on some terminals.
    const room = Math.max((this.stream.columns || this.fallbackColumns) - 1, 1);
    const text = this.live(room);
    this.stream.write(`\r${text.length > room ? `${text.slice(0, room - 1)}…` : text}\x1b[K`);
  }
}

/** Seconds as `45s`, `3m05s` or `2h07m` (a progress bar's ETA). */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
