// A tenant's pod racing an export over SSH: SFTP v3's open follows symlinks
// (in the last component and in every parent), so a file of the disk, or
// its directory, swapped for a symlink to a node file between the listing
// and the open must not bring that file into the archive. The swaps are
// made here (the node's files are this machine's) at the exact points of
// the race, by hooking the SFTP open of the real connection to a real sshd.
import assert from 'node:assert/strict';
import { chown, link, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { describe, it } from 'node:test';
import type { KompoxEvent } from '../../src/domain/events.js';
import { packDisk } from '../../src/providers/k3s/driver.js';
import type { HostFs } from '../../src/providers/k3s/hostfs.js';
import { connectSshHostFs } from '../../src/providers/k3s/ssh-hostfs.js';
import { sshdMissing } from '../support/sshd.js';
import { sshdAndSandbox } from './k3s-fixtures.js';

const missing = sshdMissing() ?? (process.getuid?.() === 0 ? undefined : 'chown to other owners needs root');

/** The tenant's files' owner, and the node files' (not root: the SSH user's own files would differ anyway). */
const TENANT = 1234;
const NODE = 4321;

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

type OpenCb = (err: Error | undefined, handle?: Buffer) => void;
/**
 * Runs `before` just before the SFTP open of a path in `races` is sent, and
 * `after` once its reply came, before the caller sees it (the tenant
 * swapping a file away and back around the open).
 */
function hookOpen(fs: HostFs, races: Map<string, { before(): Promise<void>; after?(): Promise<void> }>): void {
  const sftp = (fs as unknown as { sftp: { open(path: string, flags: string, cb: OpenCb): void } }).sftp;
  const open = sftp.open.bind(sftp);
  sftp.open = (path, flags, cb) => {
    const race = races.get(path);
    if (!race) return open(path, flags, cb);
    races.delete(path);
    void race.before().then(() =>
      open(path, flags, (err, handle) => {
        void (race.after?.() ?? Promise.resolve()).then(() => cb(err, handle));
      }),
    );
  };
}

describe('K3s over SSH: a file or directory replaced by a symlink since the listing is not followed into the archive', { skip: missing }, () => {
  const fx = sshdAndSandbox();
  const connect = () => connectSshHostFs({ target: fx.sshd.target, keyPath: fx.sshd.keyPath, knownHosts: fx.sshd.knownHostsPath });

  /** A disk's tree of the tenant's files, and a node directory of another owner's secrets. */
  async function setup(name: string): Promise<{ disk: string; node: string }> {
    const disk = join(fx.sb.dir, name, 'data');
    const node = join(fx.sb.dir, name, 'node-etc');
    await mkdir(join(disk, 'sub'), { recursive: true });
    await mkdir(node);
    // the tenant's files a little longer than the secrets: a secret read in their place would fit whole
    await writeFile(join(disk, 'kept.txt'), 'KEPT-CONTENT\n');
    await writeFile(join(disk, 'passwd'), 'tenant passwd, nothing secret here\n');
    await writeFile(join(disk, 'sub', 'shadow'), 'tenant shadow, nothing secret here\n');
    await writeFile(join(node, 'passwd'), 'NODE-SECRET-PASSWD\n');
    await writeFile(join(node, 'shadow'), 'NODE-SECRET-SHADOW\n');
    for (const p of [disk, join(disk, 'sub'), join(disk, 'kept.txt'), join(disk, 'passwd'), join(disk, 'sub', 'shadow')]) await chown(p, TENANT, TENANT);
    for (const p of [join(node, 'passwd'), join(node, 'shadow')]) await chown(p, NODE, NODE);
    return { disk, node };
  }

  it('an export walked over SFTP (no tar on the node): a file swapped for a symlink around the open, and a parent directory swapped for one, are left out, and said so; the rest is packed', async () => {
    const { disk, node } = await setup('walk');
    const fs = await connect();
    try {
      hookOpen(
        fs,
        new Map([
          [
            // swapped back once opened: the lstat after the open sees the file again
            join(disk, 'passwd'),
            {
              before: async () => {
                await rename(join(disk, 'passwd'), join(disk, 'passwd.away'));
                await symlink(join(node, 'passwd'), join(disk, 'passwd'));
              },
              after: async () => {
                await rm(join(disk, 'passwd'));
                await rename(join(disk, 'passwd.away'), join(disk, 'passwd'));
              },
            },
          ],
          [
            // left so: the lstat after the open goes through the same symlink and sees a regular file
            join(disk, 'sub', 'shadow'),
            {
              before: async () => {
                await rename(join(disk, 'sub'), join(disk, 'sub.away'));
                await symlink(node, join(disk, 'sub'));
              },
            },
          ],
        ]),
      );
      // a node without tar: the export walks the tree over SFTP (packTree)
      const noTar = new Proxy(fs, {
        get(target, k, recv) {
          if (k === 'tarStream' || k === 'packedStream') return async () => undefined;
          const v = Reflect.get(target, k, recv) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
      const out = new PassThrough();
      const bytes = readAll(out);
      const said: string[] = [];
      const events = (e: KompoxEvent) => said.push(e.type === 'warning' ? e.diagnostic.message : 'message' in e ? e.message : '');
      const r = await packDisk(noTar, disk, out, { format: 'tar.zst', uncompressed: true }, { events }).finally(() => out.end());
      const text = (await bytes).toString('latin1');
      assert.doesNotMatch(text, /NODE-SECRET/, 'no node file in the archive');
      assert.match(text, /KEPT-CONTENT/, 'the files left alone are packed');
      const files = r.manifest.entries.filter((e) => e.type === 'file').map((e) => e.path);
      assert.deepEqual(files.sort(), ['data/kept.txt'], 'the replaced files are left out of the manifest');
      assert.deepEqual(r.leftOut, { count: 2, first: ['data/passwd', 'data/sub/shadow'] });
      assert.ok(
        said.some((m) => m.includes('left out 2 file(s) deleted or replaced since they were listed') && m.includes('data/passwd, data/sub/shadow')),
        `the export says what it left out: ${said.join(' | ')}`,
      );
    } finally {
      await fs.close();
    }
  });

  it("packDisk through the node's tar: a hard link's target whose directory is swapped for a symlink after tar read it is refused, never read through the symlink", async () => {
    const { disk, node } = await setup('link');
    // tar stores the second name as a link to the first (either, in readdir's order): its content is read again by name
    await link(join(disk, 'sub', 'shadow'), join(disk, 'sub', 'second'));
    await link(join(node, 'shadow'), join(node, 'second'));
    let tarRead = false;
    const fs = await connect();
    try {
      // the plain tar stream (hard links as links), read whole before the swap: tar has seen the real file
      const hooked = new Proxy(fs, {
        get(target, k, recv) {
          if (k === 'packedStream') return undefined;
          if (k === 'tarStream') {
            return async (dir: string, signal?: AbortSignal) => {
              const t = await target.tarStream!(dir, signal);
              if (!t) return t;
              const whole = await readAll(t.stream);
              await t.finished;
              tarRead = true;
              await rename(join(disk, 'sub'), join(disk, 'sub.away'));
              await symlink(node, join(disk, 'sub'));
              const stream = new PassThrough();
              stream.end(whole);
              return { ...t, stream };
            };
          }
          const v = Reflect.get(target, k, recv) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
      const out = new PassThrough();
      const bytes = readAll(out);
      await assert.rejects(
        packDisk(hooked, disk, out, { format: 'tar.zst', uncompressed: true }, {}).finally(() => out.end()),
        /hard link to data\/sub\/(shadow|second), which it does not contain/,
      );
      assert.ok(tarRead, "the node's tar made the stream");
      assert.doesNotMatch((await bytes).toString('latin1'), /NODE-SECRET/, 'no node file in the archive');
    } finally {
      await fs.close();
    }
  });
});
