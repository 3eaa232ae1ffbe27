// kompoxops app validate: checks kompoxops.yml and the compose file, and
// prints the canonical compose model or the Kubernetes manifest.
import type { Command } from 'commander';
import { action, globalOptions, parseOutputFormat, printData, withOutput } from '../common.js';

interface Opts {
  storedSecrets?: boolean;
  outCompose?: string;
  outManifest?: string;
  profile?: string[];
  output?: string;
}

export function register(app: Command): void {
  withOutput(
    app
      .command('validate')
      .description('validate kompoxops.yml and the compose file; print the canonical compose model or the Kubernetes manifest')
      .option('--out-compose <file>', 'write the canonical compose model (like docker compose config) to FILE, or - for stdout')
      .option('--out-manifest <file>', 'write the Kubernetes objects (multi-document YAML, apply order) to FILE, or - for stdout')
      .option('--profile <name...>', 'activate compose profiles')
      .option('--stored-secrets', "read the names of the app's stored secrets from the cluster (never their values), so the manifest references them as app deploy will"),
  ).action(
    action(async (opts: Opts, cmd: Command) => {
      const format = parseOutputFormat(opts.output);
      const g = globalOptions(cmd);
      const { KompoxError, formatDiagnostic } = await import('../../domain/errors.js');
      if (opts.outCompose === '-' && opts.outManifest === '-') {
        throw new KompoxError('usage', '--out-compose and --out-manifest cannot both write to stdout', { hint: 'Send one of them to a file.' });
      }
      const { loadOps, opsAppContext, opsAppSource, opsSessionOptions } = await import('../../app/kompoxops.js');
      const { openSession } = await import('../../app/session.js');
      const { validateApp } = await import('../../usecases/app-load.js');
      const project = await loadOps(g);
      const config = project.config;
      // no driver is loaded: validate needs only its pure volume facts
      const session = openSession(await opsAppContext(project), opsSessionOptions(project));
      let secrets;
      if (opts.storedSecrets) {
        // the only cluster access of validate, and only when asked: names of Secrets and variables, never a value
        const { readStoredSecrets, secretRefs } = await import('../../usecases/app-secrets.js');
        secrets = secretRefs(await readStoredSecrets(session.ctx, await session.kube()));
        await session.close();
      }
      const r = await validateApp(session.ctx, await opsAppSource(project), {
        ...(secrets ? { secrets } : {}),
        profiles: opts.profile,
        compose: opts.outCompose !== undefined,
        manifest: opts.outManifest !== undefined,
        locateConfig: config.locate,
        volumes: await session.volumes(),
      });
      for (const w of r.warnings) process.stderr.write(formatDiagnostic(w) + '\n');
      // Only now, with everything valid, is anything written.
      const outputs: Output[] = [];
      if (opts.outCompose !== undefined) outputs.push({ target: opts.outCompose, text: r.composeYaml! });
      if (opts.outManifest !== undefined) outputs.push({ target: opts.outManifest, text: r.manifestYaml! });
      await writeOutputs(outputs, project.host.cwd, g.chdir, [config.path, ...r.summary.files]);
      if (outputs.some((o) => o.target === '-')) return;
      const s = r.summary;
      if (format !== 'table') return printData({ valid: true, ...s, warnings: r.warnings.length }, format);
      const n = (k: number, what: string) => `${k} ${what}${k === 1 ? '' : 's'}`;
      process.stdout.write(
        `valid: app ${s.app}: ${n(s.services.length, 'service')} (${s.services.join(', ')}), ` +
          `${n(s.composeVolumes.length, 'compose volume')}, ${n(s.appVolumes.length, 'app volume')} (${s.appVolumes.join(', ')}), ` +
          `${n(s.ports.length, 'published port')}, ${n(s.objects, 'Kubernetes object')}${r.warnings.length ? `, ${n(r.warnings.length, 'warning')}` : ''}\n` +
          s.hosts.map((h) => `  https://${h}\n`).join('') +
          outputs.map((o) => `wrote ${o.target}\n`).join(''),
      );
    }),
  );
}

interface Output {
  target: string;
  text: string;
}

/**
 * Writes outputs to files (relative to -C like everything else) or stdout.
 * Never over an input file, and through a temporary file + rename so a
 * failure leaves no half-written output.
 */
async function writeOutputs(outputs: Output[], cwd: string, chdir: string | undefined, inputs: string[]): Promise<void> {
  const fs = await import('node:fs');
  const path = await import('node:path');
  const { KompoxError } = await import('../../domain/errors.js');
  const canonical = (p: string) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return path.resolve(p);
    }
  };
  const base = chdir ? path.resolve(cwd, chdir) : cwd;
  const inputSet = new Set(inputs.map(canonical));
  const files = outputs.filter((x) => x.target !== '-').map((x) => ({ ...x, path: path.resolve(base, x.target) }));
  for (const f of files) {
    if (inputSet.has(canonical(f.path))) {
      throw new KompoxError('usage', `refusing to write output over the input file ${f.target}`, { hint: 'Choose another output file name.' });
    }
    if (!fs.existsSync(path.dirname(f.path))) {
      throw new KompoxError('notfound', `cannot write ${f.target}: no such directory ${path.dirname(f.path)}`, { hint: 'Create the directory first.' });
    }
  }
  for (const x of outputs) if (x.target === '-') process.stdout.write(x.text);
  for (const f of files) {
    const tmp = path.join(path.dirname(f.path), `.${path.basename(f.path)}.${process.pid}.tmp`);
    fs.writeFileSync(tmp, f.text);
    fs.renameSync(tmp, f.path);
  }
}
