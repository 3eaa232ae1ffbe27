// The kubelets of the fake's nodes (pkg/kubelet): they run the pods bound to
// their node, step by step as the real one reports them:
// - the sandbox (PodReadyToStartContainers), then the init containers in
//   order: a run-to-completion one must exit 0 before the next starts (exit
//   non-zero: Init:Error, then Init:CrashLoopBackOff with back-off); a native
//   sidecar (restartPolicy Always) starts and keeps running; then all
//   containers start; Initialized, ContainersReady and Ready follow;
// - image pull failures (ErrImagePull, then ImagePullBackOff) and crashing
//   containers (Error, then CrashLoopBackOff, 10 s doubling to 5 min);
// - readiness: ready unless the test says otherwise (no probes are run);
// - deletion: SIGTERM to every container; a process that exits on it ends at
//   once, one that ignores it runs until the grace period is over (then
//   SIGKILL, exit code 137); then the pod object is deleted (grace 0).
// How a container behaves is a test knob (ContainerBehaviour), by default:
// the image pulls, the process runs (init containers exit 0), is ready, and
// exits promptly on SIGTERM.
// Volumes of CSI drivers registered with the fake (host-exec.ts) are
// attached to the node before the sandbox starts, as the attach/detach
// controller does: a ReadWriteOnce volume attached to another node is a
// FailedAttachVolume (Multi-Attach error) and the pod waits in
// ContainerCreating; a volume whose directory is missing is a FailedMount.
// They are detached when the pod's containers have stopped and no other pod
// on the node uses them. Commands exec'd into pods of host-runnable images
// run for real (host-exec.ts).
import { createHash } from 'node:crypto';
import type { ApiCore } from '../apiserver.js';
import type { CsiVolumeHost } from '../host-exec.js';
import type { ResourceInfo } from '../resources.js';
import type { Obj } from '../store.js';
import { type Any, type Condition, deleting, getCondition, nameOf, nsOf, setCondition, uidOf } from './util.js';
import { checkPull, podKey, resolveEnv, type PrivateRegistry } from './kubelet-config.js';

export interface ContainerBehaviour {
  /** `fail`: the image cannot be pulled (ErrImagePull, then ImagePullBackOff). Default `ok`. */
  pull?: 'ok' | 'fail';
  /** The process exits with this code after it starts: a long-running container crash-loops; an init container completes (0) or fails. Default: runs (init containers: exit 0). */
  exitCode?: number;
  /** The readiness probe's verdict while the container runs. Default true. */
  ready?: boolean;
  /** On SIGTERM: `exit` (default) stops at once; `ignore` keeps running until the grace period is over. */
  sigterm?: 'exit' | 'ignore';
  /** With `exitCode`: the terminated state's reason (`OOMKilled` with 137: the kernel killed it at its memory limit). Default Completed (0) or Error. */
  reason?: string;
}

export type ContainerKind = 'init' | 'sidecar' | 'container';

/** Decides a container's behaviour; undefined falls back to the defaults. */
export type BehaviourHook = (pod: Obj, container: Any, kind: ContainerKind) => ContainerBehaviour | undefined;

interface CState {
  name: string;
  image: string;
  kind: ContainerKind;
  state: Any;
  lastState: Any;
  restartCount: number;
  started?: boolean;
  containerID?: string;
  /** Simulated ms before which a back-off keeps the container waiting. */
  backoffUntil?: number;
  pullAttempts: number;
}

interface PodRuntime {
  uid: string;
  sandbox: boolean;
  containers: Map<string, CState>;
  /** Index of the init container being run (== number of init containers when done). */
  initIndex: number;
  startTime: string;
  killing?: { at: number; ignoring: boolean; done: boolean };
  /** CSI volumes attached for this pod (driver, handle), detached when it stops. */
  attached?: { driver: string; handle: string }[];
  /** The last volume problem reported (one event per distinct message). */
  volumeProblem?: string;
  node?: string;
}

const BACKOFF_START = 10;
const BACKOFF_MAX = 300;

export class Kubelet {
  private readonly pods: ResourceInfo;
  private readonly nodes: ResourceInfo;
  private readonly runtimes = new Map<string, PodRuntime>();

