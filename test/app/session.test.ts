// The composition root (src/app): which kubeconfig a cluster is reached with,
// the lazily loaded driver, and that the driver is always released.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KompoxError } from '../../src/domain/errors.js';
import type { ClusterContext } from '../../src/domain/model.js';
import { appContext, clusterContext } from '../../src/app/context.js';
import { openSession, withSession, type SessionOptions } from '../../src/app/session.js';
import { memoryRepositories } from '../../src/store/memory.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { rejectsWith } from '../support/assertions.js';

const baseCtx = (auth: ClusterContext['cluster']['auth'], settings: Record<string, string> = {}): ClusterContext => ({
  service: { name: 's' },
  provider: { name: 'p', service: 's', driver: 'k3s', settings },
  cluster: { name: 'c', provider: 'p', auth, ingress: { controller: 'traefik', namespace: 'traefik' }, settings: {} },
});

describe('composition root: sessions', () => {
  let fake: FakeKube;
  let dir: string;
  before(async () => {
    fake = await startFakeKube();
    dir = mkdtempSync(join(tmpdir(), 'kompox-session-'));
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await fake.close();
  });

  const opts = (over: Partial<SessionOptions> = {}): SessionOptions => ({ driverHost: { env: {} }, configDir: dir, kubeconfigHost: { env: {} }, ...over });

  test('type kubectl: a relative kubeconfig resolves against the config directory; the driver is not loaded for it', async () => {
    const sub = join(dir, 'proj');
    mkdirSync(sub, { recursive: true });
    copyFileSync(fake.kubeconfigPath, join(sub, 'kc.yaml'));
    const s = openSession(baseCtx({ type: 'kubectl', kubeconfig: 'kc.yaml' }), opts({ configDir: sub }));
    assert.deepEqual(await s.kubeconfig(), { path: join(sub, 'kc.yaml') });
    assert.equal((await s.kube()).server, fake.url);
    assert.strictEqual(await s.kube(), await s.kube(), 'one client per session');
    await rejectsWith(openSession(baseCtx({ type: 'kubectl', kubeconfig: 'missing.yaml' }), opts({ configDir: sub })).kube(), 'config', new RegExp(`${join(sub, 'missing.yaml')} does not exist`));
  });

  test('without cluster.auth.kubeconfig, the host\'s $KUBECONFIG is used like kubectl does (the host is given, never read from the process)', async () => {
    const s = openSession(baseCtx({ type: 'kubectl' }), opts({ kubeconfigHost: { env: { KUBECONFIG: `${fake.kubeconfigPath}:/nonexistent/other` } } }));
    assert.equal((await s.kube()).server, fake.url);
    const home = join(dir, 'home');
    mkdirSync(join(home, '.kube'), { recursive: true });
    copyFileSync(fake.kubeconfigPath, join(home, '.kube', 'config'));
    const viaHome = openSession(baseCtx({ type: 'kubectl', kubeconfig: '~/.kube/config' }), opts({ kubeconfigHost: { env: {}, homeDir: home } }));
    assert.deepEqual(await viaHome.kubeconfig(), { path: join(home, '.kube', 'config') });
  });

  test('a driver auth type: the driver supplies the kubeconfig text, which kube/ is handed', async () => {
    const k3sYaml = join(dir, 'k3s.yaml');
    writeFileSync(k3sYaml, fake.kubeconfig);
    const s = openSession(baseCtx({ type: 'k3s' }, { K3S_KUBECONFIG: k3sYaml }), opts());
    try {
      const src = await s.kubeconfig();
      assert.equal(src.text, fake.kubeconfig);
      assert.equal(src.path, undefined);
      assert.match(src.origin ?? '', /credentials from the k3s driver for cluster c/);
      assert.equal((await s.kube()).server, fake.url);
    } finally {
      await s.close();
    }
    await rejectsWith(openSession(baseCtx({ type: 'aks-admin' }), opts()).kubeconfig(), 'config', /cluster\.auth\.type "aks-admin" cannot be used with the k3s driver/);
  });

  test('a server session (no config directory) never reads a kubeconfig file a tenant names', async () => {
    await rejectsWith(openSession(baseCtx({ type: 'kubectl', kubeconfig: fake.kubeconfigPath }), opts({ configDir: undefined })).kube(), 'config', /cannot be used here/);
  });

  test('the driver loads on first use and is always closed, also when the work fails; its errors are not swallowed', async () => {
    let closed = 0;
    const err = await withSession(baseCtx({ type: 'kubectl' }), opts(), async (s) => {
      const d = await s.driver();
      assert.equal(d.name, 'k3s');
      assert.strictEqual(await s.driver(), d);
      const close = d.close!.bind(d);
      d.close = async () => {
        closed++;
        await close();
      };
      throw new Error('work failed');
    }).catch((e: unknown) => e);
    assert.match(String(err), /work failed/);
    assert.equal(closed, 1);
    const aks = { ...baseCtx({ type: 'kubectl' }), provider: { name: 'p', service: 's', driver: 'aks' as const, settings: {} } };
    await rejectsWith(withSession(aks, opts(), (s) => s.driver()), 'config', /the aks driver is not available in this version/);
    // the pure volume facts load for every driver, without the driver
    assert.equal((await openSession(aks, opts()).volumes()).volumeClass({ ...aks, app: { name: 'a', cluster: 'c', compose: '', ingress: {}, resources: {}, settings: {}, volumes: [] } }, { name: 'default', options: {} }).csiDriver, 'disk.csi.azure.com');
  });

  test('contexts come from repositories: app → cluster → provider → service, with a clear error for a missing link', async () => {
    const c = baseCtx({ type: 'kubectl' });
    const app = { name: 'a1', cluster: 'c', compose: '', ingress: {}, resources: {}, settings: {}, volumes: [] };
    const repos = memoryRepositories({ services: [c.service], providers: [c.provider], clusters: [c.cluster], apps: [app, { ...app, name: 'orphan', cluster: 'gone' }] });
    const ctx = await appContext(repos, 'a1');
    assert.strictEqual(ctx.app, app);
    assert.deepEqual(await clusterContext(repos, 'c'), c);
    await assert.rejects(appContext(repos, 'orphan'), (e: unknown) => e instanceof KompoxError && e.kind === 'notfound' && e.code === 'cluster.notfound' && /cluster "gone" does not exist/.test(e.message));
    await rejectsWith(appContext(repos, 'nope'), 'notfound', /app "nope" does not exist/);
  });
});
