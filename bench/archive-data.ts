// The benchmark disk of issue 11, generated: random blobs (incompressible),
// ~20k small text files in nested directories, and large application logs
// (compressible). At scale 1 it is the measured 1.09 GB disk: 350 MiB of
// blobs, 20,040 small files, 600 MiB of logs. Deterministic (seeded), so two
// runs at one scale archive the same bytes.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const MiB = 1024 * 1024;

/** A small, fast, seeded PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Text is Zipf-distributed over a vocabulary of made-up words (as natural
// language is), and log lines come from a fixed set of message templates
// with variable fields (as application logs do): uniformly random words
// would be neither text nor logs.
const SYLLABLES = 'ka to ri mu se na lo pe vi da ne so ru mi te ba go hu ze fa'.split(' ');
function vocabulary(rnd: () => number, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = 1 + Math.floor(rnd() * 3) + (i > 200 ? 1 : 0);
    let w = '';
    for (let j = 0; j < len; j++) w += SYLLABLES[Math.floor(rnd() * SYLLABLES.length)]!;
    out.push(w);
  }
  return out;
}

/** Picks ranks 0..n-1 with probability ~ 1/(rank+1) (Zipf, s = 1). */
function zipf(rnd: () => number, n: number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) cdf[i] = sum += 1 / (i + 1);
  return () => {
    const x = rnd() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

function textMaker(rnd: () => number): (words: number) => string {
  const vocab = vocabulary(rnd, 5000);
  const pick = zipf(rnd, vocab.length);
  return (n) => {
    const parts: string[] = [];
    for (let i = 0; i < n; i++) {
      let w = vocab[pick()]!;
      const end = rnd() < 0.07;
      if (parts.length === 0 || parts[parts.length - 1]!.endsWith('.')) w = w[0]!.toUpperCase() + w.slice(1);
      parts.push(end ? `${w}.` : w);
      if (end && rnd() < 0.2) parts.push('\n\n');
    }
    return parts.join(' ').replace(/ ?\n\n ?/g, '\n\n');
  };
}

const LEVELS = ['INFO', 'INFO', 'INFO', 'INFO', 'DEBUG', 'DEBUG', 'WARN', 'ERROR'];
const PATHS = ['/api/v1/users', '/api/v1/orders', '/healthz', '/login', '/static/app.js', '/api/v1/search', '/metrics', '/api/v1/orders/{id}', '/api/v1/users/{id}/avatar'];
// Clients, users and objects come from pools with a few busy ones (Zipf), as
// real traffic does; request ids and timings are random.
interface Pools {
  ip: () => string;
  user: () => number;
  object: () => number;
}
function pools(rnd: () => number): Pools {
  const ips = Array.from({ length: 400 }, () => `10.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}`);
  const ipPick = zipf(rnd, ips.length);
  const userPick = zipf(rnd, 5000);
  const objectPick = zipf(rnd, 100000);
  return { ip: () => ips[ipPick()]!, user: () => userPick(), object: () => objectPick() };
}

const MESSAGES: Array<(r: () => number, id: () => string, p: Pools) => string> = [
  (r, id, p) => `${p.ip()} user=${p.user()} ${['GET', 'GET', 'POST', 'PUT'][Math.floor(r() * 4)]} ${PATHS[Math.floor(r() * PATHS.length)]!.replace('{id}', String(p.object()))} status=${[200, 200, 200, 201, 304, 404, 500][Math.floor(r() * 7)]} dur=${(r() * 900).toFixed(1)}ms req=${id()}`,
  (r) => `db query finished rows=${Math.floor(r() * 500)} dur=${(r() * 40).toFixed(2)}ms table=${['users', 'orders', 'sessions', 'items'][Math.floor(r() * 4)]}`,
  (_r, id, p) => `session refreshed user=${p.user()} token=${id()}${id()}`,
  (r, _id, p) => `cache ${r() < 0.8 ? 'hit' : 'miss'} key=page:${p.object()}`,
  (r) => `worker heartbeat queue=default pending=${Math.floor(r() * 30)} processed=${Math.floor(r() * 1e6)}`,
  (r, id) => `job ${id()} completed in ${(r() * 5).toFixed(3)}s attempts=${1 + Math.floor(r() * 3)}`,
  (r, _id, p) => `connection from ${p.ip()}:${1024 + Math.floor(r() * 60000)} accepted`,
  (r) => `retrying upstream request after timeout (attempt ${1 + Math.floor(r() * 5)} of 5, backoff ${Math.floor(r() * 2000)}ms)`,
  (r, id) => `order ${id()} state changed: pending -> ${['paid', 'shipped', 'cancelled'][Math.floor(r() * 3)]}`,
  (r) => `gc pause ${(r() * 20).toFixed(2)}ms heap=${Math.floor(200 + r() * 300)}MiB`,
];

function logChunk(rnd: () => number, pickMsg: () => number, p: Pools, startMs: number, bytes: number): { text: string; endMs: number } {
  const lines: string[] = [];
  let size = 0;
  let t = startMs;
  const id = () => Math.floor(rnd() * 0xffffffff).toString(16).padStart(8, '0');
  while (size < bytes) {
    t += Math.floor(rnd() * 50);
    const line = `${new Date(t).toISOString()} ${LEVELS[Math.floor(rnd() * LEVELS.length)]} [worker-${Math.floor(rnd() * 16)}] ${MESSAGES[pickMsg()]!(rnd, id, p)}\n`;
    lines.push(line);
    size += line.length;
  }
  return { text: lines.join(''), endMs: t };
}

export interface DataSetFacts {
  scale: number;
  blobBytes: number;
  smallFiles: number;
  smallBytes: number;
  logBytes: number;
  totalBytes: number;
}

/** Writes the data set under `dir` (created). */
export async function generateDataSet(dir: string, scale: number, seed = 11): Promise<DataSetFacts> {
  const rnd = prng(seed);
  await mkdir(dir, { recursive: true });
  // Random blobs: 350 MiB at scale 1, in files of up to 32 MiB.
  const blobTotal = Math.round(350 * MiB * scale);
  await mkdir(join(dir, 'blobs'));
  let blobBytes = 0;
  for (let i = 0; blobBytes < blobTotal; i++) {
    const size = Math.min(blobTotal - blobBytes, Math.floor((4 + rnd() * 28) * MiB));
    await writeFile(join(dir, 'blobs', `blob-${String(i).padStart(3, '0')}.bin`), randomBytes(size));
    blobBytes += size;
  }
  // Small text files: 20,040 at scale 1, 40 per directory, two levels deep.
  const prose = textMaker(rnd);
  const smallFiles = Math.max(1, Math.round(20040 * scale));
  let smallBytes = 0;
  for (let i = 0; i < smallFiles; i++) {
    const d = join(dir, 'site', `d${String(Math.floor(i / 1000)).padStart(2, '0')}`, `s${String(Math.floor(i / 40) % 25).padStart(2, '0')}`);
    if (i % 40 === 0) await mkdir(d, { recursive: true });
    const text = `# ${prose(3)}\n\n${prose(40 + Math.floor(rnd() * 1200))}\n`;
    await writeFile(join(d, `page-${i}.md`), text);
    smallBytes += text.length;
  }
  // Logs: 600 MiB at scale 1, in files of up to 64 MiB.
  const logTotal = Math.round(600 * MiB * scale);
  await mkdir(join(dir, 'logs'));
  let logBytes = 0;
  let t = Date.UTC(2025, 0, 1);
  const pickMsg = zipf(rnd, MESSAGES.length);
  const pool = pools(rnd);
  for (let i = 0; logBytes < logTotal; i++) {
    const size = Math.min(logTotal - logBytes, 64 * MiB);
    const parts: string[] = [];
    let got = 0;
    while (got < size) {
      const c = logChunk(rnd, pickMsg, pool, t, Math.min(size - got, MiB));
      t = c.endMs;
      parts.push(c.text);
      got += c.text.length;
    }
    const buf = Buffer.from(parts.join(''), 'latin1');
    await writeFile(join(dir, 'logs', `app-${String(i).padStart(2, '0')}.log`), buf);
    logBytes += buf.length;
  }
  return { scale, blobBytes, smallFiles, smallBytes, logBytes, totalBytes: blobBytes + smallBytes + logBytes };
}
