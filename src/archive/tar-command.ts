// The `tar` commands Kompox runs where the disk is (a helper pod's busybox or
// GNU tar, a K3s node over SSH), and how to read their outcome. Only flags
// busybox and GNU tar share are used; what the stream holds is checked by
// packTarStream/archiveToTar (tar-stream.ts), not trusted.
import { PassThrough } from 'node:stream';
import { KompoxError } from '../domain/errors.js';

/**
 * A plain tar stream of DIR's tree (`./`-relative paths, DIR's own entry
 * first) on stdout. GNU tar is told to write pax (its default format keeps
 * whole seconds of mtimes, where every other path keeps milliseconds), ids by
 * number, and no atime/ctime records; other tars get only the shared flags.
 */
export function tarCreateArgv(dir: string, dialect?: TarDialect): string[] {
  return ['tar', '-c', ...(dialect === 'gnu' ? ['--format=pax', '--numeric-owner', '--pax-option=delete=atime,delete=ctime'] : []), '-f', '-', '-C', dir, '.'];
}

/**
 * Extracts a plain tar stream from stdin into DIR (which exists). GNU tar is
 * told to set modes exactly as the stream says (`-p`: no umask, as an import
 * file by file sets them) and, as root, owners by number (`--numeric-owner`:
 * the stream's ids, never names looked up on the host), and to take DIR as
 * it is (`--no-unquote`: GNU tar -x reads escapes such as `\\b` in -C's
 * directory). Other tars get only the shared flags.
 */
export function tarExtractArgv(dir: string, dialect?: TarDialect): string[] {
  return ['tar', '-x', ...(dialect === 'gnu' ? ['-p', '--numeric-owner', '--no-unquote'] : []), '-f', '-', '-C', dir];
}

/** What helperTarCreateArgv's script writes on stderr, last, when GNU tar saw files change while it read them (its exit status 1). */
export const TAR_CHANGED_MARK = 'kompox-tar-changed';

/** `case` on the pod's tar: GNU tar runs GNU, anything else (busybox: no --version, so nothing printed) OTHER. */
function byHelperTar(gnu: string, other: string): string {
  return `case "$(tar --version 2>/dev/null)" in *"GNU tar"*) ${gnu} ;; *) ${other} ;; esac`;
}

/** An argv's words for a script whose "$1" is the directory (DIR_WORD in the argv). */
function withDirArg(argv: readonly string[]): string {
  return argv.map((a) => (a === DIR_WORD ? '"$1"' : shellCommand([a]))).join(' ');
}
const DIR_WORD = '\u0000dir';

/**
 * tarCreateArgv in a helper pod, whose image (KOMPOX_HELPER_IMAGE) may have
 * GNU tar or busybox tar: one command that asks its tar and takes GNU's flags
 * when it is GNU tar (pax: nanosecond mtimes, times before 1970, ids past
 * busybox's 24 bits), the shared ones otherwise. GNU tar's exit status 1 means
 * files changed while it read them, with a whole stream written (a live
 * copy's; tarCreateOutcome's 'changed', told here in the pod, where the
 * dialect is known): the script exits 0 for it and writes TAR_CHANGED_MARK
 * last on stderr.
 */
export function helperTarCreateArgv(dir: string): string[] {
  const gnu = `${withDirArg(tarCreateArgv(DIR_WORD, 'gnu'))}; s=$?; if [ $s -eq 1 ]; then echo ${TAR_CHANGED_MARK} >&2; s=0; fi; exit $s`;
  return ['sh', '-c', byHelperTar(gnu, `exec ${withDirArg(tarCreateArgv(DIR_WORD))}`), 'sh', dir];
}

/** tarExtractArgv in a helper pod: GNU tar's flags when its tar is GNU tar (see helperTarCreateArgv), the shared ones otherwise. */
export function helperTarExtractArgv(dir: string): string[] {
  return ['sh', '-c', byHelperTar(`exec ${withDirArg(tarExtractArgv(DIR_WORD, 'gnu'))}`, `exec ${withDirArg(tarExtractArgv(DIR_WORD))}`), 'sh', dir];
}

