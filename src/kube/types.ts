// The KubeClient port lives in the domain (src/domain/ports/kube.ts); the
// adapter's modules import it from here.
export type * from '../domain/ports/kube.js';
export { toRef, refString } from '../domain/ports/kube.js';
