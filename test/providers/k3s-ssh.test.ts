// The K3s driver over SSH/SFTP against a real sshd on 127.0.0.1. The node's
// "remote" filesystem is this machine's, so results are checked locally.
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { readFile, lstat, readlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { KompoxError } from '../../src/domain/errors.js';
import type { KompoxEvent } from '../../src/domain/events.js';
import { digestTree } from '../../src/archive/archive.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { K3sDriver } from '../../src/providers/k3s/index.js';
import { knownKeys, parseSshTarget } from '../../src/providers/k3s/ssh-hostfs.js';
import { sshdMissing, startSshd, type Sshd } from '../support/sshd.js';
import { appCtx, sandbox, snapshotOfTree, writeSampleTree, type Sandbox } from './k3s-fixtures.js';
import { rejectsWith } from '../support/assertions.js';

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
    // SFTP carries whole seconds
    assert.equal((await lstat(join(restored.id, 'sub', 'deeper', 'note.txt'))).mtime.toISOString(), '2020-01-02T03:04:05.000Z');

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
