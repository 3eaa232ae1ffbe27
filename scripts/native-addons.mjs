// postinstall: builds the optional native addons (ssh2's crypto binding,
// cpu-features) for the Node that runs Kompox, when npm ran under another.
//
// A checkout's `npm ci` installs Node 24 into node_modules (the `node`
// package), and the launchers hand over to it when the system Node is older
// (bin/run.mjs). npm itself still runs under the system Node, so the addons
// it builds are for that Node's ABI and fail to load under Node 24: ssh2
// then falls back to JavaScript (an SSH transfer costs ~10% more CPU). This
// rebuilds them with the bundled Node and its own headers (no download).
// The addons are optional: whatever happens here, the install succeeds.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bundled = join(root, 'node_modules/node/bin/node');
const headers = join(root, `node_modules/node/node_modules/node-${process.platform}-${process.arch}`);
const ADDONS = ['ssh2', 'cpu-features'].filter((name) => existsSync(join(root, 'node_modules', name)));

function main() {
  // A consumer's install (no devDependencies), or npm already under the bundled Node's ABI: nothing to do.
  if (!existsSync(bundled) || ADDONS.length === 0) return;
  const abi = spawnSync(bundled, ['-p', 'process.versions.modules'], { encoding: 'utf8' });
  if (abi.status !== 0 || abi.stdout.trim() === process.versions.modules) return;
  if (!existsSync(join(headers, 'include/node/node.h'))) {
    console.log(`note: no headers of the bundled Node at ${headers}; ${ADDONS.join(' and ')} keep their JavaScript fallback`);
    return;
  }
  const npm = process.env.npm_execpath;
  const [cmd, args] = npm ? [process.execPath, [npm, 'rebuild', ...ADDONS]] : ['npm', ['rebuild', ...ADDONS]];
  const r = spawnSync(cmd, args, {
    cwd: root,
    stdio: 'inherit',
    // the bundled node first: the addons' build scripts run `node` and node-gyp for that Node's version
    env: { ...process.env, PATH: `${dirname(bundled)}:${process.env.PATH ?? ''}`, npm_config_nodedir: headers },
  });
  if (r.status !== 0) console.log(`note: rebuilding ${ADDONS.join(' and ')} for Node ${abi.stdout.trim()} failed; they keep their JavaScript fallback`);
}

try {
  main();
} catch (err) {
  console.log(`note: native addons not rebuilt (${err instanceof Error ? err.message : String(err)})`);
}
