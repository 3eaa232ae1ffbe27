// The K3s driver over SSH/SFTP against a real sshd on 127.0.0.1. The node's
// "remote" filesystem is this machine's, so results are checked locally.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { readFile, lstat, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { KompoxError } from '../../src/domain/errors.js';
import type { KompoxEvent } from '../../src/domain/events.js';
import { digestTree, measureTree, packTree } from '../../src/archive/archive.js';
import { watchTransfers } from '../../src/cli/transfer-summary.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { K3sDriver } from '../../src/providers/k3s/index.js';
import { connectSshHostFs, HEAD_PROBE, knownKeys, NODE_ZSTD_PROBE, nodeZstdCommand, parseSshTarget } from '../../src/providers/k3s/ssh-hostfs.js';
import type { HostFsFactory } from '../../src/providers/k3s/driver.js';
import { exitSaid, type HostFs } from '../../src/providers/k3s/hostfs.js';
import { archiveToTar } from '../../src/archive/tar-stream.js';
import { externalPacing } from '../../src/archive/memory.js';
import { sshdMissing, startSshd, type Sshd } from '../support/sshd.js';
import { appCtx, sandbox, snapshotOfTree, writeCompressibleLog, writeSampleTree, type Sandbox } from './k3s-fixtures.js';
import { rejectsWith } from '../support/assertions.js';
import { assertTotalBeforeEnd } from '../support/events.js';
import { collect as collectArchive } from '../support/collect.js';
import { zstdFrameCount } from '../support/zstd-frames.js';

const local = new LocalHostFs();
const digest = async (p: string) => (await digestTree(local, p)).treeDigest;
const skip = sshdMissing();

describe('K3s SSH settings parsing', () => {
  it('parses user@host[:port] and rejects other forms with the field', () => {
    assert.deepEqual(parseSshTarget('root@k3s.example.com'), { user: 'root', host: 'k3s.example.com', port: 22 });
    assert.deepEqual(parseSshTarget('ubuntu@10.0.0.5:2222'), { user: 'ubuntu', host: '10.0.0.5', port: 2222 });
    assert.deepEqual(parseSshTarget('me@[::1]:22'), { user: 'me', host: '::1', port: 22 });
    assert.throws(() => parseSshTarget('k3s.example.com'), (e: unknown) => e instanceof KompoxError && e.field === 'cluster.settings.K3S_SSH');
  });

  it('reads plain and hashed known_hosts entries for host:port', () => {
    const t = { user: 'u', host: '10.0.0.5', port: 2222 };
    const salt = Buffer.from('0123456789abcdefghij');
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[10.0.0.5]:2222').digest('base64')}`;
    const text = [
      '# comment',
      '[10.0.0.5]:2222 ssh-ed25519 AAAAplain',
      `${hashed} ssh-ed25519 AAAAhashed`,
      '10.0.0.5 ssh-ed25519 AAAAport22only',
      '@revoked [10.0.0.5]:2222 ssh-ed25519 AAAArevoked',
    ].join('\n');
    assert.deepEqual(knownKeys(text, t), ['AAAAplain', 'AAAAhashed']);
  });
});

