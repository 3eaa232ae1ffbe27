// Every registered command answers --help with exit 0 (the command list comes
// from the real program, so new commands are covered automatically).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/kompoxops/main.js';
import { runCli } from '../support/cli.js';

function commandPaths(cmd: Command, prefix: string[] = []): string[][] {
  const out: string[][] = [];
  for (const sub of cmd.commands) {
    if (sub.name() === 'help') continue;
    const path = [...prefix, sub.name()];
    out.push(path, ...commandPaths(sub, path));
  }
  return out;
}

const paths = commandPaths(buildProgram());

test('the program registers the commands this engineer owns', () => {
  const names = paths.map((p) => p.join(' '));
  for (const n of ['init', 'app', 'app validate', 'cluster']) assert.ok(names.includes(n), `${n} is registered`);
});

test('kompoxops --help lists the command groups', async () => {
  const r = await runCli(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^Usage: kompoxops /m);
  for (const n of ['init', 'app', 'cluster']) assert.match(r.stdout, new RegExp(`^  ${n}\\b`, 'm'));
});

test('every command answers --help with exit 0', async () => {
  // in parallel: one process per command
  const results = await Promise.all(paths.map(async (p) => ({ p, r: await runCli([...p, '--help']) })));
  for (const { p, r } of results) {
    assert.equal(r.code, 0, `kompoxops ${p.join(' ')} --help exited ${r.code}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^Usage: kompoxops ${p.join(' ')}\\b`, 'm'), `kompoxops ${p.join(' ')} --help`);
  }
});

test('an unknown command is a usage error (exit 2), not a crash', async () => {
  const r = await runCli(['frobnicate']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command/);
});

test('commands with -o/--output <format> offer json, yaml and table', () => {
  const program = buildProgram();
  const withOutput: string[] = [];
  const walk = (cmd: Command, prefix: string[]) => {
    for (const sub of cmd.commands) {
      const path = [...prefix, sub.name()];
      // `-o FILE` (cluster kubeconfig writes a file) is not a data format option
      const o = sub.options.find((x) => x.long === '--output' && /<format>/.test(x.flags));
      if (o) {
        withOutput.push(path.join(' '));
        assert.equal(o.short, '-o', `${path.join(' ')}: -o is the short form of --output`);
        assert.match(o.description, /json.*yaml.*table/, `${path.join(' ')} --output`);
      }
      walk(sub, path);
    }
  };
  walk(program, []);
  assert.ok(withOutput.includes('app validate'), 'app validate has -o');
});
