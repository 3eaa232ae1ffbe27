// kompoxops disk list | create | attach | import | export | delete.
// Thin shell: flags → use case (src/usecases/disk.ts) → print. Notes go to
// stderr; data (tables, JSON, YAML, archives with -O -) goes to stdout.
import type { Command } from 'commander';
import { action, durationFlag, globalOptions, parseOutputFormat, printData, withOutput, type Column, type GlobalOptions, type OutputFormat } from '../common.js';
import type { AppContext, Disk } from '../../domain/model.js';
import type { Op } from '../../domain/events.js';
import type { AppSource } from '../../domain/source.js';
import type { KubeClient } from '../../domain/ports/kube.js';
import type { ProviderDriver } from '../../domain/ports/driver.js';

/** The documented JSON/YAML shapes (src/usecases/disk-view.ts), loaded when output is printed. */
export const views = () => import('../../usecases/disk-view.js');

export interface DiskCommand {
  ctx: AppContext;
  driver: ProviderDriver;
  kube: KubeClient;
  /** The app's files and the shell's variables, for the use cases that read the compose project (redeploy). */
  appSource(): Promise<AppSource>;
  /** Events rendered on stderr; Ctrl-C aborts. */
  op: Op;
  /** Resolves a path given on the command line (relative to -C DIR when given). */
  path(p: string): string;
}

/**
 * A disk or snapshot command: the app's session from the composition root
 * (kompoxops.yml, driver, cluster client; the driver is always released) and
 * an Op whose events the CLI renders and whose signal Ctrl-C aborts.
 */
export async function diskCommand<T>(g: GlobalOptions, fn: (s: DiskCommand) => Promise<T>): Promise<T> {
  return dataCommand(g, () => true, (s) => fn({ ...s, kube: s.kube! }));
}

/**
 * A disk command that needs the cluster only on some paths: the Kubernetes
 * client is connected only when `needsKube` says so. A disk export or
 * import on the driver's host path (K3s, locally or over SSH) never talks to
 * the cluster, and then never loads the client, its TLS and node's http
 * modules: several MiB of a data command's peak (issue 11's 100 MiB).
 */
export async function dataCommand<T>(
  g: GlobalOptions,
  needsKube: (ctx: AppContext, driver: ProviderDriver) => boolean | Promise<boolean>,
  fn: (s: Omit<DiskCommand, 'kube'> & { kube: KubeClient | undefined }) => Promise<T>,
): Promise<T> {
  const { resolve } = await import('node:path');
  const { withOpsApp, opsAppSource } = await import('../../app/kompoxops.js');
  const { withOp } = await import('../op.js');
  return withOp({}, (op) =>
    withOpsApp(g, async (s, p) => {
      const driver = await s.driver();
      const kube = (await needsKube(s.ctx, driver)) ? await s.kube(op) : undefined;
      return fn({ ctx: s.ctx, driver, kube, op, appSource: () => opsAppSource(p), path: (x) => resolve(p.host.cwd, g.chdir ?? '.', x) });
    }),
  );
}

/** Table columns; CURRENT shows `*` on the current disk and `previous` on the rollback target. */
export function diskColumns(previousId: string | undefined, formatBytes: (n: number, sep: string) => string): Column<Disk>[] {
  return [
    { header: 'name', get: (d) => d.name },
    { header: 'current', get: (d) => (d.current ? '*' : previousId !== undefined && d.id === previousId ? 'previous' : '') },
    { header: 'size', get: (d) => `${d.sizeGiB}Gi` },
    { header: 'used', get: (d) => (d.usedBytes === undefined ? '' : formatBytes(d.usedBytes, '')) },
    { header: 'created', get: (d) => d.createdAt },
    { header: 'id', get: (d) => d.id },
  ];
}

/** Disks as a table, or in the documented JSON/YAML shape. */
export async function printDisks(data: Disk[] | Disk, format: OutputFormat, previousId?: string): Promise<void> {
  if (format === 'table') return printData(data, format, diskColumns(previousId, (await import('../render.js')).formatBytes));
  const { diskJson } = await views();
  return printData(Array.isArray(data) ? data.map((d) => diskJson(d, previousId)) : diskJson(data, previousId), format);
}

/**
 * A data command's result with its `transfer` summary (src/cli/transfer-summary.ts)
 * in JSON/YAML; a table prints the result alone (the progress bar showed the rate).
 */
export async function printWithTransfer(json: object, transfer: unknown, format: OutputFormat, table: () => Promise<void>): Promise<void> {
  if (format === 'table') return table();
  return printData({ ...json, transfer }, format);
}

