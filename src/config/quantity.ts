// Size and quantity syntax of kompoxops.yml. The same regular expressions are
// in schema/kompoxops.schema.json; test/config/schema.test.ts keeps them in step.

/** Kubernetes resource.Quantity (non-negative): 500m, 0.5, 2, 1Gi, 1e3. */
export const QUANTITY_RE = /^([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[numkMGTPE]|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

/** Volume size: bare number of GiB, or Mi/Gi/Ti; not zero. */
export const SIZE_RE = /^(?!0+(\.0+)?(Mi|Gi|Ti)?$)([0-9]+(\.[0-9]+)?)(Mi|Gi|Ti)?$/;

/** `http_<port>` with a port in 1..65535. */
export const INGRESS_KEY_RE = /^http_([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$/;

/** DNS name: lower-case labels separated by dots, 253 characters at most. */
export const DNS_NAME_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

/** Fully qualified host name: a DNS name with at least two labels (custom ingress hosts). */
export const HOST_NAME_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+$/;

export function isHostName(s: string): boolean {
  return s.length <= 253 && HOST_NAME_RE.test(s);
}

export function isDnsName(s: string): boolean {
  return s.length <= 253 && DNS_NAME_RE.test(s);
}

/**
 * A volume size in whole GiB (rounded up: disks are allocated in GiB), or
 * undefined when the text is not a size.
 */
export function parseSizeGiB(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v > 0 ? Math.ceil(v) : undefined;
  const m = SIZE_RE.exec(v.trim());
  if (!m) return undefined;
  const n = Number(m[3]);
  const unit = m[5] ?? 'Gi';
  const gib = unit === 'Mi' ? n / 1024 : unit === 'Ti' ? n * 1024 : n;
  return gib > 0 ? Math.ceil(gib) : undefined;
}
