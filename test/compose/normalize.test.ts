// Canonical form: every short syntax becomes the long one docker compose prints.
// Expected values follow `docker compose config` / compose-go loader tests.
import assert from 'node:assert/strict';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { formatDuration, parseDuration } from '../../src/compose/duration.js';
import { parseShortPort } from '../../src/compose/ports.js';
import { shlexSplit } from '../../src/compose/shlex.js';
import { parseShortVolume } from '../../src/compose/volumes.js';
import { load } from './helpers.js';

describe('ports short syntax', () => {
  const cases: Array<[string | number, unknown[]]> = [
    [80, [{ mode: 'ingress', target: 80, protocol: 'tcp' }]],
    ['80', [{ mode: 'ingress', target: 80, protocol: 'tcp' }]],
    ['8080:80', [{ mode: 'ingress', target: 80, published: '8080', protocol: 'tcp' }]],
    ['8080:80/udp', [{ mode: 'ingress', target: 80, published: '8080', protocol: 'udp' }]],
    ['127.0.0.1:8080:80', [{ mode: 'ingress', host_ip: '127.0.0.1', target: 80, published: '8080', protocol: 'tcp' }]],
    ['127.0.0.1::80', [{ mode: 'ingress', host_ip: '127.0.0.1', target: 80, protocol: 'tcp' }]],
    ['[::1]:8080:80', [{ mode: 'ingress', host_ip: '::1', target: 80, published: '8080', protocol: 'tcp' }]],
    [
      '3000-3002',
      [
        { mode: 'ingress', target: 3000, protocol: 'tcp' },
        { mode: 'ingress', target: 3001, protocol: 'tcp' },
        { mode: 'ingress', target: 3002, protocol: 'tcp' },
      ],
    ],
    [
      '9090-9091:8080-8081',
      [
        { mode: 'ingress', target: 8080, published: '9090', protocol: 'tcp' },
        { mode: 'ingress', target: 8081, published: '9091', protocol: 'tcp' },
      ],
    ],
    ['8000-8010:80', [{ mode: 'ingress', target: 80, published: '8000-8010', protocol: 'tcp' }]],
  ];
  for (const [input, expected] of cases) {
    it(`${JSON.stringify(input)}`, () => assert.deepEqual(parseShortPort(input), expected));
  }
  for (const bad of ['abc', '1-2:3-5', '80/icmp', '70000', '8080:']) {
    it(`rejects ${JSON.stringify(bad)}`, () => assert.throws(() => parseShortPort(bad)));
  }
});

describe('volumes short syntax', () => {
  const cases: Array<[string, unknown]> = [
    ['/data', { type: 'volume', target: '/data', volume: {} }],
    ['dbdata:/var/lib/db', { type: 'volume', source: 'dbdata', target: '/var/lib/db', volume: {} }],
    ['dbdata:/var/lib/db:ro', { type: 'volume', source: 'dbdata', target: '/var/lib/db', read_only: true, volume: {} }],
    ['dbdata:/var/lib/db:nocopy', { type: 'volume', source: 'dbdata', target: '/var/lib/db', volume: { nocopy: true } }],
    ['./data:/data', { type: 'bind', source: './data', target: '/data', bind: { create_host_path: true } }],
    ['./data:/data:ro', { type: 'bind', source: './data', target: '/data', read_only: true, bind: { create_host_path: true } }],
    ['/host:/data:rw', { type: 'bind', source: '/host', target: '/data', bind: { create_host_path: true } }],
    ['/host:/data:ro,z', { type: 'bind', source: '/host', target: '/data', read_only: true, bind: { selinux: 'z', create_host_path: true } }],
    ['/host:/data:rshared', { type: 'bind', source: '/host', target: '/data', bind: { propagation: 'rshared', create_host_path: true } }],
    ['~/x:/data', { type: 'bind', source: '~/x', target: '/data', bind: { create_host_path: true } }],
    ['C:\\data:/data', { type: 'bind', source: 'C:\\data', target: '/data', bind: { create_host_path: true } }],
  ];
  for (const [input, expected] of cases) {
    it(input, () => assert.deepEqual(parseShortVolume(input), expected));
  }
  for (const bad of ['a:b:c:d', ':/data', '/a:/b:bogus', 'vol:/data:z']) {
    it(`rejects ${bad}`, () => assert.throws(() => parseShortVolume(bad)));
  }
});

