// Real-world compose files (shared/corpus/compose beside the project, docker/awesome-compose):
// each converts (with the warnings a user must see) or fails with the clear
// diagnostics listed here, and nothing else. Every object that is produced
// validates against the Kubernetes API schema.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadDir } from '../support/source.js';
import { convertApp } from '../../src/convert/index.js';
import { gatherFacts } from '../../src/usecases/app-manifest.js';
import { volumeInputs } from '../support/volumes.js';
import type { ComposeProject } from '../../src/compose/model.js';
import { checkServerRules, makeCtx, validateObjects } from './helpers.js';
import { sharedData } from '../support/shared.js';

const { dir: CORPUS, skip } = sharedData('corpus/compose');

const buildOnly = (...s: string[]) => s.map((n) => new RegExp(`service "${n}" has build: but no image:`));
const noSource = (svc: string, rel: string) => new RegExp(`service "${svc}": bind mount source \\./${rel.replace(/[.]/g, '\\.')} does not exist`);
// A missing, writable, directory-like short-syntax bind: an empty directory on the disk, as docker compose creates it.
const emptyDir = (svc: string, rel: string) => new RegExp(`service "${svc}": bind mount source \\./${rel.replace(/[.]/g, '\\.')} does not exist: .* starts as an empty directory on the app disk`);
const hostPath = (svc: string, p: string) => new RegExp(`service "${svc}": bind mount source ${p} is a host path outside the project directory`);

interface Expect {
  /** Each pattern matches exactly one distinct error, and there are no others. Empty: converts. */
  errors: RegExp[];
  /** Each pattern matches at least one warning. */
  warnings?: RegExp[];
}

const EXPECT: Record<string, Expect> = {
  'aspnet-mssql': { errors: buildOnly('web') },
  'elasticsearch-logstash-kibana': {
    errors: [noSource('logstash', 'logstash/pipeline/logstash-nginx.config'), noSource('logstash', 'logstash/nginx.log')],
    warnings: [/"logstash": port 5000\/udp .* is UDP: it gets no ingress host/, /"elasticsearch": container_name/, /port 9300\/tcp .* well-known non-HTTP/],
  },
  'gitea-postgres': { errors: [] },
  minecraft: { errors: [/service "minecraft": bind mount source ~\/minecraft_data is in a home directory/], warnings: [/port 25565\/tcp/] },
  'nextcloud-postgres': { errors: [] },
  'nextcloud-redis-mariadb': { errors: [] },
  'nginx-aspnet-mysql': { errors: buildOnly('backend', 'proxy') },
  'nginx-flask-mongo': {
    errors: [...buildOnly('backend'), noSource('web', 'nginx/nginx.conf')],
    warnings: [/"backend": stop_signal/, emptyDir('backend', 'flask')],
  },
  'nginx-flask-mysql': { errors: buildOnly('backend', 'proxy') },
  'nginx-golang-mysql': { errors: [...buildOnly('backend'), noSource('proxy', 'proxy/nginx.conf')] },
  'nginx-golang-postgres': { errors: [...buildOnly('backend'), noSource('proxy', 'proxy/nginx.conf')], warnings: [/"db": user "postgres" is a name/] },
  'pihole-cloudflared-DoH': {
    errors: [hostPath('pihole', '/etc/pihole/'), hostPath('pihole', '/etc/dnsmasq.d/')],
    warnings: [/cap_add NET_ADMIN goes beyond the Pod Security baseline/, /ipv4_address 172\.20\.0\.2 is ignored/, /port 53\/udp .* UDP/, /port 67\/udp .* UDP/, /port 53\/tcp .* non-HTTP/],
  },
  plex: { errors: [/"plex": network_mode: host is not allowed/, hostPath('plex', '/media/your/plex/path')] },
  portainer: { errors: [/"portainer": bind mount of the Docker socket \/var\/run\/docker\.sock is not allowed/] },
  'postgresql-pgadmin': { errors: [], warnings: [/"postgres": port 5432\/tcp .* non-HTTP/] },
  'prometheus-grafana': { errors: [], warnings: [emptyDir('grafana', 'grafana'), emptyDir('prometheus', 'prometheus')] },
  'react-express-mongodb': {
    errors: [
      /services "backend" and "frontend" both use container port 3000\/tcp/,
      ...buildOnly('backend', 'frontend'),
    ],
    warnings: [/anonymous volume \/usr\/src\/app\/node_modules becomes an emptyDir/, emptyDir('backend', 'backend'), emptyDir('frontend', 'frontend')],
  },
  'react-express-mysql': {
    errors: [
      ...buildOnly('backend', 'frontend'),
      noSource('backend', 'backend/src'),
      noSource('backend', 'backend/package.json'),
      noSource('backend', 'backend/package-lock.json'),
    ],
    warnings: [emptyDir('frontend', 'frontend/src')],
  },
  'react-java-mysql': { errors: buildOnly('backend', 'frontend'), warnings: [emptyDir('frontend', 'frontend/src')] },
  'react-rust-postgres': { errors: [...buildOnly('backend', 'frontend'), noSource('frontend', 'frontend/src')], warnings: [emptyDir('backend', 'backend/src')] },
  'sparkjava-mysql': { errors: buildOnly('backend') },
  'spring-postgres': { errors: buildOnly('backend') },
  'wasmedge-kafka-mysql': { errors: [], warnings: [emptyDir('redpanda', 'kafka'), /"etl": platform/, /"etl": runtime/, /"etl": build is ignored/] },
  wireguard: {
    errors: [hostPath('wireguard', '/usr/share/appdata/wireguard/config'), hostPath('wireguard', '/usr/src'), hostPath('wireguard', '/lib/modules')],
    warnings: [/"wireguard": sysctls/, /cap_add NET_ADMIN, SYS_MODULE/, /port 51820\/udp/],
  },
  'wordpress-mysql': { errors: [] },
};