/** `-O -` puts the archive on stdout: a `-o json|yaml` summary there would corrupt it, so the two are refused together (before anything runs). */
export async function refuseSummaryWithStdout(command: string, out: string, output: OutputFormat): Promise<void> {
  if (out !== '-' || output === 'table') return;
  const { KompoxError } = await import('../../domain/errors.js');
  throw new KompoxError('usage', `${command} -O - writes the archive to stdout, so -o ${output} has nowhere to go`, { hint: 'Give -O FILE to get the summary on stdout.' });
}

/** `--format`: checked before anything else happens; the archive module loads only here. */
export async function archiveFormatOption(value: string | undefined) {
  if (value === undefined) return undefined;
  const { parseArchiveFormat } = await import('../../archive/archive.js');
  return parseArchiveFormat(value);
}

/** `--level` value → a compression level of `format` (default tar.zst). */
export async function archiveLevelOption(value: string | undefined, format: 'tar.zst' | 'tar.gz' | undefined) {
  if (value === undefined) return undefined;
  const { parseArchiveLevel, DEFAULT_ARCHIVE_FORMAT } = await import('../../archive/archive.js');
  return parseArchiveLevel(value, format ?? DEFAULT_ARCHIVE_FORMAT);
}

/** Refuses to write a binary archive to a terminal. */
export async function archiveToStdout(): Promise<NodeJS.WritableStream> {
  if (process.stdout.isTTY) {
    const { KompoxError } = await import('../../domain/errors.js');
    throw new KompoxError('usage', 'refusing to write a binary archive to the terminal', { hint: 'Redirect stdout (-O - > FILE) or give -O FILE.' });
  }
  return process.stdout;
}

/** `--via`: the data path of exports and imports (src/usecases/transfer.ts). */
export const VIA_HELP = 'data path: host (the driver reads the disk itself: K3s), cluster (through a helper pod in the app namespace: any driver) or auto (host where the driver can); default: the KOMPOX_TRANSFER_VIA setting, else auto';

interface VolOpts {
  volume?: string;
  output?: string;
}

function volumeOption(cmd: Command): Command {
  return cmd.option('-V, --volume <volume>', 'app volume (default: the only one)');
}