describe('shell word splitting', () => {
  const cases: Array<[string, string[]]> = [
    ['npm run start', ['npm', 'run', 'start']],
    ['  a   b  ', ['a', 'b']],
    [`sh -c 'echo "hi there"'`, ['sh', '-c', 'echo "hi there"']],
    [`echo "a \\"b\\" c"`, ['echo', 'a "b" c']],
    [`echo a\\ b`, ['echo', 'a b']],
    [`--opt="x y"z`, ['--opt=x yz']],
    [`echo ''`, ['echo', '']],
    ['echo $HOME', ['echo', '$HOME']],
  ];
  for (const [input, expected] of cases) it(input, () => assert.deepEqual(shlexSplit(input), expected));
  it('rejects an unterminated quote', () => assert.throws(() => shlexSplit(`echo "x`)));
});

describe('Go durations', () => {
  const cases: Array<[string, string]> = [
    ['90s', '1m30s'],
    ['1m30s', '1m30s'],
    ['1h', '1h0m0s'],
    ['10s', '10s'],
    ['0s', '0s'],
    ['0', '0s'],
    ['500ms', '500ms'],
    ['1.5s', '1.5s'],
    ['2h45m', '2h45m0s'],
    ['100us', '100µs'],
  ];
  for (const [input, expected] of cases) it(`${input} → ${expected}`, () => assert.equal(formatDuration(parseDuration(input)!), expected));
  it('rejects non-durations', () => {
    assert.equal(parseDuration('10'), undefined);
    assert.equal(parseDuration('ten seconds'), undefined);
  });
});

