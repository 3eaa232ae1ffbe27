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
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { BIN, runCli } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { k3sOpsYaml } from '../support/ops-yaml.js';

const strace = (() => {
  if (process.platform !== 'linux') return false;
  const r = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', 'true'], { stdio: 'ignore' });
  return r.status === 0;
})();

const COMPOSE = `services:
  web:
    image: nginx:1.27
    volumes:
      - default:/data
volumes:
  default: {}
`;

/** One traced system call: where its entry and its return are in the trace (one index when it did not block). */
interface Call {
  pid: string;
  name: string;
  /** Its arguments as strace printed them (-y: descriptors with their paths). */
  args: string;
  entry: number;
  exit: number;
  result: string;
}

/**
 * strace -f output as calls in order. A call another thread interrupted is
 * two lines: `NAME(ARGS <unfinished ...>` then `<... NAME resumed>REST) = R`.
 */
export function parseTrace(text: string): Call[] {
  const calls: Call[] = [];
  const open = new Map<string, Call>();
  for (const [i, line] of text.split('\n').entries()) {
    const resumed = /^(\d+)\s+<\.\.\. (\w+) resumed>(.*)\) = (.*)$/.exec(line);
    if (resumed) {
      const c = open.get(`${resumed[1]} ${resumed[2]}`);
      if (c) {
        c.args += resumed[3];
        c.exit = i;
        c.result = resumed[4]!;
        open.delete(`${resumed[1]} ${resumed[2]}`);
      }
      continue;
    }
    const unfinished = /^(\d+)\s+(\w+)\((.*) <unfinished \.\.\.>$/.exec(line);
    if (unfinished) {
      const c: Call = { pid: unfinished[1]!, name: unfinished[2]!, args: unfinished[3]!, entry: i, exit: Number.POSITIVE_INFINITY, result: '' };
      calls.push(c);
      open.set(`${c.pid} ${c.name}`, c);
      continue;
    }
    const whole = /^(\d+)\s+(\w+)\((.*)\) = (.*)$/.exec(line);
    if (whole) calls.push({ pid: whole[1]!, name: whole[2]!, args: whole[3]!, entry: i, exit: i, result: whole[4]! });
  }
  return calls;
}

const SYNCS = new Set(['fsync', 'fdatasync', 'syncfs']);
const NAMINGS = new Set(['rename', 'renameat', 'renameat2', 'link', 'linkat']);

/** The successful sync calls on a descriptor of `path` (strace -y prints `N</path>`). */
function syncsOf(calls: Call[], path: string): Call[] {
  return calls.filter((c) => SYNCS.has(c.name) && c.result.startsWith('0') && c.args.includes(`<${path}>`));
}

/** The successful rename or link calls whose target is `to`. */
function namingsTo(calls: Call[], to: string): Call[] {
  return calls.filter((c) => NAMINGS.has(c.name) && c.result.startsWith('0') && new RegExp(`"${escape(to)}"(, \\w+)?$`).test(c.args));
}

/** The successful rename or link calls whose source matches `from`. */
function namingsFrom(calls: Call[], from: RegExp): Call[] {
  return calls.filter((c) => NAMINGS.has(c.name) && c.result.startsWith('0') && from.test(c.args.split(', ').find((a) => a.startsWith('"')) ?? ''));
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Asserts that a sync of `synced` returned before the (first) naming `naming` started. */
function syncedBefore(calls: Call[], synced: string | RegExp, naming: Call | undefined, what: string): void {
  assert.ok(naming, `${what}: the rename/link that makes it visible was traced`);
  const syncs = calls.filter((c) => SYNCS.has(c.name) && c.result.startsWith('0') && (typeof synced === 'string' ? c.args.includes(`<${synced}>`) : synced.test(c.args)));
  assert.ok(
    syncs.some((s) => s.exit < naming.entry),
    `${what}: synced before its rename/link (syncs of it at trace lines ${JSON.stringify(syncs.map((s) => s.exit))}; the rename/link at ${naming.entry})`,
  );
}

/** Asserts that the directory `dir` was synced after every one of `namings` returned. */
function dirSyncedAfter(calls: Call[], dir: string, namings: Call[], what: string): void {
  const last = Math.max(...namings.map((n) => n.exit));
  const syncs = syncsOf(calls, dir);
  assert.ok(
    syncs.some((s) => s.entry > last),
    `${what}: the directory ${dir} synced after the rename/link (syncs of it at trace lines ${JSON.stringify(syncs.map((s) => s.entry))}; the last rename/link at ${last})`,
  );
}

describe('K3s (local node) and export files: data synced before its name', { skip: strace ? false : 'no usable strace' }, () => {
  let fake: FakeKube;
  let dir = '';
  let diskVolDir = '';
  let snapVolDir = '';

  async function ok(args: string[]): Promise<string> {
    const r = await runCli(args, { cwd: dir, timeoutMs: 60_000 });
    assert.equal(r.code, 0, `kompoxops ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  /** Runs the CLI under strace; the calls it (and its children) made. */
  async function traced(args: string[]): Promise<Call[]> {
    const out = join(dir, `trace-${Date.now()}`);
    const child = spawn(
      'strace',
      ['-f', '-qq', '-y', '-s', '4096', '-e', 'trace=fsync,fdatasync,syncfs,rename,renameat,renameat2,link,linkat', '-o', out, process.execPath, BIN.kompoxops, ...args],
      { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.stdout.resume();
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, `kompoxops ${args.join(' ')}: ${err}`);
    if (process.env.KOMPOX_TRACE_DUMP) copyFileSync(out, join(process.env.KOMPOX_TRACE_DUMP, args.slice(0, 2).join("-")));
    return parseTrace(readFileSync(out, "utf8"));
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
});
