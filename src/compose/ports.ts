// Port short syntax → long syntax, as compose-go does it (docker's
// nat.ParsePortSpec): `[ip:][published:]target[/protocol]` with ranges.
import type { ServicePort } from './model.js';

export class PortSyntaxError extends Error {}

function parseRange(s: string, what: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(s);
  if (!m) throw new PortSyntaxError(`invalid ${what} "${s}"`);
  const a = Number(m[1]);
  const b = m[2] !== undefined ? Number(m[2]) : a;
  if (a > 65535 || b > 65535 || b < a) throw new PortSyntaxError(`invalid ${what} range "${s}"`);
  return [a, b];
}

export function parseShortPort(spec: string | number): ServicePort[] {
  if (typeof spec === 'number') return [{ mode: 'ingress', target: spec, protocol: 'tcp' }];
  let raw = spec.trim();
  let protocol = 'tcp';
  const slash = raw.lastIndexOf('/');
  if (slash >= 0) {
    protocol = raw.slice(slash + 1).toLowerCase();
    raw = raw.slice(0, slash);
  }
  if (protocol !== 'tcp' && protocol !== 'udp' && protocol !== 'sctp') {
    throw new PortSyntaxError(`invalid protocol "${protocol}" (use tcp or udp)`);
  }
  const parts = raw.split(':');
  const n = parts.length;
  const containerPart = parts[n - 1]!;
  let hostPart = '';
  let ip = '';
  if (n === 2) hostPart = parts[0]!;
  else if (n === 3) {
    ip = parts[0]!;
    hostPart = parts[1]!;
  } else if (n > 3) {
    ip = parts.slice(0, n - 2).join(':');
    hostPart = parts[n - 2]!;
  }
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  if (containerPart === '') throw new PortSyntaxError(`no container port in "${spec}"`);
  const [cs, ce] = parseRange(containerPart, 'container port');
  const base = (target: number, published?: string): ServicePort => {
    const p: ServicePort = { mode: 'ingress', target, protocol: protocol as 'tcp' | 'udp' };
    if (ip) p.host_ip = ip;
    if (published !== undefined && published !== '') p.published = published;
    return p;
  };
  if (hostPart === '') {
    const out: ServicePort[] = [];
    for (let t = cs; t <= ce; t++) out.push(base(t));
    return out;
  }
  const [hs, he] = parseRange(hostPart, 'published port');
  if (cs === ce) {
    // a single container port with a host range: the engine picks one host port of the range
    return [base(cs, hs === he ? String(hs) : `${hs}-${he}`)];
  }
  if (ce - cs !== he - hs) {
    throw new PortSyntaxError(`the published range "${hostPart}" and the container range "${containerPart}" differ in size`);
  }
  const out: ServicePort[] = [];
  for (let i = 0; i <= ce - cs; i++) out.push(base(cs + i, String(hs + i)));
  return out;
}

/** Long syntax with compose's defaults (protocol tcp, mode ingress, published as string). */
export function canonicalLongPort(p: Record<string, unknown>): ServicePort {
  const out: Record<string, unknown> = { ...p };
  if (out.mode === undefined) out.mode = 'ingress';
  if (out.protocol === undefined) out.protocol = 'tcp';
  if (typeof out.target === 'string' && /^\d+$/.test(out.target)) out.target = Number(out.target);
  if (typeof out.published === 'number') out.published = String(out.published);
  if (out.published === '' || out.published === null) delete out.published;
  return out as unknown as ServicePort;
}
