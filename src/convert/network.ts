// ports/expose → the app Service, Traefik Ingresses and container ports, plus
// the namespace's NetworkPolicy. Host names follow the spec:
// `{app}.{cluster}.{domain}` for port 80, `{app}-{port}.{cluster}.{domain}` for
// others, keyed by the *published* port (`http_8080` = published 8080), plus
// custom hosts from app.ingress (`http_80: www.example.com`).
import type { AppContext } from '../domain/model.js';
import { certResolverFor } from '../domain/ingress.js';
import type { ComposeProject } from '../compose/model.js';
import type { KubeObject } from '../domain/ports/kube.js';
import type { Diagnostics } from './diagnostics.js';
import { isDnsSubdomain } from './naming.js';
import { byKey } from './pod-state.js';
import { DEFAULT_INGRESS_NAMESPACE, K3S_NAMESPACE } from '../ingress/names.js';
import { ingressVariantFor } from '../ingress/settings.js';

/** Where the ingress controller's pods run: K3s's bundled Traefik is in kube-system whatever cluster.ingress.namespace says. */
export function ingressControllerNamespace(ctx: AppContext): string {
  return ingressVariantFor(ctx.provider.driver) === 'k3s' ? K3S_NAMESPACE : ctx.cluster.ingress?.namespace || DEFAULT_INGRESS_NAMESPACE;
}

/**
 * Container ports that do not speak plain HTTP: they get no ingress host and
 * stay reachable in-cluster and through `app tunnel`. Rule: every UDP port, and
 * TCP ports of well-known non-HTTP protocols (databases, mail, SSH, DNS, brokers)
 * and of TLS-terminating servers (443/8443/9443: Traefik would have to speak TLS to them).
 */
export const NON_HTTP_TCP_PORTS: ReadonlySet<number> = new Set([
  21, 22, 23, 25, 53, 110, 143, 389, 443, 465, 587, 636, 993, 995, 1433, 1521, 1883, 2181, 3306, 3389, 4222, 5432, 5672, 6379,
  8443, 8883, 9042, 9092, 9300, 9443, 11211, 25565, 27017,
]);

export interface PortSpec {
  service: string;
  /** Service port: the published port (or the container port when none is published). */
  port: number;
  target: number;
  protocol: 'TCP' | 'UDP';
  /** From `ports` (published), not `expose`. */
  published: boolean;
  /** Published on a loopback host IP: local-only in Docker, so never exposed on the internet. */
  localOnly: boolean;
  path: (string | number)[];
}

function parsePublished(p: string | number | undefined): number | 'range' | undefined {
  if (p === undefined || p === '') return undefined;
  const s = String(p);
  if (/^\d+$/.test(s)) return Number(s);
  const m = /^(\d+)-(\d+)$/.exec(s);
  if (m && m[1] === m[2]) return Number(m[1]);
  return 'range';
}

