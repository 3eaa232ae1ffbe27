// HostFs over SSH (SFTP for files, one `exec` for host facts), for kompoxops
// run from a workstation against a K3s node. Loaded only when K3S_SSH is set.
//
// Host keys: with K3S_SSH_KNOWN_HOSTS the server's key must be listed there
// (plain or hashed OpenSSH known_hosts entries). Without it, ~/.ssh/known_hosts
// is consulted: a listed host with a different key is refused; an unlisted
// host is accepted with a warning naming the setting to use.
//
// The SSH agent and the home directory (~ in settings, default key files,
// known_hosts) are the front end's to give (SshOptions.agent/homeDir): the CLI
// passes the user's; a server passes none, so nothing of its own is used.
import { createHmac } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { posix } from 'node:path';
import { PassThrough, pipeline, type Duplex, type Readable, type Writable } from 'node:stream';
import type { Client, ConnectConfig, SFTPWrapper, Stats } from 'ssh2';
import { KompoxError, interruptedError } from '../../domain/errors.js';
import { unlessCancelled } from '../../domain/events.js';
import type { EntryKind, TreeFile, TreeStat } from '../../archive/archive.js';
import { compressingWriter, decompressor } from '../../archive/archive.js';
import { LINK_ZSTD_JOBS, ZSTD_LEVEL } from '../../archive/zstd.js';
import { notUtf8Decoded } from '../../archive/utf8-names.js';
import { GC_EVERY, GarbagePacer, paceByExternal, pacePromptly, pacingPipe } from '../../archive/memory.js';
import { SIGPIPE_STATUS, busyboxShortRead, commandMessages, compressorFailed, compressorFailure, parseTreeBytes, pipeStatus, shellCommand, stderrTail, tarCreateMessages, leftOutGone, tarCreateArgv, tarCreateOutcome, tarDialect, treeBytesArgv, untarScript, type TarDialect } from '../../archive/tar-command.js';
import { SPECIALS_NAMED } from '../../archive/tree-walk.js';
import { KOMPOX_MEMBER_FLAGS, NODE_ZSTD_HINT, nodeArchiveZstd, progressSplitter, syncFileArgv, syncTreeArgv } from './node-commands.js';
import { exitSaid, kindOfMode, syncFailed, type HostFs, type HostRunOptions, type HostRunResult, type HostTarStream, type HostUntarStream } from './hostfs.js';

export interface SshTarget {
  user: string;
  host: string;
  port: number;
}

/** `user@host[:port]` or `user@[v6addr]:port`. */
export function parseSshTarget(s: string): SshTarget {
  const m = /^([^@\s]+)@(\[[^\]]+\]|[^:\s]+)(?::(\d+))?$/.exec(s.trim());
  if (!m) {
    throw new KompoxError('config', `K3S_SSH "${s}" is not of the form user@host[:port]`, {
      field: 'cluster.settings.K3S_SSH',
      hint: 'For example root@k3s.example.com or ubuntu@10.0.0.5:2222.',
    });
  }
  const port = m[3] ? Number(m[3]) : 22;
  if (!(port > 0 && port < 65536)) throw new KompoxError('config', `K3S_SSH port ${m[3]} is out of range`, { field: 'cluster.settings.K3S_SSH' });
  return { user: m[1]!, host: m[2]!.replace(/^\[|\]$/g, ''), port };
}

function expandHome(p: string, homeDir: string | undefined, setting: string): string {
  if (p !== '~' && !p.startsWith('~/')) return p;
  if (!homeDir) throw new KompoxError('config', `${setting} "${p}" names a home directory, which is not available here`, { field: `cluster.settings.${setting}`, hint: 'Use an absolute path.' });
  return p === '~' ? homeDir : `${homeDir}/${p.slice(2)}`;
}

/** Host patterns a known_hosts line uses for this host and port. */
function hostNames(t: SshTarget): string[] {
  return t.port === 22 ? [t.host, `[${t.host}]:22`] : [`[${t.host}]:${t.port}`];
}

function hostMatches(pattern: string, names: string[]): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    if (!salt || !hash) return false;
    return names.some((n) => createHmac('sha1', Buffer.from(salt, 'base64')).update(n).digest('base64') === hash);
  }
  return pattern.split(',').some((p) => names.includes(p));
}

/** Keys (base64 blobs) listed for the target in a known_hosts text; @revoked and @cert-authority lines are skipped. */
export function knownKeys(text: string, t: SshTarget): string[] {
  const names = hostNames(t);
  const keys: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('@')) continue;
    const [hosts, , key] = line.split(/\s+/);
    if (hosts && key && hostMatches(hosts, names)) keys.push(key);
  }
  return keys;
}

export interface SshOptions {
  target: string;
  keyPath?: string;
  knownHosts?: string;
  /** The SSH agent socket to use when no key file is set (the CLI: $SSH_AUTH_SOCK). */
  agent?: string;
  /** Home directory for `~` and the default ~/.ssh keys and known_hosts; absent: none are used. */
  homeDir?: string;
  /** Where warnings go (the operation's event stream). */
  warn?: (msg: string) => void;
  /** How long a stopped transfer's command on the node may take to end before it is killed (default STOP_GRACE_MS; tests shorten it). */
  stopGraceMs?: number;
}

function p<T>(fn: (cb: (err: Error | null | undefined, v?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));
}

const SFTP_NO_SUCH_FILE = 2;
const SFTP_EOF = 1;
/**
 * SSH_FXF_READ | SSH_FXF_WRITE: O_RDWR, without O_CREAT or O_TRUNC
 * (openWatched). Linux opens a FIFO so at once, reader or not (fifo(7)),
 * where O_WRONLY would wait for a reader: one that closed meanwhile.
 */
const SFTP_OPEN_READ_WRITE = 0x03;
const S_IFIFO = 0o010000;
/** How long an SFTP open may go unanswered before openWatched looks at what it opens. */
const OPEN_WATCH_MS = 1000;
/**
 * Bytes per SFTP read request, and how many are in flight at once for one
 * read call: ssh2's own read (and its read stream) keeps one request in
 * flight, so each 64 KiB costs a round trip; pipelining them fills the link.
 * 64 KiB stays under every server's limit on one read (OpenSSH: 256 KiB).
 */
const READ_PIECE = 64 * 1024;
const READS_IN_FLIGHT = 32;
/** Directories of at most this many files (no subdirectories) are removed over SFTP (rmSmallDir), not by a command. */
const SMALL_DIR_FILES = 8;
/** Passes of the SFTP walk over a directory being emptied before its rmdir's failure stands (SshHostFs.rm). */
const RM_PASSES = 3;
/** Files up to this size are read as soon as they are opened (at most this much per file opened ahead). */
const SMALL_FILE_AHEAD = 256 * 1024;
/** Written to stderr after `tar -c` on the node: its exit status (behind `| zstd` the channel's is zstd's). */
const TAR_EXIT_MARK = 'kompox-tar-exit:';
/** The line a command run by run() writes to stderr first (after the login shell's, if any): its process group (what a cancel kills). */
const PGID_MARK = 'kompox-pgid:';
/**
 * Lines of stderr (and bytes of one unended line) the user's login shell
 * may write before the group's line (a warning from its rc files): passed on
 * as the command's stderr. Past them, the command reported no group.
 */
const PGID_LINES = 16;
const PGID_LINE_BYTES = 4096;
/**
 * Written to stderr by groupReported's shell after the command, on a line of
 * its own (after a newline, in case the command's last line had none): the
 * command's exit status. sshd sends a command's exit status only once it has
 * reaped it, and when it reads the end of the command's output first (a
 * loaded node) it can close the channel without it: a listing that had
 * succeeded then failed with "exit code none", and zstd's own failure read
 * as tar's SIGPIPE (exit code 141), a few runs in twenty on this machine
 * under load. This line comes before the output's end. NodeCommand takes it
 * off the end of stderr.
 */
const STATUS_MARK = '\nkompox-status:';
/**
 * The node's compression of a tar stream: zstd's default level, all cores
 * (what `tar -c | zstd -T0 -3` does), with a window of 2^19 bytes instead of
 * level 3's 2^21 when the node's zstd takes the option (1.3.4 and later).
 * The window is what the decompressor here keeps, all of it touched (the
 * node writes one frame): 2.25 MiB with level 3's, 0.75 with this one. The
 * node's stream of the benchmark disk decompressed alone peaks 1.7 MiB lower
 * (61.5 -> 59.8 MiB); the binary's export over SSH, 5 alternating runs: median
 * 98.6 -> 95.9 MiB (issue 11's 100). The link stream is 0.1% larger, and zstd
 * on the node needs 50 MiB less.
 */
export function nodeZstdCommand(tools: { zstdWindowLog?: boolean }): string {
  return tools.zstdWindowLog ? `zstd -T0 -3 --zstd=wlog=${LINK_WINDOW_LOG} -q -c` : 'zstd -T0 -3 -q -c';
}
const LINK_WINDOW_LOG = 19;
/** Prints `zstd:wlog` when the node's zstd takes `--zstd=wlog=` (an empty stream through it), `zstd:` when it has an older zstd. */
export const NODE_ZSTD_PROBE = `if command -v zstd >/dev/null 2>&1; then if zstd --zstd=wlog=${LINK_WINDOW_LOG} -q -c </dev/null >/dev/null 2>&1; then echo zstd:wlog; else echo zstd:; fi; fi`;

