// Shared fixtures for the K3s driver and disk/snapshot use-case tests: an app
// context whose K3s roots are temp dirs, and a sample tree with the awkward
// cases (binary, empty file, empty dir, symlinks, unicode, long names, modes).
import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, readdir, lstat, readlink, symlink, writeFile, chmod, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppContext } from '../../src/domain/model.js';
import type { KubeClient } from '../../src/kube/types.js';
import { LocalHostFs, type HostFs } from '../../src/providers/k3s/hostfs.js';
import { connectSshHostFs } from '../../src/providers/k3s/ssh-hostfs.js';
import { K3sDriver } from '../../src/providers/k3s/index.js';
import type { FakeKube, FakeKubeOptions } from '../support/fake-kube/index.js';
import { startFakeCluster } from '../support/kube.js';
import { startSshd, type Sshd } from '../support/sshd.js';
import { after, before } from 'node:test';

export interface Sandbox {
  dir: string;
  diskRoot: string;
  snapshotRoot: string;
  cleanup(): Promise<void>;
}

/**
 * For a describe block over a real sshd: an sshd on loopback and a sandbox,
 * started before its tests (then `setup`) and stopped after them; `opts`:
 * the sshd's (startSshd). Its fields are set once started (read them inside
 * the tests).
 */
export function sshdAndSandbox(setup?: (sb: Sandbox) => Promise<unknown>, opts: { config?: string[] } = {}): { sshd: Sshd; sb: Sandbox } {
  const fx = {} as { sshd: Sshd; sb: Sandbox };
  before(async () => {
    fx.sshd = await startSshd(opts);
    fx.sb = await sandbox();
    await setup?.(fx.sb);
  });
  after(async () => {
    await fx.sshd?.close();
    await fx.sb?.cleanup();
  });
  return fx;
}

export async function sandbox(): Promise<Sandbox> {
  const dir = await mkdtemp(join(tmpdir(), 'kompox-k3s-'));
  const diskRoot = join(dir, 'disks');
  const snapshotRoot = join(dir, 'snapshots');
  // LocalHostFs.rm copes with read-only directories when not running as root.
  return { dir, diskRoot, snapshotRoot, cleanup: () => new LocalHostFs().rm(dir) };
}

/** What the disk and snapshot use-case tests run against: a sandbox, the K3s driver and a fake cluster. */
export interface K3sCluster {
  sb: Sandbox;
  fake: FakeKube;
  kube: KubeClient;
  driver: K3sDriver;
  close(): Promise<void>;
}

/** A helper pod's `tar -c` or `tar -x` (helperTarCreateArgv / helperTarExtractArgv: a script that asks its tar for GNU tar first). */
export function isHelperTar(command: readonly string[], mode: '-c' | '-x'): boolean {
  const script = command[0] === 'sh' && command[1] === '-c' ? (command[2] ?? '') : '';
  return script.startsWith('case "$(tar --version') && script.includes(`tar ${mode} `);
}

export async function startK3sCluster(opts: FakeKubeOptions = {}): Promise<K3sCluster> {
  const sb = await sandbox();
  const { fake, kube } = await startFakeCluster(opts);
  const driver = new K3sDriver();
  return {
    sb,
    fake,
    kube,
    driver,
    async close() {
      await driver.close();
      await fake.close();
      await sb.cleanup();
    },
  };
}

export function appCtx(
  sb: { diskRoot: string; snapshotRoot: string },
  over: { app?: string; cluster?: string; volumes?: string[]; settings?: Record<string, string> } = {},
): AppContext {
  return {
    service: { name: 'ops' },
    provider: { name: 'k3s1', service: 'ops', driver: 'k3s', settings: { K3S_DISK_ROOT: sb.diskRoot, K3S_SNAPSHOT_ROOT: sb.snapshotRoot, ...over.settings } },
    cluster: { name: over.cluster ?? 'node1', provider: 'k3s1', auth: { type: 'kubectl' }, ingress: { controller: 'traefik', namespace: 'traefik' }, settings: {} },
    app: {
      name: over.app ?? 'my-app',
      cluster: over.cluster ?? 'node1',
      compose: 'services: {}',
      ingress: {},
      resources: {},
      settings: {},
      volumes: (over.volumes ?? ['default']).map((name) => ({ name, options: {} })),
    },
  };
}

