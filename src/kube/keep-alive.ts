// One kept-alive connection for a client's REST requests. client-node's
// applyToHTTPSOptions makes a new https.Agent (without keep-alive) on every
// call, so every request paid for its own TCP and TLS handshake: a transfer
// through a helper pod makes about twenty requests (namespace, sweep, disk
// lookup, apply, waits, deletes), each two round trips longer than it needs
// to be against a remote API server. The agent is kept for as long as the TLS
// material it is made from stays the same (a credential plugin that hands out
// a new client certificate gets a new agent); tokens travel in headers and
// are fresh on every request anyway. Proxy agents are left as client-node
// makes them.
import { createHash } from 'node:crypto';
import https from 'node:https';

/** The agent options that decide which server is trusted and who we are to it. */
const TLS_FIELDS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername', 'ciphers', 'crl', 'secureProtocol', 'minVersion', 'maxVersion'] as const;

function tlsKey(options: Record<string, unknown>): string {
  const h = createHash('sha256');
  for (const f of TLS_FIELDS) {
    const v = options[f];
    const parts = Array.isArray(v) ? v : [v];
    h.update(`${f}:${parts.length}:`);
    for (const p of parts) h.update(Buffer.isBuffer(p) ? p : `${JSON.stringify(p ?? null)}|`);
  }
  return h.digest('hex');
}

export class KeptAliveAgent {
  private current?: { key: string; agent: https.Agent };

  /** Replaces the agent in request options fresh from applyToHTTPSOptions with the kept-alive one for the same TLS settings. */
  use(opts: https.RequestOptions): void {
    const made = opts.agent;
    // exactly https.Agent: a proxy agent (a subclass) stays as it is
    if (!(made instanceof https.Agent) || made.constructor !== https.Agent) return;
    const options = (made as unknown as { options: Record<string, unknown> }).options;
    const key = tlsKey(options);
    if (this.current?.key !== key) {
      this.current?.agent.destroy();
      this.current = { key, agent: new https.Agent({ ...options, keepAlive: true }) };
    }
    made.destroy();
    opts.agent = this.current.agent;
  }

  /** Closes the kept connections (idle ones never keep the process alive: Node unrefs them). */
  close(): void {
    this.current?.agent.destroy();
    this.current = undefined;
  }
}
