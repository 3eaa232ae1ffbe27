// Gathers what a writer produces into one buffer (an export to a stream, in tests).
import { PassThrough } from 'node:stream';

/** Runs `fn` with a fresh stream and returns every byte it wrote. */
export async function collect(fn: (out: PassThrough) => Promise<unknown>): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await fn(out);
  out.end();
  return Buffer.concat(chunks);
}
