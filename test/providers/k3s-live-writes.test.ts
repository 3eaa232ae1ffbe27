// Live (not quiesced) exports and snapshots on the host path while a real
// writer changes the disk: the archive either verifies and restores (a
// crash-consistent copy) or the command fails clearly at once.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { packTree, unpackArchive, type TreeFile, type TreeStat } from '../../src/archive/archive.js';
import { packDisk } from '../../src/providers/k3s/driver.js';
import { KompoxError } from '../../src/domain/errors.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { connectSshHostFs } from '../../src/providers/k3s/ssh-hostfs.js';
import { collectEvents } from '../support/events.js';
import { eventually } from '../support/kube.js';
import { sshdMissing } from '../support/sshd.js';
import { sandbox, sshdAndSandbox } from './k3s-fixtures.js';

/** A LocalHostFs on which an app (a real `rm -rf`) removes DIR right after the walk's Nth lstat of it found it. */
class RemovedAfterLstat extends LocalHostFs {
  seen = 0;
  constructor(
    private readonly victim: string,
    private readonly at: number,
  ) {
    super();
  }
  override async lstat(path: string): Promise<TreeStat | undefined> {
    const st = await super.lstat(path);
    if (path === this.victim && st && ++this.seen === this.at) assert.equal(spawnSync('rm', ['-rf', path]).status, 0);
    return st;
  }
}

/** A LocalHostFs on which an app (a real `truncate -s 0`, logrotate's copytruncate) empties FILE just after the packer opened it. */
class TruncatedAfterOpen extends LocalHostFs {
  done = false;
  constructor(private readonly victim: string) {
    super();
  }
  override async openFile(path: string, listed: TreeStat): Promise<TreeFile | undefined> {
    const f = await super.openFile(path, listed);
    if (path === this.victim && f && !this.done) {
      this.done = true;
      assert.equal(spawnSync('truncate', ['-s', '0', path]).status, 0);
    }
    return f;
  }
}

describe('host path: a live disk changing while it is archived', () => {
  it("a file truncated (copytruncate) after it was listed and opened, before it was read: stored zero-padded to its listed size, the archive verifies, and the export says which file (as GNU tar's 'File shrank')", async () => {
    const sb = await sandbox();
    try {
      const disk = join(sb.dir, 'disk');
      await mkdir(disk);
      await writeFile(join(disk, 'app.log'), 'a line of the log\n'.repeat(1000));
      await writeFile(join(disk, 'keep.txt'), 'kept\n');
      const fs = new TruncatedAfterOpen(join(disk, 'app.log'));
      const out = new PassThrough();
      const chunks: Buffer[] = [];
      out.on('data', (c: Buffer) => chunks.push(c));
      const { events, op } = collectEvents();
      const packed = await packDisk(fs, disk, out, {}, op);
      assert.ok(fs.done, 'the file was truncated mid-export');
      // before: nothing said; the restore holds 18000 zero bytes where the log was
      const logs = events.flatMap((e) => (e.type === 'log' ? [e.message] : []));
      assert.ok(
        logs.some((m) => /^note: 1 file\(s\) shrank while they were read \(a live disk: truncated by the app, as logrotate's copytruncate does\), stored padded with zeros to the size they were listed with: data\/app\.log; stop the app \(--quiesce\) for a consistent copy$/.test(m)),
        logs.join(' | '),
      );
      assert.deepEqual(packed.shrank, { count: 1, first: ['data/app.log'] });
      const back = join(sb.dir, 'back');
      const restored = await unpackArchive(new LocalHostFs(), PassThrough.from(Buffer.concat(chunks)), back);
      assert.equal(restored.manifest.treeDigest, packed.manifest.treeDigest);
      const { readFile } = await import('node:fs/promises');
      assert.deepEqual(await readFile(join(back, 'app.log')), Buffer.alloc(18000));
      assert.equal(await readFile(join(back, 'keep.txt'), 'utf8'), 'kept\n');
    } finally {
      await sb.cleanup();
    }
  });

  // 1: during the size walk that measures the tree; 2: during the walk that packs it
  for (const at of [1, 2])
    it(`a subdirectory removed (rm -rf) after its parent was listed, before it is read (walk ${at}): the export succeeds and the archive restores`, async () => {
      const sb = await sandbox();
      try {
        const disk = join(sb.dir, 'disk');
        await mkdir(join(disk, 'cache', 'a', 'b'), { recursive: true });
        await writeFile(join(disk, 'cache', 'a', 'b', 'tmp'), 'scratch\n');
        await writeFile(join(disk, 'keep.txt'), 'kept\n');
        const fs = new RemovedAfterLstat(join(disk, 'cache'), at);
        const out = new PassThrough();
        const chunks: Buffer[] = [];
        out.on('data', (c: Buffer) => chunks.push(c));
        // a progress sink: the size walk (walk 1) runs before the packing walk (walk 2)
        const progress = { start() {}, advance() {}, done() {} };
        const packed = await packTree(fs, disk, out, { progress });
        assert.equal(fs.seen, at, 'the directory was removed mid-walk');
        const paths = packed.manifest.entries.map((e) => e.path);
        assert.ok(paths.includes('data/keep.txt'), JSON.stringify(paths));
        assert.ok(!paths.some((p) => p.startsWith('data/cache/')), `nothing under the removed directory: ${JSON.stringify(paths)}`);
        const back = join(sb.dir, 'back');
        const restored = await unpackArchive(new LocalHostFs(), PassThrough.from(Buffer.concat(chunks)), back);
        assert.equal(restored.manifest.treeDigest, packed.manifest.treeDigest);
      } finally {
        await sb.cleanup();
      }
    });
});

const BUSYBOX = spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).stdout.trim();

/** Whether a process here has a file open whose path ends with SUFFIX. */
async function someoneHasOpen(suffix: string): Promise<boolean> {
  const { readdir, readlink } = await import('node:fs/promises');
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
      if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')).endsWith(suffix)) return true;
    }
  }
  return false;
}

