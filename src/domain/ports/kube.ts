// The port through which use cases talk to Kubernetes. The adapter over
// @kubernetes/client-node (src/kube) implements it, loaded lazily: it is
// heavy; tests run it against a real cluster or the in-process fake API
// server. Types and pure helpers only: no I/O here.

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resourceVersion?: string;
  uid?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  managedFields?: unknown[];
  [k: string]: unknown;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [k: string]: unknown;
}

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

export interface ApplyOptions {
  /** Server-side dry run (dryRun=All). */
  dryRun?: boolean;
  /** Take ownership of conflicting fields (force=true). Default true for Kompox-owned objects. */
  force?: boolean;
  /** Field manager; default `kompox`. */
  fieldManager?: string;
  /**
   * Applies only over this version of the object (metadata.resourceVersion
   * in the apply configuration: the API server answers 409 Conflict,
   * kube.conflict, when the object changed since it was read).
   */
  ifVersion?: string;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
}

export interface DeleteOptions {
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  dryRun?: boolean;
  /** Pods: seconds to wait before the kubelet kills the containers (default: the pod's terminationGracePeriodSeconds). */
  gracePeriodSeconds?: number;
}

export interface LogOptions {
  container?: string;
  follow?: boolean;
  tailLines?: number;
  sinceSeconds?: number;
}

/** Binary streams of a command run in a container (execStream). */
export interface ExecStreams {
  /**
   * Bytes for the command's stdin, sent with backpressure; its end closes the
   * command's stdin (EOF), which needs the v5.channel.k8s.io protocol
   * (Kubernetes 1.30 or later): an older server is refused before anything is sent.
   */
  stdin?: NodeJS.ReadableStream;
  /** Receives the command's stdout with backpressure (the stream is paused while it is full); not ended. */
  stdout?: NodeJS.WritableStream;
  /** Receives the command's stderr; not ended. */
  stderr?: NodeJS.WritableStream;
}

/** How a command run with execStream ended. */
export interface ExecOutcome {
  exitCode: number;
  /** The API server's message when the command did not run or ended abnormally (not for a plain non-zero exit). */
  message?: string;
}

/** What a SelfSubjectAccessReview asks: may the current identity do `verb` on this object? */
export interface AccessCheck {
  verb: string;
  ref: ObjectRef;
}

export interface KubeClient {
  /**
   * Asks the API server (SelfSubjectAccessReview) whether the identity may do
   * `verb` on the object; undefined when the server cannot tell (review API
   * missing or itself forbidden). Optional: test doubles may omit it.
   */
  accessReview?(check: AccessCheck): Promise<{ allowed: boolean; resource: string; namespace?: string } | undefined>;
  /** Server-side apply (PATCH application/apply-patch+yaml). Returns the object as stored. */
  apply(obj: KubeObject, opts?: ApplyOptions): Promise<KubeObject>;
  get(ref: ObjectRef): Promise<KubeObject | undefined>;
  list(apiVersion: string, kind: string, opts?: ListOptions): Promise<KubeObject[]>;
  /** Returns false when the object did not exist. */
  delete(ref: ObjectRef, opts?: DeleteOptions): Promise<boolean>;
  /** JSON merge patch (e.g. annotations, replicas). */
  mergePatch(ref: ObjectRef, patch: Record<string, unknown>): Promise<KubeObject>;
  /** Server version, e.g. { gitVersion: 'v1.31.0' }. */
  version(): Promise<{ gitVersion: string; major?: string; minor?: string }>;
  logs(namespace: string, pod: string, opts: LogOptions, out: NodeJS.WritableStream): Promise<void>;
  exec(
    namespace: string,
    pod: string,
    container: string | undefined,
    command: string[],
    io: { stdin?: NodeJS.ReadableStream; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream; tty?: boolean },
  ): Promise<number>;
  /**
   * Runs a command in a container with binary streams (no TTY): data moves
   * with backpressure both ways, stdin's end is the command's EOF, and the
   * result carries the exit code. The signal ends the stream at once (the
   * command loses its stdin and stdout) and rejects with `interrupted`.
   */
  execStream(namespace: string, pod: string, container: string | undefined, command: string[], io: ExecStreams, opts?: { signal?: AbortSignal }): Promise<ExecOutcome>;
  /**
   * Forwards one already-accepted connection to a pod port; resolves when the
   * forwarding is set up. Optional (test doubles may omit it); used by tunnels
   * that pick the pod per connection so they survive pod restarts.
   */
  forwardConnection?(namespace: string, pod: string, remotePort: number, socket: import('node:net').Socket): Promise<void>;
  /** Forwards local connections to a pod port; returns a closer. */
  portForward(namespace: string, pod: string, localPort: number, remotePort: number): Promise<{ port: number; close(): Promise<void> }>;
  /** The kubeconfig context / server this client talks to (for messages). */
  readonly server: string;
}

/** The reference of an object (namespace only when it has one). */
export function toRef(o: KubeObject | ObjectRef): ObjectRef {
  if ('metadata' in o) {
    const r: ObjectRef = { apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name };
    if (o.metadata.namespace) r.namespace = o.metadata.namespace;
    return r;
  }
  const r: ObjectRef = { apiVersion: o.apiVersion, kind: o.kind, name: o.name };
  if (o.namespace) r.namespace = o.namespace;
  return r;
}

/**
 * An object as messages name it: `Kind/namespace/name` (the deploy plan's
 * form), or with `sep` ' ' `Kind namespace/name` (progress lines, API errors).
 */
export function refString(o: KubeObject | ObjectRef, sep: '/' | ' ' = '/'): string {
  const r = toRef(o);
  return `${r.kind}${sep}${r.namespace ? `${r.namespace}/` : ''}${r.name}`;
}
