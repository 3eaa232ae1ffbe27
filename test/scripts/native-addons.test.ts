// The install's native addons load under the Node that runs Kompox
// (scripts/native-addons.mjs rebuilds them when npm ran under another Node:
// `.ci/run` and the README's quickstart run `npm ci` with the machine's Node).
// They are optional (ssh2 falls back to JavaScript), so a machine without a
// C++ toolchain cannot have them: the test says it is skipped there.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const toolchain = ['make', 'g++', 'python3'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
const skip = toolchain.length ? `no ${toolchain.join(', ')} on this machine: native addons cannot be built` : false;

test("ssh2's crypto binding and cpu-features load under this Node (built for its ABI by the install)", { skip }, () => {
  const require = createRequire(import.meta.url);
  const crypto = require('ssh2/lib/protocol/crypto.js') as { bindingAvailable: boolean };
  assert.equal(crypto.bindingAvailable, true, `ssh2's binding did not load under Node ${process.version}: run \`npm ci\` again, or node scripts/native-addons.mjs`);
  const features = (require('cpu-features') as () => { arch: string })();
  assert.equal(typeof features.arch, 'string');
});
