// Service volume short syntax → long syntax, as compose-go's format.ParseVolume:
// `[source:]target[:options]`, where a source that looks like a path
// (., /, ~, or a Windows drive) is a bind mount and anything else a named volume.
import type { ServiceVolume } from './model.js';

export class VolumeSyntaxError extends Error {}

const PROPAGATION = new Set(['shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate']);

function isWindowsDrive(s: string, i: number): boolean {
  return i === 1 && /^[a-zA-Z]$/.test(s[0]!) && (s[2] === '\\' || s[2] === '/');
}

export function isFilePath(s: string): boolean {
  return s.startsWith('.') || s.startsWith('/') || s.startsWith('~') || /^[a-zA-Z]:[\\/]/.test(s) || s.startsWith('\\\\');
}

export function parseShortVolume(spec: string): ServiceVolume {
  const parts: string[] = [];
  let buf = '';
  for (let i = 0; i < spec.length; i++) {
    const c = spec[i]!;
    if (c === ':' && !(parts.length === 0 && isWindowsDrive(spec, i))) {
      parts.push(buf);
      buf = '';
      continue;
    }
    buf += c;
  }
  parts.push(buf);
  if (parts.length > 3) throw new VolumeSyntaxError(`too many colons in "${spec}"`);
  if (parts.some((p) => p === '')) throw new VolumeSyntaxError(`empty section in "${spec}"`);
  let source: string | undefined;
  let target: string;
  let options: string[] = [];
  if (parts.length === 1) target = parts[0]!;
  else {
    source = parts[0]!;
    target = parts[1]!;
    if (parts.length === 3) options = parts[2]!.split(',');
  }
  const v: ServiceVolume = { type: source === undefined ? 'volume' : isFilePath(source) ? 'bind' : 'volume', target };
  if (source !== undefined) v.source = source;
  for (const o of options) {
    if (o === 'ro') v.read_only = true;
    else if (o === 'rw') continue;
    else if (o === 'z' || o === 'Z') v.bind = { ...v.bind, selinux: o };
    else if (PROPAGATION.has(o)) v.bind = { ...v.bind, propagation: o };
    else if (o === 'nocopy') v.volume = { ...v.volume, nocopy: true };
    else if (o === 'consistent' || o === 'cached' || o === 'delegated') v.consistency = o;
    else throw new VolumeSyntaxError(`unknown option "${o}" in "${spec}"`);
  }
  if (v.type === 'bind') v.bind = { ...v.bind, create_host_path: true };
  else {
    if (v.bind) throw new VolumeSyntaxError(`bind options need a host path in "${spec}"`);
    v.volume = v.volume ?? {};
  }
  return v;
}
