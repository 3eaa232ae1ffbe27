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

/** Whether each addon loads under the bundled Node (ssh2 says whether it found its binding; cpu-features throws). */
const LOADS = {
  ssh2: "require('ssh2/lib/protocol/crypto.js').bindingAvailable",
  'cpu-features': "(require('cpu-features')(), true)",
};

function main() {
  // A consumer's install (no devDependencies): nothing to do.
  if (!existsSync(bundled) || ADDONS.length === 0) return;
  // Not the ABI npm runs under: this script itself may run under the bundled
  // Node (npm puts node_modules/.bin first) while the addons were built before
  // it was linked there. Whether they load under it is what counts.
  const probe = `let bad = []; for (const [n, e] of Object.entries(${JSON.stringify(Object.fromEntries(ADDONS.map((a) => [a, LOADS[a]])))})) { try { if (!eval(e)) bad.push(n); } catch { bad.push(n); } } console.log(bad.join(' '))`;
  const broken = notLoading(probe);
  if (broken === undefined || broken.length === 0) return;
  if (!existsSync(join(headers, 'include/node/node.h'))) {
    console.log(`note: no headers of the bundled Node at ${headers}; ${broken.join(' and ')} keep their JavaScript fallback`);
    return;
  }
  const npm = process.env.npm_execpath;
  const [cmd, args] = npm ? [process.execPath, [npm, 'rebuild', ...broken]] : ['npm', ['rebuild', ...broken]];
  const r = spawnSync(cmd, args, {
    cwd: root,
    stdio: 'inherit',
    // the bundled node first: the addons' build scripts run `node` and node-gyp for that Node's version
    env: { ...process.env, PATH: `${dirname(bundled)}:${process.env.PATH ?? ''}`, npm_config_nodedir: headers },
  });
  // npm ≥ 11.x skips a dependency's install scripts unless package.json's
  // allowScripts names it, and still exits 0: whether they load now is the answer.
  const still = notLoading(probe) ?? broken;
  if (r.status !== 0 || still.length > 0) {
    const failed = r.status !== 0 ? broken : still;
    console.log(`note: rebuilding ${failed.join(' and ')} for the bundled Node failed; they keep their JavaScript fallback (are they in package.json's allowScripts?)`);
  } else console.log(`rebuilt ${broken.join(' and ')} for the bundled Node (${bundled})`);
}

/** The addons that do not load under the bundled Node, or undefined when the probe itself could not run. */
function notLoading(probe) {
  const check = spawnSync(bundled, ['-e', probe], { cwd: root, encoding: 'utf8' });
  if (check.status !== 0) return undefined;
  return check.stdout.trim().split(' ').filter(Boolean);
}

try {
  main();
} catch (err) {
  console.log(`note: native addons not rebuilt (${err instanceof Error ? err.message : String(err)})`);
}
