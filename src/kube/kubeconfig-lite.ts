// client-node's KubeConfig, without the 80 MiB. Its config.js imports the
// whole generated API (gen/index.js: every model and API class) only for
// makeApiClient, which Kompox never calls (its REST client is its own,
// ./client.ts). Loading that index took 0.7-1 s and 80 MiB of RSS in every
// command that talks to a cluster, more than the data path itself (issue 11:
// data commands stay within 100 MiB).
//
// This class is the part of KubeConfig that Kompox and client-node's
// WebSocketHandler, Exec and PortForward use, with client-node's own pieces
// (the kubeconfig entry parsers of config_types.js and the authenticators:
// exec plugins, token files, the azure/gcp/oidc auth providers), ported
// from client-node 1.4.0's config.js line for line where it matters
// (applyHTTPSOptions, applyAuthorizationHeader, createAgent). Clusters behind
// a proxy (proxy-url) get the full KubeConfig instead (see kubeconfig.ts):
// its proxy agents come from packages Kompox does not depend on itself.
import { readFileSync } from 'node:fs';
import type { Agent } from 'node:http';
import https from 'node:https';
import { isAbsolute, join } from 'node:path';
import type { Cluster, Context, User } from '@kubernetes/client-node';
import type { Authenticator } from '@kubernetes/client-node/dist/auth.js';
import { newClusters, newContexts, newUsers } from '@kubernetes/client-node/dist/config_types.js';
import { parse } from 'yaml';
import { http } from './node-http.js';

/** What Kompox's clients need from a kubeconfig: client-node's KubeConfig and KubeConfigLite both are one. */
export interface KubeAccess {
  getCurrentContext(): string;
  getCurrentCluster(): Cluster | null;
  getCurrentUser(): User | null;
  /** TLS material, an agent and the Authorization header (running credential plugins as needed). */
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
}

type Named<T> = { name: string } & T;

function findObject<T>(list: readonly Named<T>[], name: string | undefined): T | null {
  return list.find((o) => o.name === name) ?? null;
}

function fileOrData(file?: string, data?: string): Buffer | null {
  if (file) return readFileSync(file);
  if (data) return Buffer.from(data, 'base64');
  return null;
}

export class KubeConfigLite implements KubeAccess {
  private clusters: Cluster[] = [];
  private users: User[] = [];
  private contexts: Context[] = [];
  private currentContext = '';
  private authenticators?: Promise<Authenticator[]>;

  loadFromString(text: string): void {
    const obj = (parse(text) ?? {}) as Record<string, unknown>;
    if (typeof obj !== 'object' || Array.isArray(obj)) throw new Error('the kubeconfig is not a YAML mapping');
    this.clusters = newClusters(obj.clusters);
    this.contexts = newContexts(obj.contexts);
    this.users = newUsers(obj.users);
    this.currentContext = obj['current-context'] as string;
  }

  /** Relative certificate and key file names are relative to the kubeconfig's folder (as kubectl reads them). */
  makePathsAbsolute(root: string): void {
    const abs = (f: string) => (isAbsolute(f) ? f : join(root, f));
    for (const c of this.clusters) if (c.caFile) (c as { caFile?: string }).caFile = abs(c.caFile);
    for (const u of this.users) {
      if (u.certFile) (u as { certFile?: string }).certFile = abs(u.certFile);
      if (u.keyFile) (u as { keyFile?: string }).keyFile = abs(u.keyFile);
    }
  }

  getContexts(): Context[] {
    return this.contexts;
  }
  getCurrentContext(): string {
    return this.currentContext;
  }
  setCurrentContext(name: string): void {
    this.currentContext = name;
  }
  getContextObject(name: string): Context | null {
    return findObject(this.contexts, name);
  }
  getCluster(name: string): Cluster | null {
    return findObject(this.clusters, name);
  }
  getUser(name: string): User | null {
    return findObject(this.users, name);
  }
  getCurrentCluster(): Cluster | null {
    const ctx = this.getContextObject(this.currentContext);
    return ctx ? this.getCluster(ctx.cluster) : null;
  }
  getCurrentUser(): User | null {
    const ctx = this.getContextObject(this.currentContext);
    return ctx ? this.getUser(ctx.user) : null;
  }

  async applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    const user = this.getCurrentUser();
    const cluster = this.getCurrentCluster();
    if (user) {
      this.applyTls(opts, cluster, user);
      await this.applyAuthorization(opts, user);
    }
    if (user?.username) opts.auth = `${user.username}:${user.password}`;
    const agentOptions: https.AgentOptions = { ca: opts.ca, cert: opts.cert, key: opts.key, pfx: opts.pfx, passphrase: opts.passphrase, servername: opts.servername };
    if (opts.rejectUnauthorized !== undefined) agentOptions.rejectUnauthorized = opts.rejectUnauthorized;
    if (opts.timeout !== undefined) agentOptions.timeout = opts.timeout;
    opts.agent = this.createAgent(cluster, agentOptions);
  }

  private applyTls(opts: https.RequestOptions, cluster: Cluster | null, user: User): void {
    if (cluster?.skipTLSVerify) opts.rejectUnauthorized = false;
    if (cluster?.tlsServerName) opts.servername = cluster.tlsServerName;
    const ca = cluster ? fileOrData(cluster.caFile, cluster.caData) : null;
    if (ca) opts.ca = ca;
    const cert = fileOrData(user.certFile, user.certData);
    if (cert) opts.cert = cert;
    const key = fileOrData(user.keyFile, user.keyData);
    if (key) opts.key = key;
    if (user.impersonateUser != null) {
      opts.headers ??= {};
      (opts.headers as Record<string, string>)['Impersonate-User'] = user.impersonateUser;
    }
  }

  private async applyAuthorization(opts: https.RequestOptions, user: User): Promise<void> {
    opts.headers ??= {};
    // the authenticators (and their dependencies) load only for users that need one
    if (user.exec || user.authProvider) {
      const found = (await this.loadAuthenticators()).find((a) => a.isAuthProvider(user));
      if (found) await found.applyAuthentication(user, opts);
    }
    if (user.token) (opts.headers as Record<string, string>).Authorization = `Bearer ${user.token}`;
  }

  /** client-node's authenticators, in its order, once per kubeconfig (they cache tokens). */
  private loadAuthenticators(): Promise<Authenticator[]> {
    this.authenticators ??= (async () => {
      const [{ AzureAuth }, { GoogleCloudPlatformAuth }, { ExecAuth }, { FileAuth }, { OpenIDConnectAuth }] = await Promise.all([
        import('@kubernetes/client-node/dist/azure_auth.js'),
        import('@kubernetes/client-node/dist/gcp_auth.js'),
        import('@kubernetes/client-node/dist/exec_auth.js'),
        import('@kubernetes/client-node/dist/file_auth.js'),
        import('@kubernetes/client-node/dist/oidc_auth.js'),
      ]);
      return [new AzureAuth(), new GoogleCloudPlatformAuth(), new ExecAuth(), new FileAuth(), new OpenIDConnectAuth()];
    })();
    return this.authenticators;
  }

  private createAgent(cluster: Cluster | null, agentOptions: https.AgentOptions): Agent {
    if (cluster?.server?.startsWith('http:')) {
      if (cluster.skipTLSVerify) return new http.Agent(agentOptions);
      throw new Error('HTTP protocol is not allowed when skipTLSVerify is not set or false');
    }
    return new https.Agent(agentOptions);
  }
}
