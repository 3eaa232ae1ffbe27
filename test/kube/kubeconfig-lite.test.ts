// KubeConfigLite (src/kube/kubeconfig-lite.ts) must give requests what
// client-node's own KubeConfig gives them: the same TLS material, headers,
// basic auth and agent kind, for each way a kubeconfig can authenticate
// (a token, client certificates from data or from files relative to the
// kubeconfig, an exec credential plugin, a token file, basic auth,
// impersonation), and the same refusal of plain HTTP without
// insecure-skip-tls-verify. A cluster behind a proxy gets the full KubeConfig.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeConfigLite } from '../../src/kube/kubeconfig-lite.js';
import { loadKubeConfig } from '../../src/kube/kubeconfig.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown> | undefined): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster }],
    users: user ? [{ name: 'u', user }] : [],
    contexts: [{ name: 'ctx', context: { cluster: 'c', ...(user ? { user: 'u' } : {}) } }],
    'current-context': 'ctx',
  });
}

/** What a request made with these options would carry (the agent by its kind). */
function observable(opts: https.RequestOptions): Record<string, unknown> {
  const buf = (b: unknown) => (b === undefined ? undefined : Buffer.isBuffer(b) ? b.toString('utf8') : String(b));
  return {
    headers: opts.headers,
    auth: opts.auth,
    ca: buf(opts.ca),
    cert: buf(opts.cert),
    key: buf(opts.key),
    rejectUnauthorized: opts.rejectUnauthorized,
    servername: opts.servername,
    agent: opts.agent?.constructor.name,
    agentRejectUnauthorized: (opts.agent as { options?: { rejectUnauthorized?: boolean } } | undefined)?.options?.rejectUnauthorized,
    agentServername: (opts.agent as { options?: { servername?: string } } | undefined)?.options?.servername,
  };
}

async function both(text: string, dir?: string): Promise<{ lite: unknown; full: unknown }> {
  const run = async (kc: { loadFromString(t: string): void; makePathsAbsolute(d: string): void; applyToHTTPSOptions(o: https.RequestOptions): Promise<void> }) => {
    kc.loadFromString(text);
    if (dir) kc.makePathsAbsolute(dir);
    const opts: https.RequestOptions = { headers: {} };
    try {
      await kc.applyToHTTPSOptions(opts);
    } catch (e) {
      return { error: (e as Error).message };
    }
    return observable(opts);
  };
  return { lite: await run(new KubeConfigLite()), full: await run(new KubeConfig() as never) };
}

describe('KubeConfigLite', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kompox-kc-lite-'));
    await writeFile(join(dir, 'ca.crt'), 'CA FROM FILE');
    await writeFile(join(dir, 'client.crt'), 'CERT FROM FILE');
    await writeFile(join(dir, 'client.key'), 'KEY FROM FILE');
    await writeFile(join(dir, 'token'), 'token-from-file\n');
    const plugin = join(dir, 'cred-plugin');
    await writeFile(
      plugin,
      `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"exec-token-'"$KOMPOX_TEST_ARG"'"}}'\n`,
    );
    await chmod(plugin, 0o755);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const server = { server: 'https://10.0.0.1:6443' };
  const cases: Array<[string, () => string]> = [
    ['a bearer token and CA data', () => kubeconfig({ ...server, 'certificate-authority-data': b64('CA DATA') }, { token: 'tok' })],
    ['client certificate data', () => kubeconfig({ ...server, 'certificate-authority-data': b64('CA') }, { 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') })],
    ['files relative to the kubeconfig', () => kubeconfig({ ...server, 'certificate-authority': 'ca.crt' }, { 'client-certificate': 'client.crt', 'client-key': 'client.key' })],
    ['insecure-skip-tls-verify and tls-server-name', () => kubeconfig({ ...server, 'insecure-skip-tls-verify': true, 'tls-server-name': 'api.internal' }, { token: 't' })],
    ['basic auth and impersonation', () => kubeconfig(server, { username: 'admin', password: 'secret', as: 'someone' })],
    [
      'an exec credential plugin',
      () =>
        kubeconfig(server, {
          exec: { apiVersion: 'client.authentication.k8s.io/v1', command: join(dir, 'cred-plugin'), env: [{ name: 'KOMPOX_TEST_ARG', value: 'x1' }], interactiveMode: 'Never' },
        }),
    ],
    ['a token file auth provider', () => kubeconfig(server, { 'auth-provider': { name: 'file', config: { tokenFile: join(dir, 'token') } } })],
    ['no user', () => kubeconfig({ ...server, 'certificate-authority-data': b64('CA') }, undefined)],
    ['plain http with skip-tls-verify', () => kubeconfig({ server: 'http://127.0.0.1:8080', 'insecure-skip-tls-verify': true }, { token: 't' })],
    ['plain http without skip-tls-verify (refused)', () => kubeconfig({ server: 'http://127.0.0.1:8080' }, { token: 't' })],
  ];
  for (const [name, text] of cases) {
    test(`requests carry what client-node's KubeConfig gives them: ${name}`, async () => {
      const { lite, full } = await both(text(), dir);
      assert.deepEqual(lite, full);
    });
  }

  test('the cases above differ from each other (the comparison can fail)', async () => {
    const a = await both(cases[0]![1](), dir);
    const b = await both(cases[1]![1](), dir);
    assert.notDeepEqual(a.lite, b.lite);
  });

  test('loadKubeConfig gives the lite config, and client-node\'s own for a cluster behind a proxy', async () => {
    const plain = await loadKubeConfig({ text: kubeconfig(server, { token: 't' }), origin: 'test' });
    assert.ok(plain instanceof KubeConfigLite);
    const proxied = await loadKubeConfig({ text: kubeconfig({ ...server, 'proxy-url': 'http://proxy.local:3128' }, { token: 't' }), origin: 'test' });
    assert.ok(proxied instanceof KubeConfig);
    const opts: https.RequestOptions = { headers: {} };
    await proxied.applyToHTTPSOptions(opts);
    assert.equal(opts.agent?.constructor.name, 'HttpsProxyAgent');
    assert.equal(proxied.getCurrentContext(), 'ctx');
  });
});
