// Semantic validation of kompoxops.yml and its conversion to domain objects.
// Collects every problem (with file:line:column and field path) instead of
// stopping at the first, so one run shows the user everything to fix.
// schema/kompoxops.schema.json describes the same rules for editors; the
// checks that JSON Schema cannot express are marked "semantic only".
import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { isMap } from 'yaml';
import type { Diagnostic } from '../domain/errors.js';
import {
  DEFAULT_VOLUME,
  DRIVERS,
  type AppDeployment,
  type AppVolume,
  type ClusterAuth,
  type DriverName,
  type Settings,
} from '../domain/model.js';
import { dnsLabelProblem, labelValueProblem } from '../domain/names.js';
import { imageSettingProblems } from '../domain/images.js';
import { INGRESS_KEY_RE, QUANTITY_RE, SIZE_RE, isDnsName, isHostName, parseSizeGiB } from './quantity.js';
import { fieldName, type FieldPath, type YamlSource } from './source.js';
import { closest } from '../domain/suggest.js';

export const KEYS = {
  root: ['version', 'service', 'provider', 'cluster', 'app'],
  service: ['name'],
  provider: ['name', 'driver', 'settings'],
  cluster: ['name', 'auth', 'ingress', 'domain', 'settings'],
  auth: ['type', 'kubeconfig', 'context'],
  ingress: ['controller', 'namespace'],
  app: ['name', 'compose', 'ingress', 'resources', 'settings', 'volumes', 'deployment'],
  volume: ['name', 'size', 'options'],
  deployment: ['pool', 'zone'],
} as const;

/** What app.compose says, before any file is read. */
export type ComposeRef =
  | { kind: 'file'; path: string }
  | { kind: 'inline'; text: string; /** the same text padded so positions match kompoxops.yml */ positioned: string };

export interface ValidatedConfig {
  service: { name: string };
  provider: { name: string; driver: DriverName; settings: Settings };
  cluster: {
    name: string;
    auth: ClusterAuth;
    ingress: { controller: string; namespace: string };
    domain?: string;
    settings: Settings;
  };
  app?: {
    name: string;
    compose: ComposeRef;
    ingress: Record<string, string>;
    resources: Record<string, string>;
    settings: Settings;
    volumes: AppVolume[];
    deployment?: AppDeployment;
  };
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  if (v === null || v === undefined) return 'empty';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `the ${typeof v} ${JSON.stringify(v)}`;
}

