// `kompoxops init`: a commented kompoxops.yml for one driver. Every value is
// valid as written (test/config/template.test.ts loads each driver's
// template), and placeholders the user must change say so.
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { KompoxError } from '../domain/errors.js';
import { DRIVERS, type DriverName } from '../domain/model.js';
import { dnsLabelProblem } from '../domain/names.js';
import { isDnsName } from './quantity.js';

export const SCHEMA_URL_PUBLIC = 'https://raw.githubusercontent.com/kompox/kompox-ts/main/schema/kompoxops.schema.json';

export interface TemplateOptions {
  driver: DriverName;
  /** Cluster name (default `my-<driver>`). */
  cluster?: string;
  /** App name (default `my-app`). */
  app?: string;
  /** Default DNS domain of the cluster (default example.com). */
  domain?: string;
  /** Compose file the app uses (default compose.yml). */
  compose?: string;
}

/** Driver-specific settings: [key, value, comment]; a value of undefined writes the line commented out. */
type SettingLine = [key: string, value: string | undefined, comment: string];

interface DriverTemplate {
  provider: SettingLine[];
  cluster: SettingLine[];
  app: SettingLine[];
  auth: { kubeconfig: string; context?: string; comment: string };
  /** An example zone as the driver's nodes are labelled (topology.kubernetes.io/zone). */
  zone: string;
}

const DRIVER_TEMPLATES: Record<DriverName, DriverTemplate> = {
  aks: {
    provider: [
      ['AZURE_TOKEN_CREDENTIALS', 'dev', 'credential chain: dev (az login) or prod (managed identity, workload identity)'],
      ['AZURE_TENANT_ID', '00000000-0000-0000-0000-000000000000', 'CHANGE ME: your Entra ID tenant'],
      ['AZURE_SUBSCRIPTION_ID', '00000000-0000-0000-0000-000000000000', 'CHANGE ME: the subscription the disks are billed to'],
      ['AZURE_LOCATION', 'japaneast', 'Azure region of the cluster and its disks'],
    ],
    cluster: [['AZURE_RESOURCE_GROUP_NAME', 'rg-kompox-cluster', 'resource group of the AKS cluster']],
    app: [
      ['AZURE_RESOURCE_GROUP_NAME', 'rg-kompox-app', 'resource group for the app\'s disks and snapshots'],
      ['AZURE_DISK_SIZE', '32', 'size of a new disk in GiB'],
      ['AZURE_DISK_TYPE', 'Standard_LRS', 'Standard_LRS, StandardSSD_LRS, Premium_LRS, PremiumV2_LRS'],
    ],
    auth: { kubeconfig: '~/.kube/config', comment: 'az aks get-credentials writes this context' },
    zone: 'japaneast-1',
  },
  eks: {
    provider: [
      ['AWS_REGION', 'us-east-1', 'AWS region of the cluster and its EBS volumes'],
      ['AWS_PROFILE', 'default', 'profile in ~/.aws/config (leave out to use the environment)'],
    ],
    cluster: [['AWS_EKS_CLUSTER_NAME', undefined, 'EKS cluster name when it differs from cluster.name']],
    app: [
      ['AWS_DISK_SIZE', '32', 'size of a new EBS volume in GiB'],
      ['AWS_DISK_TYPE', 'gp3', 'EBS volume type: gp3, gp2, io2'],
    ],
    auth: { kubeconfig: '~/.kube/config', comment: 'aws eks update-kubeconfig writes this context' },
    zone: 'us-east-1a',
  },
  gke: {
    provider: [
      ['GCP_PROJECT', 'my-project', 'CHANGE ME: Google Cloud project id'],
      ['GCP_REGION', 'asia-northeast1', 'region of a regional cluster'],
      ['GCP_ZONE', undefined, 'zone of a zonal cluster (instead of GCP_REGION); disks are created in it'],
      ['GOOGLE_APPLICATION_CREDENTIALS', undefined, 'service account key file (default: gcloud application-default credentials)'],
    ],
    cluster: [],
    app: [
      ['GCP_DISK_SIZE', '32', 'size of a new persistent disk in GiB'],
      ['GCP_DISK_TYPE', 'pd-balanced', 'pd-balanced, pd-ssd, pd-standard'],
    ],
    auth: { kubeconfig: '~/.kube/config', comment: 'gcloud container clusters get-credentials writes this context' },
    zone: 'asia-northeast1-a',
  },
  oke: {
    provider: [
      ['OCI_CONFIG_FILE', '~/.oci/config', 'OCI CLI/SDK configuration file'],
      ['OCI_PROFILE', 'DEFAULT', 'profile in OCI_CONFIG_FILE'],
      ['OCI_REGION', 'ap-tokyo-1', 'region of the cluster and its block volumes'],
      ['OCI_COMPARTMENT_ID', 'ocid1.compartment.oc1..change-me', 'CHANGE ME: compartment OCID for disks and snapshots'],
    ],
    cluster: [],
    app: [
      ['OCI_DISK_SIZE', '50', 'size of a new block volume in GiB (OCI minimum 50)'],
      ['OCI_DISK_VPUS_PER_GB', '10', 'performance: 0 (lower cost), 10 (balanced), 20 (higher)'],
    ],
    auth: { kubeconfig: '~/.kube/config', comment: 'oci ce cluster create-kubeconfig writes this context' },
    zone: 'AP-TOKYO-1-AD-1',
  },
  k3s: {
    provider: [
      ['K3S_DISK_ROOT', '/var/lib/kompox/disks', 'directory on the node that holds the disks (one directory each)'],
      ['K3S_SNAPSHOT_ROOT', '/var/lib/kompox/snapshots', 'directory on the node that holds snapshot archives'],
    ],
    cluster: [
      ['K3S_SSH', undefined, 'user@host[:port] of the node; leave out when kompoxops runs on the node itself'],
      ['K3S_SSH_KEY', undefined, 'private key file for K3S_SSH (default: the SSH agent)'],
      ['K3S_SSH_KNOWN_HOSTS', undefined, 'known_hosts file to check the node\'s host key against'],
      ['K3S_NODE', undefined, 'Kubernetes node name the disks live on (default: the single node)'],
    ],
    app: [['K3S_DISK_SIZE', '10', 'size recorded for a new disk in GiB (directories have no hard limit)']],
    auth: { kubeconfig: '/etc/rancher/k3s/k3s.yaml', context: 'default', comment: 'K3s writes its kubeconfig here on the node; copy it to your workstation and fix the server address' },
    zone: 'zone-a',
  },
};

