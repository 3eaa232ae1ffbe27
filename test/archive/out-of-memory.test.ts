// A decompressor that cannot get memory is not a damaged archive. A child
// process decompresses one zstd frame whose 16 MiB window must be allocated,
// with a preloaded malloc that refuses every allocation of 12 MiB or more made
// off the main thread (where node's zlib work runs): zstd's real allocation
// error, as under `ulimit -v` or a container's limit, but without capping the
// whole process — the address-space cap used before (prlimit --as) also starved
// V8 on another machine and killed the child outright. The error must come out
// as `archive.memory`, not as the integrity error ("truncated or corrupt")
// that would have the user throw a good archive away.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// The child makes a 20 MiB single-frame archive with a 2^24 window on its main thread (streamed
// by decompressZstd, not decompressed whole), then decompresses it and prints the outcome.
const CHILD = `
import { constants as zc, zstdCompressSync } from 'node:zlib';
import { randomFillSync } from 'node:crypto';
import { decompressZstd } from './src/archive/zstd.ts';
const data = Buffer.alloc(20 * 1024 * 1024);
for (let at = 0; at < data.length; at += 1 << 20) randomFillSync(data, at, 4096);
const big = zstdCompressSync(data, { params: { [zc.ZSTD_c_windowLog]: 24 } });
try { let n = 0; for await (const b of decompressZstd((async function* () { yield big; })())) n += b.length; console.log(JSON.stringify({ ok: n })); }
catch (e) { console.log(JSON.stringify({ code: e.code, kind: e.kind, message: e.message })); }
`;

// glibc's own entry points behind the interposed ones; sizes of 12 MiB and more fail off the main thread only.
const SHIM = `
#define _GNU_SOURCE
#include <stddef.h>
#include <unistd.h>
#include <sys/syscall.h>
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
#define LIMIT ((size_t)12 << 20)
static int off_main(void) { return getpid() != (pid_t)syscall(SYS_gettid); }
void *malloc(size_t n) { return n >= LIMIT && off_main() ? NULL : __libc_malloc(n); }
void *calloc(size_t a, size_t b) { return a * b >= LIMIT && off_main() ? NULL : __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { return n >= LIMIT && off_main() ? NULL : __libc_realloc(p, n); }
`;

const dir = mkdtempSync(join(tmpdir(), 'kompox-oom-'));
after(() => rmSync(dir, { recursive: true, force: true }));
function buildShim(): string | undefined {
  writeFileSync(join(dir, 'failbig.c'), SHIM);
  const cc = spawnSync('cc', ['-shared', '-fPIC', '-O2', '-o', join(dir, 'failbig.so'), join(dir, 'failbig.c')], { encoding: 'utf8' });
  return cc.status === 0 ? undefined : `no C compiler could build the malloc shim (cc: ${cc.error?.message ?? cc.stderr.trim()})`;
}
const noShim = buildShim();

async function outcome(preload?: string): Promise<Record<string, unknown>> {
  const env = { ...process.env, ...(preload ? { LD_PRELOAD: preload } : {}) };
  const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  c.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  c.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  const [code, signal] = await once(c, 'exit');
  assert.equal(code, 0, `the child failed (${signal ?? code}): ${out}${err}`);
  return JSON.parse(out.trim().split('\n').pop()!);
}

test('the frame decompresses with memory to spare (the archive is good)', async () => {
  assert.deepEqual(await outcome(), { ok: 20 * 1024 * 1024 });
});

test('zstd out of memory is archive.memory, not a corrupt archive', { skip: noShim }, async () => {
  const r = await outcome(join(dir, 'failbig.so'));
  assert.equal(r.code, 'archive.memory', JSON.stringify(r));
  assert.equal(r.kind, 'unavailable');
  assert.match(String(r.message), /zstd could not get the memory it needs \(.*Allocation error.*\); the archive is not known to be damaged/);
  assert.doesNotMatch(String(r.message), /corrupt|truncated/);
});
