// Service volumes → pod volumes and mounts. Nothing is dropped silently:
// named volumes and relative bind directories land on a disk (sub)path, bind
// files become ConfigMaps, tmpfs/anonymous volumes become emptyDirs (the latter
// with a warning), host paths and the docker socket are errors.
import { posix } from 'node:path';
import type { ServiceConfig, ServiceVolume } from '../compose/model.js';
import type { Diagnostics } from './diagnostics.js';
import { MAX_FILE_BYTES, mountObjectFile, putConfigMapFile, type ObjectMetaBase } from './files.js';
import { dataKey, dnsLabel, dnsSubdomain } from './naming.js';
import { shortHash } from '../domain/names.js';
import type { PodState, VolumeMount } from './pod-state.js';
import type { AppVolumePlan, StoragePlan } from './storage.js';
import type { ConvertInput, FileFact } from './types.js';
import { bytesQuantity, parseBytes } from './units.js';

export interface VolumeContext {
  input: ConvertInput;
  storage: StoragePlan;
  state: PodState;
  diags: Diagnostics;
  meta: ObjectMetaBase;
}

export type BindClass =
  | { kind: 'dir'; rel: string; fact: FileFact }
  | { kind: 'file'; rel: string; fact: FileFact }
  | { kind: 'rejected'; message: string; hint: string; missingRel?: string };

const DOCKER_SOCKETS = new Set(['/var/run/docker.sock', '/run/docker.sock']);

/** Decides what a bind mount source becomes. Pure: file facts are looked up, not read. */
export function classifyBind(source: string, projectDir: string, facts: ConvertInput['facts']): BindClass {
  if (DOCKER_SOCKETS.has(source) || source.endsWith('/docker.sock')) {
    return {
      kind: 'rejected',
      message: `bind mount of the Docker socket ${source} is not allowed: it gives root access to the node, and cluster nodes do not run Docker`,
      hint: 'Remove the mount; an app that manages containers cannot run as a Kompox app.',
    };
  }
  const home = facts.homeDir;
  const inProject = (p: string) => p === projectDir || p.startsWith(projectDir.endsWith('/') ? projectDir : projectDir + '/');
  if (source.startsWith('~') || (home && (source === home || source.startsWith(home + '/')) && !inProject(source))) {
    const shown = home && !source.startsWith('~') ? `~${source.slice(home.length)}` : source;
    return {
      kind: 'rejected',
      message: `bind mount source ${shown} is in a home directory (~): home directories are per machine and do not exist on cluster nodes`,
      hint: 'Use a named volume (its data goes to the app disk) or a path relative to the project directory (./data).',
    };
  }
  if (!posix.isAbsolute(source) || !inProject(source)) {
    // Shown relative when it is near the project (../shared), absolute otherwise (/etc/...).
    const common = posix.relative('/', source).split('/')[0] === posix.relative('/', projectDir).split('/')[0];
    const shown = posix.isAbsolute(source) && common ? posix.relative(projectDir, source) : source;
    return {
      kind: 'rejected',
      message: `bind mount source ${shown} is a host path outside the project directory: host paths do not exist on cluster nodes`,
      hint: 'Use a named volume (its data goes to the app disk) or a path relative to the project directory (./data).',
    };
  }
  const rel = posix.relative(projectDir, source);
  const fact = facts.files[source];
  if (!fact || fact.kind === 'missing') {
    return {
      kind: 'rejected',
      missingRel: rel,
      message: `bind mount source ./${rel} does not exist`,
      hint: 'Create it in the project directory (a directory for data, or the file the service expects, e.g. a config file that lives next to a Dockerfile), or remove the mount.',
    };
  }
  if (fact.resolvesOutside) {
    return {
      kind: 'rejected',
      message: `bind mount source ./${rel} is a symbolic link to ${fact.resolvesOutside}, outside the project directory: host paths do not exist on cluster nodes`,
      hint: 'Copy the file or directory into the project instead of linking to it.',
    };
  }
  return fact.kind === 'dir' ? { kind: 'dir', rel, fact } : { kind: 'file', rel, fact };
}

