// Copies that stay on the node (restore, disk copy, snapshot create) over a
// real sshd on 127.0.0.1: they run as commands on the node (HostFs.run), no
// data file is read or written over SFTP, tampered archives and changed
// trees are refused with nothing visible, a node without the tools falls
// back (and says why), and a cancel kills the command on the node.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { KompoxEvent } from '../../src/domain/events.js';
import type { AppVolume } from '../../src/domain/model.js';
import { digestTree, unpackArchive } from '../../src/archive/archive.js';
import { LocalHostFs, type HostFs } from '../../src/providers/k3s/hostfs.js';
import { K3sDriver } from '../../src/providers/k3s/index.js';
import type { HostFsFactory } from '../../src/providers/k3s/driver.js';
import { PROGRESS_MARK, extractArgv, missingTools, parseTools, stageStatuses, toolsProbeArgv, withoutSha256 } from '../../src/providers/k3s/node-commands.js';
import { connectSshHostFs } from '../../src/providers/k3s/ssh-hostfs.js';
import { sshdMissing, startSshd } from '../support/sshd.js';
import { appCtx, inFlightCpScript, sandbox, snapshotOfTree, sshdAndSandbox, writeCompressibleLog, writeSampleTree, type Sandbox } from './k3s-fixtures.js';
import { rejectsWith } from '../support/assertions.js';
import { collectEvents } from '../support/events.js';