/** Prints `head:all-but` when the node's `head -c -N` leaves out the last N bytes (GNU coreutils). */
export const HEAD_PROBE = `if [ "$(printf ab | head -c -1 2>/dev/null)" = a ]; then echo head:all-but; fi`;
/**
 * The status a script wrote after MARK (`echo "MARK$?" >&2`): the last one
 * that starts a line. The tools' messages on the same stderr name the
 * disk's files, and busybox tar does not escape them ("tar: can't open
 * './kompox-tar-exit:0': Permission denied"): a mark inside a line is a
 * file's name, not a status. A match as RegExp.exec gives it ([1]: the status).
 */
function markStatus(text: string, mark: string): RegExpExecArray | undefined {
  let last: RegExpExecArray | undefined;
  for (const m of text.matchAll(new RegExp(`(?:^|\\n)${mark}(\\d+)`, 'g'))) last = m;
  return last;
}
/** Written to stderr after `head` in packedTarScript (before `| zstd`): its exit status. */
const HEAD_EXIT_MARK = 'kompox-head-exit:';
/** What `tar -c -b 1` ends its stream with: the end-of-archive marker, two zero blocks (a record is one block, so no padding). */
const TAR_END_BYTES = 1024;

/**
 * The node packs a disk's archive data itself (export over SSH; the caller
 * is adoptPackedStream in src/archive/tar-stream.ts): GNU tar writes the tree
 * of DIR as Kompox writes members (KOMPOX_MEMBER_FLAGS: pax, under data/,
 * hard links stored as files), `head` cuts off the
 * end-of-archive marker (the manifest goes after the members, in zstd
 * frames of its own), and zstd compresses at the archives' level on every core of
 * the node, with the link's window (nodeZstdCommand). The workstation then
 * only decompresses and hashes. tar's and head's exit statuses go to stderr
 * after them (TAR_EXIT_MARK, HEAD_EXIT_MARK); the command's is zstd's.
 */
export function packedTarScript(dir: string, tools: { zstdWindowLog?: boolean }, level: number = ZSTD_LEVEL): string {
  const tar = shellCommand(['tar', '-c', '-f', '-', '-b', '1', ...KOMPOX_MEMBER_FLAGS, '-C', dir, '.']);
  // the archives' minimum match too at their level (nodeArchiveZstd): the benchmark disk's archive 0.43% smaller, at the same CPU
  const zstd = nodeArchiveZstd(level, tools.zstdWindowLog === true, LINK_WINDOW_LOG);
  return `{ ${tar}; echo "${TAR_EXIT_MARK}$?" >&2; } | { head -c -${TAR_END_BYTES}; echo "${HEAD_EXIT_MARK}$?" >&2; } | ${zstd}`;
}

/** Prints the first member of DIR's tree an archive cannot hold as it is (device, FIFO, socket): none, and the node may pack it. */
export function unpackableArgv(dir: string): string[] {
  return ['sh', '-c', 'find "$1" ! -type f ! -type d ! -type l | head -n 1', 'sh', dir];
}

/** Written to stderr after `zstd -d` on the node (before `| tar -x`): its exit status. */
const UNZSTD_EXIT_MARK = 'kompox-unzstd-exit:';
/**
 * zstd level of a tar stream sent to the node: the fastest, since the
 * workstation's CPUs also decompress and hash the archive being imported;
 * it still shrinks text and logs several times on the link.
 */
const LINK_ZSTD_LEVEL = 1;
/**
 * Input bytes per zstd frame on the link: a quarter of an archive's. The
 * frames in flight (one filling, one compressing per CPU, their output) are
 * an import's memory on top of the archive's own; the link's compression
 * ratio barely changes.
 */
const LINK_ZSTD_FRAME = 256 * 1024;
/**
 * How long a stopped transfer command on the node (`tar -x` getting EOF,
 * `tar -c` its output closed) may take to end before it is killed, its
 * process group (NodeCommand); twice this, before it is given up on.
 */
const STOP_GRACE_MS = 30_000;
/** How long a cancelled command on the node (its group killed) may take to confirm its channel closed, and the kill to run. */
const CANCEL_WAIT_MS = 5000;

/** What the node offers for streaming a tree: its tar (and dialect) and zstd. */
interface NodeTools {
  tar?: TarDialect;
  zstd: boolean;
  /** Its zstd takes `--zstd=wlog=` (nodeZstdCommand). */
  zstdWindowLog?: boolean;
  /** Its `head -c -N` prints all but the last N bytes (GNU coreutils): the node can pack an archive itself (packedTarScript). */
  headAllBut?: boolean;
}

type ExecChannel = Duplex & { stderr: Readable; close(): void };

/**
 * The queue of a channel stream on our side of the link. ssh2 gives both
 * sides of a channel a high-water mark of its whole window (2 MiB), and
 * keeps pushing what the window lets in after the mark is reached: a heap
 * snapshot in the middle of an export over SSH held 106 packets of 32 KiB
 * (3.4 MB) in the channel's read queue, waiting for the packer. Capped at a
 * quarter MiB, what waits is the window in flight and no more (issue 11's
 * 100 MiB); the data moves as fast. ssh2 has no option for it, so this sets
 * the field Node's streams read the mark from; where Node's stream state has
 * no such field, nothing changes.
 */
const CHANNEL_QUEUE = 256 * 1024;
function limitQueue(channel: object, side: '_readableState' | '_writableState'): void {
  const state = (channel as Record<string, { highWaterMark?: unknown } | undefined>)[side];
  if (state && typeof state.highWaterMark === 'number' && state.highWaterMark > CHANNEL_QUEUE) state.highWaterMark = CHANNEL_QUEUE;
}

/**
 * A command line for an exec channel that runs ARGV after writing its
 * process group on the first line of stderr (PGID_MARK; NodeCommand reads
 * it). Closing a channel does not stop what runs in it (a command blocked on
 * a disk, or one that writes nothing, never gets SIGPIPE), and a signal
 * request does not either: ssh2 sends none once the channel's input has
 * ended, and sshd may ignore one (OpenSSH before 7.9 always does) or pass it
 * to the session's shell alone, not the pipeline the shell started. So a
 * command is killed by its group, with `kill` over an exec channel of its own.
 */
function groupReported(argv: readonly string[]): string {
  const status = `printf '${STATUS_MARK.replace('\n', '\\n')}%d\\n' "$s" >&2`;
  return shellCommand(['sh', '-c', `echo "${PGID_MARK}$(cut -d' ' -f5 /proc/$$/stat 2>/dev/null)" >&2; "$@"; s=$?; ${status}; exit $s`, 'sh', ...argv]);
}

/** How a command on an exec channel ended: `closed` of itself, `killed` once its group was, `lost`: given up on (a node gone quiet never confirms an end). */
type CommandEnd = 'closed' | 'killed' | 'lost';

/**
 * A command started with groupReported on an exec channel: its process
 * group, read from its line of stderr (the first, unless the login shell
 * wrote some before: those and the rest of stderr go on to `rest`), how to
 * kill it, and its end: the channel closed (and a kill under way run on the
 * node), the barrier before the caller removes what the command wrote.
 */
