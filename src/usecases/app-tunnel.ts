// `app tunnel`: local TCP ports forwarded to the app pod. The pod is looked up
// per connection (cached while it works), so the tunnel survives pod restarts
// and redeploys: a failed forward re-resolves the pod and retries once.
import net from 'node:net';
import { KompoxError } from '../domain/errors.js';
import { logEvent, type Op } from '../domain/events.js';
import type { AppContext } from '../domain/model.js';
import { appNamespace } from '../domain/names.js';
import type { KubeClient } from '../domain/ports/kube.js';
import { findAppPod } from './app-logs.js';

export interface PortMapping {
  local: number;
  remote: number;
}

/** `-p [LOCAL:]REMOTE` → mapping; LOCAL 0 picks a free port. */
export function parsePortMapping(s: string): PortMapping {
  const m = /^(?:(\d{1,5}):)?(\d{1,5})$/.exec(s.trim());
  const local = m ? Number(m[1] ?? m[2]) : NaN;
  const remote = m ? Number(m[2]) : NaN;
  if (!m || remote < 1 || remote > 65535 || local > 65535) {
    throw new KompoxError('usage', `invalid port mapping "${s}"`, { code: 'usage.port-mapping', hint: 'Use REMOTE or LOCAL:REMOTE, e.g. 8080:80.' });
  }
  return { local, remote };
}

export interface Tunnel {
  ports: { local: number; remote: number }[];
  close(): Promise<void>;
}

/** Forwards local ports to the app pod until closed; forwarding problems are `log` events. */
export async function openTunnel(ctx: AppContext, kube: KubeClient, mappings: PortMapping[], op: Op = {}): Promise<Tunnel> {
  const namespace = appNamespace(ctx);
  let pod: string | undefined = (await findAppPod(ctx, kube)).metadata.name;
  const resolvePod = async (fresh: boolean): Promise<string> => {
    if (!pod || fresh) pod = (await findAppPod(ctx, kube)).metadata.name;
    return pod;
  };
  if (!kube.forwardConnection) {
    // a client without per-connection forwarding: fixed pod
    const fwds = await Promise.all(mappings.map((m) => kube.portForward(namespace, pod!, m.local, m.remote)));
    return { ports: fwds.map((f, i) => ({ local: f.port, remote: mappings[i]!.remote })), close: async () => void (await Promise.all(fwds.map((f) => f.close()))) };
  }
  const forward = kube.forwardConnection.bind(kube);
  const servers: net.Server[] = [];
  const sockets = new Set<net.Socket>();
  const ports: { local: number; remote: number }[] = [];
  try {
    for (const m of mappings) {
      const server = net.createServer((socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        socket.on('error', () => socket.destroy());
        socket.pause();
        void (async () => {
          for (const fresh of [false, true]) {
            try {
              const p = await resolvePod(fresh);
              await forward(namespace, p, m.remote, socket);
              socket.resume();
              return;
            } catch (e) {
              if (fresh) {
                logEvent(op, `tunnel: cannot forward to ${m.remote}: ${(e as Error).message}`);
                socket.destroy();
              } else {
                logEvent(op, `tunnel: forwarding failed, looking up the app pod again`);
              }
            }
          }
        })();
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', (e: NodeJS.ErrnoException) =>
          reject(e.code === 'EADDRINUSE' ? new KompoxError('usage', `local port ${m.local} is already in use`, { code: 'tunnel.port.in-use', details: { port: m.local }, hint: 'Pick another local port.' }) : e),
        );
        server.listen(m.local, '127.0.0.1', resolve);
      });
      servers.push(server);
      ports.push({ local: (server.address() as net.AddressInfo).port, remote: m.remote });
    }
  } catch (e) {
    for (const s of servers) s.close();
    throw e;
  }
  return {
    ports,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}