function settingsBlock(lines: SettingLine[], indent: string): string {
  if (lines.length === 0) return `${indent}settings: {}\n`;
  const body = lines
    .map(([k, v, c]) => (v === undefined ? `${indent}  # ${k}: ...  # ${c}` : `${indent}  ${k}: ${/^[\w./~-]+$/.test(v) ? v : JSON.stringify(v)}  # ${c}`))
    .join('\n');
  // a block of only comments would leave "settings:" null: write an empty mapping instead
  return lines.some(([, v]) => v !== undefined) ? `${indent}settings:\n${body}\n` : `${indent}settings: {}\n${body}\n`;
}

function checkLabel(v: string, flag: string): string {
  const problem = dnsLabelProblem(v);
  if (problem) throw new KompoxError('usage', `${flag} "${v}" ${problem}`, { hint: `Give ${flag} an RFC 1123 DNS label (a-z, 0-9, '-'), e.g. ${flag} my-app.` });
  return v;
}

export function configTemplate(o: TemplateOptions): string {
  if (!(DRIVERS as readonly string[]).includes(o.driver)) {
    throw new KompoxError('usage', `unknown driver "${o.driver}"`, { hint: `Use --driver with one of: ${DRIVERS.join(', ')}.` });
  }
  const t = DRIVER_TEMPLATES[o.driver];
  const cluster = checkLabel(o.cluster ?? `my-${o.driver}`, '--name');
  const app = checkLabel(o.app ?? 'my-app', '--app');
  const domain = o.domain ?? 'example.com';
  if (!isDnsName(domain)) throw new KompoxError('usage', `--domain "${domain}" is not a DNS name`, { hint: 'Give --domain a lower-case domain such as apps.example.com.' });
  const compose = o.compose ?? 'compose.yml';
  if (/[\n:#]/.test(compose) || compose.trim() === '') throw new KompoxError('usage', `--compose "${compose}" is not a file name`, { hint: 'Give --compose a path relative to kompoxops.yml, e.g. compose.yml.' });

  return `# kompoxops.yml: where and how kompoxops runs your Docker Compose app.
# Format: docs/kompoxops-yml.md. Check it with: kompoxops app validate
# yaml-language-server: $schema=${SCHEMA_URL_PUBLIC}
version: 1

service:
  # First part of the kompox-app tag on every disk and snapshot (service/provider/cluster/app).
  name: ops

provider:
  name: ${o.driver}1
  driver: ${o.driver}
${settingsBlock(t.provider, '  ')}
cluster:
  name: ${cluster}
  auth:
    type: kubectl
    # ${t.auth.comment}
    kubeconfig: ${t.auth.kubeconfig}
    ${t.auth.context ? `context: ${t.auth.context}` : `context: ${cluster}`}
  ingress:
    controller: traefik
    namespace: traefik
  # Apps get https://{app}.{cluster}.{domain} (port 80) and {app}-{port}.{cluster}.{domain}.
  domain: ${domain}
  settings:
    # Required by "kompoxops cluster deploy": your e-mail for Let's Encrypt.
    # ACME_EMAIL: you@your-domain
    # ACME_STAGING: "true"   # use Let's Encrypt's staging CA while trying things out
    # No Docker Hub? A registry that serves Kompox's own images (busybox helper, Traefik):
    # KOMPOX_REGISTRY_MIRROR: registry.example.com/dockerhub
${settingsBlock(t.cluster, '  ').replace(/^  settings: \{\}\n/, '').replace(/^  settings:\n/, '')}
app:
  name: ${app}
  # The compose file (relative to this file), or the compose YAML itself indented under "compose:".
  compose: ${compose}
  # Custom host names per published port, with automatic TLS (point their DNS at the cluster's ingress):
  # ingress:
  #   http_80: www.example.com
  resources:
    cpu: 500m
    memory: 1Gi
  # Data volumes (default: one volume named "default" holding every named volume of the compose file):
  # volumes:
  #   - name: default
  #     size: 32Gi
  # Where the pod runs (default: any node); a name or a list. The nodes must carry the labels:
  # deployment:
  #   pool: user            # node label kompox.dev/node-pool${o.driver === 'k3s' ? ' (label your nodes: kubectl label node NODE kompox.dev/node-pool=user)' : ''}
  #   zone: ${t.zone}${' '.repeat(Math.max(1, 16 - t.zone.length))}# node label topology.kubernetes.io/zone${o.driver === 'k3s' ? ' (a K3s disk stays on its node)' : '; new disks are created in the first zone'}
${settingsBlock(t.app, '  ')}`;
}

export interface InitOptions extends TemplateOptions {
  /** -C DIR */
  chdir?: string;
  /** -f FILE */
  file?: string;
  /** The directory -C and -f are relative to (the front end's working directory). */
  cwd: string;
  force?: boolean;
}

/** Writes the template; refuses to overwrite an existing file without `force`. Returns the absolute path. */
export function writeConfigTemplate(o: InitOptions): { path: string; overwritten: boolean } {
  const text = configTemplate(o);
  const base = o.chdir ? resolve(o.cwd, o.chdir) : o.cwd;
  const path = resolve(base, o.file ?? 'kompoxops.yml');
  const dir = dirname(path);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new KompoxError('notfound', `cannot write ${path}: no such directory ${dir}`, { hint: 'Create the directory first, or use -C with an existing directory.' });
  }
  const exists = existsSync(path);
  if (exists && !o.force) {
    throw new KompoxError('conflict', `${basename(path)} already exists in ${dir}; nothing was written`, { hint: 'Use --force to overwrite it.' });
  }
  // 'wx' fails if the file appeared meanwhile: never clobber without --force.
  writeFileSync(path, text, { flag: o.force ? 'w' : 'wx' });
  return { path, overwritten: exists };
}
