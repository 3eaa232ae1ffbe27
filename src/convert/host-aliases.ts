// Name resolution inside the pod: Docker's embedded DNS resolves service names,
// aliases and container names to the service's container; in one pod they all
// share localhost, so hostAliases map them to 127.0.0.1 (plus extra_hosts).
import type { Diagnostics } from './diagnostics.js';
import { isDnsSubdomain } from './naming.js';
import type { ConvertInput } from './types.js';

/** 127.0.0.1 for every service name and alias (all services share the pod's localhost), plus extra_hosts. */
export function hostAliases(input: ConvertInput, services: string[], diags: Diagnostics): Record<string, unknown>[] {
  const byIp = new Map<string, Set<string>>();
  const add = (ip: string, host: string) => {
    const h = host.trim().toLowerCase();
    if (!h || h === 'localhost' || !isDnsSubdomain(h)) return;
    if (!byIp.has(ip)) byIp.set(ip, new Set());
    byIp.get(ip)!.add(h);
  };
  for (const service of services) {
    const svc = input.project.services[service]!;
    add('127.0.0.1', service);
    if (svc.container_name) add('127.0.0.1', svc.container_name);
    if (svc.hostname) add('127.0.0.1', svc.hostname);
    for (const n of Object.values(svc.networks ?? {})) for (const a of n?.aliases ?? []) add('127.0.0.1', a);
    for (const l of (svc.links as string[] | undefined) ?? []) add('127.0.0.1', l.split(':').pop()!);
    const eh = svc.extra_hosts;
    const pairs: [string, string][] = Array.isArray(eh)
      ? eh.map((e) => {
          const m = /^([^:=]+)[:=](.*)$/.exec(e);
          return m ? [m[1]!, m[2]!.replace(/^\[|\]$/g, '')] : [e, ''];
        })
      : Object.entries(eh ?? {});
    for (const [host, ip] of pairs) {
      if (ip === 'host-gateway' || !/^[0-9a-fA-F:.]+$/.test(ip) || !ip) {
        diags.warn({ service, key: 'extra_hosts', message: `service "${service}": extra_hosts ${host}=${ip} is ignored (there is no docker host gateway on a cluster)` });
        continue;
      }
      add(ip, host);
    }
  }
  return [...byIp.keys()].sort().map((ip) => ({ ip, hostnames: [...byIp.get(ip)!].sort() }));
}

