// Logs, exec (WebSocket, exit code from the status channel) and port-forward
// through the adapter against the fake API server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import type { KubeClient } from '../../src/kube/index.js';
import { KompoxError } from '../../src/domain/errors.js';
import type { FakeKube } from '../support/fake-kube/index.js';
import { startFakeCluster } from '../support/kube.js';

function collect(): { stream: PassThrough; text(): string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

describe('pod streams', () => {
  let fake: FakeKube;
  let kube: KubeClient;
  before(async () => {
    ({ fake, kube } = await startFakeCluster());
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ns1' } });
    fake.setPod({
      metadata: { name: 'app-0', namespace: 'ns1', labels: { a: 'b' } },
      spec: { containers: [{ name: 'web', image: 'nginx' }, { name: 'db', image: 'postgres' }] },
      status: { phase: 'Running' },
    });
    fake.setLogs('ns1', 'app-0', 'web', 'l1\nl2\nl3\n');
  });
  after(async () => fake.close());

  test('logs with tail and container', async () => {
    const out = collect();
    await kube.logs('ns1', 'app-0', { container: 'web', tailLines: 2 }, out.stream);
    assert.equal(out.text(), 'l2\nl3\n');
  });

  test('logs without a container of a two-container pod: the server says to choose', async () => {
    await assert.rejects(kube.logs('ns1', 'app-0', {}, collect().stream), (e: unknown) => {
      assert.ok(e instanceof KompoxError);
      assert.match(e.message, /a container name must be specified for pod app-0, choose one of: \[web db\]/);
      return true;
    });
  });

  test('exec passes stdout through and returns the remote exit code', async () => {
    // client-node ends the streams it is given when the command ends: fresh ones per call
    const out = collect();
    assert.equal(await kube.exec('ns1', 'app-0', 'web', ['echo', 'hi', 'there'], { stdout: out.stream, stderr: collect().stream }), 0);
    assert.equal(out.text(), 'hi there\n');
    assert.equal(await kube.exec('ns1', 'app-0', 'web', ['exit', '7'], { stdout: collect().stream, stderr: collect().stream }), 7);
    const err = collect();
    assert.equal(await kube.exec('ns1', 'app-0', 'web', ['nosuch'], { stdout: collect().stream, stderr: err.stream }), 127);
    assert.match(err.text(), /executable file not found/);
  });

  test('exec with stdin', async () => {
    const out = collect();
    const code = await kube.exec('ns1', 'app-0', 'web', ['cat'], { stdin: Readable.from([Buffer.from('piped\n')]), stdout: out.stream, stderr: collect().stream });
    assert.equal(code, 0);
    assert.equal(out.text(), 'piped\n');
  });

  test('port-forward carries bytes to the pod port and back', async () => {
    // a "pod port": an upper-casing TCP server
    const target = net.createServer((s) => s.on('data', (d) => s.write(d.toString().toUpperCase())));
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    fake.setPortTarget('ns1', 'app-0', 8080, (target.address() as net.AddressInfo).port);
    const fwd = await kube.portForward('ns1', 'app-0', 0, 8080);
    try {
      const reply = await new Promise<string>((resolve, reject) => {
        const c = net.connect(fwd.port, '127.0.0.1', () => c.write('hello'));
        c.on('data', (d) => {
          resolve(d.toString());
          c.destroy();
        });
        c.on('error', reject);
      });
      assert.equal(reply, 'HELLO');
    } finally {
      await fwd.close();
      target.close();
    }
  });
});
