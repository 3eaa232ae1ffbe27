// `app status` on each volume-binding state (issue 9 item 6), through the
// real binary: the claim's and the volume's phase, whether they point at each
// other, and for Pending, Lost, misbound and Terminating what to do (the CLI's
// advice). The states are crafted on a fake API server without controllers
// (nothing would move them on), the way the PV controller, another tenant or a
// deletion leaves them on a real cluster; a deploy then repairs the
// reservation the way the PV controller needs it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bindingAdvice } from '../../src/cli/advice.js';
import { connectKubeconfig } from '../../src/kube/index.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { kompoxops, writeProject } from './lifecycle-support.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let fake: FakeKube;
let dir: string;
let claimName = '';
let pvName = '';
let namespace = '';

before(async () => {
  // the admission plugin adds the protection finalizers; no controller binds, releases or removes anything
  fake = await startFakeKube({ controllers: false, storageProtection: true });
  dir = await mkdtemp(join(tmpdir(), 'kompox-status-bindings-'));
  await writeProject(dir, { diskRoot: join(dir, 'disks'), snapshotRoot: join(dir, 'snapshots'), kubeconfig: fake.kubeconfigPath });
  const r = await kompoxops(dir, ['app', 'deploy', '--no-wait']);
  assert.equal(r.code, 0, r.err);
  const claim = fake.store.list(fake.resource('v1', 'PersistentVolumeClaim')!).find((c) => String(c.metadata!.namespace).startsWith('k4x-web-'))!;
  namespace = String(claim.metadata!.namespace);
  claimName = String(claim.metadata!.name);
  pvName = String((claim.spec as Any).volumeName);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
  await fake.close();
});

/** Changes a stored object as a controller (or another client) would. */
function edit(kind: 'PersistentVolume' | 'PersistentVolumeClaim', fn: (o: Any) => void): void {
  const r = fake.resource('v1', kind)!;
  const o = structuredClone(fake.store.get(r, kind === 'PersistentVolume' ? undefined : namespace, kind === 'PersistentVolume' ? pvName : claimName)) as Any;
  fn(o);
  fake.store.put(r, o);
}
const claimUid = () => String(fake.store.get(fake.resource('v1', 'PersistentVolumeClaim')!, namespace, claimName)!.metadata!.uid);
const claimRef = () => (fake.store.get(fake.resource('v1', 'PersistentVolume')!, undefined, pvName)!.spec as Any).claimRef as Any;

async function status(): Promise<{ text: string; json: Any }> {
  const t = await kompoxops(dir, ['app', 'status']);
  assert.equal(t.code, 0, t.err);
  const j = await kompoxops(dir, ['app', 'status', '-o', 'json']);
  assert.equal(j.code, 0, j.err);
  const [b] = (JSON.parse(j.out) as { volumeBindings: Any[] }).volumeBindings;
  return { text: t.out, json: b };
}

