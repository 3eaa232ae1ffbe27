// kompoxops secret pull set|delete, secret env set|delete, secret list:
// secrets kept out of the compose files, stored in the app's namespace.
// Thin shell: the CLI reads the file (or stdin) and hands its text to the use
// case (src/usecases/app-secrets.ts), which takes values, never paths, and
// returns names only. Nothing here ever prints a value.
//
// `-f FILE` is the subcommand's own flag (the input file), so it wins over the
// global -f (see ../global-options.ts): name another kompoxops.yml before the
// command (`kompoxops -f ops.yml secret pull set -f config.json`) or with --file.
import type { Command } from 'commander';
import { action, globalOptions, parseOutputFormat, printData, withOutput, type GlobalOptions } from '../common.js';
import type { AppContext } from '../../domain/model.js';
import type { KubeClient } from '../../domain/ports/kube.js';
import type { Op } from '../../domain/events.js';

interface SecretCommand {
  ctx: AppContext;
  kube: KubeClient;
  op: Op;
  /** The input file's text (`-` = stdin), and the name to use in messages. */
  read(file: string): Promise<{ text: string; name: string }>;
  appSource(): Promise<import('../../domain/source.js').AppSource>;
}

async function secretCommand<T>(g: GlobalOptions, fn: (s: SecretCommand) => Promise<T>): Promise<T> {
  const { resolve } = await import('node:path');
  const { readFile } = await import('node:fs/promises');
  const { withOpsApp, opsAppSource } = await import('../../app/kompoxops.js');
  const { withOp } = await import('../op.js');
  const { KompoxError } = await import('../../domain/errors.js');
  return withOp({ logs: false }, (op) =>
    withOpsApp(g, async (s, p) =>
      fn({
        ctx: s.ctx,
        kube: await s.kube(op),
        op,
        appSource: () => opsAppSource(p),
        read: async (file) => {
          if (file === '-') {
            const chunks: Buffer[] = [];
            for await (const c of process.stdin) chunks.push(c as Buffer);
            return { text: Buffer.concat(chunks).toString('utf8'), name: 'stdin' };
          }
          const path = resolve(p.host.cwd, g.chdir ?? '.', file);
          try {
            return { text: await readFile(path, 'utf8'), name: file };
          } catch (e) {
            const code = (e as NodeJS.ErrnoException).code;
            throw new KompoxError(code === 'ENOENT' ? 'notfound' : 'usage', `cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message}`, {
              hint: 'Give the file with -f FILE, or - for stdin.',
            });
          }
        },
      }),
    ),
  );
}

