// Exec with binary streams for data transfer (the helper pods of
// src/usecases/transfer.ts): the channel protocol of the API server's
// WebSocket exec (v5.channel.k8s.io: one channel byte, then data; channel 255
// closes a stream), with what client-node's Exec leaves out:
// - backpressure both ways: stdin is read only as fast as the socket takes
//   it, and the socket is paused while stdout is full (client-node writes
//   every frame and buffers without bound);
// - stdin's end is the command's EOF (a CLOSE frame for channel 0), which
//   v5 alone can say: on an older server the exec is refused up front
//   instead of closing the whole connection at EOF (what client-node does);
// - the exit status from the status channel, and the signal that ends the
//   stream.
// client-node's WebSocketHandler still opens the socket (authentication,
// TLS, protocol negotiation), with our factory for the socket (zeroMask).
import type { KubeConfig } from '@kubernetes/client-node';
import type WebSocket from 'ws';
import { markReleasable, releaseBuffer, releaseMarked } from '../archive/memory.js';
import { KompoxError, interruptedError } from '../domain/errors.js';
import type { ExecOutcome, ExecStreams } from '../domain/ports/kube.js';
import type { KubeStatus } from './errors.js';

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const STATUS = 3;
const CLOSE = 255;
const V5 = 'v5.channel.k8s.io';
/**
 * Bytes of stdin the socket may hold before reading more. What it holds is
 * held as frames (and over plain HTTP once more as ws's masked copies of
 * them, see zeroMask), and once more encrypted in TLS's buffers as the
 * socket writes it: 1 MiB rather than 4
 * (and 256 KiB frames rather than 1 MiB) took an import through the
 * cluster from 139-153 to 136-138 MiB peak on their own (issue 11: within
 * 100 MiB; docs/benchmarks.md).
 */
const STDIN_HIGH_WATER = 1024 * 1024;
/** Frames at most this big (a large chunk is split; each is a copy, and over plain HTTP ws copies it again to mask it). */
const FRAME = 256 * 1024;

/**
 * The masking key of what this client sends over TLS: zero. RFC 6455 masks a
 * client's frames so that a script in a browser cannot choose the bytes a
 * cleartext intermediary sees (cache poisoning of proxies that do not speak
 * WebSocket); inside TLS no such intermediary sees them, and this client
 * runs no one's script. Zero is a valid key (the API server unmasks with
 * whatever key comes), and with it `ws` skips masking (websockets/ws#1990,
 * the option made for this): otherwise it masks every byte into a fresh
 * copy, as it must not change the caller's buffer. That copy was 3-4 MiB of
 * an import's peak through the cluster and 8% of its CPU
 * (docs/benchmarks.md). A plain `ws:` connection keeps random keys.
 */
function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

/** The options of the exec socket to `uri`: a zero masking key over TLS (zeroMask). */
function socketOptions(uri: string, o: WebSocket.ClientOptions): WebSocket.ClientOptions {
  return uri.startsWith('wss:') ? { ...o, generateMask: zeroMask } : o;
}

/** The part of `ws`'s WebSocket used here. */
interface Socket {
  readonly protocol: string;
  readonly bufferedAmount: number;
  readonly readyState: number;
  send(data: Buffer, cb?: (err?: Error) => void): void;
  pause(): void;
  resume(): void;
  close(code?: number): void;
  terminate(): void;
  on(event: 'close', fn: (code: number, reason: Buffer) => void): void;
  on(event: 'error', fn: (err: Error) => void): void;
}

export interface ExecStreamTarget {
  kc: KubeConfig;
  server: string;
  namespace: string;
  pod: string;
  container?: string;
  command: string[];
  /** Turns a connection failure into the client's error (HTTP status, network). */
  wsError(e: unknown, what: string): Error;
}

/** V1Status of an exec: Success → 0, NonZeroExitCode → the code from details.causes; anything else is a message. */
export function outcomeOf(status: KubeStatus): ExecOutcome {
  if (status.status === 'Success') return { exitCode: 0 };
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  if (cause?.message !== undefined && /^\d+$/.test(cause.message)) return { exitCode: Number(cause.message) };
  return { exitCode: 1, message: status.message ?? status.reason ?? 'the command failed' };
}

function writeTo(out: NodeJS.WritableStream | undefined, data: Buffer): boolean {
  if (!out) return true;
  return out.write(data);
}