function sortedRecord(r: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

class Checker {
  readonly diagnostics: Diagnostic[] = [];
  constructor(readonly src: YamlSource) {}

  error(path: FieldPath, problem: string, hint: string, opts: { key?: boolean; at?: FieldPath } = {}): void {
    this.diagnostics.push({
      level: 'error',
      message: `${fieldName(path) || '(top level)'}: ${problem}`,
      location: this.src.locate(opts.at ?? path, opts),
      hint,
    });
  }

  /** A mapping with only known keys; undefined (and an error) otherwise. */
  mapping(v: unknown, path: FieldPath, known: readonly string[] | undefined, what: string): Obj | undefined {
    if (!isObj(v)) {
      this.error(path, `must be a mapping (${what}), not ${typeName(v)}`, `Write ${fieldName(path)} as "key: value" lines indented under it.`);
      return undefined;
    }
    if (known) {
      for (const k of Object.keys(v)) {
        if (known.includes(k)) continue;
        const guess = closest(k, known);
        this.error(
          [...path, k],
          `unknown key "${k}"`,
          guess ? `Did you mean "${guess}"?` : `Allowed keys here: ${known.join(', ')}.`,
          { key: true },
        );
      }
    }
    return v;
  }

  /** The value, or undefined (and an error) when it is missing or empty. */
  required(o: Obj, key: string, path: FieldPath, example: string): unknown {
    if (o[key] === undefined) {
      // located at the parent: the key itself is not in the file
      this.error([...path, key], 'is required', `Add "${key}: ${example}"${path.length ? ` under ${fieldName(path)}` : ''}.`, { at: path, key: true });
      return undefined;
    }
    if (o[key] === null) {
      this.error([...path, key], 'has no value', `Write "${key}: ${example}".`);
      return undefined;
    }
    return o[key];
  }

  /**
   * Optional scalars: absent is fine, but "key:" with nothing after it is an
   * error (it usually means a value was forgotten). Optional mappings and
   * lists, on the other hand, may be empty (a block of only comments).
   */
  notNull(v: unknown, path: FieldPath, example: string): boolean {
    if (v === null) {
      this.error(path, 'has no value', `Write "${String(path[path.length - 1])}: ${example}", or remove the key.`);
      return false;
    }
    return v !== undefined;
  }

  label(v: unknown, path: FieldPath, example: string): string | undefined {
    if (!this.notNull(v, path, example)) return undefined;
    if (typeof v !== 'string') {
      this.error(path, `must be a name, not ${typeName(v)}`, `Use a DNS label such as "${example}".`);
      return undefined;
    }
    const problem = dnsLabelProblem(v);
    if (problem) {
      this.error(path, `"${v}" is not a valid name: it ${problem}`, `Use an RFC 1123 DNS label (a-z, 0-9, '-'; at most 63 characters) such as "${example}".`);
      return undefined;
    }
    return v;
  }

  dnsName(v: unknown, path: FieldPath, example: string): string | undefined {
    if (typeof v !== 'string' || !isDnsName(v)) {
      this.error(path, `${typeof v === 'string' ? `"${v}"` : typeName(v)} is not a DNS name`, `Use a lower-case host or domain name such as "${example}".`);
      return undefined;
    }
    return v;
  }

  hostName(v: unknown, path: FieldPath): string | undefined {
    if (typeof v !== 'string' || !isHostName(v)) {
      this.error(path, `${typeof v === 'string' ? `"${v}"` : typeName(v)} is not a fully qualified host name`, 'Write a lower-case host name with its domain, such as www.example.com.');
      return undefined;
    }
    return v;
  }

  string(v: unknown, path: FieldPath, example: string): string | undefined {
    if (!this.notNull(v, path, example)) return undefined;
    if (typeof v !== 'string' || v === '') {
      this.error(path, `must be a non-empty string, not ${typeName(v)}`, `Write it like ${fieldName(path).split('.').pop()}: ${example}`);
      return undefined;
    }
    return v;
  }

  /**
   * The value exactly as written, for unquoted numbers and booleans: `010`
   * stays "010" and `1.0` stays "1.0" rather than what YAML makes of them.
   */
  sourceText(path: FieldPath): string | undefined {
    const n = this.src.node(path) as { source?: unknown } | undefined;
    return typeof n?.source === 'string' ? n.source : undefined;
  }

  /**
   * A label value or a non-empty list of them (app.deployment.pool/zone).
   * Unquoted numbers are read as written (`zone: 1` is "1").
   */
  labelValues(v: unknown, path: FieldPath, example: string): string[] | undefined {
    if (!this.notNull(v, path, example)) return undefined;
    const one = (x: unknown, p: FieldPath): string | undefined => {
      const text = typeof x === 'string' ? x : typeof x === 'number' && Number.isInteger(x) && x >= 0 ? (this.sourceText(p) ?? String(x)) : undefined;
      if (text === undefined) {
        this.error(p, `must be a name, not ${typeName(x)}`, `Write it like ${String(path[path.length - 1])}: ${example}`);
        return undefined;
      }
      const problem = labelValueProblem(text);
      if (problem) {
        this.error(p, `"${text}" is not a valid label value: it ${problem}`, `Write the value of the nodes' label (letters, digits, '-', '_', '.'; at most 63 characters), e.g. ${example}.`);
        return undefined;
      }
      return text;
    };
    if (!Array.isArray(v)) {
      const x = one(v, path);
      return x === undefined ? undefined : [x];
    }
    if (v.length === 0) {
      this.error(path, 'is an empty list', `Name at least one, e.g. ${String(path[path.length - 1])}: [${example}], or remove the key.`);
      return undefined;
    }
    const out: string[] = [];
    let ok = true;
    v.forEach((x, i) => {
      const t = one(x, [...path, i]);
      if (t === undefined) ok = false;
      else if (out.includes(t)) {
        ok = false;
        this.error([...path, i], `"${t}" is listed twice`, 'List each value once.');
      } else out.push(t);
    });
    return ok ? out : undefined;
  }

  /** Settings: string values; unquoted numbers and booleans become strings (the spec writes AZURE_DISK_SIZE: 50). */
  settings(v: unknown, path: FieldPath): Settings {
    if (v === undefined || v === null) return {};
    const o = this.mapping(v, path, undefined, 'KEY: value');
    if (!o) return {};
    const out: Settings = {};
    for (const [k, val] of Object.entries(o)) {
      if (typeof val === 'string') out[k] = val;
      else if (typeof val === 'number' || typeof val === 'boolean') out[k] = this.sourceText([...path, k]) ?? String(val);
      else this.error([...path, k], `must be a string, number or boolean, not ${typeName(val)}`, `Give ${k} a value (quote it if it contains ':' or '#'), or remove the key.`);
    }
    return sortedRecord(out);
  }
}

function expandPath(p: string, dir: string): string {
  if (p === '~') return homedir();
  if (p.startsWith('~/')) return resolve(homedir(), p.slice(2));
  return isAbsolute(p) ? p : resolve(dir, p);
}

/** Inline compose text when app.compose is a mapping or looks like YAML rather than a path. */
function isInlineText(s: string): boolean {
  return s.includes('\n') || /(^|\s)services\s*:/.test(s) || s.trimStart().startsWith('{');
}

/**
 * The inline compose text padded with blank lines and indentation so that a
 * line:column in it is the same line:column in kompoxops.yml: the compose
 * loader's errors then point into the file the user wrote.
 */
function positionedInline(src: YamlSource, path: FieldPath, text: string): string {
  const node = src.node(path);
  if (!node?.range) return text;
  const start = src.lineCol(node.range[0]);
  if (isMap(node)) {
    // Block or flow mapping: slice the source itself, blanking what precedes the node on its first line.
    const lineStart = node.range[0] - (start.col - 1);
    const body = src.text.slice(lineStart, node.range[1]);
    return '\n'.repeat(start.line - 1) + ' '.repeat(start.col - 1) + body.slice(start.col - 1);
  }
  const scalarType = (node as { type?: string }).type;
  if (scalarType === 'BLOCK_LITERAL' || scalarType === 'BLOCK_FOLDED') {
    // Content starts on the line after the `|` header, indented like its first non-blank line.
    const after = src.text.slice(node.range[0]).split('\n').slice(1);
    const first = after.find((l) => l.trim() !== '') ?? '';
    const indent = first.length - first.trimStart().length;
    const lines = text.split('\n').map((l) => (l === '' ? '' : ' '.repeat(indent) + l));
    return '\n'.repeat(start.line) + lines.join('\n');
  }
  return '\n'.repeat(start.line - 1) + text;
}

export function validateConfig(src: YamlSource, dir: string): { config?: ValidatedConfig; diagnostics: Diagnostic[] } {
  const c = new Checker(src);
  const raw = src.value;
  if (raw === undefined || raw === null) {
    c.error([], 'the file is empty', 'Run "kompoxops init" to write a template, or add version, service, provider and cluster.');
    return { diagnostics: c.diagnostics };
  }
  const root = c.mapping(raw, [], KEYS.root, 'version, service, provider, cluster, app');
  if (!root) return { diagnostics: c.diagnostics };

  if (root.version === undefined) c.error(['version'], 'is required', 'Add "version: 1" at the top of the file.', { at: [] });
  else if (root.version !== 1) c.error(['version'], `unsupported version ${JSON.stringify(root.version)}`, 'Write "version: 1" (the only format version).');

  // service
  let serviceName: string | undefined;
  if (c.required(root, 'service', [], '{name: ops}') !== undefined) {
    const s = c.mapping(root.service, ['service'], KEYS.service, 'name');
    if (s) serviceName = c.label(c.required(s, 'name', ['service'], 'ops'), ['service', 'name'], 'ops');
  }

  // provider
  let provider: ValidatedConfig['provider'] | undefined;
  if (c.required(root, 'provider', [], '{name: ..., driver: ...}') !== undefined) {
    const p = c.mapping(root.provider, ['provider'], KEYS.provider, 'name, driver, settings');
    if (p) {
      const name = c.label(c.required(p, 'name', ['provider'], 'k3s1'), ['provider', 'name'], 'k3s1');
      let driver: DriverName | undefined;
      const d = c.required(p, 'driver', ['provider'], DRIVERS.join('|'));
      if (d !== undefined) {
        if (typeof d === 'string' && (DRIVERS as readonly string[]).includes(d)) driver = d as DriverName;
        else {
          const guess = typeof d === 'string' ? closest(d, DRIVERS) : undefined;
          c.error(['provider', 'driver'], `unknown driver ${JSON.stringify(d)}`, `Use one of: ${DRIVERS.join(', ')}.${guess ? ` Did you mean "${guess}"?` : ''}`);
        }
      }
      const settings = c.settings(p.settings, ['provider', 'settings']);
      if (name && driver) provider = { name, driver, settings };
    }
  }

  // cluster
  let cluster: ValidatedConfig['cluster'] | undefined;
  if (c.required(root, 'cluster', [], '{name: ...}') !== undefined) {
    const cl = c.mapping(root.cluster, ['cluster'], KEYS.cluster, 'name, auth, ingress, domain, settings');
    if (cl) {
      const name = c.label(c.required(cl, 'name', ['cluster'], 'my-cluster'), ['cluster', 'name'], 'my-cluster');
      const auth: ClusterAuth = { type: 'kubectl' };
      if (cl.auth !== undefined && cl.auth !== null) {
        const a = c.mapping(cl.auth, ['cluster', 'auth'], KEYS.auth, 'type, kubeconfig, context');
        if (a) {
          auth.type = c.string(a.type, ['cluster', 'auth', 'type'], 'kubectl') ?? 'kubectl';
          const kc = c.string(a.kubeconfig, ['cluster', 'auth', 'kubeconfig'], '~/.kube/config');
          if (kc) auth.kubeconfig = expandPath(kc, dir);
          const ctx = c.string(a.context, ['cluster', 'auth', 'context'], 'my-cluster');
          if (ctx) auth.context = ctx;
        }
      }
      const ingress = { controller: 'traefik', namespace: 'traefik' };
      if (cl.ingress !== undefined && cl.ingress !== null) {
        const i = c.mapping(cl.ingress, ['cluster', 'ingress'], KEYS.ingress, 'controller, namespace');
        if (i) {
          if (c.notNull(i.controller, ['cluster', 'ingress', 'controller'], 'traefik') && i.controller !== 'traefik') {
            c.error(['cluster', 'ingress', 'controller'], `unsupported ingress controller ${JSON.stringify(i.controller)}`, 'Write "controller: traefik" (the only controller Kompox deploys) or leave it out.');
          }
          const ns = c.label(i.namespace, ['cluster', 'ingress', 'namespace'], 'traefik');
          if (ns) ingress.namespace = ns;
        }
      }
      let domain: string | undefined;
      if (c.notNull(cl.domain, ['cluster', 'domain'], 'apps.example.com')) domain = c.dnsName(cl.domain, ['cluster', 'domain'], 'apps.example.com');
      const settings = c.settings(cl.settings, ['cluster', 'settings']);
      // the images Kompox adds (helper, Traefik) and their registry mirror
      for (const p of imageSettingProblems(settings)) c.error(['cluster', 'settings', p.key], p.problem, p.hint);
      if (name) cluster = { name, auth, ingress, ...(domain ? { domain } : {}), settings };
    }
  }

  // app (optional: a file may manage the cluster only)
  let app: ValidatedConfig['app'] | undefined;
  let appOk = true;
  if (root.app !== undefined && root.app !== null) {
    const a = c.mapping(root.app, ['app'], KEYS.app, 'name, compose, ingress, resources, settings, volumes, deployment');
    if (!a) appOk = false;
    else {
      const before = c.diagnostics.length;
      const name = c.label(c.required(a, 'name', ['app'], 'my-app'), ['app', 'name'], 'my-app');

      let compose: ComposeRef | undefined;
      const cv = c.required(a, 'compose', ['app'], 'compose.yml');
      if (isObj(cv)) {
        if (!isObj(cv.services)) {
          c.error(['app', 'compose'], 'inline compose has no services', 'Add "services:" with at least one service under app.compose, or give a file name like "compose: compose.yml".');
        } else {
          const node = src.node(['app', 'compose']);
          const text = node?.range ? src.text.slice(node.range[0], node.range[1]) : '';
          compose = { kind: 'inline', text: dedent(text, node ? src.lineCol(node.range![0]).col - 1 : 0), positioned: positionedInline(src, ['app', 'compose'], text) };
        }
      } else if (typeof cv === 'string' && cv.trim() !== '') {
        if (isInlineText(cv)) compose = { kind: 'inline', text: cv, positioned: positionedInline(src, ['app', 'compose'], cv) };
        else compose = { kind: 'file', path: expandPath(cv.trim(), dir) };
      } else if (cv !== undefined) {
        c.error(['app', 'compose'], `must be a file name or compose YAML, not ${typeName(cv)}`, 'Write "compose: compose.yml" (a path relative to kompoxops.yml) or the compose YAML indented under it.');
      }

      const ingress: Record<string, string> = {};
      if (a.ingress !== undefined && a.ingress !== null) {
        const ing = c.mapping(a.ingress, ['app', 'ingress'], undefined, 'http_<port>: host');
        const seen = new Map<string, string>();
        for (const [k, v] of Object.entries(ing ?? {})) {
          if (!INGRESS_KEY_RE.test(k)) {
            c.error(['app', 'ingress', k], `"${k}" is not an ingress key`, 'Write http_<port> with the container port (1-65535) the host should reach, e.g. http_80: www.example.com.', { key: true });
            continue;
          }
          const host = c.hostName(v, ['app', 'ingress', k]);
          if (!host) continue;
          // semantic only: one host cannot route to two ports
          const other = seen.get(host);
          if (other) c.error(['app', 'ingress', k], `host ${host} is already used by ${other}`, 'Give each port its own host name.');
          seen.set(host, k);
          ingress[k] = host;
        }
      }

      const resources: Record<string, string> = {};
      if (a.resources !== undefined && a.resources !== null) {
        const r = c.mapping(a.resources, ['app', 'resources'], undefined, 'cpu, memory');
        for (const [k, v] of Object.entries(r ?? {})) {
          const text = typeof v === 'number' ? (c.sourceText(['app', 'resources', k]) ?? String(v)) : v;
          if (k === 'cpu' || k === 'memory') {
            const ok = (typeof v === 'number' && v >= 0) || (typeof v === 'string' && QUANTITY_RE.test(v));
            if (!ok) {
              c.error(['app', 'resources', k], `${JSON.stringify(v)} is not a Kubernetes quantity`, k === 'cpu' ? 'Write CPU like 500m (half a core) or 2.' : 'Write memory like 512Mi or 1Gi.');
              continue;
            }
            resources[k] = String(text);
          } else if (typeof v === 'string') {
            resources[k] = v;
          } else if (typeof v === 'number' || typeof v === 'boolean') {
            resources[k] = c.sourceText(['app', 'resources', k]) ?? String(v);
          } else {
            c.error(['app', 'resources', k], `must be a string or number, not ${typeName(v)}`, 'Give it a value or remove the key.');
          }
        }
      }

      const settings = c.settings(a.settings, ['app', 'settings']);

      let volumes: AppVolume[] = [{ name: DEFAULT_VOLUME, options: {} }];
      if (a.volumes !== undefined && a.volumes !== null) {
        if (!Array.isArray(a.volumes) || a.volumes.length === 0) {
          c.error(['app', 'volumes'], Array.isArray(a.volumes) ? 'is empty' : `must be a list, not ${typeName(a.volumes)}`, 'List the volumes as "- name: data" items, each with an optional size, or remove app.volumes to get one volume named "default".');
        } else {
          volumes = [];
          const names = new Set<string>();
          a.volumes.forEach((item, idx) => {
            const p: FieldPath = ['app', 'volumes', idx];
            const vo = c.mapping(item, p, KEYS.volume, 'name, size, options');
            if (!vo) return;
            const vname = c.label(c.required(vo, 'name', p, 'data'), [...p, 'name'], 'data');
            let sizeGiB: number | undefined;
            if (c.notNull(vo.size, [...p, 'size'], '10Gi')) {
              sizeGiB = typeof vo.size === 'number' || typeof vo.size === 'string' ? parseSizeGiB(vo.size) : undefined;
              if (sizeGiB === undefined || (typeof vo.size === 'string' && !SIZE_RE.test(vo.size))) {
                sizeGiB = undefined;
                c.error([...p, 'size'], `${JSON.stringify(vo.size)} is not a disk size`, 'Write a positive size like 10Gi, 500Mi (rounded up to whole GiB), 1Ti, or a number of GiB.');
              }
            }
            const options = c.settings(vo.options, [...p, 'options']);
            if (!vname) return;
            // semantic only: names identify disks and snapshots
            if (names.has(vname)) {
              c.error([...p, 'name'], `volume "${vname}" is listed twice`, 'Give every volume a different name.');
              return;
            }
            names.add(vname);
            volumes.push({ name: vname, ...(sizeGiB !== undefined ? { sizeGiB } : {}), options });
          });
        }
      }
      // where the pod may run: node pools and zones (labels on the nodes)
      let deployment: AppDeployment | undefined;
      if (a.deployment !== undefined && a.deployment !== null) {
        const d = c.mapping(a.deployment, ['app', 'deployment'], KEYS.deployment, 'pool, zone');
        if (d) {
          const pools = c.labelValues(d.pool, ['app', 'deployment', 'pool'], 'user');
          const zones = c.labelValues(d.zone, ['app', 'deployment', 'zone'], 'japaneast-1');
          if (pools || zones) deployment = { ...(pools ? { pools } : {}), ...(zones ? { zones } : {}) };
        }
      }

      if (c.diagnostics.length === before && name && compose) {
        app = { name, compose, ingress: sortedRecord(ingress), resources: sortedRecord(resources), settings, volumes, ...(deployment ? { deployment } : {}) };
      } else appOk = false;
    }
  }

  if (c.diagnostics.length > 0 || !serviceName || !provider || !cluster || !appOk) return { diagnostics: c.diagnostics };
  return { config: { service: { name: serviceName }, provider, cluster, ...(app ? { app } : {}) }, diagnostics: [] };
}

/** Removes the common indentation of a block sliced out of kompoxops.yml (its first line is already unindented). */
function dedent(text: string, firstCol: number): string {
  const lines = text.split('\n');
  const rest = lines.slice(1).filter((l) => l.trim() !== '');
  const indent = Math.min(firstCol, ...rest.map((l) => l.length - l.trimStart().length));
  return [lines[0], ...lines.slice(1).map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length)))].join('\n').replace(/\s*$/, '\n');
}
