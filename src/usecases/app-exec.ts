// `app exec`: run a command in the app pod; the remote exit code is returned.
import { KompoxError } from '../domain/errors.js';
import type { AppContext } from '../domain/model.js';
import { appNamespace } from '../domain/names.js';
import type { KubeClient } from '../domain/ports/kube.js';
import { chooseContainer, findAppPod } from './app-logs.js';

export interface AppExecOptions {
  command: string[];
  container?: string;
  stdin?: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  tty?: boolean;
}

export async function appExec(ctx: AppContext, kube: KubeClient, opts: AppExecOptions): Promise<number> {
  if (opts.command.length === 0) {
    throw new KompoxError('usage', 'no command given', { code: 'app.exec.command', hint: 'Give the command to run in the pod.' });
  }
  const pod = await findAppPod(ctx, kube);
  // any container of the pod, sidecars included; by default the first regular one (the app, not a dependency)
  const container = chooseContainer(pod, opts.container);
  return kube.exec(appNamespace(ctx), pod.metadata.name, container, opts.command, {
    stdin: opts.stdin,
    stdout: opts.stdout,
    stderr: opts.stderr,
    tty: opts.tty,
  });
}
