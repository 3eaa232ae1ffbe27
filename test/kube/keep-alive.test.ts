// The adapter's REST requests share one kept-alive connection (src/kube/keep-alive.ts):
// against the TLS fake API server many requests make one TCP connection;
// the agent is swapped only when the TLS material changes and proxy agents
// are left alone; a kept-alive connection the server drops as it is reused
// costs a retry on a new one, not an error.
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { test } from 'node:test';
import { connectKubeconfig } from '../../src/kube/index.js';
import { KeptAliveAgent } from '../../src/kube/keep-alive.js';
import { startFakeKube } from '../support/fake-kube/index.js';

test('many requests over TLS make one connection', async (t) => {
  const fake = await startFakeKube({ tls: true, controllers: false });
  t.after(() => fake.close());
  const kube = await connectKubeconfig({ path: fake.kubeconfigPath });
  await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ns1' } });
  await kube.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c1', namespace: 'ns1' }, data: { a: 'b' } });
  for (let i = 0; i < 5; i++) assert.equal((await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', name: 'c1', namespace: 'ns1' }))?.metadata.name, 'c1');
  assert.equal((await kube.list('v1', 'ConfigMap', { namespace: 'ns1' })).length, 1);
  assert.equal(await kube.delete({ apiVersion: 'v1', kind: 'ConfigMap', name: 'c1', namespace: 'ns1' }), true);
  assert.ok(fake.requests.length >= 10, `${fake.requests.length} requests`);
  assert.equal(fake.connections, 1, `one connection for ${fake.requests.length} requests`);
});

test('the kept agent follows the TLS material; proxy agents stay as made', () => {
  const cache = new KeptAliveAgent();
  const fresh = (cert: string) => ({ agent: new https.Agent({ ca: 'CA', cert, key: 'K' }) }) as https.RequestOptions;
  const a = fresh('C1');
  const madeA = a.agent as https.Agent;
  cache.use(a);
  assert.notEqual(a.agent, madeA, 'replaced');
  assert.equal((a.agent as unknown as { keepAlive: boolean }).keepAlive, true);
  assert.equal((a.agent as unknown as { options: { cert: string } }).options.cert, 'C1');
  const b = fresh('C1');
  cache.use(b);
  assert.equal(b.agent, a.agent, 'the same TLS material: the same agent');
  const c = fresh('C2');
  cache.use(c);
  assert.notEqual(c.agent, a.agent, 'another client certificate: another agent');
  assert.equal((c.agent as unknown as { options: { cert: string } }).options.cert, 'C2');
  class ProxyAgent extends https.Agent {}
  const proxied = new ProxyAgent();
  const d: https.RequestOptions = { agent: proxied };
  cache.use(d);
  assert.equal(d.agent, proxied);
  cache.close();
});

test('a kept-alive connection dropped by the server as it is reused: the request goes again on a new one', async (t) => {
  let requests = 0;
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    requests++;
    // the second request arrives on the kept connection: drop it unanswered, as a server closing an idle connection does
    if (requests === 2) {
      req.socket.destroy();
      return;
    }
    res.setHeader('content-type', 'application/json');
    const body =
      req.url === '/version'
        ? { gitVersion: 'v1.31.0', major: '1', minor: '31' }
        : req.url === '/api/v1'
          ? { kind: 'APIResourceList', groupVersion: 'v1', resources: [{ name: 'namespaces', namespaced: false, kind: 'Namespace', verbs: ['get'] }] }
          : { kind: 'Namespace', apiVersion: 'v1', metadata: { name: 'ns1' } };
    res.end(JSON.stringify(body));
  });
  server.on('connection', (s) => sockets.add(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  t.after(() => sockets.forEach((s) => s.destroy()));
  const port = (server.address() as net.AddressInfo).port;
  const text = `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:${port}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n`;
  const kube = await connectKubeconfig({ text }); // GET /version: request 1
  const ns = await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: 'ns1' });
  assert.equal(ns?.metadata.name, 'ns1');
  assert.equal(requests, 4, 'the dropped request (discovery) was sent again');
  assert.equal(sockets.size, 2, 'on a new connection');
});
