// Runs the fake's controllers the way their informers would: whenever the
// store changes (or a timer of the fake clock fires), every controller looks
// at the whole store once more, one pass per event-loop turn, until a pass
// changes nothing. Passes are asynchronous, like real controllers: a client
// that has just written sees the old state for a moment.
import type { ApiCore } from '../apiserver.js';

export interface Controller {
  sync(): void;
}

export class ControllerManager {
  private pending = false;
  private closed = false;
  private busyPasses = 0;
  private idleWaiters: (() => void)[] = [];
  /** Errors thrown by controllers (a test can assert there are none). */
  readonly errors: Error[] = [];

  constructor(
    private readonly api: ApiCore,
    private readonly controllers: Controller[],
  ) {
    api.kick = () => this.kick();
    api.store.onChange(() => this.kick());
  }

  kick(): void {
    if (this.pending || this.closed) return;
    this.pending = true;
    // a store that never settles (a controller fighting another) must not starve the HTTP server
    if (this.busyPasses > 1000) setTimeout(() => this.pass(), 20).unref?.();
    else setImmediate(() => this.pass());
  }

  private pass(): void {
    this.pending = false;
    if (this.closed) return;
    const before = this.api.store.resourceVersion;
    for (const c of this.controllers) {
      try {
        c.sync();
      } catch (e) {
        if (this.errors.length < 100) this.errors.push(e as Error);
      }
    }
    const changed = this.api.store.resourceVersion !== before;
    this.busyPasses = changed ? this.busyPasses + 1 : 0;
    if (this.busyPasses === 1001) this.errors.push(new Error('fake controllers: more than 1000 passes in a row changed the store'));
    if (!this.pending && !changed) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Resolves once a pass has changed nothing (timers still pending, e.g. grace periods, are not waited for). */
  settle(): Promise<void> {
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      this.kick();
    });
  }

  close(): void {
    this.closed = true;
    for (const w of this.idleWaiters) w();
    this.idleWaiters = [];
  }
}
