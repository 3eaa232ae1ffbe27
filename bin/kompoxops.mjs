#!/usr/bin/env node
import './cli-flags.mjs';
import { loadCli } from './run.mjs';

await (await loadCli('cli/kompoxops/main')).main(process.argv);
