// Running a long use case from the CLI: its events go to the one renderer,
// and Ctrl-C (or TERM, or HUP: the terminal or the SSH session it ran in was
// closed, whose default would end the process on the spot, a quiesced app
// left stopped) aborts it through the Op's signal. The use case then
// undoes what must not stay half-done (a quiesced app is started again, a
// half-written disk or archive is removed) and fails with `interrupted`; the
// process ends at once with exit code 130, even if work it no longer waits
// for is still running (what that leaves is never listed and is swept later).
// A second Ctrl-C ends the process without waiting.
import { ExitCode } from '../domain/errors.js';
import type { Op } from '../domain/events.js';
import { reportError } from './common.js';
import { EventRenderer, type RendererOptions } from './render.js';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export async function withOp<T>(opts: RendererOptions, fn: (op: Op, renderer: EventRenderer) => Promise<T>): Promise<T> {
  const renderer = new EventRenderer(opts);
  const ac = new AbortController();
  const onSignal = () => {
    if (ac.signal.aborted) process.exit(ExitCode.interrupted);
    renderer.end();
    ac.abort();
  };
  for (const sig of SIGNALS) process.on(sig, onSignal);
  try {
    return await fn({ signal: ac.signal, events: renderer.sink }, renderer);
  } catch (e) {
    renderer.end();
    if (ac.signal.aborted) process.exit(reportError(e));
    throw e;
  } finally {
    renderer.end();
    for (const sig of SIGNALS) process.removeListener(sig, onSignal);
  }
}
