// Bad input: one paragraph naming file:line:column and what to do, exit 1,
// no stack trace unless --debug.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STACK_LINE, runCli } from '../support/cli.js';

const GOOD = `version: 1
service:
  name: ops
provider:
  name: k3s1
  driver: k3s
cluster:
  name: c1
  domain: example.com
app:
  name: web
  compose: compose.yml
`;
const COMPOSE = 'services:\n  web:\n    image: nginx\n    ports: ["80:80"]\n';

function dirWith(config: string | undefined, compose = COMPOSE): string {
  const dir = mkdtempSync(join(tmpdir(), 'kompox-cli-'));
  if (config !== undefined) writeFileSync(join(dir, 'kompoxops.yml'), config);
  writeFileSync(join(dir, 'compose.yml'), compose);
  return dir;
}

const CASES: Array<{ name: string; config: string; where: RegExp; says: RegExp }> = [
  { name: 'bad YAML', config: GOOD.replace('  name: ops', '  name: [ops'), where: /kompoxops\.yml:\d+:\d+: YAML syntax error/, says: /Fix the YAML syntax/ },
  { name: 'unknown key', config: GOOD.replace('  domain:', '  domian:'), where: /kompoxops\.yml:9:3: cluster\.domian: unknown key/, says: /Did you mean "domain"/ },
  { name: 'bad driver', config: GOOD.replace('driver: k3s', 'driver: kubernetes'), where: /kompoxops\.yml:6:11: provider\.driver: unknown driver "kubernetes"/, says: /aks, eks, gke, oke, k3s/ },
  { name: 'bad volume size', config: GOOD + '  volumes:\n    - name: data\n      size: lots\n', where: /kompoxops\.yml:15:13: app\.volumes\[0\]\.size/, says: /10Gi/ },
];

