// Durability over SSH: what the K3s driver publishes on the node is on the
// node's disk before its name is. strace follows the real sshd on 127.0.0.1
// (its session processes: SFTP is served in them, and the commands run
// under them), recording the sync and rename system calls made on the
// node; the tests assert their order for a snapshot made on the node
// (`tar | zstd > tmp`, then SFTP's fsync@openssh.com on it), its metadata
// (written over SFTP), and a restore extracted on the node (`sync -f`);
// then with a server that offers no fsync@openssh.com (a `sync FILE`
// command instead), and a node without tar and zstd (the snapshot written
// and the restore extracted over SFTP).
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { K3sDriver } from '../../src/providers/k3s/index.js';
import type { KompoxEvent, Op } from '../../src/domain/events.js';
import type { HostFs } from '../../src/providers/k3s/hostfs.js';
import { missingTools, parseTools, toolsProbeArgv } from '../../src/providers/k3s/node-commands.js';
import { sshdMissing, type Sshd } from '../support/sshd.js';
import { SYNC_AND_NAMING_CALLS, dirSyncedAfter, escape, namingsTo, parseTrace, straceUsable, syncedBefore, type Call } from '../support/strace.js';
import { appCtx, connectNode, sshdAndSandbox, writeSampleTree, type Sandbox } from './k3s-fixtures.js';

const missing =
  sshdMissing() ??
  (straceUsable ? undefined : 'no usable strace') ??
  missingTools(parseTools(spawnSync(toolsProbeArgv()[0]!, toolsProbeArgv().slice(1), { encoding: 'utf8' }).stdout), 'snapshot');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** strace attached to the sshd (and every process it forks from now on), writing to `out`; stop() detaches it. */
async function traceSshd(pid: number, out: string): Promise<{ stop(): Promise<Call[]> }> {
  const child: ChildProcess = spawn('strace', ['-f', '-qq', '-y', '-s', '4096', '-e', `trace=${SYNC_AND_NAMING_CALLS}`, '-o', out, '-p', String(pid)], { stdio: 'ignore' });
  // attached once the sshd has a tracer (up to 30 s: a loaded machine can take seconds to start strace;
  // the driver must not connect before, or the session's calls go untraced)
  const attached = () => /^TracerPid:\s*[1-9]/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  for (const end = Date.now() + 30_000; !attached() && Date.now() < end; ) await sleep(10);
  assert.ok(attached(), `strace did not attach to the sshd (${pid}) within 30 s`);
  return {
    stop: async () => {
      const ended = new Promise((r) => child.once('close', r));
      child.kill('SIGINT'); // detaches
      await ended;
      return parseTrace(readFileSync(out, 'utf8'));
    },
  };
}

/**
 * Makes a snapshot of the sample tree and restores it through DRIVER while
 * strace follows the sshd: the archive and the metadata synced before their
 * renames and the snapshot directory after; the restored tree synced (one
 * syncfs) before its rename and its volume directory after.
 */
