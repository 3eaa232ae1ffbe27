// Server-side validation of the fake API server: the rules a real
// kube-apiserver enforces beyond the OpenAPI schema (pkg/apis/core/validation,
// apps, networking, rbac; k8s.io/apimachinery/pkg/util/validation) for the
// kinds Kompox writes, with the real messages and field paths. A generator bug
// that a real server would reject with 422 Invalid fails here too.
//
// Covered: names per kind (Namespace/Service labels, RBAC path segments, the
// rest DNS subdomains), label/annotation keys and values, ConfigMap/Secret
// keys, pod specs (container/volume names, port names, env names, mounts,
// subPath), Services (port names, numbers, targetPort), Ingress (hosts, paths,
// backends), PV (local needs nodeAffinity, claimRef), PVC, Deployment selector;
// and the update rules: immutable PVC spec, PV source/nodeAffinity, Deployment
// selector, Service clusterIP, IngressClass controller.
import { isObj } from './ssa.js';
import type { ResourceInfo } from './resources.js';

type Obj = Record<string, unknown>;

export interface Cause {
  reason: 'FieldValueInvalid' | 'FieldValueRequired' | 'FieldValueDuplicate' | 'FieldValueForbidden' | 'FieldValueNotSupported' | 'FieldValueTooLong';
  message: string;
  field: string;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const WILDCARD_SUBDOMAIN = /^\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const CONFIG_MAP_KEY = /^[-._a-zA-Z0-9]+$/;
const ENV_VAR_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

const MSG = {
  label: "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
  subdomain:
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
  dns1035:
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
  qualifiedName:
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
  labelValue:
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
  configMapKey: "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
  envName:
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')",
};

class Errors {
  readonly causes: Cause[] = [];
  invalid(field: string, value: unknown, detail: string): void {
    this.causes.push({ reason: 'FieldValueInvalid', field, message: `Invalid value: ${JSON.stringify(value)}: ${detail}` });
  }
  required(field: string, detail = ''): void {
    this.causes.push({ reason: 'FieldValueRequired', field, message: `Required value${detail ? `: ${detail}` : ''}` });
  }
  duplicate(field: string, value: unknown): void {
    this.causes.push({ reason: 'FieldValueDuplicate', field, message: `Duplicate value: ${JSON.stringify(value)}` });
  }
  forbidden(field: string, detail: string): void {
    this.causes.push({ reason: 'FieldValueForbidden', field, message: `Forbidden: ${detail}` });
  }
  tooLong(field: string, max: number): void {
    this.causes.push({ reason: 'FieldValueTooLong', field, message: `Too long: may not be more than ${max} bytes` });
  }
}

const arr = (v: unknown): Obj[] => (Array.isArray(v) ? (v.filter(isObj) as Obj[]) : []);
const obj = (v: unknown): Obj => (isObj(v) ? v : {});

function label(e: Errors, field: string, v: string, max = 63): void {
  if (v.length > max) e.invalid(field, v, `must be no more than ${max} characters`);
  if (!DNS1123_LABEL.test(v)) e.invalid(field, v, MSG.label);
}
function subdomain(e: Errors, field: string, v: string): void {
  if (v.length > 253) e.invalid(field, v, 'must be no more than 253 characters');
  if (!DNS1123_SUBDOMAIN.test(v)) e.invalid(field, v, MSG.subdomain);
}
function dns1035(e: Errors, field: string, v: string): void {
  if (v.length > 63) e.invalid(field, v, 'must be no more than 63 characters');
  if (!DNS1035_LABEL.test(v)) e.invalid(field, v, MSG.dns1035);
}
/** validation.IsValidPortName (IANA_SVC_NAME). */
function portName(e: Errors, field: string, v: string): void {
  if (v.length > 15) e.invalid(field, v, 'must be no more than 15 characters');
  if (!IANA_SVC_NAME.test(v)) e.invalid(field, v, "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
  if (v.includes('--')) e.invalid(field, v, 'must not contain consecutive hyphens');
  if (!/[a-z]/.test(v)) e.invalid(field, v, 'must contain at least one letter (a-z)');
}
function portNumber(e: Errors, field: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) e.invalid(field, v, 'must be between 1 and 65535, inclusive');
}
function qualifiedName(e: Errors, field: string, k: string): void {
  const parts = k.split('/');
  let name = k;
  if (parts.length === 2) {
    const [prefix, n] = parts as [string, string];
    if (!prefix) e.invalid(field, k, 'prefix part must be non-empty');
    else if (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix)) e.invalid(field, k, `prefix part ${MSG.subdomain}`);
    name = n;
  } else if (parts.length > 2) {
    e.invalid(field, k, "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character with an optional DNS subdomain prefix and '/'");
    return;
  }
  if (!name) e.invalid(field, k, 'name part must be non-empty');
  else {
    if (name.length > 63) e.invalid(field, k, 'name part must be no more than 63 characters');
    if (!QUALIFIED_NAME.test(name)) e.invalid(field, k, MSG.qualifiedName);
  }
}
function labels(e: Errors, field: string, m: unknown): void {
  for (const [k, v] of Object.entries(obj(m))) {
    qualifiedName(e, field, k);
    const s = String(v);
    if (s.length > 63) e.invalid(`${field}`, s, 'must be no more than 63 characters');
    if (!LABEL_VALUE.test(s)) e.invalid(field, s, MSG.labelValue);
  }
}
function configKey(e: Errors, field: string, k: string): void {
  if (k.length > 253) e.invalid(field, k, 'must be no more than 253 characters');
  if (!CONFIG_MAP_KEY.test(k)) e.invalid(field, k, MSG.configMapKey);
  if (k === '.' || k === '..' || k.startsWith('..')) e.invalid(field, k, k.startsWith('..') && k.length > 2 ? "must not start with '..'" : `must not be '${k}'`);
}
function unique<T>(e: Errors, items: T[], keyOf: (t: T) => unknown, field: (i: number) => string): void {
  const seen = new Set<string>();
  items.forEach((t, i) => {
    const k = keyOf(t);
    if (k === undefined) return;
    const s = JSON.stringify(k);
    if (seen.has(s)) e.duplicate(field(i), k);
    seen.add(s);
  });
}
/** validateLocalDescendingPath + subPath rules: relative, no '..' element. */
function relativePath(e: Errors, field: string, p: string): void {
  if (p.startsWith('/')) e.invalid(field, p, 'must be a relative path');
  if (p.split(/[\\/]/).includes('..')) e.invalid(field, p, "must not contain '..'");
}