/**
 * One shell script for an SSH exec channel: zstd-compressed tar on stdin
 * (or plain tar when the host has no zstd) extracted into DIR. Behind the
 * pipe the channel's exit status is tar's; zstd's own status goes to stderr
 * after it as `MARK<status>` (see pipeStatus).
 */
export function untarScript(dir: string, dialect: TarDialect, zstd: boolean, mark: string): string {
  const extract = shellCommand(tarExtractArgv(dir, dialect));
  return zstd ? `{ zstd -d -q -c; echo "${mark}$?" >&2; } | ${extract}` : extract;
}

/**
 * What a command's tools said, for one line of a message: the last `max`
 * distinct lines, trimmed, joined with "; " (tar repeats itself: "Unexpected
 * EOF in archive" twice, then "Error is not recoverable").
 */
export function commandMessages(text: string, max = 3): string {
  const lines: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line && !lines.includes(line)) lines.push(line);
  }
  return lines.slice(-max).join('; ');
}

/**
 * The status a shell gives a command killed by SIGPIPE (128 + 13): in a
 * pipeline, a stage that wrote to the next one after that one had ended. It
 * says nothing of its own input: the next stage's failure says why.
 */
export const SIGPIPE_STATUS = 141;

/**
 * Whether a decompressor's failure (its status `code` but SIGPIPE, its
 * messages `text`) is the archive's: zstd and gzip refuse a stream they
 * cannot decode with status 1 (gzip's 2: trailing garbage). The shell's 126
 * and 127 (not executable, not found), a signal's 128+n (the OOM killer) and
 * a complaint about the command line say nothing of the archive: the node's
 * tool failed.
 */
export function decodingFailure(code: number, text: string): boolean {
  if (code !== 1 && code !== 2) return false;
  return !USAGE_ERROR.test(text);
}

/** zstd's usage error; GNU getopt's (gzip's). */
const USAGE_ERROR = /^.*(?:Incorrect parameters|unrecognized option|invalid option).*$/m;

/**
 * A compressor's own messages in a pipeline's stderr: its usage error alone
 * (not the usage text), else all but tar's and head's (the other stages of
 * the node's pipelines, whose complaints follow from the compressor's).
 */
export function toolMessages(text: string): string {
  const own = text
    .split('\n')
    .filter((l) => !/^(?:tar|head): /.test(l.trim()))
    .join('\n');
  return USAGE_ERROR.exec(own)?.[0] ?? own;
}

/** Linux's names of the signals a tool dies of, by number. */
const SIGNAL_NAMES: Readonly<Record<number, string>> = {
  1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE', 9: 'SIGKILL',
  11: 'SIGSEGV', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM', 24: 'SIGXCPU', 25: 'SIGXFSZ',
};

/**
 * How a command a shell ran ended, for a message: the shell gives one killed
 * by signal n the status 128+n ("was killed by signal 9 (SIGKILL, exit code
 * 137)": the OOM killer's), any other status is "failed (exit code N)".
 */
export function shellStatusPhrase(code: number): string {
  const signal = code - 128;
  if (signal >= 1 && signal <= 64) return `was killed by signal ${signal} (${SIGNAL_NAMES[signal] ?? `signal ${signal}`}, exit code ${code})`;
  return `failed (exit code ${code})`;
}

/**
 * Whether the compressor at the end of a pipeline on the node (`tar -c |
 * zstd`) failed on its own: any status but 0 and SIGPIPE's (killed writing
 * to a reader that had gone: this side's stop). The stages before it then
 * died of the pipe it left (SIGPIPE) or failed writing into it: theirs says
 * nothing, and must not be reported in its place.
 */
export function compressorFailed(code: number | undefined): code is number {
  return code !== undefined && code !== 0 && code !== SIGPIPE_STATUS;
}

/**
 * The message of a compressor that failed on its own (compressorFailed):
 * WHAT (naming it and its work) on WHERE, how it ended (shellStatusPhrase)
 * and its own messages out of the pipeline's stderr `text` (toolMessages).
 */
export function compressorFailure(what: string, where: string, code: number, text: string): string {
  const said = commandMessages(toolMessages(text), 5);
  return `${what} on ${where} ${shellStatusPhrase(code)}${said ? `: ${said}` : ''}`;
}