async function snapshotAndRestoreSynced(fx: { sshd: Sshd; sb: Sandbox }, d: K3sDriver, op: Op = {}): Promise<void> {
  // traced before the driver connects: the session process it gets is forked then
  const pid = Number(readFileSync(join(fx.sshd.dir, 'sshd.pid'), 'utf8'));
  const tracer = await traceSshd(pid, join(fx.sb.dir, 'sshd.trace'));
  const settings = { K3S_SSH: fx.sshd.target, K3S_SSH_KEY: fx.sshd.keyPath, K3S_SSH_KNOWN_HOSTS: fx.sshd.knownHostsPath };
  const ctx = appCtx(fx.sb, { settings });
  const vol = ctx.app.volumes[0]!;
  let calls: Call[];
  let snapId = '';
  let restoredId = '';
  try {
    const disk = await d.disks.create(ctx, vol, { name: 'src' }, op);
    await writeSampleTree(disk.id);
    const snap = await d.snapshots.create(ctx, vol, disk, 'snap', op);
    snapId = snap.id;
    const restored = await d.disks.create(ctx, vol, { name: 'restored', source: { kind: 'snapshot', id: snap.id } }, op);
    restoredId = restored.id;
  } finally {
    calls = await tracer.stop();
  }
  const snapDir = snapId.replace(/\/[^/]+$/, '');
  const archiveNaming = namingsTo(calls, snapId)[0];
  const metaNaming = namingsTo(calls, `${snapDir}/snap.json`)[0];
  syncedBefore(calls, new RegExp(`<${escape(snapDir)}/\\.tmp-snap-[^/>]*\\.tar\\.zst>`), archiveNaming, 'the archive');
  syncedBefore(calls, new RegExp(`<${escape(snapDir)}/snap\\.json\\.tmp-[^/>]*>`), metaNaming, 'the metadata');
  dirSyncedAfter(calls, snapDir, [archiveNaming!, metaNaming!], 'the snapshot');

  const diskDir = restoredId.replace(/\/data$/, '');
  const volDir = diskDir.replace(/\/[^/]+$/, '');
  const diskNaming = namingsTo(calls, diskDir)[0];
  syncedBefore(calls, new RegExp(`^\\d+<${escape(volDir)}/\\.tmp-restored-[^/>]*>$`), diskNaming, 'the restored tree');
  assert.ok(
    calls.some((c) => c.name === 'syncfs' && c.exit < diskNaming!.entry),
    'one syncfs on the node for the whole tree',
  );
  dirSyncedAfter(calls, volDir, [diskNaming!], 'the restored disk');
}

describe('K3s over SSH: data synced on the node before its name (strace on the real sshd)', { skip: missing }, () => {
  const fx = sshdAndSandbox();

  it('snapshot create on the node, and a restore: archive (SFTP fsync@openssh.com), metadata and tree synced before their renames, their directories after', async () => {
    const d = new K3sDriver({ env: {} }, async () => connectNode(fx.sshd));
    try {
      await snapshotAndRestoreSynced(fx, d);
    } finally {
      await d.close();
    }
  });
});

describe('K3s over SSH: a server without fsync@openssh.com (sftp-server -P fsync): files and directories synced by a command on the node', { skip: missing }, () => {
  const fx = sshdAndSandbox(undefined, { config: ['Subsystem sftp internal-sftp -P fsync'] });

  it('snapshot create on the node, and a restore: archive, metadata and tree synced before their renames, their directories after', async () => {
    let fs: HostFs | undefined;
    const d = new K3sDriver({ env: {} }, async () => (fs = await connectNode(fx.sshd)));
    try {
      await snapshotAndRestoreSynced(fx, d);
      const extensions = (fs as unknown as { sftp: { _extensions?: Record<string, string> } }).sftp._extensions ?? {};
      assert.ok(Object.keys(extensions).length > 0 && !('fsync@openssh.com' in extensions), `the server offered no fsync@openssh.com (${Object.keys(extensions).join(', ')})`);
    } finally {
      await d.close();
    }
  });
});

describe('K3s over SSH: a node without tar and zstd: the snapshot streamed over SFTP synced before its rename', { skip: missing }, () => {
  const fx = sshdAndSandbox(async (sb) => {
    // the node's tools but tar and zstd, the commands' PATH
    const bin = join(sb.dir, 'bin');
    await mkdir(bin);
    for (const name of await readdir('/usr/bin')) if (!/^(tar|zstd|zstdmt|unzstd|zstdcat|pzstd)$/.test(name)) await symlink(join('/usr/bin', name), join(bin, name));
  });

  it('snapshot create over SFTP (file by file), and a restore over SFTP: archive, metadata and tree synced before their renames, their directories after', async () => {
    const d = new K3sDriver({ env: {} }, async () => connectNode(fx.sshd, join(fx.sb.dir, 'bin')));
    const events: KompoxEvent[] = [];
    try {
      await snapshotAndRestoreSynced(fx, d, { events: (e) => events.push(e) });
    } finally {
      await d.close();
    }
    const said = events.map((e) => (e.type === 'warning' ? e.diagnostic.message : 'message' in e ? e.message : '')).join('\n');
    assert.match(said, /no usable tar; reading .* file by file over SFTP/, 'the snapshot went over SFTP');
  });
});
