// Durability: what the K3s driver (local node) and the CLI publish is on the
// disk before its name is. A rename or link can reach the disk before the
// data it names, so after a power loss a snapshot reported made could read
// back as zeros. The real CLI runs under strace, which records the sync and
// rename/link system calls (of the CLI and of the `sync` it runs for a
// tree); the tests assert their order: the data's sync has returned before
// the rename or link that makes it visible starts, and the directory's sync
// comes after that rename.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { BIN, runCli } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { ONE_VOLUME_COMPOSE, k3sOpsYaml } from '../support/ops-yaml.js';
import { SYNC_AND_NAMING_CALLS, dirSyncedAfter, escape, namingsFrom, namingsTo, parseTrace, straceUsable, syncedBefore, type Call } from '../support/strace.js';

const COMPOSE = ONE_VOLUME_COMPOSE;

describe('K3s (local node) and export files: data synced before its name', { skip: straceUsable ? false : 'no usable strace' }, () => {
  let fake: FakeKube;
  let dir = '';
  let diskVolDir = '';
  let snapVolDir = '';

  async function ok(args: string[]): Promise<string> {
    const r = await runCli(args, { cwd: dir, timeoutMs: 60_000 });
    assert.equal(r.code, 0, `kompoxops ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  /** Runs the CLI under strace (its `calls`, an injection); its status, stderr and the calls it (and its children) made. */
  async function tracedRun(args: string[], o: { env?: Record<string, string>; calls?: string; inject?: string } = {}): Promise<{ code: number | null; stderr: string; calls: Call[] }> {
    const out = join(dir, `trace-${Date.now()}`);
    const child = spawn(
      'strace',
      ['-f', '-qq', '-y', '-s', '4096', '-e', `trace=${o.calls ?? SYNC_AND_NAMING_CALLS}`, ...(o.inject ? ['-e', `inject=${o.inject}`] : []), '-o', out, process.execPath, BIN.kompoxops, ...args],
      { cwd: dir, env: { ...process.env, NO_COLOR: '1', ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.resume();
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    return { code, stderr, calls: parseTrace(readFileSync(out, 'utf8')) };
  }

  /** Runs the CLI under strace, which must succeed; the calls it (and its children) made. */
  async function traced(args: string[], o: { env?: Record<string, string>; calls?: string } = {}): Promise<Call[]> {
    const { code, stderr, calls } = await tracedRun(args, o);
    assert.equal(code, 0, `kompoxops ${args.join(' ')}: ${stderr}`);
    return calls;
  }

  before(async () => {
    fake = await startFakeKube({ controllers: false });
    // the order of the calls is the same on any filesystem: tmpfs keeps it quick
    dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'kompox-durable-'));
    for (const d of ['disks', 'snapshots', 'out']) mkdirSync(join(dir, d));
    copyFileSync(fake.kubeconfigPath, join(dir, 'kubeconfig'));
    writeFileSync(
      join(dir, 'kompoxops.yml'),
      k3sOpsYaml(dir, { app: 'durable', domain: 'example.com', clusterSettings: { ACME_EMAIL: 'admin@example.com' }, volumes: [{ name: 'default', size: '1Gi' }] }),
    );
    writeFileSync(join(dir, 'compose.yml'), COMPOSE);
    const base = JSON.parse(await ok(['disk', 'create', '-N', 'base', '-o', 'json'])) as { id: string };
    for (let i = 0; i < 20; i++) writeFileSync(join(base.id, `f-${i}.txt`), `file ${i}\n`.repeat(1000));
    diskVolDir = join(base.id, '..', '..');
    snapVolDir = diskVolDir.replace(join(dir, 'disks'), join(dir, 'snapshots'));
    await ok(['disk', 'attach', '-N', 'base']);
  });

  after(async () => {
    await fake?.close();
    if (dir) await new LocalHostFs().rm(dir);
  });

  test('snapshot create: the archive and its metadata synced before their renames, the directory after', async () => {
    const calls = await traced(['snapshot', 'create', '-N', 'snap-a']);
    const archive = join(snapVolDir, 'snap-a.tar.zst');
    const meta = join(snapVolDir, 'snap-a.json');
    const archiveNaming = namingsTo(calls, archive)[0];
    const metaNaming = namingsTo(calls, meta)[0];
    syncedBefore(calls, new RegExp(`<${escape(snapVolDir)}/\\.tmp-snap-a-[^/>]*\\.tar\\.zst>`), archiveNaming, 'the archive');
    syncedBefore(calls, new RegExp(`<${escape(meta)}\\.tmp-[^/>]*>`), metaNaming, 'the metadata');
    dirSyncedAfter(calls, snapVolDir, [archiveNaming!, metaNaming!], 'the snapshot');
  });

  test('disk import: the tree synced once (syncfs) before its rename into place, the volume directory after', async () => {
    await ok(['disk', 'export', '-N', 'base', '-O', 'out/ref.tar.zst']);
    const calls = await traced(['disk', 'import', 'out/ref.tar.zst', '-N', 'imp-a']);
    const naming = namingsTo(calls, join(diskVolDir, 'imp-a'))[0];
    // `sync -f` on the temp directory (a child process: its syncfs is on a descriptor of that directory)
    syncedBefore(calls, new RegExp(`^\\d+<${escape(diskVolDir)}/\\.tmp-imp-a-[^/>]*>$`), naming, 'the imported tree');
    assert.ok(
      calls.some((c) => c.name === 'syncfs' && c.exit < naming!.entry),
      'one syncfs for the whole tree (not an fsync per file)',
    );
    dirSyncedAfter(calls, diskVolDir, [naming!], 'the disk');
  });

  test('disk export -O FILE: the archive and its .sha256 synced before their link/rename, the directory after', async () => {
    const file = join(dir, 'out', 'x.tar.zst');
    const calls = await traced(['disk', 'export', '-N', 'base', '-O', 'out/x.tar.zst']);
    const archiveNaming = namingsTo(calls, file)[0];
    const sidecarNaming = namingsTo(calls, `${file}.sha256`)[0];
    syncedBefore(calls, new RegExp(`<${escape(join(dir, 'out'))}/\\.x\\.tar\\.zst\\.tmp-[^/>]*>`), archiveNaming, 'the archive');
    syncedBefore(calls, new RegExp(`<${escape(join(dir, 'out'))}/\\.x\\.tar\\.zst\\.sha256\\.tmp-[^/>]*>`), sidecarNaming, 'the .sha256');
    dirSyncedAfter(calls, join(dir, 'out'), [archiveNaming!, sidecarNaming!], 'the export');
    assert.equal(namingsFrom(calls, /\.x\.tar\.zst\.tmp-/).length, 1, 'the archive took its name once');
  });

  test('disk export -O FILE: an fsync that fails (EIO, ENOSPC; strace-injected) on the archive, on its .sha256 or on the directory fails the export with the reason, and leaves neither FILE nor FILE.sha256 nor a temp', async () => {
    const out = join(dir, 'out');
    // one libuv thread: strace counts an injection's `when` per thread, and node's fsyncs run on its pool's
    const env = { UV_THREADPOOL_SIZE: '1' };
    /** The fsync calls of an export that succeeds, in order: the Nth is the one an injection `when=N` fails. */
    const plain = await traced(['disk', 'export', '-N', 'base', '-O', 'out/plain.tar.zst'], { env, calls: 'fsync' });
    const fsyncs = plain.filter((c) => c.name === 'fsync');
    const nth = (what: RegExp) => {
      const i = fsyncs.findIndex((c) => what.test(c.args));
      assert.ok(i >= 0, `an fsync of ${what} in ${JSON.stringify(fsyncs.map((c) => c.args))}`);
      return i + 1;
    };
    const targets = [
      ['the archive', (name: string) => new RegExp(`^\\d+<${escape(out)}/\\.${escape(name)}\\.tmp-[^/>]*>$`)],
      ['the .sha256', (name: string) => new RegExp(`^\\d+<${escape(out)}/\\.${escape(name)}\\.sha256\\.tmp-[^/>]*>$`)],
      ['the directory', () => new RegExp(`^\\d+<${escape(out)}>$`)],
    ] as const;
    for (const [what, path] of targets) {
      const when = nth(path('plain.tar.zst'));
      for (const [errno, said] of [
        ['EIO', /cannot write .*\/out\/(\S+): the device reported an I\/O error \(the data may not be on the disk\); the incomplete archive was removed[^]*Check that device \(the kernel's log: dmesg\)/],
        ['ENOSPC', /cannot write .*\/out\/(\S+): no space left on device; the incomplete archive was removed/],
      ] as const) {
        const name = `fail-${what.replace(/\W+/g, '-')}-${errno}.tar.zst`;
        const { code, stderr, calls } = await tracedRun(['disk', 'export', '-N', 'base', '-O', `out/${name}`], { env, calls: 'fsync', inject: `fsync:error=${errno}:when=${when}` });
        // the injection hit the sync it is meant for (the order of the syncs did not change)
        const injected = calls.filter((c) => c.name === 'fsync' && /INJECTED/.test(c.result));
        assert.equal(injected.length, 1, `${what}, ${errno}: one fsync failed (${JSON.stringify(injected)})`);
        assert.match(injected[0]!.args, path(name), `${what}, ${errno}: the failed fsync`);
        assert.notEqual(code, 0, `${what}, ${errno}: the export failed`);
        assert.match(stderr, said, `${what}, ${errno}`);
        assert.match(stderr, new RegExp(escape(name)));
        assert.deepEqual(readdirSync(out).filter((n) => n.includes(name)), [], `${what}, ${errno}: nothing of the export left in out/`);
      }
    }
  });
});
