// A one-line progress bar on stderr for long transfers (export, import,
// restore). Only on a terminal: when stderr is redirected (CI, logs) nothing
// is drawn, so output stays clean and deterministic.
import type { ProgressSink } from '../providers/driver.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(n: number): string {
  let v = n;
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${UNITS[i]}`;
}

export interface ProgressOptions {
  /** Where to draw; default process.stderr. */
  stream?: NodeJS.WriteStream;
  /** Draw even when the stream is not a TTY (tests). */
  force?: boolean;
  /** Minimum ms between redraws. */
  intervalMs?: number;
  now?: () => number;
}

export class ProgressBar implements ProgressSink {
  private label = '';
  private total?: number;
  private done_ = 0;
  private started = 0;
  private lastDraw = 0;
  private readonly stream: NodeJS.WriteStream;
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(opts: ProgressOptions = {}) {
    this.stream = opts.stream ?? process.stderr;
    this.intervalMs = opts.intervalMs ?? 100;
    this.now = opts.now ?? Date.now;
  }

  start(label: string, total?: number): void {
    this.label = label;
    this.total = total;
    this.done_ = 0;
    this.started = this.now();
    this.lastDraw = 0;
    this.draw(true);
  }

  advance(bytes: number): void {
    this.done_ += bytes;
    this.draw(false);
  }

  done(): void {
    this.draw(true);
    this.stream.write('\n');
  }

  /** The current line (without the carriage return). */
  line(): string {
    const secs = Math.max((this.now() - this.started) / 1000, 0.001);
    const rate = `${formatBytes(Math.round(this.done_ / secs))}/s`;
    if (this.total && this.total > 0) {
      const frac = Math.min(this.done_ / this.total, 1);
      const width = 24;
      const full = Math.round(frac * width);
      return `${this.label} [${'#'.repeat(full)}${'.'.repeat(width - full)}] ${String(Math.floor(frac * 100)).padStart(3)}% ${formatBytes(this.done_)}/${formatBytes(this.total)} ${rate}`;
    }
    return `${this.label} ${formatBytes(this.done_)} ${rate}`;
  }

  private draw(force: boolean): void {
    const t = this.now();
    if (!force && t - this.lastDraw < this.intervalMs) return;
    this.lastDraw = t;
    // A pseudo-terminal without a size (script(1), some CI runners) reports 0 columns.
    const cols = this.stream.columns || 100;
    this.stream.write(`\r${this.line().slice(0, cols - 1)}\x1b[K`);
  }
}

/** A progress bar on stderr when it is a terminal; undefined otherwise. */
export function terminalProgress(opts: ProgressOptions = {}): ProgressSink | undefined {
  const stream = opts.stream ?? process.stderr;
  if (!opts.force && !stream.isTTY) return undefined;
  return new ProgressBar({ ...opts, stream });
}
