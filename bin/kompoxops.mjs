#!/usr/bin/env node
import v8 from 'node:v8';
import { loadCli } from './run.mjs';

// A command-line run is short: V8's young generation need not grow to 32 MiB
// for it, and a data command's peak memory is its heap plus the buffers in
// flight (issue 11: within 100 MiB). Set before anything allocates much; see
// src/archive/memory.ts for why the growth factor, not the size flag.
v8.setFlagsFromString('--semi-space-growth-factor=1');

await (await loadCli('cli/kompoxops/main')).main(process.argv);
