// The pod garbage collector (pkg/controller/podgc): pods bound to a node that
// no longer exists are deleted at once (force, grace 0), since no kubelet will
// ever stop them; so are Terminating pods that were never scheduled.
import type { ApiCore } from '../apiserver.js';
import type { ResourceInfo } from '../resources.js';
import { type Any, deleting, nameOf, nsOf } from './util.js';

export class PodGarbageCollector {
  private readonly pods: ResourceInfo;
  private readonly nodes: ResourceInfo;

  constructor(private readonly api: ApiCore) {
    this.pods = api.kind('v1', 'Pod');
    this.nodes = api.kind('v1', 'Node');
  }

  sync(): void {
    const nodes = new Set(this.api.store.list(this.nodes).map(nameOf));
    for (const p of this.api.store.list(this.pods)) {
      const node = (p.spec as Any | undefined)?.nodeName as string | undefined;
      if ((node && !nodes.has(node)) || (!node && deleting(p))) this.api.delete(this.pods, nsOf(p), nameOf(p), { gracePeriodSeconds: 0 });
    }
  }
}
