// kompoxops entry point. Only commander and the small command-definition
// modules load at start-up; every action imports its use case (and with it the
// Kubernetes client or a cloud SDK) when it runs.
import { Command } from 'commander';
import { action, globalOptions, setDebug, shareGlobalOptions, watchOutputs } from '../common.js';
import { VERSION } from '../version.js';
import * as init from './init.js';
import * as appValidate from './app-validate.js';
import * as appLifecycle from './app-lifecycle.js';
import * as clusterAccess from './cluster-access.js';
import * as clusterIngress from './cluster-ingress.js';
import * as clusterNodePool from './cluster-nodepool.js';
import * as disk from './disk.js';
import * as snapshot from './snapshot.js';
import * as secret from './secret.js';
import * as box from './box.js';

export function buildProgram(): Command {
  const program = new Command('kompoxops')
    .description('Deploy and operate a Docker Compose app on Kubernetes, with its data disks and snapshots.')
    .version(VERSION, '-v, --version')
    .option('-C, --chdir <dir>', 'run as if started in <dir> (like git -C)')
    .option('-f, --file <file>', 'kompoxops.yml to use (default: ./kompoxops.yml)')
    .option('--debug', 'print stack traces and debug details')
    .showHelpAfterError('(add --help for usage)')
    .hook('preAction', (_program, cmd) => setDebug(Boolean(globalOptions(cmd).debug)));

  init.register(program);
  const app = program.command('app').description('validate, deploy and operate the app');
  appValidate.register(app);
  appLifecycle.register(app);
  const cluster = program.command('cluster').description('the Kubernetes cluster: ingress controller, status, credentials, node pools');
  clusterAccess.register(cluster);
  clusterIngress.register(cluster);
  clusterNodePool.register(cluster);
  disk.register(program);
  snapshot.register(program);
  secret.register(program);
  box.register(program);
  // Last, over the whole tree: globals anywhere, a subcommand's own flags win (see global-options.ts).
  return shareGlobalOptions(program);
}

export async function main(argv: string[]): Promise<void> {
  setDebug(argv.includes('--debug'));
  watchOutputs();
  const program = buildProgram();
  // Every command, not only the root: commander reports a usage error (unknown option,
  // missing argument) through the command that parsed it, which would otherwise exit 1 itself.
  const override = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.commands.forEach(override);
  };
  override(program);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const e = err as { code?: string; exitCode?: number };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      // commander already printed help / version / the usage error
      process.exitCode = e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : 2;
      return;
    }
    await action(async () => {
      throw err;
    })();
  }
}