export function register(program: Command): void {
  const disk = program.command('disk').description("the app's data disks: list, create, attach (swap), import, export, delete");

  withOutput(volumeOption(disk.command('list').description('list the disks of an app volume (* = current)'))).action(
    action(async (opts: VolOpts, cmd: Command) => {
      const format = parseOutputFormat(opts.output);
      await diskCommand(globalOptions(cmd), async (s) => {
        const { listDisks } = await import('../../usecases/disk.js');
        const r = await listDisks(s.ctx, s.driver, s.kube, { volume: opts.volume }, s.op);
        await printDisks(r.disks, format, r.record.previousId);
      });
    }),
  );

  withOutput(
    volumeOption(
      disk
        .command('create')
        .description('create a disk (empty, or a copy of a disk or snapshot); it does not become current until attached')
        .option('-N, --name <name>', 'disk name (default: {volume}-{timestamp})')
        .option('--size <size>', 'size in GiB (e.g. 10 or 10Gi); default from app.volumes or the driver')
        .option('-S, --source <source>', 'copy from a disk or snapshot name of this volume, or a provider disk/snapshot id')
        .option('--zone <zone>', "availability zone of the disk, as the nodes are labelled (drivers with zones); default the app's zone (app.deployment.zone)"),
    ),
  ).action(
    action(async (opts: VolOpts & { name?: string; size?: string; source?: string; zone?: string }, cmd: Command) => {
      const format = parseOutputFormat(opts.output);
      await diskCommand(globalOptions(cmd), async (s) => {
        const { createDisk, parseSizeGiB } = await import('../../usecases/disk.js');
        // a copy (-S) moves data: its summary, as disk import has (null when the provider copied, or for an empty disk)
        const { watchTransfers } = await import('../transfer-summary.js');
        const watch = watchTransfers(s.op);
        const d = await createDisk(
          s.ctx,
          s.driver,
          s.kube,
          { volume: opts.volume, name: opts.name, sizeGiB: opts.size !== undefined ? parseSizeGiB(opts.size) : undefined, source: opts.source, zone: opts.zone },
          watch.op,
        );
        await printWithTransfer((await views()).diskJson(d), watch.summary(), format, () => printDisks(d, format));
      });
    }),
  );

  withOutput(
    volumeOption(
      disk
        .command('attach')
        .description("make a disk the app's current disk (the previous one is kept for rollback); redeploys when the app is deployed")
        .requiredOption('-N, --name <name>', 'disk to attach')
        .option('--deploy', 'redeploy the app onto the disk (also when it does not look deployed)')
        .option('--timeout <duration>', 'rollout timeout for the redeploy, e.g. 90s, 5m', '5m'),
    ),
  ).action(
    action(async (opts: VolOpts & { name: string; deploy?: boolean; timeout: string }, cmd: Command) => {
      const format = parseOutputFormat(opts.output);
      const timeoutMs = durationFlag(opts.timeout, '--timeout');
      return diskCommand(globalOptions(cmd), async (s) => {
        const { attachAndDeploy } = await import('../../usecases/disk.js');
        const r = await attachAndDeploy(s.ctx, await s.appSource(), s.driver, s.kube, { volume: opts.volume, name: opts.name, deploy: opts.deploy, timeoutMs }, s.op);
        if (format !== 'table') {
          await printData((await views()).attachJson(r), format);
        } else {
          process.stdout.write(
            r.changed
              ? `attached disk ${r.disk.name} to volume ${r.volume}${r.previous ? ` (previous: ${r.previous.name})` : ''}\n`
              : `disk ${r.disk.name} already is the current disk of volume ${r.volume}\n`,
          );
          if (r.deploy) process.stdout.write(`${r.deploy.message}\n`);
        }
        return r.deploy?.exitCode ?? 0;
      });
    }),
  );

  withOutput(
    volumeOption(
      disk
        .command('import')
        .description('create a new disk from an archive (FILE, or - for stdin), a provider id, or another app\'s disk or snapshot')
        .argument('[file]', 'portable archive (.tar.zst or .tar.gz from disk/snapshot export); - reads stdin')
        .option('-N, --name <name>', 'name of the new disk (default: {volume}-{timestamp})')
        .option('--size <size>', 'size in GiB recorded for the new disk')
        .option('--sha256 <hex>', 'expected SHA-256 of the archive (default: FILE.sha256 when present)')
        .option('--from-id <id>', 'a provider-native disk or snapshot id')
        .option('--from-app <app>', "another app's id: service/provider/cluster/app (its kompox-app tag)")
        .option('--from-disk <name>', 'with --from-app: the disk to copy')
        .option('--from-snapshot <name>', 'with --from-app: the snapshot to copy')
        .option('--from-volume <volume>', "with --from-app: the other app's volume (default: the same name)")
        .option('--via <path>', VIA_HELP),
    ),
  ).action(
    action(
      async (
        file: string | undefined,
        opts: VolOpts & { name?: string; size?: string; sha256?: string; fromId?: string; fromApp?: string; fromDisk?: string; fromSnapshot?: string; fromVolume?: string; via?: string },
        cmd: Command,
      ) => {
        const format = parseOutputFormat(opts.output);
        const { importNeedsCluster } = await import('../../usecases/disk.js');
        const needsKube = (ctx: AppContext, driver: ProviderDriver) => importNeedsCluster(ctx, driver, { archive: file !== undefined, via: opts.via });
        await dataCommand(globalOptions(cmd), needsKube, async (s) => {
          const { checkSha256, importDisk, parseSizeGiB } = await import('../../usecases/disk.js');
          const { openArchiveFile } = await import('../files.js');
          const { KompoxError } = await import('../../domain/errors.js');
          if ((opts.fromDisk || opts.fromSnapshot || opts.fromVolume) && !opts.fromApp) {
            throw new KompoxError('usage', '--from-disk, --from-snapshot and --from-volume go with --from-app');
          }
          let archive;
          if (file === '-') {
            if (process.stdin.isTTY) throw new KompoxError('usage', 'disk import - reads the archive from stdin, but stdin is a terminal', { hint: 'Pipe or redirect the archive into it.' });
            // stdin redirected from a file (`- < FILE`) has a size: the progress bar gets its total and ETA, as with FILE
            const { fstatSync } = await import('node:fs');
            let totalBytes: number | undefined;
            try {
              const st = fstatSync(0);
              if (st.isFile()) totalBytes = st.size;
            } catch {
              // not a file we can stat: no total, as with a pipe
            }
            archive = { stream: process.stdin, expectedSha256: opts.sha256 ? checkSha256(opts.sha256, '--sha256') : undefined, totalBytes, label: 'stdin' };
          } else if (file !== undefined) {
            archive = await openArchiveFile(s.path(file), opts.sha256);
          }
          const { watchTransfers } = await import('../transfer-summary.js');
          const watch = watchTransfers(s.op);
          let d;
          try {
            d = await importDisk(
              s.ctx,
              s.driver,
              s.kube,
              {
                volume: opts.volume,
                name: opts.name,
                sizeGiB: opts.size !== undefined ? parseSizeGiB(opts.size) : undefined,
                archive,
                fromId: opts.fromId,
                fromApp: opts.fromApp ? { app: opts.fromApp, disk: opts.fromDisk, snapshot: opts.fromSnapshot, volume: opts.fromVolume } : undefined,
                via: opts.via,
              },
              watch.op,
            );
          } finally {
            // Done with stdin, whatever happened: after an archive found bad while its writer stays open
            // (a producer still at work, a `| ssh` session not closed), the open stdin kept the failed
            // command waiting for the writer's end once its error was told: the command hung.
            if (file === '-') process.stdin.destroy();
          }
          await printWithTransfer((await views()).diskJson(d), watch.summary(), format, () => printDisks(d, format));
        });
      },
    ),
  );

  withOutput(
    volumeOption(
      disk
        .command('export')
        .description('write a disk as a portable archive (tar.zst with SHA-256 checksums) to a file (and FILE.sha256) or stdout')
        .requiredOption('-N, --name <name>', 'disk to export')
        .requiredOption('-O, --out <file>', 'archive file, or - for stdout')
        .option('--format <format>', 'tar.zst (default) or tar.gz (for Kompox releases that read only version 1 archives)')
        .option('--level <n>', 'compression level: tar.zst 1 (fastest) to 8 (smallest), default 5; tar.gz 1 to 9, default 6')
        .option('--via <path>', VIA_HELP)
        .option('--quiesce', 'stop the app (scale to 0) during the export, then start it again')
        .option('--stop-timeout <duration>', 'with --quiesce: how long to wait for the pod to stop, e.g. 90s, 2m', '2m')
        .option('--live', 'through the cluster: read the disk even while the app uses it (a crash-consistent copy)'),
    ),
  ).action(
    action(async (opts: VolOpts & { name: string; out: string; format?: string; level?: string; via?: string; quiesce?: boolean; stopTimeout: string; live?: boolean; output?: string }, cmd: Command) => {
      if (opts.quiesce && opts.live) {
        const { KompoxError } = await import('../../domain/errors.js');
        throw new KompoxError('usage', '--quiesce and --live exclude each other: --quiesce stops the app for a consistent copy, --live reads the disk while the app runs', {
          code: 'usage.conflicting-options',
          hint: 'Give one of them.',
        });
      }
      const format = await archiveFormatOption(opts.format);
      const level = await archiveLevelOption(opts.level, format);
      const output = parseOutputFormat(opts.output);
      await refuseSummaryWithStdout('disk export', opts.out, output);
      const stopTimeoutMs = durationFlag(opts.stopTimeout, '--stop-timeout');
      const { exportNeedsCluster } = await import('../../usecases/disk.js');
      const needsKube = (ctx: AppContext, driver: ProviderDriver) => exportNeedsCluster(ctx, driver, { via: opts.via, quiesce: opts.quiesce });
      await dataCommand(globalOptions(cmd), needsKube, async (s) => {
        const { exportDisk } = await import('../../usecases/disk.js');
        const { archiveOutputPath, writeArchiveFile } = await import('../files.js');
        const o = { volume: opts.volume, name: opts.name, format, level, via: opts.via, quiesce: opts.quiesce, stopTimeoutMs, live: opts.live };
        if (opts.out === '-') {
          const out = await archiveToStdout();
          const r = await exportDisk(s.ctx, s.driver, s.kube, { ...o, out }, s.op);
          s.op.events?.({ type: 'log', message: `exported disk ${opts.name}: ${r.bytes} bytes, sha256 ${r.sha256}` });
          return;
        }
        const path = archiveOutputPath(opts.out, s.path);
        const { watchTransfers } = await import('../transfer-summary.js');
        const watch = watchTransfers(s.op);
        const r = await writeArchiveFile(path, (out) => exportDisk(s.ctx, s.driver, s.kube, { ...o, out }, watch.op), {
          notice: (message) => s.op.events?.({ type: 'log', message }),
        });
        // once it is written (a failure says only what failed)
        const mismatch = await (await import('../files.js')).writtenFormatMismatch(path, opts.out).catch(() => undefined);
        if (mismatch) s.op.events?.({ type: 'warning', diagnostic: { level: 'warning', message: mismatch } });
        await printWithTransfer({ disk: opts.name, file: opts.out, archiveBytes: r.bytes, sha256: r.sha256 }, watch.summary(), output, async () => {
          process.stdout.write(`exported disk ${opts.name} to ${opts.out} (${r.bytes} bytes, sha256 ${r.sha256}; checksum in ${opts.out}.sha256)\n`);
        });
      });
    }),
  );

  volumeOption(
    disk
      .command('delete')
      .description('delete a disk; never the current disk, and the previous one (rollback target) only with --force')
      .requiredOption('-N, --name <name>', 'disk to delete')
      .option('--force', 'also delete the previous disk (never the current one)'),
  ).action(
    action(async (opts: VolOpts & { name: string; force?: boolean }, cmd: Command) => {
      await diskCommand(globalOptions(cmd), async (s) => {
        const { deleteDisk } = await import('../../usecases/disk.js');
        const d = await deleteDisk(s.ctx, s.driver, s.kube, { volume: opts.volume, name: opts.name, force: opts.force }, s.op);
        process.stdout.write(`deleted disk ${d.name} (${d.id})\n`);
      });
    }),
  );
}
