// Exports over SSH whose node command fails, dies or hangs, against a real
// sshd on 127.0.0.1 (the "node" is this machine) with real GNU or busybox
// tar, head and zstd:
//   - a tar that fails but still ends its stream whole (an SSH user that
//     cannot read every file of the disk, K3S_SSH=ubuntu@node; here the
//     node's commands run as `nobody` through setpriv): the export fails,
//     and no bytes it wrote carry a manifest;
//   - a stream this side gives up on, a tar that dies, a tar that hangs
//     and a cancel: the error says what happened, and a cancel ends the
//     export promptly.
// And node commands of imports and exports that hang past a stop or a
// cancel (a `tar` or `find` on the node's PATH deaf to all but KILL): they
// are killed, their whole process group, and nothing of them is left on the
// node. And imports whose node command ends at once without reading its
// input (a `tar` or `zstd` on the node's PATH that exits at once) while a big
// archive is fed: they fail promptly, with that command's error.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, mkdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { readManifest } from '../../src/archive/archive.js';
import { KompoxError } from '../../src/domain/errors.js';
import { cancellable, destroyOnCancel, type KompoxEvent } from '../../src/domain/events.js';
import { packDisk, unpackDisk } from '../../src/providers/k3s/driver.js';
import { K3sDriver } from '../../src/providers/k3s/index.js';
import { LocalHostFs, type HostFs } from '../../src/providers/k3s/hostfs.js';
import { restoreOnNode } from '../../src/providers/k3s/node-local.js';
import { connectSshHostFs } from '../../src/providers/k3s/ssh-hostfs.js';
import { collectEvents } from '../support/events.js';
import { sshdMissing, type Sshd } from '../support/sshd.js';
import { appCtx, snapshotOfTree, sshdAndSandbox, writeSampleTree } from './k3s-fixtures.js';

const BUSYBOX = spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).stdout.trim();
const skip =
  sshdMissing() ??
  (process.getuid?.() !== 0 ? 'needs root (the node commands run as nobody through setpriv)' : undefined) ??
  (spawnSync('setpriv', ['--version']).status !== 0 ? 'needs setpriv (util-linux)' : undefined);

