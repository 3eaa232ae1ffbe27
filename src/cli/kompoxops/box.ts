// kompoxops box deploy | exec | shell | rsync | destroy: a maintenance pod on
// the app's disks (src/usecases/box.ts). shell, exec and rsync use the
// deployed box, or deploy one for the command and remove it at its end (a
// session), also on Ctrl-C or TERM (the Op's signal; exit 130).
import type { Command } from 'commander';
import { action, durationFlag, globalOptions, parseOutputFormat, printData, withOutput, type GlobalOptions } from '../common.js';
import type { AppContext } from '../../domain/model.js';
import type { KubeClient } from '../../domain/ports/kube.js';
import type { Op } from '../../domain/events.js';
import type { BoxDeployOptions } from '../../usecases/box.js';

interface BoxOpts {
  live?: boolean;
  image?: string;
  stopTimeout: string;
  timeout: string;
}

function deployOptions(cmd: Command): Command {
  return cmd
    .option('--live', "keep the app running (the box shares its disks; it runs on the app's node)")
    .option('--image <image>', 'the box image (default: setting KOMPOX_BOX_IMAGE, or the pinned Alpine image with rsync installed at start)')
    .option('--stop-timeout <duration>', "how long to wait for the app's pod to stop, e.g. 90s, 2m", '2m')
    .option('--timeout <duration>', 'how long to wait for the box to run, e.g. 90s, 5m', '5m');
}

function boxOptions(o: BoxOpts): BoxDeployOptions {
  return {
    ...(o.live ? { live: true } : {}),
    ...(o.image ? { image: o.image } : {}),
    stopTimeoutMs: durationFlag(o.stopTimeout, '--stop-timeout'),
    startTimeoutMs: durationFlag(o.timeout, '--timeout'),
  };
}

async function boxCommand<T>(g: GlobalOptions, fn: (ctx: AppContext, kube: KubeClient, op: Op) => Promise<T>): Promise<T> {
  const { withOpsApp } = await import('../../app/kompoxops.js');
  const { withOp } = await import('../op.js');
  return withOp({}, (op) => withOpsApp(g, async (s) => fn(s.ctx, await s.kube(op), op)));
}

const uc = () => import('../../usecases/box.js');

/** Runs a local program with inherited stdio; its exit code (127 when it is not installed). Stopped when the op is cancelled. */
async function runLocal(command: string, args: string[], op: Op): Promise<number> {
  const { spawn } = await import('node:child_process');
  return new Promise<number>((resolve) => {
    const child = spawn(command, args, { stdio: 'inherit' });
    const stop = () => child.kill('SIGTERM');
    op.signal?.addEventListener('abort', stop, { once: true });
    child.on('error', (e: NodeJS.ErrnoException) => {
      process.stderr.write(e.code === 'ENOENT' ? `error: ${command} is not installed on this machine (not found on PATH)\n` : `error: cannot run ${command}: ${e.message}\n`);
      resolve(127);
    });
    child.on('exit', (c, sig) => {
      op.signal?.removeEventListener('abort', stop);
      resolve(c ?? (sig ? 128 : 1));
    });
  });
}

