// What kompoxops adds to an error: the flags and commands that fix it. Use
// cases and drivers give front-end-neutral hints ("delete it with force");
// the CLI keys its own advice on the error's stable `code` and `details`,
// here in one table, never on the message. A server renders the same errors
// as HTTP statuses (ERROR_KINDS) with its own advice.
import type { KompoxError } from '../domain/errors.js';
import type { BindingProblem } from '../usecases/volume-bindings.js';

/** Node pool spec field (top level) → the `cluster nodepool create|update` flag that sets it. */
export const NODE_POOL_FLAGS: Readonly<Record<string, string>> = {
  name: '-N/--name',
  mode: '--mode',
  instanceType: '--instance-type',
  zones: '--zone',
  count: '--count',
  autoscaling: '--min-count/--max-count',
  labels: '--label',
  taints: '--taint',
  spot: '--spot',
  priority: '--priority',
  osDisk: '--os-disk-size/--os-disk-type',
};

interface Advice {
  message?: string;
  hint?: string;
}

const detail = (e: KompoxError, key: string): unknown => e.details?.[key];
// a name made from the time to the second was taken by another made in the same second: the use case's hint, with the flag
const withNameFlag = (e: KompoxError, flag: string): string => (e.hint ?? '').replace(/give a name\.$/, `give a name with ${flag}.`);
const noneListed = (e: KompoxError, key: string): boolean => Array.isArray(detail(e, key)) && (detail(e, key) as unknown[]).length === 0;

