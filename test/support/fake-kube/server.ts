// An in-process fake Kubernetes API server over real HTTP on 127.0.0.1. It
// speaks the real wire protocol (discovery, REST verbs, server-side apply
// with the real merge rules, merge patch, Status errors, pods/log, WebSocket
// exec and portforward) and, like a real cluster, runs the controllers
// Kompox depends on (controllers/): the PV binder, storage protection,
// garbage collection, Deployment and ReplicaSet, a scheduler, kubelets on
// its nodes, pod GC and the namespace controller. `controllers: false` models a
// cluster without them: nothing appears for a Deployment unless a test puts
// it there.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { WebSocketServer, type WebSocket } from 'ws';
import { MaskTally, type MaskCounts } from './ws-masks.js';
import { BUILTIN_RESOURCES, apiResourceList, groupVersion, type ResourceInfo } from './resources.js';
import { FakeStore, type Obj } from './store.js';
import { SelectorError, fieldValue, matches, parseLabelSelector } from './selectors.js';
import { ConflictError, FieldManager, isObj, mergePatch } from './ssa.js';
import { invalidMessage, validateObject, validateUpdate } from './validation.js';
import { applyServerDefaults } from './defaults.js';
import { UnservedFieldError, parseServerVersion, servedFields, type FeatureGates } from './server-version.js';
import { MergeSchema } from './schema.js';
import { FakeClock, type ClockOptions } from './clock.js';
import { ApiCore, randomSuffix, type PropagationPolicy } from './apiserver.js';
import { ControllerManager } from './controllers/manager.js';
import { PersistentVolumeController } from './controllers/persistentvolume.js';
import { ProtectionController } from './controllers/protection.js';
import { GarbageCollector } from './controllers/garbagecollector.js';
import { DeploymentController } from './controllers/deployment.js';
import { ReplicaSetController } from './controllers/replicaset.js';
import { Scheduler } from './controllers/scheduler.js';
import { Kubelet, type BehaviourHook, type ContainerBehaviour } from './controllers/kubelet.js';
import type { PrivateRegistry } from './controllers/kubelet-config.js';
import { NamespaceController } from './controllers/namespace.js';
import { PodGarbageCollector } from './controllers/podgc.js';
import { nodeObject, type FakeNodeSpec } from './nodes.js';
import { defaultHostImage, effectiveCaps, hostExecSupport, spawnHostExec, volumeDirectory, type CsiVolumeHost, type HostExecPlan, type HostExecSupport, type Toolbox } from './host-exec.js';

export interface ForbidRule {
  verb: string; // get, list, create, patch, delete, ...
  resource: string; // plural, e.g. 'namespaces'
  namespace?: string;
}

export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType?: string;
}

export interface ExecRequest {
  namespace: string;
  pod: string;
  container?: string;
  command: string[];
  stdin: string;
}
export interface ExecResult {
  stdout?: string;
  stderr?: string;
  exitCode: number;
}

export interface FakeKube {
  url: string;
  kubeconfigPath: string;
  /** The kubeconfig text (token auth, context `fake`). */
  kubeconfig: string;
  store: FakeStore;
  /** Every API request in order (discovery included). */
  requests: RequestRecord[];
  /** The masking keys of the WebSocket frames clients sent (exec, port-forward), counted since the start. */
  wsMasks: Readonly<MaskCounts>;
  /** `expired`: every request gets 401 Unauthorized (credentials no longer valid). */
  setAuth(mode: 'ok' | 'expired'): void;
  /** Requests matching the rule get 403 Forbidden with the real RBAC message. */
  forbid(rule: ForbidRule): void;
  /** Removes every forbid rule. */
  allowAll(): void;
  /**
   * Test hook: the next request matching (method, path) waits before it is
   * served until `release()`; `arrived` resolves when it came. For races
   * between processes: one command held at a chosen request while another runs.
   */
  hold(match: (method: string, path: string) => boolean): { arrived: Promise<void>; release(): void };
  addResource(r: ResourceInfo): void;
  resource(apiVersion: string, kind: string): ResourceInfo | undefined;
  /** Test hook: stores a pod as a controller/kubelet would (namespace, uid, status as given). */
  setPod(pod: Obj): Obj;
  /** Test hook: sets an object's status as its controller would (no resourceVersion check); returns the stored object. */
  setStatus(ref: { apiVersion: string; kind: string; name: string; namespace?: string }, status: Record<string, unknown>): Obj;
  /** Test hook: records an Event about an object. */
  addEvent(namespace: string, ev: { involvedObject: { kind: string; name: string; namespace?: string }; reason: string; message: string; type?: string }): Obj;
  /** Test hook: the log text of a pod's container. */
  setLogs(namespace: string, pod: string, container: string, text: string): void;
  /** Test hook: lines a pod's container logs now (sent at once to the `follow` streams open on it). */
  appendLogs(namespace: string, pod: string, container: string, text: string): void;
  /** Test hook: how many `follow` log streams of a pod's container are open (a client that went away closes its own). */
  logFollowers(namespace: string, pod: string, container: string): number;
  /**
   * Test hook: what `exec` does in pods whose commands the fake does not run
   * for real (default: `echo ARGS`, `exit N`, `cat` echoes stdin). Pods of
   * host-runnable images (hostImages) with mappable volumes run the real
   * command instead (host-exec.ts).
   */
  onExec(handler: (req: ExecRequest) => ExecResult | Promise<ExecResult>): void;
  /** A CSI driver's volumes as directories here, with attach/detach (the kubelet mounts them; exec sees them). */
  registerCsiDriver(name: string, host: CsiVolumeHost): void;
  /** How exec'd commands of host-run pods are isolated here (namespace, or the path-mapping fallback and why). */
  readonly hostExec: HostExecSupport;
  /** TCP connections accepted so far (a client that keeps its connection alive makes one for many requests). */
  readonly connections: number;
  /** Every command run for real (pod, container, command, exit code), in order. */
  hostExecs: { namespace: string; pod: string; container: string; command: string[]; exitCode?: number }[];
  /**
   * Test hook: the connections of the commands run for real that match (and are still running) break
   * without an exit status, as a network failure or an API server restart breaks them; returns how many.
   */
  cutExecs(match: (x: FakeKube['hostExecs'][number]) => boolean): number;
  /**
   * Test hook: the commands run for real that match (and are still running) are SIGKILLed, their
   * container going on (the kernel's OOM killer taking the biggest process in it); returns how many.
   */
  killExecs(match: (x: FakeKube['hostExecs'][number]) => boolean): number;
  /** Test hook: a TCP port on 127.0.0.1 that stands for `pod:port` (portforward); default: echo. */
  setPortTarget(namespace: string, pod: string, port: number, localPort: number): void;
  /** With `terminatingNamespaces`: finish deleting a Terminating namespace (what the namespace controller does). */
  finalizeNamespace(name: string): void;
  /** The fake's clock (`advance` in manual mode). */
  clock: FakeClock;
  /** Adds a node (name, zone, labels, taints) to the cluster. */
  addNode(node: FakeNodeSpec): Obj;
  /** Test hook: how containers behave (image pull, exit code, readiness, SIGTERM); hooks added later win per field. Default: pull ok, keep running (init containers exit 0), ready, exit promptly on SIGTERM. */
  containerBehaviour(hook: BehaviourHook): void;
  /** Test hook: every container of `image` behaves so. */
  setImageBehaviour(image: string, behaviour: ContainerBehaviour): void;
  /** Makes a registry private (see FakeKubeOptions.privateRegistries). */
  addPrivateRegistry(registry: PrivateRegistry): void;
  /** The environment the kubelet gave a started container (envFrom, then env, $(VAR) expanded); undefined before it started. */
  containerEnv(namespace: string, pod: string, container: string): Record<string, string> | undefined;
  /** Resolves once the controllers have nothing left to do right now (timers such as grace periods still pending). */
  settle(): Promise<void>;
  /** Errors thrown inside controllers (expected: none). */
  controllerErrors: Error[];
  close(): Promise<void>;
}