describe('K3s driver over SSH (real sshd on 127.0.0.1)', { skip }, () => {
  let sshd: Sshd;
  let sb: Sandbox;
  let driver: K3sDriver;
  let settings: Record<string, string>;
  before(async () => {
    sshd = await startSshd();
    sb = await sandbox();
    settings = { K3S_SSH: sshd.target, K3S_SSH_KEY: sshd.keyPath, K3S_SSH_KNOWN_HOSTS: sshd.knownHostsPath };
    driver = new K3sDriver();
  });
  after(async () => {
    await driver?.close();
    await sshd?.close();
    await sb?.cleanup();
  });

  it("loads ssh2's client alone, not its HTTP agents (node's http, https and tls stay unloaded: memory of every data command over SSH)", async () => {
    // a process of its own: this one has loaded http long ago
    const script = [
      `import { connectSshHostFs } from ${JSON.stringify(new URL('../../src/providers/k3s/ssh-hostfs.ts', import.meta.url).href)};`,
      'const fs = await connectSshHostFs(JSON.parse(process.argv[1]));',
      "const name = await fs.hostname();",
      'await fs.close();',
      "console.log(JSON.stringify({ named: name.length > 0, loaded: process.moduleLoadList.filter((m) => /^NativeModule (http|https|tls|_http_agent)$/.test(m)) }));",
    ].join('\n');
    const opts = { target: sshd.target, keyPath: sshd.keyPath, knownHosts: sshd.knownHostsPath };
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, JSON.stringify(opts)], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()!), { named: true, loaded: [] });
  });

  it('creates a disk, snapshots, restores and exports over SFTP; every byte arrives', async () => {
    const ctx = appCtx(sb, { settings });
    const vol = ctx.app.volumes[0]!;
    const d = await driver.disks.create(ctx, vol, { name: 'remote-a', sizeGiB: 2 }, {});
    assert.equal(d.zone, hostname(), 'the node is the host name of the SSH host');
    assert.equal((await lstat(d.id)).mode & 0o777, 0o777);
    await writeSampleTree(d.id);
    const original = await digest(d.id);

    const snap = await driver.snapshots.create(ctx, vol, d, 'snap-a', {});
    assert.equal(snap.sha256, createHash('sha256').update(await readFile(snap.id)).digest('hex'));
    const restored = await driver.disks.create(ctx, vol, { name: 'restored-a', source: { kind: 'snapshot', id: snap.id } }, {});
    assert.equal(await digest(restored.id), original);
    assert.equal(await readlink(join(restored.id, 'absolute-link')), '/etc/passwd');
    // restored by tar on the node: the archive's millisecond mtimes (SFTP would carry whole seconds)
    assert.equal((await lstat(join(restored.id, 'sub', 'deeper', 'note.txt'))).mtime.toISOString(), '2020-01-02T03:04:05.678Z');

    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    await driver.hostTransfer.exportDisk(ctx, vol, restored, out, {});
    out.end();
    const imported = await driver.hostTransfer.importDisk(ctx, vol, { name: 'imported-a' }, { stream: Readable.from([Buffer.concat(chunks)]) }, {});
    assert.equal(await digest(imported.id), original);
    assert.deepEqual((await driver.disks.list(ctx, vol, {}, {})).map((x) => x.name).sort(), ['imported-a', 'remote-a', 'restored-a']);

    // the same disks seen through the local filesystem driver
    const localCtx = appCtx(sb);
    assert.deepEqual((await driver.disks.list(localCtx, vol, {}, {})).map((x) => x.name).sort(), ['imported-a', 'remote-a', 'restored-a']);
  });

  it('exports files bigger than one window of pipelined SFTP reads byte for byte (and one empty, one of an odd size)', async () => {
    const ctx = appCtx(sb, { settings });
    const vol = ctx.app.volumes[0]!;
    const d = await driver.disks.create(ctx, vol, { name: 'remote-big' }, {});
    const { randomBytes } = await import('node:crypto');
    const { writeFile } = await import('node:fs/promises');
    // 32 requests of 64 KiB are one window: 5 MiB + 3 takes three windows and a short last piece.
    await writeFile(join(d.id, 'big.bin'), randomBytes(5 * 1024 * 1024 + 3));
    await writeFile(join(d.id, 'empty'), '');
    await writeFile(join(d.id, 'odd.bin'), randomBytes(64 * 1024 + 1));
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    await driver.hostTransfer.exportDisk(ctx, vol, d, out, {});
    out.end();
    const imported = await driver.hostTransfer.importDisk(appCtx(sb), vol, { name: 'big-back' }, { stream: Readable.from([Buffer.concat(chunks)]) }, {});
    assert.equal(await digest(imported.id), await digest(d.id));
  });

  it('refuses a corrupt import over SSH and leaves nothing behind; deletes remotely', async () => {
    // Its own disks and snapshot, in its own roots: it does not build on the test above.
    const own = await sandbox();
    try {
      const ctx = appCtx(own, { settings });
      const vol = ctx.app.volumes[0]!;
      const d = await driver.disks.create(ctx, vol, { name: 'remote-b', sizeGiB: 1 }, {});
      await writeSampleTree(d.id);
      const snap = await driver.snapshots.create(ctx, vol, d, 'snap-b', {});
      const out = new PassThrough();
      const chunks: Buffer[] = [];
      out.on('data', (c: Buffer) => chunks.push(c));
      await driver.hostTransfer.exportDisk(ctx, vol, d, out, {});
      out.end();
      await driver.hostTransfer.importDisk(ctx, vol, { name: 'imported-b' }, { stream: Readable.from([Buffer.concat(chunks)]) }, {});

      const bad = Buffer.from(await readFile(snap.id));
      bad[Math.floor(bad.length / 3)]! ^= 0x08;
      const before = await snapshotOfTree(own.dir);
      await rejectsWith(driver.hostTransfer.importDisk(ctx, vol, { name: 'bad' }, { stream: Readable.from([bad]) }, {}), 'integrity', /./);
      assert.deepEqual(await snapshotOfTree(own.dir), before);
      const disks = await driver.disks.list(ctx, vol, {}, {});
      await driver.disks.delete(ctx, vol, disks.find((x) => x.name === 'imported-b')!, {});
      await driver.snapshots.delete(ctx, vol, snap, {});
      assert.deepEqual((await driver.disks.list(ctx, vol, {}, {})).map((x) => x.name).sort(), ['remote-b']);
      assert.deepEqual(await driver.snapshots.list(ctx, vol, {}), []);
    } finally {
      await own.cleanup();
    }
  });

  /**
   * A driver over the real sshd whose HostFs records which read and write
   * paths ran (`sftpWrites`: the entry-by-entry SFTP writes of an import);
   * `noTar` hides the node's tar; `treeBytes` stands in for the size walk;
   * `noPacked` hides the node's own packing (exports take the plain tar stream);
   * `noRun` hides HostFs.run (no work on the node itself: an import takes
   * untarStream). `runStdin` counts the commands fed on stdin (an import
   * extracted and verified on the node).
   */
  const tracedDriver = (noTar = false, treeBytes?: (real: Required<HostFs>['treeBytes'], dir: string, signal?: AbortSignal) => ReturnType<Required<HostFs>['treeBytes']>, noPacked = false, noRun = false) => {
    const calls = { tarStream: 0, packedStream: 0, openFile: 0, untarStream: 0, sftpWrites: 0, runStdin: 0 };
    const factory: HostFsFactory = async () => {
      const fs = await connectSshHostFs({ target: sshd.target, keyPath: sshd.keyPath, knownHosts: sshd.knownHostsPath });
      return new Proxy(fs, {
        get: (t, k) => {
          const v = Reflect.get(t, k) as unknown;
          if (k === 'tarStream' || k === 'untarStream' || k === 'packedStream') {
            return async (dir: string, ...rest: unknown[]) => {
              calls[k]++;
              return noTar || (noPacked && k === 'packedStream') ? undefined : ((t as Required<HostFs>)[k] as (...a: unknown[]) => unknown)(dir, ...rest);
            };
          }
          if (k === 'run' && typeof v === 'function') {
            if (noRun) return undefined;
            return (argv: readonly string[], o?: { stdin?: unknown }) => {
              if (o?.stdin) calls.runStdin++;
              return (v as (...x: unknown[]) => unknown).call(t, argv, o);
            };
          }
          if (k === 'treeBytes' && treeBytes) {
            const real = (v as Required<HostFs>['treeBytes']).bind(t);
            return (dir: string, signal?: AbortSignal) => treeBytes(real, dir, signal);
          }
          if ((k === 'openFile' || k === 'openWrite' || k === 'symlink' || k === 'setTimes') && typeof v === 'function') {
            return (...a: unknown[]) => {
              if (k === 'openFile') calls.openFile++;
              else calls.sftpWrites++;
              return (v as (...x: unknown[]) => unknown).apply(t, a);
            };
          }
          return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(t) : v;
        },
      });
    };
    return { driver: new K3sDriver({ env: {} }, factory), calls };
  };
  const exportBytes = async (d: K3sDriver, ctx: ReturnType<typeof appCtx>, disk: Awaited<ReturnType<K3sDriver['disks']['create']>>, events: KompoxEvent[] = [], level?: number) => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    await d.hostTransfer.exportDisk(ctx, ctx.app.volumes[0]!, disk, out, { events: (e) => events.push(e) }, level === undefined ? undefined : { level });
    out.end();
    return Buffer.concat(chunks);
  };
  /** The archive's manifest, after archiveToTar verified every file and the tree digest. */
  const verifiedManifest = async (archive: Buffer) => {
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    return (await archiveToTar(Readable.from([archive]), sink)).manifest;
  };

  it('exports through one streaming tar on the node, packed there or plain: the same manifest and tree digest as the file-by-file SFTP path', async () => {
    const own = await sandbox();
    const streamed = tracedDriver();
    const plain = tracedDriver(false, undefined, true);
    const walked = tracedDriver(true);
    try {
      const ctx = appCtx(own, { settings });
      const vol = ctx.app.volumes[0]!;
      const d = await driver.disks.create(ctx, vol, { name: 'both-ways' }, {});
      await writeSampleTree(d.id);
      const { link, mkdir, writeFile } = await import('node:fs/promises');
      await link(join(d.id, 'binary.bin'), join(d.id, 'hard-link.bin')); // tar stores the second name as a link
      await mkdir(join(d.id, 'lost+found')); // a directory of the app's here (a K3s disk is no filesystem): kept on both paths
      await writeFile(join(d.id, 'sub', `${'y'.repeat(80)}-${'z'.repeat(80)}.txt`), 'a name past ustar limits\n');

      // packed on the node: its zstd frame kept as it is, the manifest's frame after it
      const tarEvents: KompoxEvent[] = [];
      const packedArchive = await exportBytes(streamed.driver, ctx, d, tarEvents);
      const viaTar = await verifiedManifest(packedArchive);
      assert.equal(streamed.calls.packedStream, 1);
      assert.equal(streamed.calls.tarStream, 0);
      assert.equal(streamed.calls.openFile, 0, 'no file was read over SFTP');
      assert.deepEqual(tarEvents.filter((e) => e.type === 'warning'), []);
      assert.ok(tarEvents.some((e) => e.type === 'log' && /packed on the node \(ssh /.test(e.message)), JSON.stringify(tarEvents));
      assert.equal(zstdFrameCount(packedArchive), 2);

      // the plain tar stream, compressed on the node only for the link
      const plainEvents: KompoxEvent[] = [];
      const viaPlain = await verifiedManifest(await exportBytes(plain.driver, ctx, d, plainEvents));
      assert.equal(plain.calls.tarStream, 1);
      assert.deepEqual(plainEvents.filter((e) => e.type === 'warning'), []);
      assert.equal(viaPlain.treeDigest, viaTar.treeDigest);
      assert.deepEqual(viaPlain.entries, viaTar.entries);

      const sftpEvents: KompoxEvent[] = [];
      const viaSftp = await verifiedManifest(await exportBytes(walked.driver, ctx, d, sftpEvents));
      assert.ok(walked.calls.openFile > 0, 'the fallback read files over SFTP');
      const w = sftpEvents.find((e) => e.type === 'warning');
      assert.ok(w && w.type === 'warning' && /has no usable tar; reading .* file by file over SFTP/.test(w.diagnostic.message), JSON.stringify(sftpEvents));

      assert.equal(viaTar.treeDigest, viaSftp.treeDigest);
      assert.deepEqual(viaTar.entries, viaSftp.entries);
      assert.equal(viaTar.treeDigest, await digest(d.id));
      assert.ok(viaTar.entries.some((e) => e.path === 'data/hard-link.bin' && e.type === 'file'));
      assert.ok(viaTar.entries.some((e) => e.path === 'data/lost+found'));
    } finally {
      await streamed.driver.close();
      await plain.driver.close();
      await walked.driver.close();
      await own.cleanup();
    }
  });

  it('--level reaches the zstd that packs on the node: a faster level, a larger archive of the same tree', async () => {
    const own = await sandbox();
    const streamed = tracedDriver();
    try {
      const ctx = appCtx(own, { settings });
      const d = await driver.disks.create(ctx, ctx.app.volumes[0]!, { name: 'levels' }, {});
      await writeCompressibleLog(d.id);
      const [fast, small] = [await exportBytes(streamed.driver, ctx, d, [], 1), await exportBytes(streamed.driver, ctx, d, [], 8)];
      assert.equal(streamed.calls.packedStream, 2, 'both packed on the node');
      // well apart, not by the byte or two zstd -T0's runs differ by
      assert.ok(fast.length > small.length * 1.05, `level 1 (${fast.length} bytes) larger than level 8 (${small.length})`);
      for (const a of [fast, small]) assert.equal((await verifiedManifest(a)).treeDigest, await digest(d.id));
    } finally {
      await streamed.driver.close();
      await own.cleanup();
    }
  });

  it('exports a disk holding a FIFO through the plain tar stream: the node does not pack what an archive leaves out', async () => {
    const own = await sandbox();
    const streamed = tracedDriver();
    try {
      const ctx = appCtx(own, { settings });
      const vol = ctx.app.volumes[0]!;
      const d = await driver.disks.create(ctx, vol, { name: 'with-fifo' }, {});
      await writeSampleTree(d.id);
      const want = await digest(d.id);
      spawnSync('mkfifo', [join(d.id, 'sub', 'a-fifo')]);
      const events: KompoxEvent[] = [];
      const m = await verifiedManifest(await exportBytes(streamed.driver, ctx, d, events));
      assert.equal(streamed.calls.packedStream, 1);
      assert.equal(streamed.calls.tarStream, 1, 'the plain tar stream took over');
      assert.equal(m.treeDigest, want);
      assert.ok(events.some((e) => e.type === 'warning' && /left out 1 entry that is not a file, directory or symlink .*: data\/sub\/a-fifo \(FIFO\)$/.test(e.diagnostic.message)), JSON.stringify(events));
    } finally {
      await streamed.driver.close();
      await own.cleanup();
    }
  });

  it('sockets, FIFOs, devices and hard links to them are left out with one warning naming them on every path (locally, over SFTP, the plain tar stream): export, snapshot and copy alike', { skip: process.getuid?.() === 0 ? false : 'mknod needs root' }, async () => {
    const own = await sandbox();
    const sftp = tracedDriver(true);
    const plain = tracedDriver(false, undefined, true, true);
    const local = new K3sDriver();
    try {
      for (const [label, d, ctx] of [
        ['local', local, appCtx(own, { app: 'specials-local' })],
        ['SFTP', sftp.driver, appCtx(own, { app: 'specials-sftp', settings })],
        ['plain tar stream', plain.driver, appCtx(own, { app: 'specials-plain', settings })],
      ] as const) {
        const vol = ctx.app.volumes[0]!;
        const disk = await driver.disks.create(ctx, vol, { name: 'src' }, {});
        // a small tree: what matters is what is left out
        const made = spawnSync('sh', ['-c', 'mkdir sub && echo kept > sub/kept.txt && ln -s sub/kept.txt a-symlink'], { cwd: disk.id });
        assert.equal(made.status, 0, String(made.stderr));
        const want = await digest(disk.id);
        const specials = spawnSync('sh', ['-c', 'mkfifo sub/a-fifo && ln sub/a-fifo fifo-link && mknod a-char c 1 3'], { cwd: disk.id });
        assert.equal(specials.status, 0, String(specials.stderr));
        // a UNIX socket (its file stays: the process exits without closing it); tar leaves it out itself, saying so on stderr
        assert.equal(spawnSync(process.execPath, ['-e', "require('net').createServer().listen(process.argv[1], () => process.exit(0))", join(disk.id, 'sub', 'a-socket')]).status, 0);
        const warnings = (events: KompoxEvent[]) => events.flatMap((e) => (e.type === 'warning' && e.diagnostic.message.startsWith('left out ') ? [e.diagnostic.message] : []));
        const named = (what: string, events: KompoxEvent[]) => {
          const w = warnings(events);
          assert.equal(w.length, 1, `${label} ${what}: one warning (${JSON.stringify(events)})`);
          assert.match(w[0]!, /^left out 4 entries that are not a file, directory or symlink \(a socket, FIFO or device\): /, `${label} ${what}`);
          for (const p of ['data/sub/a-fifo', 'data/fifo-link', 'data/a-char', 'data/sub/a-socket']) assert.ok(w[0]!.includes(p), `${label} ${what} names ${p}: ${w[0]}`);
        };
        const exported: KompoxEvent[] = [];
        assert.equal((await verifiedManifest(await exportBytes(d, ctx, disk, exported))).treeDigest, want, label);
        named('export', exported);
        const snapped: KompoxEvent[] = [];
        const snap = await d.snapshots.create(ctx, vol, disk, 'snap', { events: (e) => snapped.push(e) });
        named('snapshot', snapped);
        const restored = await d.disks.create(ctx, vol, { name: 'restored', source: { kind: 'snapshot', id: snap.id } }, {});
        assert.equal(await digest(restored.id), want, label);
        const copied: KompoxEvent[] = [];
        const copy = await d.disks.create(ctx, vol, { name: 'copy', source: { kind: 'disk', id: disk.id } }, { events: (e) => copied.push(e) });
        named('copy', copied);
        assert.equal(await digest(copy.id), want, label);
      }
    } finally {
      await local.close();
      await sftp.driver.close();
      await plain.driver.close();
      await own.cleanup();
    }
  });

  it('a file replaced by a FIFO between the listing and its open over SFTP (a node without tar) is left out, never waited on: the export ends and names it', { timeout: 60_000 }, async () => {
    const own = await sandbox();
    // the fallback's driver, whose openFile first puts a FIFO in the listed file's place (a tenant's pod racing the export)
    const factory: HostFsFactory = async () => {
      const fs = await connectSshHostFs({ target: sshd.target, keyPath: sshd.keyPath, knownHosts: sshd.knownHostsPath });
      return new Proxy(fs, {
        get: (t, k) => {
          const v = Reflect.get(t, k) as unknown;
          if (k === 'tarStream' || k === 'untarStream' || k === 'packedStream' || k === 'run') return undefined;
          if (k === 'openFile') {
            return async (path: string, listed: unknown) => {
              if (path.endsWith('/swapped.txt')) {
                await rm(path);
                assert.equal(spawnSync('mkfifo', [path]).status, 0);
              }
              return (v as (...a: unknown[]) => unknown).call(t, path, listed);
            };
          }
          return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(t) : v;
        },
      });
    };
    const sftpOnly = new K3sDriver({ env: {} }, factory);
    try {
      const ctx = appCtx(own, { settings });
      const d = await driver.disks.create(ctx, ctx.app.volumes[0]!, { name: 'fifo-race' }, {});
      await writeSampleTree(d.id);
      const want = await digest(d.id);
      await writeFile(join(d.id, 'swapped.txt'), 'listed as a file\n');
      const events: KompoxEvent[] = [];
      const m = await verifiedManifest(await exportBytes(sftpOnly, ctx, d, events));
      assert.equal(m.treeDigest, want, 'the archive holds the tree without it');
      assert.ok(events.some((e) => e.type === 'log' && /left out 1 file\(s\) deleted or replaced .*swapped\.txt/.test(e.message)), JSON.stringify(events));
      // the session still answers (its open is no longer waiting for a writer)
      assert.equal((await lstat(join(d.id, 'swapped.txt'))).isFIFO(), true);
      const again = await verifiedManifest(await exportBytes(sftpOnly, ctx, d));
      assert.equal(again.treeDigest, want);
    } finally {
      await sftpOnly.close();
      await own.cleanup();
    }
  });

  it('snapshots on the node (the tree digest of the disk) and exports the snapshot as stored and transcoded', async () => {
    const own = await sandbox();
    const streamed = tracedDriver();
    try {
      const ctx = appCtx(own, { settings });
      const vol = ctx.app.volumes[0]!;
      const d = await streamed.driver.disks.create(ctx, vol, { name: 'snap-src' }, {});
      await writeSampleTree(d.id);
      const events: KompoxEvent[] = [];
      const snap = await streamed.driver.snapshots.create(ctx, vol, d, 'streamed', { events: (e) => events.push(e) });
      // made by tar | zstd on the node: no data crossed to this machine
      assert.equal(streamed.calls.tarStream, 0);
      assert.equal(streamed.calls.openFile, 0);
      assert.ok(events.some((e) => e.type === 'log' && /snapshot streamed: on the node/.test(e.message)), JSON.stringify(events));
      const m = await verifiedManifest(await readFile(snap.id));
      assert.equal(m.treeDigest, await digest(d.id));

      // exported as stored (one `cat` over an exec channel), and transcoded to gzip on the way
      const asStored = new PassThrough();
      const stored: Buffer[] = [];
      asStored.on('data', (c: Buffer) => stored.push(c));
      assert.deepEqual(await streamed.driver.hostTransfer.exportSnapshot(ctx, vol, snap, asStored, {}), { transcoded: false });
      assert.ok(Buffer.concat(stored).equals(await readFile(snap.id)));
      const gz = new PassThrough();
      const gzChunks: Buffer[] = [];
      gz.on('data', (c: Buffer) => gzChunks.push(c));
      assert.deepEqual(await streamed.driver.hostTransfer.exportSnapshot(ctx, vol, snap, gz, {}, { format: 'tar.gz' }), { transcoded: true });
      assert.equal(Buffer.concat(gzChunks)[0], 0x1f);
      assert.equal((await verifiedManifest(Buffer.concat(gzChunks))).treeDigest, m.treeDigest);
    } finally {
      await streamed.driver.close();
      await own.cleanup();
    }
  });

  it('the progress total comes from a size walk on the node alongside the tar, before the transfer ends; the end carries the counts of the -o json summary', async () => {
    const own = await sandbox();
    let walkSettled = false;
    const streamed = tracedDriver(false, (real, dir, signal) => real(dir, signal).finally(() => (walkSettled = true)));
    try {
      const ctx = appCtx(own, { settings });
      const vol = ctx.app.volumes[0]!;
      const d = await driver.disks.create(ctx, vol, { name: 'with-total' }, {});
      await writeSampleTree(d.id);
      const { randomBytes } = await import('node:crypto');
      const { link, writeFile } = await import('node:fs/promises');
      await writeFile(join(d.id, 'big.bin'), randomBytes(3 * 1024 * 1024));
      await link(join(d.id, 'big.bin'), join(d.id, 'big-again.bin')); // sent twice (as tar sends it), counted twice
      const want = await measureTree(local, d.id);

      // The archive's reader holds every byte until a total was reported, so
      // the transfer cannot end first: a total that never comes fails the
      // test (after the guard time) instead of racing it.
      const events: KompoxEvent[] = [];
      let totalSeen!: () => void;
      const gate = Promise.race([new Promise<void>((r) => (totalSeen = r)), new Promise<void>((r) => setTimeout(r, 60_000).unref()) /* patience for a loaded machine, not a measure */]);
      const watch = watchTransfers({
        events: (e) => {
          events.push(e);
          if (e.type === 'progress' && e.total !== undefined && !e.end) totalSeen();
        },
      });
      const out = new Writable({ write: (_c, _e, cb) => void gate.then(() => cb()) });
      await streamed.driver.hostTransfer.exportDisk(ctx, vol, d, out, watch.op);
      assert.ok(walkSettled, 'the walk has ended when the export returns (nothing of it outlives the transfer)');

      assertTotalBeforeEnd(events, want);
      const progress = events.filter((e) => e.type === 'progress');
      const end = progress.findIndex((e) => e.end);
      assert.equal(progress[end]!.done, want.totalBytes, 'every file byte was counted once per name');
      const summary = watch.summary();
      assert.ok(summary);
      assert.equal(summary.bytes, want.totalBytes);
      assert.equal(summary.files, want.fileCount);
    } finally {
      await streamed.driver.close();
      await own.cleanup();
    }
  });

  it("readdirStream over SFTP: every name of a directory bigger than one READDIR reply, a batch at a time; a missing directory's error names it", async () => {
    const own = await sandbox();
    const h = await connectSshHostFs({ target: sshd.target, keyPath: sshd.keyPath, knownHosts: sshd.knownHostsPath });
    try {
      const dir = join(own.dir, 'wide');
      const { mkdir, writeFile } = await import('node:fs/promises');
      await mkdir(dir);
      for (let i = 0; i < 450; i++) await writeFile(join(dir, `n${i}`), '');
      const names: string[] = [];
      for await (const n of h.readdirStream!(dir)) names.push(n);
      assert.deepEqual(names.sort(), (await h.readdir(dir)).sort());
      assert.equal(names.length, 450);
      // stopped early: its handle is closed, and the connection still lists
      for await (const _ of h.readdirStream!(dir)) break;
      assert.equal((await h.readdir(dir)).length, 450);
      await assert.rejects(async () => {
        for await (const _ of h.readdirStream!(join(own.dir, 'missing')));
      }, /readdir.*missing/);
    } finally {
      await h.close();
      await own.cleanup();
    }
  });

  it('HostFs.treeBytes over SSH: the bytes and files of the tree; a stopped walk settles without a total and frees its channel', async () => {
    const own = await sandbox();
    const h = await connectSshHostFs({ target: sshd.target, keyPath: sshd.keyPath, knownHosts: sshd.knownHostsPath });
    try {
      const dir = join(own.dir, 'tree');
      const { mkdir } = await import('node:fs/promises');
      await mkdir(dir);
      await writeSampleTree(dir);
      const want = await measureTree(local, dir);
      assert.deepEqual(await h.treeBytes!(dir), { bytes: want.totalBytes, files: want.fileCount });
      const stopped = new AbortController();
      stopped.abort();
      assert.equal(await h.treeBytes!(dir, stopped.signal), undefined);
      // stopped while it walks a big tree: no total, and the connection still works
      const stop = new AbortController();
      const walking = h.treeBytes!('/usr', stop.signal);
      setTimeout(() => stop.abort(), 5);
      assert.equal(await walking, undefined);
      assert.deepEqual(await h.treeBytes!(dir), { bytes: want.totalBytes, files: want.fileCount });
    } finally {
      await h.close();
      await own.cleanup();
    }
  });

  it("a node's command's exit status comes from its shell's status line, taken off its stderr (sshd can close a channel without the status); the signal is named when the whole group was killed", async () => {
    const h = await connectSshHostFs({ target: sshd.target, keyPath: sshd.keyPath, knownHosts: sshd.knownHostsPath });
    // the channel's own status never the command's: the login shell killed once the command ended
    const lossy = await connectSshHostFs({ target: sshd.target, keyPath: sshd.keyPath, knownHosts: sshd.knownHostsPath });
    const conn = (lossy as unknown as { conn: { exec: (cmd: string, ...a: unknown[]) => unknown } }).conn;
    const exec = conn.exec.bind(conn);
    conn.exec = (cmd: string, ...a: unknown[]) => exec(`${cmd}; kill -KILL $$`, ...a);
    try {
      // a last line without its newline, then the status line
      const exited = await h.run!(['sh', '-c', 'printf gone >&2; exit 3']);
      assert.deepEqual([exited.code, exited.signal, exited.stderr], [3, undefined, 'gone']);
      assert.equal(exitSaid(exited), 'exit code 3');
      assert.deepEqual(await lossy.run!(['sh', '-c', 'echo said >&2; exit 3']).then((r) => [r.code, r.signal, r.stderr.trim()]), [3, undefined, 'said']);
      assert.deepEqual(await lossy.run!(['true']).then((r) => [r.code, r.stderr]), [0, '']);
      // a status line the command writes itself, not at the end, is its stderr
      const forged = await h.run!(['sh', '-c', "printf '\\nkompox-status:0\\n' >&2; echo after >&2; exit 4"]);
      assert.equal(forged.code, 4);
      assert.match(forged.stderr, /kompox-status:0\nafter/);
      // the whole group killed (the shell that reports the status too): the channel's signal
      const killed = await h.run!(['sh', '-c', 'kill -KILL 0']);
      assert.deepEqual([killed.code, killed.signal], [null, 'SIGKILL']);
      assert.equal(exitSaid(killed), 'killed by signal SIGKILL');
      assert.equal(exitSaid({ code: null }), 'no exit status');
      // cat killed while it waits on a FIFO: its stream fails with the status
      const own = await sandbox();
      try {
        const fifo = join(own.dir, 'held');
        spawnSync('mkfifo', [fifo]);
        const read = await lossy.streamFile!(fifo);
        const failed = new Promise<Error>((resolve) => read.once('error', resolve));
        read.resume();
        // cat's own process (blocked opening the FIFO), found by its command line
        let pid = '';
        for (let i = 0; i < 100 && !pid; i++) {
          pid = spawnSync('pgrep', ['-f', '-x', `cat -- ${fifo}`], { encoding: 'utf8' }).stdout.trim();
          if (!pid) await new Promise((r) => setTimeout(r, 50));
        }
        assert.ok(pid, 'no cat reading the FIFO');
        process.kill(Number(pid.split('\n')[0]), 'SIGTERM');
        assert.match((await failed).message, /^reading \S+held on ssh \S+ failed \(exit code 143\)(?:: Terminated)?$/);
      } finally {
        await own.cleanup();
      }
    } finally {
      await h.close();
      await lossy.close();
    }
  });

  it('a failed size walk is no total, never a failed export', async () => {
    const own = await sandbox();
    const streamed = tracedDriver(false, async () => {
      throw new Error('no walk today');
    });
    try {
      const ctx = appCtx(own, { settings });
      const vol = ctx.app.volumes[0]!;
      const d = await driver.disks.create(ctx, vol, { name: 'no-total' }, {});
      await writeSampleTree(d.id);
      const events: KompoxEvent[] = [];
      const m = await verifiedManifest(await exportBytes(streamed.driver, ctx, d, events));
      assert.equal(m.treeDigest, await digest(d.id));
      const progress = events.filter((e) => e.type === 'progress');
      assert.ok(progress.length > 0 && progress.every((e) => e.total === undefined), JSON.stringify(progress));
      assert.deepEqual(progress.at(-1)!.counts, { files: m.fileCount, bytes: m.totalBytes });
    } finally {
      await streamed.driver.close();
      await own.cleanup();
    }
  });

  it('exports a file that grows during the export as packTree does: cut to one consistent size, and the archive verifies', async () => {
    const own = await sandbox();
    const streamed = tracedDriver();
    const { appendFile, writeFile } = await import('node:fs/promises');
    const { randomBytes } = await import('node:crypto');
    try {
      const ctx = appCtx(own, { settings });
      const vol = ctx.app.volumes[0]!;
      const d = await driver.disks.create(ctx, vol, { name: 'live' }, {});
      await writeFile(join(d.id, 'a-big.bin'), randomBytes(8 * 1024 * 1024));
      await writeFile(join(d.id, 'growing.log'), 'start\n');
      let writing = true;
      const writer = (async () => {
        for (let i = 0; writing; i++) {
          await appendFile(join(d.id, 'growing.log'), `line ${i} ${'x'.repeat(200)}\n`);
          await appendFile(join(d.id, 'a-big.bin'), 'tail');
        }
      })();
      const events: KompoxEvent[] = [];
      let archive: Buffer;
      try {
        archive = await exportBytes(streamed.driver, ctx, d, events);
      } finally {
        writing = false;
        await writer;
      }
      assert.equal(streamed.calls.packedStream, 1);
      const m = await verifiedManifest(archive);
      const finalLog = await readFile(join(d.id, 'growing.log'));
      const back = await streamed.driver.hostTransfer.importDisk(appCtx(own), vol, { name: 'live-back' }, { stream: Readable.from([archive]) }, {});
      const got = await readFile(join(back.id, 'growing.log'));
      const entry = m.entries.find((e) => e.path === 'data/growing.log');
      assert.equal(entry?.size, got.length);
      assert.ok(got.length >= 6 && finalLog.subarray(0, got.length).equals(got), 'the exported file is a prefix of the file as it ended');
      // a change tar noticed is said (GNU tar exit 1), never a failure
      assert.deepEqual(events.filter((e) => e.type === 'warning'), []);
    } finally {
      await streamed.driver.close();
      await own.cleanup();
    }
  });

  /** Every entry's type and mode, owner and mtime (whole seconds: SFTP carries no more) under `root`, the root itself included. */
  const metaOfTree = async (root: string): Promise<string[]> => {
    const out: string[] = [];
    const go = async (abs: string, rel: string): Promise<void> => {
      const st = await lstat(abs);
      out.push(`${rel} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${Math.floor(st.mtimeMs / 1000)}`);
      if (st.isDirectory()) for (const n of (await readdir(abs)).sort()) await go(join(abs, n), `${rel}/${n}`);
    };
    await go(root, '.');
    return out;
  };

  it('the SFTP fallback paces ssh2\'s packets by external memory (paceByExternal): scavenges run while a file is read and written over SFTP', async () => {
    const own = await sandbox();
    const walked = tracedDriver(true, undefined, false, true);
    const { truncate, writeFile } = await import('node:fs/promises');
    try {
      const ctx = appCtx(own, { settings });
      const vol = ctx.app.volumes[0]!;
      const src = await driver.disks.create(ctx, vol, { name: 'paced-src' }, {});
      // 24 MiB: each byte arrives in a socket chunk and a decrypted packet, several EXTERNAL_GARBAGE in all
      await writeFile(join(src.id, 'zeros.bin'), '');
      await truncate(join(src.id, 'zeros.bin'), 24 * 1024 * 1024);
      const before = externalPacing().minors;
      const archive = await exportBytes(walked.driver, ctx, src);
      assert.ok(walked.calls.openFile > 0, 'read over SFTP');
      const read = externalPacing().minors - before;
      assert.ok(read >= 2, `scavenges while reading over SFTP: ${read}`);
      const imported = await walked.driver.hostTransfer.importDisk(ctx, vol, { name: 'paced-back' }, { stream: Readable.from([archive]) }, {});
      assert.ok(walked.calls.sftpWrites > 0, 'written over SFTP');
      const written = externalPacing().minors - before - read;
      assert.ok(written >= 2, `scavenges while writing over SFTP: ${written}`);
      assert.equal((await lstat(join(imported.id, 'zeros.bin'))).size, 24 * 1024 * 1024);
    } finally {
      await walked.driver.close();
      await own.cleanup();
    }
  });

  it('imports on the node (the archive streamed to one tar -x and verified there), through one tar -x fed a checked stream, and file by file: the same tree; restores on the node', async () => {
    const own = await sandbox();
    const streamed = tracedDriver();
    const untarOnly = tracedDriver(false, undefined, false, true);
    const walked = tracedDriver(true, undefined, false, true);
    const { mkdir, utimes, writeFile } = await import('node:fs/promises');
    try {
      const ctx = appCtx(own, { settings });
      const vol = ctx.app.volumes[0]!;
      const src = await driver.disks.create(ctx, vol, { name: 'untar-src' }, {});
      await writeSampleTree(src.id);
      await mkdir(join(src.id, 'empty-dir', 'nested-empty'));
      await writeFile(join(src.id, 'sub', 'setgid-ish.txt'), 'modes\n', { mode: 0o640 });
      // sub-second times on a file, a symlink and directories (set last: entries inside change a directory's mtime)
      const t = new Date('2021-06-07T08:09:10.250Z');
      await utimes(join(src.id, 'sub', 'setgid-ish.txt'), t, t);
      const { lutimes } = await import('node:fs/promises');
      await lutimes(join(src.id, 'link-to-note'), t, t);
      await utimes(join(src.id, 'empty-dir'), t, t);
      await utimes(src.id, t, t);
      assert.equal((await lstat(src.id)).mode & 0o7777, 0o777, 'the disk is world-writable at the top');
      // packed here (milliseconds kept), not by tar -c on the node (whole seconds)
      const archive = await collectArchive((out) => packTree(local, src.id, out));

      const nodeEvents: KompoxEvent[] = [];
      const onNode = await streamed.driver.hostTransfer.importDisk(ctx, vol, { name: 'on-node' }, { stream: Readable.from([archive]), totalBytes: archive.length }, { events: (e) => nodeEvents.push(e) });
      assert.equal(streamed.calls.runStdin, 1, 'the archive went to one command on the node');
      assert.equal(streamed.calls.untarStream, 0);
      assert.equal(streamed.calls.sftpWrites, 0, 'no file, symlink or time was written over SFTP');
      assert.ok(nodeEvents.some((e) => e.type === 'log' && /on the node .*extracting, to be checked and verified there/.test(e.message)), JSON.stringify(nodeEvents));
      assert.deepEqual(nodeEvents.filter((e) => e.type === 'warning'), []);

      const tarEvents: KompoxEvent[] = [];
      const viaTar = await untarOnly.driver.hostTransfer.importDisk(ctx, vol, { name: 'via-tar' }, { stream: Readable.from([archive]) }, { events: (e) => tarEvents.push(e) });
      assert.equal(untarOnly.calls.untarStream, 1);
      assert.equal(untarOnly.calls.sftpWrites, 0, 'no file, symlink or time was written over SFTP');
      assert.deepEqual(tarEvents.filter((e) => e.type === 'warning'), []);

      const sftpEvents: KompoxEvent[] = [];
      const viaSftp = await walked.driver.hostTransfer.importDisk(ctx, vol, { name: 'via-sftp' }, { stream: Readable.from([archive]) }, { events: (e) => sftpEvents.push(e) });
      assert.ok(walked.calls.sftpWrites > 0, 'the fallback wrote entry by entry over SFTP');
      const w = sftpEvents.find((e) => e.type === 'warning');
      assert.ok(w && w.type === 'warning' && /has no usable tar; writing .* file by file over SFTP/.test(w.diagnostic.message), JSON.stringify(sftpEvents));

      const original = await digest(src.id);
      assert.equal(await digest(onNode.id), original);
      assert.equal(await digest(viaTar.id), original);
      assert.equal(await digest(viaSftp.id), original);
      // modes (the world-writable top, 0555 and 0600 ones), owners, mtimes of files, symlinks and (empty) directories
      assert.deepEqual(await metaOfTree(viaTar.id), await metaOfTree(viaSftp.id));
      assert.deepEqual(await metaOfTree(viaTar.id), await metaOfTree(src.id));
      assert.deepEqual(await metaOfTree(onNode.id), await metaOfTree(src.id));
      // tar sets the archive's milliseconds; SFTP v3 only whole seconds
      assert.equal((await lstat(join(viaTar.id, 'sub', 'setgid-ish.txt'))).mtimeMs, t.getTime());
      assert.equal((await lstat(join(onNode.id, 'sub', 'setgid-ish.txt'))).mtimeMs, t.getTime());

      // a restore runs on the node itself (node-local.ts: snapshot made and extracted there, nothing streamed
      // through here; see k3s-node-local.test.ts) and the tree comes out the same
      const snap = await streamed.driver.snapshots.create(ctx, vol, src, 'untar-snap', {});
      const writesBefore = streamed.calls.sftpWrites;
      const restored = await streamed.driver.disks.create(ctx, vol, { name: 'via-tar-restore', source: { kind: 'snapshot', id: snap.id } }, {});
      assert.equal(streamed.calls.untarStream, 0, 'the restore did not stream the archive through kompoxops');
      assert.equal(streamed.calls.runStdin, 1, 'nor to the node');
      assert.equal(streamed.calls.sftpWrites, writesBefore);
      assert.equal(await digest(restored.id), original);
      assert.deepEqual(await metaOfTree(restored.id), await metaOfTree(src.id));
    } finally {
      await streamed.driver.close();
      await untarOnly.driver.close();
      await walked.driver.close();
      await own.cleanup();
    }
  });

  for (const path of ['on the node', 'tar -x'] as const)
  it(`refuses a tampered, truncated or mis-checksummed archive, and stops on a cancel, on the ${path} path: no disk, no temp dir`, async () => {
    const own = await sandbox();
    const streamed = path === 'on the node' ? tracedDriver() : tracedDriver(false, undefined, false, true);
    const { writeFile } = await import('node:fs/promises');
    const { randomBytes } = await import('node:crypto');
    try {
      const ctx = appCtx(own, { settings });
      const vol = ctx.app.volumes[0]!;
      const src = await driver.disks.create(ctx, vol, { name: 'refuse-src' }, {});
      // an archive with something after its end: the node's tar stops at the end-of-archive marker
      const trailing = async () => Buffer.concat([await exportBytes(streamed.driver, ctx, src), Buffer.from('trailing bytes')]);
      await writeSampleTree(src.id);
      // the cut falls inside a file tar is writing, past tar's first progress checkpoints (one per ~8 MB)
      await writeFile(join(src.id, 'z-big.bin'), randomBytes(20 * 1024 * 1024));
      const archive = await exportBytes(streamed.driver, ctx, src);
      const before = await snapshotOfTree(own.dir);
      const nothingNew = async (what: string) => {
        assert.deepEqual(await snapshotOfTree(own.dir), before, `${what}: nothing left behind`);
        assert.deepEqual((await streamed.driver.disks.list(ctx, vol, {}, {})).map((x) => x.name), ['refuse-src'], what);
      };
      const importing = (name: string, input: Readable, expectedSha256?: string, signal?: AbortSignal) =>
        streamed.driver.hostTransfer.importDisk(ctx, vol, { name }, { stream: input, ...(expectedSha256 ? { expectedSha256 } : {}) }, signal ? { signal } : {});

      const flipped = Buffer.from(archive);
      flipped[Math.floor(flipped.length / 2)]! ^= 0x10;
      await rejectsWith(importing('flipped', Readable.from([flipped])), 'integrity', /./);
      await nothingNew('a flipped bit');

      // one line, what the node's tools said once each; tar's progress lines are never part of it
      await rejectsWith(importing('cut', Readable.from([archive.subarray(0, Math.floor(archive.length * 0.6))])), 'integrity', /^(?![\s\S]*kompox-progress)(?![\s\S]*(Unexpected EOF in archive)[\s\S]*\1)[^\n]*(truncated|unexpected end)[^\n]*$/i);
      await nothingNew('a truncated archive');

      // every file is fine and tar -x got all of them: only the archive's SHA-256 is wrong
      await rejectsWith(importing('wrong-sum', Readable.from([archive]), '0'.repeat(64)), 'integrity', /SHA-256/);
      await nothingNew('a wrong checksum');

      // the first half, then nothing more: cancelled while tar -x waits for the rest
      const stalled = new Readable({ read() {} });
      stalled.push(archive.subarray(0, Math.floor(archive.length / 2)));
      const ac = new AbortController();
      const cancelling = importing('cancelled', stalled, undefined, ac.signal);
      setTimeout(() => ac.abort(), 1000);
      await rejectsWith(cancelling, 'interrupted', /./);
      await nothingNew('a cancel');
      await rejectsWith(importing('trailing', Readable.from([await trailing()])), 'integrity', /./);
      await nothingNew('bytes after the archive');
      // an input that never ends and is no archive past zstd's magic: refused as soon as the node's zstd (or the
      // reader here) fails, without a cancel; the rest of the input is not waited for
      let sent = 0;
      const endless = new Readable({
        read() {
          const b = randomBytes(64 * 1024);
          if (sent === 0) b.writeUInt32LE(0xfd2fb528, 0);
          sent += b.length;
          this.push(b);
        },
      });
      await rejectsWith(importing('endless', endless), 'integrity', /zstd|corrupt|truncated/i);
      // an input that fails part-way (a read error of the archive file): the import stops with that error, promptly
      let fed = false;
      const failing = new Readable({
        read() {
          if (!fed) {
            fed = true;
            this.push(archive.subarray(0, Math.floor(archive.length / 3)));
          } else setTimeout(() => this.destroy(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' })), 200);
        },
      });
      await assert.rejects(importing('read-error', failing), /EIO: i\/o error, read/);
      await nothingNew('an input that failed');
      assert.ok(!endless.readableEnded && sent < 256 * 1024 * 1024, `refused after ${sent} bytes of a never-ending input`);
      endless.destroy();
      await nothingNew('a never-ending input that is no archive');
      if (path === 'tar -x') assert.equal(streamed.calls.untarStream, 7, 'every refusal happened on the tar -x path');
      else assert.deepEqual([streamed.calls.runStdin, streamed.calls.untarStream], [7, 0], 'every refusal happened on the node');
      assert.equal(streamed.calls.sftpWrites, 0);
    } finally {
      await streamed.driver.close();
      await own.cleanup();
    }
  });

  for (const path of ['packed on the node', 'plain tar stream', 'SFTP'] as const)
  it(`an export whose output fails (a full disk) fails with the output's error, promptly, on the ${path} path; the node's command is stopped`, async () => {
    const own = await sandbox();
    const traced = path === 'packed on the node' ? tracedDriver() : path === 'plain tar stream' ? tracedDriver(false, undefined, true) : tracedDriver(true);
    const { writeFile } = await import('node:fs/promises');
    const { randomBytes } = await import('node:crypto');
    try {
      const ctx = appCtx(own, { settings });
      const vol = ctx.app.volumes[0]!;
      const src = await traced.driver.disks.create(ctx, vol, { name: 'full-src' }, {});
      await writeSampleTree(src.id);
      await writeFile(join(src.id, 'z-big.bin'), randomBytes(24 * 1024 * 1024));
      let written = 0;
      const full = new Writable({
        highWaterMark: 64 * 1024,
        write(chunk: Buffer, _enc, cb) {
          written += chunk.length;
          if (written <= 2 * 1024 * 1024) return cb();
          cb(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' }));
        },
      });
      full.on('error', () => undefined);
      let timer: NodeJS.Timeout | undefined;
      const hung = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('the export did not end within 30 s of its output failing')), 30_000)));
      try {
        await assert.rejects(Promise.race([traced.driver.hostTransfer.exportDisk(ctx, vol, src, full, {}), hung]), /no space left on device/);
      } finally {
        clearTimeout(timer);
      }
      if (path === 'packed on the node') assert.equal(traced.calls.packedStream, 1);
      if (path === 'plain tar stream') assert.equal(traced.calls.tarStream, 1);
      if (path === 'SFTP') assert.ok(traced.calls.openFile > 0);
      // nothing of the export still runs on the node
      const left = spawnSync('pgrep', ['-a', '-f', '--', src.id], { encoding: 'utf8' }).stdout.trim();
      assert.equal(left, '', 'a command of the export still runs on the node');
    } finally {
      await traced.driver.close();
      await own.cleanup();
    }
  });

  it('untarStream, with and without zstd on the node: extracts what archiveToTar writes; a failing tar rejects `finished` with its exit code and message', async () => {
    const own = await sandbox();
    const fs = await connectSshHostFs({ target: sshd.target, keyPath: sshd.keyPath, knownHosts: sshd.knownHostsPath });
    const { mkdir } = await import('node:fs/promises');
    try {
      const src = join(own.dir, 'src');
      await mkdir(src);
      await writeSampleTree(src);
      const archive = await collectArchive((out) => packTree(local, src, out));
      for (const zstd of [true, false]) {
        // this node has zstd; a node without it gets the plain tar on the channel
        (fs as unknown as { tools?: Promise<unknown> }).tools = Promise.resolve({ tar: 'gnu', zstd });
        const dest = join(own.dir, `dest-${zstd}`);
        await mkdir(dest, { mode: 0o700 });
        const untar = (await fs.untarStream!(dest))!;
        assert.equal(untar.compressed, zstd);
        await archiveToTar(Readable.from([archive]), untar.stream);
        untar.stream.end();
        await untar.finished;
        assert.equal(await digest(dest), await digest(src), `zstd ${zstd}`);

        const failing = (await fs.untarStream!(join(own.dir, 'no-such-dir')))!;
        failing.stream.on('error', () => undefined);
        await archiveToTar(Readable.from([archive]), failing.stream).catch(() => undefined); // tar is gone: writing may fail
        failing.stream.end();
        await assert.rejects(failing.finished, /tar -x into .*no-such-dir on ssh .* failed \(exit code 2\): .*no-such-dir: Cannot open/);
      }
    } finally {
      await fs.close();
      await own.cleanup();
    }
  });

  it("the node's zstd compresses an export's tar with a 512 KiB window when it takes --zstd=wlog (the decompressor here keeps the window), level 3's own otherwise", async () => {
    const own = await sandbox();
    const { chmod, mkdir, writeFile } = await import('node:fs/promises');
    try {
      /** The window a zstd frame header states (RFC 8878 Window_Descriptor; the single-segment case is the content size). */
      const windowOf = (cmd: string): number => {
        const r = spawnSync('sh', ['-c', `head -c 3000000 /dev/urandom | base64 | ${cmd}`], { maxBuffer: 1 << 26 });
        assert.equal(r.status, 0, String(r.stderr));
        const z = r.stdout as Buffer;
        assert.equal(z.readUInt32LE(0), 0xfd2fb528);
        assert.equal(z[4]! & 0x20, 0, 'a streamed frame has a window descriptor');
        const wd = z[5]!;
        const base = 2 ** (10 + (wd >> 3));
        return base + (base / 8) * (wd & 7);
      };
      assert.equal(windowOf(nodeZstdCommand({ zstdWindowLog: true })), 512 * 1024);
      assert.equal(windowOf(nodeZstdCommand({ zstdWindowLog: false })), 2 * 1024 * 1024);
      // the probe, on this node (zstd 1.3.4 or later: Debian's) and on one whose zstd predates the option
      const probe = (path: string) => spawnSync('/bin/sh', ['-c', NODE_ZSTD_PROBE], { env: { PATH: path }, encoding: 'utf8' }).stdout.trim();
      assert.equal(probe(process.env.PATH ?? ''), 'zstd:wlog');
      const old = join(own.dir, 'old-zstd');
      await mkdir(old);
      const real = spawnSync('sh', ['-c', 'command -v zstd'], { encoding: 'utf8' }).stdout.trim();
      await writeFile(join(old, 'zstd'), `#!/bin/sh\nfor a in "$@"; do case "$a" in --zstd=*) echo "zstd: unknown option $a" >&2; exit 1;; esac; done\nexec ${real} "$@"\n`);
      await chmod(join(old, 'zstd'), 0o755);
      assert.equal(probe(`${old}:/usr/bin:/bin`), 'zstd:');
      assert.equal(probe('/nonexistent'), '');
      // `head -c -N` (GNU coreutils), which the node's own packing needs, and a head without it (busybox's may print everything)
      const headProbe = (path: string) => spawnSync('/bin/sh', ['-c', HEAD_PROBE], { env: { PATH: path }, encoding: 'utf8' }).stdout.trim();
      assert.equal(headProbe(process.env.PATH ?? ''), 'head:all-but');
      const plainHead = join(own.dir, 'plain-head');
      await mkdir(plainHead);
      await writeFile(join(plainHead, 'head'), '#!/bin/sh\nexec cat\n');
      await chmod(join(plainHead, 'head'), 0o755);
      assert.equal(headProbe(`${plainHead}:/usr/bin:/bin`), '');
      // and the streaming export over SSH takes the probe's answer
      const fs = await connectSshHostFs({ target: sshd.target, keyPath: sshd.keyPath, knownHosts: sshd.knownHostsPath });
      try {
        assert.deepEqual(await (fs as unknown as { nodeTools(): Promise<unknown> }).nodeTools(), { tar: 'gnu', zstd: true, zstdWindowLog: true, headAllBut: true });
      } finally {
        await fs.close();
      }
    } finally {
      await own.cleanup();
    }
  });

  /** A sandbox of its own and a connection to the "node" for `body`; both closed after. */
  const withNode = async (body: (fs: Awaited<ReturnType<typeof connectSshHostFs>>, dir: string) => Promise<void>): Promise<void> => {
    const own = await sandbox();
    const fs = await connectSshHostFs({ target: sshd.target, keyPath: sshd.keyPath, knownHosts: sshd.knownHostsPath });
    try {
      await body(fs, own.dir);
    } finally {
      await fs.close();
      await own.cleanup();
    }
  };

  it('rm removes a whole tree (odd names, read-only directories) and nothing beside it', async () => {
    const { chmod, mkdir, writeFile } = await import('node:fs/promises');
    await withNode(async (fs, dir) => {
      const victim = join(dir, "a disk's data");
      const twin = join(dir, "a disk's data-kept"); // a name the victim's is a prefix of
      for (const d of [victim, twin]) {
        await mkdir(join(d, 'ro', 'deep'), { recursive: true });
        for (let i = 0; i < 200; i++) await writeFile(join(d, `f ${i}\n"'$x`), String(i));
        await writeFile(join(d, 'ro', 'deep', 'file'), 'x');
        await chmod(join(d, 'ro', 'deep'), 0o555);
        await chmod(join(d, 'ro'), 0o500);
      }
      await fs.rm(victim);
      assert.equal(await fs.lstat(victim), undefined);
      assert.equal((await readdir(twin)).length, 201, 'the neighbour is untouched');
      await fs.rm(join(dir, 'never-existed')); // absent: no error
      await chmod(join(twin, 'ro'), 0o700);
      await chmod(join(twin, 'ro', 'deep'), 0o700);

      // a small directory of files (a manifest's temp dir) goes over SFTP, without a command on the node;
      // one holding a directory, or not writable, by the command as before
      const conn = (fs as unknown as { conn: { exec: (...a: unknown[]) => unknown } }).conn;
      const exec = conn.exec.bind(conn);
      let execs = 0;
      conn.exec = (...a: unknown[]) => (execs++, exec(...a));
      const small = join(dir, '.tmp-manifest-x');
      await mkdir(small);
      for (const n of ['kompox-archive.json', '.alive']) await writeFile(join(small, n), '{}');
      await fs.rm(small);
      assert.equal(await fs.lstat(small), undefined);
      assert.equal(execs, 0, 'no command for a small directory of files');
      const nested = join(dir, 'nested');
      await mkdir(join(nested, 'sub'), { recursive: true });
      await writeFile(join(nested, 'sub', 'f'), 'x');
      const readOnly = join(dir, 'read-only');
      await mkdir(readOnly);
      await writeFile(join(readOnly, 'f'), 'x');
      await chmod(readOnly, 0o500);
      for (const d of [nested, readOnly]) {
        await fs.rm(d);
        assert.equal(await fs.lstat(d), undefined, d);
      }
      assert.equal(execs, 2, 'one command each for a directory with a subdirectory and a read-only one');
      // the node's name: one command per connection, however often a disk's metadata asks for it
      const names = await Promise.all([fs.hostname(), fs.hostname()]);
      assert.equal(await fs.hostname(), names[0]);
      assert.deepEqual(names, [hostname(), hostname()]);
      assert.equal(execs, 3, 'hostname ran once');
    });
  });

  it('rm without a working rm on the node walks the tree over SFTP, reading each directory as it comes (never a whole listing)', async () => {
    const { chmod, mkdir, writeFile } = await import('node:fs/promises');
    await withNode(async (fs, dir) => {
      const victim = join(dir, 'victim');
      const twin = join(dir, 'victim-kept');
      for (const d of [victim, twin]) {
        await mkdir(join(d, 'big'), { recursive: true });
        // more names than one READDIR reply holds (about 100 with OpenSSH)
        for (let i = 0; i < 450; i++) await writeFile(join(d, 'big', `f-${i}`), String(i));
        await mkdir(join(d, 'ro', 'deep'), { recursive: true });
        await writeFile(join(d, 'ro', 'deep', 'file'), 'x');
        await chmod(join(d, 'ro'), 0o500);
      }
      const conn = (fs as unknown as { conn: { exec: (cmd: string, ...a: unknown[]) => unknown } }).conn;
      const exec = conn.exec.bind(conn);
      // a node whose rm cannot run: the command fails, the walk below it does the work
      conn.exec = (cmd: string, ...a: unknown[]) => {
        if (cmd.includes('rm -rf')) return (a[a.length - 1] as (e: Error) => void)(new Error('no rm on this node'));
        return exec(cmd, ...a);
      };
      const whole = fs.readdir.bind(fs);
      const listedWhole: string[] = [];
      (fs as unknown as { readdir: (p: string) => Promise<string[]> }).readdir = (path: string) => (listedWhole.push(path), whole(path));
      await fs.rm(victim);
      assert.equal(await fs.lstat(victim), undefined);
      assert.ok(!listedWhole.some((d) => d.startsWith(victim)), `no directory of the tree listed whole: ${listedWhole.join(', ')}`);
      assert.equal((await readdir(join(twin, 'big'))).length, 450, 'the neighbour is untouched');
      await chmod(join(twin, 'ro'), 0o700);
    });
  });

  it('refuses a host key that does not match K3S_SSH_KNOWN_HOSTS, and a key the server does not accept', async () => {
    const d2 = new K3sDriver();
    try {
      const wrongHost = appCtx(sb, { settings: { ...settings, K3S_SSH_KNOWN_HOSTS: sshd.wrongKnownHostsPath } });
      await rejectsWith(d2.disks.list(wrongHost, wrongHost.app.volumes[0]!, {}, {}), 'auth', /host key of 127\.0\.0\.1:\d+ does not match/);
      const stranger = appCtx(sb, { settings: { ...settings, K3S_SSH_KEY: sshd.strangerKeyPath } });
      await rejectsWith(d2.disks.list(stranger, stranger.app.volumes[0]!, {}, {}), 'auth', /SSH login to .* was refused/);
    } finally {
      await d2.close();
    }
  });

  it('warns when the host key cannot be checked', async () => {
    const { connectSshHostFs } = await import('../../src/providers/k3s/ssh-hostfs.js');
    const warnings: string[] = [];
    // the home directory is given (no ~/.ssh/known_hosts there), never read from the process
    const h = await connectSshHostFs({ target: sshd.target, keyPath: sshd.keyPath, homeDir: sb.dir, warn: (m) => warnings.push(m) });
    await h.close();
    assert.match(warnings.join('\n'), /host key of 127\.0\.0\.1:\d+ is not verified; set K3S_SSH_KNOWN_HOSTS/);
    // through the driver, the warning is an event of the operation that opened the connection
    const d4 = new K3sDriver({ env: {}, homeDir: sb.dir });
    try {
      const ctx = appCtx(sb, { settings: { K3S_SSH: sshd.target, K3S_SSH_KEY: sshd.keyPath } });
      const events: KompoxEvent[] = [];
      await d4.disks.list(ctx, ctx.app.volumes[0]!, {}, { events: (e) => events.push(e) });
      const w = events.find((e) => e.type === 'warning');
      assert.ok(w && w.type === 'warning' && /is not verified; set K3S_SSH_KNOWN_HOSTS/.test(w.diagnostic.message), JSON.stringify(events));
    } finally {
      await d4.close();
    }
  });

  it('writes nothing through an unreachable node: clear error naming the setting', async () => {
    const d3 = new K3sDriver();
    try {
      const ctx = appCtx(sb, { settings: { ...settings, K3S_SSH: `${sshd.user}@127.0.0.1:1` } });
      await rejectsWith(d3.disks.list(ctx, ctx.app.volumes[0]!, {}, {}), 'unavailable', /cannot reach the K3s node over SSH at 127\.0\.0\.1:1/);
    } finally {
      await d3.close();
    }
  });
});
