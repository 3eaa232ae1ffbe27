// The composition root: for one operation of any front end, the context, the
// provider driver (loaded on first use) and the Kubernetes client (connected
// on first use). The driver is always released at the end (it may hold an SSH
// connection that would keep a CLI process alive, or a server's sockets).
//
// Which kubeconfig a cluster is reached with is decided here: cluster.auth
// type `kubectl` names a kubeconfig file (relative to the config's directory,
// `~` for the home directory, default like kubectl); any other type is the
// driver's (e.g. K3s reading the node's k3s.yaml): its text is handed to
// kube/, which knows no providers.
import { KompoxError } from '../domain/errors.js';
import type { Op } from '../domain/events.js';
import type { ClusterContext } from '../domain/model.js';
import type { DriverHost, DriverVolumes, ProviderDriver } from '../domain/ports/driver.js';
import type { KubeClient } from '../domain/ports/kube.js';
import type { RegistryProbe } from '../domain/ports/registry.js';
import type { KubeconfigSource } from '../kube/kubeconfig.js';
import { defaultKubeconfigPath, expandUserPath } from './host.js';

export interface SessionOptions {
  /** What the driver may use of the host (SSH agent, home directory). */
  driverHost: DriverHost;
  /**
   * Directory a relative cluster.auth.kubeconfig resolves against (the
   * directory of kompoxops.yml). Absent: kubeconfig files are not used at all
   * (a server never reads a file a tenant names); only driver credentials.
   */
  configDir?: string;
  /** Environment and home directory for the default kubeconfig ($KUBECONFIG, ~/.kube/config). */
  kubeconfigHost?: { env: Readonly<Record<string, string | undefined>>; homeDir?: string };
  /** Per-request timeout of the Kubernetes client in ms. */
  kubeTimeoutMs?: number;
  /**
   * Let app deploy ask registries over the network whether an image is
   * public (src/registry/probe.ts). The CLI does (the user's own network); a
   * server must not hand tenants' image names to it (requests from its own network).
   */
  registryProbe?: boolean;
}

export interface Session<C extends ClusterContext = ClusterContext> {
  readonly ctx: C;
  /** The provider driver, loaded on first use; errors (unknown or unavailable driver) are thrown to the caller. */
  driver(): Promise<ProviderDriver>;
  /** The driver's pure volume facts, without loading the driver (no SDK). */
  volumes(): Promise<DriverVolumes>;
  /** Where the cluster's kubeconfig comes from (driver text, or a file). */
  kubeconfig(op?: Op): Promise<KubeconfigSource>;
  /** The cluster's Kubernetes client, connected (and checked) on first use. */
  kube(op?: Op): Promise<KubeClient>;
  /** The registry probe when the front end allows one (SessionOptions.registryProbe). */
  registryProbe(): Promise<RegistryProbe | undefined>;
  /** Releases the driver (idempotent). withSession calls it. */
  close(): Promise<void>;
}

export function openSession<C extends ClusterContext>(ctx: C, opts: SessionOptions): Session<C> {
  let driver: Promise<ProviderDriver> | undefined;
  let kube: Promise<KubeClient> | undefined;
  const session: Session<C> = {
    ctx,
    driver() {
      driver ??= import('../providers/index.js').then((m) => m.loadDriver(ctx.provider.driver, opts.driverHost));
      return driver;
    },
    async volumes() {
      const { loadDriverVolumes } = await import('../providers/index.js');
      return loadDriverVolumes(ctx.provider.driver);
    },
    async kubeconfig(op: Op = {}) {
      const auth = ctx.cluster.auth;
      if (auth.type === 'kubectl') {
        if (opts.configDir === undefined) {
          throw new KompoxError('config', `cluster.auth.type kubectl (a kubeconfig file) cannot be used here`, {
            field: 'cluster.auth.type',
            hint: 'Use the credentials of the provider driver.',
          });
        }
        // like kubectl: without an explicit file, $KUBECONFIG's first entry or ~/.kube/config
        const home = opts.kubeconfigHost?.homeDir;
        const path = auth.kubeconfig ? expandUserPath(auth.kubeconfig, opts.configDir, home) : defaultKubeconfigPath(opts.kubeconfigHost ?? { env: {} });
        if (!path) throw new KompoxError('config', 'no kubeconfig file is named and there is no default one', { field: 'cluster.auth.kubeconfig' });
        return { path, ...(auth.context ? { context: auth.context } : {}) };
      }
      const d = await session.driver();
      const text = d.cluster.kubeconfig ? await d.cluster.kubeconfig(ctx, op) : undefined;
      if (!text) {
        throw new KompoxError('config', `cluster.auth.type "${auth.type}" cannot be used with the ${ctx.provider.driver} driver`, {
          field: 'cluster.auth.type',
          hint: 'Use `type: kubectl` with `kubeconfig` (and optionally `context`).',
        });
      }
      return { text, ...(auth.context ? { context: auth.context } : {}), origin: `credentials from the ${ctx.provider.driver} driver for cluster ${ctx.cluster.name}` };
    },
    kube(op?: Op) {
      kube ??= (async () => {
        const { connectKubeconfig } = await import('../kube/index.js');
        return connectKubeconfig(await session.kubeconfig(op), { timeoutMs: opts.kubeTimeoutMs });
      })();
      kube.catch(() => (kube = undefined));
      return kube;
    },
    async registryProbe() {
      if (!opts.registryProbe) return undefined;
      const { httpRegistryProbe } = await import('../registry/probe.js');
      return httpRegistryProbe();
    },
    async close() {
      const d = driver;
      driver = undefined;
      const loaded = await d?.catch(() => undefined);
      await loaded?.close?.();
    },
  };
  return session;
}

/** Runs `fn` with a session and always releases the driver afterwards, whatever `fn` does. */
export async function withSession<C extends ClusterContext, T>(ctx: C, opts: SessionOptions, fn: (s: Session<C>) => Promise<T>): Promise<T> {
  const s = openSession(ctx, opts);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}
