// Scratch directories with a kompoxops.yml (and files beside it) for config tests.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface Scratch {
  dir: string;
  write(rel: string, text: string): string;
  cleanup(): void;
}

export function scratch(files: Record<string, string> = {}): Scratch {
  const dir = mkdtempSync(join(tmpdir(), 'kompox-config-'));
  const s: Scratch = {
    dir,
    write(rel, text) {
      const p = join(dir, rel);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, text);
      return p;
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
  for (const [k, v] of Object.entries(files)) s.write(k, v);
  return s;
}

/** A complete, valid kompoxops.yml (the spec's example, K3s flavour). */
export const GOOD = `version: 1
service:
  name: ops
provider:
  name: k3s1
  driver: k3s
  settings:
    K3S_SSH: admin@node1
cluster:
  name: c1
  auth:
    type: kubectl
    kubeconfig: ./kubeconfig
    context: c1
  domain: apps.example.com
  settings:
    ACME_EMAIL: ops@example.com
app:
  name: my-app
  compose: compose.yml
  ingress:
    http_80: www.example.com
    http_8080: admin.example.com
  resources:
    cpu: 500m
    memory: 1Gi
  settings:
    DISK_SIZE: 50
    FLAG: true
  volumes:
    - name: data
      size: 10Gi
    - name: logs
      size: 500Mi
      options:
        TYPE: ssd
`;

export const COMPOSE = `services:
  web:
    image: nginx:1.27
    ports: ["80:80"]
`;