/** Numeric `uid[:gid]` of the service (for chown of its data dirs), or undefined. */
export function numericOwner(user: string | undefined): string | undefined {
  const m = user === undefined || user === null ? null : /^(\d+)(?::(\d+))?$/.exec(String(user).trim());
  return m ? `${m[1]}:${m[2] ?? m[1]}` : undefined;
}

function diskMount(vc: VolumeContext, plan: AppVolumePlan, subPath: string, target: string, readOnly: boolean, owner: string | undefined): VolumeMount {
  const name = vc.state.addVolume(plan.podVolume, { persistentVolumeClaim: { claimName: plan.claim } });
  const sp = subPath.replace(/^\/+|\/+$/g, '');
  if (sp) vc.state.addDataDir(plan.podVolume, plan.volume.name, sp, owner);
  return { name, mountPath: target, ...(sp ? { subPath: sp } : {}), ...(readOnly ? { readOnly: true } : {}) };
}

/** A read-only bind directory → one ConfigMap with every file (nested paths via items), mounted as the directory. */
function configDirMount(vc: VolumeContext, service: string, rel: string, fact: FileFact, target: string, path: (string | number)[]): VolumeMount[] {
  const shown = rel === '' ? '.' : `./${rel}`;
  if (!fact.tree) {
    vc.diags.error({
      service, key: 'volumes', path,
      message: `service "${service}": read-only bind directory ${shown} holds ${fact.treeBytes ?? 'too many'} bytes; more than ${MAX_FILE_BYTES} bytes cannot be stored in a ConfigMap`,
      hint: 'Build the files into the image, or drop :ro to keep the directory on the app disk.',
    });
    return [];
  }
  if (fact.skipped?.length) {
    vc.diags.warn({
      service, key: 'volumes', path,
      message: `service "${service}": read-only bind directory ${shown}: ${fact.skipped.join(', ')} ${fact.skipped.length === 1 ? 'is' : 'are'} not a regular file and ${fact.skipped.length === 1 ? 'is' : 'are'} left out`,
    });
  }
  const cmName = vc.state.claimName(dnsSubdomain(`dir-${rel === '' ? 'project' : rel.replace(/\//g, '-')}`), `dir:${rel}`);
  const items: { key: string; path: string }[] = [];
  for (const file of Object.keys(fact.tree).sort()) {
    // Keys cannot contain '/': nested files get a flattened key plus a hash of their path.
    const key = file.includes('/') ? `${file.replace(/[^-._a-zA-Z0-9]+/g, '_')}-${shortHash(file, 6)}` : dataKey(file);
    putConfigMapFile(vc.state, vc.meta, cmName, key, fact.tree[file]!);
    items.push({ key, path: file });
  }
  if (!vc.state.configMaps.has(cmName)) {
    vc.state.configMaps.set(cmName, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: cmName, namespace: vc.meta.namespace, labels: { ...vc.meta.labels } } });
  }
  const src: Record<string, unknown> = { name: cmName };
  // Nested files need items (keys cannot contain '/'); flat directories are mounted key = file name.
  if (items.some((it) => it.key !== it.path)) src.items = items;
  const name = vc.state.addVolume(dnsLabel(cmName.replace(/\./g, '-')), { configMap: src });
  return [{ name, mountPath: target, readOnly: true }];
}

