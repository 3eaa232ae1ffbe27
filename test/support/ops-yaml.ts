// A kompoxops.yml for CLI tests: the K3s driver with its disk and snapshot
// roots under a test's directory, a cluster reached through ./kubeconfig.
import { join } from 'node:path';

export interface K3sOpsYamlOptions {
  /** The app's name. */
  app: string;
  /** The cluster's domain (ingress host names). */
  domain?: string;
  /** The kubeconfig context to use. */
  context?: string;
  /** The cluster's settings (each value quoted). */
  clusterSettings?: Record<string, string>;
  /** The app's volumes. */
  volumes?: Array<{ name: string; size: string }>;
}

export function k3sOpsYaml(dir: string, opts: K3sOpsYamlOptions): string {
  return [
    'version: 1',
    'service: {name: ops}',
    'provider:',
    '  name: k3s1',
    '  driver: k3s',
    '  settings:',
    `    K3S_DISK_ROOT: ${join(dir, 'disks')}`,
    `    K3S_SNAPSHOT_ROOT: ${join(dir, 'snapshots')}`,
    '    K3S_NODE: node1',
    'cluster:',
    '  name: k3s',
    '  auth:',
    '    type: kubectl',
    '    kubeconfig: ./kubeconfig',
    ...(opts.context ? [`    context: ${opts.context}`] : []),
    ...(opts.domain ? [`  domain: ${opts.domain}`] : []),
    ...(opts.clusterSettings ? ['  settings:', ...Object.entries(opts.clusterSettings).map(([k, v]) => `    ${k}: "${v}"`)] : []),
    'app:',
    `  name: ${opts.app}`,
    '  compose: compose.yml',
    ...(opts.volumes ? ['  volumes:', ...opts.volumes.flatMap((v) => [`    - name: ${v.name}`, `      size: ${v.size}`])] : []),
    '',
  ].join('\n');
}

/** A compose file of one service (nginx) with the app's one volume `default` mounted. */
export const ONE_VOLUME_COMPOSE = `services:
  web:
    image: nginx:1.27
    volumes:
      - default:/data
volumes:
  default: {}
`;
