// One large project touching most of the specification at once, in the
// spirit of compose-go's loader/full-example.yml (our own content).
import assert from 'node:assert/strict';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { projectToYaml } from '../../src/compose/index.js';
import { load } from './helpers.js';

const COMPOSE = `name: full_example
services:
  inline:
    build:
      dockerfile_inline: |
        FROM alpine
        RUN true
  app:
    annotations: [com.example.a=b]
    build:
      context: ./dir
      args: {foo: bar}
      ssh: [default]
      labels: [FOO=BAR]
      additional_contexts: {extra: ./bar, img: "docker-image://alpine:3", svc: "service:db"}
      secrets:
        - s1
        - source: s2
          target: build_secret
          mode: 0440
      tags: ["\${COMPOSE_PROJECT_NAME:-full}:1.0"]
    cap_add: [ALL]
    command: bundle exec thin -p 3000
    configs:
      - c1
      - source: c2
        target: /my_config
        mode: 0440
    depends_on: [db]
    deploy:
      replicas: 2
      labels: [FOO=BAR]
      resources:
        limits: {cpus: '0.5', memory: 50M}
      restart_policy: {condition: on-failure, delay: 5s}
    dns: 8.8.8.8
    entrypoint: ["/entry.sh", "-p", "3000"]
    env_file: [./one.env, ./two.env]
    environment:
      BAZ: from_service
      QUX:
    expose: ["3000", 8000]
    external_links: [redis_1, "project_db_1:mysql"]
    extra_hosts: ["otherhost:50.31.209.229", "somehost:162.242.195.82"]
    healthcheck:
      test: echo "hello world"
      interval: 10s
      timeout: 1s
      retries: 5
      start_period: 15s
      start_interval: 5s
    image: redis
    ipc: host
    labels:
      com.example.description: "Accounting webapp"
      com.example.number: 42
      com.example.empty-label:
    links: [db, "db:database"]
    logging:
      driver: syslog
      options: {syslog-address: "tcp://192.168.0.42:123"}
    mac_address: 02:42:ac:11:65:43
    networks:
      some-network:
        aliases: [alias1]
      other-network:
        ipv4_address: 172.16.238.10
      other-other-network:
    pid: host
    ports:
      - 3000
      - "3001-3003"
      - "8000:8000"
      - "9090-9091:8080-8081"
      - "127.0.0.1:8001:8001"
      - "127.0.0.1:5000-5001:5000-5001"
    privileged: true
    read_only: true
    restart: always
    secrets:
      - s1
      - source: s2
        target: my_secret
        uid: '103'
        gid: '103'
        mode: 0440
    security_opt: ["label=level:s0:c100,c200"]
    stdin_open: true
    stop_grace_period: 20s
    stop_signal: SIGUSR1
    sysctls:
      net.core.somaxconn: 1024
    tmpfs: /run
    tty: true
    ulimits:
      nproc: 65535
      nofile: {soft: 20000, hard: 40000}
    user: someone
    volumes:
      - /var/lib/anonymous
      - /opt/data:/var/lib/data
      - .:/code
      - ./static:/var/www/html
      - ~/configs:/etc/configs:ro
      - datavolume:/var/lib/volume
      - type: bind
        source: ./opt
        target: /opt/cached
        consistency: cached
      - type: tmpfs
        target: /opt/tmpfs
        tmpfs: {size: 10000}
    working_dir: /code
    x-foo: bar
  db:
    image: postgres
networks:
  some-network:
  other-network:
    driver: overlay
    driver_opts: {foo: "bar", baz: 1}
    ipam:
      config:
        - subnet: 172.28.0.0/16
  other-other-network:
  external-network:
    external: true
volumes:
  datavolume:
  other-volume:
    driver: flocker
    labels: [foo=bar]
  external-volume:
    name: this-is-it
    external: true
configs:
  c1:
    file: ./config_data
  c2:
    external: true
secrets:
  s1:
    file: ./secret_data
  s2:
    environment: BAR
x-foo: bar
`;

