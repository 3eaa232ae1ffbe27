// Asking a container registry whether an image can be pulled without
// credentials (app deploy's check of private images). The adapter speaks the
// registry HTTP API anonymously (src/registry/probe.ts); tests inject their
// own. A server front end must not hand tenants' image names to a probe that
// reaches its own network (see docs/secrets-and-box.md). Types only.
import type { Op } from '../events.js';
import type { ImageRef } from '../images.js';

export type ImageVisibility = 'public' | 'private' | 'unknown';

export interface RegistryProbe {
  /**
   * `public`: the registry serves the image's manifest anonymously;
   * `private`: it answers that credentials are needed (or that there is no
   * such image for an anonymous user); `unknown`: it could not be asked
   * (`reason` says why). Never throws.
   */
  visibility(image: ImageRef, op: Op): Promise<{ visibility: ImageVisibility; reason?: string }>;
}