describe('canonical service fields (loader)', () => {
  it('environment list and map become a map; KEY alone resolves from env or stays null', async () => {
    const p = await load(
      {
        'compose.yaml': 'services:\n  a:\n    image: x\n    environment:\n      - A=1\n      - B=\n      - FROM_ENV\n      - UNSET\n      - C=x=y\n  b:\n    image: x\n    environment:\n      N: 1\n      T: true\n      E:\n',
      },
      { env: { FROM_ENV: 'env-value' } },
    );
    assert.deepEqual(p.project.services.a!.environment, { A: '1', B: '', FROM_ENV: 'env-value', UNSET: null, C: 'x=y' });
    assert.deepEqual(p.project.services.b!.environment, { N: '1', T: 'true', E: null });
  });

  it('depends_on list → map with defaults; long form keeps condition and gets required', async () => {
    const p = await load({
      'compose.yaml': 'services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n  c:\n    image: x\n    depends_on:\n      b:\n        condition: service_healthy\n        restart: true\n',
    });
    assert.deepEqual(p.project.services.a!.depends_on, { b: { condition: 'service_started', required: true } });
    assert.deepEqual(p.project.services.c!.depends_on, { b: { condition: 'service_healthy', required: true, restart: true } });
  });

  it('healthcheck: string test → CMD-SHELL, durations normalised, disable kept', async () => {
    const p = await load({
      'compose.yaml':
        'services:\n  a:\n    image: x\n    healthcheck:\n      test: curl -f http://localhost\n      interval: 90s\n      timeout: 1m\n      start_period: 1h\n      retries: 3\n  b:\n    image: x\n    healthcheck:\n      disable: true\n',
    });
    assert.deepEqual(p.project.services.a!.healthcheck, {
      test: ['CMD-SHELL', 'curl -f http://localhost'],
      interval: '1m30s',
      timeout: '1m0s',
      start_period: '1h0m0s',
      retries: 3,
    });
    assert.deepEqual(p.project.services.b!.healthcheck, { disable: true });
  });

  it('command/entrypoint strings are split; lists are kept', async () => {
    const p = await load({
      'compose.yaml': `services:\n  a:\n    image: x\n    command: bundle exec "rails s" -p 3000\n    entrypoint: /entry.sh\n  b:\n    image: x\n    command: ["echo", "a b"]\n`,
    });
    assert.deepEqual(p.project.services.a!.command, ['bundle', 'exec', 'rails s', '-p', '3000']);
    assert.deepEqual(p.project.services.a!.entrypoint, ['/entry.sh']);
    assert.deepEqual(p.project.services.b!.command, ['echo', 'a b']);
  });

  it('ports long syntax gets defaults and published as a string; expose numbers become strings', async () => {
    const p = await load({
      'compose.yaml': 'services:\n  a:\n    image: x\n    expose: [3000, "4000-4001"]\n    ports:\n      - target: 80\n        published: 8080\n      - target: 53\n        protocol: udp\n        mode: host\n      - "3000-3001:4000-4001"\n',
    });
    assert.deepEqual(p.project.services.a!.ports, [
      { target: 80, published: '8080', mode: 'ingress', protocol: 'tcp' },
      { target: 53, protocol: 'udp', mode: 'host' },
      { mode: 'ingress', target: 4000, published: '3000', protocol: 'tcp' },
      { mode: 'ingress', target: 4001, published: '3001', protocol: 'tcp' },
    ]);
    assert.deepEqual(p.project.services.a!.expose, ['3000', '4000-4001']);
    // both entries of the range point at the line where the range was written
    assert.equal(p.locate(['services', 'a', 'ports', 3])?.line, 11);
    assert.equal(p.locate(['services', 'a', 'ports', 2])?.line, 11);
    assert.equal(p.locate(['services', 'a', 'ports', 1, 'protocol'])?.line, 9);
  });

  it('volumes: relative and ~ binds become absolute, long syntax kept, named volumes declared', async () => {
    const p = await load({
      'compose.yaml':
        'services:\n  a:\n    image: x\n    volumes:\n      - ./data:/data\n      - ../up:/up:ro\n      - ~/cache:/cache\n      - db:/db\n      - type: bind\n        source: ./conf\n        target: /conf\n      - type: tmpfs\n        target: /tmp\n        tmpfs:\n          size: 1000\nvolumes:\n  db:\n',
    });
    const v = p.project.services.a!.volumes!;
    assert.equal(v[0]!.source, join(p.projectDir, 'data'));
    assert.equal(v[1]!.source, join(p.projectDir, '..', 'up'));
    assert.equal(v[2]!.source, join(homedir(), 'cache'));
    assert.ok(p.warnings.some((w) => w.message.includes('~/cache') && w.location?.line === 7 && w.service === 'a'));
    assert.deepEqual(v[3], { type: 'volume', source: 'db', target: '/db', volume: {} });
    assert.deepEqual(v[4], { type: 'bind', source: join(p.projectDir, 'conf'), target: '/conf' });
    assert.deepEqual(v[5], { type: 'tmpfs', target: '/tmp', tmpfs: { size: 1000 } });
    assert.deepEqual(p.project.volumes, { db: {} });
  });

  it('secrets/configs short → long, top-level file made absolute, networks list → map', async () => {
    const p = await load({
      'compose.yaml':
        'services:\n  a:\n    image: x\n    secrets: [pw, {source: key, target: /etc/key, mode: 0400}]\n    configs: [cfg]\n    networks: [front, back]\nsecrets:\n  pw:\n    file: ./pw.txt\n  key:\n    environment: KEY\nconfigs:\n  cfg:\n    file: conf/app.conf\nnetworks:\n  front:\n  back: {}\n',
    });
    const a = p.project.services.a!;
    assert.deepEqual(a.secrets, [{ source: 'pw' }, { source: 'key', target: '/etc/key', mode: 0o400 }]);
    assert.deepEqual(a.configs, [{ source: 'cfg' }]);
    assert.deepEqual(a.networks, { front: null, back: null });
    assert.equal(p.project.secrets!.pw!.file, join(p.projectDir, 'pw.txt'));
    assert.equal(p.project.configs!.cfg!.file, join(p.projectDir, 'conf/app.conf'));
    assert.deepEqual(p.project.networks, { front: {}, back: {} });
  });

  it('build string → {context, dockerfile}; labels list → map; extra_hosts normalised; cpus/mem_limit/shm_size kept', async () => {
    const p = await load({
      'compose.yaml':
        'services:\n  a:\n    build: ./app\n    labels: ["a=1", "b"]\n    extra_hosts: ["h1:10.0.0.1", "h2=10.0.0.2"]\n    cpus: 0.5\n    mem_limit: 512m\n    shm_size: 1g\n  b:\n    build:\n      context: .\n      dockerfile: other.Dockerfile\n      args: [X=1, Y]\n    extra_hosts:\n      h3: 10.0.0.3\n',
    });
    const a = p.project.services.a!;
    assert.deepEqual(a.build, { context: join(p.projectDir, 'app'), dockerfile: 'Dockerfile' });
    assert.deepEqual(a.labels, { a: '1', b: '' });
    assert.deepEqual(a.extra_hosts, ['h1=10.0.0.1', 'h2=10.0.0.2']);
    assert.equal(a.cpus, 0.5);
    assert.equal(a.mem_limit, '512m');
    assert.equal(a.shm_size, '1g');
    assert.deepEqual(p.project.services.b!.build, { context: p.projectDir, dockerfile: 'other.Dockerfile', args: { X: '1', Y: null } });
    assert.deepEqual(p.project.services.b!.extra_hosts, ['h3=10.0.0.3']);
  });

  it('interpolated values are cast where compose casts them', async () => {
    const p = await load(
      { 'compose.yaml': 'services:\n  a:\n    image: x\n    read_only: ${RO}\n    cpus: ${CPUS}\n    ports:\n      - target: ${PORT}\n    deploy:\n      replicas: ${N}\n' },
      { env: { RO: 'yes', CPUS: '1.5', PORT: '80', N: '1' } },
    );
    const a = p.project.services.a!;
    assert.equal(a.read_only, true);
    assert.equal(a.cpus, 1.5);
    assert.equal(a.ports![0]!.target, 80);
    assert.equal(a.deploy!.replicas, 1);
  });

  it('keys are not interpolated, $$ escapes, unset variables warn once and become ""', async () => {
    const p = await load({
      'compose.yaml': 'services:\n  a:\n    image: "img:${TAG}"\n    environment:\n      $${KEY}: "$${VALUE}"\n      OTHER: ${TAG}\n',
    });
    assert.equal(p.project.services.a!.image, 'img:');
    assert.deepEqual(p.project.services.a!.environment, { '$${KEY}': '${VALUE}', OTHER: '' });
    const warnings = p.warnings.filter((w) => w.message.includes('"TAG"'));
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.location?.line, 3);
  });

  it('YAML anchors, aliases and merge keys; locate points where the value was written', async () => {
    const p = await load({
      'compose.yaml':
        'x-common: &common\n  image: base\n  restart: always\n  environment: &env\n    A: "1"\nservices:\n  a:\n    <<: *common\n    restart: "no"\n  b:\n    <<: [*common]\n    environment: *env\n',
    });
    assert.equal(p.project.services.a!.image, 'base');
    assert.equal(p.project.services.a!.restart, 'no');
    assert.deepEqual(p.project.services.a!.environment, { A: '1' });
    assert.deepEqual(p.project.services.b!.environment, { A: '1' });
    assert.equal(p.locate(['services', 'a', 'image'])?.line, 2);
    assert.equal(p.locate(['services', 'a', 'restart'])?.line, 9);
    assert.equal(p.locate(['services', 'b', 'environment', 'A'])?.line, 5);
    assert.ok('x-common' in p.project);
  });
});

