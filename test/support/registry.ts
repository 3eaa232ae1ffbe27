// A container registry on 127.0.0.1 for tests (real HTTP): the parts of the
// distribution API a pull starts with — HEAD/GET of a manifest, the Bearer
// challenge, and a token service that gives anonymous tokens (which open
// public repositories only) and, with the right Basic credentials, tokens for
// private ones. Like Docker Hub, an anonymous token for a private repository
// is issued but does not open it.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestRegistry {
  /** host:port, as image references name it */
  host: string;
  /** Requests seen (method path), for asserting what was asked. */
  requests: string[];
  close(): Promise<void>;
}

export interface TestRegistryOptions {
  /** Repositories anyone may pull. */
  public?: string[];
  /** Repositories that need these credentials. */
  private?: string[];
  username?: string;
  password?: string;
  /** The token service refuses anonymous requests (401) instead of issuing a token that opens nothing. */
  refuseAnonymousTokens?: boolean;
}

export async function startTestRegistry(o: TestRegistryOptions = {}): Promise<TestRegistry> {
  const requests: string[] = [];
  const tokens = new Map<string, Set<string>>(); // token → repositories it opens
  let seq = 0;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(`${req.method} ${url.pathname}`);
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    if (url.pathname === '/token') {
      const scope = url.searchParams.get('scope') ?? '';
      const repo = /^repository:([^:]+):pull$/.exec(scope)?.[1] ?? '';
      const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const creds = basic ? Buffer.from(basic, 'base64').toString('utf8') : undefined;
      if (!creds && o.refuseAnonymousTokens) {
        res.writeHead(401, { 'content-type': 'application/json' });
        return res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      }
      const opens = new Set<string>();
      if ((o.public ?? []).includes(repo)) opens.add(repo);
      if (creds && creds === `${o.username}:${o.password}` && (o.private ?? []).includes(repo)) opens.add(repo);
      const token = `t${++seq}`;
      tokens.set(token, opens);
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ token, access_token: token }));
    }
    const m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
    if (!m) {
      res.writeHead(404);
      return res.end();
    }
    const repo = m[1]!;
    const known = (o.public ?? []).includes(repo) || (o.private ?? []).includes(repo);
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (bearer && tokens.get(bearer)?.has(repo)) {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json', 'docker-content-digest': `sha256:${'0'.repeat(64)}` });
      return res.end(req.method === 'HEAD' ? undefined : '{}');
    }
    if (!bearer || !known) {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="test-registry",scope="repository:${repo}:pull"`, 'content-type': 'application/json' });
      return res.end(req.method === 'HEAD' ? undefined : '{"errors":[{"code":"UNAUTHORIZED"}]}');
    }
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end(req.method === 'HEAD' ? undefined : '{"errors":[{"code":"UNAUTHORIZED"}]}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}
