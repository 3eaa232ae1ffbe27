// `kompoxops cluster kubeconfig`: write, merge or print a kubeconfig for the
// cluster (app namespace as default namespace when an app is configured).
import type { Command } from 'commander';
import { action, globalOptions } from '../common.js';

export function register(cluster: Command): void {
  cluster
    .command('kubeconfig')
    .description('write a kubeconfig for the cluster (file mode 600), merge it into an existing one, or print it')
    .option('-o, --output <file>', 'file to write, or - for stdout (default: -)', '-')
    .option('--merge', 'merge into the existing file: entries with the same name are replaced, others kept')
    .option('--force', 'replace an existing file')
    .option('--context <name>', 'name of the context (and its cluster/user entries); default the cluster name')
    .option('--namespace <ns>', 'default namespace of the context; default the app namespace when an app is configured')
    .action(
      action(async (opts: { output: string; merge?: boolean; force?: boolean; context?: string; namespace?: string }, cmd: Command) => {
        const { withOpsCluster } = await import('../../app/kompoxops.js');
        const { expandUserPath } = await import('../../app/host.js');
        const { appNamespace } = await import('../../domain/names.js');
        const { buildKubeconfig, kubeconfigYaml } = await import('../../usecases/cluster-kubeconfig.js');
        const { writeKubeconfig } = await import('../files.js');
        return withOpsCluster(globalOptions(cmd), async (s, p) => {
          const app = p.config.app;
          const namespace = opts.namespace ?? (app ? appNamespace({ ...s.ctx, app }) : undefined);
          const doc = await buildKubeconfig(s.ctx, await s.kubeconfig(), { contextName: opts.context, namespace });
          if (opts.output === '-') {
            process.stdout.write(await kubeconfigYaml(doc));
            return 0;
          }
          const file = expandUserPath(opts.output, p.host.cwd, p.host.homeDir);
          const r = await writeKubeconfig(file, doc, { merge: opts.merge, force: opts.force });
          process.stderr.write(`${r.merged ? 'merged context' : 'wrote context'} "${String(doc['current-context'])}" ${r.merged ? 'into' : 'to'} ${r.file}${namespace ? ` (namespace ${namespace})` : ''}\n`);
          return 0;
        });
      }),
    );
}