class NodeCommand {
  /** Settles once the channel has closed and a kill under way has run (bounded), or once the command was given up on. */
  readonly ended: Promise<CommandEnd>;
  private head: Buffer = Buffer.alloc(0);
  /** Lines passed on before the group's line (the login shell's). */
  private linesBefore = 0;
  /** The group's id; '' when the command reported none (no /proc on the node); undefined until its line came. */
  private pgid: string | undefined;
  /** Stderr past the group's line not passed on yet: what may be the status line (STATUS_MARK) at its end. */
  private tail: Buffer = Buffer.alloc(0);
  /** The command's exit status from its status line, once the channel closed. */
  private reportedStatus: number | undefined;
  /** What the channel said of the command's end (sshd's exit-status or exit-signal), if it did. */
  private channelExit: { code?: number; signal?: string } = {};
  private killWanted = false;
  private killing: Promise<unknown> | undefined;
  private over = false;
  private giveUp = () => undefined as void;
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly channel: ExecChannel,
    private readonly exec: (cmd: string) => Promise<string>,
    private readonly rest: (b: Buffer) => void,
  ) {
    channel.stderr.on('data', (c: Buffer) => this.take(c));
    channel.on('exit', (code: number | null, signal?: string) => {
      this.channelExit = code !== null && code !== undefined ? { code } : signal ? { signal } : {};
    });
    this.ended = new Promise<CommandEnd>((resolve) => {
      const over = () => {
        this.over = true;
        for (const t of this.timers) clearTimeout(t);
      };
      channel.once('close', () => {
        over();
        this.flush();
        const how = this.killWanted ? 'killed' : 'closed';
        // the close can come before the kill has reached every process of the group
        void this.killRun().then(() => resolve(how));
      });
      this.giveUp = () => {
        over();
        resolve('lost');
      };
    });
  }

  /**
   * How the command ended: its exit status as its shell reported it
   * (STATUS_MARK, read once the channel has closed), which counts before the
   * channel's since sshd can lose that; else the channel's exit status or
   * the signal that killed the shell too; neither when nothing came (the
   * connection lost).
   */
  get exit(): { code?: number; signal?: string } {
    return this.reportedStatus !== undefined ? { code: this.reportedStatus } : this.channelExit;
  }

  /** Whether the group is known (its line came): kill() then acts at once. */
  get known(): boolean {
    return this.pgid !== undefined;
  }

  /** Kills the group (at once, or as soon as its line comes) and closes the channel. */
  kill(): void {
    if (this.killWanted) return;
    this.killWanted = true;
    if (this.pgid !== undefined) this.killNow();
  }

  /**
   * A cancel: kill(), the channel's close waited for no longer than
   * CANCEL_WAIT_MS (a connection that died never confirms it, nor sends
   * the group). Settles once the command has ended and the kill has run on
   * the node (bounded as well), or those waits gave up.
   */
  async cancel(): Promise<void> {
    this.kill();
    this.after(CANCEL_WAIT_MS, () => {
      this.channel.close();
      this.giveUp();
    });
    if ((await this.ended) === 'lost') await this.killRun();
  }

  /** On `signal`'s abort (a cancel): `first` (the caller's own stop of its streams), then cancel(). Unhooked once the command has ended. */
  cancelOn(signal: AbortSignal | undefined, first: () => void): void {
    const cancel = () => {
      first();
      void this.cancel();
    };
    if (signal?.aborted) cancel();
    else if (signal) {
      signal.addEventListener('abort', cancel, { once: true });
      void this.ended.then(() => signal.removeEventListener('abort', cancel));
    }
  }

  /**
   * After a stop a healthy command ends of (EOF on its input, its output
   * closed): kill() when the channel has not closed within graceMs, and the
   * command given up on (`lost`) when it has not within as long again.
   */
  stopped(graceMs: number): void {
    this.after(graceMs, () => this.kill());
    this.after(2 * graceMs, () => this.giveUp());
  }

  /**
   * At the end: passes on a first line of stderr that never ended (the
   * command ended before it wrote a whole one) as the command's own, and
   * takes the status line off the end of the rest.
   */
  flush(): void {
    if (this.pgid === undefined) {
      if (!this.head.length) return;
      this.rest(this.head);
      this.head = Buffer.alloc(0);
      return;
    }
    const line = this.tail.toString('latin1');
    if (line.startsWith(STATUS_MARK) && /^\d+\n$/.test(line.slice(STATUS_MARK.length))) this.reportedStatus = Number.parseInt(line.slice(STATUS_MARK.length), 10);
    else if (this.tail.length) this.rest(this.tail);
    this.tail = Buffer.alloc(0);
  }

  /**
   * Stderr past the group's line: passed on but for what may be the status
   * line at its end (from the last STATUS_MARK followed by a few digits at most,
   * or a start of the mark), kept until more comes or the end (flush).
   */
  private passOn(c: Buffer): void {
    const all = this.tail.length ? Buffer.concat([this.tail, c]) : c;
    let keep = all.length;
    const at = all.lastIndexOf(STATUS_MARK);
    if (at >= 0 && /^\d{0,10}\n?$/.test(all.toString('latin1', at + STATUS_MARK.length))) keep = at;
    else {
      // a mark split across chunks: the longest end of ALL that starts it
      for (let n = Math.min(STATUS_MARK.length - 1, all.length); n > 0; n--) {
        if (all.toString('latin1', all.length - n) === STATUS_MARK.slice(0, n)) {
          keep = all.length - n;
          break;
        }
      }
    }
    if (keep > 0) this.rest(all.subarray(0, keep));
    this.tail = Buffer.from(all.subarray(keep));
  }

  /** Settles once the kill sent (if any) has run on the node, or after CANCEL_WAIT_MS: a node gone quiet never confirms it. */
  private async killRun(): Promise<void> {
    let t: NodeJS.Timeout | undefined;
    await Promise.race([this.killing, new Promise((r) => (t = setTimeout(r, CANCEL_WAIT_MS)))]);
    clearTimeout(t);
  }

  private after(ms: number, fn: () => void): void {
    if (!this.over) this.timers.push(setTimeout(fn, ms));
  }

  private take(c: Buffer): void {
    if (this.pgid !== undefined) return this.passOn(c);
    this.head = this.head.length ? Buffer.concat([this.head, c]) : c;
    for (;;) {
      const nl = this.head.indexOf(10);
      if (nl < 0) {
        if (this.head.length > PGID_LINE_BYTES) this.reported('');
        return;
      }
      // the shell's text before it on the line (one unended line of an rc) stays stderr
      const at = this.head.subarray(0, nl).indexOf(PGID_MARK);
      if (at >= 0) {
        const before = this.head.subarray(0, at);
        const pgid = this.head.toString('utf8', at + PGID_MARK.length, nl).trim();
        this.head = this.head.subarray(nl + 1);
        if (before.length) this.rest(Buffer.concat([before, Buffer.from('\n')]));
        return this.reported(pgid);
      }
      // a line of the login shell's, before the command started
      this.rest(this.head.subarray(0, nl + 1));
      this.head = this.head.subarray(nl + 1);
      if (++this.linesBefore >= PGID_LINES) return this.reported('');
    }
  }

  /** The group is known (or '': none came); what is left of the head is the command's stderr. */
  private reported(pgid: string): void {
    this.pgid = pgid;
    const more = this.head;
    this.head = Buffer.alloc(0);
    if (more.length) this.passOn(more);
    if (this.killWanted) this.killNow();
  }

  private killNow(): void {
    // never 0 or 1: `kill -- -1` is every process the user may signal
    if (/^\d+$/.test(this.pgid ?? '') && Number(this.pgid) > 1) this.killing ??= this.exec(`kill -KILL -- -${this.pgid}`).catch(() => undefined);
    this.channel.close();
  }
}

/**
 * The failure of a command (WHAT: `tar -x into DIR on HOST`) stopped with
 * NodeCommand.stopped that had to be killed or was given up on; undefined
 * when it ended of the stop itself (its own status then says how).
 */
function stopFailure(what: string, end: CommandEnd, graceMs: number, messages: string): Error | undefined {
  if (end === 'lost') return new Error(`${what} did not end within ${(2 * graceMs) / 1000} s of being stopped`);
  if (end === 'killed') return new Error(`${what} was killed: it did not end within ${graceMs / 1000} s of being stopped${messages}`);
  return undefined;
}