describe('full example project', () => {
  it('loads every part canonically', async () => {
    const p = await load(
      { 'compose.yaml': COMPOSE, 'one.env': 'FOO=foo_from_env_file\nBAZ=baz_from_env_file\n', 'two.env': 'BAR=bar_from_env_file_2\nFOO=foo_from_env_file_2\n' },
      { env: { QUX: 'qux_from_environment' } },
    );
    const { project } = p;
    const app = project.services.app!;
    const dir = p.projectDir;
    assert.equal(project.name, 'full_example');
    assert.deepEqual(project.services.inline!.build, { dockerfile_inline: 'FROM alpine\nRUN true\n', context: dir });
    assert.deepEqual(app.build, {
      context: join(dir, 'dir'),
      dockerfile: 'Dockerfile',
      args: { foo: 'bar' },
      ssh: ['default'],
      labels: { FOO: 'BAR' },
      additional_contexts: { extra: join(dir, 'bar'), img: 'docker-image://alpine:3', svc: 'service:db' },
      secrets: [{ source: 's1' }, { source: 's2', target: 'build_secret', mode: 0o440 }],
      tags: ['full:1.0'],
    });
    assert.deepEqual(app.annotations, { 'com.example.a': 'b' });
    assert.deepEqual(app.command, ['bundle', 'exec', 'thin', '-p', '3000']);
    assert.deepEqual(app.configs, [{ source: 'c1' }, { source: 'c2', target: '/my_config', mode: 0o440 }]);
    assert.deepEqual(app.depends_on, { db: { condition: 'service_started', required: true } });
    assert.deepEqual((app.deploy as { labels: unknown }).labels, { FOO: 'BAR' });
    assert.deepEqual(app.dns, ['8.8.8.8']);
    assert.deepEqual(app.environment, {
      BAR: 'bar_from_env_file_2',
      BAZ: 'from_service',
      FOO: 'foo_from_env_file_2',
      QUX: 'qux_from_environment',
    });
    assert.deepEqual(p.envFromFile, { app: ['BAR', 'FOO'] });
    assert.deepEqual(app.expose, ['3000', '8000']);
    assert.deepEqual(app.extra_hosts, ['otherhost=50.31.209.229', 'somehost=162.242.195.82']);
    assert.deepEqual(app.healthcheck, {
      test: ['CMD-SHELL', 'echo "hello world"'],
      interval: '10s',
      timeout: '1s',
      retries: 5,
      start_period: '15s',
      start_interval: '5s',
    });
    assert.deepEqual(app.labels, { 'com.example.description': 'Accounting webapp', 'com.example.number': '42', 'com.example.empty-label': '' });
    assert.equal(app.mac_address, '02:42:ac:11:65:43');
    assert.deepEqual(app.networks, { 'some-network': { aliases: ['alias1'] }, 'other-network': { ipv4_address: '172.16.238.10' }, 'other-other-network': null });
    assert.deepEqual(
      app.ports!.map((x) => `${x.host_ip ?? ''}|${x.published ?? ''}|${x.target}`),
      ['||3000', '||3001', '||3002', '||3003', '|8000|8000', '|9090|8080', '|9091|8081', '127.0.0.1|8001|8001', '127.0.0.1|5000|5000', '127.0.0.1|5001|5001'],
    );
    assert.deepEqual(app.secrets, [{ source: 's1' }, { source: 's2', target: 'my_secret', uid: '103', gid: '103', mode: 0o440 }]);
    assert.equal(app.stop_grace_period, '20s');
    assert.deepEqual(app.sysctls, { 'net.core.somaxconn': '1024' });
    assert.deepEqual(app.tmpfs, ['/run']);
    assert.deepEqual(app.ulimits, { nproc: 65535, nofile: { soft: 20000, hard: 40000 } });
    assert.deepEqual(app.volumes, [
      { type: 'volume', target: '/var/lib/anonymous', volume: {} },
      { type: 'bind', source: '/opt/data', target: '/var/lib/data', bind: { create_host_path: true } },
      { type: 'bind', source: dir, target: '/code', bind: { create_host_path: true } },
      { type: 'bind', source: join(dir, 'static'), target: '/var/www/html', bind: { create_host_path: true } },
      { type: 'bind', source: join(homedir(), 'configs'), target: '/etc/configs', read_only: true, bind: { create_host_path: true } },
      { type: 'volume', source: 'datavolume', target: '/var/lib/volume', volume: {} },
      { type: 'bind', source: join(dir, 'opt'), target: '/opt/cached', consistency: 'cached' },
      { type: 'tmpfs', target: '/opt/tmpfs', tmpfs: { size: 10000 } },
    ]);
    assert.equal(app['x-foo'], 'bar');
    // links add no new dependency (db is already one); ipc/pid host are not services
    assert.deepEqual(Object.keys(app.depends_on!), ['db']);
    assert.deepEqual(project.networks!['some-network'], {});
    assert.deepEqual(project.networks!['other-network']!.driver_opts, { foo: 'bar', baz: 1 });
    assert.deepEqual(project.volumes!['other-volume']!.labels, { foo: 'bar' });
    assert.deepEqual(project.volumes!['external-volume'], { name: 'this-is-it', external: true });
    assert.equal(project.configs!.c1!.file, join(dir, 'config_data'));
    assert.deepEqual(project.secrets!.s2, { environment: 'BAR' });
    assert.equal(project['x-foo'], 'bar');
    // and the canonical YAML loads back to the same services
    const again = parse(projectToYaml(project)) as { services: Record<string, unknown> };
    assert.deepEqual(again.services.app, JSON.parse(JSON.stringify(app)));
  });
});