for (const c of CASES) {
  test(`${c.name}: file:line:col, what to do, exit 1, no stack`, async () => {
    const dir = dirWith(c.config);
    try {
      const r = await runCli(['-C', dir, 'app', 'validate']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, c.where);
      assert.match(r.stderr, c.says);
      assert.doesNotMatch(r.stderr, STACK_LINE);
      assert.equal(r.stdout, '');

      const d = await runCli(['-C', dir, '--debug', 'app', 'validate']);
      assert.equal(d.code, 1);
      assert.match(d.stderr, c.where);
      assert.match(d.stderr, STACK_LINE, 'with --debug a stack trace appears');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('missing kompoxops.yml: says to run kompoxops init, exit 1, no stack', async () => {
  const dir = dirWith(undefined);
  try {
    const r = await runCli(['-C', dir, 'app', 'validate']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: no kompoxops\.yml in .*Run "kompoxops init"/);
    assert.doesNotMatch(r.stderr, STACK_LINE);
    const f = await runCli(['-C', dir, '-f', 'nope.yml', 'app', 'validate']);
    assert.equal(f.code, 1);
    assert.match(f.stderr, /nope\.yml: no such file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('compose errors name compose.yml:line:col; inline compose errors name kompoxops.yml:line:col', async () => {
  const dir = dirWith(GOOD, 'services:\n  web:\n    image: nginx\n    imagee: typo\n');
  try {
    const r = await runCli(['-C', dir, 'app', 'validate']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /compose\.yml:4:5/);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const inline = dirWith(GOOD.replace('  compose: compose.yml\n', '  compose:\n    services:\n      web:\n        image: nginx\n        imagee: typo\n'));
  try {
    const r = await runCli(['-C', inline, 'app', 'validate']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /kompoxops\.yml:16:9/, r.stderr);
  } finally {
    rmSync(inline, { recursive: true, force: true });
  }
});

test('a missing compose file: kompoxops.yml:line:col of app.compose, exit 1', async () => {
  const dir = dirWith(GOOD.replace('compose: compose.yml', 'compose: missing.yml'));
  try {
    const r = await runCli(['-C', dir, 'app', 'validate']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /kompoxops\.yml:12:12: app\.compose: no such file: .*missing\.yml\. Create the compose file/);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a file without an app section: app commands say what to add', async () => {
  const dir = dirWith(GOOD.replace(/app:\n[\s\S]*$/, ''));
  try {
    const r = await runCli(['-C', dir, 'app', 'validate']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /kompoxops\.yml has no app section.*Add an "app:" section/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an error of the filesystem (ENOSPC, a full temp directory; EIO, a failing disk) is said with what to do, not as unexpected; other errors still are', async () => {
  const { reportError } = await import('../../src/cli/common.js');
  const written: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string) => (written.push(String(chunk)), true)) as typeof process.stderr.write;
  let full: number;
  let bug: number;
  let io: number;
  try {
    full = reportError(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' }));
    bug = reportError(new TypeError("Cannot read properties of undefined (reading 'x')"));
    io = reportError(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO', errno: -5, syscall: 'fsync' }));
    reportError(Object.assign(new Error("EACCES: permission denied, open '/disks/base/data/rootonly.txt'"), { code: 'EACCES', errno: -13, syscall: 'open' }));
  } finally {
    process.stderr.write = write;
  }
  assert.equal(full, 1);
  assert.equal(bug, 1);
  assert.equal(io, 1);
  // a disk's I/O error (a snapshot's sync, say) is the machine's state, not a bug of Kompox
  assert.match(written[2]!, /^error: EIO: i\/o error, fsync\. A device this command reads or writes reported an I\/O error .*dmesg.*\n$/);
  assert.doesNotMatch(written[2]!, /unexpected/);
  // a file of a disk the user may not read (an export run as another user)
  assert.match(written[3]!, /^error: EACCES: permission denied, open '\/disks\/base\/data\/rootonly\.txt'\. Permission was denied on the file or directory named above: check its owner and mode/);
  assert.doesNotMatch(written[3]!, /unexpected/);
  assert.match(written[0]!, /^error: ENOSPC: no space left on device, write\. A filesystem this command writes to is full .*TMPDIR.*\n$/);
  assert.doesNotMatch(written[0]!, /unexpected/);
  assert.doesNotMatch(written[0]!, STACK_LINE);
  assert.match(written.slice(1).join(''), /This is unexpected/);
});

test('with -o json a failure is one JSON object on stderr (stable code, message, hint, location, exit code), stdout empty; other formats keep the paragraph', async () => {
  const dir = dirWith(GOOD.replace('  domain:', '  domian:'));
  try {
    const text = await runCli(['-C', dir, 'disk', 'list']);
    const r = await runCli(['-C', dir, 'disk', 'list', '-o', 'json']);
    assert.equal(r.stdout, '');
    assert.equal(r.code, text.code);
    assert.notEqual(r.code, 0);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    const { error } = JSON.parse(lines[0]!) as { error: { code: string; kind: string; message: string; hint?: string; location?: { file?: string; line?: number }; exitCode: number } };
    assert.match(error.code, /^[a-z][a-z0-9.-]*$/);
    assert.equal(error.exitCode, r.code);
    assert.match(error.message, /cluster\.domian: unknown key/);
    assert.match(error.hint ?? '', /Did you mean "domain"/);
    assert.equal(error.location?.line, 9);
    assert.match(error.location?.file ?? '', /kompoxops\.yml$/);
    assert.doesNotMatch(r.stderr, STACK_LINE);
    // the same failure as text for every other format
    const y = await runCli(['-C', dir, 'disk', 'list', '-o', 'yaml']);
    assert.match(y.stderr, /^error: .*kompoxops\.yml:9:3: cluster\.domian: unknown key/);
    // a missing directory (a use case's KompoxError without a location) too
    const m = await runCli(['-C', join(dir, 'nope'), 'disk', 'list', '-o', 'json']);
    assert.equal(JSON.parse(m.stderr).error.kind, 'notfound');
    assert.equal(m.stdout, '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reportError as JSON: an unexpected error is code internal with what to do; details keep their values without stacks', async () => {
  const { reportError } = await import('../../src/cli/common.js');
  const { KompoxError } = await import('../../src/domain/errors.js');
  const written: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string) => (written.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    reportError(new TypeError('boom'), { json: true });
    reportError(new KompoxError('conflict', 'taken', { code: 'disk.name-taken', details: { size: 10n, cause: new Error('inner') } }), { json: true });
  } finally {
    process.stderr.write = write;
  }
  const bug = JSON.parse(written[0]!).error;
  assert.equal(bug.code, 'internal');
  assert.match(bug.hint, /--debug/);
  const taken = JSON.parse(written[1]!).error;
  assert.equal(taken.code, 'disk.name-taken');
  assert.deepEqual(taken.details, { size: '10', cause: 'inner' });
  assert.doesNotMatch(written.join(''), STACK_LINE);
});

test('reportError as JSON with --debug: stderr is still one JSON object, the stacks (the error\'s and its causes\') inside it', async () => {
  const { reportError, setDebug } = await import('../../src/cli/common.js');
  const { KompoxError } = await import('../../src/domain/errors.js');
  const written: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string) => (written.push(String(chunk)), true)) as typeof process.stderr.write;
  setDebug(true);
  try {
    reportError(new KompoxError('unavailable', 'lost', { code: 'kube.exec.lost', cause: new Error('socket hang up', { cause: null }) }), { json: true });
    reportError(new TypeError('boom'), { json: true });
  } finally {
    setDebug(false);
    process.stderr.write = write;
  }
  assert.equal(written.length, 2, written.join(''));
  const lost = JSON.parse(written[0]!).error;
  assert.equal(lost.code, 'kube.exec.lost');
  assert.match(lost.stack, /^KompoxError: lost\n\s+at /);
  assert.equal(lost.causes.length, 1);
  assert.match(lost.causes[0], /^Error: socket hang up\n\s+at /);
  const bug = JSON.parse(written[1]!).error;
  assert.equal(bug.code, 'internal');
  assert.match(bug.stack, /^TypeError: boom\n/);
  assert.equal(bug.causes, undefined);
});