/**
 * The status a script wrote to stderr after MARK (see untarScript), and
 * stderr without the mark: undefined status when the mark is missing (the
 * command was cut off before it got there).
 */
export function pipeStatus(stderr: string, mark: string): { status?: number; detail: string } {
  // the mark and its own line end only: written by another process than the
  // command's, it can land inside a line of the command's (between a message
  // and its newline), and taking any whitespace after it took that newline
  // too, joining two of the command's lines into one (a refusal then named
  // the wrong entry)
  const re = new RegExp(`${mark}(\\d+)[ \\t]*\\n?`, 'g');
  let status: number | undefined;
  for (const m of stderr.matchAll(re)) status = Number(m[1]);
  return { ...(status !== undefined ? { status } : {}), detail: stderr.replace(re, '').trim() };
}

/**
 * A quick size walk of DIR where the disk is (metadata only): the sum of the
 * regular files' sizes and their count, as one line `BYTES FILES`. It runs
 * alongside `tar -c` (its own exec channel), so the progress gets a total
 * without delaying the transfer. Only what busybox and GNU share: `find -type
 * f` (symlinks not followed, as tar does not), `stat -c %s` in batches
 * (`{} +`), awk's printf `%.0f` (a sum printed as an integer, never 1e+11).
 * Exits 3 when find or stat is missing (no total rather than a false 0). A
 * file that vanishes during the walk is just not counted: the total is a hint
 * for progress, what moved is counted by the archive code.
 */
export function treeBytesArgv(dir: string): string[] {
  const script =
    'command -v find >/dev/null 2>&1 && command -v stat >/dev/null 2>&1 || exit 3; ' +
    `find "$1" -type f -exec stat -c %s {} + 2>/dev/null | awk '{ s += $1; n++ } END { printf "%.0f %d\\n", s, n }'`;
  return ['sh', '-c', script, 'sh', dir];
}

/** The walk's output (`BYTES FILES`), or undefined when it is not that (the walk failed). */
export function parseTreeBytes(stdout: string): { bytes: number; files: number } | undefined {
  const m = /^(\d+) (\d+)$/.exec(stdout.trim());
  if (!m) return undefined;
  const bytes = Number(m[1]);
  const files = Number(m[2]);
  return Number.isSafeInteger(bytes) && Number.isSafeInteger(files) ? { bytes, files } : undefined;
}

/** An argv as one POSIX shell command line (for an SSH exec channel). */
export function shellCommand(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_./=:@%+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export type TarDialect = 'gnu' | 'busybox' | 'other';

/** The dialect from the first line of `tar --version` (busybox prints its banner, or nothing). */
export function tarDialect(versionLine: string): TarDialect {
  if (/GNU tar/i.test(versionLine)) return 'gnu';
  if (/busybox/i.test(versionLine) || versionLine.trim() === '') return 'busybox';
  return 'other';
}

/**
 * What an exit status of `tar -c` means. GNU tar exits 1 when a file changed
 * while it was read (it still writes a whole, consistent stream: a shrunk file
 * padded with zeros, a grown one cut, as packTree does): a live copy, not a
 * failure. Every other non-zero status (and 1 from other tars) is a failure.
 */
export function tarCreateOutcome(dialect: TarDialect, exitCode: number): 'ok' | 'changed' | 'failed' {
  if (exitCode === 0) return 'ok';
  if (exitCode === 1 && dialect === 'gnu') return 'changed';
  return 'failed';
}

/** The note for files `tar -c` found gone (tarCreateMessages' vanishedOnly): the archive is a live copy without them. */
export function leftOutGone(v: { count: number; first: string[] }): string {
  const more = v.count > v.first.length ? ` and ${v.count - v.first.length} more` : '';
  return `left out ${v.count} file(s) deleted while tar read the disk (a live disk: the app removed or renamed them): ${v.first.join(', ')}${more}; the archive is a live (crash-consistent) copy`;
}

/**
 * busybox tar's failure at a file that shrank while it read it (an app
 * truncated it, such as logrotate's copytruncate), when its exit status 1
 * came with `tar: short read` on stderr: busybox exits there, its stream cut
 * mid-file (GNU tar pads the file with zeros and goes on: tarCreateOutcome's
 * 'changed'). Said as the live disk it is (`transfer.disk.changed`, WHAT
 * naming the command and where it ran), with what to do; GNU_TAR says where
 * GNU tar would have made a live copy instead. Undefined for any other failure.
 */
export function busyboxShortRead(what: string, exitCode: number, stderr: string, gnuTar: string): KompoxError | undefined {
  if (exitCode !== 1 || !/^tar: short read$/m.test(stderr)) return undefined;
  return new KompoxError('conflict', `${what}: a file shrank while tar read it (the app truncated it, as logrotate's copytruncate does), and busybox tar stops there (tar: short read); no archive was made`, {
    code: 'transfer.disk.changed',
    details: { exitCode },
    hint: `The app is writing to the disk: export it again, stop the app for the export (--quiesce), or export a snapshot (kompoxops snapshot create, then snapshot export). ${gnuTar} archives a file that shrinks padded with zeros and goes on (a live copy).`,
  });
}

/** The last bytes a command wrote to stderr (for error messages). */
export function stderrTail(max = 4096): { stream: PassThrough; text(): string } {
  const stream = new PassThrough();
  let buf = Buffer.alloc(0);
  stream.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    if (buf.length > max) buf = buf.subarray(buf.length - max);
  });
  return { stream, text: () => buf.toString('utf8').trim() };
}

