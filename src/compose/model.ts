// The canonical compose model: what `docker compose config` prints, with every
// short syntax normalised to the long one. Keys are the Compose Specification's
// (snake_case) so the model serialises to YAML that docker compose accepts.
// Fields not listed are passed through as loaded (the schema has validated them).

export interface ComposeProject {
  name: string;
  services: Record<string, ServiceConfig>;
  networks?: Record<string, NetworkConfig>;
  volumes?: Record<string, VolumeConfig>;
  secrets?: Record<string, SecretConfig>;
  configs?: Record<string, ConfigObjConfig>;
  [extension: `x-${string}`]: unknown;
}

export interface ServicePort {
  name?: string;
  mode?: 'ingress' | 'host';
  host_ip?: string;
  target: number;
  /** Published (host) port or range, as a string like docker compose prints it. */
  published?: string;
  protocol: 'tcp' | 'udp';
  app_protocol?: string;
}

export interface ServiceVolume {
  type: 'volume' | 'bind' | 'tmpfs' | 'npipe' | 'cluster' | 'image';
  /** volume name, or absolute host path for binds (relative paths resolved against the project dir) */
  source?: string;
  target: string;
  read_only?: boolean;
  consistency?: string;
  bind?: { propagation?: string; create_host_path?: boolean; selinux?: 'z' | 'Z'; recursive?: string };
  volume?: { nocopy?: boolean; subpath?: string; labels?: Record<string, string> };
  tmpfs?: { size?: number | string; mode?: number };
  image?: { subpath?: string };
}

export interface ServiceDependency {
  condition: 'service_started' | 'service_healthy' | 'service_completed_successfully';
  required: boolean;
  restart?: boolean;
}

export interface Healthcheck {
  /** ["CMD", ...], ["CMD-SHELL", "cmd"], or ["NONE"] */
  test?: string[];
  interval?: string; // Go duration string, e.g. "30s", "1m30s"
  timeout?: string;
  retries?: number;
  start_period?: string;
  start_interval?: string;
  disable?: boolean;
}

export interface ServiceFileRef {
  source: string;
  target?: string;
  uid?: string;
  gid?: string;
  mode?: number;
}

export interface ServiceNetwork {
  aliases?: string[];
  ipv4_address?: string;
  ipv6_address?: string;
  priority?: number;
  [k: string]: unknown;
}

export interface BuildConfig {
  context: string;
  dockerfile?: string;
  args?: Record<string, string | null>;
  target?: string;
  [k: string]: unknown;
}

export interface ServiceConfig {
  image?: string;
  build?: BuildConfig;
  command?: string[] | null;
  entrypoint?: string[] | null;
  /** Effective environment: env_file values overridden by `environment`. null = declared without value and unset. */
  environment?: Record<string, string | null>;
  ports?: ServicePort[];
  expose?: string[];
  volumes?: ServiceVolume[];
  depends_on?: Record<string, ServiceDependency>;
  healthcheck?: Healthcheck;
  secrets?: ServiceFileRef[];
  configs?: ServiceFileRef[];
  networks?: Record<string, ServiceNetwork | null>;
  network_mode?: string;
  profiles?: string[];
  restart?: string;
  user?: string;
  working_dir?: string;
  cap_add?: string[];
  cap_drop?: string[];
  read_only?: boolean;
  tmpfs?: string[];
  shm_size?: number | string;
  stop_grace_period?: string;
  stop_signal?: string;
  privileged?: boolean;
  sysctls?: Record<string, string>;
  devices?: unknown[];
  container_name?: string;
  hostname?: string;
  labels?: Record<string, string>;
  deploy?: {
    replicas?: number;
    resources?: {
      limits?: { cpus?: string | number; memory?: string | number; pids?: number };
      reservations?: { cpus?: string | number; memory?: string | number };
    };
    [k: string]: unknown;
  };
  mem_limit?: string | number;
  cpus?: string | number;
  platform?: string;
  runtime?: string;
  extra_hosts?: string[] | Record<string, string>;
  init?: boolean;
  tty?: boolean;
  stdin_open?: boolean;
  [k: string]: unknown;
}

export interface VolumeConfig {
  name?: string;
  driver?: string;
  driver_opts?: Record<string, string>;
  external?: boolean;
  labels?: Record<string, string>;
  [k: string]: unknown;
}

export interface NetworkConfig {
  name?: string;
  driver?: string;
  external?: boolean;
  ipam?: unknown;
  [k: string]: unknown;
}

export interface SecretConfig {
  name?: string;
  file?: string; // absolute path
  environment?: string;
  content?: string;
  external?: boolean;
  [k: string]: unknown;
}

export type ConfigObjConfig = SecretConfig;
