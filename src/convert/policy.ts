// The per-key policy for compose service keys: the single table the converter
// enforces and docs/conversion.md documents (a test keeps the two in sync).
//   convert: mapped to Kubernetes (details in the converter modules)
//   warn:    not (fully) representable; converted as far as possible or ignored, with a warning
//   reject:  unsafe or impossible on a shared cluster; an error
//   ignore:  meaningless inside one pod; dropped without a warning (reason documented)
// `when` narrows a warn/reject to the values it applies to (privileged: true, not false).
import type { ServiceConfig } from '../compose/model.js';
import type { Diagnostics } from './diagnostics.js';

export type PolicyAction = 'convert' | 'warn' | 'reject' | 'ignore';

export interface KeyPolicy {
  action: PolicyAction;
  /** What happens / why; shown in warnings and errors. */
  note: string;
  /** What to do instead (reject/warn). */
  hint?: string;
  when?: (value: unknown) => boolean;
}

const truthy = (v: unknown) => v === true;
const nonEmpty = (v: unknown) => v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0) && !(typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0);

export const SERVICE_KEY_POLICY: Readonly<Record<string, KeyPolicy>> = {
  annotations: { action: 'warn', note: 'container annotations are ignored' },
  attach: { action: 'ignore', note: 'log attachment is a docker compose CLI concern' },
  blkio_config: { action: 'warn', note: 'block IO limits are ignored (no Kubernetes equivalent)' },
  build: { action: 'convert', note: 'ignored when image is set (warning: the image is pulled, push it first); build without image is an error' },
  cap_add: { action: 'convert', note: 'securityContext.capabilities.add (warning for capabilities beyond the Pod Security baseline)' },
  cap_drop: { action: 'convert', note: 'securityContext.capabilities.drop' },
  cgroup: { action: 'warn', note: 'cgroup namespace mode is ignored' },
  cgroup_parent: { action: 'warn', note: 'cgroup_parent is ignored (the kubelet manages cgroups)' },
  command: { action: 'convert', note: 'container args (Kubernetes args = Docker CMD)' },
  configs: { action: 'convert', note: 'ConfigMap mounted read-only as a single file' },
  container_name: { action: 'warn', note: 'container_name is ignored (the container is named after the service; the name still resolves to the pod via hostAliases)' },
  cpu_count: { action: 'warn', note: 'ignored; use cpus or deploy.resources' },
  cpu_percent: { action: 'warn', note: 'ignored; use cpus or deploy.resources' },
  cpu_period: { action: 'warn', note: 'ignored; use cpus or deploy.resources' },
  cpu_quota: { action: 'warn', note: 'ignored; use cpus or deploy.resources' },
  cpu_rt_period: { action: 'warn', note: 'real-time scheduling is ignored' },
  cpu_rt_runtime: { action: 'warn', note: 'real-time scheduling is ignored' },
  cpu_shares: { action: 'warn', note: 'ignored; use cpus or deploy.resources' },
  cpus: { action: 'convert', note: 'resources.limits.cpu' },
  cpuset: { action: 'warn', note: 'CPU pinning is ignored' },
  credential_spec: { action: 'warn', note: 'Windows credential specs are ignored' },
  depends_on: { action: 'convert', note: 'start order inside the pod: a dependency becomes a sidecar init container (service_healthy: its healthcheck is the startupProbe), service_completed_successfully an init container that must exit 0; Kubernetes >= 1.29 (on an older server, or with the cluster setting KOMPOX_SIDECARS=false: no ordering, warned)' },
  deploy: { action: 'convert', note: 'deploy.resources → container resources; other deploy keys are ignored with a warning (always one replica)' },
  develop: { action: 'ignore', note: 'compose watch is a development feature' },
  device_cgroup_rules: { action: 'reject', note: 'device access breaks tenant isolation', hint: 'Remove device_cgroup_rules; devices are not available on shared cluster nodes.', when: nonEmpty },
  devices: { action: 'reject', note: 'host devices are not available to pods on a shared cluster', hint: 'Remove devices.', when: nonEmpty },
  dns: { action: 'warn', note: 'custom DNS servers are ignored (the pod uses cluster DNS)' },
  dns_opt: { action: 'warn', note: 'DNS options are ignored (the pod uses cluster DNS)' },
  dns_search: { action: 'warn', note: 'DNS search domains are ignored (the pod uses cluster DNS)' },
  domainname: { action: 'warn', note: 'domainname is ignored' },
  entrypoint: { action: 'convert', note: 'container command (Kubernetes command = Docker ENTRYPOINT)' },
  env_file: { action: 'convert', note: 'merged by the loader (environment wins); secret-looking keys go to a Secret' },
  environment: { action: 'convert', note: 'container env, sorted; unset (null) values are omitted with a warning' },
  expose: { action: 'convert', note: 'Service ports (no ingress host)' },
  extends: { action: 'convert', note: 'resolved by the loader' },
  external_links: { action: 'warn', note: 'external links are ignored (no docker network)' },
  extra_hosts: { action: 'convert', note: 'pod hostAliases' },
  gpus: { action: 'warn', note: 'GPUs are ignored (shared clusters have no GPU nodes by default)' },
  group_add: { action: 'warn', note: 'supplementary groups are ignored' },
  healthcheck: { action: 'convert', note: 'readiness and liveness probes; start_period → startupProbe' },
  hostname: { action: 'convert', note: 'pod hostname (one per pod)' },
  image: { action: 'convert', note: 'container image (required)' },
  init: { action: 'warn', note: 'no init process is injected; use an image with tini if the app leaves zombie processes', when: truthy },
  ipc: { action: 'warn', note: 'IPC namespace settings are ignored (containers of the pod share IPC)' },
  isolation: { action: 'warn', note: 'isolation technology is ignored' },
  label_file: { action: 'warn', note: 'labels are Docker metadata and are ignored' },
  labels: { action: 'warn', note: 'labels are Docker metadata and are ignored (routing labels such as traefik.* do not apply; use app.ingress)' },
  links: { action: 'ignore', note: 'every service runs in the same pod; names resolve to 127.0.0.1 via hostAliases' },
  logging: { action: 'warn', note: 'logging drivers are ignored (container logs go to the cluster log pipeline; see app logs)' },
  mac_address: { action: 'warn', note: 'MAC addresses are ignored' },
  mem_limit: { action: 'convert', note: 'resources.limits.memory' },
  mem_reservation: { action: 'convert', note: 'resources.requests.memory' },
  mem_swappiness: { action: 'warn', note: 'swap settings are ignored' },
  memswap_limit: { action: 'warn', note: 'swap settings are ignored' },
  models: { action: 'warn', note: 'AI models are ignored' },
  network_mode: { action: 'convert', note: '"service:x" is the pod default; "host" is rejected (tenant isolation); "none" and others are ignored with a warning' },
  networks: { action: 'ignore', note: 'services share the pod network (localhost); aliases resolve via hostAliases; ipv4_address/ipv6_address are warned' },
  oom_kill_disable: { action: 'warn', note: 'OOM settings are ignored' },
  oom_score_adj: { action: 'warn', note: 'OOM settings are ignored' },
  pid: { action: 'reject', note: 'sharing the host PID namespace breaks tenant isolation', hint: 'Remove pid: host.', when: (v) => v === 'host' },
  pids_limit: { action: 'warn', note: 'PID limits are set by the cluster' },
  platform: { action: 'warn', note: 'platform is ignored (nodes pull the image for their own architecture)' },
  ports: { action: 'convert', note: 'Service ports; HTTP ports get Traefik ingress hosts' },
  post_start: { action: 'warn', note: 'lifecycle hooks are ignored' },
  pre_stop: { action: 'warn', note: 'lifecycle hooks are ignored' },
  privileged: { action: 'reject', note: 'privileged containers get root on the node (tenant isolation)', hint: 'Remove privileged: true; add only the capabilities the app needs with cap_add.', when: truthy },
  profiles: { action: 'ignore', note: 'applied by the loader (inactive services are not converted)' },
  provider: { action: 'reject', note: 'compose provider services (external resources) cannot run in a pod', hint: 'Replace the service with a container image.' },
  pull_policy: { action: 'convert', note: 'imagePullPolicy (always/never/missing; "build" is warned)' },
  read_only: { action: 'convert', note: 'securityContext.readOnlyRootFilesystem' },
  restart: { action: 'convert', note: 'pods always restart containers; "no" and "on-failure" are warned' },
  runtime: { action: 'warn', note: 'runtime is ignored (the cluster chooses the container runtime)' },
  scale: { action: 'warn', note: 'always one replica (stateful app on an RWO disk)' },
  secrets: { action: 'convert', note: 'Secret mounted read-only as a single file at /run/secrets/<name>' },
  security_opt: { action: 'warn', note: 'security options are ignored (the pod runs with the RuntimeDefault seccomp profile, like Docker\'s default)' },
  shm_size: { action: 'convert', note: 'emptyDir (medium Memory, sizeLimit) at /dev/shm' },
  stdin_open: { action: 'convert', note: 'container stdin' },
  stop_grace_period: { action: 'convert', note: 'terminationGracePeriodSeconds (largest over services)' },
  stop_signal: { action: 'warn', note: 'the container gets SIGTERM; set STOPSIGNAL in the image if it needs another signal' },
  storage_opt: { action: 'warn', note: 'storage options are ignored' },
  sysctls: { action: 'warn', note: 'sysctls are ignored (unsafe sysctls need kubelet flags on every node)', when: nonEmpty },
  tmpfs: { action: 'convert', note: 'emptyDir (medium Memory) mounts' },
  tty: { action: 'convert', note: 'container tty' },
  ulimits: { action: 'warn', note: 'ulimits are ignored (set by the node)' },
  use_api_socket: { action: 'reject', note: 'the Docker API socket gives root on the node', hint: 'Remove use_api_socket.', when: truthy },
  user: { action: 'convert', note: 'numeric uid[:gid] → securityContext runAsUser/runAsGroup; user names are warned' },
  userns_mode: { action: 'reject', note: 'the host user namespace breaks tenant isolation', hint: 'Remove userns_mode: host.', when: (v) => v === 'host' },
  uts: { action: 'reject', note: 'the host UTS namespace breaks tenant isolation', hint: 'Remove uts: host.', when: (v) => v === 'host' },
  volumes: { action: 'convert', note: 'named volumes and relative bind dirs → disk (sub)paths; bind files → ConfigMaps; host paths are rejected; anonymous volumes → emptyDir (warned)' },
  volumes_from: { action: 'reject', note: 'it copies the mounts of another container, which has no pod equivalent', hint: 'Declare the shared named volume on both services instead.' },
  working_dir: { action: 'convert', note: 'container workingDir' },
};

/** Applies the warn/reject/ignore rows to one service; `convert` rows are handled by the converter. */
export function applyKeyPolicy(service: string, svc: ServiceConfig, diags: Diagnostics): void {
  for (const key of Object.keys(svc).sort()) {
    if (key.startsWith('x-')) continue;
    const value = svc[key];
    if (value === undefined) continue;
    const p = SERVICE_KEY_POLICY[key];
    if (!p) {
      diags.warn({ service, key, message: `service "${service}": ${key} is not supported by Kompox and is ignored` });
      continue;
    }
    if (p.when && !p.when(value)) continue;
    if (p.action === 'warn') diags.warn({ service, key, message: `service "${service}": ${key}: ${p.note}`, hint: p.hint });
    else if (p.action === 'reject') diags.error({ service, key, message: `service "${service}": ${key} is not allowed: ${p.note}`, hint: p.hint });
  }
}