export function register(program: Command): void {
  const box = program.command('box').description("a maintenance pod on the app's disks: deploy, exec, shell, rsync, destroy");

  withOutput(deployOptions(box.command('deploy').description('stop the app (unless --live) and run the box with the app volumes at /data/VOLUME'))).action(
    action(async (opts: BoxOpts & { output?: string }, cmd: Command) => {
      const format = parseOutputFormat(opts.output);
      const o = boxOptions(opts);
      await boxCommand(globalOptions(cmd), async (ctx, kube, op) => {
        const { deployBox } = await uc();
        const r = await deployBox(ctx, kube, o, op);
        if (format !== 'table') return printData({ created: r.created, ...r.box }, format);
        const mounts = Object.values(r.box.mounts).join(', ');
        process.stdout.write(
          r.created
            ? `box ${r.box.pod?.name} runs with ${mounts}${r.box.mode === 'live' ? ' (live: the app keeps running)' : '; the app is stopped until the box is destroyed'}\n`
            : `box ${r.box.pod?.name} is deployed already${r.box.since ? ` (since ${r.box.since}` : ' ('}${r.box.session ? ', left by an interrupted command' : ''}) with ${mounts}\n`,
        );
      });
    }),
  );

  withOutput(box.command('destroy').description('remove the box and start the app again')).action(
    action(async (opts: { output?: string }, cmd: Command) => {
      const format = parseOutputFormat(opts.output);
      await boxCommand(globalOptions(cmd), async (ctx, kube, op) => {
        const { destroyBox } = await uc();
        const r = await destroyBox(ctx, kube, {}, op);
        if (format !== 'table') return printData(r, format);
        const left = r.left?.length ? `; left ${r.left.map((l) => `${l.deployment} stopped for the quiesced ${l.by}`).join(', ')}` : '';
        process.stdout.write(r.existed ? `box removed${Object.keys(r.restored).length ? '; the app runs again' : ''}${left}\n` : `app ${ctx.app.name} has no box\n`);
      });
    }),
  );

  deployOptions(
    box
      .command('exec')
      .description('run a command in the box (a box is deployed for it when none is, and removed after)')
      .option('-i, --stdin', 'pass stdin to the command')
      .option('-t, --tty', 'allocate a terminal')
      .argument('<command...>', 'the command, after --'),
  ).action(
    action(async (command: string[], opts: BoxOpts & { stdin?: boolean; tty?: boolean }, cmd: Command) => {
      const o = boxOptions(opts);
      return boxCommand(globalOptions(cmd), async (ctx, kube, op) => {
        const { withBox, boxExec } = await uc();
        return withBox(ctx, kube, o, op, () => execIo(opts.stdin, opts.tty, (io) => boxExec(ctx, kube, { command, ...io })));
      });
    }),
  );

  deployOptions(box.command('shell').description('an interactive shell in the box, in /data (a box is deployed for it when none is, and removed after)')).action(
    action(async (opts: BoxOpts, cmd: Command) => {
      const o = boxOptions(opts);
      return boxCommand(globalOptions(cmd), async (ctx, kube, op) => {
        const { withBox, boxExec, BOX_SHELL } = await uc();
        return withBox(ctx, kube, o, op, () => execIo(true, Boolean(process.stdin.isTTY), (io) => boxExec(ctx, kube, { command: BOX_SHELL, ...io })));
      });
    }),
  );

  deployOptions(
    box
      .command('rsync')
      .description('rsync to or from the box through a port-forward: box:VOLUME/PATH names the box side (without arguments: forward until Ctrl-C)')
      .option('-p, --port <port>', 'local port of the forward (default: a free one)')
      .argument('[args...]', 'rsync arguments after --, e.g. -- -av ./site/ box:default/html/'),
  ).action(
    action(async (args: string[], opts: BoxOpts & { port?: string }, cmd: Command) => {
      const o = boxOptions(opts);
      const { KompoxError } = await import('../../domain/errors.js');
      if (opts.port !== undefined && !/^\d{1,5}$/.test(opts.port)) throw new KompoxError('usage', `--port "${opts.port}" is not a port number`);
      return boxCommand(globalOptions(cmd), async (ctx, kube, op) => {
        const { withBox, openBoxRsync, rsyncArgs } = await uc();
        return withBox(ctx, kube, o, op, async (b) => {
          const f = await openBoxRsync(ctx, kube, { localPort: opts.port ? Number(opts.port) : 0 });
          try {
            process.stderr.write(`rsync daemon of the box at ${f.url} (modules: ${Object.keys(b.mounts).join(', ')})\n`);
            if (args.length) return await runLocal('rsync', rsyncArgs(args, f.url), op);
            process.stderr.write('press Ctrl-C to stop\n');
            await new Promise<void>((resolve) => {
              if (op.signal?.aborted) resolve();
              op.signal?.addEventListener('abort', () => resolve(), { once: true });
            });
            return 0;
          } finally {
            await f.close();
          }
        });
      });
    }),
  );
}

/** The terminal's streams for an exec (raw mode while a TTY is attached). */
async function execIo<T>(stdin: boolean | undefined, tty: boolean | undefined, fn: (io: { stdin?: NodeJS.ReadableStream; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream; tty?: boolean }) => Promise<T>): Promise<T> {
  const raw = Boolean(tty && stdin && process.stdin.isTTY);
  if (raw) process.stdin.setRawMode(true);
  try {
    return await fn({ stdin: stdin ? process.stdin : undefined, stdout: process.stdout, stderr: process.stderr, tty: Boolean(tty) });
  } finally {
    if (raw) process.stdin.setRawMode(false);
    if (stdin) process.stdin.pause();
  }
}
