// Bad input never crashes the loader: deterministic mutations of the corpus
// files either load or fail with a KompoxError that names a file position.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadDir } from '../support/source.js';
import { KompoxError } from '../../src/domain/errors.js';
import { project } from './helpers.js';
import { sharedData } from '../support/shared.js';

const { dir: corpus, skip } = sharedData('corpus/compose');

/** mulberry32: a tiny seeded PRNG so failures reproduce. */
function rng(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MUTATIONS: Array<(lines: string[], r: () => number) => void> = [
  (l, r) => void l.splice(Math.floor(r() * l.length), 1), // drop a line
  (l, r) => {
    const i = Math.floor(r() * l.length);
    l.splice(i, 0, l[i] ?? ''); // duplicate a line
  },
  (l, r) => {
    const i = Math.floor(r() * l.length);
    l[i] = ' ' + (l[i] ?? ''); // break indentation
  },
  (l, r) => {
    const i = Math.floor(r() * l.length);
    l[i] = (l[i] ?? '').replace(/:/, ''); // drop a colon
  },
  (l, r) => {
    const i = Math.floor(r() * l.length);
    l[i] = (l[i] ?? '').replace(/([a-z])/, '$1$1'); // typo in a key or value
  },
  (l, r) => {
    const i = Math.floor(r() * l.length);
    l[i] = (l[i] ?? '') + ' ${'; // broken interpolation
  },
  (l, r) => {
    const i = Math.floor(r() * l.length);
    l[i] = (l[i] ?? '').replace(/- (.*)$/, '- [$1'); // unbalanced flow sequence
  },
];

describe('loader robustness', { skip }, () => {
  it('mutated corpus files load or fail with a located KompoxError', async () => {
    const r = rng(20261120);
    const samples = readdirSync(corpus).filter((d) => existsSync(join(corpus, d, 'compose.yaml')));
    let failures = 0;
    for (let n = 0; n < 300; n++) {
      const sample = samples[Math.floor(r() * samples.length)]!;
      const lines = readFileSync(join(corpus, sample, 'compose.yaml'), 'utf8').split('\n');
      MUTATIONS[Math.floor(r() * MUTATIONS.length)]!(lines, r);
      const files: Record<string, string> = { 'compose.yaml': lines.join('\n') };
      const env = join(corpus, sample, '.env');
      if (existsSync(env)) files['.env'] = readFileSync(env, 'utf8');
      const dir = project(files, sample.toLowerCase());
      try {
        await loadDir(dir, { env: {} });
      } catch (e) {
        failures++;
        if (process.env.KOMPOX_SHOW_ERRORS && e instanceof KompoxError) console.log(`${sample}: ${(await import("../../src/domain/errors.js")).formatError(e)}`);
        assert.ok(e instanceof KompoxError, `mutation ${n} of ${sample} threw ${String(e)}\n${lines.join('\n')}`);
        assert.equal(e.kind, 'config');
        const located = e.location?.file !== undefined || ('diagnostics' in e && Array.isArray(e.diagnostics));
        assert.ok(located, `mutation ${n} of ${sample}: error without a location: ${e.message}`);
      }
    }
    assert.ok(failures > 30, `the mutations produced errors (${failures})`);
  });
});
