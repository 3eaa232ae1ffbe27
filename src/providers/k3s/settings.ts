// K3s driver settings. They are looked up in app.settings, then
// cluster.settings, then provider.settings (the most specific wins), because
// the disk root belongs to a node (cluster) but is usually the same everywhere.
// (K3S_DISK_SIZE is read with the volume facts, k3s/volume.ts.)
import { KompoxError } from '../../domain/errors.js';
import { lookupSetting, type AppContext, type Cluster, type Provider } from '../../domain/model.js';

export const DEFAULT_DISK_ROOT = '/var/lib/kompox/disks';
export const DEFAULT_SNAPSHOT_ROOT = '/var/lib/kompox/snapshots';

export interface K3sSettings {
  diskRoot: string;
  snapshotRoot: string;
  /** K3s node the disks live on (PV node affinity); undefined = the host name recorded on each disk. */
  node?: string;
  /** `user@host[:port]` to reach the node over SSH; undefined = local filesystem. */
  ssh?: string;
  sshKey?: string;
  sshKnownHosts?: string;
  /** Kubeconfig on the node (cluster.auth.type k3s). */
  kubeconfigPath: string;
  /** API server URL to put into that kubeconfig; default: https://{K3S_SSH host}:{port} when over SSH. */
  apiServer?: string;
  publicIP?: string;
  publicFQDN?: string;
}

export const DEFAULT_K3S_KUBECONFIG = '/etc/rancher/k3s/k3s.yaml';

type Ctx = { provider: Provider; cluster?: Cluster; app?: { settings: Record<string, string> } };

function absolutePath(ctx: Ctx, key: string, fallback: string): string {
  const v = lookupSetting(ctx, key);
  if (!v) return fallback;
  if (!v.value.startsWith('/')) {
    throw new KompoxError('config', `${key} must be an absolute path on the K3s node, got "${v.value}"`, {
      field: v.field,
      hint: `Set it to a directory such as ${fallback}.`,
    });
  }
  return v.value.replace(/\/+$/, '') || '/';
}

export function k3sSettings(ctx: Ctx | AppContext): K3sSettings {
  const diskRoot = absolutePath(ctx, 'K3S_DISK_ROOT', DEFAULT_DISK_ROOT);
  const snapshotRoot = absolutePath(ctx, 'K3S_SNAPSHOT_ROOT', DEFAULT_SNAPSHOT_ROOT);
  if (diskRoot === snapshotRoot) {
    throw new KompoxError('config', `K3S_DISK_ROOT and K3S_SNAPSHOT_ROOT are both ${diskRoot}`, {
      field: lookupSetting(ctx, 'K3S_SNAPSHOT_ROOT')?.field ?? 'provider.settings.K3S_SNAPSHOT_ROOT',
      hint: 'Use two different directories.',
    });
  }
  return {
    diskRoot,
    snapshotRoot,
    node: lookupSetting(ctx, 'K3S_NODE')?.value,
    ssh: lookupSetting(ctx, 'K3S_SSH')?.value,
    sshKey: lookupSetting(ctx, 'K3S_SSH_KEY')?.value,
    sshKnownHosts: lookupSetting(ctx, 'K3S_SSH_KNOWN_HOSTS')?.value,
    kubeconfigPath: absolutePath(ctx, 'K3S_KUBECONFIG', DEFAULT_K3S_KUBECONFIG),
    apiServer: lookupSetting(ctx, 'K3S_API_SERVER')?.value,
    publicIP: lookupSetting(ctx, 'K3S_PUBLIC_IP')?.value,
    publicFQDN: lookupSetting(ctx, 'K3S_PUBLIC_FQDN')?.value,
  };
}

export const SETTING_NODE_REGISTRIES = 'K3S_NODE_REGISTRIES';

/**
 * K3S_NODE_REGISTRIES: registries (host[:port], a glob such as *.example.com
 * for a label) whose credentials the K3s nodes hold themselves, in
 * /etc/rancher/k3s/registries.yaml (`configs.<registry>.auth`), so their
 * images need no pull secret. Comma- or space-separated.
 */
export function k3sNodeRegistries(ctx: Ctx): string[] {
  return (lookupSetting(ctx, SETTING_NODE_REGISTRIES)?.value ?? '').split(/[\s,]+/).filter(Boolean);
}
