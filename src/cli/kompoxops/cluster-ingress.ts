// kompoxops cluster deploy | undeploy | status: the ingress controller
// (Traefik with Let's Encrypt and the wildcard certificate) and the cluster's
// public address. Thin shell: flags → use case → print.
import type { Command } from 'commander';
import { action, globalOptions, parseOutputFormat, printData, renderTable, withOutput, type GlobalOptions } from '../common.js';
import type { ClusterIngressInput } from '../../usecases/cluster-deploy.js';
import type { ClusterContext, ProviderDriver } from '../../providers/driver.js';

interface Loaded {
  input: ClusterIngressInput;
  ctx: ClusterContext;
  dir: string;
  driver?: ProviderDriver;
}

/**
 * Runs `fn` with kompoxops.yml and the provider driver when this version has
 * it (it may supply credentials); the driver is released afterwards (it may
 * hold an SSH connection that would keep the process alive).
 */
async function withLoaded<T>(g: GlobalOptions, fn: (l: Loaded) => Promise<T>): Promise<T> {
  const { loadOpsConfig } = await import('../../config/index.js');
  const config = await loadOpsConfig(g);
  const ctx: ClusterContext = { service: config.service, provider: config.provider, cluster: config.cluster };
  let driver: ProviderDriver | undefined;
  try {
    const { loadDriver } = await import('../../providers/index.js');
    driver = await loadDriver(config.provider);
  } catch {
    // The ingress needs only the cluster's kubeconfig (cluster.auth); a driver
    // that is unavailable or incompletely configured is not needed for it.
    driver = undefined;
  }
  try {
    return await fn({
      input: { cluster: config.cluster, driver: config.provider.driver, configDir: config.dir, locate: (p) => config.locate(p) },
      ctx,
      dir: config.dir,
      driver,
    });
  } finally {
    await driver?.close?.();
  }
}

async function connect(l: Loaded) {
  const { connectKube } = await import('../../kube/index.js');
  return connectKube(l.ctx, { baseDir: l.dir, driver: l.driver });
}

function warn(lines: string[]): void {
  for (const w of lines) process.stderr.write(`warning: ${w}\n`);
}

