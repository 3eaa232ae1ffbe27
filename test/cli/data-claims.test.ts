// What docs/disks-and-snapshots.md tells users about snapshots, through the
// real CLI (the K3s node is local, the cluster a fake without controllers:
// the app's pod is put in place by hand): a stored snapshot whose archive
// fails its checks is said as that snapshot being damaged (code
// snapshot.damaged) by every command reading it, export as stored included,
// and nothing of it is left; the note that a snapshot of a running app is not
// consistent is given for the disk the app writes, not for another one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { APP_SELECTOR_LABEL } from '../../src/domain/names.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { runCli, type CliResult } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { ONE_VOLUME_COMPOSE, k3sOpsYaml } from '../support/ops-yaml.js';

const RUNNING_NOTE = /snapshots copy the disk file by file while the app keeps writing/;

describe('snapshots as docs/disks-and-snapshots.md says (real CLI, local node)', { concurrency: 1 /* one workspace */ }, () => {
  let fake: FakeKube;
  let dir = '';
  let ns = '';

  const run = (args: string[]): Promise<CliResult> => runCli(args, { cwd: dir, timeoutMs: 60_000 });
  async function ok(args: string[]): Promise<CliResult> {
    const r = await run(args);
    assert.equal(r.code, 0, `kompoxops ${args.join(' ')}: ${r.stderr}`);
    return r;
  }

  before(async () => {
    fake = await startFakeKube({ controllers: false });
    dir = mkdtempSync(join(tmpdir(), 'kompox-claims-'));
    for (const d of ['disks', 'snapshots']) mkdirSync(join(dir, d));
    copyFileSync(fake.kubeconfigPath, join(dir, 'kubeconfig'));
    writeFileSync(join(dir, 'kompoxops.yml'), k3sOpsYaml(dir, { app: 'claims', domain: 'example.com', clusterSettings: { ACME_EMAIL: 'admin@example.com' }, volumes: [{ name: 'default', size: '1Gi' }] }));
    writeFileSync(join(dir, 'compose.yml'), ONE_VOLUME_COMPOSE);
    const cur = JSON.parse((await ok(['disk', 'create', '-N', 'cur', '-o', 'json'])).stdout) as { id: string };
    writeFileSync(join(cur.id, 'a.txt'), 'current data\n'.repeat(1000));
    await ok(['disk', 'attach', '-N', 'cur']);
    await ok(['disk', 'create', '-N', 'spare']);
    ns = basename(dirname(dirname(dirname(cur.id))));
    // the app's pod runs (as a kubelet would report it)
    fake.setPod({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'claims-1', namespace: ns, labels: { [APP_SELECTOR_LABEL]: ns } }, spec: {}, status: { phase: 'Running' } });
  });

  after(async () => {
    await fake?.close();
    if (dir) await new LocalHostFs().rm(dir);
  });

  test('a snapshot of the running app\'s disk notes that it is not consistent; one of a disk the app does not use (--disk spare) does not', async () => {
    const current = await ok(['snapshot', 'create', '-N', 'of-cur']);
    assert.match(current.stderr, RUNNING_NOTE);
    const named = await ok(['snapshot', 'create', '-N', 'of-cur-named', '--disk', 'cur']);
    assert.match(named.stderr, RUNNING_NOTE);
    const spare = await ok(['snapshot', 'create', '-N', 'of-spare', '--disk', 'spare']);
    assert.doesNotMatch(spare.stderr, RUNNING_NOTE, spare.stderr);
  });

  test('a damaged stored snapshot: export as stored (-O FILE, -o json) fails with snapshot.damaged, exit 1, and leaves no file; restore says the same', async () => {
    const snap = JSON.parse((await ok(['snapshot', 'create', '-N', 'rotten', '-o', 'json'])).stdout) as { id: string };
    // a byte flipped near the end of the stored archive (a bad sector)
    const bytes = readFileSync(snap.id);
    bytes[bytes.length - 30]! ^= 1;
    writeFileSync(snap.id, bytes);
    const before = readdirSync(dir).sort();
    const r = await run(['snapshot', 'export', '-N', 'rotten', '-O', 'rotten.tar.zst', '-o', 'json']);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    const { error } = JSON.parse(r.stderr) as { error: { code: string; kind: string; message: string; hint: string } };
    assert.deepEqual([error.code, error.kind], ['snapshot.damaged', 'integrity'], r.stderr);
    assert.match(error.message, /^snapshot rotten \(.*\) is damaged: .*no longer matches its recorded SHA-256/);
    assert.match(error.hint, /restore another one/);
    assert.equal(existsSync(join(dir, 'rotten.tar.zst')), false, 'no archive left');
    assert.deepEqual(readdirSync(dir).sort(), before, 'nothing left beside it (no .sha256, no temp file)');
    const restore = await run(['snapshot', 'restore', '-N', 'rotten', '--disk-name', 'from-rotten', '-o', 'json']);
    assert.equal(restore.code, 1, restore.stderr);
    assert.equal((JSON.parse(restore.stderr) as { error: { code: string } }).error.code, 'snapshot.damaged', restore.stderr);
  });
});
