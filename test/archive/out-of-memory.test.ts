// A decompressor that cannot get memory is not a damaged archive. A child
// process primes libuv's thread pool, then its address space is capped
// (prlimit --as) just above what it already uses, and it decompresses one
// zstd frame whose 16 MiB window no longer fits: zstd's real allocation
// error. It must come out as `archive.memory`, not as the integrity error
// ("truncated or corrupt") that would have the user throw a good archive away.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// The child: makes a 20 MiB single-frame archive with a 2^24 window (streamed by decompressZstd,
// not decompressed whole), decompresses a small one to start the thread pool, prints its VmSize,
// says it is ready, waits for a line on stdin (the cap, taken from its VmSize then), then decompresses the big frame and prints the outcome.
const CHILD = `
import { createInterface } from 'node:readline';
import { constants as zc, zstdCompressSync } from 'node:zlib';
import { randomFillSync } from 'node:crypto';
import { decompressZstd } from './src/archive/zstd.ts';
const data = Buffer.alloc(20 * 1024 * 1024);
for (let at = 0; at < data.length; at += 1 << 20) randomFillSync(data, at, 4096);
const big = zstdCompressSync(data, { params: { [zc.ZSTD_c_windowLog]: 24 } });
const small = zstdCompressSync(Buffer.from('primed'));
async function run(frame) { let n = 0; for await (const b of decompressZstd((async function* () { yield frame; })())) n += b.length; return n; }
await run(small);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
process.stdout.write('ready\\n');
if (process.argv.includes('capped')) await lines.next();
try { console.log(JSON.stringify({ ok: await run(big) })); }
catch (e) { console.log(JSON.stringify({ code: e.code, kind: e.kind, message: e.message })); }
`;

function child(capped: boolean) {
  return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD, capped ? 'capped' : 'free'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
}

async function outcome(c: ReturnType<typeof child>, onReady: () => void): Promise<Record<string, unknown>> {
  let out = '';
  c.stdout!.setEncoding('utf8');
  c.stdout!.on('data', (s: string) => {
    const ready = !out.includes('ready\n');
    out += s;
    if (ready && out.includes('ready\n')) onReady();
  });
  const [code] = await once(c, 'exit');
  assert.equal(code, 0, `the child failed: ${out}`);
  return JSON.parse(out.trim().split('\n').pop()!);
}

const noPrlimit = spawnSync('prlimit', ['--version']).status !== 0;

test('the frame decompresses with memory to spare (the archive is good)', async () => {
  const c = child(false);
  // Its stdin is closed at once: nothing to wait for, and an open pipe would keep it alive.
  assert.deepEqual(await outcome(c, () => c.stdin!.end()), { ok: 20 * 1024 * 1024 });
});

test('zstd out of memory is archive.memory, not a corrupt archive', { skip: noPrlimit && 'prlimit (util-linux) is not installed' }, async () => {
  const c = child(true);
  const r = await outcome(c, () => {
    // 8 MiB above the address space it holds now: room for small allocations, not for the frame's 16 MiB window.
    const kb = Number(/VmSize:\s+(\d+)/.exec(readFileSync(`/proc/${c.pid}/status`, 'utf8'))![1]);
    const cap = String((kb + 8 * 1024) * 1024);
    const p = spawnSync('prlimit', [`--pid=${c.pid}`, `--as=${cap}:${cap}`]);
    assert.equal(p.status, 0, String(p.stderr));
    c.stdin!.end('go\n');
  });
  assert.equal(r.code, 'archive.memory', JSON.stringify(r));
  assert.equal(r.kind, 'unavailable');
  assert.match(String(r.message), /zstd could not get the memory it needs \(.*Allocation error.*\); the archive is not known to be damaged/);
  assert.doesNotMatch(String(r.message), /corrupt|truncated/);
});