describe('project-level normalisation (compose-go normalize.go)', () => {
  it('network_mode service:, links and volumes_from become dependencies; build args resolve from env', async () => {
    const p = await load(
      {
        'compose.yaml':
          'services:\n  app:\n    image: a\n    network_mode: "service:vpn"\n    links: ["db:database"]\n    volumes_from: ["data:ro", "container:other"]\n    depends_on:\n      db:\n        condition: service_healthy\n    build:\n      context: .\n      args: [TOKEN]\n  vpn:\n    image: v\n  db:\n    image: d\n  data:\n    image: x\n',
      },
      { env: { TOKEN: 't0k' } },
    );
    const app = p.project.services.app!;
    assert.deepEqual(app.depends_on, {
      db: { condition: 'service_healthy', required: true },
      vpn: { condition: 'service_started', restart: true, required: true },
      data: { condition: 'service_started', required: true },
    });
    assert.deepEqual(app.build!.args, { TOKEN: 't0k' });
    assert.equal(p.locate(['services', 'app', 'depends_on', 'vpn'])?.line, 4);
  });

  it('a service: reference to an unknown service is an error', async () => {
    await assert.rejects(load({ 'compose.yaml': 'services:\n  app:\n    image: a\n    network_mode: "service:nope"\n' }), /undefined service "nope"/);
  });
});

describe('top-level resources', () => {
  it('null/{} become {}, legacy external.name moves to name, bind-style local volumes get an absolute device', async () => {
    const p = await load({
      'compose.yaml':
        'services:\n  a:\n    image: x\n    volumes: [v1:/1, v2:/2, v3:/3]\n    deploy:\n      labels: [a=b]\nvolumes:\n  v1:\n  v2: {}\n  v3:\n    driver: local\n    driver_opts:\n      type: none\n      o: bind\n      device: ./host-dir\n  ext:\n    external:\n      name: real-name\n',
    });
    assert.deepEqual(p.project.volumes!.v1, {});
    assert.deepEqual(p.project.volumes!.v2, {});
    assert.equal(p.project.volumes!.v3!.driver_opts!.device, join(p.projectDir, 'host-dir'));
    assert.deepEqual(p.project.volumes!.ext, { external: true, name: 'real-name' });
    assert.deepEqual((p.project.services.a!.deploy as { labels: unknown }).labels, { a: 'b' });
  });
});