const local = new LocalHostFs();
const digest = async (p: string) => (await digestTree(local, p)).treeDigest;
/** Unpacks a snapshot's archive (checked against its SHA-256) into a directory of its own, hands it to `inspect`, then removes it. */
async function unpackedSnapshot(snap: { id: string; sha256?: string }, inspect: (r: Awaited<ReturnType<typeof unpackArchive>>, data: string) => Promise<void>): Promise<void> {
  const check = await mkdtemp(join(tmpdir(), 'kompox-unpack-'));
  try {
    const data = join(check, 'data');
    await inspect(await unpackArchive(local, (await import('node:fs')).createReadStream(snap.id), data, { expectedSha256: snap.sha256 }), data);
  } finally {
    await rm(check, { recursive: true, force: true });
  }
}
const sh = (script: string, ...args: string[]) => {
  const r = spawnSync('sh', ['-c', script, 'sh', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${script}: ${r.stderr}`);
  return r.stdout;
};
// the "node" is this machine: without GNU tar, find, coreutils and zstd every operation here would fall back
const missing = sshdMissing() ?? missingTools(parseTools(spawnSync(toolsProbeArgv()[0]!, toolsProbeArgv().slice(1), { encoding: 'utf8' }).stdout), 'snapshot');

interface TracedOptions {
  /** The tool probe finds nothing. */
  noTools?: boolean;
  /** Runs before each command on the node. */
  beforeRun?: (argv: readonly string[]) => Promise<void> | void;
}

interface Trace {
  /** SFTP data reads and writes (not small metadata files) and streaming exec reads. */
  dataIo: string[];
  runs: string[][];
}

describe('K3s copies that stay on the node (real sshd on 127.0.0.1)', { skip: missing }, () => {
  const fx = sshdAndSandbox();

  /**
   * A driver over the real sshd whose HostFs records data I/O and commands;
   * `noTools` makes the tool probe find nothing; `beforeRun` runs before each command.
   */
  const traced = (opts: TracedOptions = {}) => {
    const trace: Trace = { dataIo: [], runs: [] };
    const factory: HostFsFactory = async () => {
      const fs = await connectSshHostFs({ target: fx.sshd.target, keyPath: fx.sshd.keyPath, knownHosts: fx.sshd.knownHostsPath });
      return new Proxy(fs, {
        get: (t, k) => {
          const v = Reflect.get(t, k) as unknown;
          if (typeof v !== 'function') return v;
          if (k === 'run') {
            return async (argv: readonly string[], o?: object) => {
              trace.runs.push([...argv]);
              if (opts.noTools && argv.join(' ') === toolsProbeArgv().join(' ')) return { stdout: Buffer.alloc(0), stderr: '', code: 0 };
              await opts.beforeRun?.(argv);
              return (t as Required<HostFs>).run(argv, o);
            };
          }
          if (k === 'openFile' || k === 'createFile' || k === 'tarStream' || k === 'packedStream' || k === 'streamFile' || k === 'openWrite' || k === 'openRead') {
            return (...a: unknown[]) => {
              const path = String(a[0]);
              // metadata files are written with openWrite (writeFileAtomic): not data
              if (!(k === 'openWrite' && /\.json\.tmp-|\/\.alive\.tmp-/.test(path))) trace.dataIo.push(`${String(k)} ${path}`);
              return (v as (...x: unknown[]) => unknown).apply(t, a);
            };
          }
          return (v as (...x: unknown[]) => unknown).bind(t);
        },
      });
    };
    return { driver: new K3sDriver({ env: {} }, factory), trace };
  };
  const settings = () => ({ K3S_SSH: fx.sshd.target, K3S_SSH_KEY: fx.sshd.keyPath, K3S_SSH_KNOWN_HOSTS: fx.sshd.knownHostsPath });
  /** `body` with a sandbox of its own and a traced driver (see traced) over the sshd, its app's context and volume; both closed after. */
  const onNode = async (
    opts: TracedOptions,
    body: (t: { own: Sandbox; driver: K3sDriver; trace: Trace; ctx: ReturnType<typeof appCtx>; vol: AppVolume }) => Promise<void>,
  ) => {
    const own = await sandbox();
    const { driver, trace } = traced(opts);
    try {
      const ctx = appCtx(own, { settings: settings() });
      await body({ own, driver, trace, ctx, vol: ctx.app.volumes[0]! });
    } finally {
      await driver.close();
      await own.cleanup();
    }
  };
  /**
   * `body` against a node of its own whose PATH finds `tools` first (name →
   * script, e.g. a slow stand-in), with a sandbox and a driver over it, its
   * app's context and volume; all closed after.
   */
  const onNodeWithTools = async (
    tools: Record<string, string>,
    body: (t: { own: Sandbox; driver: K3sDriver; ctx: ReturnType<typeof appCtx>; vol: AppVolume }) => Promise<void>,
  ) => {
    const bin = await mkdtemp(join(tmpdir(), 'kompox-node-tools-'));
    for (const [name, script] of Object.entries(tools)) await writeFile(join(bin, name), script, { mode: 0o755 });
    const node = await startSshd({ config: [`SetEnv PATH=${bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`] });
    const own = await sandbox();
    const driver = new K3sDriver({ env: {} }, () => connectSshHostFs({ target: node.target, keyPath: node.keyPath, knownHosts: node.knownHostsPath }));
    try {
      const ctx = appCtx(own, { settings: { K3S_SSH: node.target, K3S_SSH_KEY: node.keyPath, K3S_SSH_KNOWN_HOSTS: node.knownHostsPath } });
      await body({ own, driver, ctx, vol: ctx.app.volumes[0]! });
    } finally {
      await driver.close();
      await own.cleanup();
      await node.close();
      await rm(bin, { recursive: true, force: true });
    }
  };
  const logs = (events: KompoxEvent[]) => events.flatMap((e) => (e.type === 'log' ? [e.message] : []));
  /** Snapshots, checks, restores and copies a disk under roots whose paths hold spaces, quotes and backslashes; what the driver logged. */
  const roundTripUnderOddRoots = async (own: Sandbox, driver: K3sDriver): Promise<string[]> => {
    const roots = { K3S_DISK_ROOT: join(own.dir, "disk root 'a' \\b"), K3S_SNAPSHOT_ROOT: join(own.dir, 'snap  root "c"\\d ') };
    const ctx = appCtx({ diskRoot: roots.K3S_DISK_ROOT, snapshotRoot: roots.K3S_SNAPSHOT_ROOT }, { settings: { ...settings(), ...roots } });
    const vol = ctx.app.volumes[0]!;
    const d = await driver.disks.create(ctx, vol, { name: 'src' }, {});
    await writeSampleTree(d.id);
    const original = await digest(d.id);
    const { events, op } = collectEvents();
    const snap = await driver.snapshots.create(ctx, vol, d, 'snap', op);
    await unpackedSnapshot(snap, async (r) => {
      assert.equal(r.manifest.treeDigest, original);
    });
    const restored = await driver.disks.create(ctx, vol, { name: 'restored', source: { kind: 'snapshot', id: snap.id } }, op);
    assert.equal(await digest(restored.id), original);
    const copied = await driver.disks.create(ctx, vol, { name: 'copied', source: { kind: 'disk', id: d.id } }, op);
    assert.equal(await digest(copied.id), original);
    return logs(events);
  };

  it('snapshots, restores and copies a disk on the node: no data crosses to this machine, every check holds', async () => {
    await onNode({}, async ({ own, driver, trace, ctx, vol }) => {
      const d = await driver.disks.create(ctx, vol, { name: 'src' }, {});
      await writeSampleTree(d.id);
      await writeFile(join(d.id, 'name with\nnewline'), 'nl\n');
      // owners by number (uids the node has no names for), restored as unpackArchive does when root
      const asRoot = process.getuid?.() === 0;
      if (asRoot) await (await import('node:fs/promises')).lchown(join(d.id, 'binary.bin'), 4321, 8765);
      const original = await digest(d.id);

      const { events, op } = collectEvents();
      const snap = await driver.snapshots.create(ctx, vol, d, 'snap', op);
      // a valid Kompox archive: the archive reader verifies it end to end
      await unpackedSnapshot(snap, async (r) => {
        assert.equal(r.manifest.treeDigest, original);
        assert.equal(r.format, 'tar.zst');
      });
      assert.equal(snap.sha256, createHash('sha256').update(await readFile(snap.id)).digest('hex'));
      // the manifest written piece by piece is byte for byte what every archive holds (JSON.stringify(manifest, null, 2))
      const text = sh('zstd -dc -q < "$1" | tar -x -O -f - kompox-archive.json', snap.id);
      assert.equal(text, JSON.stringify(JSON.parse(text), null, 2) + '\n');
      assert.equal((JSON.parse(text) as { treeDigest: string }).treeDigest, original);
      assert.equal((await lstat(snap.id)).mode & 0o777, 0o600, 'the archive holds the disk\'s data: readable by its owner only');

      const restored = await driver.disks.create(ctx, vol, { name: 'restored', source: { kind: 'snapshot', id: snap.id } }, op);
      assert.equal(await digest(restored.id), original);
      assert.equal((await lstat(join(restored.id, 'sub', 'deeper', 'note.txt'))).mtime.toISOString(), '2020-01-02T03:04:05.678Z');

      const copied = await driver.disks.create(ctx, vol, { name: 'copied', source: { kind: 'disk', id: d.id } }, op);
      assert.equal(await digest(copied.id), original);
      if (asRoot) {
        for (const id of [restored.id, copied.id]) {
          const st = await lstat(join(id, 'binary.bin'));
          assert.deepEqual([st.uid, st.gid], [4321, 8765], id);
        }
      }

      assert.deepEqual(trace.dataIo, [], 'no file was read or written over SFTP or streamed');

      // a gzip (version 1 style) archive on the node is extracted there too (gzip -dc)
      const gz = join(own.dir, 'export.tar.gz');
      const out = (await import('node:fs')).createWriteStream(gz);
      await driver.hostTransfer.exportDisk(ctx, vol, d, out, {}, { format: 'tar.gz' });
      await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
      trace.dataIo.length = 0;
      const fromGz = await driver.disks.create(ctx, vol, { name: 'from-gz', source: { kind: 'disk', id: gz } }, op);
      assert.equal(await digest(fromGz.id), original);
      // no snapshot metadata names its format: only its first bytes are read here
      assert.deepEqual(trace.dataIo, [`openRead ${gz}`]);
      assert.ok(logs(events).some((m) => /^import .*export\.tar\.gz: on the node/.test(m)), logs(events).join(' | '));
      const said = logs(events);
      for (const re of [/^snapshot snap: on the node/, /^restore snap: on the node/, /^copy src: on the node/]) assert.ok(said.some((m) => re.test(m)), `${re}: ${said.join(' | ')}`);
      // progress: a start and an end for each of the four
      const ends = events.filter((e) => e.type === 'progress' && e.end);
      assert.equal(ends.length, 4, JSON.stringify(ends));
      assert.deepEqual((await driver.disks.list(ctx, vol, {}, {})).map((x) => x.name).sort(), ['copied', 'from-gz', 'restored', 'src']);
    });
  });

  it("a snapshot's level reaches the node's zstd: level 1 larger than 8, both restored on the node to the same tree", async () => {
    await onNode({}, async ({ driver, trace, ctx, vol }) => {
      const d = await driver.disks.create(ctx, vol, { name: 'logs' }, {});
      await writeCompressibleLog(d.id);
      const original = await digest(d.id);
      const fast = await driver.snapshots.create(ctx, vol, d, 'fast', {}, { level: 1 });
      const small = await driver.snapshots.create(ctx, vol, d, 'small', {}, { level: 8 });
      const zstds = trace.runs.map((argv) => /zstd -T0 -(\d+)/.exec(argv.join(' '))?.[1]).filter((l) => l !== undefined);
      assert.deepEqual(zstds, ['1', '8'], 'each snapshot archived on the node at its level');
      const [a, b] = [(await lstat(fast.id)).size, (await lstat(small.id)).size];
      // well apart, not by the byte or two zstd -T0's runs differ by
      assert.ok(a > b * 1.05, `level 1 (${a} bytes) larger than level 8 (${b})`);
      for (const s of [fast, small]) {
        const restored = await driver.disks.create(ctx, vol, { name: `from-${s.name}`, source: { kind: 'snapshot', id: s.id } }, {});
        assert.equal(await digest(restored.id), original, s.name);
      }
      assert.deepEqual(trace.dataIo, [], 'no file was read or written over SFTP or streamed');
    });
  });

  it('snapshot and restore on the node show live progress (bytes between 0 and the total as tar goes); a failing command\'s stderr holds no progress line', async () => {
    await onNode({}, async ({ own, driver, ctx, vol }) => {
      const d = await driver.disks.create(ctx, vol, { name: 'big' }, {});
      // ~36 MiB that does not compress: several tar checkpoints (one per ~8 MiB) on both sides
      for (let i = 0; i < 4; i++) await writeFile(join(d.id, `part${i}`), randomBytes(9 * 1024 * 1024));
      await mkdir(join(d.id, 'tree'));
      await writeSampleTree(join(d.id, 'tree'));
      const { events, op } = collectEvents();
      const snap = await driver.snapshots.create(ctx, vol, d, 'snap', op);
      await driver.disks.create(ctx, vol, { name: 'restored', source: { kind: 'snapshot', id: snap.id } }, op);
      assert.ok(logs(events).some((m) => /^snapshot snap: on the node/.test(m)) && logs(events).some((m) => /^restore snap: on the node/.test(m)), logs(events).join(' | '));
      const progress = events.flatMap((e) => (e.type === 'progress' ? [e] : []));
      for (const label of ['snapshot snap', 'restore snap']) {
        const mine = progress.filter((e) => e.label === label);
        // a snapshot's total comes from a size walk beside tar (it may come after the first report), a restore's at once
        const first = mine.findIndex((e) => e.total !== undefined);
        const total = mine[first]?.total ?? 0;
        assert.ok(total > 0 && first < mine.length - 1, `${label}: a total before the end`);
        if (label === 'restore snap') assert.equal(first, 0, 'a restore knows its total from the start');
        const dones = mine.map((e) => e.done);
        assert.ok(dones.every((x, i) => i === 0 || x >= dones[i - 1]!), `${label}: monotonic ${dones.join(',')}`);
        const between = dones.filter((x) => x > 0 && x < total);
        assert.ok(new Set(between).size >= 2, `${label}: intermediate progress ${dones.join(',')} of ${total}`);
        assert.equal(mine[mine.length - 1]!.end, true);
        assert.equal(mine[mine.length - 1]!.done, total, `${label}: ends at its total`);
      }
      assert.equal(progress.filter((e) => e.label === 'snapshot snap').at(-1)!.total, (await digestTree(local, d.id)).entries.reduce((n, e) => n + e.size, 0), 'a snapshot counts the data bytes');
      assert.equal(progress.find((e) => e.label === 'restore snap')!.total, (await lstat(snap.id)).size, 'a restore counts the archive bytes, as the streaming path does');

      // a truncated archive: tar reports progress, then fails; none of it is in the stderr tail or the message
      const metaPath = snap.id.replace(/\.tar\.zst$/, '.json');
      const cut = (await readFile(snap.id)).subarray(0, 24 * 1024 * 1024);
      await writeFile(snap.id, cut);
      const meta = JSON.parse(await readFile(metaPath, 'utf8')) as { sha256: string };
      meta.sha256 = createHash('sha256').update(cut).digest('hex');
      await writeFile(metaPath, JSON.stringify(meta));
      const fs = await connectSshHostFs({ target: fx.sshd.target, keyPath: fx.sshd.keyPath, knownHosts: fx.sshd.knownHostsPath });
      try {
        const reports: number[] = [];
        const r = await fs.run!(extractArgv(snap.id, join(own.dir, 'x'), 'tar.zst'), { progress: { mark: PROGRESS_MARK, report: (n) => reports.push(n) } });
        assert.ok(reports.length >= 2, `reports before the failure: ${reports.join(',')}`);
        assert.deepEqual(stageStatuses(withoutSha256(r.stderr), 2).codes.map((c) => c !== 0), [true, true], r.stderr);
        assert.match(r.stderr, /kompox-stage-1:/);
        assert.doesNotMatch(r.stderr, new RegExp(PROGRESS_MARK), 'no progress line in the stderr tail');
        // without the option the lines are plain stderr (what the tail held before)
        const plain = await fs.run!(extractArgv(snap.id, join(own.dir, 'y'), 'tar.zst'));
        assert.match(plain.stderr, new RegExp(`${PROGRESS_MARK}\\d+`));
      } finally {
        await fs.close();
      }
      const failed = await driver.disks.create(ctx, vol, { name: 'cut', source: { kind: 'snapshot', id: snap.id } }, {}).then(
        () => assert.fail('a truncated archive was restored'),
        (e: Error) => e,
      );
      assert.match(failed.message, /truncated or corrupt/);
      assert.doesNotMatch(failed.message, new RegExp(PROGRESS_MARK));
    });
  });

  it("a disk copy on the node shows live progress while cp writes a big file in one system call (GNU cp's copy_file_range)", async () => {
    // the node's cp as GNU cp 9 looks from /proc while it copies a big file (inFlightCpScript)
    await onNodeWithTools({ cp: inFlightCpScript(sh('command -v cp').trim(), true) }, async ({ driver, ctx, vol }) => {
      const d = await driver.disks.create(ctx, vol, { name: 'src' }, {});
      await writeFile(join(d.id, 'big.bin'), randomBytes(8 * 1024 * 1024));
      await writeSampleTree(d.id);
      const total = (await digestTree(local, d.id)).entries.reduce((n, e) => n + e.size, 0);
      const { events, op } = collectEvents();
      const copied = await driver.disks.create(ctx, vol, { name: 'copied', source: { kind: 'disk', id: d.id } }, op);
      assert.equal(await digest(copied.id), await digest(d.id));
      assert.ok(logs(events).some((m) => /^copy src: on the node/.test(m)), logs(events).join(' | '));
      const mine = events.flatMap((e) => (e.type === 'progress' && e.label === 'copy src' ? [e] : []));
      const end = mine.findIndex((e) => e.end);
      assert.equal(end, mine.length - 1, 'one end, the last');
      const dones = mine.map((e) => e.done);
      assert.ok(dones.every((x, i) => i === 0 || x >= dones[i - 1]!), `monotonic: ${dones.join(',')}`);
      // before the end: at least two different amounts between nothing and the total (wchar alone: none)
      const between = dones.slice(0, end).filter((x) => x > 0 && x < total);
      assert.ok(new Set(between).size >= 2, `intermediate progress ${dones.join(',')} of ${total}`);
      assert.equal(mine[end]!.total, total);
      assert.equal(mine[end]!.done, total, 'ends at its total');
    });
  });

  it("a disk copy on the node has its progress total from a size walk while the source is still being hashed, not only once the source's listing is in", async () => {
    // the node's hashers hold every file hash until the copy's progress has a total (at most 60 s of patience on a loaded machine, then say so):
    // the source's listing (which hashes) cannot end first, so only another count can give the total
    const gates = await mkdtemp(join(tmpdir(), 'kompox-gate-'));
    const gate = join(gates, 'open');
    const timedOut = join(gates, 'timed-out');
    const held = (real: string) =>
      [
        '#!/bin/sh',
        'for a in "$@"; do',
        '  [ -f "$a" ] || continue',
        `  i=0; while [ ! -e '${gate}' ]; do i=$((i+1)); if [ $i -gt 1200 ]; then : > '${timedOut}'; break; fi; sleep 0.05; done; break`,
        'done',
        `exec ${real} "$@"`,
        '',
      ].join('\n');
    const openssl = spawnSync('sh', ['-c', 'command -v openssl'], { encoding: 'utf8' }).stdout.trim();
    const tools = { sha256sum: held(sh('command -v sha256sum').trim()), ...(openssl ? { openssl: held(openssl) } : {}) };
    try {
      await onNodeWithTools(tools, async ({ driver, ctx, vol }) => {
        const d = await driver.disks.create(ctx, vol, { name: 'src' }, {});
        await writeFile(join(d.id, 'big.bin'), randomBytes(4 * 1024 * 1024));
        await writeSampleTree(d.id);
        const total = (await digestTree(local, d.id)).entries.reduce((n, e) => n + e.size, 0);
        const events: KompoxEvent[] = [];
        let firstTotal: number | undefined;
        const op = {
          events: (e: KompoxEvent) => {
            events.push(e);
            if (e.type === 'progress' && e.label === 'copy src' && e.total !== undefined && !e.end && firstTotal === undefined) {
              firstTotal = e.total;
              writeFileSync(gate, '');
            }
          },
        };
        const copied = await driver.disks.create(ctx, vol, { name: 'copied', source: { kind: 'disk', id: d.id } }, op);
        assert.equal(await digest(copied.id), await digest(d.id));
        assert.ok(logs(events).some((m) => /^copy src: on the node/.test(m)), logs(events).join(' | '));
        assert.equal(existsSync(timedOut), false, 'the hashing waited 60 s for a total that came only with the listing');
        assert.equal(firstTotal, total, 'the walk counts the data bytes the listing counts');
        const mine = events.flatMap((e) => (e.type === 'progress' && e.label === 'copy src' ? [e] : []));
        assert.equal(mine.at(-1)!.end, true);
        assert.equal(mine.at(-1)!.done, total, 'ends at its total');
      });
    } finally {
      await rm(gates, { recursive: true, force: true });
    }
  });

  it('an import of an archive file without snapshot metadata on the node shows live progress: the archive bytes the node has read, up to its size', async () => {
    // the node's zstd as on a slow disk: it reads its input 1 MiB at a time, 0.4 s apart (the offset the
    // import reports is that of the archive file it reads)
    const real = sh('command -v zstd').trim();
    const zstd = [
      '#!/bin/sh',
      `case "$1" in -dc) ;; *) exec ${real} "$@" ;; esac`,
      'c=$(mktemp)',
      `{ while head -c 1048576 > "$c" && [ -s "$c" ]; do cat "$c"; sleep 0.4; done; rm -f "$c"; } | ${real} "$@"`,
      '',
    ].join('\n');
    await onNodeWithTools({ zstd }, async ({ driver, ctx, vol, own }) => {
      const d = await driver.disks.create(ctx, vol, { name: 'src' }, {});
      // 6 MiB that does not compress: ~3 s through the slow zstd, reported every second
      await writeFile(join(d.id, 'big.bin'), randomBytes(6 * 1024 * 1024));
      await writeSampleTree(d.id);
      const file = join(own.dir, 'export.tar.zst');
      const out = (await import('node:fs')).createWriteStream(file);
      await driver.hostTransfer.exportDisk(ctx, vol, d, out, {});
      await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
      const size = (await lstat(file)).size;
      const { events, op } = collectEvents();
      const imported = await driver.disks.create(ctx, vol, { name: 'imported', source: { kind: 'disk', id: file } }, op);
      assert.equal(await digest(imported.id), await digest(d.id));
      assert.ok(logs(events).some((m) => /^import .*export\.tar\.zst: on the node/.test(m)), logs(events).join(' | '));
      const mine = events.flatMap((e) => (e.type === 'progress' && e.label.startsWith('import ') ? [e] : []));
      const end = mine.findIndex((e) => e.end);
      assert.equal(end, mine.length - 1, 'one end, the last');
      assert.ok(mine.every((e) => e.total === size), `the archive's size is the total from the start: ${JSON.stringify(mine)}`);
      const dones = mine.map((e) => e.done);
      assert.ok(dones.every((x, i) => i === 0 || x >= dones[i - 1]!), `monotonic: ${dones.join(',')}`);
      const between = dones.slice(0, end).filter((x) => x > 0 && x < size);
      assert.ok(new Set(between).size >= 2, `intermediate progress ${dones.join(',')} of ${size}`);
      assert.equal(mine[end]!.done, size, 'ends at its total');
    });
  });

  it('restores and imports on the node a disk whose files tar warns about (time stamps in the future): the warnings never hide the checksum or the statuses', async () => {
    await onNode({}, async ({ driver, trace, ctx, vol }) => {
      const d = await driver.disks.create(ctx, vol, { name: 'future' }, {});
      await writeSampleTree(d.id);
      // files from a machine whose clock was ahead: GNU tar extracts them with a warning each on stderr (exit 0)
      const future = new Date('2099-01-01T00:00:00Z');
      for (let i = 0; i < 100; i++) {
        await writeFile(join(d.id, `late-${i}`), `${i}\n`);
        await (await import('node:fs/promises')).utimes(join(d.id, `late-${i}`), future, future);
      }
      const original = await digest(d.id);
      const snap = await driver.snapshots.create(ctx, vol, d, 'snap', {});
      const restored = await driver.disks.create(ctx, vol, { name: 'restored', source: { kind: 'snapshot', id: snap.id } }, {});
      assert.equal(await digest(restored.id), original);
      const imported = await driver.hostTransfer.importDisk(ctx, vol, { name: 'imported' }, { stream: Readable.from([await readFile(snap.id)]), expectedSha256: snap.sha256 }, {});
      assert.equal(await digest(imported.id), original);
      assert.equal((await lstat(join(imported.id, 'late-7'))).mtime.toISOString(), future.toISOString());
      assert.deepEqual(trace.dataIo, [], 'all of it on the node');
    });
  });

  it('snapshots, restores and copies on the node under disk and snapshot roots whose paths hold spaces, quotes and backslashes', async () => {
    await onNode({}, async ({ own, driver, trace }) => {
      const said = await roundTripUnderOddRoots(own, driver);
      for (const re of [/^snapshot snap: on the node/, /^restore snap: on the node/, /^copy src: on the node/]) assert.ok(said.some((m) => re.test(m)), `${re}: ${said.join(' | ')}`);
      assert.deepEqual(trace.dataIo, [], 'no file was read or written over SFTP or streamed');
    });
  });

  it("refuses on the node another archive than the snapshot's even when tar's messages quote the recorded SHA-256", async () => {
    await onNode({}, async ({ own, driver, ctx, vol }) => {
      const d = await driver.disks.create(ctx, vol, { name: 'src' }, {});
      await writeSampleTree(d.id);
      const snap = await driver.snapshots.create(ctx, vol, d, 'snap', {});
      const recorded = createHash('sha256').update(await readFile(snap.id)).digest('hex');
      assert.equal(snap.sha256, recorded);
      // another disk's valid archive, whose members carry a pax keyword that reads like the node's SHA-256 line:
      // tar says "Ignoring unknown extended header keyword 'kompox-sha256:...'" while it extracts (and exits 0);
      // a large file last keeps the node's own hashing of the archive busy meanwhile
      const other = await driver.disks.create(ctx, vol, { name: 'other' }, {});
      await writeSampleTree(other.id);
      await writeFile(join(other.id, 'note-changed.txt'), 'not the snapshot\n');
      await writeFile(join(other.id, 'zz-large.bin'), randomBytes(32 * 1024 * 1024));
      const snap2 = await driver.snapshots.create(ctx, vol, other, 'other', {});
      const work = await mkdtemp(join(tmpdir(), 'kompox-forge-'));
      try {
        sh('zstd -dc -q < "$1" | tar -x -p -f - -C "$2"', snap2.id, work);
        const forged = join(work, 'forged.tar.zst');
        sh(`cd "$1" && tar -c -f - --format=pax --pax-option="kompox-sha256:$3  -:=1" data kompox-archive.json | zstd -q -c > "$2"`, work, forged, recorded);
        await writeFile(snap.id, await readFile(forged));
      } finally {
        await rm(work, { recursive: true, force: true });
      }
      const before = await snapshotOfTree(own.diskRoot);
      await rejectsWith(
        driver.disks.create(ctx, vol, { name: 'swapped', source: { kind: 'snapshot', id: snap.id } }, {}),
        'integrity',
        new RegExp(`archive's SHA-256 is [0-9a-f]{64}, expected ${recorded}`),
      );
      assert.deepEqual(await snapshotOfTree(own.diskRoot), before, 'nothing visible');
    });
  });

  it('refuses a tampered archive on the node (checksum, content, unsafe names) and leaves nothing visible', async () => {
    await onNode({}, async ({ own, driver, ctx, vol }) => {
      const d = await driver.disks.create(ctx, vol, { name: 'src' }, {});
      await writeSampleTree(d.id);
      const snap = await driver.snapshots.create(ctx, vol, d, 'snap', {});
      const metaPath = snap.id.replace(/\.tar\.zst$/, '.json');
      const good = await readFile(snap.id);
      const restore = (name: string) => driver.disks.create(ctx, vol, { name, source: { kind: 'snapshot', id: snap.id } }, {});
      // the same archive imported over SSH: streamed to the node and checked there as a restore is
      const imported = async (name: string) => driver.hostTransfer.importDisk(ctx, vol, { name }, { stream: Readable.from([await readFile(snap.id)]) }, {});
      const setMetaSha = async (sha: string) => {
        const m = JSON.parse(await readFile(metaPath, 'utf8')) as { sha256: string };
        m.sha256 = sha;
        await writeFile(metaPath, JSON.stringify(m));
      };
      const before = await snapshotOfTree(own.diskRoot);

      // one bit flipped: the archive's SHA-256 no longer matches the snapshot's metadata
      const flipped = Buffer.from(good);
      flipped[Math.floor(flipped.length / 2)]! ^= 0x10;
      await writeFile(snap.id, flipped);
      await rejectsWith(restore('bad-sha'), 'integrity', /archive's SHA-256 is [0-9a-f]{64}, expected/);
      assert.deepEqual(await snapshotOfTree(own.diskRoot), before);

      // the same bytes with a matching checksum: zstd on the node finds the damage
      await setMetaSha(createHash('sha256').update(flipped).digest('hex'));
      await rejectsWith(restore('bad-zstd'), 'integrity', /not a valid zstd stream|not a valid tar archive|SHA-256 check|digest/);
      assert.deepEqual(await snapshotOfTree(own.diskRoot), before);

      // a valid stream whose file content differs from the manifest (same size): caught by the node's listing
      const work = await mkdtemp(join(tmpdir(), 'kompox-tamper-'));
      try {
        await writeFile(join(work, 'good.tar.zst'), good);
        sh('zstd -dc -q < "$1" | tar -x -f - -C "$2"', join(work, 'good.tar.zst'), work);
        // every entry as listed, but the manifest's totals claim one file more: caught by the node's listing
        const manifestText = await readFile(join(work, 'kompox-archive.json'), 'utf8');
        const counted = JSON.parse(manifestText) as { fileCount: number };
        await writeFile(join(work, 'kompox-archive.json'), JSON.stringify({ ...counted, fileCount: counted.fileCount + 1 }));
        const claims = join(work, 'claims.tar.zst');
        sh('cd "$1" && tar -c -f - --format=pax data kompox-archive.json | zstd -q -c > "$2"', work, claims);
        await writeFile(snap.id, await readFile(claims));
        await setMetaSha(createHash('sha256').update(await readFile(claims)).digest('hex'));
        const claimed = new RegExp(`the manifest says the archive holds ${counted.fileCount + 1} files, but it holds ${counted.fileCount}$`);
        await rejectsWith(restore('bad-totals'), 'integrity', claimed);
        await rejectsWith(imported('bad-totals-import'), 'integrity', claimed);
        assert.deepEqual(await snapshotOfTree(own.diskRoot), before);
        await writeFile(join(work, 'kompox-archive.json'), manifestText);
        await writeFile(join(work, 'data', 'sub', 'deeper', 'note.txt'), 'HELLO\n');
        const forged = join(work, 'forged.tar.zst');
        sh('cd "$1" && tar -c -f - --format=pax data kompox-archive.json | zstd -q -c > "$2"', work, forged);
        await writeFile(snap.id, await readFile(forged));
        await setMetaSha(createHash('sha256').update(await readFile(forged)).digest('hex'));
        await rejectsWith(restore('bad-content'), 'integrity', /file data\/sub\/deeper\/note\.txt fails its SHA-256 check/);
        await rejectsWith(imported('bad-content-import'), 'integrity', /file data\/sub\/deeper\/note\.txt fails its SHA-256 check/);
        assert.deepEqual(await snapshotOfTree(own.diskRoot), before);

        // a member that leaves the disk: refused from the names, before anything is extracted
        const outside = join(own.dir, 'escaped.txt');
        await writeFile(join(work, 'escapee'), 'x');
        sh(`cd "$1" && tar -c -f - --format=pax --transform='s,^escapee,data/../../../escaped.txt,' data escapee kompox-archive.json | zstd -q -c > "$2"`, work, forged);
        await writeFile(snap.id, await readFile(forged));
        await setMetaSha(createHash('sha256').update(await readFile(forged)).digest('hex'));
        await rejectsWith(restore('bad-name'), 'integrity', /"data\/\.\.\/\.\.\/\.\.\/escaped\.txt" leaves the disk \(contains "\.\."\)|start with "data\/\.\.\/\.\.\/\.\.\/"/);
        await rejectsWith(imported('bad-name-import'), 'integrity', /"data\/\.\.\/\.\.\/\.\.\/escaped\.txt" leaves the disk \(contains "\.\."\)|start with "data\/\.\.\/\.\.\/\.\.\/"/);
        await assert.rejects(lstat(outside), 'nothing was written outside');

        // an absolute member: GNU tar strips the `/` (and says so): refused, nothing visible, nothing written there
        const absolute = join(own.dir, 'absolute.txt');
        sh(`cd "$1" && tar -c -P -f - --format=pax --transform="s,^escapee,$3," data escapee kompox-archive.json | zstd -q -c > "$2"`, work, forged, absolute);
        await writeFile(snap.id, await readFile(forged));
        await setMetaSha(createHash('sha256').update(await readFile(forged)).digest('hex'));
        await rejectsWith(restore('bad-absolute'), 'integrity', /start with "\/" \(an absolute path/);
        await rejectsWith(imported('bad-absolute-import'), 'integrity', /start with "\/" \(an absolute path/);
        await assert.rejects(lstat(absolute), 'nothing was written at the absolute path');

        // a file through a symlink that points outside: GNU tar writes nothing through it; refused
        const outsideDir = join(own.dir, 'outside-dir');
        await (await import('node:fs/promises')).mkdir(outsideDir);
        await writeFile(join(outsideDir, 'evil'), 'pwned');
        await symlink(outsideDir, join(work, 'data', 'link'));
        sh('cd "$1" && tar -c -f - --format=pax data data/link/evil kompox-archive.json | zstd -q -c > "$2"', work, forged);
        await rm(join(outsideDir, 'evil'));
        await writeFile(snap.id, await readFile(forged));
        await setMetaSha(createHash('sha256').update(await readFile(forged)).digest('hex'));
        await rejectsWith(restore('bad-symlink'), 'integrity', /"data\/link\/evil" lies under a symlink or a file, not a directory/);
        await rejectsWith(imported('bad-symlink-import'), 'integrity', /"data\/link\/evil" lies under a symlink or a file, not a directory/);
        await assert.rejects(lstat(join(outsideDir, 'evil')), 'nothing was written through the symlink');
        assert.deepEqual(await snapshotOfTree(own.diskRoot), before);
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    });
  });

  it('a file that changed after tar read it and before the listing did never makes a snapshot whose manifest differs from its data', async () => {
    let target = '';
    let total = 0;
    /** The snapshot's tar on the node: the pid of the process whose command line has the checkpoint action and --sort=name. */
    const tarPid = async (): Promise<number | undefined> => {
      const { readdir } = await import('node:fs/promises');
      for (const p of await readdir('/proc')) {
        if (!/^\d+$/.test(p)) continue;
        const cmd = await readFile(`/proc/${p}/cmdline`, 'latin1').catch(() => '');
        if (cmd.startsWith('tar\0') && cmd.includes('--sort=name') && cmd.includes(PROGRESS_MARK)) return Number(p);
      }
      return undefined;
    };
    await onNode({
      beforeRun: async (argv) => {
        const cmd = argv.join(' ');
        // the listing that hashes the disk (run beside the snapshot's tar): first let tar read the whole tree, if it does
        if (!target || !argv.includes(target) || !cmd.includes('kompox-hashes') || cmd.includes('tar -c')) return;
        const t = target;
        target = '';
        for (let i = 0; i < 150; i++) {
          const pid = await tarPid();
          const read = pid ? Number(/^rchar: (\d+)/m.exec(await readFile(`/proc/${pid}/io`, 'utf8').catch(() => ''))?.[1] ?? 0) : 0;
          if (read >= total) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        // tar has the old content; the listing will stat and hash the new (same size, new ctime)
        await writeFile(join(t, 'sub', 'deeper', 'note.txt'), 'HELLO\n');
      },
    }, async ({ driver, ctx, vol }) => {
      const d = await driver.disks.create(ctx, vol, { name: 'live' }, {});
      await writeSampleTree(d.id);
      assert.equal(await readFile(join(d.id, 'sub', 'deeper', 'note.txt'), 'utf8'), 'hello\n');
      total = (await digestTree(local, d.id)).entries.reduce((n, e) => n + e.size, 0);
      target = d.id;
      const snap = await driver.snapshots.create(ctx, vol, d, 'moving', {});
      assert.equal(target, '', 'the hook ran');
      // whatever path made it, the snapshot is an archive whose manifest describes its data
      await unpackedSnapshot(snap, async (r) => {
        assert.equal(r.manifest.treeDigest, await digest(d.id));
      });
    });
  });

  it('a tree that changed while the node listed, hashed and archived it is snapshotted by the streaming path instead (and says so)', async () => {
    let target = '';
    await onNode({
      // a write after tar and the hashing, before the listing that checks them: the archive may not hold the tree the manifest lists
      beforeRun: async (argv) => {
        const cmd = argv.join(' ');
        if (target && cmd.includes('find . -printf') && !cmd.includes('sha256sum')) await appendFile(join(target, 'empty.txt'), 'late write\n');
      },
    }, async ({ own, driver, trace, ctx, vol }) => {
      const d = await driver.disks.create(ctx, vol, { name: 'live' }, {});
      await writeSampleTree(d.id);
      target = d.id;
      const events: KompoxEvent[] = [];
      const snap = await driver.snapshots.create(ctx, vol, d, 'moving', { events: (e) => events.push(e) });
      assert.ok(
        logs(events).some((m) => /^snapshot through this machine, not on the node: .* changed while the node archived it \(data\/empty\.txt changed\)/.test(m)),
        logs(events).join(' | '),
      );
      assert.ok(trace.dataIo.some((x) => x.startsWith('packedStream ')), 'the streaming path made it (packed on the node, checked here)');
      // the archive holds the tree as it is now, and verifies
      await unpackedSnapshot(snap, async (r, data) => {
        assert.equal(r.manifest.treeDigest, await digest(d.id));
        assert.equal(await readFile(join(data, 'empty.txt'), 'utf8'), 'late write\n');
      });
      // nothing of the dropped attempt is left beside the snapshot
      const files = (await snapshotOfTree(own.snapshotRoot)).filter((p) => !p.endsWith('/')).map((p) => p.replace(/ \d+$/, '').replace(/^.*\//, ''));
      assert.deepEqual(files.sort(), ['moving.json', 'moving.tar.zst']);
    });
  });

  /** The disks' and temp dirs' paths under ROOT (with their modes), but for the data of DISK and the copy's disk COPY. */
  const leftovers = async (root: string, copy: string) => (await snapshotOfTree(root)).filter((p) => !p.includes('note.txt') && !p.includes(`/${copy}/`));

  it('a disk copy whose source changed after the copy and its listing read it (the listing after the copy: a live app writing) is made by the streaming path instead, verified, and says so; nothing else left', async () => {
    let target = '';
    await onNode({
      beforeRun: async (argv) => {
        const cmd = argv.join(' ');
        // the source's second listing, without hashes: cp and both hashing listings are done
        if (target && argv.includes(target) && !cmd.includes('cp -a') && !cmd.includes('kompox-hashes')) {
          await appendFile(join(target, 'sub', 'deeper', 'note.txt'), 'late\n');
          target = '';
        }
      },
    }, async ({ own, driver, ctx, vol }) => {
      const d = await driver.disks.create(ctx, vol, { name: 'src' }, {});
      await writeSampleTree(d.id);
      target = d.id;
      const before = await leftovers(own.diskRoot, 'copy');
      const { events, op } = collectEvents();
      // before: integrity "changed during the copy (its listing after the copy differs from the one before)", every time an app wrote
      const copy = await driver.disks.create(ctx, vol, { name: 'copy', source: { kind: 'disk', id: d.id } }, op);
      assert.equal(target, '', 'the hook ran');
      assert.ok(
        logs(events).some((m) => /^copy through this machine, not on the node: .* changed while the node copied it \(its listing after the copy differs from the one before\); for a consistent copy, snapshot with --quiesce/.test(m)),
        logs(events).join(' | '),
      );
      assert.equal(await digest(copy.id), await digest(d.id));
      assert.equal(await readFile(join(copy.id, 'sub', 'deeper', 'note.txt'), 'utf8'), 'hello\nlate\n');
      assert.deepEqual(await leftovers(own.diskRoot, 'copy'), before, 'no temp dir is left');
      assert.deepEqual((await driver.disks.list(ctx, vol, {}, {})).map((x) => x.name).sort(), ['copy', 'src']);
    });
  });

  it('a disk copy whose tree differs from the source listing (the source changed after cp read it, before the listing did) is made by the streaming path instead, verified, and says so; nothing else left', async () => {
    let target = '';
    let diskRoot = '';
    // cp -a and the source's listing run at once: the file changes after cp has copied it and before the listing reads it
    const copiedNote = async (): Promise<boolean> => {
      const { readdir } = await import('node:fs/promises');
      const vols = diskRoot;
      for (const e of await readdir(vols, { recursive: true })) {
        if (!e.endsWith(join('sub', 'deeper', 'note.txt')) || !e.split('/').some((p) => p.startsWith('.tmp-'))) continue;
        const copy = await readFile(join(vols, e), 'utf8').catch(() => '');
        if (copy === (await readFile(join(target, 'sub', 'deeper', 'note.txt'), 'utf8'))) return true;
      }
      return false;
    };
    await onNode({
      beforeRun: async (argv) => {
        const cmd = argv.join(' ');
        if (!target || cmd.includes('cp -a') || !cmd.includes('kompox-hashes') || !argv.includes(target)) return;
        // up to 30 s (patience for a loaded machine): changed before cp has copied it, the copy would match the listing
        for (const end = Date.now() + 30_000; !(await copiedNote()) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
        await appendFile(join(target, 'sub', 'deeper', 'note.txt'), 'changed\n');
      },
    }, async ({ own, driver, ctx, vol }) => {
      const d = await driver.disks.create(ctx, vol, { name: 'src' }, {});
      await writeSampleTree(d.id);
      diskRoot = own.diskRoot;
      target = d.id;
      const before = await leftovers(own.diskRoot, 'copy');
      const { events, op } = collectEvents();
      // before: integrity "the copy's tree digest ... differs from the source's", every time an app wrote
      const copy = await driver.disks.create(ctx, vol, { name: 'copy', source: { kind: 'disk', id: d.id } }, op);
      assert.ok(logs(events).some((m) => /^copy through this machine, not on the node: .* changed while the node copied it \(the copy's tree digest [0-9a-f]{64} differs from the source listing's/.test(m)), logs(events).join(' | '));
      assert.equal(await digest(copy.id), await digest(d.id));
      assert.equal(await readFile(join(copy.id, 'sub', 'deeper', 'note.txt'), 'utf8'), 'hello\nchanged\n');
      assert.deepEqual(await leftovers(own.diskRoot, 'copy'), before, 'no temp dir is left');
    });
  });

  // logrotate by rename: a file listed, then renamed away before the listing's hashing pass reached it
  // (find's, held by a stand-in find: "no SHA-256 for it") or while it ran (openssl's or sha256sum's
  // open: "No such file or directory", the listing command failing)
  const rotate = 'if [ -f ./app.log ] && [ ! -e ./app.log.1 ]; then mv ./app.log ./app.log.1 && echo rotated >&2; fi';
  const rotatingTools: Record<string, Record<string, string>> = {
    'before its hashing pass found it': { find: `#!/bin/sh\ncase " $* " in *" -type f "*" -print0 "*) ${rotate} ;; esac\nexec /usr/bin/find "$@"\n` },
    'as its hasher opened it': {
      openssl: `#!/bin/sh\nif [ "$1" = dgst ] && [ $# -gt 3 ]; then ${rotate}; fi\nexec /usr/bin/openssl "$@"\n`,
      sha256sum: `#!/bin/sh\nif [ $# -gt 1 ]; then ${rotate}; fi\nexec /usr/bin/sha256sum "$@"\n`,
    },
  };
  for (const [when, tools] of Object.entries(rotatingTools)) {
    it(`a snapshot and a disk copy on the node of a disk whose log an app renames away (logrotate) after the listing listed it, ${when}: made by the streaming path instead (a live copy), verified, and said; nothing else left`, async () => {
      await onNodeWithTools(tools, async ({ own, driver, ctx, vol }) => {
        const d = await driver.disks.create(ctx, vol, { name: 'src' }, {});
        await writeSampleTree(d.id);
        for (const [i, what] of (['snapshot', 'copy'] as const).entries()) {
          await writeFile(join(d.id, 'app.log'), `log ${i}\n`);
          await rm(join(d.id, 'app.log.1'), { force: true });
          const { events, op } = collectEvents();
          // before: "listing DIR on ssh ... failed (exit code 1): ./app.log: No such file or directory; ...:error:...",
          // or "... the node listing has no SHA-256 for "app.log" (it changed or could not be read)"
          if (what === 'snapshot') {
            const snap = await driver.snapshots.create(ctx, vol, d, 'rotated', op);
            await unpackedSnapshot(snap, async (r, data) => {
              assert.equal(r.manifest.treeDigest, await digest(d.id));
              assert.equal(await readFile(join(data, 'app.log.1'), 'utf8'), 'log 0\n');
            });
            assert.ok(
              logs(events).some((m) => /^snapshot through this machine, not on the node: .* changed while the node archived it \(the listing could not hash it: .*app\.log/.test(m)),
              logs(events).join(' | '),
            );
            const files = (await snapshotOfTree(own.snapshotRoot)).filter((p) => !p.endsWith('/')).map((p) => p.replace(/ \d+$/, '').replace(/^.*\//, ''));
            assert.deepEqual(files.sort(), ['rotated.json', 'rotated.tar.zst']);
          } else {
            const copy = await driver.disks.create(ctx, vol, { name: 'copy', source: { kind: 'disk', id: d.id } }, op);
            assert.equal(await digest(copy.id), await digest(d.id));
            assert.equal(await readFile(join(copy.id, 'app.log.1'), 'utf8'), 'log 1\n');
            assert.ok(logs(events).some((m) => /^copy through this machine, not on the node: .* changed while the node copied it/.test(m)), logs(events).join(' | '));
            assert.deepEqual((await driver.disks.list(ctx, vol, {}, {})).map((x) => x.name).sort(), ['copy', 'src']);
            assert.ok(!(await snapshotOfTree(own.diskRoot)).some((p) => /\.tmp-/.test(p)), 'no temp dir is left');
          }
        }
      });
    });
  }

  it('a node whose GNU tar has no --sort (before 1.28) snapshots through this machine, and says why', async () => {
    // the node's tar as GNU tar 1.26 (RHEL 7) answers: --sort=name is an unknown option; everything else is this machine's tar
    const tar = [
      '#!/bin/sh',
      'for a in "$@"; do case "$a" in --sort|--sort=*) echo "tar: unrecognized option \'$a\'" >&2; echo "Try \'tar --help\' or \'tar --usage\' for more information." >&2; exit 64;; esac; done',
      'case "$1" in --version) echo "tar (GNU tar) 1.26"; exit 0;; esac',
      'exec /usr/bin/tar "$@"',
      '',
    ].join('\n');
    await onNodeWithTools({ tar }, async ({ driver, ctx, vol }) => {
      const d = await driver.disks.create(ctx, vol, { name: 'src' }, {});
      await writeSampleTree(d.id);
      const { events, op } = collectEvents();
      const snap = await driver.snapshots.create(ctx, vol, d, 'snap', op);
      const said = logs(events);
      assert.ok(said.some((m) => m.startsWith('snapshot through this machine, not on the node') && /--sort/.test(m)), said.join(' | '));
      // the archive is whole, and a restore (which needs no --sort) still runs on the node
      const restored = await driver.disks.create(ctx, vol, { name: 'restored', source: { kind: 'snapshot', id: snap.id } }, op);
      assert.equal(await digest(restored.id), await digest(d.id));
      assert.ok(logs(events).some((m) => /^restore snap: on the node/.test(m)), logs(events).join(' | '));
    });
  });

  it("a decompressor on the node that fails at once (not found, not executable, a bad option) is the node's failure quoting it, not a corrupt archive; nothing visible", async () => {
    // the node's zstd decompresses through a wrapper that runs, per the mode file, something that fails
    // at once; everything else (the tool probe, compression) is this machine's zstd
    const zstd = sh('command -v zstd').trim();
    const bin = await mkdtemp(join(tmpdir(), 'kompox-badzstd-'));
    await writeFile(join(bin, 'noexec'), '#!/bin/sh\n', { mode: 0o644 });
    await writeFile(
      join(bin, 'zstd'),
      [
        '#!/bin/sh',
        'case " $* " in *" -dc "*)',
        `  case "$(cat "${bin}/mode" 2>/dev/null)" in`,
        '    missing) exec kompox-no-such-zstd "$@";;',
        `    noexec) exec "${bin}/noexec" "$@";;`,
        `    option) exec "${zstd}" --no-such-option "$@";;`,
        '  esac;;',
        'esac',
        `exec "${zstd}" "$@"`,
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const node = await startSshd({ config: [`SetEnv PATH=${bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`] });
    const own = await sandbox();
    const driver = new K3sDriver({ env: {} }, () => connectSshHostFs({ target: node.target, keyPath: node.keyPath, knownHosts: node.knownHostsPath }));
    try {
      const ctx = appCtx(own, { settings: { K3S_SSH: node.target, K3S_SSH_KEY: node.keyPath, K3S_SSH_KNOWN_HOSTS: node.knownHostsPath } });
      const vol = ctx.app.volumes[0]!;
      const d = await driver.disks.create(ctx, vol, { name: 'src' }, {});
      await writeSampleTree(d.id);
      const snap = await driver.snapshots.create(ctx, vol, d, 'snap', {});
      const restore = (name: string, op = {}) => driver.disks.create(ctx, vol, { name, source: { kind: 'snapshot', id: snap.id } }, op);
      const imported = async (name: string) => driver.hostTransfer.importDisk(ctx, vol, { name }, { stream: Readable.from([await readFile(snap.id)]) }, {});
      const before = await snapshotOfTree(own.diskRoot);
      for (const [mode, said] of [
        ['missing', /^zstd -d \(extracting .*\) on ssh .* failed \(exit code 127\): .*kompox-no-such-zstd: not found$/],
        ['noexec', /^zstd -d \(extracting .*\) on ssh .* failed \(exit code 126\): .*noexec: Permission denied$/],
        ['option', /^zstd -d \(extracting .*\) on ssh .* failed \(exit code 1\): Incorrect parameters ?$/],
      ] as const) {
        await writeFile(join(bin, 'mode'), mode);
        await rejectsWith(restore(`bad-${mode}`), 'unavailable', said);
        await rejectsWith(imported(`bad-${mode}-import`), 'unavailable', said);
        assert.deepEqual(await snapshotOfTree(own.diskRoot), before, `${mode}: nothing visible`);
      }
      // the same node's zstd on a damaged archive: the archive's failure, as before
      await rm(join(bin, 'mode'));
      const flipped = await readFile(snap.id);
      flipped[Math.floor(flipped.length / 2)]! ^= 0x10;
      await rejectsWith(
        driver.hostTransfer.importDisk(ctx, vol, { name: 'bad-archive' }, { stream: Readable.from([flipped]) }, {}),
        'integrity',
        /not a valid zstd stream: it is truncated or corrupt|not a valid tar archive|SHA-256 check|digest/,
      );
      assert.deepEqual(await snapshotOfTree(own.diskRoot), before);
      // and with nothing in the way, the restore runs on that node
      const { events, op } = collectEvents();
      const restored = await restore('restored', op);
      assert.equal(await digest(restored.id), await digest(d.id));
      assert.ok(logs(events).some((m) => /^restore snap: on the node/.test(m)), logs(events).join(' | '));
    } finally {
      await driver.close();
      await own.cleanup();
      await node.close();
      await rm(bin, { recursive: true, force: true });
    }
  });

  it('without the tools, the streaming path snapshots, restores and copies under those roots too', async () => {
    await onNode({ noTools: true }, async ({ own, driver }) => {
      const said = await roundTripUnderOddRoots(own, driver);
      assert.ok(said.some((m) => m.startsWith('restore through this machine, not on the node')), said.join(' | '));
    });
  });

  it('falls back to the streaming path when the node lacks the tools, and says why', async () => {
    await onNode({ noTools: true }, async ({ driver, trace, ctx, vol }) => {
      const d = await driver.disks.create(ctx, vol, { name: 'src' }, {});
      await writeSampleTree(d.id);
      const { events, op } = collectEvents();
      const snap = await driver.snapshots.create(ctx, vol, d, 'snap', op);
      const restored = await driver.disks.create(ctx, vol, { name: 'restored', source: { kind: 'snapshot', id: snap.id } }, op);
      const copied = await driver.disks.create(ctx, vol, { name: 'copied', source: { kind: 'disk', id: d.id } }, op);
      assert.equal(await digest(restored.id), await digest(d.id));
      assert.equal(await digest(copied.id), await digest(d.id));
      const said = logs(events);
      for (const w of ['snapshot', 'restore', 'copy']) {
        assert.ok(said.some((m) => m.startsWith(`${w} through this machine, not on the node`) && /lacks GNU find/.test(m)), `${w}: ${said.join(' | ')}`);
      }
      assert.ok(trace.dataIo.length > 0, 'the streaming path moved the data');
      assert.equal(trace.runs.length, 1, 'the tools were probed once per connection');
    });
  });

  it('a cancel kills the command on the node and removes what it wrote', async () => {
    const fs = await connectSshHostFs({ target: fx.sshd.target, keyPath: fx.sshd.keyPath, knownHosts: fx.sshd.knownHostsPath });
    const dir = await mkdtemp(join(tmpdir(), 'kompox-cancel-'));
    try {
      // run() hands back stdout (bytes as they are), stderr (without its own process-group line) and the exit status
      const r = await fs.run!(['sh', '-c', 'printf "out\\0put"; echo err >&2; exit 3']);
      assert.deepEqual([r.stdout, r.stderr, r.code], [Buffer.from('out\0put'), 'err', 3]);
      // stdout handed over as it streams (a listing of every file is never collected whole)
      const chunks: Buffer[] = [];
      const big = await fs.run!(['sh', '-c', 'head -c 3000000 /dev/zero; echo err >&2'], { stdout: (c) => chunks.push(c) });
      assert.deepEqual([big.stdout.length, big.stderr, big.code], [0, 'err', 0]);
      assert.equal(Buffer.concat(chunks).length, 3_000_000);
      assert.ok(chunks.length > 1, 'in pieces');

      const ac = new AbortController();
      const pidFile = join(dir, 'pid');
      const running = fs.run!(['sh', '-c', 'sleep 30 & echo $! > "$1"; wait', 'sh', pidFile], { signal: ac.signal });
      // up to 10 s: on a loaded machine (load 8 on 2 CPUs) the command took over 2 s to start
      for (let i = 0; i < 500 && !(await readFile(pidFile, 'utf8').catch(() => '')).trim(); i++) await new Promise((r) => setTimeout(r, 20));
      const pid = Number((await readFile(pidFile, 'utf8')).trim());
      assert.ok(pid > 0);
      ac.abort();
      await assert.rejects(running, /was cancelled/);
      let alive = true;
      for (let i = 0; i < 500 && alive; i++) {
        try {
          process.kill(pid, 0);
          await new Promise((r) => setTimeout(r, 20));
        } catch {
          alive = false;
        }
      }
      assert.equal(alive, false, 'the sleep on the node was killed');

      // cancelled at once (while the channel opens, before the command said its process group): still killed
      const early = new AbortController();
      const quick = fs.run!(['sleep', '31.7'], { signal: early.signal });
      early.abort();
      await assert.rejects(quick, /was cancelled/);
      let left = 'x';
      for (let i = 0; i < 500 && left; i++) {
        left = spawnSync('pgrep', ['-f', 'sleep 31.7'], { encoding: 'utf8' }).stdout.trim();
        if (left) await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(left, '', 'no sleep left running on the node');
    } finally {
      await fs.close();
      await rm(dir, { recursive: true, force: true });
    }

    // through the driver: a restore cancelled while the node extracts leaves no disk and no temp dir
    const ac = new AbortController();
    await onNode({
      beforeRun: (argv) => {
        if (argv.join(' ').includes('tar -x')) ac.abort();
      },
    }, async ({ own, driver, ctx, vol }) => {
      const d = await driver.disks.create(ctx, vol, { name: 'src' }, {});
      await writeSampleTree(d.id);
      const snap = await driver.snapshots.create(ctx, vol, d, 'snap', {});
      const before = await snapshotOfTree(own.diskRoot);
      await rejectsWith(driver.disks.create(ctx, vol, { name: 'cancelled', source: { kind: 'snapshot', id: snap.id } }, { signal: ac.signal }), 'interrupted', /interrupted/);
      assert.deepEqual(await snapshotOfTree(own.diskRoot), before);
    });
  });
});
