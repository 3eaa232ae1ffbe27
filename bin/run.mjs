// Shared by the bin/ launchers: loads a CLI module from the compiled dist/
// (built by `npm install`/`npm run build`), or from the TypeScript sources
// through tsx in a checkout without dist/.
//
// Kompox needs Node.js 22.15 or later (24 LTS is the target). A checkout's
// `npm ci` installs Node 24 into node_modules (the `node` package), so when
// the launcher is started by an older system Node it hands over to that one.
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MIN = [22, 15];

function tooOld(version) {
  const [major, minor] = version.split('.').map(Number);
  return major < MIN[0] || (major === MIN[0] && minor < MIN[1]);
}

/** Re-runs this command under the Node installed in node_modules; resolves never (the process exits with the child). */
async function handOver() {
  const bundled = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(bundled)) {
    process.stderr.write(
      `error: Kompox needs Node.js ${MIN.join('.')} or later; this is ${process.versions.node}. Install Node.js 24 LTS, or run \`npm ci\` in the Kompox checkout (it installs Node 24 into node_modules).\n`,
    );
    process.exit(2);
  }
  const child = spawn(bundled, process.argv.slice(1), { stdio: 'inherit' });
  // Ctrl-C reaches the child through the terminal's process group; the child decides what to undo.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  await new Promise(() => {
    child.on('exit', (code, signal) => {
      if (signal) {
        process.removeAllListeners(signal);
        process.kill(process.pid, signal);
      }
      process.exit(code ?? 1);
    });
  });
}

/** The module at `src/<path>.ts` (compiled: `dist/<path>.js`), e.g. `cli/kompoxops/main`. */
export async function loadCli(path) {
  if (tooOld(process.versions.node)) await handOver();
  const dist = new URL(`../dist/${path}.js`, import.meta.url);
  if (existsSync(dist)) return import(dist.href);
  const { register } = await import('tsx/esm/api');
  register();
  return import(new URL(`../src/${path}.ts`, import.meta.url).href);
}
