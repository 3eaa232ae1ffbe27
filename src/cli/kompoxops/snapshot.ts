// kompoxops snapshot list | create | restore | export | delete.
// Thin shell: flags → use case (src/usecases/snapshot.ts) → print.
import type { Command } from 'commander';
import { action, durationFlag, globalOptions, parseOutputFormat, printData, withOutput, type Column, type OutputFormat } from '../common.js';
import type { Snapshot } from '../../domain/model.js';

interface VolOpts {
  volume?: string;
  output?: string;
}

function volumeOption(cmd: Command): Command {
  return cmd.option('-V, --volume <volume>', 'app volume (default: the only one)');
}

function snapshotColumns(): Column<Snapshot>[] {
  return [
    { header: 'name', get: (s) => s.name },
    { header: 'size', get: (s) => `${s.sizeGiB}Gi` },
    { header: 'created', get: (s) => s.createdAt },
    { header: 'source', get: (s) => s.sourceDiskId },
    { header: 'id', get: (s) => s.id },
  ];
}

const cli = () => import('./disk.js');

/** Snapshots as a table, or in the documented JSON/YAML shape (snapshotJson in src/usecases/disk-view.ts). */
async function printSnapshots(data: Snapshot[] | Snapshot, format: OutputFormat): Promise<void> {
  if (format === 'table') return printData(data, format, snapshotColumns());
  const { snapshotJson } = await (await cli()).views();
  return printData(Array.isArray(data) ? data.map(snapshotJson) : snapshotJson(data), format);
}

