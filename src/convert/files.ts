// File-like inputs → ConfigMaps and Secrets, each mounted read-only as one file
// (subPath of the object's volume): bind-mounted files, compose `configs` and
// compose `secrets` (Kubernetes would otherwise mount a directory).
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import type { KubeObject } from '../domain/ports/kube.js';
import { dnsLabel } from './naming.js';
import type { PodState, VolumeMount } from './pod-state.js';

/** ConfigMaps and Secrets are stored in etcd: 1 MiB per object, less some room for metadata. */
export const MAX_FILE_BYTES = 1_000_000;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function textOrUndefined(content: Uint8Array): string | undefined {
  try {
    return utf8.decode(content);
  } catch {
    return undefined;
  }
}

export interface ObjectMetaBase {
  namespace: string;
  labels: Record<string, string>;
}

/** Adds (or extends) a ConfigMap holding `key` = content; text goes to data, anything else to binaryData. */
export function putConfigMapFile(state: PodState, meta: ObjectMetaBase, name: string, key: string, content: Uint8Array): void {
  let cm = state.configMaps.get(name);
  if (!cm) {
    cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: meta.namespace, labels: { ...meta.labels } } };
    state.configMaps.set(name, cm);
  }
  const text = textOrUndefined(content);
  if (text !== undefined) {
    cm.data = { ...(cm.data as Record<string, string> | undefined), [key]: text };
  } else {
    cm.binaryData = { ...(cm.binaryData as Record<string, string> | undefined), [key]: Buffer.from(content).toString('base64') };
  }
}

/** Adds (or extends) an Opaque Secret holding `key` = content (base64 `data`: what the API server stores, so re-applies are no-ops). */
export function putSecretValue(state: PodState, meta: ObjectMetaBase, name: string, key: string, content: Uint8Array): void {
  let s = state.secrets.get(name);
  if (!s) {
    s = { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: meta.namespace, labels: { ...meta.labels } }, type: 'Opaque' };
    state.secrets.set(name, s);
  }
  s.data = { ...(s.data as Record<string, string> | undefined), [key]: Buffer.from(content).toString('base64') };
}

/** Mounts one key of a ConfigMap or Secret as a single read-only file. */
export function mountObjectFile(
  state: PodState,
  kind: 'configMap' | 'secret',
  objectName: string,
  key: string,
  mountPath: string,
  mode?: number,
): VolumeMount {
  const src: Record<string, unknown> = kind === 'configMap' ? { name: objectName } : { secretName: objectName };
  if (mode !== undefined) src.defaultMode = mode;
  // Object names are subdomains (dots allowed); pod volume names are labels.
  const volName = state.addVolume(dnsLabel(objectName.replace(/\./g, '-')), { [kind]: src });
  return { name: volName, mountPath, subPath: key, readOnly: true };
}

/**
 * sha256 over all ConfigMap and Secret content, in sorted order: put on the pod
 * template so a changed file or secret rolls the pod (subPath mounts never update in place).
 */
export function contentHash(objects: KubeObject[]): string {
  const h = createHash('sha256');
  const rows: string[] = [];
  for (const o of objects) {
    for (const field of ['data', 'binaryData'] as const) {
      const d = o[field] as Record<string, string> | undefined;
      if (!d) continue;
      for (const k of Object.keys(d)) rows.push(JSON.stringify([o.kind, o.metadata.name, field, k, d[k]]));
    }
  }
  for (const r of rows.sort()) h.update(r).update('\n');
  return h.digest('hex');
}
