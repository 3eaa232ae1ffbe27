// compose `secrets` and `configs` → Secrets and ConfigMaps, mounted read-only
// as single files where docker compose puts them (/run/secrets/<name>, /<name>).
import { posix } from 'node:path';
import type { SecretConfig, ServiceConfig, ServiceFileRef } from '../compose/model.js';
import { mountObjectFile, putConfigMapFile, putSecretValue } from './files.js';
import { dataKey, dnsSubdomain } from './naming.js';
import type { VolumeMount } from './pod-state.js';
import type { VolumeContext } from './volumes.js';

type Section = 'secrets' | 'configs';

/** The content of a top-level secret/config, or undefined after reporting why there is none. */
function resolveContent(vc: VolumeContext, section: Section, source: string, def: SecretConfig): Uint8Array | undefined {
  const { diags, input } = vc;
  const what = section === 'secrets' ? 'secret' : 'config';
  if (def.content !== undefined) return new TextEncoder().encode(String(def.content));
  if (def.environment !== undefined) {
    const v = input.facts.env[def.environment];
    if (v === undefined) {
      diags.error({
        message: `${what} ${source}: environment variable ${def.environment} is not set`,
        path: [section, source, 'environment'],
        hint: `Set ${def.environment} before running kompoxops.`,
      });
      return undefined;
    }
    return new TextEncoder().encode(v);
  }
  if (def.file !== undefined) {
    const f = input.facts.files[def.file];
    if (!f || f.kind !== 'file' || !f.content) {
      const rel = def.file.startsWith(input.projectDir + '/') ? `./${posix.relative(input.projectDir, def.file)}` : def.file;
      diags.error({
        message: `${what} ${source}: file ${rel} ${f?.kind === 'dir' ? 'is a directory' : f?.kind === 'file' ? 'is too large' : 'does not exist'}`,
        path: [section, source, 'file'],
        hint: `Create the file with the ${what}'s content (it is not committed with the compose file), or use environment: VAR.`,
      });
      return undefined;
    }
    return f.content;
  }
  diags.error({ message: `${what} ${source} has no file, environment or content`, path: [section, source], hint: 'Add file: PATH.' });
  return undefined;
}

export function convertServiceFiles(vc: VolumeContext, service: string, svc: ServiceConfig, section: Section): VolumeMount[] {
  const mounts: VolumeMount[] = [];
  const refs: ServiceFileRef[] = (svc[section] as ServiceFileRef[] | undefined) ?? [];
  const kind = section === 'secrets' ? 'secret' : 'configMap';
  const what = section === 'secrets' ? 'secret' : 'config';
  refs.forEach((ref, i) => {
    const path = ['services', service, section, i];
    const def = vc.input.project[section]?.[ref.source];
    if (!def) {
      vc.diags.error({ service, key: section, path, message: `service "${service}": ${what} ${ref.source} is not defined`, hint: `Add it under top-level ${section}:.` });
      return;
    }
    if (ref.uid !== undefined || ref.gid !== undefined) {
      vc.diags.warn({ service, key: section, path, message: `service "${service}": ${what} ${ref.source}: uid/gid are ignored (the file is owned by root; use mode to make it readable)` });
    }
    if (ref.mode !== undefined && (!Number.isInteger(ref.mode) || ref.mode < 0 || ref.mode > 0o777)) {
      vc.diags.error({
        service, key: section, path,
        message: `service "${service}": ${what} ${ref.source}: mode ${ref.mode} is not a file mode (0 to 0777)`,
        hint: 'Write the mode in octal with a leading 0, e.g. mode: 0440.',
      });
      return;
    }
    const target = ref.target ?? ref.source;
    const mountPath =
      section === 'secrets' ? (posix.isAbsolute(target) ? target : `/run/secrets/${target}`) : posix.isAbsolute(target) ? target : `/${target}`;
    const key = dataKey(ref.source);
    let objectName: string;
    if (def.external) {
      objectName = def.name ?? ref.source;
      vc.diags.warn({
        service, key: section, path,
        message: `service "${service}": external ${what} ${ref.source} refers to the existing ${kind === 'secret' ? 'Secret' : 'ConfigMap'} ${objectName} in the app namespace (key ${key}); Kompox does not create it`,
      });
    } else {
      objectName = vc.state.claimName(dnsSubdomain(`${what}-${ref.source}`), `${section}:${ref.source}`);
      const known = kind === 'secret' ? vc.state.secrets.has(objectName) : vc.state.configMaps.has(objectName);
      if (!known) {
        const content = resolveContent(vc, section, ref.source, def);
        if (!content) return;
        if (kind === 'secret') putSecretValue(vc.state, vc.meta, objectName, key, content);
        else putConfigMapFile(vc.state, vc.meta, objectName, key, content);
      }
    }
    mounts.push(mountObjectFile(vc.state, kind, objectName, key, mountPath, ref.mode));
  });
  return mounts;
}
