// `app status` on a quiesce's record, through the real binary: it goes by
// this machine's clock, and for each state says what starts the app again.
// The records are crafted on a fake API server without controllers, as a
// quiesce's stop (and its renewals) leaves them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nowRfc3339 } from '../../src/domain/names.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { kompoxops, writeProject } from './lifecycle-support.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let fake: FakeKube;
let dir: string;
let namespace = '';
let name = '';

before(async () => {
  fake = await startFakeKube({ controllers: false });
  dir = await mkdtemp(join(tmpdir(), 'kompox-status-quiesce-'));
  await writeProject(dir, { diskRoot: join(dir, 'disks'), snapshotRoot: join(dir, 'snapshots'), kubeconfig: fake.kubeconfigPath });
  const r = await kompoxops(dir, ['app', 'deploy', '--no-wait']);
  assert.equal(r.code, 0, r.err);
  const d = fake.store.list(fake.resource('apps/v1', 'Deployment')!).find((x) => String(x.metadata!.namespace).startsWith('k4x-web-'))!;
  namespace = String(d.metadata!.namespace);
  name = String(d.metadata!.name);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
  await fake.close();
});

/** The Deployment stopped by a quiesce whose record says `annotations` (its times by its writer's clock). */
function quiesced(annotations: Record<string, string>): void {
  const r = fake.resource('apps/v1', 'Deployment')!;
  const o = structuredClone(fake.store.get(r, namespace, name)) as Any;
  o.metadata.annotations = { ...Object.fromEntries(Object.entries(o.metadata.annotations ?? {}).filter(([k]) => !k.startsWith('kompox.dev/quiesced-'))), 'kompox.dev/quiesced-replicas': '1', ...annotations };
  o.spec.replicas = 0;
  fake.store.put(r, o);
}

async function status(): Promise<{ lines: string[]; json: Any }> {
  const t = await kompoxops(dir, ['app', 'status']);
  assert.equal(t.code, 0, t.err);
  const j = await kompoxops(dir, ['app', 'status', '-o', 'json']);
  assert.equal(j.code, 0, j.err);
  const lines = t.out.split('\n');
  const at = lines.findIndex((l) => l.startsWith('stopped:'));
  assert.ok(at >= 0, t.out);
  return { lines: lines.slice(at, at + 2), json: (JSON.parse(j.out) as { quiesced: Any[] }).quiesced[0] };
}

test('app status on a quiesce record dated ahead of this clock says running by its own clock, and that a deploy or the next quiesce goes over it after a watch', async () => {
  const ahead = new Date(Date.now() + 600_000);
  quiesced({ 'kompox.dev/quiesced-since': nowRfc3339(ahead), 'kompox.dev/quiesced-by': 'snapshot ahead', 'kompox.dev/quiesced-renewed': ahead.toISOString() });
  let s = await status();
  assert.match(s.lines[0]!, new RegExp(`^stopped: {4}${name} by the quiesced snapshot ahead since \\S+ \\(replicas 1 to give back\\): running by its own clock \\(renewed at ${ahead.toISOString()}, (59\\d|600)s ahead of this machine's clock\\)$`));
  assert.equal(s.lines[1], '            if it was interrupted, `kompoxops app deploy` starts the app again once it watched its record unchanged for 60s (so does the next --quiesce)');
  assert.ok(s.json.live === true && s.json.aheadS >= 590 && s.json.aheadS <= 600, JSON.stringify(s.json));

  // renewed just now by this clock: running, and nothing goes over it (no advice)
  quiesced({ 'kompox.dev/quiesced-since': nowRfc3339(), 'kompox.dev/quiesced-by': 'snapshot running', 'kompox.dev/quiesced-renewed': new Date().toISOString() });
  s = await status();
  assert.match(s.lines[0]!, /: running \(renewed \d+s ago\)$/);
  assert.doesNotMatch(s.lines[1]!, /kompoxops/);
  assert.equal(s.json.aheadS, undefined);

  // interrupted by this clock: the advice as before
  quiesced({ 'kompox.dev/quiesced-since': '2026-01-02T03:04:05Z', 'kompox.dev/quiesced-by': 'snapshot dead' });
  s = await status();
  assert.match(s.lines[0]!, /: interrupted \(not renewed since 2026-01-02T03:04:05Z\)$/);
  assert.equal(s.lines[1], '            `kompoxops app deploy` starts the app again (so does the next --quiesce)');
});