export async function execStream(t: ExecStreamTarget, io: ExecStreams, opts: { signal?: AbortSignal } = {}): Promise<ExecOutcome> {
  const what = `exec in pod ${t.namespace}/${t.pod}`;
  const signal = opts.signal;
  if (signal?.aborted) throw interruptedError();
  const { WebSocketHandler } = await import('@kubernetes/client-node/dist/web-socket-handler.js');
  const q = new URLSearchParams();
  for (const c of t.command) q.append('command', c);
  if (t.container) q.set('container', t.container);
  q.set('stdout', 'true');
  q.set('stderr', 'true');
  q.set('stdin', io.stdin ? 'true' : 'false');
  q.set('tty', 'false');
  const path = `/api/v1/namespaces/${encodeURIComponent(t.namespace)}/pods/${encodeURIComponent(t.pod)}/exec?${q.toString()}`;

  let socket: Socket | undefined;
  let outcome: ExecOutcome | undefined;
  let pausedForStdout = false;
  // client-node ends its `streams` on a CLOSE frame from the server; give it none of ours (nor the process's)
  const inert = { stdin: null, stdout: null, stderr: null } as unknown as ConstructorParameters<typeof WebSocketHandler>[2];
  const { default: Ws } = await import('ws');
  const factory = (uri: string, protocols: string[], o: WebSocket.ClientOptions) => new Ws(uri, protocols, socketOptions(uri, o));
  const handler = new WebSocketHandler(t.kc, factory as unknown as ConstructorParameters<typeof WebSocketHandler>[1], inert);
  const onFrame = (channel: number, data: Buffer): boolean => {
    if (channel === STDOUT) {
      // All of its memory but the channel byte: the message's own buffer (ws copied a frame that spanned
      // socket reads into it, or took a read whole), which nothing else keeps once it is handed on. Its
      // reader may free it when done (releaseMarked) rather than leave it to a GC: most of a transfer's bytes.
      if (data.byteOffset === 1 && data.byteLength + 1 === data.buffer.byteLength) markReleasable(data);
      if (!writeTo(io.stdout, data) && socket && !pausedForStdout) {
        // the reader is full: stop reading the socket until it drains (TCP backpressure reaches the pod)
        pausedForStdout = true;
        socket.pause();
        io.stdout!.once('drain', () => {
          pausedForStdout = false;
          socket?.resume();
        });
      }
    } else if (channel === STDERR) writeTo(io.stderr, data);
    else if (channel === STATUS) {
      try {
        outcome = outcomeOf(JSON.parse(data.toString('utf8')) as KubeStatus);
      } catch {
        outcome = { exitCode: 1, message: `unreadable exec status: ${data.toString('utf8').slice(0, 200)}` };
      }
    }
    return true;
  };

  let conn: Socket;
  try {
    conn = (await handler.connect(path, null, onFrame)) as unknown as Socket;
  } catch (e) {
    throw t.wsError(e, what);
  }
  socket = conn;
  if (io.stdin && conn.protocol !== V5) {
    conn.close(1000);
    throw new KompoxError('unsupported', `the Kubernetes API server at ${t.server} cannot end a command's input over WebSocket (it offered ${conn.protocol || 'no subprotocol'}, not ${V5})`, {
      code: 'kube.exec.stdin-close',
      details: { protocol: conn.protocol },
      hint: 'Streaming data into a pod needs Kubernetes 1.30 or later (the v5 WebSocket exec protocol); upgrade the cluster, or use the direct transfer where the driver has one.',
    });
  }

  return new Promise<ExecOutcome>((resolve, reject) => {
    let settled = false;
    const finish = (err?: unknown, value?: ExecOutcome) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(value!);
    };
    const onAbort = () => {
      conn.terminate();
      finish(interruptedError());
    };
    // a cancel while connecting came before this listener: honour it now
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    conn.on('error', (e) => finish(t.wsError(e, what)));
    conn.on('close', () => {
      if (outcome) finish(undefined, outcome);
      else finish(new KompoxError('unavailable', `${what}: the connection closed before the command ended (no exit status)`, { code: 'kube.exec.lost' }));
    });
    if (io.stdin) {
      pumpStdin(conn, io.stdin).catch((e: unknown) => {
        // the command cannot get the rest of its input: end the exec (the caller sees why)
        conn.terminate();
        finish(e instanceof KompoxError ? e : new KompoxError('unavailable', `${what}: sending input failed: ${(e as Error)?.message ?? String(e)}`, { cause: e }));
      });
    }
  });
}

/** Sends stdin in frames as fast as the socket takes them, then the CLOSE frame for stdin (EOF). */
async function pumpStdin(conn: Socket, stdin: NodeJS.ReadableStream): Promise<void> {
  // Each frame is this function's own copy: once the socket has taken it (TLS has encrypted it, or the
  // kernel has it), its memory goes back at once (releaseBuffer) instead of waiting for a GC.
  const send = (frame: Buffer) =>
    new Promise<void>((resolve, reject) =>
      conn.send(frame, (err?: Error) => {
        releaseBuffer(frame);
        if (err) reject(err);
        else resolve();
      }),
    );
  for await (const chunk of stdin as AsyncIterable<Buffer | string>) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    for (let off = 0; off < buf.length; off += FRAME) {
      const part = buf.subarray(off, Math.min(off + FRAME, buf.length));
      const frame = Buffer.allocUnsafe(part.length + 1);
      frame[0] = STDIN;
      part.copy(frame, 1);
      if (conn.readyState !== 1) throw new Error('the connection is closed');
      // wait for the socket only when it holds a lot: small writes stay pipelined
      if (conn.bufferedAmount > STDIN_HIGH_WATER) await send(frame);
      else conn.send(frame, () => releaseBuffer(frame));
    }
    // all of it is in frames now: memory handed over to this reader (archiveToTar's handOver) goes back at once
    releaseMarked(buf);
  }
  if (conn.readyState === 1) await send(Buffer.from([CLOSE, STDIN]));
}
