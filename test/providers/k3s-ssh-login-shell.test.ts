// Node commands over SSH whose login shell writes to stderr before the
// command runs (a warning from the user's rc files): the command's process
// group line (what a cancel kills) comes after those lines. A real sshd on
// 127.0.0.1 gives the sessions a HOME (SetEnv) whose .bashrc, which bash
// run by sshd reads before `bash -c COMMAND`, writes two lines to stderr
// and an unended one.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { HostFs } from '../../src/providers/k3s/hostfs.js';
import { connectSshHostFs } from '../../src/providers/k3s/ssh-hostfs.js';
import { sshdMissing, startSshd, type Sshd } from '../support/sshd.js';
import { sandbox, type Sandbox } from './k3s-fixtures.js';

const missing = sshdMissing() ?? (/\/bash$/.test(userInfo().shell ?? '') ? undefined : `the login shell of ${userInfo().username} is not bash (~/.bashrc)`);

/** The pids of the node's processes (the node is this machine) whose command line is exactly `cmd`. */
function nodeProcesses(cmd: string): number[] {
  const found = spawnSync('pgrep', ['-x', '-f', '--', cmd.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')], { encoding: 'utf8' }).stdout.trim();
  return found ? found.split('\n').map(Number) : [];
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) if (cond()) return true;
  return cond();
}

describe('node commands over SSH whose login shell writes to stderr first (real sshd, a .bashrc)', { skip: missing }, () => {
  let sb: Sandbox;
  let sshd: Sshd;
  let fs: HostFs;
  before(async () => {
    sb = await sandbox();
    // bash run by sshd reads ~/.bashrc: HOME (SetEnv comes after sshd's own) is a directory of the test's
    const home = join(sb.dir, 'home');
    await mkdir(home);
    await writeFile(join(home, '.bashrc'), "echo 'rc: warning one' >&2\necho 'rc: warning two' >&2\nprintf 'rc: unended ' >&2\n");
    sshd = await startSshd({ config: [`SetEnv HOME=${home}`], loginRc: true });
    fs = await connectSshHostFs({ target: sshd.target, keyPath: sshd.keyPath, knownHosts: sshd.knownHostsPath });
  });
  after(async () => {
    await fs?.close();
    await sshd?.close();
    await sb?.cleanup();
  });

  it('a cancel still kills the command on the node, its process group', async () => {
    // a command that writes nothing: only a kill of its group ends it
    const secs = String(4000 + Math.floor(Math.random() * 1000));
    const ac = new AbortController();
    const running = fs.run!(['sleep', secs], { signal: ac.signal });
    running.catch(() => undefined);
    try {
      assert.ok(await until(() => nodeProcesses(`sleep ${secs}`).length > 0, 10_000), 'the command runs on the node');
      ac.abort();
      await assert.rejects(running, /sleep on ssh .* was cancelled/);
      assert.ok(await until(() => nodeProcesses(`sleep ${secs}`).length === 0, 10_000), `sleep ${secs} still runs on the node after its cancel`);
    } finally {
      for (const pid of nodeProcesses(`sleep ${secs}`)) process.kill(pid, 'SIGKILL');
    }
  });

  it("the shell's lines stay stderr, the group's line never shows in stderr or an error message", async () => {
    const r = await fs.run!(['sh', '-c', 'echo oops >&2; exit 3']);
    assert.equal(r.code, 3);
    assert.equal(r.stderr.trim(), 'rc: warning one\nrc: warning two\nrc: unended \noops');
    const missingFile = join(sb.dir, 'no-such-file');
    const rs = await fs.streamFile!(missingFile);
    const err = await new Promise<Error>((resolve) => {
      rs.on('error', resolve);
      rs.resume();
    });
    assert.match(err.message, /no-such-file/);
    assert.match(err.message, /rc: warning one/);
    assert.doesNotMatch(err.message, /kompox-pgid/);
  });
});