export async function connectSshHostFs(opts: SshOptions): Promise<HostFs> {
  const t = parseSshTarget(opts.target);
  const warn = opts.warn ?? (() => undefined);
  // ssh2's client module alone: its index also loads its HTTP agents (with
  // node's http, https and tls), its server and its key generator, 3.5 MiB
  // of code that every data command over SSH would carry to its peak
  // (issue 11's 100 MiB). ssh2 has no "exports" map, and its version is pinned.
  const SshClient = createRequire(import.meta.url)('ssh2/lib/client.js') as new () => Client;

  let explicitHosts: string[] | undefined;
  let defaultHosts: string[] = [];
  if (opts.knownHosts) {
    const path = expandHome(opts.knownHosts, opts.homeDir, 'K3S_SSH_KNOWN_HOSTS');
    try {
      explicitHosts = knownKeys(readFileSync(path, 'utf8'), t);
    } catch (e) {
      throw new KompoxError('config', `cannot read K3S_SSH_KNOWN_HOSTS ${path}: ${(e as Error).message}`, { field: 'cluster.settings.K3S_SSH_KNOWN_HOSTS' });
    }
  } else if (opts.homeDir) {
    try {
      defaultHosts = knownKeys(readFileSync(`${opts.homeDir}/.ssh/known_hosts`, 'utf8'), t);
    } catch {
      defaultHosts = [];
    }
  }

  const config: ConnectConfig = { host: t.host, port: t.port, username: t.user, readyTimeout: 20000 };
  /** The file config.privateKey was read from. */
  let keyFile: string | undefined;
  if (opts.keyPath) {
    const path = expandHome(opts.keyPath, opts.homeDir, 'K3S_SSH_KEY');
    try {
      config.privateKey = readFileSync(path);
      keyFile = path;
    } catch (e) {
      throw new KompoxError('config', `cannot read K3S_SSH_KEY ${path}: ${(e as Error).message}`, { field: 'cluster.settings.K3S_SSH_KEY' });
    }
  } else if (opts.agent) {
    config.agent = opts.agent;
  } else if (opts.homeDir) {
    for (const f of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
      try {
        config.privateKey = readFileSync(`${opts.homeDir}/.ssh/${f}`);
        keyFile = `~/.ssh/${f}`;
        break;
      } catch {
        /* try the next */
      }
    }
  }
  if (!config.privateKey && !config.agent) {
    throw new KompoxError('auth', `no SSH key to log in to ${opts.target}`, {
      field: 'cluster.settings.K3S_SSH_KEY',
      hint: 'Set K3S_SSH_KEY to a private key file, or start ssh-agent with the key loaded.',
    });
  }
  let hostKeyProblem: string | undefined;
  config.hostVerifier = (key: Buffer) => {
    const b64 = key.toString('base64');
    if (explicitHosts) {
      if (explicitHosts.includes(b64)) return true;
      hostKeyProblem = explicitHosts.length
        ? `the host key of ${t.host}:${t.port} does not match ${opts.knownHosts}`
        : `${t.host}:${t.port} is not listed in ${opts.knownHosts}`;
      return false;
    }
    if (defaultHosts.length) {
      if (defaultHosts.includes(b64)) return true;
      hostKeyProblem = `the host key of ${t.host}:${t.port} does not match ~/.ssh/known_hosts (possible man-in-the-middle)`;
      return false;
    }
    warn(`the SSH host key of ${t.host}:${t.port} is not verified; set K3S_SSH_KNOWN_HOSTS to a known_hosts file listing it`);
    return true;
  };

  const conn = new SshClient();
  await new Promise<void>((resolve, reject) => {
    conn.once('ready', () => resolve());
    // on, not once: ssh2 may emit a second error as it drops a failed handshake (an answer that is not
    // SSH-2 or the handshake's timeout, then "Connection lost before handshake"); one left unheard crashed
    // the CLI with a stack trace after its error line, leaving an export's temp file. The first one is told,
    // and the connection dropped at once: a server that keeps it open held the process until ssh2's
    // handshake timer (20 s) after the error was already known.
    conn.on('error', (err: Error & { level?: string }) => {
      conn.destroy();
      if (hostKeyProblem) {
        reject(new KompoxError('auth', `refusing to connect over SSH: ${hostKeyProblem}`, { field: 'cluster.settings.K3S_SSH_KNOWN_HOSTS' }));
      } else if (err.level === 'client-authentication') {
        reject(new KompoxError('auth', `SSH login to ${opts.target} was refused`, { hint: 'Check K3S_SSH (user) and K3S_SSH_KEY (key in the user\'s authorized_keys).' }));
      } else {
        reject(new KompoxError('unavailable', `cannot reach the K3s node over SSH at ${t.host}:${t.port}: ${err.message}`, { field: 'cluster.settings.K3S_SSH' }));
      }
    });
    try {
      conn.connect(config);
    } catch (e) {
      // ssh2 parses the key here and throws: a key protected by a passphrase, or a file that is no
      // private key, was an unexpected error ("Cannot parse privateKey: ...") without the file's name
      reject(
        new KompoxError('config', `cannot use the SSH key ${keyFile ?? ''} to log in to ${opts.target}: ${(e as Error).message.replace(/^Cannot parse privateKey: /, '')}`, {
          code: 'k3s.ssh.key',
          field: 'cluster.settings.K3S_SSH_KEY',
          hint: 'K3S_SSH_KEY must name an OpenSSH private key without a passphrase; for a key with one, load it into ssh-agent (ssh-add) and leave K3S_SSH_KEY unset.',
        }),
      );
    }
  });
  conn.on('error', () => undefined); // late errors surface on the next operation
  // SFTP is request/response: with Nagle's algorithm on, a small request
  // waits for the ACK of the previous packet (delayed up to 40 ms), so every
  // lstat/open/read took ~40 ms even on loopback.
  conn.setNoDelay(true);
  const sftp = failingOnceClosed(await p<SFTPWrapper>((cb) => conn.sftp(cb)), conn);
  const exec = async (cmd: string): Promise<string> => {
    const stream = await p<NodeJS.ReadableStream & { stderr: NodeJS.ReadableStream }>((cb) => conn.exec(cmd, cb as never));
    let out = '';
    stream.on('data', (d: Buffer) => (out += d.toString('utf8')));
    stream.stderr.resume();
    await new Promise((r) => stream.on('close', r));
    return out.trim();
  };
  const uid = await exec('id -u').catch(() => '');
  return new SshHostFs(conn, sftp, `ssh ${t.user}@${t.host}:${t.port}`, uid === '0', exec, opts.stopGraceMs ?? STOP_GRACE_MS);
}

/** The error code of a connection lost (failingOnceClosed, SshHostFs.lostDuring), and what to do. */
const LOST = 'k3s.ssh.lost';
const LOST_HINT = 'Check that the node is up and reachable over SSH, then run the command again.';

/**
 * The SFTP session, whose requests fail at once once the connection has
 * closed (the node rebooted, its sshd killed, the network cut). ssh2 fails
 * the requests in flight then ("No response from server") but queues any
 * later one forever: a step after the loss (an export's look whether its
 * disk was deleted meanwhile) waited on a callback that never came, and with
 * nothing else left to run, the CLI exited with code 13, no error and its
 * export's temp file left. The stream factories are given the guarded
 * session (their streams' opens and reads go through it).
 */
function failingOnceClosed(sftp: SFTPWrapper, conn: Client): SFTPWrapper {
  let closed = false;
  conn.once('close', () => (closed = true));
  sftp.once('close', () => (closed = true));
  // by the function (a test may replace one of the session's methods)
  const guarded = new WeakMap<object, unknown>();
  const proxy: SFTPWrapper = new Proxy(sftp, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== 'function') return v;
      let g = guarded.get(v);
      if (!g) {
        const self = prop === 'createReadStream' || prop === 'createWriteStream' ? proxy : target;
        // a request's callback is its last argument (an event listener's is not a request's)
        const request = !(prop in EventEmitter.prototype);
        g = (...args: unknown[]) => {
          const cb = args[args.length - 1];
          if (closed && request && typeof cb === 'function') {
            process.nextTick(() => (cb as (e: Error) => void)(new KompoxError('unavailable', 'the SSH connection to the node was lost', { code: LOST, hint: LOST_HINT })));
            return false;
          }
          return (v as (...a: unknown[]) => unknown).apply(self, args);
        };
        guarded.set(v, g);
      }
      return g;
    },
  });
  return proxy;
}

class SshHostFs implements HostFs {
  private tools?: Promise<NodeTools>;
  /** sftp-server leaves out of a listing every entry whose path reaches PATH_MAX (src/archive/path-length.ts). */
  readonly dropsLongPaths = true;

  constructor(
    private readonly conn: Client,
    private readonly sftp: SFTPWrapper,
    readonly describe: string,
    readonly canChown: boolean,
    private readonly exec: (cmd: string) => Promise<string>,
    /** STOP_GRACE_MS unless told otherwise (SshOptions.stopGraceMs). */
    private readonly stopGraceMs: number,
  ) {
    // ssh2's packets and their encrypted copies come on top of the data
    // path's own buffers: no paced GC waits on the headroom (RSS_CEILING)
    pacePromptly();
    conn.once('end', () => (this.lost = true));
    conn.once('close', () => (this.lost = true));
  }

  /** The connection has ended (lost, or closed by close()). */
  private lost = false;

  /**
   * WHAT cut short by the connection's loss (the node rebooted, its sshd
   * killed, the network cut): said as such, not as the command's failure
   * ("exit code none") nor as a tar that "did not finish" with advice about
   * the files the SSH user may read.
   */
  private lostDuring(what?: string): KompoxError {
    return new KompoxError('unavailable', `the SSH connection to the node (${this.describe}) was lost ${what ? `during ${what}` : 'before its command ended'}`, { code: LOST, hint: LOST_HINT });
  }

  private wrap(op: string, path: string, e: unknown): Error {
    // the connection lost (failingOnceClosed): an error of its own, not one of the file's
    if (e instanceof KompoxError && e.code === LOST) return new KompoxError('unavailable', `${op} ${path} on ${this.describe}: ${e.message}`, { code: LOST, hint: LOST_HINT });
    const err = e as Error & { code?: number | string };
    const out = new Error(`${op} ${path} on ${this.describe}: ${err.message}`) as NodeJS.ErrnoException;
    out.code = err.code === SFTP_NO_SUCH_FILE ? 'ENOENT' : String(err.code ?? '');
    return out;
  }

