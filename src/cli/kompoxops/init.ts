// kompoxops init: writes a commented kompoxops.yml template.
import type { Command } from 'commander';
import { action, globalOptions } from '../common.js';

export function register(program: Command): void {
  program
    .command('init')
    .description('write a commented kompoxops.yml template for a provider driver')
    .option('--driver <driver>', 'provider driver: aks, eks, gke, oke or k3s', 'k3s')
    .option('--name <cluster>', 'cluster name (default my-<driver>)')
    .option('--app <name>', 'app name (default my-app)')
    .option('--domain <domain>', 'default DNS domain of the cluster (default example.com)')
    .option('--compose <file>', 'compose file of the app, relative to kompoxops.yml', 'compose.yml')
    .option('--force', 'overwrite an existing kompoxops.yml')
    .action(
      action(async (opts: { driver: string; name?: string; app?: string; domain?: string; compose: string; force?: boolean }, cmd: Command) => {
        const g = globalOptions(cmd);
        const { writeConfigTemplate } = await import('../../config/template.js');
        const { displayPath } = await import('../../config/index.js');
        const r = writeConfigTemplate({
          driver: opts.driver as never,
          cluster: opts.name,
          app: opts.app,
          domain: opts.domain,
          compose: opts.compose,
          force: opts.force,
          chdir: g.chdir,
          file: g.file,
          cwd: process.cwd(),
        });
        process.stdout.write(
          `${r.overwritten ? 'overwrote' : 'wrote'} ${displayPath(r.path, process.cwd())} (driver ${opts.driver}). ` +
            'Edit the values marked CHANGE ME, then run "kompoxops app validate".\n',
        );
      }),
    );
}
