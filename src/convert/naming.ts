// Kubernetes-safe names derived from compose names. A name that is already
// valid is kept as is (readable); one that had to be changed gets a short hash
// of the original appended, so two different compose names never collide.
import { shortHash } from '../domain/names.js';

const LABEL_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function fit(base: string, original: string, changed: boolean, max: number): string {
  let s = base.replace(/^[-.]+|[-.]+$/g, '');
  if (!changed && s.length <= max && s.length > 0) return s;
  const h = shortHash(original, 6);
  s = s.slice(0, max - h.length - 1).replace(/[-.]+$/, '');
  return s ? `${s}-${h}` : h;
}

/** RFC 1123 label (container names, pod volume names, Service port names...). */
export function dnsLabel(s: string, max = 63): string {
  const base = s.toLowerCase().replace(/[^a-z0-9-]+/g, '-');
  return fit(base, s, !(LABEL_RE.test(s) && s.length <= max), max);
}

/** RFC 1123 subdomain (ConfigMap/Secret/Ingress names). */
export function dnsSubdomain(s: string, max = 253): string {
  // every dot-separated part must be a label: `dir-conf-.ssh` (from ./conf/.ssh) is rejected by the API server
  const base = s.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/[-.]*\.[-.]*/g, '.');
  return fit(base, s, !(isDnsSubdomain(s) && s.length <= max), max);
}

export function isDnsSubdomain(s: string): boolean {
  return s.length <= 253 && SUBDOMAIN_RE.test(s) && s.split('.').every((p) => LABEL_RE.test(p));
}

/** ConfigMap/Secret data key: `[-._a-zA-Z0-9]+`. */
export function dataKey(s: string): string {
  // the API server also rejects keys starting with '..' (IsConfigMapKey)
  if (/^[-._a-zA-Z0-9]+$/.test(s) && !s.startsWith('..') && s !== '.') return s;
  return `${s.replace(/[^-._a-zA-Z0-9]+/g, '_').replace(/^\.+/, '_')}-${shortHash(s, 6)}`;
}
