// Minimal typings for the parts of `ws` (present through @kubernetes/client-node)
// that the fake API server uses; @types/ws is not installed.
declare module 'ws' {
  import type { EventEmitter } from 'node:events';
  import type { IncomingMessage } from 'node:http';
  import type { Duplex } from 'node:stream';
  export class WebSocket extends EventEmitter {
    readonly protocol: string;
    readonly bufferedAmount: number;
    send(data: Buffer | string, cb?: (err?: Error) => void): void;
    pause(): void;
    resume(): void;
    close(code?: number): void;
    terminate(): void;
  }
  export class WebSocketServer extends EventEmitter {
    constructor(opts: { noServer?: boolean; handleProtocols?: (protocols: Set<string>, req: IncomingMessage) => string | false });
    clients: Set<WebSocket>;
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, cb: (ws: WebSocket) => void): void;
    close(): void;
  }
}