test('app status on each binding state: Pending, bound, Lost (deploy repairs the reservation), misbound to another namespace, Terminating', async () => {
  // Pending: applied (the volume's claimRef already names the claim with its uid), no PV controller has bound them yet
  let s = await status();
  assert.match(s.text, new RegExp(`^binding: {4}volume default: claim ${claimName} Pending → PersistentVolume ${pvName} \\S+, pointing at each other\\n {2}pending: claim ${claimName} is Pending \\(not bound yet\\)\\. The PV controller binds it within seconds: run \`kompoxops app status\` again\\.`, 'm'));
  assert.deepEqual(s.json.problems.map((p: Any) => [p.code, p.remedy]), [['binding.pending', 'wait']]);
  assert.match(s.json.problems[0].hint, /^The PV controller binds it within seconds/, 'the JSON keeps the front-end-neutral hint');

  // bound: what the PV controller writes (the claim's uid into claimRef, both phases Bound)
  edit('PersistentVolume', (o) => {
    o.spec.claimRef = { ...o.spec.claimRef, uid: claimUid() };
    o.status = { phase: 'Bound' };
  });
  edit('PersistentVolumeClaim', (o) => (o.status = { phase: 'Bound', accessModes: ['ReadWriteOnce'], capacity: o.spec.resources.requests }));
  s = await status();
  assert.match(s.text, new RegExp(`^binding: {4}volume default: claim ${claimName} Bound → PersistentVolume ${pvName} Bound, pointing at each other\\n(?! )`, 'm'));
  assert.equal(s.json.matched, true);
  assert.deepEqual(s.json.problems, []);

  // Lost: the claimRef lost the uid (a forced apply of {namespace, name} on 1.22–1.24); the PV controller marks the claim Lost
  edit('PersistentVolume', (o) => {
    o.spec.claimRef = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace, name: claimName };
    o.status = { phase: 'Available' };
  });
  edit('PersistentVolumeClaim', (o) => (o.status = { phase: 'Lost' }));
  s = await status();
  assert.match(s.text, new RegExp(`^ {2}lost: claim ${claimName} is Lost: PersistentVolume ${pvName} no longer carries the claim's uid in its claimRef; a new pod of the app cannot start\\. Run \`kompoxops app deploy\`: it re-applies`, 'm'));
  assert.match(s.text, /NOT pointing at each other/);
  assert.deepEqual(s.json.problems.map((p: Any) => [p.code, p.remedy]), [['binding.lost', 'deploy']]);
  // the advice holds: a deploy writes the reservation back with the claim's uid (what the PV controller needs to bind them again)
  const d = await kompoxops(dir, ['app', 'deploy', '--no-wait']);
  assert.equal(d.code, 0, d.err);
  assert.deepEqual({ namespace: claimRef().namespace, name: claimRef().name, uid: claimRef().uid }, { namespace, name: claimName, uid: claimUid() });

  // misbound: the volume is bound to another namespace's claim (its data exposed there)
  edit('PersistentVolume', (o) => {
    o.spec.claimRef = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: 'other', name: 'steal', uid: 'uid-steal' };
    o.status = { phase: 'Bound' };
  });
  edit('PersistentVolumeClaim', (o) => (o.status = { phase: 'Bound' }));
  s = await status();
  assert.match(s.text, new RegExp(`^ {2}misbound: claim ${claimName} is Bound, but PersistentVolume ${pvName} is bound to claim other/steal, not to this one\\. The volume holds this app's disk but another claim \\(other/steal\\) is bound to it: its data may be exposed there\\. .*\`kompoxops app deploy\` reserves the volume for this claim again`, 'm'));
  assert.deepEqual(s.json.problems.map((p: Any) => [p.code, p.remedy]), [['binding.misbound', 'administrator']]);

  // Terminating: the claim deleted while pvc-protection holds it (no controller manager removes the finalizer here)
  edit('PersistentVolume', (o) => {
    o.spec.claimRef = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace, name: claimName, uid: claimUid() };
  });
  const kube = await connectKubeconfig({ path: fake.kubeconfigPath });
  assert.equal(await kube.delete({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace, name: claimName }), true);
  s = await status();
  assert.match(s.text, new RegExp(`^binding: {4}volume default: claim ${claimName} Terminating → PersistentVolume ${pvName} Bound, pointing at each other\\n {2}terminating: claim ${claimName} is being deleted \\(since \\S+; finalizers: kubernetes\\.io/pvc-protection\\)\\. It goes once no pod uses the volume \\(the disk is kept\\); \`kompoxops app deploy\` waits for that`, 'm'));
  assert.deepEqual(s.json.problems.map((p: Any) => [p.code, p.remedy]), [['binding.terminating', 'wait']]);
  assert.equal(s.json.claim.terminating, true);
});

test('the CLI advice for each remedy names kompoxops commands; an unknown remedy keeps the use case hint', () => {
  assert.match(bindingAdvice({ code: 'binding.lost', remedy: 'deploy', hint: 'h' }), /^Run `kompoxops app deploy`/);
  assert.match(bindingAdvice({ code: 'binding.released', remedy: 'deploy', hint: 'h' }), /`kompoxops disk list`/);
  assert.match(bindingAdvice({ code: 'binding.pending', remedy: 'wait', hint: 'h' }), /`kompoxops app status` again/);
  assert.match(bindingAdvice({ code: 'binding.terminating', remedy: 'wait', hint: 'h' }), /`kompoxops app deploy` waits/);
  assert.match(bindingAdvice({ code: 'binding.misbound', remedy: 'administrator', hint: 'Ask them.' }), /^Ask them\. `kompoxops app deploy` reserves/);
  assert.equal(bindingAdvice({ code: 'binding.lost', remedy: 'other' as never, hint: 'as is' }), 'as is');
});