export function register(program: Command): void {
  const secret = program.command('secret').description('secrets kept out of the compose files: registry credentials, environment overrides (values are never shown)');
  const pull = secret.command('pull').description("the app's registry credentials (a kubernetes.io/dockerconfigjson Secret its pods pull with)");

  withOutput(
    pull
      .command('set')
      .description('store registry credentials from a Docker config.json (e.g. ~/.docker/config.json after docker login); used from the next app deploy')
      .requiredOption('-f, --from-file <file>', 'the config.json, or - for stdin (kompoxops.yml: -f before the command, or --file)'),
  ).action(
    action(async (opts: { fromFile: string; output?: string }, cmd: Command) => {
      const format = parseOutputFormat(opts.output);
      await secretCommand(globalOptions(cmd), async (s) => {
        const { setPullSecret } = await import('../../usecases/app-secrets.js');
        const input = await s.read(opts.fromFile);
        const r = await setPullSecret(s.ctx, s.kube, { dockerConfigJson: input.text, file: input.name }, s.op);
        if (format !== 'table') return printData(r, format);
        process.stdout.write(`${r.changed ? 'stored' : 'unchanged:'} registry credentials for ${r.registries.join(', ')} in Secret ${r.namespace}/${r.secret}; the pods use them from the next app deploy\n`);
      });
    }),
  );

  withOutput(pull.command('delete').description('delete the stored registry credentials')).action(
    action(async (opts: { output?: string }, cmd: Command) => {
      const format = parseOutputFormat(opts.output);
      await secretCommand(globalOptions(cmd), async (s) => {
        const { deletePullSecret } = await import('../../usecases/app-secrets.js');
        const r = await deletePullSecret(s.ctx, s.kube, s.op);
        if (format !== 'table') return printData(r, format);
        process.stdout.write(r.deleted ? `deleted Secret ${r.namespace}/${r.secret}; the pods stop using it from the next app deploy\n` : `no registry credentials are stored for app ${s.ctx.app.name}\n`);
      });
    }),
  );

  const env = secret.command('env').description("environment overrides of a service (a Secret its container reads with envFrom; they win over compose's environment)");

  withOutput(
    env
      .command('set')
      .description('store the environment overrides of a service from a dotenv file (replaces its earlier set); used from the next app deploy')
      .requiredOption('-S, --service <service>', 'the compose service')
      .requiredOption('-f, --from-file <file>', 'NAME=value lines (env_file syntax), or - for stdin (kompoxops.yml: -f before the command, or --file)'),
  ).action(
    action(async (opts: { service: string; fromFile: string; output?: string }, cmd: Command) => {
      const format = parseOutputFormat(opts.output);
      await secretCommand(globalOptions(cmd), async (s) => {
        const { parseEnvOverrides, setEnvOverrides } = await import('../../usecases/app-secrets.js');
        const { loadApp } = await import('../../usecases/app-load.js');
        const input = await s.read(opts.fromFile);
        const values = await parseEnvOverrides(input.text, input.name);
        const services = Object.keys((await loadApp(s.ctx, await s.appSource())).project.services ?? {}).sort();
        const r = await setEnvOverrides(s.ctx, s.kube, { service: opts.service, values, services }, s.op);
        if (format !== 'table') return printData(r, format);
        process.stdout.write(
          `${r.changed ? 'stored' : 'unchanged:'} ${r.keys.length} environment override${r.keys.length === 1 ? '' : 's'} for service ${r.service} (${r.keys.join(', ')}) in Secret ${r.namespace}/${r.secret}; the pod uses them from the next app deploy\n`,
        );
      });
    }),
  );

  withOutput(env.command('delete').description('delete the environment overrides of a service').requiredOption('-S, --service <service>', 'the compose service')).action(
    action(async (opts: { service: string; output?: string }, cmd: Command) => {
      const format = parseOutputFormat(opts.output);
      await secretCommand(globalOptions(cmd), async (s) => {
        const { deleteEnvOverrides } = await import('../../usecases/app-secrets.js');
        const r = await deleteEnvOverrides(s.ctx, s.kube, { service: opts.service }, s.op);
        if (format !== 'table') return printData(r, format);
        process.stdout.write(
          r.deleted ? `deleted Secret ${r.namespace}/${r.secret}; the compose environment of ${r.service} applies again from the next app deploy\n` : `no environment overrides are stored for service ${r.service}\n`,
        );
      });
    }),
  );

  withOutput(secret.command('list').description('the stored secrets: names, registries and variable names (never values)')).action(
    action(async (opts: { output?: string }, cmd: Command) => {
      const format = parseOutputFormat(opts.output);
      await secretCommand(globalOptions(cmd), async (s) => {
        const { readStoredSecrets } = await import('../../usecases/app-secrets.js');
        const st = await readStoredSecrets(s.ctx, s.kube);
        const rows = [
          ...(st.pull ? [{ kind: 'pull', secret: st.pull.secret, for: st.pull.registries.join(', ') }] : []),
          ...st.env.map((e) => ({ kind: 'env', secret: e.secret, for: `${e.service}: ${e.keys.join(', ')}` })),
        ];
        if (format !== 'table') return printData({ ...(st.pull ? { pull: st.pull } : {}), env: st.env }, format);
        if (!rows.length) return void process.stdout.write(`no secrets are stored for app ${s.ctx.app.name}\n`);
        await printData(rows, 'table', [
          { header: 'kind', get: (r) => r.kind },
          { header: 'secret', get: (r) => r.secret },
          { header: 'registries / variables', get: (r) => r.for },
        ]);
      });
    }),
  );
}
