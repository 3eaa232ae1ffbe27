// Compose value formats → Kubernetes ones: Go durations → seconds, byte sizes
// → quantities, `cpus` → millicores. Return undefined on malformed input so the
// caller can report it with the key's location.

import { parseDuration as parseGoDuration } from '../compose/duration.js';

/** Go duration (`1m30s`, `500ms`, `10s`) or a plain number of seconds → seconds. */
export function parseDuration(v: string | number | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v : undefined;
  const s = v.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  // the loader's Go-duration parser (nanoseconds); negative durations make no sense here
  const ns = parseGoDuration(s);
  return ns === undefined || ns < 0 ? undefined : ns / 1e9;
}

/** Seconds for an integer Kubernetes field: rounded up, at least `min`. */
export function wholeSeconds(sec: number, min = 1): number {
  return Math.max(min, Math.ceil(sec - 1e-9));
}

const BYTE_UNITS: Record<string, number> = {
  '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4,
};

/** Compose byte value (`512m`, `1.5G`, `1gb`, 1073741824) → bytes (docker units are binary). */
export function parseBytes(v: string | number | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? Math.floor(v) : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
  if (!m) return undefined;
  const unit = BYTE_UNITS[m[2]!.toLowerCase()];
  if (unit === undefined) return undefined;
  return Math.floor(Number(m[1]) * unit);
}

/** Bytes → the shortest exact binary quantity (`512Mi`, `1536Mi`, `100`). */
export function bytesQuantity(bytes: number): string {
  for (const [suffix, f] of [['Ti', 1024 ** 4], ['Gi', 1024 ** 3], ['Mi', 1024 ** 2], ['Ki', 1024]] as const) {
    if (bytes >= f && bytes % f === 0) return `${bytes / f}${suffix}`;
  }
  return String(bytes);
}

/** Compose `cpus` (`0.5`, `2`, 1.5) → millicores. */
export function parseCpus(v: string | number | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isFinite(n) || n < 0) return undefined;
  return Math.round(n * 1000);
}

export function milliQuantity(milli: number): string {
  return milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`;
}

/** Kubernetes quantity (`500m`, `2`, `1Gi`, `512M`) → a number in base units (cores or bytes). */
export function parseQuantity(v: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)([a-zA-Z]*)\s*$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  const suffixes: Record<string, number> = {
    '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4,
  };
  const f = suffixes[m[2]!];
  return f === undefined ? undefined : n * f;
}