/** ObjectMeta: the name format is per kind (ValidateObjectMeta with the kind's name function). */
function objectMeta(e: Errors, r: ResourceInfo, meta: Obj): void {
  const n = String(meta.name ?? '');
  if (n) {
    if (r.kind === 'Namespace') label(e, 'metadata.name', n);
    else if (r.kind === 'Service') dns1035(e, 'metadata.name', n);
    else if (r.group === 'rbac.authorization.k8s.io') {
      if (n === '.' || n === '..' || /[/%]/.test(n)) e.invalid('metadata.name', n, `may not ${n.includes('/') ? "contain '/'" : n.includes('%') ? "contain '%'" : `be '${n}'`}`);
    } else subdomain(e, 'metadata.name', n);
  }
  labels(e, 'metadata.labels', meta.labels);
  let size = 0;
  for (const [k, v] of Object.entries(obj(meta.annotations))) {
    qualifiedName(e, 'metadata.annotations', k.toLowerCase());
    size += k.length + String(v).length;
  }
  if (size > 256 * 1024) e.tooLong('metadata.annotations', 256 * 1024);
}

function podSpec(e: Errors, f: string, spec: Obj): void {
  const volumes = arr(spec.volumes);
  unique(e, volumes, (v) => v.name, (i) => `${f}.volumes[${i}].name`);
  volumes.forEach((v, i) => {
    if (typeof v.name !== 'string' || !v.name) e.required(`${f}.volumes[${i}].name`);
    else label(e, `${f}.volumes[${i}].name`, v.name);
    for (const src of ['configMap', 'secret']) {
      arr(obj(v[src]).items).forEach((it, j) => {
        const p = `${f}.volumes[${i}].${src}.items[${j}]`;
        if (!it.key) e.required(`${p}.key`);
        if (typeof it.path !== 'string' || !it.path) e.required(`${p}.path`);
        else relativePath(e, `${p}.path`, it.path);
      });
    }
    const pvc = obj(v.persistentVolumeClaim);
    if (isObj(v.persistentVolumeClaim) && !pvc.claimName) e.required(`${f}.volumes[${i}].persistentVolumeClaim.claimName`);
  });
  const names = new Set(volumes.map((v) => v.name));
  const all: [string, Obj[]][] = [
    ['initContainers', arr(spec.initContainers)],
    ['containers', arr(spec.containers)],
  ];
  if (all[1]![1].length === 0) e.required(`${f}.containers`);
  const seen = new Set<string>();
  for (const [list, containers] of all) {
    containers.forEach((c, i) => {
      const cf = `${f}.${list}[${i}]`;
      const name = String(c.name ?? '');
      if (!name) e.required(`${cf}.name`);
      else {
        label(e, `${cf}.name`, name);
        if (seen.has(name)) e.duplicate(`${cf}.name`, name);
        seen.add(name);
      }
      if (!c.image) e.required(`${cf}.image`);
      const ports = arr(c.ports);
      ports.forEach((p, j) => {
        portNumber(e, `${cf}.ports[${j}].containerPort`, p.containerPort);
        if (p.name !== undefined) portName(e, `${cf}.ports[${j}].name`, String(p.name));
        if (p.protocol !== undefined && !['TCP', 'UDP', 'SCTP'].includes(String(p.protocol))) {
          e.causes.push({ reason: 'FieldValueNotSupported', field: `${cf}.ports[${j}].protocol`, message: `Unsupported value: "${String(p.protocol)}": supported values: "SCTP", "TCP", "UDP"` });
        }
      });
      unique(e, ports, (p) => p.name, (j) => `${cf}.ports[${j}].name`);
      arr(c.env).forEach((v, j) => {
        const n = String(v.name ?? '');
        if (!n) e.required(`${cf}.env[${j}].name`);
        else if (!ENV_VAR_NAME.test(n)) e.invalid(`${cf}.env[${j}].name`, n, MSG.envName);
      });
      const mounts = arr(c.volumeMounts);
      mounts.forEach((m, j) => {
        const mf = `${cf}.volumeMounts[${j}]`;
        if (!names.has(m.name)) e.causes.push({ reason: 'FieldValueNotSupported', field: `${mf}.name`, message: `Not found: ${JSON.stringify(m.name)}` });
        if (typeof m.mountPath !== 'string' || !m.mountPath) e.required(`${mf}.mountPath`);
        if (typeof m.subPath === 'string' && m.subPath) relativePath(e, `${mf}.subPath`, m.subPath);
      });
      unique(e, mounts, (m) => m.mountPath, (j) => `${cf}.volumeMounts[${j}].mountPath`);
      for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
        const pr = obj(c[probe]);
        for (const h of ['httpGet', 'tcpSocket', 'grpc']) {
          const port = obj(pr[h]).port;
          if (typeof port === 'string') {
            portName(e, `${cf}.${probe}.${h}.port`, port);
            if (!ports.some((p) => p.name === port)) {
              // named probe ports must exist in the container
              e.causes.push({ reason: 'FieldValueNotSupported', field: `${cf}.${probe}.${h}.port`, message: `Not found: ${JSON.stringify(port)}` });
            }
          } else if (port !== undefined) portNumber(e, `${cf}.${probe}.${h}.port`, port);
        }
      }
    });
  }
  arr(spec.hostAliases).forEach((h, i) => {
    if (typeof h.ip !== 'string' || !/^(\d{1,3}\.){3}\d{1,3}$|:/.test(h.ip)) e.invalid(`${f}.hostAliases[${i}].ip`, h.ip, 'must be a valid IP address');
    (Array.isArray(h.hostnames) ? (h.hostnames as string[]) : []).forEach((n, j) => subdomain(e, `${f}.hostAliases[${i}].hostnames[${j}]`, n));
  });
}

