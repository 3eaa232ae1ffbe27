// Loads each real-world compose file of the shared corpus (docker/awesome-compose)
// and checks concrete facts about the canonical result.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { LoadedProject } from '../../src/compose/index.js';
import { loadDir } from '../support/source.js';
import { sharedData } from '../support/shared.js';

const { dir: corpus, skip } = sharedData('corpus/compose');

async function load(name: string): Promise<LoadedProject> {
  return loadDir(join(corpus, name), { env: {} });
}

const SERVICES: Record<string, string[]> = {
  'aspnet-mssql': ['db', 'web'],
  'elasticsearch-logstash-kibana': ['elasticsearch', 'kibana', 'logstash'],
  'gitea-postgres': ['db', 'gitea'],
  minecraft: ['minecraft'],
  'nextcloud-postgres': ['db', 'nc'],
  'nextcloud-redis-mariadb': ['db', 'nc', 'redis'],
  'nginx-aspnet-mysql': ['backend', 'db', 'proxy'],
  'nginx-flask-mongo': ['backend', 'mongo', 'web'],
  'nginx-flask-mysql': ['backend', 'db', 'proxy'],
  'nginx-golang-mysql': ['backend', 'db', 'proxy'],
  'nginx-golang-postgres': ['backend', 'db', 'proxy'],
  'pihole-cloudflared-DoH': ['cloudflared', 'pihole'],
  plex: ['plex'],
  portainer: ['portainer'],
  'postgresql-pgadmin': ['pgadmin', 'postgres'],
  'prometheus-grafana': ['grafana', 'prometheus'],
  'react-express-mongodb': ['backend', 'frontend', 'mongo'],
  'react-express-mysql': ['backend', 'db', 'frontend'],
  'react-java-mysql': ['backend', 'db', 'frontend'],
  'react-rust-postgres': ['backend', 'db', 'frontend'],
  'sparkjava-mysql': ['backend', 'db'],
  'spring-postgres': ['backend', 'db'],
  'wasmedge-kafka-mysql': ['db', 'etl', 'redpanda'],
  wireguard: ['wireguard'],
  'wordpress-mysql': ['db', 'wordpress'],
};

