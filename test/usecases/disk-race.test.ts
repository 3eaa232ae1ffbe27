// Two kompoxops processes on one app volume at once (two operators, or a
// cron backup while someone works by hand), through the real binary: the K3s
// driver on temp dirs and the fake API server, whose `hold` hook stops one
// process at a chosen request while the other runs, so each race hits its
// window every time.
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { STACK_LINE } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { appNamespace } from '../../src/domain/names.js';
import { hostFs, kompoxops, namespaceOf, writeProject, type Run } from './lifecycle-support.js';

interface Listed {
  name: string;
  id: string;
  current: boolean;
  previous: boolean;
}

async function setUp(t: { after(fn: () => Promise<void>): void }) {
  const fake: FakeKube = await startFakeKube({ controllers: false });
  const dir = await mkdtemp(join(tmpdir(), 'kompox-disk-race-'));
  t.after(async () => {
    await fake.close();
    await hostFs.rm(dir);
  });
  await writeProject(dir, { diskRoot: join(dir, 'disks'), snapshotRoot: join(dir, 'snapshots'), kubeconfig: fake.kubeconfigPath });
  const ns = appNamespace({ service: { name: 'ops' }, provider: { name: 'k3s1', driver: 'k3s', settings: {} }, cluster: { name: 'cluster-a' }, app: { name: 'web', volumes: [] } } as never);
  const run = (args: string[]) => kompoxops(dir, args);
  const ok = (r: Run) => assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.out}\nstderr: ${r.err}`);
  const disks = async () => JSON.parse((await run(['disk', 'list', '-o', 'json'])).out) as Listed[];
  ok(await run(['disk', 'create', '-N', 'a']));
  ok(await run(['disk', 'attach', '-N', 'a']));
  ok(await run(['disk', 'create', '-N', 'b']));
  const record = () => namespaceOf(fake, ns)!.annotations;
  return { fake, dir, ns, run, ok, disks, record };
}

function refused(r: Run, code: RegExp, what: string): void {
  assert.equal(r.code, 1, `${what}: exit ${r.code}\nstderr: ${r.err}`);
  assert.match(r.err, /^error: /, what);
  assert.match(r.err, code, what);
  assert.doesNotMatch(r.err, STACK_LINE, what);
}

test('disk delete while the same disk is attached: the current disk is never deleted (delete held after its checks)', async (t) => {
  const s = await setUp(t);
  // the delete has read the record (b not current) and waits at its PersistentVolume check
  const held = s.fake.hold((m, p) => m === 'GET' && p === '/api/v1/persistentvolumes');
  const del = s.run(['disk', 'delete', '-N', 'b']);
  await held.arrived;
  const att = await s.run(['disk', 'attach', '-N', 'b']);
  s.ok(att);
  held.release();
  const d = await del;
  refused(d, /disk "b" is the current disk of volume default; refusing to delete it/, 'the delete');
  const list = await s.disks();
  const b = list.find((x) => x.name === 'b');
  assert.ok(b, `disk b still exists: ${JSON.stringify(list)}`);
  assert.equal(b.current, true);
  assert.equal(s.record()['kompox.dev/disk-current-id'], b.id);
});

test('disk attach while the same disk is deleted: the record never names a deleted disk (attach held before its write)', async (t) => {
  const s = await setUp(t);
  const [a, b] = await s.disks();
  // the attach has found b and read the record; it waits at its write of the record
  const held = s.fake.hold((m, p) => m === 'PATCH' && p === `/api/v1/namespaces/${s.ns}`);
  const att = s.run(['disk', 'attach', '-N', 'b']);
  await held.arrived;
  s.ok(await s.run(['disk', 'delete', '-N', 'b']));
  held.release();
  const r = await att;
  refused(r, /disk "b" was deleted while it was being attached/, 'the attach');
  assert.match(r.err, /the current disk is still a\b/);
  const list = await s.disks();
  assert.deepEqual(list.map((x) => x.name), ['a']);
  assert.equal(s.record()['kompox.dev/disk-current-id'], a!.id, 'the record names a again');
  assert.notEqual(s.record()['kompox.dev/disk-previous-id'], b!.id);
});