function selectorMatches(selector: Obj, podLabels: Obj): boolean {
  for (const [k, v] of Object.entries(obj(selector.matchLabels))) if (podLabels[k] !== v) return false;
  for (const ex of arr(selector.matchExpressions)) {
    const values = (ex.values as string[] | undefined) ?? [];
    const has = Object.prototype.hasOwnProperty.call(podLabels, String(ex.key));
    const val = podLabels[String(ex.key)];
    if (ex.operator === 'In' && !(has && values.includes(String(val)))) return false;
    if (ex.operator === 'NotIn' && has && values.includes(String(val))) return false;
    if (ex.operator === 'Exists' && !has) return false;
    if (ex.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

function service(e: Errors, spec: Obj): void {
  const ports = arr(spec.ports);
  const type = String(spec.type ?? 'ClusterIP');
  if (type !== 'ExternalName' && ports.length === 0 && spec.clusterIP !== 'None') e.required('spec.ports');
  ports.forEach((p, i) => {
    const pf = `spec.ports[${i}]`;
    if (ports.length > 1 && !p.name) e.required(`${pf}.name`);
    if (p.name) label(e, `${pf}.name`, String(p.name));
    portNumber(e, `${pf}.port`, p.port);
    if (typeof p.targetPort === 'string') portName(e, `${pf}.targetPort`, p.targetPort);
    else if (p.targetPort !== undefined) portNumber(e, `${pf}.targetPort`, p.targetPort);
  });
  unique(e, ports, (p) => p.name, (i) => `spec.ports[${i}].name`);
  unique(e, ports, (p) => `${String(p.port)}/${String(p.protocol ?? 'TCP')}`, (i) => `spec.ports[${i}]`);
  labels(e, 'spec.selector', spec.selector);
}

function ingress(e: Errors, spec: Obj): void {
  const backend = (f: string, b: Obj) => {
    const s = obj(b.service);
    if (!isObj(b.service) && !isObj(b.resource)) e.required(f, 'one backend (`service` or `resource`) must be specified');
    if (isObj(b.service)) {
      if (!s.name) e.required(`${f}.service.name`);
      else dns1035(e, `${f}.service.name`, String(s.name));
      const port = obj(s.port);
      if (port.name !== undefined && port.number !== undefined) e.invalid(`${f}.service.port`, port, 'cannot set both port name & port number');
      else if (port.name !== undefined) portName(e, `${f}.service.port.name`, String(port.name));
      else if (port.number !== undefined) portNumber(e, `${f}.service.port.number`, port.number);
      else e.required(`${f}.service.port`, 'port name or number is required');
    }
  };
  if (isObj(spec.defaultBackend)) backend('spec.defaultBackend', spec.defaultBackend);
  arr(spec.rules).forEach((rule, i) => {
    const rf = `spec.rules[${i}]`;
    if (typeof rule.host === 'string' && rule.host) {
      const h = rule.host;
      if (/^[\d.]+$/.test(h) || h.includes(':')) e.invalid(`${rf}.host`, h, 'must be a DNS name, not an IP address');
      else if (h.startsWith('*')) {
        if (!WILDCARD_SUBDOMAIN.test(h)) e.invalid(`${rf}.host`, h, "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain");
      } else subdomain(e, `${rf}.host`, h);
    }
    arr(obj(rule.http).paths).forEach((p, j) => {
      const pf = `${rf}.http.paths[${j}]`;
      const type = p.pathType;
      if (type === undefined) e.required(`${pf}.pathType`, 'pathType must be specified');
      else if (!['Exact', 'Prefix', 'ImplementationSpecific'].includes(String(type))) {
        e.causes.push({ reason: 'FieldValueNotSupported', field: `${pf}.pathType`, message: `Unsupported value: "${String(type)}": supported values: "Exact", "ImplementationSpecific", "Prefix"` });
      }
      if (type === 'Exact' || type === 'Prefix') {
        const path = String(p.path ?? '');
        if (!path.startsWith('/')) e.invalid(`${pf}.path`, path, 'must be an absolute path');
        if (/\/\.\.?(\/|$)|\/\//.test(path)) e.invalid(`${pf}.path`, path, "must not contain '//', '/./' or '/../'");
      }
      backend(`${pf}.backend`, obj(p.backend));
    });
  });
  arr(spec.tls).forEach((t, i) => {
    (Array.isArray(t.hosts) ? (t.hosts as string[]) : []).forEach((h, j) => {
      if (h.startsWith('*')) {
        if (!WILDCARD_SUBDOMAIN.test(h)) e.invalid(`spec.tls[${i}].hosts[${j}]`, h, "a wildcard DNS-1123 subdomain must start with '*.'");
      } else subdomain(e, `spec.tls[${i}].hosts[${j}]`, h);
    });
  });
}

const PV_SOURCES = ['local', 'hostPath', 'csi', 'nfs', 'awsElasticBlockStore', 'azureDisk', 'azureFile', 'gcePersistentDisk', 'iscsi', 'fc', 'cephfs', 'rbd'];

function persistentVolume(e: Errors, spec: Obj): void {
  if (arr(spec.accessModes).length === 0 && !(Array.isArray(spec.accessModes) && spec.accessModes.length)) e.required('spec.accessModes');
  if (!obj(spec.capacity).storage) e.required('spec.capacity', 'must specify storage');
  const sources = PV_SOURCES.filter((s) => isObj(spec[s]));
  if (sources.length === 0) e.required('spec', 'must specify a volume type');
  if (sources.length > 1) e.forbidden(`spec.${sources[1]}`, 'may not specify more than 1 volume type');
  if (isObj(spec.local)) {
    const p = String(spec.local.path ?? '');
    if (!p) e.required('spec.local.path');
    else if (p.split('/').includes('..')) e.invalid('spec.local.path', p, "must not contain '..'");
    // validateNodeAffinity: a local volume is usable only on its node
    if (!isObj(spec.nodeAffinity)) e.required('spec.nodeAffinity', 'Local volume requires node affinity');
  }
  if (isObj(spec.nodeAffinity)) {
    const terms = arr(obj(obj(spec.nodeAffinity).required).nodeSelectorTerms);
    if (isObj(spec.nodeAffinity.required) && terms.length === 0) e.required('spec.nodeAffinity.required.nodeSelectorTerms', 'must have at least one node selector term');
  }
  if (isObj(spec.claimRef)) {
    if (!spec.claimRef.name) e.required('spec.claimRef.name');
    if (!spec.claimRef.namespace) e.required('spec.claimRef.namespace');
  }
  const policy = spec.persistentVolumeReclaimPolicy;
  if (policy !== undefined && !['Retain', 'Delete', 'Recycle'].includes(String(policy))) {
    e.causes.push({ reason: 'FieldValueNotSupported', field: 'spec.persistentVolumeReclaimPolicy', message: `Unsupported value: "${String(policy)}": supported values: "Delete", "Recycle", "Retain"` });
  }
  if (spec.storageClassName) subdomain(e, 'spec.storageClassName', String(spec.storageClassName));
}

function persistentVolumeClaim(e: Errors, spec: Obj): void {
  if (!(Array.isArray(spec.accessModes) && spec.accessModes.length)) e.required('spec.accessModes', 'at least 1 access mode is required');
  if (!obj(obj(spec.resources).requests).storage) e.required('spec.resources[storage]');
  if (spec.storageClassName) subdomain(e, 'spec.storageClassName', String(spec.storageClassName));
  if (spec.volumeName) subdomain(e, 'spec.volumeName', String(spec.volumeName));
}

function dataKeys(e: Errors, o: Obj): void {
  for (const field of ['data', 'binaryData', 'stringData']) {
    for (const k of Object.keys(obj(o[field]))) configKey(e, `${field}[${k}]`, k);
  }
}

/** Create/apply validation of one object (the object as it would be stored). */
export function validateObject(r: ResourceInfo, o: Obj): Cause[] {
  const e = new Errors();
  objectMeta(e, r, obj(o.metadata));
  const spec = obj(o.spec);
  switch (r.kind) {
    case 'ConfigMap':
    case 'Secret':
      dataKeys(e, o);
      break;
    case 'Pod':
      podSpec(e, 'spec', spec);
      break;
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet': {
      const sel = obj(spec.selector);
      const t = obj(spec.template);
      if (!isObj(spec.selector)) e.required('spec.selector');
      else if (Object.keys(obj(sel.matchLabels)).length === 0 && arr(sel.matchExpressions).length === 0) e.invalid('spec.selector', sel, 'empty selector is invalid for deployment');
      else if (!selectorMatches(sel, obj(obj(t.metadata).labels))) e.invalid('spec.template.metadata.labels', obj(obj(t.metadata).labels), '`selector` does not match template `labels`');
      labels(e, 'spec.template.metadata.labels', obj(t.metadata).labels);
      podSpec(e, 'spec.template.spec', obj(t.spec));
      if (r.kind === 'Deployment' && isObj(spec.strategy) && spec.strategy.type === 'Recreate' && spec.strategy.rollingUpdate !== undefined) {
        e.forbidden('spec.strategy.rollingUpdate', 'may not be specified when strategy `type` is \'Recreate\'');
      }
      break;
    }
    case 'Service':
      service(e, spec);
      break;
    case 'Ingress':
      ingress(e, spec);
      break;
    case 'IngressClass': {
      const c = String(spec.controller ?? '');
      if (!c) e.required('spec.controller');
      else if (c.length > 250) e.tooLong('spec.controller', 250);
      break;
    }
    case 'PersistentVolume':
      persistentVolume(e, spec);
      break;
    case 'PersistentVolumeClaim':
      persistentVolumeClaim(e, spec);
      break;
    case 'ClusterRoleBinding':
    case 'RoleBinding': {
      const ref = obj(o.roleRef);
      if (!ref.name) e.required('roleRef.name');
      if (!['ClusterRole', 'Role'].includes(String(ref.kind))) {
        e.causes.push({ reason: 'FieldValueNotSupported', field: 'roleRef.kind', message: `Unsupported value: "${String(ref.kind)}": supported values: "ClusterRole", "Role"` });
      }
      arr(o.subjects).forEach((s, i) => {
        if (s.kind === 'ServiceAccount' && !s.namespace) e.required(`subjects[${i}].namespace`);
      });
      break;
    }
  }
  return e.causes;
}

/** Update rules: fields that cannot change once the object exists. */
export function validateUpdate(r: ResourceInfo, next: Obj, live: Obj): Cause[] {
  const e = new Errors();
  const ns = obj(next.spec);
  const ls = obj(live.spec);
  const same = (a: unknown, b: unknown) => JSON.stringify(canon(a)) === JSON.stringify(canon(b));
  switch (r.kind) {
    case 'PersistentVolumeClaim': {
      // ValidatePersistentVolumeClaimUpdate: volumeName may be set once; requests may change only on a bound claim
      const a = structuredClone(ls);
      const b = structuredClone(ns);
      if (!a.volumeName) a.volumeName = b.volumeName;
      const bound = obj(live.status).phase === 'Bound';
      if (bound) {
        obj(obj(b.resources).requests).storage = obj(obj(a.resources).requests).storage;
      }
      if (!same(a, b)) e.forbidden('spec', 'spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims');
      break;
    }
    case 'PersistentVolume': {
      const src = (s: Obj) => Object.fromEntries(PV_SOURCES.filter((k) => s[k] !== undefined).map((k) => [k, s[k]]));
      if (!same(src(ns), src(ls))) e.forbidden('spec.persistentvolumesource', 'spec.persistentvolumesource is immutable after creation');
      if (ls.nodeAffinity !== undefined && !same(ns.nodeAffinity, ls.nodeAffinity)) e.invalid('spec.nodeAffinity', ns.nodeAffinity ?? null, 'field is immutable');
      if ((ls.volumeMode ?? 'Filesystem') !== (ns.volumeMode ?? 'Filesystem')) e.invalid('volumeMode', ns.volumeMode, 'field is immutable');
      break;
    }
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
      if (!same(ns.selector, ls.selector)) e.invalid('spec.selector', ns.selector ?? null, 'field is immutable');
      break;
    case 'Service':
      if (ls.clusterIP !== undefined && ns.clusterIP !== undefined && ns.clusterIP !== ls.clusterIP) e.invalid('spec.clusterIPs[0]', ns.clusterIP, 'may not change once set');
      break;
    case 'IngressClass':
      if (ls.controller !== undefined && ns.controller !== ls.controller) e.invalid('spec.controller', ns.controller, 'field is immutable');
      break;
  }
  return e.causes;
}

function canon(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canon);
  if (isObj(v)) return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon(v[k])]));
  return v;
}

/** The real server's 422 message: `Kind "name" is invalid: field: msg` (several: `[a: x, b: y]`). */
export function invalidMessage(kind: string, name: string, causes: Cause[]): string {
  const parts = causes.map((c) => `${c.field}: ${c.message}`);
  return `${kind} "${name}" is invalid: ${parts.length === 1 ? parts[0] : `[${parts.join(', ')}]`}`;
}