  private readonly pvcs: ResourceInfo;
  private readonly pvs: ResourceInfo;

  /** The environment each started container got (namespace/pod/container → variables), as the kubelet built it. */
  readonly envs = new Map<string, Record<string, string>>();

  constructor(
    private readonly api: ApiCore,
    private readonly behaviour: () => BehaviourHook[],
    private readonly csi: ReadonlyMap<string, CsiVolumeHost> = new Map(),
    private readonly privateRegistries: () => readonly PrivateRegistry[] = () => [],
    /** A container's process ended: the runtime kills what was exec'd in it (same cgroup and PID namespace). */
    private readonly containerEnded: (namespace: string, pod: string, container: string) => void = () => undefined,
  ) {
    this.pods = api.kind('v1', 'Pod');
    this.nodes = api.kind('v1', 'Node');
    this.pvcs = api.kind('v1', 'PersistentVolumeClaim');
    this.pvs = api.kind('v1', 'PersistentVolume');
  }

  /** The registered CSI volumes of the pod: driver, handle, PV name. */
  private csiVolumes(pod: Obj): { driver: string; handle: string; pv: string; host: CsiVolumeHost }[] {
    const out: { driver: string; handle: string; pv: string; host: CsiVolumeHost }[] = [];
    for (const v of (((pod.spec as Any)?.volumes ?? []) as Any[])) {
      const claimName = v.persistentVolumeClaim?.claimName;
      if (!claimName) continue;
      const claim = this.api.store.get(this.pvcs, nsOf(pod), String(claimName));
      const pvName = (claim?.spec as Any | undefined)?.volumeName;
      const pv = pvName ? this.api.store.get(this.pvs, undefined, String(pvName)) : undefined;
      const csi = (pv?.spec as Any | undefined)?.csi;
      const host = csi?.driver ? this.csi.get(String(csi.driver)) : undefined;
      if (host) out.push({ driver: String(csi.driver), handle: String(csi.volumeHandle), pv: nameOf(pv!), host });
    }
    return out;
  }

  /** Attaches and "mounts" the pod's registered CSI volumes; a problem is reported once and the pod waits. */
  private attachVolumes(pod: Obj, rt: PodRuntime): boolean {
    const node = String((pod.spec as Any).nodeName);
    const vols = this.csiVolumes(pod);
    const done: { driver: string; handle: string }[] = [];
    for (const v of vols) {
      let problem: string | undefined;
      let reason = 'FailedAttachVolume';
      try {
        v.host.attach?.(v.handle, node);
        done.push({ driver: v.driver, handle: v.handle });
        if (!v.host.path(v.handle)) {
          reason = 'FailedMount';
          problem = `MountVolume.MountDevice failed for volume "${v.pv}" : rpc error: code = NotFound desc = volume ${v.handle} not found`;
        }
      } catch (e) {
        problem = (e as Error).message;
      }
      if (problem) {
        for (const d of done) this.detachUnlessUsed(pod, node, d);
        if (rt.volumeProblem !== problem) {
          rt.volumeProblem = problem;
          this.api.events.record(pod, 'Warning', reason, problem, reason === 'FailedAttachVolume' ? { component: 'attachdetach-controller' } : { component: 'kubelet', host: node });
        }
        // the controllers retry; so does a timer (nothing else may change meanwhile)
        this.api.wakeAt(`attach/${rt.uid}`, this.api.clock.now() + 2000);
        return false;
      }
    }
    rt.attached = done;
    rt.volumeProblem = undefined;
    if (vols.length) this.api.events.record(pod, 'Normal', 'SuccessfulAttachVolume', `AttachVolume.Attach succeeded for volume "${vols.map((v) => v.pv).join('", "')}"`, { component: 'attachdetach-controller' });
    return true;
  }

  /** Detaches a volume from the node unless another running pod there still uses it. */
  private detachUnlessUsed(pod: Obj, node: string, v: { driver: string; handle: string }): void {
    const inUse = this.api.store.list(this.pods).some((p) => {
      if (uidOf(p) === uidOf(pod) || (p.spec as Any | undefined)?.nodeName !== node) return false;
      const rt = this.runtimes.get(uidOf(p));
      return Boolean(rt?.attached?.some((a) => a.driver === v.driver && a.handle === v.handle) && !rt.killing?.done);
    });
    if (!inUse) this.csi.get(v.driver)?.detach?.(v.handle, node);
  }