/** Every port of every service, with duplicates and cross-service clashes reported. */
export function collectPorts(project: ComposeProject, services: string[], diags: Diagnostics): PortSpec[] {
  const out: PortSpec[] = [];
  const owner = new Map<string, string>(); // `${target}/${proto}` → service (one pod: one localhost)
  const servicePort = new Map<string, string>(); // `${port}/${proto}` → service
  const claimTarget = (service: string, target: number, proto: string, path: (string | number)[]) => {
    const k = `${target}/${proto.toLowerCase()}`;
    const prev = owner.get(k);
    if (prev !== undefined && prev !== service) {
      diags.error({
        service, key: path[2] as string, path,
        message: `services "${prev}" and "${service}" both use container port ${k}; all services share one pod (one localhost), so a port can have only one owner`,
        hint: `Change the port one of them listens on.`,
      });
      return false;
    }
    owner.set(k, service);
    return true;
  };
  for (const service of services) {
    const svc = project.services[service]!;
    (svc.ports ?? []).forEach((p, i) => {
      const path = ['services', service, 'ports', i];
      const protocol = (p.protocol ?? 'tcp').toUpperCase() === 'UDP' ? 'UDP' : 'TCP';
      let pub = parsePublished(p.published as string | number | undefined);
      if (pub === 'range') {
        diags.warn({ service, key: 'ports', path, message: `service "${service}": published port range ${p.published} is not supported; container port ${p.target} is used` });
        pub = undefined;
      }
      if (!claimTarget(service, p.target, protocol, path)) return;
      const port = pub ?? p.target;
      const k = `${port}/${protocol}`;
      if (servicePort.has(k)) {
        diags.error({
          service, key: 'ports', path,
          message: `service "${service}": port ${port}/${protocol.toLowerCase()} is published twice${servicePort.get(k) !== service ? ` (also by service "${servicePort.get(k)}")` : ''}`,
          hint: 'Publish each host port once.',
        });
        return;
      }
      servicePort.set(k, service);
      const localOnly = p.host_ip !== undefined && /^(127\.|::1$|localhost$)/.test(p.host_ip);
      out.push({ service, port, target: p.target, protocol, published: true, localOnly, path });
    });
    (svc.expose ?? []).forEach((e, i) => {
      const path = ['services', service, 'expose', i];
      const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp))?$/i.exec(String(e).trim());
      if (!m) {
        diags.error({ service, key: 'expose', path, message: `service "${service}": expose "${e}" is not a port`, hint: 'Write e.g. 5432 or 53/udp.' });
        return;
      }
      const from = Number(m[1]);
      const to = m[2] ? Number(m[2]) : from;
      const protocol = (m[3] ?? 'tcp').toUpperCase() === 'UDP' ? 'UDP' : 'TCP';
      for (let port = from; port <= to && port - from < 100; port++) {
        if (!claimTarget(service, port, protocol, path)) return;
        const k = `${port}/${protocol}`;
        if (servicePort.has(k)) {
          // Already a Service port via `ports`: fine for the same service, a shadowed port otherwise.
          if (servicePort.get(k) !== service) {
            diags.warn({
              service, key: 'expose', path,
              message: `service "${service}": expose ${port}/${protocol.toLowerCase()} is not added to the Service: port ${port} there is already published by service "${servicePort.get(k)}"; reach ${service} in the pod at localhost:${port}`,
            });
          }
          continue;
        }
        servicePort.set(k, service);
        out.push({ service, port, target: port, protocol, published: false, localOnly: false, path });
      }
    });
  }
  return out.sort((a, b) => a.port - b.port || (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0));
}

export function servicePortName(p: Pick<PortSpec, 'port' | 'protocol'>): string {
  return `p${p.port}-${p.protocol.toLowerCase()}`;
}

/**
 * The Service's name: the app name, except that a Service name must be an
 * RFC 1035 label (start with a letter; the API server rejects e.g. "2048-game"),
 * so an app name starting with a digit gets the prefix `app-`.
 */
export function serviceName(app: string): string {
  return /^[a-z]/.test(app) ? app : `app-${app}`.slice(0, 63).replace(/-+$/, '');
}

export function buildService(ctx: AppContext, ns: string, labels: Record<string, string>, selector: Record<string, string>, ports: PortSpec[]): KubeObject | undefined {
  if (ports.length === 0) return undefined;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: serviceName(ctx.app.name), namespace: ns, labels: { ...labels } },
    spec: {
      type: 'ClusterIP',
      selector: { ...selector },
      ports: ports.map((p) => ({ name: servicePortName(p), port: p.port, targetPort: p.target, protocol: p.protocol })),
    },
  };
}

interface Route {
  host: string;
  port: number;
}

function ingressObject(name: string, ns: string, labels: Record<string, string>, annotations: Record<string, string>, service: string, routes: Route[]): KubeObject {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, namespace: ns, labels: { ...labels }, annotations },
    spec: {
      ingressClassName: 'traefik',
      rules: [...routes].sort(byKey((r) => r.host)).map((r) => ({
        host: r.host,
        http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: service, port: { number: r.port } } } }] },
      })),
    },
  };
}

