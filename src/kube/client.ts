// The KubeClient adapter. Authentication (tokens, client certificates, exec
// credential plugins) comes from @kubernetes/client-node's KubeConfig; REST
// calls are plain HTTP so objects travel exactly as the API server sends them
// (client-node's typed serializer would turn timestamps into Dates and drop
// fields of kinds it does not know, e.g. CRDs). Exec and port-forward use
// client-node's WebSocket implementations.
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import type { KubeAccess } from './kubeconfig-lite.js';
import { KompoxError } from '../domain/errors.js';
import {
  refString,
  toRef,
  type AccessCheck,
  type ApplyOptions,
  type DeleteOptions,
  type ExecOutcome,
  type ExecStreams,
  type KubeClient,
  type KubeObject,
  type ListOptions,
  type LogOptions,
  type ObjectRef,
} from '../domain/ports/kube.js';
import { KubeApiError, apiError, isNetworkError, networkError, unknownFields, type KubeStatus } from './errors.js';
import { KeptAliveAgent } from './keep-alive.js';
import { credentialError } from './kubeconfig.js';
import { http } from './node-http.js';

interface ResourceInfo {
  plural: string;
  namespaced: boolean;
}

interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: string;
  contentType?: string;
  /** For messages: `apply Deployment ns/name`. */
  what: string;
  /** Statuses returned to the caller instead of thrown. */
  allow?: number[];
}

export const FIELD_MANAGER = 'kompox';

export class HttpKubeClient implements KubeClient {
  readonly server: string;
  private readonly discovery = new Map<string, Promise<Map<string, ResourceInfo>>>();
  private readonly agent = new KeptAliveAgent();

  constructor(
    private readonly kc: KubeAccess,
    private readonly where: string,
    private readonly timeoutMs = 30_000,
  ) {
    this.server = kc.getCurrentCluster()!.server.replace(/\/+$/, '');
  }

  get kubeConfig(): KubeAccess {
    return this.kc;
  }

  /**
   * The kubeconfig as client-node's WebSocket classes take it: they call
   * only getCurrentCluster and applyToHTTPSOptions (client-node 1.4.0's
   * web-socket-handler.js), which KubeConfigLite has.
   */
  private get wsConfig(): KubeConfig {
    return this.kc as KubeConfig;
  }

  private async requestOptions(): Promise<https.RequestOptions> {
    const opts: https.RequestOptions = { headers: {} };
    try {
      await this.kc.applyToHTTPSOptions(opts);
    } catch (e) {
      throw credentialError(e, this.kc, this.where);
    }
    return opts;
  }

