// Bad kompoxops.yml files shared by the loader and schema tests.
import { GOOD } from './helpers.js';

/** GOOD with an app.deployment block (lines 37-39). */
export const WITH_DEPLOYMENT = (body = '    pool: user\n    zone: [japaneast-1, japaneast-2]\n'): string => `${GOOD}  deployment:\n${body}`;

// Each bad file: the field path and the line:column the message must name.
export const BAD: Array<{ name: string; text: string; field: string; where: string; says: RegExp }> = [
  { name: 'version 2', text: GOOD.replace('version: 1', 'version: 2'), field: 'version', where: '1:10', says: /version: 1/ },
  { name: 'unknown top-level key', text: GOOD + 'extra: 1\n', field: 'extra', where: '37:1', says: /unknown key/ },
  { name: 'typo in a key', text: GOOD.replace('  domain:', '  domian:'), field: 'cluster.domian', where: '15:3', says: /Did you mean "domain"/ },
  { name: 'bad driver', text: GOOD.replace('driver: k3s', 'driver: k8s'), field: 'provider.driver', where: '6:11', says: /Use one of: aks, eks, gke, oke, k3s/ },
  { name: 'upper-case app name', text: GOOD.replace('name: my-app', 'name: My-App'), field: 'app.name', where: '19:9', says: /lower case/ },
  { name: 'name too long', text: GOOD.replace('name: c1', `name: ${'c'.repeat(64)}`), field: 'cluster.name', where: '10:9', says: /at most 63/ },
  { name: 'bad volume size', text: GOOD.replace('size: 10Gi', 'size: 10GB'), field: 'app.volumes[0].size', where: '32:13', says: /10Gi/ },
  { name: 'zero volume size', text: GOOD.replace('size: 10Gi', 'size: 0'), field: 'app.volumes[0].size', where: '32:13', says: /positive/ },
  { name: 'bad ingress key', text: GOOD.replace('http_8080:', 'https_8080:'), field: 'app.ingress.https_8080', where: '23:5', says: /http_<port>/ },
  { name: 'ingress port out of range', text: GOOD.replace('http_8080:', 'http_70000:'), field: 'app.ingress.http_70000', where: '23:5', says: /1-65535/ },
  { name: 'ingress host not a DNS name', text: GOOD.replace('admin.example.com', 'Admin_Host'), field: 'app.ingress.http_8080', where: '23:16', says: /fully qualified host name/ },
  { name: 'ingress host without a domain', text: GOOD.replace('admin.example.com', 'admin'), field: 'app.ingress.http_8080', where: '23:16', says: /www\.example\.com/ },
  { name: 'bad cpu quantity', text: GOOD.replace('cpu: 500m', 'cpu: half'), field: 'app.resources.cpu', where: '25:10', says: /500m/ },
  { name: 'bad memory quantity', text: GOOD.replace('memory: 1Gi', 'memory: 1 GB'), field: 'app.resources.memory', where: '26:13', says: /1Gi/ },
  { name: 'service not a mapping', text: GOOD.replace('service:\n  name: ops', 'service: ops'), field: 'service', where: '2:10', says: /mapping/ },
  { name: 'missing provider', text: GOOD.replace(/provider:\n(  .*\n)+/, ''), field: 'provider', where: '1:1', says: /Add "provider:/ },
  { name: 'settings value a list', text: GOOD.replace('ACME_EMAIL: ops@example.com', 'ACME_EMAIL: [a]'), field: 'cluster.settings.ACME_EMAIL', where: '17:17', says: /string, number or boolean/ },
  { name: 'bad domain', text: GOOD.replace('domain: apps.example.com', 'domain: "apps example"'), field: 'cluster.domain', where: '15:11', says: /DNS name/ },
  { name: 'ingress controller', text: GOOD.replace('  domain:', '  ingress: {controller: nginx}\n  domain:'), field: 'cluster.ingress.controller', where: '15:25', says: /traefik/ },
  { name: 'unknown volume key', text: GOOD.replace('      size: 10Gi', '      sizes: 10Gi'), field: 'app.volumes[0].sizes', where: '32:7', says: /Did you mean "size"/ },
  { name: 'volumes empty', text: GOOD.replace(/  volumes:\n[\s\S]*$/, '  volumes: []\n'), field: 'app.volumes', where: '30:12', says: /remove app.volumes/ },
  { name: 'compose wrong type', text: GOOD.replace('compose: compose.yml', 'compose: 42'), field: 'app.compose', where: '20:12', says: /compose\.yml/ },
  { name: 'inline compose without services', text: GOOD.replace('compose: compose.yml', 'compose: {volumes: {}}'), field: 'app.compose', where: '20:12', says: /services/ },
  { name: 'domain with no value', text: GOOD.replace('domain: apps.example.com', 'domain:'), field: 'cluster.domain', where: '15:10', says: /has no value/ },
  { name: 'volume size with no value', text: GOOD.replace('size: 10Gi', 'size:'), field: 'app.volumes[0].size', where: '32:12', says: /has no value/ },
  { name: 'service with no value', text: GOOD.replace('service:\n  name: ops', 'service:'), field: 'service', where: '2:9', says: /has no value/ },
  { name: 'helper image without tag', text: GOOD.replace('ACME_EMAIL: ops@example.com', 'ACME_EMAIL: ops@example.com\n    KOMPOX_HELPER_IMAGE: registry.example.com/busybox'), field: 'cluster.settings.KOMPOX_HELPER_IMAGE', where: '18:26', says: /no tag or digest/ },
  { name: 'Traefik image not a reference', text: GOOD.replace('ACME_EMAIL: ops@example.com', 'ACME_EMAIL: ops@example.com\n    INGRESS_TRAEFIK_IMAGE: "https://hub/traefik:v3"'), field: 'cluster.settings.INGRESS_TRAEFIK_IMAGE', where: '18:28', says: /not an image reference/ },
  { name: 'registry mirror without a host', text: GOOD.replace('ACME_EMAIL: ops@example.com', 'ACME_EMAIL: ops@example.com\n    KOMPOX_REGISTRY_MIRROR: mirror'), field: 'cluster.settings.KOMPOX_REGISTRY_MIRROR', where: '18:29', says: /not a registry/ },
  { name: 'app without name', text: GOOD.replace('  name: my-app\n', ''), field: 'app.name', where: '18:1', says: /Add "name: / },
  { name: 'deployment not a mapping', text: `${GOOD}  deployment: user\n`, field: 'app.deployment', where: '37:15', says: /pool, zone/ },
  { name: 'deployment unknown key', text: WITH_DEPLOYMENT('    pools: [user]\n'), field: 'app.deployment.pools', where: '38:5', says: /Did you mean "pool"/ },
  { name: 'pool not a label value', text: WITH_DEPLOYMENT('    pool: "user pool"\n'), field: 'app.deployment.pool', where: '38:11', says: /not a valid label value.*letters, digits/ },
  { name: 'pool a mapping', text: WITH_DEPLOYMENT('    pool: {name: user}\n'), field: 'app.deployment.pool', where: '38:11', says: /must be a name, not a mapping/ },
  { name: 'pool a fraction', text: WITH_DEPLOYMENT('    pool: 1.5\n'), field: 'app.deployment.pool', where: '38:11', says: /must be a name/ },
  { name: 'zone an empty list', text: WITH_DEPLOYMENT('    zone: []\n'), field: 'app.deployment.zone', where: '38:11', says: /empty list/ },
  { name: 'zone list item not a label value', text: WITH_DEPLOYMENT('    zone: [japaneast-1, "-bad"]\n'), field: 'app.deployment.zone[1]', where: '38:25', says: /start and end with a letter or digit/ },
  { name: 'zone longer than 63 characters', text: WITH_DEPLOYMENT(`    zone: ${'z'.repeat(64)}\n`), field: 'app.deployment.zone', where: '38:11', says: /at most 63/ },
  { name: 'zone listed twice', text: WITH_DEPLOYMENT('    zone: [a, a]\n'), field: 'app.deployment.zone[1]', where: '38:15', says: /listed twice/ },
  { name: 'zone with no value', text: WITH_DEPLOYMENT('    zone:\n'), field: 'app.deployment.zone', where: '38:10', says: /has no value/ },
];

// Checks the schema cannot express (uniqueness across items or values).
export const BAD_SEMANTIC_ONLY: typeof BAD = [
  { name: 'duplicate volume names', text: GOOD.replace('name: logs', 'name: data'), field: 'app.volumes[1].name', where: '33:13', says: /listed twice/ },
  { name: 'one host for two ports', text: GOOD.replace('admin.example.com', 'www.example.com'), field: 'app.ingress.http_8080', where: '23:16', says: /already used by http_80/ },
];

