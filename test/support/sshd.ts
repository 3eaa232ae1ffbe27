// A real OpenSSH server on 127.0.0.1 for tests of the K3s driver's SSH path:
// random port, temporary host key and authorized_keys, run in the foreground
// (`sshd -D -e -f CONFIG`) as the current user. Tests skip with the reason
// from sshdMissing() where /usr/sbin/sshd is not installed
// (apt-get install -y openssh-server).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export const SSHD = '/usr/sbin/sshd';

/** Why the sshd tests cannot run here, or undefined when they can. */
export function sshdMissing(): string | undefined {
  if (!existsSync(SSHD)) return `${SSHD} is not installed (apt-get install -y openssh-server)`;
  if (spawnSync('ssh-keygen', ['-?'], { stdio: 'ignore' }).error) return 'ssh-keygen is not installed';
  const shell = userInfo().shell ?? '';
  if (/(nologin|false)$/.test(shell)) return `the current user ${userInfo().username} cannot log in over SSH (shell ${shell})`;
  return undefined;
}

export interface Sshd {
  host: string;
  port: number;
  user: string;
  /** `user@127.0.0.1:port` (the K3S_SSH setting). */
  target: string;
  /** Client private key accepted by the server. */
  keyPath: string;
  /** known_hosts listing the server's host key. */
  knownHostsPath: string;
  /** A known_hosts listing a different key for the same host:port. */
  wrongKnownHostsPath: string;
  /** A private key the server does not accept. */
  strangerKeyPath: string;
  dir: string;
  stderr(): string;
  close(): Promise<void>;
}

function keygen(path: string): void {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'kompox-test', '-f', path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}`);
    const up = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('sshd did not start listening in time');
}

/** The sshd's PidFile as written so far ('' before it is). */
function readPid(dir: string): string {
  try {
    return readFileSync(join(dir, 'sshd.pid'), 'utf8');
  } catch {
    return '';
  }
}

function setEnvLine(vars: string[]): string[] {
  return vars.length ? [`SetEnv ${vars.join(' ')}`] : [];
}

/**
 * `config`: more sshd_config lines (e.g. `SetEnv PATH=...`, the node's tools
 * another version; a `Subsystem sftp` line replaces internal-sftp).
 * `loginRc`: let bash read the user's ~/.bashrc before each command, as it
 * does when sshd runs it (tests of a login shell that writes first). Without
 * it the sessions start at SHLVL=1, which bash takes as "not the first
 * shell" and skips ~/.bashrc: this machine's root .bashrc runs `pyenv init`
 * and `pyenv virtualenv-init`, 0.3-0.9 s of every command over SSH, which
 * made those waits most of the SSH tests' time (and of CI's).
 */
export async function startSshd(opts: { config?: string[]; loginRc?: boolean } = {}): Promise<Sshd> {
  const dir = mkdtempSync(join(tmpdir(), 'kompox-sshd-'));
  keygen(join(dir, 'host_key'));
  keygen(join(dir, 'other_host_key'));
  keygen(join(dir, 'client_key'));
  keygen(join(dir, 'stranger_key'));
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')), { mode: 0o600 });
  const port = await freePort();
  const user = userInfo().username;
  const hostLine = (pub: string) => `[127.0.0.1]:${port} ${readFileSync(pub, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ')}\n`;
  writeFileSync(join(dir, 'known_hosts'), hostLine(join(dir, 'host_key.pub')));
  writeFileSync(join(dir, 'wrong_known_hosts'), hostLine(join(dir, 'other_host_key.pub')));
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      // unless `config` names another (sshd refuses a second)
      ...((opts.config ?? []).some((l) => /^Subsystem\s+sftp\s/.test(l)) ? [] : ['Subsystem sftp internal-sftp']),
      'LogLevel ERROR',
      // sshd takes only its first SetEnv line: one line with all of them
      ...setEnvLine([...(opts.loginRc ? [] : ['SHLVL=1']), ...(opts.config ?? []).flatMap((l) => (/^SetEnv\s/.test(l) ? l.split(/\s+/).slice(1) : []))]),
      ...(opts.config ?? []).filter((l) => !/^SetEnv\s/.test(l)),
      '',
    ].join('\n'),
  );
  // Run as root, sshd insists on its privilege separation directory.
  if (process.getuid?.() === 0 && !existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755, recursive: true });
  const child = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  try {
    // up to 30 s: patience for a loaded machine (sshd generates nothing, but has to be scheduled)
    await waitForPort(port, child, 30_000);
    // sshd writes its PidFile just after it listens: tests that trace it (k3s-ssh-durable) read it at once
    for (const end = Date.now() + 30_000; !/^\d+\s*$/.test(readPid(dir)) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
  } catch (e) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${(e as Error).message}: ${stderr}`);
  }
  return {
    host: '127.0.0.1',
    port,
    user,
    target: `${user}@127.0.0.1:${port}`,
    keyPath: join(dir, 'client_key'),
    knownHostsPath: join(dir, 'known_hosts'),
    wrongKnownHostsPath: join(dir, 'wrong_known_hosts'),
    strangerKeyPath: join(dir, 'stranger_key'),
    dir,
    stderr: () => stderr,
    close: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