describe('compose corpus', { skip }, () => {
  it('has exactly the samples this test knows', () => {
    const dirs = readdirSync(corpus).filter((d) => existsSync(join(corpus, d, 'compose.yaml'))).sort();
    assert.deepEqual(dirs, Object.keys(SERVICES).sort());
  });

  for (const [name, services] of Object.entries(SERVICES)) {
    it(`${name}: loads with services ${services.join(', ')}`, async () => {
      const p = await load(name);
      assert.deepEqual(Object.keys(p.project.services).sort(), services);
      assert.equal(p.project.name, name.toLowerCase());
      assert.deepEqual(p.files, [join(corpus, name, 'compose.yaml')]);
    });
  }

  it('aspnet-mssql: build string becomes an absolute context, healthcheck kept as CMD-SHELL', async () => {
    const { project } = await load('aspnet-mssql');
    assert.deepEqual(project.services.web!.build, { context: join(corpus, 'aspnet-mssql/app/aspnetapp'), dockerfile: 'Dockerfile' });
    assert.equal(project.services.db!.healthcheck!.test![0], 'CMD-SHELL');
    assert.equal(project.services.db!.healthcheck!.interval, '10s');
    assert.equal(project.services.db!.environment!.ACCEPT_EULA, 'Y');
    assert.deepEqual(project.services.web!.ports, [{ mode: 'ingress', target: 80, published: '80', protocol: 'tcp' }]);
  });

  it('elasticsearch-logstash-kibana: same port over tcp and udp, command split', async () => {
    const { project } = await load('elasticsearch-logstash-kibana');
    const ports = project.services.logstash!.ports!;
    assert.deepEqual(ports.slice(0, 2), [
      { mode: 'ingress', target: 5000, published: '5000', protocol: 'tcp' },
      { mode: 'ingress', target: 5000, published: '5000', protocol: 'udp' },
    ]);
    assert.deepEqual(project.services.logstash!.command, ['logstash', '-f', '/usr/share/logstash/pipeline/logstash-nginx.config']);
    assert.equal(project.services.logstash!.volumes![0]!.type, 'bind');
    assert.equal(project.services.logstash!.volumes![0]!.source, join(corpus, 'elasticsearch-logstash-kibana/logstash/pipeline/logstash-nginx.config'));
    assert.deepEqual(project.services.kibana!.depends_on, { elasticsearch: { condition: 'service_started', required: true } });
    assert.equal(project.services.elasticsearch!.environment!['discovery.type'], 'single-node');
    assert.deepEqual(project.services.kibana!.networks, { elastic: null });
  });

  it('minecraft: "~/" bind is expanded with a warning that points at the line', async () => {
    const p = await load('minecraft');
    const v = p.project.services.minecraft!.volumes![0]!;
    assert.equal(v.type, 'bind');
    assert.equal(v.source, join(homedir(), 'minecraft_data'));
    const w = p.warnings.find((d) => d.message.includes('~/minecraft_data'));
    assert.ok(w, 'a warning names the ~ path');
    assert.equal(w.location?.line, 13);
    assert.deepEqual(p.locate(['services', 'minecraft', 'volumes', 0])?.line, 13);
  });

  it('pihole-cloudflared-DoH: variables from .env, udp ports, obsolete version warned', async () => {
    const p = await load('pihole-cloudflared-DoH');
    const env = p.project.services.pihole!.environment!;
    assert.equal(env.TZ, 'Etc/UTC');
    assert.equal(env.WEBPASSWORD, 'changeit');
    assert.equal(env.ServerIPv6, '');
    assert.equal(env.PIHOLE_DNS_, '172.20.0.2#5054;1.1.1.1');
    assert.deepEqual(p.project.services.pihole!.ports![2], { mode: 'ingress', target: 67, published: '67', protocol: 'udp' });
    assert.ok(p.warnings.some((w) => w.key === 'version'));
    assert.equal((p.project.services.cloudflared!.networks!['dns-net'] as { ipv4_address: string }).ipv4_address, '172.20.0.2');
  });

  it('postgresql-pgadmin: ${VAR} from .env; explicit env wins over .env', async () => {
    const p = await load('postgresql-pgadmin');
    assert.equal(p.project.services.postgres!.environment!.POSTGRES_USER, 'yourUser');
    const p2 = await loadDir(join(corpus, 'postgresql-pgadmin'), { env: { POSTGRES_USER: 'alice' } });
    assert.equal(p2.project.services.postgres!.environment!.POSTGRES_USER, 'alice');
  });

  it('wireguard: inline comment in .env stripped, sysctls list to map', async () => {
    const { project } = await load('wireguard');
    assert.equal(project.services.wireguard!.environment!.SERVERURL, 'your-domain.dyndns.com');
    assert.deepEqual(project.services.wireguard!.sysctls, { 'net.ipv4.conf.all.src_valid_mark': '1' });
    assert.deepEqual(project.services.wireguard!.ports, [{ mode: 'ingress', target: 51820, published: '51820', protocol: 'udp' }]);
  });

  it('nginx-golang-mysql: long-syntax bind resolved, expose as strings, secret file absolute', async () => {
    const p = await load('nginx-golang-mysql');
    const { project } = p;
    assert.deepEqual(project.services.proxy!.volumes![0], {
      type: 'bind',
      source: join(corpus, 'nginx-golang-mysql/proxy/nginx.conf'),
      target: '/etc/nginx/conf.d/default.conf',
      read_only: true,
    });
    assert.deepEqual(project.services.db!.expose, ['3306']);
    assert.equal(project.secrets!['db-password']!.file, join(corpus, 'nginx-golang-mysql/db/password.txt'));
    assert.deepEqual(project.services.backend!.depends_on, { db: { condition: 'service_healthy', required: true } });
    assert.deepEqual(project.services.db!.secrets, [{ source: 'db-password' }]);
    assert.deepEqual(project.volumes, { 'db-data': {} });
    assert.equal(project.services.db!.healthcheck!.start_period, '30s');
    // `$$` escape survives as a literal `$`
    assert.match(project.services.db!.healthcheck!.test![1]!, /--password="\$\(cat/);
    assert.equal(p.locate(["services", "db", "expose", 0])?.line, 32);
  });

  it('react-express-mysql: named, anonymous and read-only bind volumes; build args map', async () => {
    const { project } = await load('react-express-mysql');
    const vols = project.services.backend!.volumes!;
    assert.equal(vols[0]!.read_only, true);
    assert.deepEqual(vols[0]!.bind, { create_host_path: true });
    assert.deepEqual(vols[3], { type: 'volume', source: 'back-notused', target: '/opt/app/node_modules', volume: {} });
    assert.deepEqual(project.services.frontend!.volumes![1], { type: 'volume', target: '/code/node_modules', volume: {} });
    assert.deepEqual(project.services.backend!.build!.args, { NODE_ENV: 'development' });
    assert.deepEqual(project.services.db!.command, ['--default-authentication-plugin=mysql_native_password']);
    assert.deepEqual(project.networks, { private: {}, public: {} });
  });

  it('react-rust-postgres: top-level name wins over the directory name; {} definitions; :ro bind', async () => {
    const p = await loadDir(join(corpus, 'react-rust-postgres'), { env: { COMPOSE_PROJECT_NAME: 'ignored' } });
    assert.equal(p.project.name, 'react-rust-postgres');
    assert.deepEqual(p.project.networks, { 'client-side': {}, 'server-side': {} });
    assert.deepEqual(p.project.volumes, { 'backend-cache': {}, 'db-data': {} });
    assert.equal(p.project.services.frontend!.volumes![0]!.read_only, true);
    assert.deepEqual(p.project.services.db!.ports, [{ mode: 'ingress', target: 5432, published: '5432', protocol: 'tcp' }]);
    assert.equal(p.project.services.backend!.environment!.RUST_LOG, 'debug');
  });

  it('wasmedge-kafka-mysql: command list kept item by item, platform and runtime passed through', async () => {
    const { project } = await load('wasmedge-kafka-mysql');
    const etl = project.services.etl!;
    assert.equal(project.services.redpanda!.command![0], 'redpanda start');
    assert.equal(project.services.redpanda!.command!.length, 8);
    assert.equal(etl.platform, 'wasi/wasm');
    assert.equal(etl.runtime, 'io.containerd.wasmedge.v1');
    assert.equal(etl.environment!.RUST_LOG, 'info');
    assert.equal(project.services.redpanda!.ports!.length, 5);
  });

  it('gitea-postgres: named volumes declared with empty values, expose number', async () => {
    const { project } = await load('gitea-postgres');
    assert.deepEqual(project.volumes, { db_data: {}, git_data: {} });
    assert.deepEqual(project.services.gitea!.volumes, [{ type: 'volume', source: 'git_data', target: '/data', volume: {} }]);
    assert.deepEqual(project.services.db!.expose, ['5432']);
    assert.equal(project.services.gitea!.environment!.DB_HOST, 'db:5432');
  });

  it('nextcloud-postgres: port 80 and the data volume', async () => {
    const { project } = await load('nextcloud-postgres');
    assert.deepEqual(project.services.nc!.ports, [{ mode: 'ingress', target: 80, published: '80', protocol: 'tcp' }]);
    assert.equal(project.services.nc!.volumes![0]!.source, 'nc_data');
  });

  it('nextcloud-redis-mariadb: command string split, two networks', async () => {
    const { project } = await load('nextcloud-redis-mariadb');
    assert.deepEqual(project.services.db!.command, ['--transaction-isolation=READ-COMMITTED', '--binlog-format=ROW']);
    assert.deepEqual(project.services.nc!.networks, { redisnet: null, dbnet: null });
    assert.deepEqual(project.networks, { dbnet: {}, redisnet: {} });
  });

  it('nginx-aspnet-mysql: build-only services and a file secret', async () => {
    const { project } = await load('nginx-aspnet-mysql');
    assert.equal(project.services.proxy!.image, undefined);
    assert.equal(project.services.proxy!.build!.context, join(corpus, 'nginx-aspnet-mysql/proxy'));
    assert.equal(project.services.db!.healthcheck!.interval, '3s');
    assert.equal(project.services.backend!.environment!.ASPNETCORE_URLS, 'http://+:8000');
    assert.equal(project.secrets!['db-password']!.file, join(corpus, 'nginx-aspnet-mysql/db/password.txt'));
  });

  it('nginx-flask-mongo: quoted command split like a shell, stop_signal kept', async () => {
    const { project } = await load('nginx-flask-mongo');
    assert.deepEqual(project.services.web!.command, [
      '/bin/bash',
      '-c',
      "envsubst < /tmp/nginx.conf > /etc/nginx/conf.d/default.conf && nginx -g 'daemon off;'",
    ]);
    assert.equal(project.services.backend!.stop_signal, 'SIGINT');
    assert.deepEqual(Object.keys(project.services.backend!.depends_on!), ['mongo']);
    assert.equal(project.services.web!.environment!.FLASK_SERVER_ADDR, 'backend:9091');
  });

  it('nginx-flask-mysql: expose list, service_healthy dependency, networks', async () => {
    const { project } = await load('nginx-flask-mysql');
    assert.deepEqual(project.services.db!.expose, ['3306', '33060']);
    assert.equal(project.services.backend!.depends_on!.db!.condition, 'service_healthy');
    assert.deepEqual(project.services.backend!.networks, { backnet: null, frontnet: null });
  });

  it('nginx-golang-postgres: user kept, CMD healthcheck, long bind', async () => {
    const { project } = await load('nginx-golang-postgres');
    assert.equal(project.services.db!.user, 'postgres');
    assert.deepEqual(project.services.db!.healthcheck, { test: ['CMD', 'pg_isready'], interval: '10s', timeout: '5s', retries: 5 });
    assert.equal(project.services.proxy!.volumes![0]!.read_only, true);
  });

  it('prometheus-grafana: config-dir binds and a named volume', async () => {
    const { project } = await load('prometheus-grafana');
    const vols = project.services.prometheus!.volumes!;
    assert.deepEqual(vols.map((v) => v.type), ['bind', 'volume']);
    assert.equal(vols[0]!.source, join(corpus, 'prometheus-grafana/prometheus'));
    assert.deepEqual(project.services.prometheus!.command, ['--config.file=/etc/prometheus/prometheus.yml']);
    assert.equal(project.services.grafana!.container_name, 'grafana');
  });

  it('react-express-mongodb: anonymous volume, stdin_open', async () => {
    const { project } = await load('react-express-mongodb');
    assert.deepEqual(project.services.frontend!.volumes![1], { type: 'volume', target: '/usr/src/app/node_modules', volume: {} });
    assert.equal(project.services.frontend!.stdin_open, true);
    assert.deepEqual(project.services.backend!.expose, ['3000']);
  });

  it('react-java-mysql: environment map, CMD healthcheck list', async () => {
    const { project } = await load('react-java-mysql');
    assert.deepEqual(project.services.backend!.environment, { MYSQL_HOST: 'db' });
    assert.deepEqual(project.services.db!.healthcheck!.test, ['CMD', 'mysqladmin', 'ping', '-h', '127.0.0.1', '--silent']);
    assert.equal(project.services.db!.healthcheck!.start_period, '30s');
  });

  it('sparkjava-mysql and spring-postgres: build string, secrets', async () => {
    const spark = (await load('sparkjava-mysql')).project;
    assert.deepEqual(spark.services.backend!.build, { context: join(corpus, 'sparkjava-mysql/backend'), dockerfile: 'Dockerfile' });
    assert.deepEqual(spark.services.backend!.ports, [{ mode: 'ingress', target: 8080, published: '8080', protocol: 'tcp' }]);
    const spring = (await load('spring-postgres')).project;
    assert.deepEqual(spring.services.db!.secrets, [{ source: 'db-password' }]);
    assert.deepEqual(spring.networks, { 'spring-postgres': {} });
  });

  it('wordpress-mysql: only the database has a volume', async () => {
    const { project } = await load('wordpress-mysql');
    assert.equal(project.services.wordpress!.volumes, undefined);
    assert.equal(project.services.db!.volumes![0]!.source, 'db_data');
    assert.equal(project.services.wordpress!.environment!.WORDPRESS_DB_HOST, 'db');
  });

  it('plex: network_mode kept, host path from .env', async () => {
    const { project } = await load('plex');
    assert.equal(project.services.plex!.network_mode, 'host');
    assert.equal(project.services.plex!.volumes![0]!.type, 'bind');
    assert.ok(project.services.plex!.volumes![0]!.source!.startsWith('/media/'));
  });

  it('portainer: docker socket bind is kept for the converter to reject', async () => {
    const { project } = await load('portainer');
    assert.ok(project.services.portainer!.volumes!.some((v) => v.type === 'bind' && v.source === '/var/run/docker.sock'));
  });
});