  async lstat(path: string): Promise<TreeStat | undefined> {
    try {
      const s = await p<Stats>((cb) => this.sftp.lstat(path, cb));
      return { kind: kindOfMode(s.mode), mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, size: s.size, mtimeMs: s.mtime * 1000 };
    } catch (e) {
      if ((e as { code?: number }).code === SFTP_NO_SUCH_FILE) return undefined;
      throw this.wrap('lstat', path, e);
    }
  }
  async readdir(path: string): Promise<string[]> {
    const list = await p<Array<{ filename: string }>>((cb) => this.sftp.readdir(path, cb)).catch((e) => {
      throw this.wrap('readdir', path, e);
    });
    return list.map((e) => e.filename).filter((n) => n !== '.' && n !== '..');
  }
  /** The names as the server sends them, a READDIR reply (about 100 with OpenSSH) at a time. */
  async *readdirStream(path: string): AsyncGenerator<string> {
    const handle = await p<Buffer>((cb) => this.sftp.opendir(path, cb)).catch((e) => {
      throw this.wrap('readdir', path, e);
    });
    try {
      for (;;) {
        let list: Array<{ filename: string }>;
        try {
          list = await p<Array<{ filename: string }>>((cb) => this.sftp.readdir(handle, cb));
        } catch (e) {
          if ((e as { code?: number }).code === SFTP_EOF) return;
          throw this.wrap('readdir', path, e);
        }
        for (const e of list) if (e.filename !== '.' && e.filename !== '..') yield e.filename;
      }
    } finally {
      await p<void>((cb) => this.sftp.close(handle, cb)).catch(() => undefined);
    }
  }
  /**
   * ssh2 decodes the target as UTF-8, so the bytes of one that is not are
   * gone (U+FFFD in their place): archived as text, the symlink would point
   * elsewhere once restored. Any target holding U+FFFD is refused here, a
   * real one too (it cannot be told apart): SFTP is only the fallback for a
   * node without a usable tar, where the tar paths carry the bytes and tell
   * the two apart (tar-decode.ts), and a target holding U+FFFD itself is rare.
   */
  async readlink(path: string): Promise<string> {
    const target = await p<string>((cb) => this.sftp.readlink(path, cb));
    if (target.includes('\uFFFD')) throw notUtf8Decoded(posix.dirname(path), target, posix.basename(path));
    return target;
  }
  /**
   * A file for packing, read with many SFTP requests in flight (see
   * READ_PIECE). SFTP v3 cannot open without following symlinks, in the
   * last component or any parent, and a tenant's pod may swap either for a
   * symlink to a node file and back around the open: what was opened
   * (fstat of the handle) must be a regular file of the listed owner
   * (opened as root, anything is readable), and the path still a file
   * after the open. Otherwise the file was replaced since the listing (a
   * live disk) and is left out, as a deleted one is.
   *
   * Not the permission bits: a file's owner can set them to anything (no
   * check against the tenant), and a chmod on a live disk is legitimate.
   * Residual: SFTP's attributes carry no inode, so a symlink to another
   * regular file of the same owner and group passes (one of the tenant's
   * uid on the node; any node file, when the pod may chown, e.g. root
   * without a user namespace). And the walk's own listing goes by path: a
   * parent swapped before the walk enters it lists the target's files with
   * their own owners, which then pass (SFTP v3 has no lookup relative to
   * a handle). Only nodes without tar pack through here.
   */
  async openFile(path: string, listed: TreeStat): Promise<TreeFile | undefined> {
    const size = listed.size;
    let handle: Buffer;
    try {
      handle = await this.openWatched(path);
    } catch (e) {
      if ((e as { code?: number }).code === SFTP_NO_SUCH_FILE) return undefined;
      throw this.wrap('open', path, e);
    }
    const closeHandle = () => p<void>((cb) => this.sftp.close(handle, cb));
    const [opened, st] = await Promise.all([
      p<Stats>((cb) => this.sftp.fstat(handle, cb)).catch(() => undefined),
      this.lstat(path).catch(() => undefined),
    ]);
    if (!opened || kindOfMode(opened.mode) !== 'file' || opened.uid !== listed.uid || opened.gid !== listed.gid || st?.kind !== 'file') {
      await closeHandle().catch(() => undefined);
      return undefined;
    }
    const sftp = this.sftp;
    const piece = (buf: Buffer, offset: number, length: number, position: number) =>
      p<number>((cb) =>
        sftp.read(handle, buf, offset, length, position, (err, n) => {
          // ssh2's packets (off the socket, decrypted), garbage once copied into buf: EXTERNAL_GARBAGE
          paceByExternal();
          cb(err, n);
        }),
      );
    /** Reads [position, position + length) with up to READS_IN_FLIGHT requests at once; fewer bytes only at the end of the file. */
    const readPipelined = async (buf: Buffer, offset: number, length: number, position: number): Promise<number> => {
      let done = 0;
      while (done < length) {
        // A window of requests; the count is the contiguous bytes from the start (a short piece ends it).
        const wants: Array<{ len: number; got: Promise<number> }> = [];
        for (let at = done; at < length && wants.length < READS_IN_FLIGHT; at += READ_PIECE) {
          const len = Math.min(READ_PIECE, length - at);
          const got = piece(buf, offset + at, len, position + at);
          got.catch(() => undefined); // awaited below, in order
          wants.push({ len, got });
        }
        for (const w of wants) {
          const n = await w.got.catch((e: unknown) => {
            throw this.wrap('read', path, e);
          });
          done += n;
          if (n < w.len) {
            await Promise.allSettled(wants.map((x) => x.got)); // no request still writing into buf
            return done;
          }
        }
      }
      return done;
    };
    // A small file's content is requested right away (packing opens files
    // ahead of the one it packs), so it is usually here when its turn comes.
    let head: Promise<Buffer> | undefined;
    if (size > 0 && size <= SMALL_FILE_AHEAD) {
      const buf = Buffer.allocUnsafe(size);
      head = readPipelined(buf, 0, size, 0).then((n) => buf.subarray(0, n));
      head.catch(() => undefined); // awaited by read()
    }
    return {
      read: async (buf, offset, length, position) => {
        if (head && position < size) {
          const got = await head;
          if (position < got.length) return got.copy(buf, offset, position, Math.min(got.length, position + length));
          if (got.length < size) return 0; // the file shrank: its end
        }
        return readPipelined(buf, offset, length, position);
      },
      // Not waited for: nothing depends on it, and waiting costs a round trip per file.
      close: async () => void closeHandle().catch(() => undefined),
    };
  }
  /**
   * SFTP's open of PATH for reading. sftp-server opens without O_NONBLOCK,
   * so a FIFO put in a listed file's place (a tenant's pod may) makes the
   * open wait for a writer, and the whole session with it (the server
   * answers in order): the export hung for good. An open that has not
   * answered within OPEN_WATCH_MS is looked at from a second SFTP session:
   * a FIFO there is opened for reading and writing (which never waits; no
   * create, no truncate, nothing written) and closed, which lets the
   * waiting open return; openFile's fstat then
   * leaves it out as a replaced file. Anything else (a slow disk) is waited
   * for, looked at again each OPEN_WATCH_MS.
   */
  private async openWatched(path: string): Promise<Buffer> {
    const opening = p<Buffer>((cb) => this.sftp.open(path, 'r', cb));
    const answered = async () => {
      let timer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([opening.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), OPEN_WATCH_MS)))]);
      } finally {
        clearTimeout(timer);
      }
    };
    if (await answered()) return opening;
    let side: SFTPWrapper | undefined;
    try {
      side = await p<SFTPWrapper>((cb) => this.conn.sftp(cb));
      const other = side;
      do {
        const st = await p<Stats>((cb) => other.lstat(path, cb)).catch(() => undefined);
        if (st && (st.mode & 0o170000) === S_IFIFO) {
          const w = await p<Buffer>((cb) => other.open(path, SFTP_OPEN_READ_WRITE, cb)).catch(() => undefined);
          if (w) await p<void>((cb) => other.close(w, cb)).catch(() => undefined);
        }
      } while (!(await answered()));
    } catch {
      // no second session (the server's limit): wait for the open as it is
    } finally {
      side?.end();
    }
    return opening;
  }
  openRead(path: string): Readable {
    return this.sftp.createReadStream(path) as unknown as Readable;
  }
  openWrite(path: string, mode: number): Writable {
    const ws = this.sftp.createWriteStream(path, { flags: 'wx', mode }) as unknown as Writable;
    // each write leaves ssh2's packet and its encrypted copy behind: EXTERNAL_GARBAGE
    const write = ws._write;
    const writev = ws._writev;
    ws._write = function (chunk: Buffer, encoding, cb) {
      paceByExternal();
      write.call(this, chunk, encoding, cb);
    };
    if (writev) {
      ws._writev = function (chunks, cb) {
        paceByExternal();
        writev.call(this, chunks, cb);
      };
    }
    return ws;
  }
  async mkdir(path: string, mode: number): Promise<void> {
    await p<void>((cb) => this.sftp.mkdir(path, { mode }, cb)).catch((e) => {
      throw this.wrap('mkdir', path, e);
    });
  }
  async mkdirp(path: string, mode = 0o755): Promise<void> {
    const parts = path.split('/').filter(Boolean);
    let cur = '';
    for (const part of parts) {
      cur += `/${part}`;
      const st = await this.lstat(cur);
      if (st?.kind === 'dir') continue;
      await this.mkdir(cur, mode).catch(async (e) => {
        if ((await this.lstat(cur))?.kind !== 'dir') throw e;
      });
    }
  }
  async symlink(target: string, path: string): Promise<void> {
    await p<void>((cb) => this.sftp.symlink(target, path, cb));
  }
  async chmod(path: string, mode: number): Promise<void> {
    await p<void>((cb) => this.sftp.chmod(path, mode, cb));
  }
  async setTimes(path: string, mtimeMs: number, kind: EntryKind): Promise<void> {
    const t = Math.floor(mtimeMs / 1000); // SFTP v3 carries whole seconds
    // ... as an unsigned 32-bit number: a time before 1970 or after 2106 would arrive changed (2200 as
    // 2063), so the node's touch sets it (rare: no round trip more for the usual times)
    if (t < 0 || t > 0xffffffff) return this.touch(path, t);
    if (kind === 'symlink') {
      // setstat follows symlinks; only OpenSSH's lsetstat extension does not.
      const lset = (this.sftp as unknown as { ext_openssh_lsetstat?: (p: string, a: object, cb: (e?: Error) => void) => void }).ext_openssh_lsetstat;
      try {
        if (lset) await p<void>((cb) => lset.call(this.sftp, path, { atime: t, mtime: t }, cb));
      } catch {
        /* not supported: the link's own mtime is not preserved */
      }
      return;
    }
    await p<void>((cb) => this.sftp.utimes(path, t, t, cb));
  }
  /** Sets atime and mtime of `path` (never through a symlink) to `t` seconds with the node's touch. */
  private async touch(path: string, t: number): Promise<void> {
    const said = await this.exec(`${shellCommand(['touch', '-h', '-d', `@${t}`, '--', path])} && echo kompox-touched`).catch((e: unknown) => String(e));
    if (said !== 'kompox-touched') {
      throw new KompoxError('unavailable', `setting the mtime of ${path} on ${this.describe} to ${new Date(t * 1000).toISOString()} failed: SFTP carries only times from 1970 to 2106, and the node's touch -h -d @${t} did not succeed${said ? ` (${said})` : ''}`, {
        code: 'k3s.sftp.mtime',
        hint: "The node needs a touch that sets a time given in seconds since 1970, a symlink's own included (GNU coreutils' or busybox's), or a tar (then no SFTP is used).",
        details: { path, mtime: t },
      });
    }
  }
  async lchown(path: string, uid: number, gid: number): Promise<void> {
    const st = await this.lstat(path);
    if (st?.kind === 'symlink') {
      const lset = (this.sftp as unknown as { ext_openssh_lsetstat?: (p: string, a: object, cb: (e?: Error) => void) => void }).ext_openssh_lsetstat;
      if (lset) await p<void>((cb) => lset.call(this.sftp, path, { uid, gid }, cb)).catch(() => undefined);
      return;
    }
    await p<void>((cb) => this.sftp.chown(path, uid, gid, cb));
  }
  async rename(from: string, to: string): Promise<void> {
    if (await this.lstat(to)) {
      const e = new Error(`${to} already exists`) as NodeJS.ErrnoException;
      e.code = 'EEXIST';
      throw e;
    }
    // Plain SFTP rename, not posix-rename: it never replaces an existing target.
    await p<void>((cb) => this.sftp.rename(from, to, cb)).catch((e) => {
      throw this.wrap('rename', from, e);
    });
  }
  async rm(path: string): Promise<void> {
    const st = await this.lstat(path);
    if (!st) return;
    if (st.kind === 'dir') {
      if (await this.rmSmallDir(path, st.mode)) return;
      // A disk's tree in one command on the node (SFTP needs a round trip per
      // file: seconds for a few thousand); its read-only directories (modes
      // from an archive) made writable first. What that could not remove
      // (or a node without rm) falls to the walk below.
      await this.exec(shellCommand(['sh', '-c', 'chmod -R u+rwx -- "$1" 2>/dev/null; rm -rf -- "$1"', 'sh', path])).catch(() => undefined);
      if (!(await this.lstat(path))) return;
      // Restored trees may hold read-only directories (modes from the archive).
      if ((st.mode & 0o700) !== 0o700) await this.chmod(path, st.mode | 0o700).catch(() => undefined);
      // The names as the server sends them, never a big directory's whole listing at once. Whether a
      // directory read while its entries go still returns every other one is unspecified (POSIX
      // readdir), so a directory that is not empty after a pass gets another.
      for (let pass = 1; ; pass++) {
        for await (const name of this.readdirStream(path)) await this.rm(`${path}/${name}`);
        try {
          await p<void>((cb) => this.sftp.rmdir(path, cb));
          return;
        } catch (e) {
          if (pass === RM_PASSES) throw this.wrap('rmdir', path, e);
        }
      }
    } else {
      await p<void>((cb) => this.sftp.unlink(path, cb));
    }
  }
  /**
   * Removes a writable directory of a few files (a snapshot's manifest
   * directory) over SFTP, in a few round trips of a millisecond or so, where
   * a command costs a session on the node (80-90 ms here: a quarter of
   * what a level 1 snapshot of the benchmark disk spends after tar). False,
   * with nothing or part of it removed, for anything else.
   */
  private async rmSmallDir(path: string, mode: number): Promise<boolean> {
    if ((mode & 0o700) !== 0o700) return false;
    try {
      // no more of the listing than decides it (a directory of 200,000 files is not read whole to say no)
      const names: string[] = [];
      for await (const name of this.readdirStream(path)) {
        if (names.length === SMALL_DIR_FILES) return false;
        names.push(name);
      }
      const kinds = await Promise.all(names.map((n) => this.lstat(`${path}/${n}`)));
      if (kinds.some((k) => !k || k.kind === 'dir')) return false;
      await Promise.all(names.map((n) => p<void>((cb) => this.sftp.unlink(`${path}/${n}`, cb))));
      await p<void>((cb) => this.sftp.rmdir(path, cb));
      return true;
    } catch {
      return false;
    }
  }
  async readFile(path: string): Promise<Buffer> {
    return p<Buffer>((cb) => this.sftp.readFile(path, cb as never));
  }
  async writeFileAtomic(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
    const tmp = `${path}.tmp-${Math.random().toString(36).slice(2, 10)}`;
    try {
      await new Promise<void>((resolve, reject) => {
        const ws = this.openWrite(tmp, mode);
        ws.once('error', reject);
        ws.once('close', () => resolve());
        ws.end(data);
      });
      await this.syncFile(tmp);
      await this.rename(tmp, path);
    } catch (e) {
      await this.rm(tmp).catch(() => undefined);
      throw e;
    }
  }
  syncFile(path: string): Promise<void> {
    return this.fsync(path, syncFileArgv(path));
  }
  syncDir(path: string): Promise<void> {
    return this.fsync(path, syncFileArgv(path));
  }
  async syncTree(dir: string): Promise<void> {
    await this.syncCommand(dir, syncTreeArgv(dir));
  }
  /**
   * fsync(2) on the node through SFTP's fsync@openssh.com, on a handle opened
   * for reading (sftp-server opens a directory so too, and fsyncs whatever
   * its handle is): two round trips, no command session (0.1-0.2 s). A
   * server without it: `fallback`, a sync command (syncFileArgv).
   */
  private async fsync(path: string, fallback: string[]): Promise<void> {
    const sftp = this.sftp as unknown as { _extensions?: Record<string, string>; ext_openssh_fsync(h: Buffer, cb: (e?: Error | null) => void): void };
    if (sftp._extensions?.['fsync@openssh.com'] !== '1') return this.syncCommand(path, fallback);
    const handle = await p<Buffer>((cb) => this.sftp.open(path, 'r', cb)).catch((e) => {
      throw this.wrap('open', path, e);
    });
    try {
      await p<void>((cb) => sftp.ext_openssh_fsync(handle, (e) => cb(e))).catch((e) => {
        // sftp-server says only "Failure": the errno is on the node
        throw this.wrap('fsync', path, e);
      });
    } finally {
      await p<void>((cb) => this.sftp.close(handle, cb)).catch(() => undefined);
    }
  }
  private async syncCommand(path: string, argv: string[]): Promise<void> {
    const r = await this.run(argv);
    if (r.code !== 0) throw syncFailed(`${path} on ${this.describe}`, r.stderr.trim() || `exit status ${r.code}`);
  }
  /** The node's name, asked once per connection (a command costs a session on the node: 0.1-0.2 s). */
  hostname(): Promise<string> {
    this.nodeName ??= this.exec('hostname').catch((e: unknown) => {
      this.nodeName = undefined;
      throw e;
    });
    return this.nodeName;
  }
  private nodeName: Promise<string> | undefined;

  /**
   * The reader going away before cat's end (a cancel, a failure downstream)
   * kills it, its whole process group (NodeCommand): closing the channel
   * does not stop a cat blocked on a disk that stopped answering (or opening
   * a FIFO). The stream's 'close' waits until it is gone (bounded, see
   * NodeCommand.cancel), so nothing of it outlives the transfer.
   */
  async streamFile(path: string): Promise<Readable> {
    const channel = await p<ExecChannel>((cb) => this.conn.exec(groupReported(['cat', '--', path]), cb as never));
    channel.end();
    const err = stderrTail();
    // stderr but for the group's line: cat's messages
    const command = new NodeCommand(channel, this.exec, (b) => err.stream.write(b));
    let closed = false;
    const out = new PassThrough({
      highWaterMark: 1024 * 1024,
      destroy: (e, cb) => {
        if (closed) return cb(e);
        // what is still queued is read into nothing, so the channel ends
        channel.unpipe(out);
        channel.resume();
        void command.cancel().then(() => cb(e));
      },
    });
    channel.on('error', (e: Error) => out.destroy(e));
    channel.pipe(out, { end: false });
    channel.once('close', () => {
      closed = true;
      const exit = command.exit;
      if (exit.code === 0) out.end();
      else if (exit.code === undefined && !exit.signal && this.lost) out.destroy(this.lostDuring(`reading ${path}`));
      else out.destroy(new Error(`reading ${path} on ${this.describe} failed (${exitSaid(exit)})${err.text() ? `: ${err.text()}` : ''}`));
    });
    return out;
  }

  /**
   * One command on an exec channel, its stdout collected. The command first
   * reports its process group on stderr: closing a channel does not stop
   * what runs in it, so a cancel kills the group (the whole pipeline; see
   * NodeCommand).
   */
  async run(argv: readonly string[], opts: HostRunOptions = {}): Promise<HostRunResult> {
    const signal = opts.signal;
    if (signal?.aborted) throw new Error(`${argv[0]} on ${this.describe} was cancelled`);
    const channel = await p<ExecChannel>((cb) => this.conn.exec(groupReported(argv), cb as never));
    const out: Buffer[] = [];
    const sink = opts.stdout;
    channel.on('data', (c: Buffer) => (sink ? sink(c) : out.push(c)));
    const err = stderrTail();
    // progress lines go to the caller, never to the tail (see HostRunOptions.progress)
    const lines = opts.progress ? progressSplitter(opts.progress.mark, opts.progress.report, (b) => err.stream.write(b)) : undefined;
    const command = new NodeCommand(channel, this.exec, (b) => (lines ? lines.write(b) : err.stream.write(b)));
    let stdinError: Error | undefined;
    const input = opts.stdin;
    if (input) {
      // what goes to the channel leaves ssh2's packet and its encrypted copy
      // behind, and the input's own chunk: nobody else counts them
      const paced = pacingPipe(new GarbagePacer(), 3);
      limitQueue(channel, '_writableState');
      input.once('error', (e: Error) => {
        stdinError ??= e;
        command.kill();
        if (!command.known) channel.close(); // the group is killed when its line comes
      });
      input.pipe(paced).pipe(channel);
      // a command that ended early reads no more: stop feeding it
      channel.once('close', () => {
        input.unpipe(paced);
        paced.unpipe(channel);
        paced.destroy();
      });
    } else channel.end();
    let cancelling: Promise<void> | undefined;
    const onAbort = () => void (cancelling ??= command.cancel());
    try {
      await new Promise<void>((resolve, reject) => {
        void command.ended.then(() => resolve());
        // writing stdin to a command that has just ended: its exit status says more
        channel.once('error', (e: Error) => (input && command.exit.code !== undefined ? resolve() : reject(e)));
        signal?.addEventListener('abort', onAbort, { once: true });
        if (signal?.aborted) onAbort(); // cancelled while the channel opened
      });
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (signal?.aborted) {
      // the caller removes what the command wrote: it must have stopped writing (bounded, see NodeCommand.cancel)
      await cancelling;
      throw new Error(`${argv[0]} on ${this.describe} was cancelled`);
    }
    command.flush();
    const { code, signal: exitSignal } = command.exit;
    lines?.end();
    if (stdinError) throw new Error(`its input could not be read: ${stdinError.message}`);
    if (code === undefined && !exitSignal && this.lost) throw this.lostDuring();
    return { stdout: Buffer.concat(out), stderr: err.text(), code: code ?? null, ...(exitSignal ? { signal: exitSignal } : {}) };
  }

  /** Looks once per connection for tar and zstd on the node. */
  private nodeTools(): Promise<NodeTools> {
    this.tools ??= this.exec(
      shellCommand([
        'sh',
        '-c',
        `if command -v tar >/dev/null 2>&1; then echo "tar:$(tar --version 2>&1 | head -n 1)"; fi; ${NODE_ZSTD_PROBE}; ${HEAD_PROBE}`,
      ]),
    )
      .then((out) => {
        const lines = out.split('\n');
        const tarLine = lines.find((l) => l.startsWith('tar:'));
        return {
          ...(tarLine !== undefined ? { tar: tarDialect(tarLine.slice(4)) } : {}),
          zstd: lines.some((l) => l.startsWith('zstd:')),
          zstdWindowLog: lines.includes('zstd:wlog'),
          headAllBut: lines.includes('head:all-but'),
        };
      })
      .catch(() => ({ zstd: false }));
    return this.tools;
  }

  /**
   * One `tar -c` of DIR on the node over one exec channel, through zstd on
   * the node when it has it (decompressed here: the caller builds and checks
   * the archive from the plain stream), so no file costs a round trip.
   * A cancel (`signal`) kills it.
   */
  async tarStream(dir: string, signal?: AbortSignal): Promise<HostTarStream | undefined> {
    const tools = await unlessCancelled(this.nodeTools(), signal);
    if (!tools.tar) return undefined;
    // tar's own status goes to stderr after it: behind `| zstd` the channel reports zstd's.
    const script = `{ ${shellCommand(tarCreateArgv(dir, tools.tar))}; echo "${TAR_EXIT_MARK}$?" >&2; }${tools.zstd ? ` | ${nodeZstdCommand(tools)}` : ''}`;
    return this.tarCommandStream(script, dir, tools.tar, tools.zstd ? 'decompress' : 'plain', signal);
  }

  /**
   * The node packs DIR's archive data itself (packedTarScript) over one exec
   * channel: its zstd stream as it comes, for adoptPackedStream. Undefined
   * when the node cannot (no GNU tar, zstd or GNU head) or when the tree
   * holds a device, FIFO or socket, which only the plain tar stream's path
   * leaves out (tarStream then). A cancel (`signal`) kills it.
   */
  async packedStream(dir: string, level?: number, signal?: AbortSignal): Promise<HostTarStream | undefined> {
    const tools = await unlessCancelled(this.nodeTools(), signal);
    if (tools.tar !== 'gnu' || !tools.zstd || !tools.headAllBut) return undefined;
    if (await unlessCancelled(this.exec(shellCommand(unpackableArgv(dir))), signal)) return undefined;
    return this.tarCommandStream(packedTarScript(dir, tools, level), dir, 'gnu', 'as-is', signal);
  }

  /**
   * Runs a script whose stdout is a tar of DIR (`plain`, zstd to
   * `decompress` here, or zstd kept `as-is`) and whose stderr carries tar's
   * exit status (TAR_EXIT_MARK) and, when it has one, head's (HEAD_EXIT_MARK).
   * The command is killed, its whole process group (NodeCommand), at once on
   * a cancel, and after a stop when it has not ended within the grace period.
   */
  private async tarCommandStream(script: string, dir: string, dialect: TarDialect, stdout: 'plain' | 'decompress' | 'as-is', signal?: AbortSignal): Promise<HostTarStream> {
    const channel = await p<ExecChannel>((cb) => this.conn.exec(groupReported(['sh', '-c', script]), cb as never));
    channel.end(); // nothing to read from us
    limitQueue(channel, '_readableState');
    const err = stderrTail();
    // the script's status marks are its own lines, not tar's
    const sockets = tarCreateMessages(SPECIALS_NAMED, new RegExp(`^(?:${TAR_EXIT_MARK}|${HEAD_EXIT_MARK})\\d+$`));
    err.stream.on('data', (c: Buffer) => sockets.feed(c));
    // stderr but for the group's line (NodeCommand): the tools' messages and statuses
    const command = new NodeCommand(channel, this.exec, (b) => err.stream.write(b));
    // The tar stream's buffers are garbage once read, and nothing else
    // paces them: unpaced, an export of 200,000 small files left 27 MiB of
    // them in malloc's heap (docs/benchmarks.md, "Small files paced by the
    // entry"). Each byte off the channel leaves three (the socket read,
    // ssh2's decrypted packet, the channel's chunk), each decompressed byte
    // one more; counting only the latter let an export of the benchmark
    // disk (random blobs: one compressed byte per byte) reach 102-109 MiB,
    // counting both 96-99. Half the usual allowance (its bytes count double
    // in the process's one budget, memory.ts): with the usual one, an
    // export over SSH of a million files peaked at 95-110 MiB, with half at
    // 90-92; the benchmark disk 95-97 against 93-94, for 10-20% more CPU in
    // GCs (docs/benchmarks.md).
    const pacer = new GarbagePacer(GC_EVERY / 2);
    const stream: Readable =
      stdout === 'decompress'
        ? (pipeline(channel, pacingPipe(pacer, 3), decompressor('tar.zst', LINK_ZSTD_JOBS), pacingPipe(pacer), () => undefined) as unknown as Readable)
        : (pipeline(channel, pacingPipe(pacer, 3), () => undefined) as unknown as Readable);
    let cancelled = false;
    const finished = command.ended.then((end) => {
      // killed of the cancel (not ended by itself before it): what it left says nothing
      if (cancelled && end !== 'closed') throw interruptedError(`tar -c of ${dir} on ${this.describe} was cancelled`);
      const { code: exitCode, signal: exitSignal } = command.exit;
      const text = err.text();
      const m = markStatus(text, TAR_EXIT_MARK);
      const head = markStatus(text, HEAD_EXIT_MARK);
      const detail = text.replace(new RegExp(`(^|\\n)(?:${TAR_EXIT_MARK}|${HEAD_EXIT_MARK})\\d+`, 'g'), '$1').trim();
      const lastLines = commandMessages(detail, 5);
      const hung = stopFailure(`tar -c of ${dir} on ${this.describe}`, end, this.stopGraceMs, detail ? `: ${lastLines}` : '');
      if (hung) throw hung;
      // behind `| zstd` the channel's status is zstd's: when it failed on its own (killed, not found, a bad
      // option, out of memory), tar and head died of the pipe it left (141) and theirs says nothing
      if (stdout !== 'plain') {
        const zstd = `zstd compressing the tar stream of ${dir}`;
        if (compressorFailed(exitCode)) throw new KompoxError('unavailable', compressorFailure(zstd, this.describe, exitCode, detail), { hint: NODE_ZSTD_HINT });
        if (exitCode === undefined && exitSignal) throw new KompoxError('unavailable', `tar -c | zstd of ${dir} on ${this.describe} was killed by signal ${exitSignal}${detail ? `: ${lastLines}` : ''}`, { hint: NODE_ZSTD_HINT });
      }
      if (!m && this.lost && exitCode === undefined && !exitSignal) throw this.lostDuring(`tar -c of ${dir}`);
      if (!m) throw new Error(`tar -c of ${dir} on ${this.describe} did not finish${detail ? `: ${lastLines}` : ''}`);
      const outcome = tarCreateOutcome(dialect, Number(m[1]));
      // busybox tar (a node without GNU tar) stops at a file that shrank while it read it, its stream cut
      if (outcome === 'failed' && dialect !== 'gnu') {
        const shrank = busyboxShortRead(`tar -c of ${dir} on ${this.describe} failed`, Number(m[1]), detail, 'GNU tar on the node');
        if (shrank) throw shrank;
      }
      // busybox tar (a node without GNU tar) exits 1 for files deleted before it opened them, its stream whole
      const vanished = outcome === 'failed' && dialect !== 'gnu' && m[1] === '1' ? sockets.vanishedOnly() : undefined;
      if (outcome === 'failed' && !vanished) throw new Error(`tar -c of ${dir} on ${this.describe} failed (exit code ${m[1]})${detail ? `: ${lastLines}` : ''}`);
      if (head && head[1] !== '0') throw new Error(`head on ${this.describe} failed (exit code ${head[1]})${detail ? `: ${lastLines}` : ''}`);
      if (exitCode !== 0 && exitCode !== undefined) throw new Error(`zstd on ${this.describe} failed (exit code ${exitCode})${detail ? `: ${lastLines}` : ''}`);
      if (vanished) return `${leftOutGone(vanished)} (on ${this.describe})`;
      return outcome === 'changed' ? `files changed while tar read them on ${this.describe} (a live, crash-consistent copy)${detail ? `: ${lastLines}` : ''}` : undefined;
    });
    finished.catch(() => undefined);
    // ssh2 reports the channel closed only once its readable side has ended,
    // and a consumer that failed (a full output disk) left it paused with
    // data queued: read the rest into nothing, so `finished` settles and the
    // caller can report why it stopped.
    const drain = () => {
      channel.unpipe();
      channel.resume();
    };
    const stop = () => {
      // Closing the channel ends the command: its writes to the closed pipe
      // fail (SIGPIPE). One that does not write (blocked on a disk that
      // stopped answering) or ignores SIGPIPE is killed after the grace period.
      channel.close();
      drain();
      command.stopped(this.stopGraceMs);
    };
    // a cancel wants nothing more of it: killed at once, and `finished` settles once it is gone (bounded, see NodeCommand.cancel)
    command.cancelOn(signal, () => {
      cancelled = true;
      drain();
    });
    return { stream, compressed: stdout !== 'plain', finished, stop, ignored: () => sockets.found() };
  }
  /**
   * One `tar -x` into DIR on the node over one exec channel, the tar stream
   * compressed here and decompressed by zstd on the node when it has it, so
   * no file costs a round trip. Tar's and zstd's exit statuses are checked.
   * A cancel (`signal`) kills it at once, its whole process group.
   */
  async untarStream(dir: string, signal?: AbortSignal): Promise<HostUntarStream | undefined> {
    const tools = await unlessCancelled(this.nodeTools(), signal);
    if (!tools.tar) return undefined;
    // ssh2's channel is a Duplex: stdin to write, stdout to read
    const channel = await p<ExecChannel>((cb) => this.conn.exec(groupReported(['sh', '-c', untarScript(dir, tools.tar!, tools.zstd, UNZSTD_EXIT_MARK)]), cb as never));
    const err = stderrTail();
    // stderr but for the group's line (NodeCommand): tar's messages, zstd's status
    const command = new NodeCommand(channel, this.exec, (b) => err.stream.write(b));
    channel.resume(); // tar -x writes nothing to stdout; its messages go to stderr
    channel.on('error', () => undefined); // a write after the command ended: `finished` says why
    // What goes to the channel leaves garbage nobody else counts: ssh2's
    // packet and its encrypted copy, 2 per byte (the tar stream's own pacer
    // counts the plain stream). An import of the benchmark disk over SSH:
    // 96-102 MiB paced so, 101-107 without.
    const paced = pacingPipe(new GarbagePacer(), 2);
    limitQueue(channel, '_writableState');
    paced.pipe(channel); // ends the channel when `paced` ends
    paced.on('error', () => undefined); // a write after stop(): `finished` says why
    const stream: Writable = tools.zstd ? compressingWriter('tar.zst', paced, LINK_ZSTD_LEVEL, LINK_ZSTD_FRAME, LINK_ZSTD_JOBS) : paced;
    let compressorError: Error | undefined;
    if (tools.zstd) {
      // the compressor's end is the channel's EOF (compressingWriter leaves its output open)
      stream.once('finish', () => paced.end());
      // a failure after the caller's pipeline let go of it (in end()) must not go unheard, nor leave tar waiting
      stream.on('error', (e: Error) => {
        compressorError ??= e;
        paced.end();
      });
    }
    let cancelled = false;
    const finished = command.ended.then((end) => {
      // killed of the cancel (not ended by itself before it): what it left says nothing
      if (cancelled && end !== 'closed') throw interruptedError(`tar -x into ${dir} on ${this.describe} was cancelled`);
      const exit = command.exit;
      const { status, detail } = pipeStatus(err.text(), UNZSTD_EXIT_MARK);
      const lastLines = detail ? `: ${commandMessages(detail, 5)}` : '';
      const hung = stopFailure(`tar -x into ${dir} on ${this.describe}`, end, this.stopGraceMs, lastLines);
      if (hung) throw hung;
      // zstd's own failure first: tar's then only follows from the input it cut (not when zstd was killed writing to a tar that had ended)
      const zstdFailed = tools.zstd && status !== undefined && status !== 0 && status !== SIGPIPE_STATUS;
      if (exit.code !== 0 && !zstdFailed) {
        throw new Error(`tar -x into ${dir} on ${this.describe} failed (${exitSaid(exit)})${lastLines}`);
      }
      if (tools.zstd && status !== 0) throw new Error(`zstd -d on ${this.describe} failed (${status !== undefined ? `exit code ${status}` : 'no exit status'})${lastLines}`);
      if (compressorError) throw new Error(`compressing the tar stream for ${this.describe} failed: ${compressorError.message}`);
    });
    finished.catch(() => undefined);
    // A command that ended before its input did (refused, a tool missing or
    // failing at once) reads no more, and ssh2 neither sends nor fails a
    // write to a closed channel: what waits to be written never drains. The
    // writer (archiveToTar, whose pipeline does not destroy its destination
    // when its feed is aborted) waited for it forever; the stream fails
    // instead, and `finished` (settled first) says why.
    void command.ended.then(() => {
      if (stream.writableFinished) return;
      const gone = new Error(`tar -x into ${dir} on ${this.describe} ended before its input`);
      if (stream !== paced) stream.destroy(gone);
      paced.destroy(gone);
    });
    /** Nothing more goes to the command. */
    const unfeed = () => {
      if (stream !== paced) stream.destroy();
      paced.unpipe(channel);
      paced.destroy();
    };
    const stop = () => {
      unfeed();
      // EOF ends tar (a cut stream: it fails); sshd reports the channel
      // closed only once the command has exited, so `finished` is the barrier
      // before the caller removes what tar made. One that hangs (blocked on
      // the disk, or deaf to its input's end) is killed, its whole process
      // group (NodeCommand), and in the end given up on (`finished` rejects;
      // what it leaves is swept as a stale temp dir).
      channel.end();
      command.stopped(this.stopGraceMs);
    };
    // A cancel wants nothing of it: no grace period for a tar that may be
    // blocked on the disk, killed at once, and `finished` settles once it is
    // gone (bounded, see NodeCommand.cancel): the barrier before the caller
    // removes the directory it was extracting into.
    command.cancelOn(signal, () => {
      cancelled = true;
      unfeed();
    });
    // compressingWriter frees what is handed over to it once it is in a frame
    return { stream, compressed: tools.zstd, freesHandedOver: tools.zstd, finished, stop };
  }
  /**
   * The size walk (treeBytesArgv) on its own exec channel, so it runs while
   * tar streams. Its failure (no channel left, no find/stat on the node) is
   * no total, never a failed transfer.
   */
  async treeBytes(dir: string, signal?: AbortSignal): Promise<{ bytes: number; files: number } | undefined> {
    if (signal?.aborted) return undefined;
    let channel: ExecChannel;
    try {
      channel = await p<ExecChannel>((cb) => this.conn.exec(groupReported(treeBytesArgv(dir)), cb as never));
    } catch {
      return undefined;
    }
    channel.end();
    // stderr past the group's line: nothing a total needs
    const command = new NodeCommand(channel, this.exec, () => undefined);
    let out = '';
    channel.on('data', (d: Buffer) => (out += d.toString('utf8')));
    channel.on('error', () => undefined);
    // settled once the walk is gone: nothing of it outlives the transfer. A
    // stop kills it (a find blocked on a disk that stopped answering never
    // notices its channel closed), bounded: see NodeCommand.cancel
    const stop = () => void command.cancel();
    if (signal?.aborted) stop();
    else signal?.addEventListener('abort', stop, { once: true });
    try {
      await command.ended;
    } finally {
      signal?.removeEventListener('abort', stop);
    }
    return command.exit.code === 0 && !signal?.aborted ? parseTreeBytes(out) : undefined;
  }
  async close(): Promise<void> {
    this.sftp.end();
    this.conn.end();
  }
}
