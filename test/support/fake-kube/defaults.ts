// Defaults a real API server fills in when it stores an object (the
// SetDefaults_* functions of k8s.io/kubernetes/pkg/apis/{core,apps}/v1 and
// the Service IP allocator). Clients that compare what they applied with what
// is stored must ignore them; with these in the fake, a diff that does not is
// caught by the tests. Fields nobody applied are owned by no manager, so SSA
// never removes them, as on the real server.
import { isObj } from './ssa.js';

type Obj = Record<string, unknown>;

function imagePullPolicy(image: unknown): string {
  const s = String(image ?? '');
  if (s.includes('@')) return 'IfNotPresent';
  const last = s.split('/').pop() ?? '';
  const tag = last.includes(':') ? last.split(':').pop() : undefined;
  return !tag || tag === 'latest' ? 'Always' : 'IfNotPresent';
}

function container(c: Obj): void {
  c.terminationMessagePath ??= '/dev/termination-log';
  c.terminationMessagePolicy ??= 'File';
  c.imagePullPolicy ??= imagePullPolicy(c.image);
  if (Array.isArray(c.ports)) for (const p of c.ports) if (isObj(p)) p.protocol ??= 'TCP';
  for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
    const pr = c[probe];
    if (!isObj(pr)) continue;
    pr.timeoutSeconds ??= 1;
    pr.periodSeconds ??= 10;
    pr.successThreshold ??= 1;
    pr.failureThreshold ??= 3;
    if (isObj(pr.httpGet)) pr.httpGet.scheme ??= 'HTTP';
  }
}

function podSpec(spec: Obj): void {
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.securityContext ??= {};
  for (const list of ['initContainers', 'containers']) {
    if (Array.isArray(spec[list])) for (const c of spec[list] as unknown[]) if (isObj(c)) container(c);
  }
  if (Array.isArray(spec.volumes)) {
    for (const v of spec.volumes) {
      if (!isObj(v)) continue;
      if (isObj(v.configMap)) v.configMap.defaultMode ??= 420;
      if (isObj(v.secret)) v.secret.defaultMode ??= 420;
    }
  }
}

/** Fills in the defaults of `kind`; the callbacks allocate a Service IP and node ports. */
export function applyServerDefaults(kind: string, obj: Obj, nextClusterIP: () => string, nextNodePort: () => number, live?: Obj): void {
  const spec = isObj(obj.spec) ? obj.spec : undefined;
  if (!spec) return;
  switch (kind) {
    case 'Deployment': {
      const strategy = (spec.strategy ??= { type: 'RollingUpdate' }) as Obj;
      if (strategy.type === 'RollingUpdate') strategy.rollingUpdate ??= { maxSurge: '25%', maxUnavailable: '25%' };
      const t = spec.template;
      if (isObj(t)) {
        if (isObj(t.spec)) podSpec(t.spec);
        t.metadata ??= {};
      }
      break;
    }
    case 'Pod':
      podSpec(spec);
      break;
    case 'Service': {
      spec.type ??= 'ClusterIP';
      spec.sessionAffinity ??= 'None';
      if (spec.type !== 'ExternalName') {
        spec.clusterIP ??= nextClusterIP();
        spec.clusterIPs ??= [spec.clusterIP];
        spec.ipFamilies ??= ['IPv4'];
        spec.ipFamilyPolicy ??= 'SingleStack';
        spec.internalTrafficPolicy ??= 'Cluster';
      }
      if (spec.type === 'LoadBalancer' || spec.type === 'NodePort') spec.externalTrafficPolicy ??= 'Cluster';
      if (spec.type === 'LoadBalancer') spec.allocateLoadBalancerNodePorts ??= true;
      if (Array.isArray(spec.ports)) {
        for (const p of spec.ports) {
          if (!isObj(p)) continue;
          p.protocol ??= 'TCP';
          p.targetPort ??= p.port;
          if (spec.type === 'LoadBalancer' || spec.type === 'NodePort') {
            // the real server merges ports by (port, protocol), so an allocated node port stays
            const old = (isObj(live?.spec) && Array.isArray(live.spec.ports) ? (live.spec.ports as Obj[]) : []).find((o) => o.port === p.port && (o.protocol ?? 'TCP') === p.protocol);
            p.nodePort ??= (old?.nodePort as number | undefined) ?? nextNodePort();
          }
        }
      }
      break;
    }
    case 'PersistentVolumeClaim':
    case 'PersistentVolume':
      spec.volumeMode ??= 'Filesystem';
      if (kind === 'PersistentVolume') spec.persistentVolumeReclaimPolicy ??= 'Retain';
      break;
    case 'Ingress':
      break;
  }
}