/** `{app}-default` (cluster wildcard certificate) and `{app}-custom` (ACME resolver) Ingresses. */
export function buildIngresses(ctx: AppContext, ns: string, labels: Record<string, string>, ports: PortSpec[], diags: Diagnostics): KubeObject[] {
  const app = ctx.app.name;
  const domain = ctx.cluster.domain;
  const tcpPublished = new Map<number, PortSpec>();
  const udpPublished = new Set<number>();
  for (const p of ports) {
    if (!p.published) continue;
    if (p.protocol === 'TCP') tcpPublished.set(p.port, p);
    else udpPublished.add(p.port);
  }
  // Custom hosts (explicit: they make the port HTTP even if it is on the non-HTTP list).
  const custom: Route[] = [];
  const customPorts = new Set<number>();
  const seenHosts = new Map<string, string>();
  for (const key of Object.keys(ctx.app.ingress ?? {}).sort()) {
    const host = String(ctx.app.ingress[key]).trim().toLowerCase();
    const field = `app.ingress.${key}`;
    const path = ['app', 'ingress', key];
    const m = /^http_(\d+)$/.exec(key);
    if (!m) {
      diags.error({ message: `${field}: the key must be http_<port>`, path, key: field, hint: 'Write e.g. http_80: www.example.com (the published port of the service).' });
      continue;
    }
    const port = Number(m[1]);
    if (!isDnsSubdomain(host) || !host.includes('.')) {
      diags.error({ message: `${field}: "${ctx.app.ingress[key]}" is not a DNS host name`, path, key: field, hint: 'Write a fully qualified name like www.example.com.' });
      continue;
    }
    const p = tcpPublished.get(port);
    if (!p) {
      diags.error({
        message: `${field}: port ${port} is not published by any service${udpPublished.has(port) ? ' over TCP (HTTP needs TCP)' : ''}`,
        path, key: field,
        hint: `Publish it in compose.yml (ports: ["${port}:<container port>"]) or use one of: ${[...tcpPublished.keys()].map((n) => `http_${n}`).join(', ') || '(none published)'}.`,
      });
      continue;
    }
    if (seenHosts.has(host)) {
      diags.error({ message: `${field}: host ${host} is already used by app.ingress.${seenHosts.get(host)}`, path, key: field, hint: 'Use each host once.' });
      continue;
    }
    seenHosts.set(host, key);
    custom.push({ host, port });
    customPorts.add(port);
  }
  // Default hosts.
  const defaults: Route[] = [];
  const warnedDomain = { done: false };
  for (const p of ports) {
    if (!p.published) continue;
    const reason = p.protocol === 'UDP' ? 'UDP' : NON_HTTP_TCP_PORTS.has(p.target) && !customPorts.has(p.port) ? 'a well-known non-HTTP port' : undefined;
    if (reason) {
      diags.warn({
        service: p.service, key: 'ports', path: p.path,
        message: `service "${p.service}": port ${p.port}/${p.protocol.toLowerCase()} (container port ${p.target}) is ${reason}: it gets no ingress host; it is reachable in the cluster as ${serviceName(app)}:${p.port} and through kompoxops app tunnel`,
      });
      continue;
    }
    if (p.localOnly) {
      diags.warn({
        service: p.service, key: 'ports', path: p.path,
        message: `service "${p.service}": port ${p.port} is published on a loopback address (local only): it gets no ingress host; use kompoxops app tunnel`,
      });
      continue;
    }
    if (!domain) {
      if (!warnedDomain.done) {
        diags.warn({ message: `cluster ${ctx.cluster.name} has no domain: published ports get no default host names`, path: ['cluster'], hint: 'Set cluster.domain, or give hosts in app.ingress.' });
        warnedDomain.done = true;
      }
      continue;
    }
    defaults.push({ host: p.port === 80 ? `${app}.${ctx.cluster.name}.${domain}` : `${app}-${p.port}.${ctx.cluster.name}.${domain}`, port: p.port });
  }
  const base = {
    'traefik.ingress.kubernetes.io/router.entrypoints': 'websecure',
    'traefik.ingress.kubernetes.io/router.tls': 'true',
  };
  const out: KubeObject[] = [];
  if (defaults.length) out.push(ingressObject(`${app}-default`, ns, labels, { ...base }, serviceName(app), defaults));
  if (custom.length) {
    out.push(ingressObject(`${app}-custom`, ns, labels, { ...base, 'traefik.ingress.kubernetes.io/router.tls.certresolver': certResolverFor(ctx.cluster) }, serviceName(app), custom));
  }
  return out;
}

/**
 * Tenant isolation: ingress only from the app's own namespace and the ingress controller's
 * (the same namespace `cluster deploy` uses, see src/ingress/settings.ts).
 */
export function buildNetworkPolicy(ctx: AppContext, ns: string, labels: Record<string, string>): KubeObject {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'kompox-app-isolation', namespace: ns, labels: { ...labels } },
    spec: {
      podSelector: {},
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [
            { podSelector: {} },
            { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ingressControllerNamespace(ctx) } } },
          ],
        },
      ],
    },
  };
}
