// `kompoxops app deploy|destroy|status|logs|exec|tunnel|kubectl`: thin shells
// over the use cases. Only commander and ../common.js load at start-up; the
// Kubernetes client, the config loader and the use cases are imported inside
// the actions.
import type { Command } from 'commander';
import { action, durationFlag, globalOptions, parseOutputFormat, printData, renderTable, withOutput } from '../common.js';

const line = (s: string) => process.stderr.write(`${s}\n`);

async function confirm(question: string): Promise<boolean> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

export function register(app: Command): void {
  app
    .command('deploy')
    .description('apply the app to the cluster (server-side apply), prune what is no longer wanted, wait for the rollout')
    .option('--dry-run', 'server-side dry run: show what would be created, changed or pruned; change nothing')
    .option('--wait', 'wait for the rollout (default)')
    .option('--no-wait', 'do not wait for the rollout')
    .option('--timeout <duration>', 'how long to wait for the rollout, e.g. 90s, 5m, 1h', '5m')
    .option('--profile <name...>', 'compose profiles to activate')
    .addHelpText('after', '\nExit codes: 0 deployed and ready, 1 failed (e.g. image cannot be pulled), 3 applied but not ready within --timeout.')
    .action(
      action(async (opts: { dryRun?: boolean; wait: boolean; timeout: string; profile?: string[] }, cmd: Command) => {
        const timeoutMs = durationFlag(opts.timeout, '--timeout');
        const { withOpsApp } = await import('../../app/kompoxops.js');
        const { withOp } = await import('../op.js');
        const { deployApp } = await import('../../usecases/app-deploy.js');
        const { formatChange, summarize } = await import('../../usecases/plan.js');
        // a dry run prints its changes on stdout, not as notes
        return withOp({ logs: !opts.dryRun, statusPrefix: 'waiting: ' }, (op, renderer) => withOpsApp(globalOptions(cmd), async (s, p) => {
          const { opsAppSource } = await import('../../app/kompoxops.js');
          const registryProbe = await s.registryProbe();
          const r = await deployApp(
            s.ctx,
            await opsAppSource(p),
            await s.kube(op),
            await s.driver(),
            { dryRun: opts.dryRun, wait: opts.wait, timeoutMs, profiles: opts.profile, ...(registryProbe ? { registryProbe } : {}) },
            op,
          );
          renderer.end();
          if (r.dryRun) {
            for (const c of r.changes) process.stdout.write(`${formatChange(c, true)}\n`);
          }
          const sum = summarize(r.changes);
          const counts = `${sum.create} created, ${sum.change} changed, ${sum.unchanged} unchanged, ${sum.prune} pruned`;
          if (r.exitCode === 0) {
            const dryCounts = `${sum.create} to create, ${sum.change} to change, ${sum.unchanged} unchanged, ${sum.prune} to prune`;
            process.stdout.write(`${r.dryRun ? `dry run (namespace ${r.namespace}): ${dryCounts}; nothing was changed` : `namespace ${r.namespace}: ${counts}; ${r.message}`}\n`);
          } else {
            process.stdout.write(`namespace ${r.namespace}: ${counts}\n`);
            line(`error: ${r.message}`);
            if (r.exitCode === 3) line('The objects are applied; run `kompoxops app status` to follow up, or deploy again with a longer --timeout.');
          }
          return r.exitCode;
        }));
      }),
    );

  app
    .command('destroy')
    .description("delete the app's objects from the cluster; disks and snapshots are kept")
    .option('--delete-namespace', 'delete the app namespace too (its disk annotations go with it: the disk ids are printed first)')
    .option('--dry-run', 'show what would be deleted')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--wait', "wait until the app's pods are gone and its volumes are released (default)")
    .option('--no-wait', 'return once the objects are deleted, without waiting for that')
    .option('--timeout <duration>', 'how long to wait, e.g. 90s, 5m', '5m')
    .addHelpText('after', '\nExit codes: 0 destroyed (and, unless --no-wait, everything gone), 1 failed, 3 deleted but not all gone within --timeout.')
    .action(
      action(async (opts: { deleteNamespace?: boolean; dryRun?: boolean; yes?: boolean; wait: boolean; timeout: string }, cmd: Command) => {
        const timeoutMs = durationFlag(opts.timeout, '--timeout');
        const { KompoxError } = await import('../../domain/errors.js');
        const { withOpsApp } = await import('../../app/kompoxops.js');
        const { withOp } = await import('../op.js');
        const { destroyApp } = await import('../../usecases/app-destroy.js');
        const { appNamespace } = await import('../../domain/names.js');
        return withOp({ statusPrefix: 'waiting for: ' }, (op, renderer) => withOpsApp(globalOptions(cmd), async (s) => {
          const ns = appNamespace(s.ctx);
          if (!opts.yes && !opts.dryRun) {
            if (!process.stdin.isTTY) {
              throw new KompoxError('usage', `refusing to destroy app ${s.ctx.app.name} without confirmation`, { hint: 'Add --yes (there is no terminal to ask on).' });
            }
            if (!(await confirm(`Destroy app ${s.ctx.app.name} (namespace ${ns}${opts.deleteNamespace ? ', including the namespace' : ''})? Disks are kept.`))) {
              line('cancelled');
              return 1;
            }
          }
          // the disks holding the data are named first (a log event each), while the namespace annotations still exist
          const r = await destroyApp(s.ctx, await s.kube(op), { deleteNamespace: opts.deleteNamespace, dryRun: opts.dryRun, wait: opts.wait, timeoutMs }, op);
          renderer.end();
          if (r.disks.length) {
            process.stdout.write('the data is kept on these disks (not deleted):\n');
            for (const d of r.disks) process.stdout.write(`  ${d.diskId}  (${d.source})\n`);
          }
          if (!r.existed) {
            process.stdout.write(`app ${s.ctx.app.name}: nothing to destroy (namespace ${ns} does not exist)\n`);
            return 0;
          }
          process.stdout.write(`${opts.dryRun ? 'would delete' : 'deleted'} ${r.deleted.length} objects${r.namespaceDeleted ? ' and the namespace' : ''} of app ${s.ctx.app.name}\n`);
          if (r.wait && !r.wait.done) {
            line(`error: deleted, but not gone within ${opts.timeout}: ${r.wait.remaining.join(', ')}`);
            line('The disks are kept either way. A pod goes once its grace period is over; a claim or volume once no pod uses it (the controller manager removes the protection finalizers). Run `kompoxops app status` to follow up, or destroy again with a longer --timeout; a deploy waits for them.');
            return 3;
          }
          return 0;
        }));
      }),
    );

  withOutput(app.command('status').description('deployment, pods, URLs, current disk, volume bindings and recent warnings of the app')).action(
    action(async (opts: { output?: string }, cmd: Command) => {
      const format = parseOutputFormat(opts.output);
      const { withOpsApp } = await import('../../app/kompoxops.js');
      const { appStatus } = await import('../../usecases/app-status.js');
      const { DEFAULT_QUIESCE_OBSERVE_MS } = await import('../../usecases/app-scale.js');
      const { bindingAdvice } = await import('../advice.js');
      return withOpsApp(globalOptions(cmd), async (s) => {
        const st = await appStatus(s.ctx, await s.kube());
        if (format !== 'table') {
          await printData(st, format);
          return;
        }
        const out: string[] = [];
        out.push(`app:        ${st.app}`);
        out.push(`namespace:  ${st.namespace}${st.exists ? '' : ' (does not exist: not deployed)'}`);
        for (const [vol, id] of Object.entries(st.disks.volumes)) out.push(`disk:       ${id ?? '(none yet)'}${Object.keys(st.disks.volumes).length > 1 ? ` (volume ${vol})` : ''}`);
        for (const b of st.volumeBindings) {
          const claim = b.claim ? `claim ${b.claim.name} ${b.claim.terminating ? 'Terminating' : b.claim.phase}` : 'no claim';
          const pv = b.persistentVolume ? `PersistentVolume ${b.persistentVolume.name} ${b.persistentVolume.terminating ? 'Terminating' : b.persistentVolume.phase}` : 'no PersistentVolume';
          const link = b.claim && b.persistentVolume ? (b.matched ? ', pointing at each other' : ', NOT pointing at each other') : '';
          out.push(`binding:    ${b.volume ? `volume ${b.volume}: ` : ''}${claim} → ${pv}${link}`);
          for (const p of b.problems) out.push(`  ${p.code.replace(/^binding\./, '')}: ${p.message}. ${bindingAdvice(p)}`);
        }
        for (const d of st.deployments) out.push(`deployment: ${d.name} ${d.ready} ready (${d.state}${d.state === 'ready' ? '' : `: ${d.message}`})`);
        // a running quiesce renews its record: one that stopped renewing was interrupted, and what starts the app again is said
        for (const q of st.quiesced ?? []) {
          out.push(`stopped:    ${q.deployment} by the quiesced ${q.by}${q.since ? ` since ${q.since}` : ''} (replicas ${q.replicas} to give back): ${q.liveness}`);
          if (!q.live) out.push(`            \`kompoxops app deploy\` starts the app again (so does the next --quiesce)`);
          // running only by a clock ahead of this one: it may be dead, and what goes over it (after a watch) is said
          else if (q.aheadS) out.push(`            if it was interrupted, \`kompoxops app deploy\` starts the app again once it watched its record unchanged for ${DEFAULT_QUIESCE_OBSERVE_MS / 1000}s (so does the next --quiesce)`);
        }
        for (const u of st.urls) out.push(`url:        ${u}`);
        for (const p of st.pods) {
          if (!p.node) continue;
          const where = [p.pool ? `pool ${p.pool}` : '', p.zone ? `zone ${p.zone}` : ''].filter(Boolean).join(', ');
          out.push(`node:       ${p.node}${where ? ` (${where})` : ''}${st.pods.length > 1 ? ` [${p.name}]` : ''}`);
        }
        if (st.pods.length) {
          out.push('');
          const rows = st.pods.flatMap((p) => p.containers.map((c) => ({ p, c })));
          out.push(
            renderTable(rows, [
              { header: 'pod', get: (r) => r.p.name },
              { header: 'phase', get: (r) => r.p.phase },
              { header: 'container', get: (r) => (r.c.kind ? `${r.c.name} (${r.c.kind})` : r.c.name) },
              { header: 'ready', get: (r) => r.c.ready },
              { header: 'restarts', get: (r) => r.c.restarts },
              { header: 'state', get: (r) => r.c.state },
              { header: 'last', get: (r) => (r.c.lastState ? `${r.c.lastState.reason ?? ''} exit ${r.c.lastState.exitCode}` : '') },
              { header: 'image', get: (r) => r.c.image },
            ]).trimEnd(),
          );
        } else if (st.exists) out.push('pods:       none');
        if (st.secrets?.pull) out.push(`registry credentials: ${st.secrets.pull.registries.join(', ')} (Secret ${st.secrets.pull.secret})`);
        for (const e of st.secrets?.env ?? []) out.push(`env overrides: ${e.service}: ${e.keys.join(', ')} (Secret ${e.secret})`);
        if (st.box) {
          const b = st.box;
          const state = b.pod ? `${b.pod.phase}${b.pod.ready ? ', ready' : ''}${b.pod.node ? ` on ${b.pod.node}` : ''}` : 'no pod';
          out.push(`box:        ${b.pod?.name ?? 'kompox-box'} (${state}; ${b.mode === 'live' ? 'live' : 'the app is stopped for it'}${b.since ? `, since ${b.since}` : ''})`);
          if (b.incomplete) out.push(`            half made or half removed by an interrupted command: \`kompoxops box destroy\` finishes removing it${b.mode === 'live' ? '' : ' and starts the app again'}`);
          else if (b.session) out.push(`            made for a box shell/exec/rsync command; when none runs, it was left behind: \`kompoxops box destroy\` removes it${b.mode === 'live' ? '' : ' and starts the app again'}`);
        }
        if (st.events.length) {
          out.push('', 'recent warnings:');
          for (const e of st.events) out.push(`  ${e.lastTimestamp ?? ''} ${e.object} ${e.reason}: ${e.message}${e.count > 1 ? ` (x${e.count})` : ''}`);
        }
        process.stdout.write(out.join('\n') + '\n');
      });
    }),
  );

  app
    .command('logs')
    .description("print the app pod's logs")
    .option('-f, --follow', 'stream new lines')
    .option('--tail <n>', 'only the last N lines')
    .option('-c, --container <name>', 'container (compose service)')
    .option('--since <duration>', 'only lines newer than this, e.g. 10m')
    .action(
      action(async (opts: { follow?: boolean; tail?: string; container?: string; since?: string }, cmd: Command) => {
        const { KompoxError } = await import('../../domain/errors.js');
        const { withOpsApp } = await import('../../app/kompoxops.js');
        const { appLogs, logTarget } = await import('../../usecases/app-logs.js');
        if (opts.tail !== undefined && !/^\d+$/.test(opts.tail)) throw new KompoxError('usage', `--tail must be a number of lines, not "${opts.tail}"`);
        const sinceSeconds = opts.since ? durationFlag(opts.since, '--since') / 1000 : undefined;
        return withOpsApp(globalOptions(cmd), async (s) => {
          const kube = await s.kube();
          const target = await logTarget(s.ctx, kube, opts.container);
          if (!opts.container && target.container && target.others.length) line(`logs of container ${target.container} (others: ${target.others.join(', ')}; choose with -c)`);
          await appLogs(s.ctx, kube, {
            follow: opts.follow,
            tailLines: opts.tail !== undefined ? Number(opts.tail) : undefined,
            container: target.container,
            sinceSeconds,
            out: process.stdout,
          });
        });
      }),
    );

  app
    .command('exec')
    .description('run a command in the app pod (the exit code is passed through)')
    .option('-i, --stdin', 'pass stdin to the command')
    .option('-t, --tty', 'allocate a terminal')
    .option('-c, --container <name>', 'container (compose service); default the first')
    .argument('<command...>', 'the command, after --')
    .action(
      action(async (command: string[], opts: { stdin?: boolean; tty?: boolean; container?: string }, cmd: Command) => {
        const { withOpsApp } = await import('../../app/kompoxops.js');
        const { appExec } = await import('../../usecases/app-exec.js');
        return withOpsApp(globalOptions(cmd), async (s) => {
          const kube = await s.kube();
          const raw = Boolean(opts.tty && opts.stdin && process.stdin.isTTY);
          if (raw) process.stdin.setRawMode(true);
          try {
            return await appExec(s.ctx, kube, {
              command,
              container: opts.container,
              stdin: opts.stdin ? process.stdin : undefined,
              stdout: process.stdout,
              stderr: process.stderr,
              tty: opts.tty,
            });
          } finally {
            if (raw) process.stdin.setRawMode(false);
            if (opts.stdin) process.stdin.pause();
          }
        });
      }),
    );

  app
    .command('tunnel')
    .description('forward local ports to the app pod; with -- CMD, run CMD while the tunnel is up')
    .requiredOption('-p, --port <[local:]remote...>', 'ports to forward, e.g. -p 8080:80 -p 5432')
    .argument('[command...]', 'command to run with the tunnel up (after --); its exit code is passed through')
    .action(
      action(async (command: string[], opts: { port: string[] }, cmd: Command) => {
        const { withOpsApp } = await import('../../app/kompoxops.js');
        const { EventRenderer } = await import('../render.js');
        const { openTunnel, parsePortMapping } = await import('../../usecases/app-tunnel.js');
        const mappings = opts.port.map(parsePortMapping);
        return withOpsApp(globalOptions(cmd), async (s) => {
          const t = await openTunnel(s.ctx, await s.kube(), mappings, { events: new EventRenderer().sink });
          for (const p of t.ports) line(`forwarding 127.0.0.1:${p.local} -> ${s.ctx.app.name}:${p.remote}`);
          if (command.length) {
            const { spawn } = await import('node:child_process');
            const code = await new Promise<number>((resolve) => {
              const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env: { ...process.env, KOMPOX_TUNNEL_PORTS: t.ports.map((p) => `${p.local}:${p.remote}`).join(',') } });
              child.on('error', (e) => {
                line(`error: cannot run ${command[0]}: ${e.message}`);
                resolve(127);
              });
              child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
            });
            await t.close();
            return code;
          }
          line('press Ctrl-C to stop');
          await new Promise<void>((resolve) => {
            process.once('SIGINT', resolve);
            process.once('SIGTERM', resolve);
          });
          await t.close();
          return 0;
        });
      }),
    );

  app
    .command('kubectl')
    .description('run kubectl against the cluster with the app namespace (temporary kubeconfig)')
    .argument('[args...]', 'kubectl arguments, after --')
    .action(
      action(async (args: string[], _opts: unknown, cmd: Command) => {
        const { KompoxError } = await import('../../domain/errors.js');
        const { withOpsApp } = await import('../../app/kompoxops.js');
        const { appNamespace } = await import('../../domain/names.js');
        const { buildKubeconfig } = await import('../../usecases/cluster-kubeconfig.js');
        const { writeKubeconfig } = await import('../files.js');
        const { mkdtempSync, rmSync } = await import('node:fs');
        const { tmpdir } = await import('node:os');
        const { join } = await import('node:path');
        const { spawn } = await import('node:child_process');
        return withOpsApp(globalOptions(cmd), async (s) => {
          const ns = appNamespace(s.ctx);
          const doc = await buildKubeconfig(s.ctx, await s.kubeconfig(), { namespace: ns });
          const dir = mkdtempSync(join(tmpdir(), 'kompox-kubectl-'));
          try {
            const file = join(dir, 'kubeconfig');
            await writeKubeconfig(file, doc);
            return await new Promise<number>((resolve, reject) => {
              const child = spawn('kubectl', ['--kubeconfig', file, '--namespace', ns, ...args], { stdio: 'inherit' });
              child.on('error', (e: NodeJS.ErrnoException) =>
                reject(
                  e.code === 'ENOENT'
                    ? new KompoxError('unavailable', 'kubectl is not installed (not found on PATH)', { hint: 'Install kubectl (https://kubernetes.io/docs/tasks/tools/) or use `kompoxops cluster kubeconfig` with your own tools.' })
                    : e,
                ),
              );
              child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
            });
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        });
      }),
    );
}