export function convertServiceVolumes(vc: VolumeContext, service: string, svc: ServiceConfig): VolumeMount[] {
  const mounts: VolumeMount[] = [];
  const { diags, storage, input } = vc;
  const owner = numericOwner(svc.user);
  const vols = svc.volumes ?? [];
  vols.forEach((v: ServiceVolume, i) => {
    const path = ['services', service, 'volumes', i];
    const ro = v.read_only === true;
    switch (v.type) {
      case 'volume': {
        if (!v.source) {
          const name = vc.state.addVolume(dnsLabel(`anon-${service}-${i}`), { emptyDir: {} });
          mounts.push({ name, mountPath: v.target, ...(ro ? { readOnly: true } : {}) });
          diags.warn({
            service, key: 'volumes', path,
            message: `service "${service}": anonymous volume ${v.target} becomes an emptyDir: its data is not persisted and is lost when the pod restarts`,
            hint: 'Give it a name (name:/path and a top-level volumes entry) to keep the data on the app disk.',
          });
          return;
        }
        const top = input.project.volumes?.[v.source];
        const firstUse = !vc.state.warnedVolumes.has(v.source);
        vc.state.warnedVolumes.add(v.source);
        if (firstUse && ((top?.driver && top.driver !== 'local') || (top?.driver_opts && Object.keys(top.driver_opts).length))) {
          diags.warn({
            service, key: 'volumes', path: ['volumes', v.source],
            message: `volume ${v.source}: driver${top.driver_opts ? ' and driver_opts are' : ' is'} ignored; its data lives on the app disk`,
            hint: 'Data on an NFS share or a host directory is not moved; copy it with kompoxops disk import.',
          });
        }
        if (firstUse && top?.external) {
          diags.warn({
            service, key: 'volumes', path,
            message: `service "${service}": external volume ${v.source} starts empty on the app disk; Docker volume data is not migrated`,
            hint: 'Copy the data with kompoxops disk import.',
          });
        }
        const own = storage.volumes.get(v.source);
        const sub = v.volume?.subpath;
        if (sub !== undefined && (posix.isAbsolute(sub) || sub.split('/').includes('..'))) {
          diags.error({
            service, key: 'volumes', path,
            message: `service "${service}": volume.subpath "${sub}" must be a relative path inside the volume`,
            hint: 'Remove leading "/" and any "..".',
          });
          return;
        }
        if (own) {
          mounts.push(diskMount(vc, own, sub ?? '', v.target, ro, owner));
        } else if (storage.fallback) {
          mounts.push(diskMount(vc, storage.fallback, sub ? `${v.source}/${sub}` : v.source, v.target, ro, owner));
        } else {
          diags.error({
            service, key: 'volumes', path,
            message: `service "${service}": volume ${v.source} has no app volume to live on`,
            hint: `Add an app.volumes entry named "${v.source}" or one named "default" in kompoxops.yml.`,
          });
        }
        return;
      }
      case 'bind': {
        let c = classifyBind(v.source ?? '', input.projectDir, input.facts);
        if (c.kind === 'rejected' && c.missingRel !== undefined && v.bind?.create_host_path && !ro && !posix.extname(c.missingRel)) {
          // docker compose creates a missing short-syntax bind source as an empty
          // directory (typically ./data, which is .gitignored): do the same on the
          // app disk. A read-only or file-like path (nginx.conf) is configuration
          // the service needs, so that stays an error.
          diags.warn({
            service, key: 'volumes', path,
            message: `service "${service}": bind mount source ./${c.missingRel} does not exist: ${v.target} starts as an empty directory on the app disk, as docker compose would create it`,
            hint: 'If the service expects files there, create them first, or seed the disk with kompoxops disk import.',
          });
          c = { kind: 'dir', rel: c.missingRel, fact: { kind: 'dir', entries: 0 } };
        }
        if (c.kind === 'rejected') {
          diags.error({ service, key: 'volumes', path, message: `service "${service}": ${c.message}`, hint: c.hint });
          return;
        }
        if (c.kind === 'dir' && ro) {
          // Read-only directory = configuration the container only reads: ship its files as a ConfigMap.
          mounts.push(...configDirMount(vc, service, c.rel, c.fact, v.target, path));
          return;
        }
        if (c.kind === 'dir') {
          if (!storage.fallback) {
            diags.error({
              service, key: 'volumes', path,
              message: `service "${service}": bind directory ./${c.rel} has no app volume to live on`,
              hint: 'Add an app.volumes entry named "default" in kompoxops.yml.',
            });
            return;
          }
          if ((c.fact.entries ?? 0) > 0) {
            diags.warn({
              service, key: 'volumes', path,
              message: `service "${service}": bind directory ./${c.rel} has files; they are not uploaded: ${v.target} starts empty on the app disk`,
              hint: 'Seed the disk with kompoxops disk import, or build the files into the image; if it is configuration the container only reads, mount it read-only (:ro) to ship the files as a ConfigMap.',
            });
          }
          mounts.push(diskMount(vc, storage.fallback, c.rel === '' ? '' : c.rel, v.target, ro, owner));
          return;
        }
        const size = c.fact.size ?? c.fact.content?.length ?? 0;
        if (!c.fact.content || size > MAX_FILE_BYTES) {
          diags.error({
            service, key: 'volumes', path,
            message: `service "${service}": bind file ./${c.rel} is ${size} bytes; files larger than ${MAX_FILE_BYTES} bytes cannot be stored in a ConfigMap`,
            hint: 'Build the file into the image, or put it in a directory on the app disk.',
          });
          return;
        }
        const cmName = vc.state.claimName(dnsSubdomain(`file-${c.rel.replace(/\//g, '-')}`), `file:${c.rel}`);
        const key = dataKey(posix.basename(c.rel));
        putConfigMapFile(vc.state, vc.meta, cmName, key, c.fact.content);
        mounts.push(mountObjectFile(vc.state, 'configMap', cmName, key, v.target));
        if (!ro) {
          diags.warn({
            service, key: 'volumes', path,
            message: `service "${service}": bind file ./${c.rel} is mounted read-only at ${v.target} from ConfigMap ${cmName}; writes to it fail`,
            hint: 'Mark the mount read-only (:ro) to acknowledge, or keep writable files in a directory on the app disk.',
          });
        }
        return;
      }
      case 'tmpfs': {
        const size = parseBytes(v.tmpfs?.size);
        const name = vc.state.addVolume(dnsLabel(`tmpfs-${service}-${i}`), { emptyDir: { medium: 'Memory', ...(size ? { sizeLimit: bytesQuantity(size) } : {}) } });
        mounts.push({ name, mountPath: v.target });
        return;
      }
      default:
        diags.error({
          service, key: 'volumes', path,
          message: `service "${service}": volume type ${v.type} (${v.target}) is not supported`,
          hint: 'Use a named volume or a relative bind mount.',
        });
    }
  });
  // `tmpfs:` short list ("/run" or "/run:size=64m,mode=1777").
  (svc.tmpfs ?? []).forEach((t, i) => {
    const [target, opts = ''] = t.split(/:(.*)/s);
    const sizeOpt = /(?:^|,)size=([^,]+)/.exec(opts)?.[1];
    const size = parseBytes(sizeOpt);
    const name = vc.state.addVolume(dnsLabel(`tmp-${service}-${i}`), { emptyDir: { medium: 'Memory', ...(size ? { sizeLimit: bytesQuantity(size) } : {}) } });
    mounts.push({ name, mountPath: target! });
  });
  if (svc.shm_size !== undefined) {
    const size = parseBytes(svc.shm_size);
    if (size === undefined) {
      diags.error({ service, key: 'shm_size', message: `service "${service}": shm_size "${svc.shm_size}" is not a size`, hint: 'Write e.g. shm_size: 256m.' });
    } else {
      const name = vc.state.addVolume(dnsLabel(`shm-${service}`), { emptyDir: { medium: 'Memory', sizeLimit: bytesQuantity(size) } });
      mounts.push({ name, mountPath: '/dev/shm' });
    }
  }
  return mounts;
}
