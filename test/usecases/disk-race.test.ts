// Two kompoxops processes on one app volume at once (two operators, or a
// cron backup while someone works by hand), through the real binary: the K3s
// driver on temp dirs and the fake API server, whose `hold` hook stops one
// process at a chosen request while the other runs, so each race hits its
// window every time.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BIN, STACK_LINE } from '../support/cli.js';
import { straceUsable } from '../support/strace.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { appNamespace } from '../../src/domain/names.js';
import { hostFs, kompoxops, namespaceOf, writeProject, type Run } from './lifecycle-support.js';

interface Listed {
  name: string;
  id: string;
  current: boolean;
  previous: boolean;
}

async function setUp(t: { after(fn: () => Promise<void>): void }) {
  const fake: FakeKube = await startFakeKube({ controllers: false });
  const dir = await mkdtemp(join(tmpdir(), 'kompox-disk-race-'));
  t.after(async () => {
    await fake.close();
    await hostFs.rm(dir);
  });
  await writeProject(dir, { diskRoot: join(dir, 'disks'), snapshotRoot: join(dir, 'snapshots'), kubeconfig: fake.kubeconfigPath });
  const ns = appNamespace({ service: { name: 'ops' }, provider: { name: 'k3s1', driver: 'k3s', settings: {} }, cluster: { name: 'cluster-a' }, app: { name: 'web', volumes: [] } } as never);
  const run = (args: string[]) => kompoxops(dir, args);
  const ok = (r: Run) => assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.out}\nstderr: ${r.err}`);
  const disks = async () => JSON.parse((await run(['disk', 'list', '-o', 'json'])).out) as Listed[];
  ok(await run(['disk', 'create', '-N', 'a']));
  ok(await run(['disk', 'attach', '-N', 'a']));
  ok(await run(['disk', 'create', '-N', 'b']));
  const record = () => namespaceOf(fake, ns)!.annotations;
  return { fake, dir, ns, run, ok, disks, record };
}

function refused(r: Run, code: RegExp, what: string): void {
  assert.equal(r.code, 1, `${what}: exit ${r.code}\nstderr: ${r.err}`);
  assert.match(r.err, /^error: /, what);
  assert.match(r.err, code, what);
  assert.doesNotMatch(r.err, STACK_LINE, what);
}

test('disk delete while the same disk is attached: the current disk is never deleted (delete held after its checks)', async (t) => {
  const s = await setUp(t);
  // the delete has read the record (b not current) and waits at its PersistentVolume check
  const held = s.fake.hold((m, p) => m === 'GET' && p === '/api/v1/persistentvolumes');
  const del = s.run(['disk', 'delete', '-N', 'b']);
  await held.arrived;
  const att = await s.run(['disk', 'attach', '-N', 'b']);
  s.ok(att);
  held.release();
  const d = await del;
  refused(d, /disk "b" is the current disk of volume default; refusing to delete it/, 'the delete');
  const list = await s.disks();
  const b = list.find((x) => x.name === 'b');
  assert.ok(b, `disk b still exists: ${JSON.stringify(list)}`);
  assert.equal(b.current, true);
  assert.equal(s.record()['kompox.dev/disk-current-id'], b.id);
});

test('disk attach while the same disk is deleted: the record never names a deleted disk (attach held before its write)', async (t) => {
  const s = await setUp(t);
  const [a, b] = await s.disks();
  // the attach has found b and read the record; it waits at its write of the record
  const held = s.fake.hold((m, p) => m === 'PATCH' && p === `/api/v1/namespaces/${s.ns}`);
  const att = s.run(['disk', 'attach', '-N', 'b']);
  await held.arrived;
  s.ok(await s.run(['disk', 'delete', '-N', 'b']));
  held.release();
  const r = await att;
  refused(r, /disk "b" was deleted while it was being attached/, 'the attach');
  assert.match(r.err, /the current disk is still a\b/);
  const list = await s.disks();
  assert.deepEqual(list.map((x) => x.name), ['a']);
  assert.equal(s.record()['kompox.dev/disk-current-id'], a!.id, 'the record names a again');
  assert.notEqual(s.record()['kompox.dev/disk-previous-id'], b!.id);
});

/** Fills disk `name` with `dirs` × 50 files of 100 kB of random bytes (incompressible: an export of it takes a while). */
async function fill(s: Awaited<ReturnType<typeof setUp>>, name: string, dirs = 20): Promise<string> {
  const d = (await s.disks()).find((x) => x.name === name)!;
  for (let i = 0; i < dirs; i++) {
    await mkdir(join(d.id, `d${i}`));
    for (let j = 0; j < 50; j++) await writeFile(join(d.id, `d${i}`, `f${j}`), randomBytes(100_000));
  }
  return d.id;
}

test('disk export while the disk is deleted: the export fails saying so (disk.source.deleted), not as an unexpected error', async (t) => {
  const s = await setUp(t);
  await fill(s, 'b');
  // the export writes to a pipe nobody reads: it stops mid-way once the pipe is full
  const child = spawn(process.execPath, [BIN.kompoxops, '-C', s.dir, 'disk', 'export', '-N', 'b', '-O', '-'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdout.pause();
  await new Promise<void>((resolve) => child.stdout.once('readable', () => resolve()));
  s.ok(await s.run(['disk', 'delete', '-N', 'b']));
  const code = new Promise<number | null>((resolve) => child.on('close', resolve));
  child.stdout.resume();
  child.stdout.on('data', () => undefined);
  const r = { code: await code, out: '', err, stdout: Buffer.alloc(0) };
  refused(r, /^error: disk "b" was deleted \(by another command\) while it was being exported; the archive is incomplete/, 'the export');
  assert.doesNotMatch(r.err, /unexpected/);
});

test('snapshot create while its disk is deleted: one clear error, no snapshot (snapshot held before it reads the disk)', async (t) => {
  const s = await setUp(t);
  await fill(s, 'b', 2);
  // the snapshot found disk b and asks whether the app runs; then it reads the disk
  const held = s.fake.hold((m, p) => m === 'GET' && p === `/api/v1/namespaces/${s.ns}/pods`);
  const snap = s.run(['snapshot', 'create', '-N', 's1', '--disk', 'b']);
  await held.arrived;
  s.ok(await s.run(['disk', 'delete', '-N', 'b']));
  held.release();
  refused(await snap, /^error: disk "b" was deleted \(by another command\) while snapshot s1 was being taken of it; no snapshot was taken/, 'the snapshot');
  assert.deepEqual(JSON.parse((await s.run(['snapshot', 'list', '-o', 'json'])).out), []);
  assert.deepEqual(await readdir(join(s.dir, 'snapshots'), { recursive: true }).then((xs) => xs.filter((x) => /\.tmp-|\.tar/.test(x))), []);
});

test('disk create -S while its source is deleted: one clear error, no disk (the copy held at its first read of the source)', { skip: straceUsable ? false : 'strace is not usable here' }, async (t) => {
  const s = await setUp(t);
  const src = await fill(s, 'b', 2);
  // strace holds the copy's first open of the source's data directory for 20 s (after it made its temp dir)
  const copy = heldAtOpen(s.dir, src, ['disk', 'create', '-N', 'c', '-S', 'b']);
  const volDir = join(src, '..', '..');
  await until('the copy made its temp dir', async () => (await readdir(volDir)).some((n) => n.startsWith('.tmp-c-')));
  s.ok(await s.run(['disk', 'delete', '-N', 'b']));
  const r = await copy;
  refused(r, /^error: disk "b" was deleted \(by another command\) while disk c was being copied from it; no disk was created/, 'the copy');
  assert.deepEqual((await s.disks()).map((x) => x.name), ['a']);
  assert.deepEqual((await readdir(volDir)).filter((n) => n !== 'a'), []);
});

test('two disk exports to the same FILE: one wins with its checksum beside it, the other refuses and leaves that pair alone', { skip: straceUsable ? false : 'strace is not usable here' }, async (t) => {
  const s = await setUp(t);
  await fill(s, 'a', 1);
  const file = join(s.dir, 'x.tar.zst');
  // B is held for 8 s at the link() that gives its archive its name, after its checksum took its name
  const b = underStrace(s.dir, ['-e', 'trace=link,linkat', '-e', 'inject=link,linkat:delay_enter=8000000'], ['disk', 'export', '-N', 'a', '-O', file]);
  await until("B's checksum took its name", async () => (await readdir(s.dir)).includes('x.tar.zst.sha256'));
  const a = await s.run(['disk', 'export', '-N', 'a', '-O', file]);
  const bDone = await b;
  const [won, lost] = a.code === 0 ? [a, bDone] : [bDone, a];
  s.ok(won);
  const sum = createHash('sha256').update(await readFile(file)).digest('hex');
  assert.equal(await readFile(`${file}.sha256`, 'utf8').catch(() => 'absent'), `${sum}  x.tar.zst\n`, 'the checksum beside FILE is its own');
  refused(lost, /x\.tar\.zst was written by another export \(or program\) while this one ran; refusing to overwrite it/, 'the export that lost');
  assert.match(won.out, new RegExp(`sha256 ${sum}`));
  assert.deepEqual((await readdir(s.dir)).filter((n) => n.startsWith('.x.tar.zst')), [], 'no temp file or lock is left');
});

/** Runs kompoxops under strace with these filter and inject options (its trace goes nowhere); resolves with the result. */
function underStrace(dir: string, strace: string[], args: string[]): Promise<Run> {
  const child = spawn('strace', ['-f', '-qq', '-o', '/dev/null', ...strace, process.execPath, BIN.kompoxops, '-C', dir, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  let err = '';
  let out = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out, err, stdout: Buffer.from(out) })));
}

/** Runs kompoxops under strace, its first open of `path` held for 20 s; resolves with the result. */
function heldAtOpen(dir: string, path: string, args: string[]): Promise<Run> {
  return underStrace(dir, ['-P', path, '-e', 'trace=openat,open', '-e', 'inject=openat,open:delay_enter=20000000:when=1'], args);
}

async function until(what: string, cond: () => Promise<boolean>): Promise<void> {
  const started = Date.now();
  while (!(await cond())) {
    assert.ok(Date.now() - started < 30_000, what);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('snapshot export and restore while the snapshot is deleted before its archive is opened: one clear error (snapshot.source.deleted), nothing made', { skip: straceUsable ? false : 'strace is not usable here' }, async (t) => {
  const s = await setUp(t);
  await fill(s, 'b', 1);
  s.ok(await s.run(['snapshot', 'create', '-N', 's1', '--disk', 'b']));
  s.ok(await s.run(['snapshot', 'create', '-N', 's2', '--disk', 'b']));
  const snaps = JSON.parse((await s.run(['snapshot', 'list', '-o', 'json'])).out) as { name: string; id: string }[];
  const [s1, s2] = [snaps.find((x) => x.name === 's1')!, snaps.find((x) => x.name === 's2')!];

  // export: its temp file is there, its open of the archive held
  const ex = heldAtOpen(s.dir, s1.id, ['snapshot', 'export', '-N', 's1', '-O', join(s.dir, 's1.tar.zst')]);
  await until('the export made its temp file', async () => (await readdir(s.dir)).some((n) => n.startsWith('.s1.tar.zst.tmp-')));
  s.ok(await s.run(['snapshot', 'delete', '-N', 's1']));
  refused(await ex, /^error: snapshot "s1" was deleted \(by another command\) while it was being exported; nothing was exported/, 'the export');
  assert.deepEqual((await readdir(s.dir)).filter((n) => n.includes('s1.tar.zst')), []);

  // restore: its temp disk is there, its open of the archive held
  const volDir = join((await s.disks())[0]!.id, '..', '..');
  const rs = heldAtOpen(s.dir, s2.id, ['snapshot', 'restore', '-N', 's2', '--disk-name', 'r2']);
  await until('the restore made its temp disk', async () => (await readdir(volDir)).some((n) => n.startsWith('.tmp-r2-')));
  s.ok(await s.run(['snapshot', 'delete', '-N', 's2']));
  refused(await rs, /^error: snapshot "s2" was deleted \(by another command\) while it was being restored; no disk was created/, 'the restore');
  assert.deepEqual((await readdir(volDir)).sort(), ['a', 'b']);
});

test('two disk attach of different disks at once: the record ends consistent and each says the previous disk it really replaced', async (t) => {
  const s = await setUp(t);
  s.ok(await s.run(['disk', 'create', '-N', 'c']));
  // b's attach read the record (a current) and waits at its write; c's attach runs meanwhile
  const held = s.fake.hold((m, p) => m === 'PATCH' && p === `/api/v1/namespaces/${s.ns}`);
  const attB = s.run(['disk', 'attach', '-N', 'b']);
  await held.arrived;
  const attC = await s.run(['disk', 'attach', '-N', 'c']);
  s.ok(attC);
  assert.match(attC.out, /attached disk c to volume default \(previous: a\)/);
  held.release();
  const r = await attB;
  s.ok(r);
  // its write met c's (409 Conflict), read the record again and replaced c
  assert.match(r.out, /attached disk b to volume default \(previous: c\)/);
  const list = await s.disks();
  assert.deepEqual(list.map((x) => [x.name, x.current, x.previous]), [['a', false, false], ['b', true, false], ['c', false, true]]);
});