describe('over SSH, a node whose tar is busybox: a live disk changing while it is archived (real sshd)', { skip: sshdMissing() ?? (BUSYBOX ? undefined : 'needs busybox') }, () => {
  const fx = sshdAndSandbox();

  /** The node over SSH with busybox as its tar (first on PATH), for the disk directory DISK of the sandbox. */
  async function busyboxNode(disk: string) {
    const bin = join(fx.sb.dir, `busybox-bin-${disk}`);
    await mkdir(bin, { recursive: true });
    await symlink(BUSYBOX, join(bin, 'tar'));
    const fs = await connectSshHostFs({ target: fx.sshd.target, keyPath: fx.sshd.keyPath, knownHosts: fx.sshd.knownHostsPath });
    const conn = (fs as unknown as { conn: { exec: (cmd: string, ...a: unknown[]) => unknown } }).conn;
    const exec = conn.exec.bind(conn);
    conn.exec = (cmd: string, ...a: unknown[]) => exec(`PATH=${bin}:/usr/bin:/bin ${cmd}`, ...a);
    return fs;
  }

  it('files the app deletes before busybox tar reaches them (temp files, rotated logs) are left out of a whole stream, said in a note (tar exits 1 for them)', async () => {
    const disk = join(fx.sb.dir, 'gone');
    await mkdir(disk);
    for (let i = 0; i < 12; i++) await writeFile(join(disk, `tmp-${i}.txt`), `temp ${i}\n`);
    // busybox tar takes the entries in readdir order (what `ls -f` shows): the first is made big, the unread
    // stream holds tar within it, and every entry after it is deleted meanwhile
    const order = spawnSync('ls', ['-f', disk], { encoding: 'utf8' }).stdout.split('\n').filter((n) => n.startsWith('tmp-'));
    const [held, ...later] = order;
    assert.ok(held && later.length === 11, `readdir order: ${order.join(' ')}`);
    await writeFile(join(disk, held), randomBytes(48 * 1024 * 1024));
    const fs = await busyboxNode('gone');
    try {
      const tar = (await fs.tarStream!(disk))!;
      tar.finished.catch(() => undefined);
      await eventually(() => someoneHasOpen(`/${held}`), `tar reading ${held} on the node`);
      for (const n of later) await rm(join(disk, n));
      const chunks: Buffer[] = [];
      tar.stream.on('data', (b: Buffer) => chunks.push(b));
      // before: "tar -c of DIR on ssh ... failed (exit code 1): tar: ./tmp-3.txt: No such file or directory; ..."
      const note = await tar.finished;
      assert.match(String(note), /^left out 11 file\(s\) deleted while tar read the disk \(a live disk: the app removed or renamed them\): data\/tmp-\d+\.txt, .* and 1 more; the archive is a live \(crash-consistent\) copy \(on /);
      await new Promise((r) => tar.stream.once('end', r));
      // the stream as a real tar reads it: whole, with the one file tar could read
      const names = spawnSync('tar', ['-t'], { input: Buffer.concat(chunks), encoding: 'utf8', maxBuffer: 1 << 30 }).stdout.split('\n').filter(Boolean);
      assert.deepEqual(names, ['./', `./${held}`]);
    } finally {
      await fs.close();
    }
  });

  it("a file the app truncates while busybox tar reads it (logrotate's copytruncate) fails the export at once saying so, with what to do (transfer.disk.changed)", async () => {
    const disk = join(fx.sb.dir, 'disk');
    await mkdir(disk);
    // the only file, the first tar reads: the unread stream (pipes and the channel's window hold far less
    // than its 48 MiB) keeps tar within it
    const victim = `victim-${randomBytes(6).toString('hex')}.log`;
    await writeFile(join(disk, victim), randomBytes(48 * 1024 * 1024));
    const fs = await busyboxNode('disk');
    try {
      const tar = (await fs.tarStream!(disk))!;
      tar.finished.catch(() => undefined);
      await eventually(() => someoneHasOpen(`/${victim}`), `tar reading ${victim} on the node`);
      assert.equal(spawnSync('truncate', ['-s', '0', join(disk, victim)]).status, 0);
      tar.stream.resume();
      // before: "tar -c of DIR on ssh ... failed (exit code 1): tar: short read" (an Error: "This is unexpected")
      await assert.rejects(
        tar.finished,
        (e: unknown) =>
          e instanceof KompoxError &&
          e.code === 'transfer.disk.changed' &&
          /failed: a file shrank while tar read it \(the app truncated it, as logrotate's copytruncate does\), and busybox tar stops there \(tar: short read\); no archive was made$/.test(e.message) &&
          /--quiesce/.test(e.hint ?? ''),
      );
    } finally {
      await fs.close();
    }
  });
});