const ADVICE: Readonly<Record<string, (e: KompoxError) => Advice>> = {
  'volume.ambiguous': (e) => ({ message: `${e.message} with -V` }),
  'disk.exists': (e) => {
    const flag = detail(e, 'restore') ? '--disk-name' : '-N';
    if (detail(e, 'generated')) return { hint: withNameFlag(e, flag) };
    return { hint: detail(e, 'restore') ? 'Choose another name with --disk-name (or leave it out for a timestamped name).' : 'Choose another name with -N (or leave -N out for a timestamped name).' };
  },
  'snapshot.exists': (e) => ({ hint: detail(e, 'generated') ? withNameFlag(e, '-N') : 'Choose another name with -N.' }),
  'usage.volume-name': () => ({ hint: "Give --from-volume the other app's volume name as its kompoxops.yml names it (app.volumes)." }),
  'disk.name.empty': () => ({ hint: 'Give -N the name of a disk (kompoxops disk list shows them).' }),
  'snapshot.archive.missing': (e) => ({
    hint: `Put the archive back; or free the name with kompoxops snapshot delete -N ${String(detail(e, 'snapshot'))} (it removes only that metadata); or choose another name with -N.`,
  }),
  'snapshot.leftover': () => ({ hint: 'Choose another name with -N, or remove that file; the next snapshot of this volume removes it once it is an hour old.' }),
  'disk.notfound': (e) => (noneListed(e, 'disks') ? { hint: 'The volume has no disks yet (`kompoxops disk list`).' } : {}),
  'snapshot.notfound': (e) => (noneListed(e, 'snapshots') ? { hint: 'The volume has no snapshots (`kompoxops snapshot list`).' } : {}),
  'disk.attach.deleted': () => ({ hint: 'kompoxops disk list shows the disks there are; attach one with kompoxops disk attach -N NAME.' }),
  'disk.source.deleted': () => ({ hint: 'kompoxops disk list shows the disks there are.' }),
  'snapshot.source.deleted': () => ({ hint: 'kompoxops snapshot list shows the snapshots there are.' }),
  'disk.source.not-a-disk': () => ({ hint: "--from-id takes a disk's data directory or an archive file on the node: the ids that kompoxops disk list and kompoxops snapshot list show." }),
  'disk.source.invalid-id': () => ({ hint: "--from-id takes an absolute path on the node: a disk's data directory or a snapshot archive (the ids that kompoxops disk list and kompoxops snapshot list show)." }),
  'disk.delete.current': () => ({ hint: 'Attach another disk first (kompoxops disk attach -N OTHER); --force does not override this.' }),
  'disk.delete.previous': () => ({ hint: 'Add --force to delete it anyway.' }),
  'disk.delete.bound': () => ({ hint: 'Redeploy the app (kompoxops app deploy) so it lets go of the disk, then delete it; --force does not override this.' }),
  'disk.import.source': () => ({ hint: 'Give FILE (or - for stdin), --from-id ID, or --from-app APP with --from-disk/--from-snapshot.' }),
  'disk.import.from-app': () => ({ message: '--from-app needs exactly one of --from-disk NAME or --from-snapshot NAME' }),
  'usage.app-id': (e) => ({ message: `--from-app "${String(detail(e, 'app'))}" is not service/provider/cluster/app` }),
  'usage.size': () => ({ hint: 'Write a whole number of GiB, e.g. --size 10 or --size 10Gi.' }),
  'usage.port-mapping': () => ({ hint: 'Use -p REMOTE or -p LOCAL:REMOTE, e.g. -p 8080:80.' }),
  'tunnel.port.in-use': () => ({ hint: 'Pick another one: -p LOCAL:REMOTE.' }),
  'snapshot.level.unsupported': (e) => ({
    message: `--level: ${String(detail(e, 'driver'))} snapshots are the cloud's own copies of the disk, not archives Kompox compresses`,
    hint: 'Leave out --level (it applies to K3s snapshots); `kompoxops snapshot export --level N` sets the compression of an exported archive.',
  }),
  'snapshot.quiesce.timeout': () => ({ hint: 'No snapshot was taken and the app was started again; retry, or snapshot without --quiesce (crash-consistent).' }),
  'snapshot.quiesce.box': (e) => ({
    hint: `Remove the box with \`kompoxops box destroy\` (that starts the app again) and retry, or ${detail(e, 'operation') === 'export' ? 'export' : 'snapshot'} without --quiesce (crash-consistent).`,
  }),
  'snapshot.quiesce.start-failed': () => ({
    hint: 'The app stays stopped; its Deployments record the replica counts to give back (`kompoxops app status` shows them). `kompoxops app deploy` starts it again, and so does the next snapshot create --quiesce or disk export --quiesce.',
  }),
  'snapshot.quiesce.not-ready': () => ({
    hint: 'What was done is kept. `kompoxops app status` shows the volume binding and recent warnings; when a volume binding is Lost or misbound, `kompoxops app deploy` repairs it.',
  }),
  // app deploy waited for its own objects (details.objects) and they are still going
  'kube.terminating': (e) => (Array.isArray(detail(e, 'objects')) ? { hint: `${e.hint ?? ''} \`kompoxops app deploy --timeout 15m\` waits longer.`.trim() } : {}),
  'app.pod.notfound': () => ({ hint: 'Deploy it with `kompoxops app deploy`; `kompoxops app status` shows why a pod is missing.' }),
  'app.exec.command': () => ({ hint: 'Put the command after --, e.g. kompoxops app exec -- ls -l /data.' }),
  'transfer.disk.in-use': () => ({ hint: 'Add --quiesce to stop the app for the export, export a snapshot (kompoxops snapshot create, then snapshot export), or add --live to accept a crash-consistent copy.' }),
  'transfer.via.invalid': (e) =>
    e.field
      ? { hint: `Set ${e.field} to host, cluster or auto.` }
      : {
          // the value came from the flag: name it
          message: `--via "${String(detail(e, 'value'))}" is not host, cluster or auto`,
          hint: 'Use --via host (the driver reads the disk itself: K3s), --via cluster (a helper pod: any driver) or --via auto.',
        },
  'transfer.disk.full': () => ({ hint: 'The new disk is too small for the archive: give a larger --size.' }),
  'box.exec.command': () => ({ hint: 'Put the command after --, e.g. kompoxops box exec -- ls -l /data.' }),
  'box.active': () => ({ hint: 'Remove it first with `kompoxops box destroy` (that starts the app again), then deploy.' }),
  'box.exists': () => ({ hint: 'Remove it with `kompoxops box destroy` first to use another --image.' }),
  'box.disk.none': () => ({ hint: 'Deploy the app first (`kompoxops app deploy`): the box mounts the disks the app mounts.' }),
  'box.stop.timeout': () => ({ hint: 'No box was started and the app was started again; retry with a longer --stop-timeout.' }),
  'box.rsync.unavailable': () => ({ hint: 'Use an image with rsync: --image IMAGE on a new box, or the cluster setting KOMPOX_BOX_IMAGE (see docs/secrets-and-box.md).' }),
  'secret.env.service': (e) => ({ hint: `Name the service with -S: ${((detail(e, 'services') as string[] | undefined) ?? []).join(', ') || 'the compose project defines none'}.` }),
  'secret.env.empty': () => ({ hint: 'Give NAME=value lines with -f FILE; to remove the overrides: kompoxops secret env delete -S SERVICE.' }),
  'usage.zone': () => ({ hint: "Give --zone as the nodes' topology.kubernetes.io/zone label shows it, e.g. --zone japaneast-1." }),
  'disk.zone.conflict': (e) => ({
    hint: `Copy it into zone ${String((detail(e, 'appZones') as string[] | undefined)?.[0])} (kompoxops disk create -S ${String(detail(e, 'disk'))} --zone ${String((detail(e, 'appZones') as string[] | undefined)?.[0])}) and attach the copy, or add ${String((detail(e, 'diskZones') as string[] | undefined)?.[0])} to app.deployment.zone first.`,
  }),
  'nodepool.spec.invalid': (e) => {
    // a field the flags gave has no file position: name the flag
    const flag = e.field && !e.location ? NODE_POOL_FLAGS[e.field.split(/[.[]/)[0]!] : undefined;
    return flag ? { message: `${e.message} (${flag})` } : {};
  },
  'nodepool.exists': () => ({ hint: 'Choose another name with -N, or change the pool with `kompoxops cluster nodepool update`.' }),
  'nodepool.notfound': (e) => (noneListed(e, 'nodePools') ? { hint: 'The cluster has no node pools (`kompoxops cluster nodepool list`).' } : {}),
  'nodepool.delete.last-system': () => ({ hint: 'Create another system pool first (kompoxops cluster nodepool create --mode system).' }),
};

/** A deploy stopped half-way says how to resume (app-deploy.ts wrapApplyError sets details.stoppedAt). */
const DEPLOY_AGAIN = 'Deploying again after fixing the cause converges.';

/** The error as kompoxops shows it: message and hint with the CLI's flags and commands. */
export function withCliAdvice(e: KompoxError): { message: string; hint?: string } {
  const a = ADVICE[e.code]?.(e) ?? {};
  let hint = a.hint ?? e.hint;
  if (hint && detail(e, 'stoppedAt') !== undefined && hint.endsWith(DEPLOY_AGAIN)) {
    hint = `${hint.slice(0, -DEPLOY_AGAIN.length)}Re-running \`kompoxops app deploy\` after fixing the cause converges.`;
  }
  return { message: a.message ?? e.message, ...(hint ? { hint } : {}) };
}

/**
 * What kompoxops says to do about a volume binding problem `app status`
 * found: keyed on the problem's code and remedy (volume-bindings.ts), with
 * the CLI's commands; the use case's front-end-neutral hint otherwise.
 */
export function bindingAdvice(p: Pick<BindingProblem, 'code' | 'remedy' | 'hint'>): string {
  switch (p.remedy) {
    case 'deploy':
      return p.code === 'binding.released' || p.code === 'binding.unclaimed'
        ? 'If it holds the current disk (`kompoxops disk list`), `kompoxops app deploy` creates the claim and binds it; a volume of an earlier disk goes after a disk swap once the new pod runs (the disk is kept).'
        : "Run `kompoxops app deploy`: it re-applies the volume reserved for this claim, with the claim's uid, and the PV controller binds them again; the data on the disk is untouched.";
    case 'wait':
      return p.code === 'binding.terminating'
        ? 'It goes once no pod uses the volume (the disk is kept); `kompoxops app deploy` waits for that (--timeout). If it stays, the cluster runs no controller manager: ask the cluster administrator.'
        : 'The PV controller binds it within seconds: run `kompoxops app status` again. If it stays Pending, the warnings below say why; without a controller manager nothing binds it: ask the cluster administrator.';
    case 'administrator':
      return `${p.hint} \`kompoxops app deploy\` reserves the volume for this claim again once that claim is gone.`;
    default:
      return p.hint;
  }
}