export function register(cluster: Command): void {
  withOutput(
    cluster
      .command('deploy')
      .summary('install or configure the Traefik ingress controller')
      .description(
        "install Traefik as the ingress controller (on K3s: configure its bundled Traefik) with Let's Encrypt (TLS-ALPN-01) for custom hosts and the wildcard certificate for {app}.{cluster}.{domain}",
      )
      .option('--dry-run', 'server-side dry run: show what would change, change nothing')
      .addHelpText(
        'after',
        `
Settings (cluster.settings in kompoxops.yml):
  ACME_EMAIL              Let's Encrypt account e-mail (required)
  ACME_STAGING            true: app ingresses use the Let's Encrypt staging resolver
  INGRESS_TLS_CERT_FILE   wildcard certificate *.{cluster}.{domain} (PEM; relative to kompoxops.yml)
  INGRESS_TLS_KEY_FILE    its private key (PEM)
  INGRESS_TLS_SECRET      or: an existing kubernetes.io/tls Secret in the ingress namespace
  INGRESS_STORAGE_CLASS   storage class of the 128Mi volume holding acme.json (default: cluster default)
Re-running is safe: unchanged objects are left alone.`,
      ),
  ).action(
    action(async (opts: { dryRun?: boolean; output?: string }, cmd: Command) => {
      const format = parseOutputFormat(opts.output);
      return withLoaded(globalOptions(cmd), async (l) => {
        const { checkClusterIngressConfig, deployClusterIngress } = await import('../../usecases/cluster-deploy.js');
        // Config mistakes first: they are reported even when the cluster is unreachable.
        await checkClusterIngressConfig(l.input);
        const kube = await connect(l);
        const r = await deployClusterIngress(l.input, kube, {
          dryRun: opts.dryRun,
          log: format === 'table' ? (line) => process.stderr.write(`${line}\n`) : undefined,
        });
        warn(r.warnings);
        if (format !== 'table') return printData(r, format);
        const changed = r.objects.filter((o) => o.action !== 'unchanged').length;
        const where = r.variant === 'k3s' ? `K3s's Traefik in ${r.namespace}` : `Traefik in namespace ${r.namespace}`;
        process.stdout.write(
          `${r.dryRun ? 'dry run: would change' : 'changed'} ${changed} of ${r.objects.length} objects (${where})` +
            (r.certificate ? `; wildcard certificate ${r.certificate.dnsNames.join(', ')} valid until ${r.certificate.notAfter}` : '') +
            `\ncustom hosts get Let's Encrypt certificates from resolver ${r.certResolver}` +
            '\nNext: kompoxops cluster status  (the public address to point DNS records at)\n',
        );
      });
    }),
  );

  withOutput(
    cluster
      .command('undeploy')
      .summary('remove the ingress controller (keeps the ACME volume unless --purge)')
      .description('remove what cluster deploy created (on K3s: its HelmChartConfig, returning Traefik to the K3s defaults); keeps the ACME volume unless --purge')
      .option('--purge', "also delete the volume with the Let's Encrypt account and certificates (and the namespace holding it)")
      .option('--dry-run', 'server-side dry run: show what would be deleted, delete nothing'),
  ).action(
    action(async (opts: { purge?: boolean; dryRun?: boolean; output?: string }, cmd: Command) => {
      const format = parseOutputFormat(opts.output);
      return withLoaded(globalOptions(cmd), async (l) => {
        const { undeployClusterIngress } = await import('../../usecases/cluster-deploy.js');
        const kube = await connect(l);
        const r = await undeployClusterIngress(l.input, kube, {
          purge: opts.purge,
          dryRun: opts.dryRun,
          log: format === 'table' ? (line) => process.stderr.write(`${line}\n`) : undefined,
        });
        if (format !== 'table') return printData(r, format);
        process.stdout.write(
          `${r.dryRun ? 'dry run: would delete' : 'deleted'} ${r.deleted.length} objects` +
            (r.kept.length ? `; kept ${r.kept.map((k) => `${k.kind} ${k.namespace ? `${k.namespace}/` : ''}${k.name}`).join(', ')} (--purge deletes them)` : '') +
            '\n',
        );
      });
    }),
  );

  withOutput(
    cluster
      .command('status')
      .summary('reachability, version, ingress readiness and public address')
      .description('API server reachability and version, ingress controller readiness, the public IP/FQDN for DNS records, the default domain and wildcard certificate expiry'),
  ).action(
    action(async (opts: { output?: string }, cmd: Command) => {
      const format = parseOutputFormat(opts.output);
      return withLoaded(globalOptions(cmd), async (l) => {
        const { getClusterStatus } = await import('../../usecases/cluster-status.js');
        const r = await getClusterStatus(l.input, {
          connect: () => connect(l),
          ...(l.driver?.clusterStatus ? { providerStatus: () => l.driver!.clusterStatus!(l.ctx) } : {}),
        });
        const code = r.reachable ? 0 : 1;
        if (format !== 'table') {
          await printData(r, format);
          return code;
        }
        const rows: Array<{ field: string; value: string }> = [];
        const add = (field: string, value: string | number | undefined) => {
          if (value !== undefined && value !== '') rows.push({ field, value: String(value) });
        };
        add('cluster', r.cluster);
        add('server', r.server);
        add('reachable', r.reachable ? 'yes' : `no: ${r.reason ?? 'unknown reason'}`);
        add('kubernetes', r.kubernetesVersion);
        if (r.ingress) {
          const i = r.ingress;
          add('ingress', `${i.variant === 'k3s' ? "K3s's Traefik" : 'Traefik'} in ${i.namespace}: ${!i.installed ? 'not installed (run kompoxops cluster deploy)' : i.ready ? 'ready' : `not ready (${i.availableReplicas ?? 0}/${i.replicas ?? 0} available)`}${i.installed && !i.configured ? ', not configured by Kompox' : ''}`);
          add('public ip', i.ips.join(', ') || (i.installed ? '(pending: the load balancer has no address yet)' : undefined));
          add('public fqdn', i.hostnames.join(', '));
        }
        add('default domain', r.defaultDomain ? `*.${r.defaultDomain}` : undefined);
        const c = r.wildcardCertificate;
        if (c) add('wildcard cert', c.problem ? `${c.secret}: ${c.problem}` : `${c.secret}: valid until ${c.notAfter} (${c.expiresInDays} days)`);
        process.stdout.write(renderTable(rows, [{ header: 'field', get: (x) => x.field }, { header: 'value', get: (x) => x.value }]));
        return code;
      });
    }),
  );
}
