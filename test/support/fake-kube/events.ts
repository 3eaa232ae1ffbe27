// Events (core/v1) as Kubernetes components record them: one Event per
// (object, reason, message, source); a repeat bumps `count` and
// `lastTimestamp` instead of adding an object (client-go's event correlator).
// Events about cluster-scoped objects (PersistentVolumes, Nodes) live in the
// "default" namespace, as on a real cluster.
import { randomBytes } from 'node:crypto';
import type { FakeClock } from './clock.js';
import type { ResourceInfo } from './resources.js';
import type { FakeStore, Obj } from './store.js';

export interface EventSource {
  component: string;
  host?: string;
}

export class EventRecorder {
  private readonly seen = new Map<string, string>(); // correlation key → event name

  constructor(
    private readonly store: FakeStore,
    private readonly eventResource: ResourceInfo,
    private readonly namespaceResource: ResourceInfo,
    private readonly clock: FakeClock,
  ) {}

  /** Records the event; undefined when its namespace is gone or terminating (the API server refuses it there). */
  record(involved: Obj, type: 'Normal' | 'Warning', reason: string, message: string, source: EventSource): Obj | undefined {
    const meta = (involved.metadata ?? {}) as Record<string, unknown>;
    const namespace = (meta.namespace as string | undefined) ?? 'default';
    if (namespace !== 'default') {
      const ns = this.store.get(this.namespaceResource, undefined, namespace);
      if (!ns || (ns.metadata as Record<string, unknown>).deletionTimestamp) return undefined;
    }
    const ref = {
      kind: involved.kind,
      namespace: meta.namespace,
      name: meta.name,
      uid: meta.uid,
      apiVersion: involved.apiVersion,
      resourceVersion: meta.resourceVersion,
    };
    const key = [namespace, ref.kind, ref.name, ref.uid, reason, message, source.component, source.host ?? ''].join('\u0000');
    const now = this.clock.rfc3339();
    const existing = this.seen.get(key);
    if (existing) {
      const ev = this.store.get(this.eventResource, namespace, existing);
      if (ev) {
        ev.count = Number(ev.count ?? 1) + 1;
        ev.lastTimestamp = now;
        return this.store.put(this.eventResource, ev).obj;
      }
    }
    const name = `${String(meta.name)}.${randomBytes(8).toString('hex')}`;
    this.seen.set(key, name);
    return this.store.put(this.eventResource, {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace },
      involvedObject: Object.fromEntries(Object.entries(ref).filter(([, v]) => v !== undefined)),
      reason,
      message,
      source: { component: source.component, ...(source.host ? { host: source.host } : {}) },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      type,
      eventTime: null,
      reportingComponent: source.component,
      reportingInstance: source.host ?? '',
    }).obj;
  }
}