async function convertSample(dir: string, patch?: (p: ComposeProject) => void) {
  const loaded = await loadDir(dir, { env: {} });
  patch?.(loaded.project);
  const ctx = makeCtx({ app: { projectDir: dir } });
  const facts = await gatherFacts(loaded);
  return convertApp({
    ctx, project: loaded.project, projectDir: dir, envFromFile: loaded.envFromFile, locate: loaded.locate, facts, disks: {},
    volumes: volumeInputs(ctx),
  });
}

// One suite, skipped as a whole (and counted) when the corpus is absent.
describe('compose corpus → Kubernetes objects', { skip }, () => {
  const samples = skip ? [] : readdirSync(CORPUS).filter((n) => existsSync(join(CORPUS, n, 'compose.yaml'))).sort();


  test('every corpus sample has an expected outcome', () => {
    assert.deepEqual(samples, Object.keys(EXPECT).sort());
  });

  for (const name of samples) {
    test(`corpus: ${name}`, async () => {
      const want = EXPECT[name]!;
      const r = await convertSample(join(CORPUS, name));
      const errors = r.errors.map((e) => e.message);
      const unmatched = [...errors];
      for (const re of want.errors) {
        const i = unmatched.findIndex((m) => re.test(m));
        assert.ok(i >= 0, `${name}: no error matches ${re}; errors:\n${errors.join('\n')}`);
        unmatched.splice(i, 1);
      }
      assert.deepEqual(unmatched, [], `${name}: unexpected errors`);
      for (const re of want.warnings ?? []) {
        assert.ok(r.warnings.some((w) => re.test(w.message)), `${name}: no warning matches ${re}; warnings:\n${r.warnings.map((w) => w.message).join('\n')}`);
      }
      for (const e of r.errors) assert.ok(e.location?.line, `${name}: error without a line: ${e.message}`);
      if (want.errors.length === 0) {
        validateObjects(r.objects);
        checkServerRules(r.objects);
        assert.ok(r.objects.some((o) => o.kind === 'Deployment'));
      }
    });
  }

  test('corpus: build-only samples get past the image error once image: is added, and validate where nothing else is wrong', async () => {
    let converted = 0;
    for (const name of samples) {
      if (!EXPECT[name]!.errors.some((re) => /has build/.test(re.source))) continue;
      const r = await convertSample(join(CORPUS, name), (p) => {
        for (const [s, svc] of Object.entries(p.services)) if (!svc.image) svc.image = `registry.example.com/${name}/${s}:1`;
      });
      assert.ok(!r.errors.some((e) => /has build: but no image/.test(e.message)), name);
      if (r.errors.length === 0) {
        validateObjects(r.objects);
        checkServerRules(r.objects);
        converted++;
      }
    }
    assert.ok(converted >= 4, `only ${converted} build-only samples converted after adding images`);
  });

  test('corpus: with images added and the missing files present, every sample that is not rejected for a policy reason converts and validates', async () => {
    const policyRejected = new Set(['minecraft', 'plex', 'portainer', 'pihole-cloudflared-DoH', 'wireguard', 'react-express-mongodb']);
    const converted: string[] = [];
    for (const name of samples) {
      const dir = join(CORPUS, name);
      const loaded = await loadDir(dir, { env: {} });
      for (const [s, svc] of Object.entries(loaded.project.services)) if (!svc.image) svc.image = `registry.example.com/${name}/${s}:1`;
      const ctx = makeCtx({ app: { projectDir: dir } });
      const facts = await gatherFacts(loaded);
      // Stand-ins for the files awesome-compose keeps next to the compose file (not in the corpus):
      // paths with an extension are files, others directories.
      for (const [path, f] of Object.entries(facts.files)) {
        if (f.kind !== 'missing') continue;
        facts.files[path] = /\.[a-z]+$/i.test(path) ? { kind: 'file', content: new TextEncoder().encode('# stand-in\n'), size: 11 } : { kind: 'dir', entries: 0, tree: {} };
      }
      const r = convertApp({
        ctx, project: loaded.project, projectDir: dir, envFromFile: loaded.envFromFile, locate: loaded.locate, facts, disks: {},
        volumes: volumeInputs(ctx),
      });
      if (policyRejected.has(name)) {
        assert.ok(r.errors.length > 0, `${name} should still be rejected`);
        continue;
      }
      assert.deepEqual(r.errors.map((e) => e.message), [], name);
      validateObjects(r.objects);
      checkServerRules(r.objects);
      converted.push(name);
    }
    assert.equal(converted.length, samples.length - policyRejected.size);
  });

  test('corpus: depends_on becomes start order (db healthy first, then backend, then proxy)', async () => {
    let checked = 0;
    for (const name of ['nginx-aspnet-mysql', 'nginx-flask-mysql']) {
      const r = await convertSample(join(CORPUS, name), (p) => {
        for (const [s, svc] of Object.entries(p.services)) if (!svc.image) svc.image = `registry.example.com/${name}/${s}:1`;
      });
      assert.ok(!r.warnings.some((w) => /depends_on/.test(w.message)), `${name}: ${r.warnings.map((w) => w.message).join('\n')}`);
      const dep = r.objects.find((o) => o.kind === 'Deployment');
      if (!dep) continue; // other errors (missing files) keep the Deployment out; at least one sample must get through (below)
      checked++;
      const spec = (dep.spec as any).template.spec;
      assert.deepEqual(spec.initContainers.map((c: any) => [c.name, c.restartPolicy ?? null]), [['kompox-init', null], ['db', 'Always'], ['backend', 'Always']], name);
      assert.deepEqual(spec.containers.map((c: any) => c.name), ['proxy'], name);
      const db = spec.initContainers[1];
      assert.ok(db.startupProbe?.exec.command.join(' ').includes('mysqladmin ping'), `${name}: db startupProbe`);
      assert.ok(db.readinessProbe && db.livenessProbe, `${name}: db keeps its readiness and liveness probes`);
      assert.equal(spec.initContainers[2].startupProbe, undefined, `${name}: backend (service_started) has no startupProbe`);
    }
    assert.ok(checked >= 1, 'no sample produced a Deployment');
  });
});
