#!/usr/bin/env node
import { loadCli } from './run.mjs';

await (await loadCli('cli/unavailable')).main('kompox');
