// Names and symlink targets that are not UTF-8 on the SSH paths (review 3:
// C1, C2, C5, C6, C6b, C7), against a real sshd on 127.0.0.1 (the node is
// this machine). Every path refused nothing: the SFTP export left such
// entries out, the plain tar stream export and the imports through tar -x
// and SFTP renamed them to U+FFFD (and re-pointed symlinks), and the
// export packed on the node wrote U+FFFD names into its manifest, which the
// on-node import and snapshot accepted because they decoded the node's
// listing the same lossy way. Each is now refused naming the entry
// (archive.name.encoding), with nothing left behind: no disk, no snapshot,
// no temp file or directory.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { zstdCompressSync } from 'node:zlib';
import { buildManifest, manifestBlocks, type ManifestEntry } from '../../src/archive/archive.js';
import { headerBlocks } from '../../src/archive/tar-header.js';
import { KompoxError } from '../../src/domain/errors.js';
import type { HostFsFactory } from '../../src/providers/k3s/driver.js';
import type { HostFs } from '../../src/providers/k3s/hostfs.js';
import { K3sDriver } from '../../src/providers/k3s/index.js';
import { connectSshHostFs } from '../../src/providers/k3s/ssh-hostfs.js';
import { collect } from '../support/collect.js';
import { sshdMissing, startSshd, type Sshd } from '../support/sshd.js';
import { appCtx, sandbox, type Sandbox } from './k3s-fixtures.js';

const skip = sshdMissing();
const latin1 = (s: string) => Buffer.from(s, 'latin1');
const at = (dir: string, name: string) => Buffer.concat([Buffer.from(dir), latin1(`/${name}`)]);

/** Every path under ROOT by its bytes (as latin1), with its type: what a refusal may not add to. */
function treeBytes(root: string): string[] {
  const out: string[] = [];
  const go = (abs: Buffer, rel: string) => {
    for (const n of readdirSync(abs, { encoding: 'buffer' })) {
      const p = Buffer.concat([abs, latin1('/'), n]);
      const r = `${rel}/${n.toString('latin1')}`;
      const st = lstatSync(p);
      out.push(st.isDirectory() ? `${r}/` : r);
      if (st.isDirectory()) go(p, r);
    }
  };
  go(Buffer.from(root), '');
  return out.sort();
}

type Case = 'names' | 'target';
/** A disk's content: a good file, and bad names (a file, a directory with a file) or a symlink with a bad target. */
function build(c: Case, dir: string): void {
  writeFileSync(join(dir, 'ok.txt'), 'kept');
  if (c === 'names') {
    writeFileSync(at(dir, 'bad\xff.txt'), 'latin-1 name');
    mkdirSync(at(dir, 'dir\xfe'));
    writeFileSync(at(dir, 'dir\xfe/inner'), 'inside');
  } else symlinkSync(latin1('target\xff'), join(dir, 'link'));
}
/** What a refusal says, by case: the entry by its bytes (or, over SFTP, with U+FFFD). */
const SAID: Record<Case, RegExp> = { names: /(bad|dir)(\\xff|\\xfe|\uFFFD)/, target: /(\/|the link )link\b.*target(\\xff|\uFFFD)/ };

const refused = (c: Case) => (e: unknown) => {
  assert.ok(e instanceof KompoxError, String((e as Error)?.stack ?? e));
  assert.deepEqual([e.kind, e.code], ['unsupported', 'archive.name.encoding'], e.message);
  assert.match(e.message, SAID[c]);
  assert.match(e.hint ?? '', /UTF-8/);
  return true;
};

/**
 * A tar.zst archive as the export packed on the node wrote one before the
 * fix: the member holds the name's bytes (bad\xff.txt, or the link's target
 * target\xff), the manifest U+FFFD in their place.
 */
