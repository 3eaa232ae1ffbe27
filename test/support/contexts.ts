// The AppContext tests use when only names matter (namespace, labels): a K3s
// app `name` on cluster `cls` of provider `prv` in service `svc`.
import type { AppContext } from '../../src/domain/model.js';

export function testAppContext(name: string): AppContext {
  return {
    service: { name: 'svc' },
    provider: { name: 'prv', service: 'svc', driver: 'k3s', settings: {} },
    cluster: { name: 'cls', provider: 'prv', auth: { type: 'kubectl' }, ingress: { controller: 'traefik', namespace: 'traefik' }, settings: {} },
    app: { name, cluster: 'cls', compose: '', ingress: {}, resources: {}, settings: {}, volumes: [] },
  };
}
