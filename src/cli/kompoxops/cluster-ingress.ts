// kompoxops cluster deploy | undeploy | status: the ingress controller
// (Traefik with Let's Encrypt and the wildcard certificate) and the cluster's
// public address. Thin shell: flags → use case → print.
import type { Command } from 'commander';
import { action, globalOptions, parseOutputFormat, printData, renderTable, withOutput, type GlobalOptions } from '../common.js';
import type { ClusterIngressInput } from '../../usecases/cluster-deploy.js';
import type { Op } from '../../domain/events.js';
import type { ClusterContext } from '../../domain/model.js';
import type { Session } from '../../app/session.js';

/**
 * Runs `fn` with the cluster's session from the composition root (the driver
 * is loaded only when needed, e.g. for its credentials, and always released;
 * its errors are reported, never swallowed) and the ingress use cases' input.
 */
async function withCluster<T>(g: GlobalOptions, fn: (s: Session<ClusterContext>, input: ClusterIngressInput) => Promise<T>): Promise<T> {
  const { withOpsCluster } = await import('../../app/kompoxops.js');
  return withOpsCluster(g, (s, p) =>
    fn(s, { cluster: s.ctx.cluster, driver: s.ctx.provider.driver, configDir: p.config.dir, locate: (path) => p.config.locate(path) }),
  );
}

function warn(lines: string[]): void {
  for (const w of lines) process.stderr.write(`warning: ${w}\n`);
}

/** Long commands: events rendered (notes only in table output), Ctrl-C aborts. */
async function withClusterOp<T>(g: GlobalOptions, logs: boolean, fn: (s: Session<ClusterContext>, input: ClusterIngressInput, op: Op) => Promise<T>): Promise<T> {
  const { withOp } = await import('../op.js');
  return withOp({ logs }, (op) => withCluster(g, (s, input) => fn(s, input, op)));
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
      return withClusterOp(globalOptions(cmd), format === 'table', async (s, input, op) => {
        const { checkClusterIngressConfig, deployClusterIngress } = await import('../../usecases/cluster-deploy.js');
        // Config mistakes first: they are reported even when the cluster is unreachable.
        await checkClusterIngressConfig(input);
        const r = await deployClusterIngress(input, await s.kube(op), { dryRun: opts.dryRun }, op);
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
      return withClusterOp(globalOptions(cmd), format === 'table', async (s, input, op) => {
        const { undeployClusterIngress } = await import('../../usecases/cluster-deploy.js');
        const { refString } = await import('../../domain/ports/kube.js');
        const r = await undeployClusterIngress(input, await s.kube(op), { purge: opts.purge, dryRun: opts.dryRun }, op);
        if (format !== 'table') return printData(r, format);
        process.stdout.write(
          `${r.dryRun ? 'dry run: would delete' : 'deleted'} ${r.deleted.length} objects` +
            (r.kept.length ? `; kept ${r.kept.map((k) => refString(k, ' ')).join(', ')} (--purge deletes them)` : '') +
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
      return withCluster(globalOptions(cmd), async (s, input) => {
        const { getClusterStatus } = await import('../../usecases/cluster-status.js');
        const r = await getClusterStatus(input, {
          connect: () => s.kube(),
          // what the driver adds (e.g. the public address); a driver that cannot be loaded is reported in the status
          providerStatus: async () => {
            const d = await s.driver();
            return d.cluster.status ? d.cluster.status(s.ctx, {}) : {};
          },
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