const STATUS_REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'AlreadyExists',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
};

class HttpError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly reason = STATUS_REASONS[code] ?? 'InternalError',
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

function statusBody(code: number, message: string, reason: string, details?: Record<string, unknown>): Record<string, unknown> {
  const s: Record<string, unknown> = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  if (details) s.details = details;
  return s;
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function qualified(r: ResourceInfo): string {
  return r.group ? `${r.plural}.${r.group}` : r.plural;
}

/**
 * Optimistic concurrency, as the API server does it: an update or patch that
 * carries metadata.resourceVersion applies only to that version of the object;
 * otherwise 409 Conflict (reason Conflict), and nothing is written.
 */
function checkPrecondition(r: ResourceInfo, name: string, live: Obj, body: Obj): void {
  const rv = (body.metadata as Obj | undefined)?.resourceVersion;
  if (rv !== undefined && rv !== null && rv !== live.metadata!.resourceVersion) {
    throw new HttpError(409, `Operation cannot be fulfilled on ${qualified(r)} "${name}": the object has been modified; please apply your changes to the latest version and try again`, 'Conflict', {
      name,
      group: r.group || undefined,
      kind: r.plural,
    });
  }
}

function notFound(r: ResourceInfo, name: string): HttpError {
  return new HttpError(404, `${qualified(r)} "${name}" not found`, 'NotFound', { name, group: r.group || undefined, kind: r.plural });
}

export interface FakeKubeOptions {
  token?: string;
  /**
   * The controllers a real cluster runs (default true): the PV binder,
   * pvc/pv-protection, garbage collection, Deployment and ReplicaSet, the
   * scheduler, a kubelet per node, the namespace controller. false: none run,
   * as on a cluster without controller manager, scheduler and kubelets; tests
   * put pods and status in place themselves (setPod, setStatus); deleted pods
   * and namespaces (with their content) vanish at once.
   */
  controllers?: boolean;
  /**
   * A deleted namespace stays Terminating (nothing new can be created in it)
   * until the test calls `finalizeNamespace`: the namespace controller is off.
   * Default false.
   */
  terminatingNamespaces?: boolean;
  /**
   * StorageObjectInUseProtection admission: PVCs get the finalizer
   * `kubernetes.io/pvc-protection` and PVs `kubernetes.io/pv-protection` when
   * created; a delete then only marks them Terminating until the protection
   * controller (or, without controllers, a client) removes the finalizer.
   * Default: on when controllers run, off without them (deleted PVCs/PVs vanish at once).
   */
  storageProtection?: boolean;
  /**
   * The Kubernetes version to be: what `/version` reports, whose apply merge rules are used (schema-markers.json)
   * and what it does with fields it does not serve (server-version.ts). Default v1.31.0.
   */
  version?: string;
  /** The cluster's nodes. Default: one node `node1` in zone `zone-a`. */
  nodes?: FakeNodeSpec[];
  /** Time of the controllers: scaled (default, 10 ms per simulated second) or manual (`clock.advance`). */
  clock?: ClockOptions;
  /**
   * Serve HTTPS with a fresh self-signed certificate for 127.0.0.1 (made with
   * the openssl CLI; throws when it is missing). The kubeconfig then carries
   * certificate-authority-data instead of insecure-skip-tls-verify, like a real cluster's.
   */
  tls?: boolean;
  /** Feature gates of that version (1.28: SidecarContainers, off by default). */
  featureGates?: FeatureGates;
  /**
   * Which images the kubelet runs exec'd commands of for real, and with which
   * tools (host-exec.ts); default: busybox images, with busybox's applets
   * when busybox is installed here. Return undefined for the handler (onExec).
   */
  hostImages?: (image: string) => Toolbox | undefined;
  /** Registries that refuse anonymous pulls: their images pull only with matching credentials in the pod's imagePullSecrets (else ErrImagePull). */
  privateRegistries?: PrivateRegistry[];
}

function selfSignedCert(dir: string): { cert: string; key: string } {
  const certPath = join(dir, 'server.crt');
  const keyPath = join(dir, 'server.key');
  const r = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyPath, '-out', certPath, '-subj', '/CN=fake-kube', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-addext', 'basicConstraints=critical,CA:TRUE', '-days', '2'],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`openssl is needed for a TLS fake API server: ${r.error?.message ?? r.stderr}`);
  return { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
}

export async function startFakeKube(opts: FakeKubeOptions = {}): Promise<FakeKube> {
  const token = opts.token ?? 'fake-token';
  const controllersOn = opts.controllers ?? true;
  const serverVersion = opts.version ?? 'v1.31.0';
  const kubeVersion = parseServerVersion(serverVersion);
  /** The version's rules for fields it does not serve (server-version.ts), as Status errors. */
  const served = (r: ResourceInfo, obj: Obj, how: Parameters<typeof servedFields>[4]) => {
    try {
      servedFields(r, obj, kubeVersion, opts.featureGates ?? {}, how);
    } catch (e) {
      if (e instanceof UnservedFieldError) throw new HttpError(e.code, e.message, e.code === 500 ? 'InternalError' : 'BadRequest');
      throw e;
    }
  };
  const resources: ResourceInfo[] = [...BUILTIN_RESOURCES];
  const clock = new FakeClock(opts.clock);
  const store = new FakeStore(() => clock.rfc3339());
  const fields = new FieldManager(new MergeSchema(serverVersion));
  const api = new ApiCore(store, resources, clock, fields, {
    storageProtection: opts.storageProtection ?? controllersOn,
    gracefulPods: controllersOn,
    namespaceDeletion: opts.terminatingNamespaces ? 'manual' : controllersOn ? 'controller' : 'instant',
  });
  const behaviourHooks: BehaviourHook[] = [];
  const csiDrivers = new Map<string, CsiVolumeHost>();
  const privateRegistries: PrivateRegistry[] = [...(opts.privateRegistries ?? [])];
  // Built even without controllers (then it runs no pods) so that its hooks answer alike.
  // a container that ends takes the commands exec'd in it along (a pod's deletion included): they are killed here
  const kubelet = new Kubelet(api, () => behaviourHooks, csiDrivers, () => privateRegistries, (namespace, pod, container) => {
    for (const [record, kill] of hostExecKills) if (record.namespace === namespace && record.pod === pod && record.container === container) kill();
  });
  const manager = controllersOn
    ? new ControllerManager(api, [
        ...(opts.terminatingNamespaces ? [] : [new NamespaceController(api)]),
        new GarbageCollector(api),
        new DeploymentController(api),
        new ReplicaSetController(api),
        new Scheduler(api),
        kubelet,
        new PodGarbageCollector(api),
        new PersistentVolumeController(api),
        new ProtectionController(api),
      ])
    : undefined;
  const nodeResource = resources.find((r) => r.kind === 'Node')!;
  for (const n of opts.nodes ?? [{ name: 'node1', zone: 'zone-a' }]) store.put(nodeResource, nodeObject(n, serverVersion));
  const requests: RequestRecord[] = [];
  const forbidden: ForbidRule[] = [];
  const logs = new Map<string, string>();
  // open `follow=true` log streams by namespace/pod/container: the API server keeps them open, sending what the
  // container logs next, until the client goes away (or the container ends: not modelled, the tests end them)
  const logFollowers = new Map<string, Set<http.ServerResponse>>();
  const portTargets = new Map<string, number>();
  let authMode: 'ok' | 'expired' = 'ok';
  let execHandler: (req: ExecRequest) => ExecResult | Promise<ExecResult> = defaultExec;

  const findByPlural = (group: string, version: string, plural: string) =>
    resources.find((r) => r.group === group && r.version === version && r.plural === plural);
  const findByKind = (apiVersion: string, kind: string) => {
    const [g, v] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
    return resources.find((r) => r.group === g && r.version === v && r.kind === kind);
  };
  const nsResource = findByPlural('', 'v1', 'namespaces')!;

  function checkAuth(req: http.IncomingMessage): void {
    if (authMode === 'expired' || req.headers.authorization !== `Bearer ${token}`) {
      throw new HttpError(401, 'Unauthorized', 'Unauthorized');
    }
  }

  function checkRbac(verb: string, r: ResourceInfo, namespace: string | undefined, name?: string): void {
    const hit = forbidden.find((f) => f.verb === verb && f.resource === r.plural && (f.namespace === undefined || f.namespace === namespace));
    if (!hit) return;
    const what = name ? `${qualified(r)} "${name}"` : qualified(r);
    const scope = r.namespaced && namespace ? `in the namespace "${namespace}"` : 'at the cluster scope';
    throw new HttpError(
      403,
      `${what} is forbidden: User "kompox-test" cannot ${verb} resource "${r.plural}" in API group "${r.group}" ${scope}`,
      'Forbidden',
      { name, group: r.group || undefined, kind: r.plural },
    );
  }

  function requireNamespace(r: ResourceInfo, namespace: string | undefined): void {
    if (!r.namespaced) return;
    const ns = namespace ? store.get(nsResource, undefined, namespace) : undefined;
    if (!ns) {
      throw new HttpError(404, `namespaces "${namespace}" not found`, 'NotFound', { name: namespace, kind: 'namespaces' });
    }
    if (ns.metadata?.deletionTimestamp) {
      throw new HttpError(403, `${qualified(r)} is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`, 'Forbidden', {
        kind: r.plural,
        causes: [{ reason: 'NamespaceTerminating', message: `namespace ${namespace} is being terminated`, field: 'metadata.namespace' }],
      });
    }
  }

  function validate(r: ResourceInfo, obj: Obj, urlName: string | undefined, namespace: string | undefined): void {
    const gv = groupVersion(r);
    if (obj.apiVersion !== gv || obj.kind !== r.kind) {
      throw new HttpError(400, `the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${gv}) or kind (${String(obj.kind)}) does not match ${r.kind}`);
    }
    const meta = isObj(obj.metadata) ? obj.metadata : {};
    const name = meta.name;
    if (urlName !== undefined && name !== undefined && name !== urlName) {
      throw new HttpError(400, `the name of the object (${String(name)}) does not match the name on the URL (${urlName})`);
    }
    if (r.namespaced && meta.namespace !== undefined && meta.namespace !== namespace) {
      throw new HttpError(400, 'the namespace of the provided object does not match the namespace sent on the request');
    }
    const n = String(name ?? urlName ?? '');
    if (!n) {
      throw new HttpError(422, `${r.kind} "" is invalid: metadata.name: Required value: name or generateName is required`, 'Invalid', {
        kind: r.kind,
        causes: [{ reason: 'FieldValueRequired', message: 'Required value: name or generateName is required', field: 'metadata.name' }],
      });
    }
    if (n.length > 253 || !DNS_SUBDOMAIN.test(n) || (r.kind === 'Namespace' && (n.length > 63 || n.includes('.')))) {
      const msg = `Invalid value: "${n}": a lowercase RFC 1123 ${r.kind === 'Namespace' ? 'label' : 'subdomain'} must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`;
      throw new HttpError(422, `${r.kind} "${n}" is invalid: metadata.name: ${msg}`, 'Invalid', {
        name: n,
        group: r.group || undefined,
        kind: r.kind,
        causes: [{ reason: 'FieldValueInvalid', message: msg, field: 'metadata.name' }],
      });
    }
    for (const m of ['labels', 'annotations']) {
      const map = meta[m];
      if (map === undefined) continue;
      if (!isObj(map) || Object.values(map).some((v) => typeof v !== 'string')) {
        throw new HttpError(400, `${r.kind} in version "${r.version}" cannot be handled as a ${r.kind}: json: cannot unmarshal into Go struct field ObjectMeta.metadata.${m} of type string`);
      }
    }
  }

  /** The real server's semantic validation (422 Invalid), on what would be stored; `live` adds the update rules. */
  function checkValid(r: ResourceInfo, next: Obj, live: Obj | undefined): void {
    const causes = [...validateObject(r, next), ...(live ? validateUpdate(r, next, live) : [])];
    if (!causes.length) return;
    const name = String(next.metadata?.name ?? '');
    throw new HttpError(422, invalidMessage(r.kind, name, causes), 'Invalid', { name, group: r.group || undefined, kind: r.kind, causes });
  }

  /** What the server itself adds to an object (defaults, admission on create), so clients must ignore server-populated fields. */
  function serverDefaults(r: ResourceInfo, obj: Obj, live?: Obj): void {
    api.serverDefaults(r, obj, live);
  }

  /** Kinds with a status subresource: writes to the main resource keep the stored status (and /status writes change nothing else). */
  const hasStatus = (r: ResourceInfo) => ['Pod', 'Deployment', 'ReplicaSet', 'StatefulSet', 'DaemonSet', 'Job', 'Namespace', 'Service', 'PersistentVolumeClaim', 'PersistentVolume', 'Ingress', 'Node'].includes(r.kind) && BUILTIN_RESOURCES.includes(r);

  /** The server-owned parts of the stored object that no client write changes: deletion marks and, per endpoint, status or everything but status. */
  function keepServerOwned(r: ResourceInfo, next: Obj, live: Obj | undefined, sub: string | undefined): void {
    const nm = (next.metadata ??= {}) as Record<string, unknown>;
    const lm = (live?.metadata ?? {}) as Record<string, unknown>;
    for (const k of ['deletionTimestamp', 'deletionGracePeriodSeconds']) {
      if (lm[k] !== undefined) nm[k] = lm[k];
      else delete nm[k];
    }
    if (!live || !hasStatus(r)) return;
    if (sub === 'status') {
      for (const k of Object.keys(next)) if (k !== 'status' && k !== 'metadata') delete next[k];
      for (const [k, v] of Object.entries(live)) if (k !== 'status' && k !== 'metadata') next[k] = structuredClone(v);
    } else if (live.status !== undefined) next.status = structuredClone(live.status);
    else delete next.status;
  }

  function stripForList(r: ResourceInfo, o: Obj): Obj {
    // built-in list items carry no apiVersion/kind on the wire
    if (BUILTIN_RESOURCES.some((b) => b.group === r.group && b.plural === r.plural)) {
      const { apiVersion: _a, kind: _k, ...rest } = o;
      return rest as Obj;
    }
    return o;
  }

  async function readBody(req: http.IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  function parseObj(text: string, yamlOk: boolean): Obj {
    try {
      const v = yamlOk ? parseYaml(text) : JSON.parse(text);
      if (!isObj(v)) throw new Error('not an object');
      return v as Obj;
    } catch (e) {
      throw new HttpError(400, `error decoding ${yamlOk ? 'YAML' : 'JSON'}: ${(e as Error).message}`);
    }
  }

  /** SelfSubjectAccessReview: answers from the forbid rules, as RBAC would (denials carry no reason). */
  async function accessReview(req: http.IncomingMessage, res: http.ServerResponse, r: ResourceInfo): Promise<void> {
    if (req.method !== 'POST') throw new HttpError(405, 'the server does not allow this method on the requested resource', 'MethodNotAllowed');
    checkRbac('create', r, undefined);
    const review = parseObj(await readBody(req), false);
    const a = (isObj(review.spec) && isObj(review.spec.resourceAttributes) ? review.spec.resourceAttributes : {}) as Record<string, string | undefined>;
    const denied = forbidden.some(
      (f) => f.verb === a.verb && f.resource === a.resource && (f.namespace === undefined || f.namespace === a.namespace),
    );
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ...review, metadata: { creationTimestamp: null }, status: denied ? { allowed: false } : { allowed: true, reason: 'allowed by the fake (no forbid rule)' } }));
  }

  async function handleResource(req: http.IncomingMessage, res: http.ServerResponse, url: URL, r: ResourceInfo, namespace: string | undefined, name: string | undefined, sub: string | undefined): Promise<void> {
    const q = url.searchParams;
    const method = req.method ?? 'GET';
    const dryRun = q.get('dryRun') === 'All';
    if (q.get('dryRun') !== null && !dryRun) throw new HttpError(400, `Invalid dry run value: ${q.get('dryRun')}`);
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };

    if (sub === 'log' && r.kind === 'Pod' && method === 'GET') {
      checkRbac('get', { ...r, plural: 'pods/log' }, namespace, name);
      const pod = store.get(r, namespace, name!);
      if (!pod) throw notFound(r, name!);
      const containers = ((pod.spec as Obj | undefined)?.containers as { name: string }[] | undefined) ?? [];
      // init containers (sidecars included) have logs too (pkg/registry/core/pod/strategy.go validateContainer)
      const initContainers = ((pod.spec as Obj | undefined)?.initContainers as { name: string }[] | undefined) ?? [];
      let container = q.get('container') ?? undefined;
      if (!container) {
        if (containers.length !== 1) {
          const inits = initContainers.length ? ` or one of the init containers: [${initContainers.map((c) => c.name).join(' ')}]` : '';
          throw new HttpError(400, `a container name must be specified for pod ${name}, choose one of: [${containers.map((c) => c.name).join(' ')}]${inits}`);
        }
        container = containers[0]!.name;
      } else if (![...containers, ...initContainers].some((c) => c.name === container)) {
        throw new HttpError(400, `container ${container} is not valid for pod ${name}`);
      }
      let text = logs.get(`${namespace}/${name}/${container}`) ?? '';
      const tail = q.get('tailLines');
      if (tail !== null) {
        const lines = text.split('\n');
        if (lines[lines.length - 1] === '') lines.pop();
        text = lines.slice(Math.max(0, lines.length - Number(tail))).map((l) => l + '\n').join('');
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      if (q.get('follow') !== 'true') return void res.end(text);
      const key = `${namespace}/${name}/${container}`;
      const open = logFollowers.get(key) ?? new Set<http.ServerResponse>();
      logFollowers.set(key, open);
      open.add(res);
      res.on('close', () => open.delete(res));
      res.write(text);
      return;
    }
    if (sub !== undefined && sub !== 'status') throw new HttpError(404, 'the server could not find the requested resource');

    if (method === 'GET' && name) {
      checkRbac('get', r, namespace, name);
      const o = store.get(r, namespace, name);
      if (!o) throw notFound(r, name);
      return send(200, o);
    }
    if (method === 'GET') {
      checkRbac('list', r, namespace);
      let reqs;
      let freqs;
      try {
        reqs = parseLabelSelector(q.get('labelSelector'));
        freqs = parseLabelSelector(q.get('fieldSelector'));
      } catch (e) {
        if (e instanceof SelectorError) throw new HttpError(400, e.message);
        throw e;
      }
      const items = store
        .list(r, namespace)
        .filter((o) => matches(reqs, (k) => (o.metadata?.labels as Record<string, string> | undefined)?.[k]))
        .filter((o) => matches(freqs, (k) => fieldValue(o, k)))
        .map((o) => stripForList(r, o));
      return send(200, { kind: `${r.kind}List`, apiVersion: groupVersion(r), metadata: { resourceVersion: store.resourceVersion }, items });
    }
    if (method === 'POST' && !name) {
      checkRbac('create', r, namespace);
      const obj = parseObj(await readBody(req), false);
      const gm = (isObj(obj.metadata) ? obj.metadata : {}) as Record<string, unknown>;
      if (!gm.name && typeof gm.generateName === 'string' && gm.generateName) gm.name = `${gm.generateName}${randomSuffix()}`;
      validate(r, obj, undefined, namespace);
      served(r, obj, { apply: false, fieldValidation: q.get('fieldValidation') ?? undefined });
      requireNamespace(r, namespace);
      const meta = obj.metadata as Record<string, unknown>;
      if (r.namespaced) meta.namespace = namespace;
      if (store.get(r, namespace, String(meta.name))) {
        throw new HttpError(409, `${qualified(r)} "${String(meta.name)}" already exists`, 'AlreadyExists', { name: meta.name, group: r.group || undefined, kind: r.plural });
      }
      delete meta.managedFields;
      keepServerOwned(r, obj, undefined, sub);
      fields.update(undefined, obj, q.get('fieldManager') ?? 'unknown', groupVersion(r), api.now());
      serverDefaults(r, obj);
      checkValid(r, obj, undefined);
      return send(201, store.put(r, obj, { dryRun }).obj);
    }
    if (method === 'PATCH' && name) {
      checkRbac('patch', r, namespace, name);
      const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
      const body = await readBody(req);
      const live = store.get(r, namespace, name);
      if (ct === 'application/apply-patch+yaml') {
        const manager = q.get('fieldManager');
        if (!manager) throw new HttpError(400, 'PATCH /apply requires fieldManager');
        const config = parseObj(body, true);
        validate(r, config, name, namespace);
        served(r, config, { apply: true });
        if (!live) requireNamespace(r, namespace);
        else checkPrecondition(r, name, live, config);
        const force = q.get('force') === 'true';
        let next: Obj;
        try {
          next = fields.apply(live, config, manager, force, api.now());
        } catch (e) {
          if (e instanceof ConflictError) {
            throw new HttpError(409, e.message, 'Conflict', {
              causes: e.conflicts.map((c) => ({ reason: 'FieldManagerConflict', message: `conflict with "${c.manager}"`, field: `.${c.path.join('.')}` })),
            });
          }
          throw e;
        }
        const meta = next.metadata!;
        meta.name = name;
        if (r.namespaced) meta.namespace = namespace;
        keepServerOwned(r, next, live, sub);
        serverDefaults(r, next, live);
        checkValid(r, next, live);
        const out = store.put(r, next, { dryRun });
        if (!dryRun && !out.created) api.finishIfFinalized(r, out.obj);
        return send(out.created ? 201 : 200, out.obj);
      }
      if (ct === 'application/merge-patch+json' || ct === 'application/strategic-merge-patch+json') {
        if (!live) throw notFound(r, name);
        const patch = parseObj(body, false);
        checkPrecondition(r, name, live, patch);
        const next = mergePatch(live, patch) as Obj;
        validate(r, next, name, namespace);
        served(r, next, { apply: false, fieldValidation: q.get('fieldValidation') ?? undefined });
        keepServerOwned(r, next, live, sub);
        checkValid(r, next, live);
        fields.update(live, next, q.get('fieldManager') ?? 'unknown', groupVersion(r), api.now());
        const stored = store.put(r, next, { dryRun }).obj;
        // the last finalizer gone: the deletion completes
        if (!dryRun) api.finishIfFinalized(r, stored);
        return send(200, stored);
      }
      throw new HttpError(415, `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`);
    }
    if (method === 'PUT' && name) {
      checkRbac('update', r, namespace, name);
      const obj = parseObj(await readBody(req), false);
      validate(r, obj, name, namespace);
      served(r, obj, { apply: false, fieldValidation: q.get('fieldValidation') ?? undefined });
      const live = store.get(r, namespace, name);
      if (!live) throw notFound(r, name);
      checkPrecondition(r, name, live, obj);
      keepServerOwned(r, obj, live, sub);
      checkValid(r, obj, live);
      (obj.metadata as Obj).managedFields = live.metadata!.managedFields;
      fields.update(live, obj, q.get('fieldManager') ?? 'unknown', groupVersion(r), api.now());
      const stored = store.put(r, obj, { dryRun }).obj;
      if (!dryRun) api.finishIfFinalized(r, stored);
      return send(200, stored);
    }
    if (method === 'DELETE' && name) {
      checkRbac('delete', r, namespace, name);
      const text = await readBody(req);
      const body = text.trim() ? parseObj(text, false) : {};
      const policy = (q.get('propagationPolicy') ?? body.propagationPolicy ?? (body.orphanDependents === true ? 'Orphan' : undefined)) as PropagationPolicy | undefined;
      if (policy !== undefined && !['Background', 'Foreground', 'Orphan'].includes(policy)) {
        throw new HttpError(400, `DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "${String(policy)}": supported values: "Foreground", "Background", "Orphan", "nil"`);
      }
      const graceText = q.get('gracePeriodSeconds') ?? body.gracePeriodSeconds;
      const grace = graceText === undefined || graceText === null ? undefined : Number(graceText);
      const dry = dryRun || (Array.isArray(body.dryRun) && body.dryRun.includes('All'));
      const result = api.delete(r, namespace, name, { propagationPolicy: policy, gracePeriodSeconds: grace, dryRun: dry });
      if (!result) throw notFound(r, name);
      // an object that stays (graceful deletion, finalizers) is returned as it is; a removed one gets a Status
      if (result.obj) return send(200, result.obj);
      return send(200, {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Success',
        details: { name, group: r.group || undefined, kind: r.plural, uid: (result.before.metadata as Record<string, unknown>).uid },
      });
    }
    throw new HttpError(405, `the server does not allow this method on the requested resource`, 'MethodNotAllowed');
  }

  const holds: { match: (method: string, path: string) => boolean; arrive: () => void; released: Promise<void> }[] = [];

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    requests.push({
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      contentType: req.headers['content-type'],
    });
    const held = holds.findIndex((h) => h.match(req.method ?? 'GET', url.pathname));
    if (held >= 0) {
      const [h] = holds.splice(held, 1);
      h!.arrive();
      await h!.released;
    }
    try {
      checkAuth(req);
      const send = (body: unknown) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const p = url.pathname.replace(/\/+$/, '');
      if (p === '/version') {
        const [major, minor] = serverVersion.replace(/^v/, '').split('.');
        // like a distribution's build (v1.31.0+k3s1, v1.31.0-eks-...), marked as the fake's
        return send({ major, minor, gitVersion: /[-+]/.test(serverVersion) ? serverVersion : `${serverVersion}-fake`, gitCommit: 'fake', gitTreeState: 'clean', goVersion: 'go1.22', compiler: 'gc', platform: 'linux/amd64' });
      }
      if (p === '/api') return send({ kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
      if (p === '/apis') {
        const groups = [...new Set(resources.filter((r) => r.group).map((r) => r.group))].sort();
        return send({
          kind: 'APIGroupList',
          apiVersion: 'v1',
          groups: groups.map((g) => {
            const versions = [...new Set(resources.filter((r) => r.group === g).map((r) => r.version))].map((v) => ({ groupVersion: `${g}/${v}`, version: v }));
            return { name: g, versions, preferredVersion: versions[0] };
          }),
        });
      }
      const seg = p.split('/').filter(Boolean).map(decodeURIComponent);
      let group: string;
      let version: string;
      let rest: string[];
      if (seg[0] === 'api' && seg.length >= 2) {
        group = '';
        version = seg[1]!;
        rest = seg.slice(2);
      } else if (seg[0] === 'apis' && seg.length >= 3) {
        group = seg[1]!;
        version = seg[2]!;
        rest = seg.slice(3);
      } else throw new HttpError(404, 'the server could not find the requested resource');
      if (rest.length === 0) {
        const gv = group ? `${group}/${version}` : version;
        if (!resources.some((r) => groupVersion(r) === gv)) throw new HttpError(404, 'the server could not find the requested resource');
        return send(apiResourceList(gv, resources));
      }
      let namespace: string | undefined;
      if (rest[0] === 'namespaces' && rest.length >= 3 && !(rest.length === 3 && ['status', 'finalize'].includes(rest[2]!))) {
        namespace = rest[1];
        rest = rest.slice(2);
      }
      const [plural, name, sub] = rest as [string, string | undefined, string | undefined];
      const r = findByPlural(group, version, plural);
      if (!r || (namespace !== undefined && !r.namespaced)) throw new HttpError(404, 'the server could not find the requested resource');
      if (r.kind === 'SelfSubjectAccessReview') return await accessReview(req, res, r);
      await handleResource(req, res, url, r, namespace, name, sub);
    } catch (e) {
      const err = e instanceof HttpError ? e : new HttpError(500, (e as Error).message, 'InternalError');
      res.writeHead(err.code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(statusBody(err.code, err.message, err.reason, err.details)));
    }
  }

  const dir = mkdtempSync(join(tmpdir(), 'fake-kube-'));
  const tls = opts.tls ? selfSignedCert(dir) : undefined;
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    void handle(req, res);
  };
  const server: http.Server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, onRequest) : http.createServer(onRequest);

  // ---- WebSocket: exec and portforward (v4/v5.channel.k8s.io: one channel byte, then data) ----
  const wsMasks: MaskCounts = { zero: 0, other: 0, unmasked: 0 };
  // v5 (a client may close stdin alone) comes with the WebSocket stream translator, on by default from
  // Kubernetes 1.30 (KEP-4006, beta); an older API server speaks v4 at most
  const v5Exec = Number(kubeVersion.major) > 1 || Number(kubeVersion.minor) >= 30;
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (v5Exec && protocols.has('v5.channel.k8s.io') ? 'v5.channel.k8s.io' : protocols.has('v4.channel.k8s.io') ? 'v4.channel.k8s.io' : false),
  });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    requests.push({ method: 'UPGRADE', path: url.pathname, query: Object.fromEntries(url.searchParams) });
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(exec|portforward)$/.exec(url.pathname);
    const reject = (code: number, text: string) => {
      socket.end(`HTTP/1.1 ${code} ${text}\r\ncontent-type: application/json\r\n\r\n${JSON.stringify(statusBody(code, text, STATUS_REASONS[code] ?? 'BadRequest'))}`);
    };
    if (authMode === 'expired' || req.headers.authorization !== `Bearer ${token}`) return reject(401, 'Unauthorized');
    if (!m) return reject(404, 'Not Found');
    const [, namespace, podName, what] = m as unknown as [string, string, string, string];
    const pod = store.get(findByPlural('', 'v1', 'pods')!, namespace, podName);
    if (!pod) return reject(404, `pods "${podName}" not found`);
    wss.handleUpgrade(req, socket, head, (ws) => {
      // ws reads the socket already (its listener came first); this one only reads frame headers
      const tally = new MaskTally(wsMasks);
      socket.on('data', (b: Buffer) => tally.push(b));
      if (what === 'exec') runExec(ws, namespace, podName, url.searchParams);
      else runPortForward(ws, namespace, podName, Number(url.searchParams.get('ports')));
    });
  });

  const hostImages = opts.hostImages ?? defaultHostImage;
  const hostExecs: FakeKube['hostExecs'] = [];
  /** The connection of each command run for real, while it runs. */
  const hostExecSockets = new Map<FakeKube['hostExecs'][number], WebSocket>();
  /** How to kill each command run for real (with everything it started), while it runs. */
  const hostExecKills = new Map<FakeKube['hostExecs'][number], () => void>();

  /**
   * What running `container` of the pod for real needs, or undefined when
   * its image is not one the fake stands in for (the onExec handler answers).
   * A container that is not running or a volume that cannot be mapped is
   * the error the kubelet would give.
   */
  function hostPlan(podObj: Obj, container: string | undefined): HostExecPlan | { error: string } | undefined {
    const spec = (podObj.spec ?? {}) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const containers = (spec.containers ?? []) as Record<string, any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
    const c = container ? containers.find((x) => x.name === container) : containers.length === 1 ? containers[0] : undefined;
    if (!c) return undefined;
    const toolbox = hostImages(String(c.image));
    if (!toolbox) return undefined;
    if (!kubelet.running(podObj, String(c.name))) return { error: `unable to upgrade connection: container not found ("${String(c.name)}")` };
    const mounts: HostExecPlan['mounts'] = [];
    for (const m of (c.volumeMounts ?? []) as { name: string; mountPath: string; readOnly?: boolean }[]) {
      const v = volumeDirectory(podObj, m.name, {
        pvc: (ns, name) => store.get(findByPlural('', 'v1', 'persistentvolumeclaims')!, ns, name),
        pv: (name) => store.get(findByPlural('', 'v1', 'persistentvolumes')!, undefined, name),
        csi: (driver) => csiDrivers.get(driver),
      });
      if ('problem' in v) return { error: `the fake kubelet cannot run ${String(c.image)} here: ${v.problem}` };
      mounts.push({ source: v.dir, target: m.mountPath, readOnly: Boolean(m.readOnly) || v.readOnly });
    }
    const psc = (spec.securityContext ?? {}) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const csc = (c.securityContext ?? {}) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const env: Record<string, string> = {};
    for (const e of (c.env ?? []) as { name: string; value?: string }[]) if (e.value !== undefined) env[e.name] = e.value;
    return {
      mounts,
      toolbox,
      uid: Number(csc.runAsUser ?? psc.runAsUser ?? 0),
      gid: Number(csc.runAsGroup ?? psc.runAsGroup ?? 0),
      capabilities: Boolean(csc.privileged) ? [] : effectiveCaps(csc),
      noNewPrivs: csc.allowPrivilegeEscalation === false,
      readOnlyRoot: csc.readOnlyRootFilesystem === true,
      env,
    };
  }

  /** Streams a real command: stdin/stdout/stderr with backpressure both ways, status last. */
  function runOnHost(ws: WebSocket, namespace: string, pod: string, container: string, command: string[], plan: HostExecPlan, wantStdin: boolean): void {
    const record: FakeKube['hostExecs'][number] = { namespace, pod, container, command };
    hostExecs.push(record);
    hostExecSockets.set(record, ws);
    ws.on('close', () => hostExecSockets.delete(record));
    const { child, cleanup } = spawnHostExec(plan, command);
    let exited = false;
    const send = (ch: number, data: Buffer, cb?: () => void) => ws.send(Buffer.concat([Buffer.from([ch]), data]), cb as never);
    const forward = (stream: NodeJS.ReadableStream | null, ch: number) => {
      stream?.on('data', (d: Buffer) => {
        // the client reads slowly: stop reading the process until this frame has left
        if (ws.bufferedAmount > 4 * 1024 * 1024) {
          stream.pause();
          send(ch, d, () => stream.resume());
        } else send(ch, d);
      });
    };
    forward(child.stdout, 1);
    forward(child.stderr, 2);
    child.stdin?.on('error', () => undefined); // the command may exit before reading all of its input
    if (!wantStdin) child.stdin?.end();
    child.on('error', (e) => send(2, Buffer.from(`${e.message}\n`)));
    child.on('close', (code, sig) => {
      exited = true;
      cleanup();
      // read again whatever stdin left paused: the client's answer to the close frame must get through
      ws.resume();
      const exitCode = code ?? (sig ? 128 + (({ SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13 }) as Record<string, number>)[sig]! : 1);
      record.exitCode = exitCode;
      const status =
        exitCode === 0
          ? { metadata: {}, status: 'Success' }
          : {
              metadata: {},
              status: 'Failure',
              message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${exitCode}`,
              reason: 'NonZeroExitCode',
              details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
            };
      send(3, Buffer.from(JSON.stringify(status)), () => ws.close(1000));
    });
    ws.on('message', (data: Buffer) => {
      const buf = Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
      if (buf[0] === 0 && child.stdin && !child.stdin.destroyed) {
        if (!child.stdin.write(buf.subarray(1))) {
          ws.pause();
          child.stdin.once('drain', () => ws.resume());
        }
      } else if (buf[0] === 255 && buf[1] === 0) {
        child.stdin?.end();
        // a Writable emits no 'drain' once ended: a socket paused for the last write would stay paused, and the
        // closing handshake after the exit status would wait for ws's close timeout (30 s)
        ws.resume();
      }
    });
    const kill = () => {
      if (!exited && child.pid) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    };
    hostExecKills.set(record, kill);
    child.on('close', () => hostExecKills.delete(record));
    // the client went away: the command loses its streams (killed here, with everything it started)
    ws.on('close', kill);
  }

  function runExec(ws: WebSocket, namespace: string, pod: string, q: URLSearchParams): void {
    const command = q.getAll('command');
    const podObj = store.get(findByPlural('', 'v1', 'pods')!, namespace, pod);
    const plan = podObj ? hostPlan(podObj, q.get('container') ?? undefined) : undefined;
    if (plan && 'error' in plan) {
      ws.send(Buffer.concat([Buffer.from([3]), Buffer.from(JSON.stringify({ metadata: {}, status: 'Failure', message: plan.error, reason: 'InternalError' }))]));
      ws.close(1000);
      return;
    }
    if (plan) {
      const c = q.get('container') ?? String(((podObj!.spec as { containers: { name: string }[] }).containers[0]!).name);
      return runOnHost(ws, namespace, pod, c, command, plan, q.get('stdin') === 'true');
    }
    const wantStdin = q.get('stdin') === 'true';
    const stdin: Buffer[] = [];
    let started = false;
    const start = async () => {
      if (started) return;
      started = true;
      const r = await execHandler({ namespace, pod, container: q.get('container') ?? undefined, command, stdin: Buffer.concat(stdin).toString('utf8') });
      const sendCh = (ch: number, data: string) => ws.send(Buffer.concat([Buffer.from([ch]), Buffer.from(data)]));
      if (r.stdout) sendCh(1, r.stdout);
      if (r.stderr) sendCh(2, r.stderr);
      const status =
        r.exitCode === 0
          ? { metadata: {}, status: 'Success' }
          : {
              metadata: {},
              status: 'Failure',
              message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${r.exitCode}`,
              reason: 'NonZeroExitCode',
              details: { causes: [{ reason: 'ExitCode', message: String(r.exitCode) }] },
            };
      sendCh(3, JSON.stringify(status));
      ws.close(1000);
    };
    ws.on('message', (data: Buffer) => {
      const buf = Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
      if (buf[0] === 0) stdin.push(buf.subarray(1));
      // v5: channel 255 closes a stream; stdin closed = run
      if (buf[0] === 255 && buf[1] === 0) void start();
    });
    ws.on('close', () => undefined);
    if (!wantStdin) void start();
    // v5 clients close stdin explicitly (channel 255); v4 clients cannot: run after a short quiet time
    else if (ws.protocol !== 'v5.channel.k8s.io') setTimeout(() => void start(), 300);
  }

  function runPortForward(ws: WebSocket, namespace: string, pod: string, port: number): void {
    const header = Buffer.alloc(3);
    header.writeUInt16LE(port, 1);
    // the real kubelet first sends the port number on the data and the error channel
    ws.send(Buffer.concat([Buffer.from([0]), header.subarray(1)]));
    ws.send(Buffer.concat([Buffer.from([1]), header.subarray(1)]));
    const target = portTargets.get(`${namespace}/${pod}/${port}`);
    let sock: net.Socket | undefined;
    if (target !== undefined) {
      sock = net.connect(target, '127.0.0.1');
      sock.on('data', (d) => ws.send(Buffer.concat([Buffer.from([0]), d])));
      sock.on('end', () => ws.close(1000));
      sock.on('error', (e) => {
        ws.send(Buffer.concat([Buffer.from([1]), Buffer.from(e.message)]));
        ws.close(1000);
      });
    }
    ws.on('message', (data: Buffer) => {
      const buf = Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
      if (buf[0] !== 0) return;
      const payload = buf.subarray(1);
      if (sock) sock.write(payload);
      else ws.send(Buffer.concat([Buffer.from([0]), payload])); // echo
    });
    ws.on('close', () => sock?.end());
  }

  let connections = 0;
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address() as net.AddressInfo;
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${addr.port}`;
  const kubeconfigPath = join(dir, 'kubeconfig');
  const kubeconfig = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: fake',
    '  cluster:',
    `    server: ${url}`,
    // client-node refuses plain http unless TLS verification is explicitly off
    tls ? `    certificate-authority-data: ${Buffer.from(tls.cert).toString('base64')}` : '    insecure-skip-tls-verify: true',
    'users:',
    '- name: fake',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: fake',
    '  context:',
    '    cluster: fake',
    '    user: fake',
    'current-context: fake',
    '',
  ].join('\n');
  writeFileSync(kubeconfigPath, kubeconfig, { mode: 0o600 });

  const podResource = findByPlural('', 'v1', 'pods')!;
  const eventResource = findByPlural('', 'v1', 'events')!;
  let eventSeq = 0;

  return {
    url,
    kubeconfigPath,
    kubeconfig,
    store,
    requests,
    wsMasks,
    setAuth: (mode) => {
      authMode = mode;
    },
    forbid: (rule) => {
      forbidden.push(rule);
    },
    allowAll: () => {
      forbidden.length = 0;
    },
    hold: (match) => {
      let arrive!: () => void;
      let release!: () => void;
      const arrived = new Promise<void>((r) => (arrive = r));
      const released = new Promise<void>((r) => (release = r));
      holds.push({ match, arrive, released });
      return { arrived, release };
    },
    addResource: (r) => {
      resources.push(r);
    },
    resource: findByKind,
    setPod: (pod) => {
      const p = structuredClone(pod) as Obj;
      p.apiVersion ??= 'v1';
      p.kind ??= 'Pod';
      return store.put(podResource, p).obj;
    },
    setStatus: (ref, status) => {
      const r = findByKind(ref.apiVersion, ref.kind);
      if (!r) throw new Error(`fake: unknown kind ${ref.apiVersion} ${ref.kind}`);
      const o = store.get(r, ref.namespace, ref.name);
      if (!o) throw new Error(`fake: ${ref.kind} ${ref.namespace ?? ''}/${ref.name} does not exist`);
      return store.put(r, { ...o, status: structuredClone(status) }).obj;
    },
    addEvent: (namespace, ev) => {
      const now = api.now();
      const name = `${ev.involvedObject.name}.${(++eventSeq).toString(16).padStart(16, '0')}`;
      return store.put(eventResource, {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace },
        involvedObject: { namespace, ...ev.involvedObject },
        reason: ev.reason,
        message: ev.message,
        type: ev.type ?? 'Warning',
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component: 'fake' },
      }).obj;
    },
    setLogs: (namespace, pod, container, text) => {
      logs.set(`${namespace}/${pod}/${container}`, text);
    },
    appendLogs: (namespace, pod, container, text) => {
      const key = `${namespace}/${pod}/${container}`;
      logs.set(key, (logs.get(key) ?? '') + text);
      for (const res of logFollowers.get(key) ?? []) res.write(text);
    },
    logFollowers: (namespace, pod, container) => logFollowers.get(`${namespace}/${pod}/${container}`)?.size ?? 0,
    onExec: (h) => {
      execHandler = h;
    },
    registerCsiDriver: (name, host) => {
      csiDrivers.set(name, host);
      manager?.kick();
    },
    get connections() {
      return connections;
    },
    get hostExec() {
      return hostExecSupport();
    },
    hostExecs,
    cutExecs: (match) => {
      let n = 0;
      for (const [record, ws] of hostExecSockets) {
        if (record.exitCode !== undefined || !match(record)) continue;
        ws.terminate();
        n++;
      }
      return n;
    },
    killExecs: (match) => {
      let n = 0;
      for (const [record, kill] of hostExecKills) {
        if (record.exitCode !== undefined || !match(record)) continue;
        kill();
        n++;
      }
      return n;
    },
    setPortTarget: (namespace, pod, port, localPort) => {
      portTargets.set(`${namespace}/${pod}/${port}`, localPort);
    },
    finalizeNamespace: (name) => {
      store.removeNamespaceContents(name);
      store.remove(nsResource, undefined, name);
    },
    clock,
    addNode: (node) => store.put(nodeResource, nodeObject(node, serverVersion)).obj,
    containerBehaviour: (hook) => {
      behaviourHooks.push(hook);
      manager?.kick();
    },
    setImageBehaviour: (image, behaviour) => {
      behaviourHooks.push((_pod, c) => (c.image === image ? behaviour : undefined));
      manager?.kick();
    },
    addPrivateRegistry: (r) => {
      privateRegistries.push(r);
      manager?.kick();
    },
    containerEnv: (namespace, pod, container) => kubelet.envs.get(`${namespace}/${pod}/${container}`),
    settle: () => manager?.settle() ?? Promise.resolve(),
    controllerErrors: manager?.errors ?? [],
    close: async () => {
      manager?.close();
      clock.close();
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function defaultExec(req: ExecRequest): ExecResult {
  const [cmd, ...args] = req.command;
  if (cmd === 'echo') return { stdout: args.join(' ') + '\n', exitCode: 0 };
  if (cmd === 'cat') return { stdout: req.stdin, exitCode: 0 };
  if (cmd === 'exit') return { exitCode: Number(args[0] ?? 0) };
  return { stderr: `exec: "${cmd}": executable file not found in $PATH\n`, exitCode: 127 };
}