/**
 * What `tar -c` said on stderr, read as it comes (feed it every chunk):
 * the sockets it left out of its stream (`tar: ./PATH: socket ignored`, GNU
 * and busybox alike; tar skips them itself, so the stream never shows them),
 * and the files it found gone when it came to them (`tar: ./PATH: No such
 * file or directory`: a live disk's temp file or rotated log, listed in its
 * directory and deleted before tar opened it). Both as archive paths, the
 * first `named` of each. Lines matching `ignore` (a script's own status
 * marks) are passed over.
 */
export function tarCreateMessages(named = 10, ignore?: RegExp): {
  feed(chunk: Buffer): void;
  /** The sockets tar left out: how many, and the first few as packTarStream's skipped entries read. */
  found(): { count: number; first: string[] };
  /**
   * The files tar found gone, when every message it wrote was such a file,
   * a socket left out or busybox's closing `error exit delayed from
   * previous errors`; undefined when it said anything else (an unreadable
   * file, an I/O error) or nothing of the kind.
   */
  vanishedOnly(): { count: number; first: string[] } | undefined;
} {
  let line = '';
  const sockets = { count: 0, first: [] as string[] };
  const vanished = { count: 0, first: [] as string[] };
  let other = false;
  const archivePath = (raw: string) => {
    const p = raw.replace(/^(\.\/)+/, '');
    return p === '.' || p === '' ? 'data' : `data/${p}`;
  };
  const take = (l: string) => {
    if (l.trim() === '' || ignore?.test(l)) return;
    const socket = /^[^:]*tar: (.*): socket ignored$/.exec(l);
    if (socket) {
      sockets.count++;
      if (sockets.first.length < named) sockets.first.push(`${archivePath(socket[1]!)} (socket)`);
      return;
    }
    // busybox's words; a name can hold newlines, but the line with the error's own words ends them
    const gone = /^tar: (.*): No such file or directory$/.exec(l);
    if (gone) {
      vanished.count++;
      if (vanished.first.length < named) vanished.first.push(archivePath(gone[1]!));
      return;
    }
    if (l === 'tar: error exit delayed from previous errors') return;
    other = true;
  };
  const rest = () => {
    if (line) take(line);
    line = '';
  };
  return {
    feed(chunk) {
      line += chunk.toString('utf8');
      const lines = line.split('\n');
      line = lines.pop() ?? '';
      for (const l of lines) take(l);
      // a line that never ends is no message of tar's (nor one of a file gone)
      if (line.length > 64 * 1024) {
        line = '';
        other = true;
      }
    },
    found() {
      rest();
      return sockets;
    },
    vanishedOnly() {
      rest();
      return !other && vanished.count > 0 ? vanished : undefined;
    },
  };
}