  /** One HTTP exchange; resolves with the response (body unread) for statuses < 400 or listed in `allow`. */
  private async send(method: string, path: string, o: RequestOptions, timeout = true): Promise<IncomingMessage> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(o.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const base = await this.requestOptions();
    const headers: Record<string, string> = { ...(base.headers as Record<string, string>), accept: 'application/json' };
    if (o.body !== undefined) {
      headers['content-type'] = o.contentType ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(o.body));
    }
    const isHttps = url.protocol === 'https:';
    const reqOpts: https.RequestOptions = {
      ...base,
      method,
      headers,
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port || (isHttps ? 443 : 80),
      path: url.pathname + url.search,
    };
    if (!isHttps) delete reqOpts.agent;
    else this.agent.use(reqOpts);
    const exchange = () => new Promise<IncomingMessage>((resolve, reject) => {
      const req = (isHttps ? https : http).request(reqOpts, resolve);
      req.on('error', (e: NodeJS.ErrnoException) => reject(Object.assign(e, { reusedSocket: req.reusedSocket })));
      if (timeout) {
        req.setTimeout(this.timeoutMs, () => {
          const err = Object.assign(new Error(`no answer within ${Math.round(this.timeoutMs / 1000)}s`), { code: 'KOMPOX_TIMEOUT' });
          req.destroy(err);
        });
      }
      if (o.body !== undefined) req.write(o.body);
      req.end();
    });
    const res = await exchange()
      .catch((e: NodeJS.ErrnoException & { reusedSocket?: boolean }) => {
        // a kept-alive connection the server closed just as it was reused: once more on a new one (nothing was processed)
        if (e.reusedSocket && e.code === 'ECONNRESET') return exchange();
        throw e;
      })
      .catch((e: unknown) => {
        if (isNetworkError(e)) throw networkError(e, this.server);
        throw e;
      });
    const code = res.statusCode ?? 0;
    if (code >= 400 && !(o.allow ?? []).includes(code)) {
      const text = await readAll(res);
      let status: KubeStatus;
      try {
        status = JSON.parse(text) as KubeStatus;
        if (typeof status !== 'object' || status === null) throw new Error('not a Status');
      } catch {
        status = { message: text.trim().slice(0, 500) || http.STATUS_CODES[code], code };
      }
      const err = new KubeApiError(code, status, method, path);
      // a field the server does not know: say which Kubernetes it runs (best effort)
      const serverVersion = unknownFields(err).length && path !== '/version' ? await this.version().then((v) => v.gitVersion, () => undefined) : undefined;
      throw apiError(err, this.server, o.what, { serverVersion });
    }
    return res;
  }

  private async json<T>(method: string, path: string, o: RequestOptions): Promise<{ code: number; body: T }> {
    const res = await this.send(method, path, o);
    const text = await readAll(res);
    let body: T;
    try {
      body = (text ? JSON.parse(text) : undefined) as T;
    } catch {
      throw new KompoxError('unavailable', `${o.what}: the server at ${this.server} did not answer with JSON (is this a Kubernetes API server?)`);
    }
    return { code: res.statusCode ?? 0, body };
  }

  private groupVersionPath(apiVersion: string): string {
    return apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  }

  /** Discovery of one group/version, cached: kind → plural + namespaced. */
  private async resource(apiVersion: string, kind: string): Promise<ResourceInfo> {
    let p = this.discovery.get(apiVersion);
    if (!p) {
      p = this.json<{ resources?: { name: string; kind: string; namespaced: boolean }[] }>('GET', this.groupVersionPath(apiVersion), {
        what: `discovery of ${apiVersion}`,
        allow: [404],
      }).then(({ code, body }) => {
        const m = new Map<string, ResourceInfo>();
        if (code === 404) return m;
        for (const r of body?.resources ?? []) if (!r.name.includes('/')) m.set(r.kind, { plural: r.name, namespaced: r.namespaced });
        return m;
      });
      this.discovery.set(apiVersion, p);
      p.catch(() => this.discovery.delete(apiVersion));
    }
    const info = (await p).get(kind);
    if (!info) {
      throw new KompoxError('notfound', `the Kubernetes API server at ${this.server} does not serve ${kind} (${apiVersion})`, {
        code: 'kube.kind.missing',
        details: { kind, apiVersion },
        hint: 'The resource type is missing on this cluster: install its CRD or controller (for Traefik: deploy the cluster ingress) or use a newer Kubernetes version.',
      });
    }
    return info;
  }

  private async path(ref: ObjectRef, withName = true): Promise<string> {
    const r = await this.resource(ref.apiVersion, ref.kind);
    let p = this.groupVersionPath(ref.apiVersion);
    if (r.namespaced) {
      if (!ref.namespace) throw new KompoxError('internal', `${ref.kind} ${ref.name} needs a namespace`);
      p += `/namespaces/${encodeURIComponent(ref.namespace)}`;
    }
    p += `/${r.plural}`;
    if (withName) p += `/${encodeURIComponent(ref.name)}`;
    return p;
  }

  async isNamespaced(apiVersion: string, kind: string): Promise<boolean> {
    return (await this.resource(apiVersion, kind)).namespaced;
  }

  async apply(obj: KubeObject, opts: ApplyOptions = {}): Promise<KubeObject> {
    const ref = toRef(obj);
    const config = applyConfiguration(obj);
    const body = opts.ifVersion === undefined ? config : { ...config, metadata: { ...config.metadata, resourceVersion: opts.ifVersion } };
    const { body: out } = await this.json<KubeObject>('PATCH', await this.path(ref), {
      query: { fieldManager: opts.fieldManager ?? FIELD_MANAGER, force: opts.force ?? true, dryRun: opts.dryRun ? 'All' : undefined },
      body: JSON.stringify(body),
      contentType: 'application/apply-patch+yaml',
      what: `${opts.dryRun ? 'dry-run apply' : 'apply'} of ${refString(ref, ' ')}`,
    });
    return out;
  }

  async accessReview(check: AccessCheck): Promise<{ allowed: boolean; resource: string; namespace?: string } | undefined> {
    const { ref, verb } = check;
    const r = await this.resource(ref.apiVersion, ref.kind);
    const group = ref.apiVersion.includes('/') ? ref.apiVersion.split('/')[0]! : '';
    // RBAC sees a request on a Namespace object as one inside that namespace (a RoleBinding there can allow it)
    const namespace = ref.kind === 'Namespace' && group === '' ? ref.name : r.namespaced ? ref.namespace : undefined;
    const resourceAttributes = { verb, group, resource: r.plural, name: ref.name, ...(namespace ? { namespace } : {}) };
    try {
      const { body } = await this.json<{ status?: { allowed?: boolean; denied?: boolean } }>('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
        body: JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes } }),
        what: `access review (${verb} ${r.plural})`,
      });
      if (typeof body?.status?.allowed !== 'boolean') return undefined;
      return { allowed: body.status.allowed, resource: group ? `${r.plural}.${group}` : r.plural, ...(namespace ? { namespace } : {}) };
    } catch (e) {
      // no review API, or reviews themselves not allowed: the server cannot tell in advance
      if (e instanceof KompoxError && (e.kind === 'auth' || e.kind === 'notfound' || e.kind === 'usage' || e.kind === 'config')) return undefined;
      throw e;
    }
  }

  async get(ref: ObjectRef): Promise<KubeObject | undefined> {
    const { code, body } = await this.json<KubeObject>('GET', await this.path(ref), { what: `get ${refString(ref, ' ')}`, allow: [404] });
    if (code === 404) return undefined;
    return body;
  }

  async list(apiVersion: string, kind: string, opts: ListOptions = {}): Promise<KubeObject[]> {
    const r = await this.resource(apiVersion, kind);
    let p = this.groupVersionPath(apiVersion);
    if (r.namespaced && opts.namespace) p += `/namespaces/${encodeURIComponent(opts.namespace)}`;
    p += `/${r.plural}`;
    const items: KubeObject[] = [];
    let cont: string | undefined;
    do {
      const { body } = await this.json<{ items?: KubeObject[]; metadata?: { continue?: string } }>('GET', p, {
        query: { labelSelector: opts.labelSelector, limit: 500, continue: cont },
        what: `list ${kind}${opts.namespace ? ` in namespace ${opts.namespace}` : ''}`,
      });
      // built-in list items come without apiVersion/kind
      for (const it of body.items ?? []) items.push({ ...it, apiVersion, kind });
      cont = body.metadata?.continue || undefined;
    } while (cont);
    return items;
  }

  async delete(ref: ObjectRef, opts: DeleteOptions = {}): Promise<boolean> {
    const policy = opts.propagationPolicy ?? 'Background';
    const grace = opts.gracePeriodSeconds;
    const { code } = await this.json('DELETE', await this.path(ref), {
      query: { propagationPolicy: policy, dryRun: opts.dryRun ? 'All' : undefined, gracePeriodSeconds: grace },
      body: JSON.stringify({
        kind: 'DeleteOptions',
        apiVersion: 'v1',
        propagationPolicy: policy,
        ...(opts.dryRun ? { dryRun: ['All'] } : {}),
        ...(grace !== undefined ? { gracePeriodSeconds: grace } : {}),
      }),
      what: `delete ${refString(ref, ' ')}`,
      allow: [404],
    });
    return code !== 404;
  }

  async mergePatch(ref: ObjectRef, patch: Record<string, unknown>): Promise<KubeObject> {
    const { body } = await this.json<KubeObject>('PATCH', await this.path(ref), {
      query: { fieldManager: FIELD_MANAGER },
      body: JSON.stringify(patch),
      contentType: 'application/merge-patch+json',
      what: `patch ${refString(ref, ' ')}`,
    });
    return body;
  }

  async version(): Promise<{ gitVersion: string; major?: string; minor?: string }> {
    const { body } = await this.json<{ gitVersion: string; major?: string; minor?: string }>('GET', '/version', { what: 'version check' });
    return body;
  }

  async logs(namespace: string, pod: string, opts: LogOptions, out: NodeJS.WritableStream): Promise<void> {
    const res = await this.send(
      'GET',
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/log`,
      {
        query: { container: opts.container, follow: opts.follow || undefined, tailLines: opts.tailLines, sinceSeconds: opts.sinceSeconds },
        what: `logs of pod ${namespace}/${pod}`,
      },
      !opts.follow,
    );
    // Paced by the reader (a slow pager holds the stream, not this process's memory); a reader that went away
    // (`| head`, `| grep -m1`) ends a follow instead of leaving it to run for good, writing nowhere.
    await new Promise<void>((resolve, reject) => {
      const drained = () => res.resume();
      const finish = (e?: Error) => {
        out.removeListener('error', gone);
        out.removeListener('close', gone);
        out.removeListener('drain', drained);
        if (e) reject(e);
        else resolve();
      };
      const gone = () => {
        res.destroy();
        finish();
      };
      out.once('error', gone);
      out.once('close', gone);
      out.on('drain', drained);
      res.on('data', (c: Buffer) => {
        if (!out.write(c)) res.pause();
      });
      res.on('end', () => finish());
      res.on('error', (e: Error) => finish(e));
    });
  }

  async exec(
    namespace: string,
    pod: string,
    container: string | undefined,
    command: string[],
    io: { stdin?: NodeJS.ReadableStream; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream; tty?: boolean },
  ): Promise<number> {
    // the module alone, not the package index (which loads the whole generated API)
    const { Exec } = await import('@kubernetes/client-node/dist/exec.js');
    const exec = new Exec(this.wsConfig);
    return new Promise<number>((resolve, reject) => {
      let code: number | undefined;
      // a Failure that is not the command's exit status: the command could not run at all
      let notRun: string | undefined;
      exec
        .exec(
          namespace,
          pod,
          container ?? '',
          command,
          io.stdout as import('node:stream').Writable,
          io.stderr as import('node:stream').Writable,
          (io.stdin ?? null) as import('node:stream').Readable | null,
          Boolean(io.tty),
          (status) => {
            const st = status as KubeStatus;
            code = exitCodeOf(st);
            if (st.status === 'Failure' && !st.details?.causes?.some((c) => c.reason === 'ExitCode')) notRun = st.message || st.reason || 'no reason given';
          },
        )
        .then((ws) => {
          // The reader of stdout went away (`| head`, `| grep -m1`): the exec is closed, as kubectl's would end
          // by SIGPIPE, instead of running on (a `tail -f` for good) writing nowhere; the command in the pod
          // loses its streams. Its exit status is then unknown: 141 (128 + SIGPIPE), what a shell reports for
          // a command a closed pipe ended.
          let readerGone = false;
          const gone = () => {
            readerGone = true;
            ws.close();
          };
          io.stdout.once('error', gone);
          io.stdout.once('close', gone);
          ws.on('close', () => {
            io.stdout.removeListener('error', gone);
            io.stdout.removeListener('close', gone);
            if (notRun !== undefined) reject(execNotRun(notRun, `${namespace}/${pod}`, container, command));
            else resolve(readerGone && code === undefined ? 141 : (code ?? 0));
          });
          ws.on('error', (e: Error) => reject(e));
        })
        .catch((e: unknown) => reject(this.wsError(e, `exec in pod ${namespace}/${pod}`)));
    });
  }

  async execStream(namespace: string, pod: string, container: string | undefined, command: string[], io: ExecStreams, opts: { signal?: AbortSignal } = {}): Promise<ExecOutcome> {
    const { execStream } = await import('./exec-stream.js');
    return execStream({ kc: this.wsConfig, server: this.server, namespace, pod, container, command, wsError: (e, what) => this.wsError(e, what) }, io, opts);
  }

  async forwardConnection(namespace: string, pod: string, remotePort: number, socket: net.Socket): Promise<void> {
    const { PortForward } = await import('@kubernetes/client-node/dist/portforward.js');
    const pf = new PortForward(this.wsConfig);
    let ws;
    try {
      ws = await pf.portForward(namespace, pod, [remotePort], socket, null, socket);
    } catch (e) {
      throw this.wsError(e, `port-forward to pod ${namespace}/${pod}:${remotePort}`);
    }
    if (typeof ws === 'function') return;
    const conn = ws;
    socket.on('close', () => conn.close());
    conn.on('close', () => socket.end());
  }

  async portForward(namespace: string, pod: string, localPort: number, remotePort: number): Promise<{ port: number; close(): Promise<void> }> {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      this.forwardConnection(namespace, pod, remotePort, socket).catch(() => socket.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          e.code === 'EADDRINUSE'
            ? new KompoxError('usage', `local port ${localPort} is already in use`, { hint: 'Choose another local port: -p LOCAL:REMOTE.' })
            : e,
        ),
      );
      server.listen(localPort, '127.0.0.1', resolve);
    });
    return {
      port: (server.address() as net.AddressInfo).port,
      close: async () => {
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }

  private wsError(e: unknown, what: string): Error {
    if (e instanceof KompoxError) return e;
    if (isNetworkError(e)) return networkError(e, this.server);
    const msg = (e as Error)?.message ?? String(e);
    const m = /Unexpected server response: (\d+)/.exec(msg);
    if (m) {
      const code = Number(m[1]);
      return apiError(new KubeApiError(code, { message: `HTTP ${code} for ${what}`, code }, 'GET', what), this.server, what);
    }
    return new KompoxError('unavailable', `${what} failed: ${msg}`, { cause: e });
  }
}

/** The object as an apply configuration: no server-owned metadata (apply rejects managedFields; resourceVersion would make it conditional). */
export function applyConfiguration(obj: KubeObject): KubeObject {
  const { resourceVersion: _rv, uid: _uid, generation: _g, creationTimestamp: _ct, managedFields: _mf, deletionTimestamp: _dt, ...meta } = obj.metadata;
  const { status: _status, ...rest } = obj;
  return { ...rest, metadata: meta } as KubeObject;
}

/**
 * An exec whose command could not run (the kubelet's or the runtime's
 * Failure, with no exit status): its message is all the user gets, as
 * kubectl prints it; a silent exit 1 left them guessing.
 */
function execNotRun(message: string, pod: string, container: string | undefined, command: string[]): KompoxError {
  const missing = /executable file not found|no such file or directory/i.test(message);
  return new KompoxError('unavailable', `cannot run ${command[0] ?? 'the command'} in pod ${pod}${container ? ` (container ${container})` : ''}: ${message}`, {
    code: 'kube.exec.failed',
    details: { pod, ...(container ? { container } : {}), command },
    hint: missing
      ? "The command is not in the container's image: run one it has (many images have sh but not bash)."
      : 'Check that the pod is running and the container has started (app status), then run it again.',
  });
}

/** V1Status of an exec: Success → 0, NonZeroExitCode → the code from details.causes. */
export function exitCodeOf(status: KubeStatus): number {
  if (status.status === 'Success') return 0;
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  if (cause?.message !== undefined && /^\d+$/.test(cause.message)) return Number(cause.message);
  return 1;
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}