  private detachVolumes(pod: Obj, rt: PodRuntime): void {
    const node = String((pod.spec as Any).nodeName);
    for (const v of rt.attached ?? []) this.detachUnlessUsed(pod, node, v);
    rt.attached = [];
  }

  private behaviourOf(pod: Obj, c: Any, kind: ContainerKind): Required<Omit<ContainerBehaviour, 'reason'>> & { exitCode?: number; reason?: string } {
    let b: ContainerBehaviour = {};
    for (const h of this.behaviour()) b = { ...b, ...(h(pod, c, kind) ?? {}) };
    return { pull: b.pull ?? 'ok', ready: b.ready ?? true, sigterm: b.sigterm ?? 'exit', exitCode: b.exitCode ?? (kind === 'init' ? 0 : (undefined as unknown as number)), ...(b.reason ? { reason: b.reason } : {}) };
  }

  private event(pod: Obj, type: 'Normal' | 'Warning', reason: string, message: string): void {
    this.api.events.record(pod, type, reason, message, { component: 'kubelet', host: String((pod.spec as Any).nodeName) });
  }

  sync(): void {
    const nodes = new Set(this.api.store.list(this.nodes).map(nameOf));
    const alive = new Set<string>();
    for (const pod of this.api.store.list(this.pods)) {
      const node = (pod.spec as Any | undefined)?.nodeName;
      if (!node || !nodes.has(String(node))) continue;
      alive.add(uidOf(pod));
      const phase = (pod.status as Any | undefined)?.phase;
      if (!deleting(pod) && (phase === 'Succeeded' || phase === 'Failed')) continue;
      this.syncPod(pod);
    }
    for (const [uid, rt] of this.runtimes) {
      if (alive.has(uid)) continue;
      // the pod object went without the kubelet (force delete, pod GC): its volumes are detached all the same
      for (const v of rt.attached ?? []) this.csi.get(v.driver)?.detach?.(v.handle, rt.node ?? '');
      this.runtimes.delete(uid);
    }
  }

  private runtime(pod: Obj): PodRuntime {
    let rt = this.runtimes.get(uidOf(pod));
    if (!rt) {
      const spec = (pod.spec ?? {}) as Any;
      const containers = new Map<string, CState>();
      for (const c of (spec.initContainers ?? []) as Any[]) {
        const kind: ContainerKind = c.restartPolicy === 'Always' ? 'sidecar' : 'init';
        containers.set(c.name, { name: c.name, image: c.image, kind, state: { waiting: { reason: 'PodInitializing' } }, lastState: {}, restartCount: 0, pullAttempts: 0 });
      }
      const hasInit = containers.size > 0;
      for (const c of (spec.containers ?? []) as Any[]) {
        containers.set(c.name, { name: c.name, image: c.image, kind: 'container', state: { waiting: { reason: hasInit ? 'PodInitializing' : 'ContainerCreating' } }, lastState: {}, restartCount: 0, pullAttempts: 0 });
      }
      rt = { uid: uidOf(pod), sandbox: false, containers, initIndex: 0, startTime: this.api.now(), node: String(spec.nodeName) };
      this.runtimes.set(rt.uid, rt);
    }
    return rt;
  }

  /** Whether the kubelet runs container `name` of the pod now (exec needs it). */
  running(pod: Obj, name: string): boolean {
    const rt = this.runtimes.get(uidOf(pod));
    return Boolean(rt && !rt.killing?.done && rt.containers.get(name)?.state.running);
  }

  private containerSpec(pod: Obj, name: string): Any {
    const spec = (pod.spec ?? {}) as Any;
    return [...((spec.initContainers ?? []) as Any[]), ...((spec.containers ?? []) as Any[])].find((c) => c.name === name) ?? {};
  }

  private containerId(pod: Obj, c: CState): string {
    return `containerd://${createHash('sha256').update(`${uidOf(pod)}/${c.name}/${c.restartCount}`).digest('hex')}`;
  }