function legacyArchive(c: Case): Buffer {
  const mtime = new Date(1_700_000_000_000);
  const parts: Buffer[] = [...headerBlocks({ path: 'data/', type: 'Directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime })];
  const entries: ManifestEntry[] = [{ path: 'data', type: 'dir', mode: 0o755, size: 0 }];
  const file = (path: string, body: string): void => void
    parts.push(...headerBlocks({ path, type: 'File', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime }), Buffer.concat([Buffer.from(body), Buffer.alloc(512 - body.length)]));
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  // a placeholder of the same length, then its bytes (pax lengths stay right) and the header checksums
  const patched = (blocks: Buffer[], from: string): Buffer[] => {
    const all = Buffer.concat(blocks);
    for (let i = all.indexOf(from); i >= 0; i = all.indexOf(from, i + 1)) all[i + from.length - 1] = 0xff;
    for (let b = 0; b + 512 <= all.length; b += 512) {
      const block = all.subarray(b, b + 512);
      if (block.toString('latin1', 257, 262) !== 'ustar') continue;
      block.fill(0x20, 148, 156);
      let sum = 0;
      for (const x of block) sum += x;
      block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    }
    return [all];
  };
  if (c === 'names') {
    const body = 'latin-1 name';
    parts.push(...patched(headerBlocks({ path: 'data/badZ.txt', type: 'File', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime }), 'badZ'));
    parts.push(Buffer.concat([Buffer.from(body), Buffer.alloc(512 - body.length)]));
    entries.push({ path: 'data/bad\uFFFD.txt', type: 'file', mode: 0o644, size: body.length, sha256: sha(body) });
  } else {
    parts.push(...patched(headerBlocks({ path: 'data/link', type: 'SymbolicLink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime, linkpath: 'targetZ' }), 'targetZ'));
    entries.push({ path: 'data/link', type: 'symlink', mode: 0o777, size: 0, linkpath: 'target\uFFFD' });
  }
  file('data/ok.txt', 'kept');
  entries.push({ path: 'data/ok.txt', type: 'file', mode: 0o644, size: 4, sha256: sha('kept') });
  parts.push(...manifestBlocks(buildManifest(entries, 'tar.zst', {})));
  return zstdCompressSync(Buffer.concat(parts));
}

describe('names and symlink targets that are not UTF-8 over SSH are refused by name (real sshd on 127.0.0.1)', { skip }, () => {
  let sshd: Sshd;
  let sb: Sandbox;
  let settings: Record<string, string>;
  let plain: K3sDriver;
  const drivers: K3sDriver[] = [];
  before(async () => {
    sshd = await startSshd();
    sb = await sandbox();
    // made by the first snapshot, refused or not: the root, not a snapshot
    mkdirSync(sb.snapshotRoot, { recursive: true });
    settings = { K3S_SSH: sshd.target, K3S_SSH_KEY: sshd.keyPath, K3S_SSH_KNOWN_HOSTS: sshd.knownHostsPath };
    plain = new K3sDriver();
    drivers.push(plain);
  });
  after(async () => {
    for (const d of drivers) await d.close();
    await sshd?.close();
    // rm -rf: the disks hold names that are not UTF-8
    if (sb) spawnSync('rm', ['-rf', '--', sb.dir]);
  });

  /** As in k3s-ssh.test.ts: noTar hides the node's tar (SFTP), noPacked the node's own packing, noRun HostFs.run (import via tar -x). */
  const traced = (noTar = false, noPacked = false, noRun = false) => {
    const calls = { tarStream: 0, packedStream: 0, untarStream: 0, openFile: 0, sftpWrites: 0, run: 0 };
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
            return (...a: unknown[]) => {
              calls.run++;
              return (v as (...x: unknown[]) => unknown).apply(t, a);
            };
          }
          if ((k === 'openFile' || k === 'openWrite') && typeof v === 'function') {
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
    const driver = new K3sDriver({ env: {} }, factory);
    drivers.push(driver);
    return { driver, calls };
  };

  let n = 0;
  const freshDisk = async (c: Case) => {
    const ctx = appCtx(sb, { settings });
    const vol = ctx.app.volumes[0]!;
    const disk = await plain.disks.create(ctx, vol, { name: `${c}-${++n}` }, {});
    build(c, disk.id);
    return { ctx, vol, disk };
  };
  /** The sandbox and the disk list, to compare after a refusal. */
  const state = async (ctx: ReturnType<typeof appCtx>) => {
    const vol = ctx.app.volumes[0]!;
    return { tree: treeBytes(sb.dir), disks: (await plain.disks.list(ctx, vol, {}, {})).map((d) => d.name).sort(), snapshots: (await plain.snapshots.list(ctx, vol, {})).map((s) => s.name).sort() };
  };

  const EXPORTS = [
    ['packed on the node (C7)', () => traced(), 'packedStream'],
    ['by the plain tar stream (C5)', () => traced(false, true), 'tarStream'],
    ['over SFTP (C1, C2)', () => traced(true), 'openFile'],
  ] as const;
  for (const [path, mk, used] of EXPORTS)
    for (const c of ['names', 'target'] as const)
      it(`export ${path}, ${c}: refused naming the entry, nothing left behind`, async () => {
        const { driver, calls } = mk();
        const { ctx, vol, disk } = await freshDisk(c);
        const before = await state(ctx);
        await assert.rejects(
          collect((out) => driver.hostTransfer.exportDisk(ctx, vol, disk, out, {})),
          refused(c),
        );
        assert.deepEqual(await state(ctx), before);
        // the path meant ran (over SFTP the node's tar was asked for and withheld: the refusal comes before a file is opened)
        const asked = { packedStream: 'packedStream', tarStream: 'tarStream', openFile: 'tarStream' } as const;
        assert.ok(calls[asked[used]] > 0, JSON.stringify(calls));
      });

  const IMPORTS = [
    ['on the node (C7)', () => traced()],
    ['through tar -x (C6)', () => traced(false, false, true)],
    ['over SFTP (C6b)', () => traced(true, false, true)],
  ] as const;
  for (const [path, mk] of IMPORTS)
    for (const c of ['names', 'target'] as const)
      it(`import ${path} of an archive whose member holds the bytes (its manifest U+FFFD), ${c}: refused, no disk`, async () => {
        const { driver } = mk();
        const ctx = appCtx(sb, { settings });
        const vol = ctx.app.volumes[0]!;
        const before = await state(ctx);
        await assert.rejects(driver.hostTransfer.importDisk(ctx, vol, { name: `imp-${c}-${++n}` }, { stream: Readable.from([legacyArchive(c)]) }, {}), refused(c));
        assert.deepEqual(await state(ctx), before);
      });

  for (const [path, mk] of [['on the node (C7)', () => traced()], ['over SFTP (C1, C2)', () => traced(true, false, true)]] as const)
  for (const c of ['names', 'target'] as const)
    it(`snapshot ${path}, ${c}: refused, no snapshot`, async () => {
      const { driver } = mk();
      const { ctx, vol, disk } = await freshDisk(c);
      const before = await state(ctx);
      await assert.rejects(driver.snapshots.create(ctx, vol, disk, `snap-${c}-${++n}`, {}), refused(c));
      const now = await state(ctx);
      // the app's and volume's directories under the snapshot root may be new (made before a snapshot is taken): they hold no file
      const emptyDir = (tree: string[]) => (l: string) => l.startsWith('/snapshots/') && l.endsWith('/') && !tree.some((x) => x.startsWith(l) && !x.endsWith('/'));
      assert.deepEqual({ ...now, tree: now.tree.filter((l) => !emptyDir(now.tree)(l)) }, { ...before, tree: before.tree.filter((l) => !emptyDir(before.tree)(l)) });
    });
  for (const c of ['names', 'target'] as const)
    it(`copy of a disk on the node (cp -a, checked by listings), ${c}: refused as a copy through the archive format is, no disk`, async () => {
      const { driver, calls } = traced();
      const { ctx, vol, disk } = await freshDisk(c);
      const before = await state(ctx);
      await assert.rejects(driver.disks.create(ctx, vol, { name: `copy-${c}-${++n}`, source: { kind: 'disk', id: disk.id } }, {}), refused(c));
      assert.deepEqual(await state(ctx), before);
      assert.ok(calls.run > 0, JSON.stringify(calls));
    });
});