export function register(program: Command): void {
  const snapshot = program.command('snapshot').description("snapshots of the app's disks: list, create, restore, export, delete");

  withOutput(volumeOption(snapshot.command('list').description('list the snapshots of an app volume'))).action(
    action(async (opts: VolOpts, cmd: Command) => {
      const format = parseOutputFormat(opts.output);
      await (await cli()).diskCommand(globalOptions(cmd), async (s) => {
        const { listSnapshots } = await import('../../usecases/snapshot.js');
        const r = await listSnapshots(s.ctx, s.driver, s.kube, { volume: opts.volume }, s.op);
        await printSnapshots(r.snapshots, format);
      });
    }),
  );

  withOutput(
    volumeOption(
      snapshot
        .command('create')
        .description("snapshot the volume's current disk (crash-consistent; --quiesce stops the app for it)")
        .option('-N, --name <name>', 'snapshot name (default: {volume}-{timestamp})')
        .option('--disk <name>', 'snapshot this disk instead of the current one')
        .option('--quiesce', 'stop the app (scale to 0) during the snapshot, then start it again')
        .option('--level <n>', 'compression of the snapshot (K3s, whose snapshots are archives): 1 (fastest: the shortest stop with --quiesce) to 8 (smallest); default 5')
        .option('--stop-timeout <duration>', 'with --quiesce: how long to wait for the pod to stop, e.g. 90s, 2m', '2m')
        .option('--start-timeout <duration>', 'with --quiesce: how long to wait for the app to be running and ready again, e.g. 90s, 5m', '5m'),
    ),
  ).action(
    action(async (opts: VolOpts & { name?: string; disk?: string; quiesce?: boolean; level?: string; stopTimeout: string; startTimeout: string }, cmd: Command) => {
      const format = parseOutputFormat(opts.output);
      const stopTimeoutMs = durationFlag(opts.stopTimeout, '--stop-timeout');
      const startTimeoutMs = durationFlag(opts.startTimeout, '--start-timeout');
      // snapshots are tar.zst archives (where they are archives at all: the use case checks the driver)
      const level = await (await cli()).archiveLevelOption(opts.level, 'tar.zst');
      // With --quiesce the app is down: Ctrl-C (or a TERM) aborts through the
      // Op's signal, and the use case starts the app again before the process
      // ends (exit 130, no snapshot; see ../op.ts).
      await (await cli()).diskCommand(globalOptions(cmd), async (s) => {
        const { createSnapshot } = await import('../../usecases/snapshot.js');
        const { watchTransfers } = await import('../transfer-summary.js');
        const watch = watchTransfers(s.op);
        const snap = await createSnapshot(s.ctx, s.driver, s.kube, { volume: opts.volume, name: opts.name, disk: opts.disk, quiesce: opts.quiesce, level, stopTimeoutMs, startTimeoutMs }, watch.op);
        const { printWithTransfer, views } = await cli();
        await printWithTransfer((await views()).snapshotJson(snap), watch.summary(), format, () => printSnapshots(snap, format));
      });
    }),
  );

  withOutput(
    volumeOption(
      snapshot
        .command('restore')
        .description('restore a snapshot into a NEW disk (never over an existing one); --attach makes it current')
        .requiredOption('-N, --name <name>', 'snapshot to restore')
        .option('--disk-name <name>', 'name of the new disk (default: {snapshot}-restored-{timestamp})')
        .option('--zone <zone>', "availability zone of the new disk (drivers with zones): a copy in another zone; default the app's zone")
        .option('--attach', 'attach the new disk (and redeploy when the app is deployed)')
        .option('--timeout <duration>', 'with --attach: rollout timeout for the redeploy, e.g. 90s, 5m', '5m'),
    ),
  ).action(
    action(async (opts: VolOpts & { name: string; diskName?: string; zone?: string; attach?: boolean; timeout: string }, cmd: Command) => {
      const format = parseOutputFormat(opts.output);
      const disk = await cli();
      const timeoutMs = durationFlag(opts.timeout, '--timeout'); // checked before anything changes
      return disk.diskCommand(globalOptions(cmd), async (s) => {
        const { restoreSnapshot } = await import('../../usecases/snapshot.js');
        const { watchTransfers } = await import('../transfer-summary.js');
        const watch = watchTransfers(s.op);
        const d = await restoreSnapshot(s.ctx, s.driver, s.kube, { volume: opts.volume, name: opts.name, diskName: opts.diskName, zone: opts.zone }, watch.op);
        const transfer = watch.summary();
        if (!opts.attach) {
          await disk.printWithTransfer((await disk.views()).diskJson(d), transfer, format, () => disk.printDisks(d, format));
          return 0;
        }
        s.op.events?.({ type: 'log', message: `restored snapshot ${opts.name} into disk ${d.name}` });
        const { attachAndDeploy } = await import('../../usecases/disk.js');
        const r = await attachAndDeploy(s.ctx, await s.appSource(), s.driver, s.kube, { volume: opts.volume, name: d.name, timeoutMs }, s.op);
        if (format !== 'table') await printData({ ...(await disk.views()).attachJson(r), transfer }, format);
        else {
          process.stdout.write(`attached disk ${r.disk.name} to volume ${r.volume}${r.previous ? ` (previous: ${r.previous.name})` : ''}\n`);
          if (r.deploy) process.stdout.write(`${r.deploy.message}\n`);
        }
        return r.deploy?.exitCode ?? 0;
      });
    }),
  );

  withOutput(
    volumeOption(
      snapshot
        .command('export')
        .description('write a snapshot as a portable archive to a file (and FILE.sha256) or stdout')
        .requiredOption('-N, --name <name>', 'snapshot to export')
        .requiredOption('-O, --out <file>', 'archive file, or - for stdout')
        .option('--format <format>', 'tar.zst or tar.gz (default: as stored; another format is re-compressed on the way)')
        .option('--level <n>', 're-compress at this level (into tar.zst unless --format): tar.zst 1 (fastest) to 8 (smallest), tar.gz 1 to 9')
        .option('--via <path>', 'data path: host (as the driver stores it: K3s), cluster (restored into a temporary disk read by a helper pod: any driver) or auto (host where the driver can); default: the KOMPOX_TRANSFER_VIA setting, else auto'),
    ),
  ).action(
    action(async (opts: VolOpts & { name: string; out: string; format?: string; level?: string; via?: string }, cmd: Command) => {
      const disk = await cli();
      const format = await disk.archiveFormatOption(opts.format);
      const level = await disk.archiveLevelOption(opts.level, format);
      const output = parseOutputFormat(opts.output);
      await disk.refuseSummaryWithStdout('snapshot export', opts.out, output);
      await disk.diskCommand(globalOptions(cmd), async (s) => {
        const { exportSnapshot } = await import('../../usecases/snapshot.js');
        const { archiveOutputPath, writeArchiveFile, writtenFormatMismatch } = await import('../files.js');
        const o = { volume: opts.volume, name: opts.name, format, level, via: opts.via };
        if (opts.out === '-') {
          const out = await disk.archiveToStdout();
          const r = await exportSnapshot(s.ctx, s.driver, s.kube, { ...o, out }, s.op);
          s.op.events?.({ type: 'log', message: `exported snapshot ${opts.name}: ${r.bytes} bytes, sha256 ${r.sha256}` });
          return;
        }
        const { watchTransfers } = await import('../transfer-summary.js');
        const watch = watchTransfers(s.op);
        const path = archiveOutputPath(opts.out, s.path);
        const r = await writeArchiveFile(path, (out) => exportSnapshot(s.ctx, s.driver, s.kube, { ...o, out }, watch.op), {
          notice: (message) => s.op.events?.({ type: 'log', message }),
        });
        // once it is written (a failure says only what failed); as stored, the format is the snapshot's
        const mismatch = await writtenFormatMismatch(path, opts.out).catch(() => undefined);
        if (mismatch) s.op.events?.({ type: 'warning', diagnostic: { level: 'warning', message: mismatch } });
        await disk.printWithTransfer({ snapshot: opts.name, file: opts.out, archiveBytes: r.bytes, sha256: r.sha256 }, watch.summary(), output, async () => {
          process.stdout.write(`exported snapshot ${opts.name} to ${opts.out} (${r.bytes} bytes, sha256 ${r.sha256}; checksum in ${opts.out}.sha256)\n`);
        });
      });
    }),
  );

  volumeOption(
    snapshot
      .command('delete')
      .description('delete a snapshot')
      .requiredOption('-N, --name <name>', 'snapshot to delete'),
  ).action(
    action(async (opts: VolOpts & { name: string }, cmd: Command) => {
      await (await cli()).diskCommand(globalOptions(cmd), async (s) => {
        const { deleteSnapshot } = await import('../../usecases/snapshot.js');
        const snap = await deleteSnapshot(s.ctx, s.driver, s.kube, { volume: opts.volume, name: opts.name }, s.op);
        process.stdout.write(`deleted snapshot ${snap.name} (${snap.id})\n`);
      });
    }),
  );
}