  /** Starts `c` (pulling its image first); false while it cannot run (pull failure, back-off). */
  private start(pod: Obj, c: CState): boolean {
    const now = this.api.clock.now();
    if (c.backoffUntil !== undefined && now < c.backoffUntil) return false;
    const b = this.behaviourOf(pod, this.containerSpec(pod, c.name), c.kind);
    // a private registry pulls only with matching credentials among the pod's imagePullSecrets (kubelet-config.ts)
    const access = checkPull(this.api, pod, c.image, this.privateRegistries(), (reason, message) => {
      if (c.pullAttempts === 0) this.event(pod, 'Warning', reason, message);
    });
    if (b.pull === 'fail' || !access.ok) {
      c.pullAttempts++;
      if (c.state.waiting?.reason === 'ErrImagePull') {
        const delay = Math.min(BACKOFF_START * 2 ** (c.pullAttempts - 2), BACKOFF_MAX);
        c.state = { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${c.image}"` } };
        c.backoffUntil = now + delay * 1000;
        this.api.wakeAt(`pull/${uidOf(pod)}/${c.name}`, c.backoffUntil);
        this.event(pod, 'Normal', 'BackOff', `Back-off pulling image "${c.image}"`);
        this.event(pod, 'Warning', 'Failed', 'Error: ImagePullBackOff');
      } else {
        const [code, msg] = access.ok ? ['NotFound', `failed to pull and unpack image "${c.image}": failed to resolve reference "${c.image}": not found`] : ['Unknown', access.message];
        c.state = { waiting: { reason: 'ErrImagePull', message: `rpc error: code = ${code} desc = ${msg}` } };
        c.backoffUntil = undefined;
        this.event(pod, 'Normal', 'Pulling', `Pulling image "${c.image}"`);
        this.event(pod, 'Warning', 'Failed', `Failed to pull image "${c.image}": rpc error: code = ${code} desc = ${msg}`);
        this.event(pod, 'Warning', 'Failed', 'Error: ErrImagePull');
        this.api.kick();
      }
      return false;
    }
    c.backoffUntil = undefined;
    // the environment (envFrom, then env): a missing Secret or ConfigMap keeps the container from being created
    const env = resolveEnv(this.api, pod, this.containerSpec(pod, c.name));
    if (!env.ok) {
      if (c.state.waiting?.reason !== 'CreateContainerConfigError') this.event(pod, 'Warning', 'Failed', `Error: ${env.message}`);
      c.state = { waiting: { reason: 'CreateContainerConfigError', message: env.message } };
      return false;
    }
    this.envs.set(podKey(pod, c.name), env.env);
    c.containerID = this.containerId(pod, c);
    c.state = { running: { startedAt: this.api.now() } };
    c.started = true;
    this.event(pod, 'Normal', 'Pulled', `Container image "${c.image}" already present on machine`);
    this.event(pod, 'Normal', 'Created', `Created container ${c.name}`);
    this.event(pod, 'Normal', 'Started', `Started container ${c.name}`);
    return true;
  }

  /** The process of a running container exits (its behaviour's exit code); restartable ones go into back-off. */
  private exit(pod: Obj, c: CState, code: number, reason?: string): void {
    const now = this.api.now();
    const startedAt = c.state.running?.startedAt ?? now;
    c.state = { terminated: { exitCode: code, reason: reason ?? (code === 0 ? 'Completed' : 'Error'), startedAt, finishedAt: now, containerID: c.containerID } };
    c.started = false;
    this.containerEnded(nsOf(pod) ?? '', nameOf(pod), c.name);
  }

  private restartWithBackoff(pod: Obj, c: CState): void {
    c.lastState = c.state;
    c.restartCount++;
    const delay = Math.min(BACKOFF_START * 2 ** (c.restartCount - 1), BACKOFF_MAX);
    c.backoffUntil = this.api.clock.now() + delay * 1000;
    c.state = { waiting: { reason: 'CrashLoopBackOff', message: `back-off ${delay}s restarting failed container=${c.name} pod=${nameOf(pod)}_${nsOf(pod)}(${uidOf(pod)})` } };
    this.api.wakeAt(`restart/${uidOf(pod)}/${c.name}`, c.backoffUntil);
    this.event(pod, 'Warning', 'BackOff', `Back-off restarting failed container ${c.name} in pod ${nameOf(pod)}_${nsOf(pod)}(${uidOf(pod)})`);
  }

  private syncPod(pod: Obj): void {
    const rt = this.runtime(pod);
    if (deleting(pod)) return this.terminate(pod, rt);
    if (!rt.sandbox) {
      if (!rt.attached && !this.attachVolumes(pod, rt)) return;
      rt.sandbox = true;
      return this.writeStatus(pod, rt);
    }
    const all = [...rt.containers.values()];
    const inits = all.filter((c) => c.kind !== 'container');
    // one step at a time: the init containers in order
    if (rt.initIndex < inits.length) {
      const c = inits[rt.initIndex]!;
      if (c.state.waiting) {
        if (this.start(pod, c)) return this.writeStatus(pod, rt);
        if (['CrashLoopBackOff', 'ImagePullBackOff', 'ErrImagePull', 'CreateContainerConfigError'].includes(c.state.waiting?.reason)) return this.writeStatus(pod, rt);
        return;
      }
      if (c.kind === 'sidecar') {
        if (c.state.running) rt.initIndex++;
        return this.writeStatus(pod, rt);
      }
      if (c.state.running) {
        const code = this.behaviourOf(pod, this.containerSpec(pod, c.name), 'init').exitCode ?? 0;
        this.exit(pod, c, code);
        if (code === 0) rt.initIndex++;
        return this.writeStatus(pod, rt);
      }
      if (c.state.terminated && c.state.terminated.exitCode !== 0) {
        this.restartWithBackoff(pod, c);
        return this.writeStatus(pod, rt);
      }
      return;
    }
    // the containers (and sidecars that crashed)
    for (const c of all) {
      if (c.kind === 'init') continue;
      if (c.state.waiting) this.start(pod, c);
      else if (c.state.running) {
        const b = this.behaviourOf(pod, this.containerSpec(pod, c.name), c.kind);
        if (b.exitCode !== undefined) this.exit(pod, c, b.exitCode, b.reason);
      } else if (c.state.terminated) {
        const policy = String((pod.spec as Any).restartPolicy ?? 'Always');
        if (c.kind === 'sidecar' || policy === 'Always' || (policy === 'OnFailure' && c.state.terminated.exitCode !== 0)) this.restartWithBackoff(pod, c);
      }
    }
    this.writeStatus(pod, rt);
  }

  private terminate(pod: Obj, rt: PodRuntime): void {
    const now = this.api.clock.now();
    if (!rt.killing) {
      const grace = Number((pod.metadata as Any).deletionGracePeriodSeconds ?? 30);
      const running = [...rt.containers.values()].filter((c) => c.state.running);
      const ignoring = running.some((c) => this.behaviourOf(pod, this.containerSpec(pod, c.name), c.kind).sigterm === 'ignore');
      rt.killing = { at: ignoring ? now + grace * 1000 : now, ignoring, done: false };
      for (const c of running) this.event(pod, 'Normal', 'Killing', `Stopping container ${c.name}`);
      if (ignoring) this.api.wakeAt(`kill/${rt.uid}`, rt.killing.at);
    }
    if (!rt.killing.done) {
      if (now < rt.killing.at) return;
      for (const c of rt.containers.values()) {
        if (c.state.running) this.exit(pod, c, rt.killing.ignoring ? 137 : 0);
        else if (c.state.waiting) c.state = { terminated: { exitCode: 0, reason: 'ContainerStatusUnknown', message: 'The container could not be located when the pod was terminated', startedAt: null, finishedAt: this.api.now() } };
      }
      rt.killing.done = true;
      this.writeStatus(pod, rt);
      return;
    }
    // every container has stopped: its volumes are unmounted (and detached), then the kubelet deletes the pod object
    this.detachVolumes(pod, rt);
    this.api.delete(this.pods, nsOf(pod), nameOf(pod), { gracePeriodSeconds: 0 });
    this.runtimes.delete(rt.uid);
  }

  private containerStatus(pod: Obj, c: CState): Any {
    const b = c.state.running ? this.behaviourOf(pod, this.containerSpec(pod, c.name), c.kind) : undefined;
    const digest = createHash('sha256').update(c.image).digest('hex');
    const s: Any = {
      name: c.name,
      state: c.state,
      lastState: c.lastState,
      // a run-to-completion init container is never ready; one that is about to crash does not pass readiness
      ready: Boolean(c.kind !== 'init' && c.state.running && b?.ready && b.exitCode === undefined),
      restartCount: c.restartCount,
      image: c.image.includes('/') ? c.image : `docker.io/library/${c.image}`,
      imageID: c.containerID ? `docker.io/library/${c.image.split(':')[0]}@sha256:${digest}` : '',
    };
    if (c.containerID && !c.state.waiting) s.containerID = c.containerID;
    s.started = Boolean(c.state.running);
    return s;
  }

  private writeStatus(pod: Obj, rt: PodRuntime): void {
    const old = (pod.status ?? {}) as Any;
    const now = this.api.now();
    const all = [...rt.containers.values()];
    const inits = all.filter((c) => c.kind !== 'container');
    const mains = all.filter((c) => c.kind === 'container');
    const initStatuses = inits.map((c) => this.containerStatus(pod, c));
    const statuses = mains.map((c) => this.containerStatus(pod, c));
    const initialized = rt.initIndex >= inits.length;
    const readyContainers = [...statuses, ...initStatuses.filter((s, i) => inits[i]!.kind === 'sidecar')];
    const notReady = readyContainers.filter((s) => !s.ready).map((s) => s.name);
    const terminating = Boolean(rt.killing?.done);
    let conditions = (old.conditions ?? []) as Condition[];
    conditions = setCondition(conditions, { type: 'PodReadyToStartContainers', status: terminating ? 'False' : 'True' }, now, { probeTime: true });
    const pendingInits = inits.filter((c, i) => i >= rt.initIndex).map((c) => c.name);
    conditions = setCondition(
      conditions,
      initialized ? { type: 'Initialized', status: 'True' } : { type: 'Initialized', status: 'False', reason: 'ContainersNotInitialized', message: `containers with incomplete status: [${pendingInits.join(' ')}]` },
      now,
      { probeTime: true },
    );
    const ready = !notReady.length && initialized && !terminating;
    const notReadyMsg = { status: 'False' as const, reason: 'ContainersNotReady', message: `containers with unready status: [${notReady.join(' ')}]` };
    conditions = setCondition(conditions, ready ? { type: 'ContainersReady', status: 'True' } : { type: 'ContainersReady', ...notReadyMsg }, now, { probeTime: true });
    conditions = setCondition(conditions, ready ? { type: 'Ready', status: 'True' } : { type: 'Ready', ...notReadyMsg }, now, { probeTime: true });
    if (!getCondition(conditions, 'PodScheduled')) conditions = setCondition(conditions, { type: 'PodScheduled', status: 'True' }, now, { probeTime: true });
    const order = ['PodReadyToStartContainers', 'Initialized', 'Ready', 'ContainersReady', 'PodScheduled'];
    conditions.sort((a, b) => order.indexOf(a.type) - order.indexOf(b.type));
    const running = initialized && mains.some((c) => c.state.running || c.state.terminated || c.restartCount > 0);
    const node = this.api.store.get(this.nodes, undefined, String((pod.spec as Any).nodeName));
    const hostIP = ((node?.status as Any | undefined)?.addresses ?? []).find((a: Any) => a.type === 'InternalIP')?.address ?? '10.0.0.1';
    const podIP = old.podIP ?? this.api.nextPodIp();
    const status: Any = {
      ...old,
      phase: running ? 'Running' : 'Pending',
      conditions,
      hostIP,
      hostIPs: [{ ip: hostIP }],
      podIP,
      podIPs: [{ ip: podIP }],
      startTime: old.startTime ?? rt.startTime,
      containerStatuses: statuses,
    };
    if (initStatuses.length) status.initContainerStatuses = initStatuses;
    delete status.reason;
    delete status.message;
    if (JSON.stringify(status) !== JSON.stringify(old)) this.api.updateStatus(this.pods, pod, status);
  }
}
