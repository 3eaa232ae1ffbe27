// Node objects as a kubelet registers them: the well-known labels
// (kubernetes.io/hostname, os, arch, topology.kubernetes.io/zone and region),
// Ready, addresses, capacity, and nodeInfo with the server's version.
import type { Obj } from './store.js';

export interface FakeNodeSpec {
  name: string;
  /** topology.kubernetes.io/zone (omitted when undefined). */
  zone?: string;
  /** topology.kubernetes.io/region (default: the zone without its last `-` part, or `region-1`). */
  region?: string;
  labels?: Record<string, string>;
  taints?: { key: string; value?: string; effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' }[];
  unschedulable?: boolean;
}

let nodeSeq = 0;

export function nodeObject(n: FakeNodeSpec, version: string): Obj {
  const ip = `10.0.0.${++nodeSeq + 10}`;
  const topology: Record<string, string> = {};
  if (n.zone) {
    topology['topology.kubernetes.io/zone'] = n.zone;
    topology['topology.kubernetes.io/region'] = n.region ?? (n.zone.includes('-') ? n.zone.replace(/-[^-]*$/, '') : 'region-1');
  }
  const resources = { cpu: '4', memory: '8148848Ki', pods: '110', 'ephemeral-storage': '101430960Ki', 'hugepages-2Mi': '0' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: n.name,
      labels: {
        'beta.kubernetes.io/arch': 'amd64',
        'beta.kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/hostname': n.name,
        'kubernetes.io/os': 'linux',
        ...topology,
        ...(n.labels ?? {}),
      },
      annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'volumes.kubernetes.io/controller-managed-attach-detach': 'true' },
    },
    spec: {
      podCIDR: `10.42.${nodeSeq}.0/24`,
      podCIDRs: [`10.42.${nodeSeq}.0/24`],
      ...(n.taints?.length ? { taints: n.taints } : {}),
      ...(n.unschedulable ? { unschedulable: true } : {}),
    },
    status: {
      addresses: [
        { type: 'InternalIP', address: ip },
        { type: 'Hostname', address: n.name },
      ],
      allocatable: resources,
      capacity: resources,
      conditions: [
        { type: 'MemoryPressure', status: 'False', reason: 'KubeletHasSufficientMemory', message: 'kubelet has sufficient memory available' },
        { type: 'DiskPressure', status: 'False', reason: 'KubeletHasNoDiskPressure', message: 'kubelet has no disk pressure' },
        { type: 'PIDPressure', status: 'False', reason: 'KubeletHasSufficientPID', message: 'kubelet has sufficient PID available' },
        { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        architecture: 'amd64',
        bootID: '00000000-0000-0000-0000-000000000000',
        containerRuntimeVersion: 'containerd://1.7.22',
        kernelVersion: '6.1.0-fake',
        kubeProxyVersion: version,
        kubeletVersion: version,
        machineID: 'fake',
        operatingSystem: 'linux',
        osImage: 'Debian GNU/Linux 12 (bookworm)',
        systemUUID: 'fake',
      },
    },
  };
}