/** Writes the sample tree into `dir` (which must exist). */
export async function writeSampleTree(dir: string): Promise<void> {
  await writeFile(join(dir, 'binary.bin'), randomBytes(300 * 1024 + 17));
  await writeFile(join(dir, 'empty.txt'), '');
  await mkdir(join(dir, 'empty-dir'));
  await mkdir(join(dir, 'sub', 'deeper'), { recursive: true });
  await writeFile(join(dir, 'sub', 'deeper', 'note.txt'), 'hello\n');
  await writeFile(join(dir, 'sub', '日本語-ファイル.txt'), 'ユニコード\n');
  await writeFile(join(dir, 'café ünïcödé.md'), '# ok\n');
  const long = 'x'.repeat(120);
  await writeFile(join(dir, 'sub', `${long}.txt`), 'long name\n');
  await writeFile(join(dir, 'run.sh'), '#!/bin/sh\necho hi\n');
  await chmod(join(dir, 'run.sh'), 0o755);
  await writeFile(join(dir, 'secret.key'), 'k');
  await chmod(join(dir, 'secret.key'), 0o600);
  await symlink('sub/deeper/note.txt', join(dir, 'link-to-note'));
  await symlink('/etc/passwd', join(dir, 'absolute-link')); // must be stored as a link, never followed
  await symlink('does-not-exist', join(dir, 'dangling'));
  await mkdir(join(dir, 'read-only'));
  await writeFile(join(dir, 'read-only', 'frozen.txt'), 'cannot touch this\n');
  await chmod(join(dir, 'read-only'), 0o555);
  await utimes(join(dir, 'sub', 'deeper', 'note.txt'), new Date('2020-01-02T03:04:05.678Z'), new Date('2020-01-02T03:04:05.678Z'));
}

/** Every path under `root` (dot entries included) with type and size: proves "nothing changed". */
/**
 * Writes `name` (app.log) in DIR: 30,000 log-like lines from a fixed seed,
 * text that compresses well and differently at zstd's levels (tests that a
 * chosen level reaches the compressor: level 1's archive well over level 8's).
 */
export async function writeCompressibleLog(dir: string, name = 'app.log'): Promise<void> {
  const words = 'alpha beta gamma delta error warning info debug request response user session cache miss hit timeout retry'.split(' ');
  let x = 7;
  const rnd = (n: number) => ((x = (x * 1103515245 + 12345) >>> 0) >>> 8) % n;
  const lines = Array.from({ length: 30_000 }, (_, i) => `${i} ${Array.from({ length: 4 + rnd(8) }, () => words[rnd(words.length)]).join(' ')} id=${rnd(100_000)}`);
  await writeFile(join(dir, name), lines.join('\n'));
}

export async function snapshotOfTree(root: string): Promise<string[]> {
  const out: string[] = [];
  const go = async (p: string, rel: string): Promise<void> => {
    let names: string[];
    try {
      names = (await readdir(p)).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const abs = join(p, n);
      const st = await lstat(abs);
      const r = `${rel}/${n}`;
      if (st.isSymbolicLink()) out.push(`${r} -> ${await readlink(abs)}`);
      else if (st.isDirectory()) {
        out.push(`${r}/`);
        await go(abs, r);
      } else out.push(`${r} ${st.size}`);
    }
  };
  await go(root, '');
  return out;
}

/**
 * A `cp` as GNU cp 9 looks from /proc while it copies a big file with one
 * copy_file_range: the output open in cp's process, its size growing, its
 * offset and the process's wchar unchanged until the call returns.
 * Emulated: the file (DEST/big.bin) is held open while a process that is
 * not cp's child (its writes never reach cp's wchar) appends 1 MiB every
 * 0.6 s, 6 MiB in all; then the real cp (`real`) copies the tree. The file
 * stays open for 3.4 s and until the appender has written it all (it says
 * so with DEST/.appended; 60 s at most): on a loaded machine an appender
 * that fell behind a fixed hold left the copy's once-a-second sampling too
 * little in flight. With `onlyCopyTree`, calls other than
 * `cp -a SRC… DEST` go straight to it.
 */
export function inFlightCpScript(real: string, onlyCopyTree = false): string {
  return [
    '#!/bin/sh',
    ...(onlyCopyTree ? [`case "$1" in -a) ;; *) exec ${real} "$@" ;; esac`] : []),
    'mkdir -- "$4" && exec 9> "$4/big.bin" || exit 1',
    '( ( for i in 1 2 3 4 5 6; do head -c 1048576 /dev/zero >> "$4/big.bin"; [ $i = 6 ] || sleep 0.6; done; : > "$4/.appended" ) & )',
    'sleep 3.4',
    'i=0; while [ ! -e "$4/.appended" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done',
    'exec 9>&-',
    'rm -rf -- "$4"',
    `exec ${real} "$@"`,
    '',
  ].join('\n');
}

/**
 * A connection to the sshd; with `bin`, its commands on the node find only
 * the tools in `bin` (their PATH is it alone: a node without tar, say).
 */
export async function connectNode(sshd: Sshd, bin?: string): Promise<HostFs> {
  const fs = await connectSshHostFs({ target: sshd.target, keyPath: sshd.keyPath, knownHosts: sshd.knownHostsPath });
  if (bin) {
    const conn = (fs as unknown as { conn: { exec: (cmd: string, ...a: unknown[]) => unknown } }).conn;
    const exec = conn.exec.bind(conn);
    conn.exec = (cmd: string, ...a: unknown[]) => exec(`PATH=${bin} ${cmd}`, ...a);
  }
  return fs;
}