describe('an SSH user that cannot read every file of the disk (real sshd, commands as nobody)', { skip }, () => {
  const fx = sshdAndSandbox((s) => chmod(s.dir, 0o755));

  /** A connection whose commands on the node run as nobody, with `path` first on their PATH. */
  const connectAsNobody = async (path?: string): Promise<HostFs> => {
    const fs = await connectSshHostFs({ target: fx.sshd.target, keyPath: fx.sshd.keyPath, knownHosts: fx.sshd.knownHostsPath });
    const conn = (fs as unknown as { conn: { exec: (cmd: string, ...a: unknown[]) => unknown } }).conn;
    const exec = conn.exec.bind(conn);
    conn.exec = (cmd: string, ...a: unknown[]) =>
      exec(`setpriv --reuid=65534 --regid=65534 --clear-groups ${path ? `env PATH=${path}:/usr/bin:/bin ` : ''}${cmd}`, ...a);
    return fs;
  };

  /** A disk readable by nobody but for `unreadable` (root's, mode 0600). */
  const diskWith = async (name: string, unreadable: string): Promise<string> => {
    const dir = join(fx.sb.dir, name);
    await mkdir(dir, { mode: 0o755 });
    await writeSampleTree(dir);
    spawnSync('chmod', ['-R', 'a+rX', dir]);
    await writeFile(join(dir, unreadable), 'what nobody may read\n', { mode: 0o600 });
    return dir;
  };

  it("busybox tar's failure is not read as success from a file name holding the exit mark (its messages do not escape names)", { skip: BUSYBOX ? undefined : 'needs busybox' }, async () => {
    const bin = join(fx.sb.dir, 'busybox-bin');
    await mkdir(bin, { mode: 0o755 });
    await symlink(BUSYBOX, join(bin, 'tar'));
    const dir = await diskWith('bb-disk', 'kompox-tar-exit:0');
    const fs = await connectAsNobody(bin);
    try {
      const tar = (await fs.tarStream!(dir))!;
      for await (const _ of tar.stream);
      // busybox: "tar: can't open './kompox-tar-exit:0': Permission denied", exit 1 (a failure for busybox)
      await assert.rejects(tar.finished, /tar -c of .* failed \(exit code 1\): tar: can't open '\.\/kompox-tar-exit:0': Permission denied/);
    } finally {
      await fs.close();
    }
  });

  for (const [label, format, path] of [
    ['GNU tar, a tar.gz export', 'tar.gz', undefined],
    ['busybox tar', 'tar.zst', 'busybox'],
  ] as const)
  it(`the plain tar stream's path (${label}): a tar that fails but ends its stream fails the export before the manifest, so the bytes written are no archive`, { skip: path && !BUSYBOX ? 'needs busybox' : undefined }, async () => {
    let bin: string | undefined;
    if (path) {
      bin = join(fx.sb.dir, `bin-${format}`);
      await mkdir(bin, { mode: 0o755 });
      await symlink(BUSYBOX, join(bin, 'tar'));
    }
    const dir = await diskWith(`plain-${format}`, 'secret.bin');
    const fs = await connectAsNobody(bin);
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    try {
      await assert.rejects(packDisk(fs, dir, out, { format }, {}), (e: unknown) => e instanceof KompoxError && /tar -c of .* failed \(exit code [12]\)/.test(e.message));
    } finally {
      await fs.close();
    }
    out.end();
    const written = Buffer.concat(chunks);
    await assert.rejects(readManifest(Readable.from([written])), (e: unknown) => e instanceof KompoxError && e.kind === 'integrity');
  });
});

/** The pid of the node's `tar -c` of DIR (the node is this machine), once it runs. */
async function nodeTar(dir: string): Promise<number> {
  // 30 s of patience on a loaded machine (returns as soon as it runs)
  for (let i = 0; i < 600; i++) {
    const found = spawnSync('pgrep', ['-f', `^tar -c .*-C ${dir.replace(/[.]/g, '\\.')} \\.$`], { encoding: 'utf8' }).stdout.trim();
    if (found) return Number(found.split('\n')[0]);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the node's tar of ${dir} was not found running`);
}

describe("an export over SSH stopped here mid-stream: the error is this side's, not the node's command that the stop cut (real sshd)", { skip: sshdMissing() }, () => {
  const fx = sshdAndSandbox();

  it("a FIFO that appears after the check that the node may pack the tree: the integrity error names it, not the node's tar that the stop cut (it 'did not finish')", async () => {
    const { randomBytes } = await import('node:crypto');
    const dir = join(fx.sb.dir, 'live-disk');
    await mkdir(dir);
    // whichever directory tar reads first, megabytes of the tree are still to come after its FIFO
    const dirs: string[] = [];
    for (let i = 0; i < 8; i++) {
      const d = join(dir, `d${i}`);
      dirs.push(d);
      await mkdir(d);
      await writeFile(join(d, 'blob.bin'), randomBytes(4 * 1024 * 1024));
    }
    const fs = await connectSshHostFs({ target: fx.sshd.target, keyPath: fx.sshd.keyPath, knownHosts: fx.sshd.knownHostsPath });
    const inner = fs as unknown as { exec: (cmd: string) => Promise<string> };
    const exec = inner.exec;
    // the app makes its FIFOs just after the node was asked for what it cannot pack
    inner.exec = async (cmd: string) => {
      const out = await exec(cmd);
      if (cmd.includes('! -type f')) for (const d of dirs) spawnSync('mkfifo', [join(d, 'pipe')]);
      return out;
    };
    const out = new PassThrough();
    out.resume();
    try {
      await assert.rejects(packDisk(fs, dir, out, { format: 'tar.zst' }, {}), (e: unknown) => {
        assert.ok(e instanceof KompoxError && e.kind === 'integrity', String(e));
        assert.match(e.message, /data\/d\d\/pipe as FIFO/);
        return true;
      });
    } finally {
      await fs.close();
    }
  });

  for (const format of ['tar.zst', 'tar.gz'] as const)
  it(`a tar that dies on the node mid-stream (${format === 'tar.zst' ? 'packed on the node' : 'the plain tar stream'}): its failure, not the truncated stream it left`, async () => {
    const { randomBytes } = await import('node:crypto');
    const dir = join(fx.sb.dir, `dying-${format}`);
    await mkdir(dir);
    for (let i = 0; i < 4; i++) await writeFile(join(dir, `blob-${i}.bin`), randomBytes(4 * 1024 * 1024));
    const fs = await connectSshHostFs({ target: fx.sshd.target, keyPath: fx.sshd.keyPath, knownHosts: fx.sshd.knownHostsPath });
    // not read until tar is gone: the node's pipeline waits on a full window meanwhile
    const out = new PassThrough();
    try {
      const exporting = packDisk(fs, dir, out, { format }, {});
      exporting.catch(() => undefined);
      const pid = await nodeTar(dir);
      process.kill(pid, 'SIGKILL');
      out.resume();
      await assert.rejects(exporting, (e: unknown) => {
        assert.ok(e instanceof KompoxError && e.kind === 'unavailable', String(e));
        assert.match(e.message, /tar -c of .* failed \(exit code 137\)/);
        return true;
      });
    } finally {
      await fs.close();
    }
  });

  it("a cancel ends an export whose node sends nothing more (its tar stopped): promptly, as interrupted", async () => {
    const { randomBytes } = await import('node:crypto');
    const driver = new K3sDriver();
    const stopped: number[] = [];
    try {
      const ctx = appCtx(fx.sb, { settings: { K3S_SSH: fx.sshd.target, K3S_SSH_KEY: fx.sshd.keyPath, K3S_SSH_KNOWN_HOSTS: fx.sshd.knownHostsPath } });
      const vol = ctx.app.volumes[0]!;
      const disk = await driver.disks.create(ctx, vol, { name: 'stalling' }, {});
      for (let i = 0; i < 4; i++) await writeFile(join(disk.id, `blob-${i}.bin`), randomBytes(4 * 1024 * 1024));
      for (const format of ['tar.zst', 'tar.gz'] as const) {
        const out = new PassThrough();
        out.resume();
        const ac = new AbortController();
        const exporting = driver.hostTransfer!.exportDisk(ctx, vol, disk, out, { signal: ac.signal }, { format });
        exporting.catch(() => undefined);
        const pid = await nodeTar(disk.id);
        stopped.push(pid);
        process.kill(pid, 'SIGSTOP'); // a tar that hangs on the node (a disk that stopped answering)
        await new Promise((r) => setTimeout(r, 500));
        ac.abort();
        let timer: NodeJS.Timeout | undefined;
        const hung = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the ${format} export did not end within 10 s of its cancel`)), 10_000)));
        try {
          await assert.rejects(Promise.race([exporting, hung]), (e: unknown) => e instanceof KompoxError && e.kind === 'interrupted');
        } finally {
          clearTimeout(timer);
        }
      }
    } finally {
      for (const pid of stopped) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await driver.close();
    }
  });
});

/** `s` as a literal part of a pgrep pattern. */
const literally = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The pids of the node's processes (the node is this machine) whose command line holds `text`. */
function nodeProcesses(text: string): number[] {
  const found = spawnSync('pgrep', ['-f', '--', literally(text)], { encoding: 'utf8' }).stdout.trim();
  return found ? found.split('\n').map(Number) : [];
}

/** Waits until a process whose command line holds `text` runs on the node. */
async function runningOnNode(text: string): Promise<void> {
  // 30 s of patience on a loaded machine (returns as soon as it runs)
  for (let i = 0; i < 600; i++) {
    if (nodeProcesses(text).length) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no process of "${text}" was found running on the node`);
}

/** Waits until no process whose command line holds `text` is left on the node; fails naming those left after 30 s (patience: a killed command is gone long before; a command nothing killed never goes). */
async function noneLeftOnNode(text: string, what: string): Promise<void> {
  for (let i = 0; i < 600 && nodeProcesses(text).length; i++) await new Promise((r) => setTimeout(r, 50));
  const left = spawnSync('pgrep', ['-a', '-f', '--', literally(text)], { encoding: 'utf8' }).stdout.trim();
  assert.equal(left, '', `${what}: its command still runs on the node`);
}

/** Ends what a test left running on the node (a failed test's hung command), by pid. */
function killLeftOnNode(text: string): void {
  for (const pid of nodeProcesses(text)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/**
 * Writes BIN/TOOL for the node's PATH: the real TOOL, but where `when` (a
 * shell test of its arguments) holds, one that hangs, deaf to its input's end
 * and to HUP, INT, PIPE and TERM, as a tool blocked on a disk that stopped
 * answering (only KILL ends it); with `after`, once the real one has run.
 */
async function hangingTool(bin: string, tool: string, when: string, after = false): Promise<void> {
  const real = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
  await mkdir(bin, { recursive: true });
  const script = ['#!/bin/sh', `if ${when}; then`, "  trap '' HUP INT PIPE TERM", ...(after ? [`  ${real} "$@"`] : []), '  while :; do sleep 1; done', 'fi', `exec ${real} "$@"`];
  await writeFile(join(bin, tool), `${script.join('\n')}\n`, { mode: 0o755 });
}

/**
 * Writes BIN/TOOL for the node's PATH: the real TOOL, but where `when` holds,
 * one that exits CODE at once without reading its input (a tool refused, or
 * one that cannot start), after writing `says` on stderr.
 */
async function failingTool(bin: string, tool: string, when: string, code: number, says: string): Promise<void> {
  const real = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
  await mkdir(bin, { recursive: true });
  const script = ['#!/bin/sh', `if ${when}; then`, `  echo '${says}' >&2`, `  exit ${code}`, 'fi', `exec ${real} "$@"`];
  await writeFile(join(bin, tool), `${script.join('\n')}\n`, { mode: 0o755 });
}

/** A connection to the fixture's sshd whose commands on the node find `bin` first on their PATH. */
async function connectWithPath(fx: { sshd: Sshd }, bin: string, stopGraceMs?: number): Promise<HostFs> {
  const fs = await connectSshHostFs({ target: fx.sshd.target, keyPath: fx.sshd.keyPath, knownHosts: fx.sshd.knownHostsPath, ...(stopGraceMs ? { stopGraceMs } : {}) });
  const conn = (fs as unknown as { conn: { exec: (cmd: string, ...a: unknown[]) => unknown } }).conn;
  const exec = conn.exec.bind(conn);
  conn.exec = (cmd: string, ...a: unknown[]) => exec(`PATH=${bin}:$PATH ${cmd}`, ...a);
  return fs;
}

/** `p`, or a rejection naming `what` once `ms` have passed without it settling (a hang fails the test instead of holding it). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms / 1000} s`)), ms)));
  try {
    return await Promise.race([p, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** A tar.zst archive (made here) of a disk of MIB MiB of random data, DIR/NAME.tar.zst. */
async function randomArchive(dir: string, name: string, mib: number): Promise<string> {
  const { randomBytes } = await import('node:crypto');
  const src = join(dir, `${name}-src`);
  await mkdir(src);
  for (let i = 0; i < mib / 4; i++) await writeFile(join(src, `blob-${i}.bin`), randomBytes(4 * 1024 * 1024));
  const archive = join(dir, `${name}.tar.zst`);
  const out = createWriteStream(archive);
  await packDisk(new LocalHostFs(), src, out, { format: 'tar.zst' }, {});
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  return archive;
}

describe("a node command that hangs past a stop or a cancel is killed, its whole process group (real sshd; node tools deaf to all but KILL)", { skip: sshdMissing() }, () => {
  const fx = sshdAndSandbox();

  /** A connection whose commands on the node find `bin` first on their PATH. */
  const connectWith = (bin: string, stopGraceMs?: number): Promise<HostFs> => connectWithPath(fx, bin, stopGraceMs);

  it("an import whose tar -x hangs, deaf to its input's end: a stop kills it after the grace period, and `finished` says so (not that it was given up on)", async () => {
    const bin = join(fx.sb.dir, 'tar-x-hangs');
    await hangingTool(bin, 'tar', '[ "$1" = -x ]');
    // the kill is a second exec over SSH (a new session: sshd forks, the
    // login shell starts), and the channel's close comes only once it has
    // run; a loaded CI machine took more than 2 s for that, past the give-up
    // (twice the grace). The grace is only this test's patience: 10 s
    const fs = await connectWith(bin, 10_000);
    const dest = join(fx.sb.dir, 'hung-import');
    await mkdir(dest, { mode: 0o700 });
    try {
      const untar = (await fs.untarStream!(dest))!;
      untar.stream.on('error', () => undefined);
      untar.stream.write(Buffer.alloc(64 * 1024));
      await runningOnNode(`${bin}/tar -x`);
      untar.stop();
      await assert.rejects(untar.finished, /tar -x into .*hung-import on ssh .* was killed: it did not end within 10 s of being stopped/);
      await noneLeftOnNode(dest, 'the stopped import');
    } finally {
      killLeftOnNode(dest);
      await fs.close();
    }
  });

  it("a cancelled import whose tar -x hangs, deaf to its input's end: the cancel kills it at once, not after the grace period (30 s), and nothing of it is left once the import has failed (what removes its directory then)", async () => {
    const bin = join(fx.sb.dir, 'tar-x-hangs-cancelled');
    await hangingTool(bin, 'tar', '[ "$1" = -x ]');
    // more than the channel's window and the node's pipes hold: the cancel finds the feed mid-stream
    const archive = await randomArchive(fx.sb.dir, 'cancelled-import-archive', 8);
    const fs = await connectWith(bin); // the default grace period
    const dest = join(fx.sb.dir, 'cancelled-import');
    const input = createReadStream(archive);
    const ac = new AbortController();
    const op = { signal: ac.signal };
    try {
      // as the driver's import runs it
      const importing = cancellable(op, destroyOnCancel(input), () => unpackDisk(fs, input, dest, {}, op));
      importing.catch(() => undefined);
      await runningOnNode(`${bin}/tar -x`);
      ac.abort();
      await assert.rejects(within(importing, 10_000, 'the cancelled import'), (e: unknown) => {
        assert.ok(e instanceof KompoxError && e.kind === 'interrupted', String(e));
        return true;
      });
      assert.deepEqual(nodeProcesses(dest), [], 'the import failed before its tar -x was gone');
      await fs.rm(dest);
      assert.equal(await fs.lstat(dest), undefined);
    } finally {
      input.destroy();
      killLeftOnNode(dest);
      await fs.close();
    }
  });

  it("a file streamed by cat (a snapshot's archive) that blocks opening it (a FIFO): the reader going away kills cat, and the stream closes only once it is gone", async () => {
    const fifo = join(fx.sb.dir, 'stuck.tar.zst');
    spawnSync('mkfifo', [fifo]);
    const fs = await connectSshHostFs({ target: fx.sshd.target, keyPath: fx.sshd.keyPath, knownHosts: fx.sshd.knownHostsPath });
    try {
      const input = await fs.streamFile!(fifo);
      input.on('error', () => undefined);
      await runningOnNode(`cat -- ${fifo}`);
      const closed = new Promise<void>((resolve) => input.once('close', () => resolve()));
      input.destroy();
      await within(closed, 10_000, "the stream's close");
      assert.deepEqual(nodeProcesses(fifo), [], 'the stream closed before its cat was gone');
      await noneLeftOnNode(fifo, 'the stopped cat');
    } finally {
      killLeftOnNode(fifo);
      await fs.close();
    }
  });

  it("a cancelled snapshot export whose node cat hangs mid-file, deaf to all but KILL: the cancel kills it, and nothing of it is left once the export has failed", async () => {
    const { randomBytes } = await import('node:crypto');
    const bin = join(fx.sb.dir, 'cat-hangs');
    await hangingTool(bin, 'cat', '[ "$1" = -- ]', true);
    const file = join(fx.sb.dir, 'snap-cat.tar.zst');
    await writeFile(file, randomBytes(256 * 1024));
    const fs = await connectWith(bin);
    const ac = new AbortController();
    const op = { signal: ac.signal };
    try {
      const input = await fs.streamFile!(file);
      // as the driver's snapshot export reads it
      const exporting = cancellable(op, destroyOnCancel(input), async () => {
        for await (const _ of input as AsyncIterable<Buffer>);
      });
      exporting.catch(() => undefined);
      await runningOnNode(`${bin}/cat -- ${file}`);
      ac.abort();
      await assert.rejects(within(exporting, 10_000, 'the cancelled export'), (e: unknown) => {
        assert.ok(e instanceof KompoxError && e.kind === 'interrupted', String(e));
        return true;
      });
      assert.deepEqual(nodeProcesses(file), [], 'the export failed before its cat was gone');
      await noneLeftOnNode(file, 'the cancelled cat');
    } finally {
      killLeftOnNode(file);
      await fs.close();
    }
  });

  for (const format of ['tar.zst', 'tar.gz'] as const)
  it(`a cancelled export whose node pipeline and size walk hang (${format === 'tar.zst' ? 'packed on the node' : 'the plain tar stream'}): the cancel kills them, and nothing of them is left on the node once the export has failed`, async () => {
    const bin = join(fx.sb.dir, 'tar-c-and-walk-hang');
    await hangingTool(bin, 'tar', '[ "$1" = -c ]');
    await hangingTool(bin, 'find', '[ "$2" = -type ]'); // the size walk's `find DIR -type f` (not the check for FIFOs)
    const dir = join(fx.sb.dir, `hung-export-${format}`);
    await mkdir(dir);
    await writeFile(join(dir, 'a.txt'), 'some data\n');
    const fs = await connectWith(bin);
    const out = new PassThrough();
    out.resume();
    const ac = new AbortController();
    try {
      // a progress: the size walk runs beside the tar
      const progress = { start: () => undefined, advance: () => undefined, done: () => undefined };
      const exporting = packDisk(fs, dir, out, { format, progress }, { signal: ac.signal });
      exporting.catch(() => undefined);
      await runningOnNode(`${bin}/tar -c`);
      await runningOnNode(`${bin}/find ${dir} -type`);
      ac.abort();
      await assert.rejects(exporting, (e: unknown) => e instanceof KompoxError && e.kind === 'interrupted');
      assert.deepEqual(nodeProcesses(dir), [], 'a node command of the export outlived its cancel');
      await noneLeftOnNode(dir, 'the cancelled export');
    } finally {
      killLeftOnNode(dir);
      await fs.close();
    }
  });

  it("an export whose output fails while its node tar hangs after the stream, deaf to SIGPIPE: the stop kills it after the grace period; the export fails with the output's error instead of waiting for its end", async () => {
    const { randomBytes } = await import('node:crypto');
    const bin = join(fx.sb.dir, 'tar-c-hangs-after');
    await hangingTool(bin, 'tar', '[ "$1" = -c ]', true);
    const dir = join(fx.sb.dir, 'hung-after-export');
    await mkdir(dir);
    // more than zstd -T0 on the node keeps before it writes its first frames (4 MiB was all kept)
    await writeFile(join(dir, 'blob.bin'), randomBytes(24 * 1024 * 1024));
    const fs = await connectWith(bin, 500);
    let written = 0;
    const full = new Writable({
      write(chunk: Buffer, _enc, cb) {
        written += chunk.length;
        if (written <= 256 * 1024) return cb();
        cb(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
      },
    });
    full.on('error', () => undefined);
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the export did not end within 20 s of its output failing (${written} bytes written)`)), 20_000)));
    try {
      await assert.rejects(Promise.race([packDisk(fs, dir, full, { format: 'tar.zst' }, {}), hung]), /no space left on device/);
      await noneLeftOnNode(dir, 'the stopped export');
    } finally {
      clearTimeout(timer);
      killLeftOnNode(dir);
      await fs.close();
    }
  });
});

describe("an import over SSH whose node command ends at once without reading its input (refused, or a tool that cannot start): it fails promptly with that command's error while a big archive is being fed (real sshd)", { skip: sshdMissing() }, () => {
  /** A zstd archive of 32 MiB of random data: far more than the channel's window and the pipes' buffers hold. */
  let archive = '';
  let archiveSize = 0;
  const fx = sshdAndSandbox(async (sb) => {
    archive = await randomArchive(sb.dir, 'big', 32);
    archiveSize = (await stat(archive)).size;
  });

  /**
   * The node's tool that ends at once, and what each path must say: tar
   * failing as it does when it cannot enter the directory it extracts into
   * (a host problem, not the archive's); zstd failing at once (its exit
   * status is all the restore on the node has to go on: a corrupt stream
   * looks the same, so there only its words are asked for).
   */
  const failing = [
    {
      label: 'tar -x exits 2 at once, unable to enter its directory',
      tool: 'tar',
      when: '[ "$1" = -x ]',
      code: 2,
      says: 'tar: /dest: Cannot open: Permission denied',
      onNode: { kind: 'unavailable', message: /extracting the archive on ssh .* failed.*Cannot open: Permission denied/ },
      untar: /tar -x into .* on ssh .* failed \(exit code 2\): tar: \/dest: Cannot open: Permission denied/,
    },
    {
      label: 'zstd -d exits 1 at once',
      tool: 'zstd',
      when: 'case "$1" in -d*) true ;; *) false ;; esac',
      code: 1,
      says: 'zstd: cannot run (fake)',
      onNode: { kind: undefined, message: /zstd: cannot run \(fake\)/ },
      untar: /zstd -d on ssh .* failed \(exit code 1\): zstd: cannot run \(fake\)/,
    },
  ] as const;

  for (const { label, tool, when, code, says, onNode, untar } of failing) {
    it(`extracted and checked on the node (restoreOnNode, the import's usual path): ${label}`, async () => {
      const bin = join(fx.sb.dir, `on-node-${tool}`);
      await failingTool(bin, tool, when, code, says);
      const fs = await connectWithPath(fx, bin);
      const parent = join(fx.sb.dir, `on-node-${tool}-disk`);
      await mkdir(parent);
      const input = createReadStream(archive);
      try {
        const importing = restoreOnNode(fs, { stream: input }, join(parent, 'data'), { format: 'tar.zst', size: archiveSize, label: 'import refused' }, {});
        await assert.rejects(within(importing, 20_000, 'the import'), (e: unknown) => {
          assert.ok(e instanceof KompoxError, String(e));
          if (onNode.kind) assert.equal(e.kind, onNode.kind, e.message);
          assert.match(e.message, onNode.message);
          return true;
        });
      } finally {
        input.destroy();
        await fs.close();
      }
    });

    it(`one tar -x on the node fed the checked stream (untarStream, when the node cannot check it): ${label}`, async () => {
      const bin = join(fx.sb.dir, `untar-${tool}`);
      await failingTool(bin, tool, when, code, says);
      const fs = await connectWithPath(fx, bin);
      const dir = join(fx.sb.dir, `untar-${tool}-disk`);
      const input = createReadStream(archive);
      try {
        const importing = unpackDisk(fs, input, dir, { totalBytes: archiveSize }, {});
        await assert.rejects(within(importing, 20_000, 'the import'), (e: unknown) => {
          assert.ok(e instanceof KompoxError, String(e));
          assert.equal(e.kind, 'unavailable', e.message);
          assert.match(e.message, untar);
          return true;
        });
      } finally {
        input.destroy();
        await fs.close();
      }
    });
  }
});

/**
 * Writes BIN/zstd for the node's PATH: this machine's zstd, but when it
 * compresses (`zstd -T0 ...`: the export's and the snapshot's; the probes and
 * decompression go through) it does what BIN/mode says: `fails` (exits 1 with
 * a message of its own), `missing` (a command not found: 127), `option` (the
 * real zstd given an unknown option: "Incorrect parameters"), `killed`
 * (SIGKILL, as the OOM killer does: 137), `memory` (the real zstd under an
 * address-space limit: its allocation error).
 */
async function compressingZstd(bin: string): Promise<void> {
  const real = spawnSync('sh', ['-c', 'command -v zstd'], { encoding: 'utf8' }).stdout.trim();
  await mkdir(bin, { recursive: true });
  const script = [
    '#!/bin/sh',
    'if [ "$1" = -T0 ]; then',
    `  case "$(cat "${bin}/mode" 2>/dev/null)" in`,
    "    fails) echo 'zstd: cannot compress (fake)' >&2; exit 1;;",
    '    missing) exec kompox-no-such-zstd "$@";;',
    `    option) exec "${real}" --no-such-option "$@";;`,
    '    killed) kill -KILL $$;;',
    `    memory) ulimit -v 30000; exec "${real}" "$@";;`,
    '  esac',
    'fi',
    `exec "${real}" "$@"`,
  ];
  await writeFile(join(bin, 'zstd'), `${script.join('\n')}\n`, { mode: 0o755 });
}

describe("the node's zstd failing as it compresses (export over SSH, snapshot on the node): the error is zstd's, not the SIGPIPE it left tar (real sshd)", { skip: sshdMissing() }, () => {
  const fx = sshdAndSandbox();

  const modes = [
    ['fails', /^zstd compressing .* on ssh \S+ failed \(exit code 1\): zstd: cannot compress \(fake\)$/],
    ['missing', /^zstd compressing .* on ssh \S+ failed \(exit code 127\): .*kompox-no-such-zstd: not found$/],
    ['option', /^zstd compressing .* on ssh \S+ failed \(exit code 1\): Incorrect parameters ?$/],
    ['killed', /^zstd compressing .* on ssh \S+ was killed by signal 9 \(SIGKILL, exit code 137\)/],
    // this machine's zstd under `ulimit -v`: its own allocation error, whatever its number
    ['memory', /^zstd compressing .* on ssh \S+ failed \(exit code \d+\): zstd: error \d+ : /],
  ] as const;

    const logs = (events: KompoxEvent[]) => events.flatMap((e) => (e.type === 'log' ? [e.message] : []));

  /** The error of a failed export or snapshot, checked: zstd's, with its advice, neither tar's SIGPIPE nor the pipeline's status 0. */
  const zstdsFailure = (said: RegExp) => (e: unknown) => {
    assert.ok(e instanceof KompoxError && e.kind === 'unavailable', String(e));
    assert.match(e.message, said);
    assert.doesNotMatch(e.message, /tar -c|exit code (?:141|0)\b/);
    assert.match(e.hint ?? '', /node's zstd/);
    return true;
  };

  it('an export packed on the node (tar.zst) and one of the plain tar stream (tar.gz: zstd on the link) fail naming zstd: its status or signal and its message', async () => {
    const { randomBytes } = await import('node:crypto');
    const bin = join(fx.sb.dir, 'zstd-export-fails');
    await compressingZstd(bin);
    const dir = join(fx.sb.dir, 'zstd-export-disk');
    await mkdir(dir);
    // more than the pipes between tar and zstd hold: tar is still writing when zstd is gone
    for (let i = 0; i < 2; i++) await writeFile(join(dir, `blob-${i}.bin`), randomBytes(2 * 1024 * 1024));
    await writeSampleTree(dir);
    const fs = await connectWithPath(fx, bin);
    try {
      for (const [mode, said] of modes) {
        await writeFile(join(bin, 'mode'), mode);
        for (const format of ['tar.zst', 'tar.gz'] as const) {
          const out = new PassThrough();
          out.resume();
          await assert.rejects(within(packDisk(fs, dir, out, { format }, {}), 20_000, `the ${format} export (${mode})`), zstdsFailure(said), `${format}, ${mode}`);
        }
      }
      // and with nothing in the way, both export on that node
      await rm(join(bin, 'mode'));
      for (const format of ['tar.zst', 'tar.gz'] as const) await packDisk(fs, dir, new PassThrough().resume(), { format }, {});
    } finally {
      await fs.close();
    }
  });

  it('a snapshot made on the node fails naming zstd (not "exit code 0", the status of the sha256sum after it), and leaves no snapshot', async () => {
    const { randomBytes } = await import('node:crypto');
    const bin = join(fx.sb.dir, 'zstd-snapshot-fails');
    await compressingZstd(bin);
    const driver = new K3sDriver({ env: {} }, () => connectWithPath(fx, bin));
    try {
      const ctx = appCtx(fx.sb, { settings: { K3S_SSH: fx.sshd.target, K3S_SSH_KEY: fx.sshd.keyPath, K3S_SSH_KNOWN_HOSTS: fx.sshd.knownHostsPath } });
      const vol = ctx.app.volumes[0]!;
      const disk = await driver.disks.create(ctx, vol, { name: 'zstd-snap' }, {});
      for (let i = 0; i < 2; i++) await writeFile(join(disk.id, `blob-${i}.bin`), randomBytes(2 * 1024 * 1024));
      await writeSampleTree(disk.id);
      // files only: the snapshot's directories are made before its archive
      const files = async () => (await snapshotOfTree(fx.sb.snapshotRoot)).filter((e) => !e.endsWith('/'));
      const before = await files();
      for (const [mode, said] of modes) {
        await writeFile(join(bin, 'mode'), mode);
        await assert.rejects(within(driver.snapshots.create(ctx, vol, disk, `snap-${mode}`, {}), 20_000, `the snapshot (${mode})`), zstdsFailure(said), mode);
        assert.deepEqual(await files(), before, `${mode}: nothing visible`);
      }
      // and with nothing in the way, the snapshot is made on that node
      await rm(join(bin, 'mode'));
      const { events, op } = collectEvents();
      await driver.snapshots.create(ctx, vol, disk, 'snap-ok', op);
      assert.ok(logs(events).some((m) => /^snapshot snap-ok: on the node/.test(m)), logs(events).join(' | '));
    } finally {
      await driver.close();
    }
  });

  it("a snapshot whose archive file cannot be written on the node (tee failing: the disk full, a file size limit) fails naming the file, and tee's status and message or the full disk, not \"exit code 0\" nor tar's SIGPIPE, and leaves no snapshot", async () => {
    const { randomBytes } = await import('node:crypto');
    const bin = join(fx.sb.dir, 'tee-fails');
    await mkdir(bin, { recursive: true });
    const real = spawnSync('sh', ['-c', 'command -v tee'], { encoding: 'utf8' }).stdout.trim();
    // BIN/mode: `full` (tee's own message and status after reading some), `limit` (the real tee under a
    // 64 KiB file size limit: SIGXFSZ, as a quota or a limit on the node would)
    const script = [
      '#!/bin/sh',
      `case "$(cat "${bin}/mode" 2>/dev/null)" in`,
      `  full) head -c 100000 > /dev/null; echo "tee: $1: No space left on device" >&2; exit 1;;`,
      `  limit) ulimit -f 128; exec "${real}" "$@";;`,
      'esac',
      `exec "${real}" "$@"`,
    ];
    await writeFile(join(bin, 'tee'), `${script.join('\n')}\n`, { mode: 0o755 });
    const driver = new K3sDriver({ env: {} }, () => connectWithPath(fx, bin));
    try {
      const ctx = appCtx(fx.sb, { settings: { K3S_SSH: fx.sshd.target, K3S_SSH_KEY: fx.sshd.keyPath, K3S_SSH_KNOWN_HOSTS: fx.sshd.knownHostsPath } });
      const vol = ctx.app.volumes[0]!;
      const disk = await driver.disks.create(ctx, vol, { name: 'tee-snap' }, {});
      // more than the pipes and tee's first reads hold: tar is still writing when tee is gone
      for (let i = 0; i < 2; i++) await writeFile(join(disk.id, `blob-${i}.bin`), randomBytes(2 * 1024 * 1024));
      await writeSampleTree(disk.id);
      const files = async () => (await snapshotOfTree(fx.sb.snapshotRoot)).filter((e) => !e.endsWith('/'));
      const before = await files();
      const cases = [
        // the disk full is told as such, with tee's line (driver.ts hostFull)
        ['full', /^snapshot snap-full was not created: no space left under \S+ on ssh \S+ \(tee: \S+: No space left on device\)$/],
        ['limit', /^writing the snapshot archive \S+ on ssh \S+ was killed by signal 25 \(SIGXFSZ, exit code 153\)/],
      ] as const;
      for (const [mode, said] of cases) {
        await writeFile(join(bin, 'mode'), mode);
        await assert.rejects(within(driver.snapshots.create(ctx, vol, disk, `snap-${mode}`, {}), 20_000, `the snapshot (${mode})`), (e: unknown) => {
          assert.ok(e instanceof KompoxError && e.kind === 'unavailable', String(e));
          assert.match(e.message, said, `${mode}: ${e.message}`);
          assert.doesNotMatch(e.message, /exit code (?:141|0)\b|Broken pipe|tar: /, `${mode}: ${e.message}`);
          assert.match(e.hint ?? '', /Free space/);
          return true;
        }, mode);
        assert.deepEqual(await files(), before, `${mode}: nothing visible`);
      }
      await rm(join(bin, 'mode'));
      await driver.snapshots.create(ctx, vol, disk, 'snap-after-tee', {});
    } finally {
      await driver.close();
    }
  });
});
