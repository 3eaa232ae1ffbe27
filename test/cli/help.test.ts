// Every registered command answers --help with exit 0 (the command list comes
// from the real program, so new commands are covered automatically). Every
// command's help is asked of commander in this process, and a few through the
// real binary: one process per command timed out once under full-suite load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommanderError, type Command } from 'commander';
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

/** `kompoxops PATH --help` in this process: commander's exit code and what it printed. */
async function helpInProcess(path: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const program = buildProgram();
  let stdout = '';
  let stderr = '';
  // Every command, not only the root: commander exits through the command that parsed --help.
  const quiet = (cmd: Command): void => {
    cmd.exitOverride().configureOutput({ writeOut: (t) => (stdout += t), writeErr: (t) => (stderr += t) });
    cmd.commands.forEach(quiet);
  };
  quiet(program);
  try {
    await program.parseAsync(['node', 'kompoxops', ...path, '--help']);
    return { code: 0, stdout, stderr };
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    return { code: e.code === 'commander.helpDisplayed' ? 0 : e.exitCode, stdout, stderr };
  }
}

test('every command answers --help with exit 0 and its usage', async () => {
  assert.ok(paths.length > 10, `commands found: ${paths.length}`);
  for (const p of paths) {
    const r = await helpInProcess(p);
    assert.equal(r.code, 0, `kompoxops ${p.join(' ')} --help exited ${r.code}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^Usage: kompoxops ${p.join(' ')}\\b`, 'm'), `kompoxops ${p.join(' ')} --help`);
  }
});

test('the binary answers --help with exit 0 for a command group and a leaf of each group', async () => {
  const groups = paths.filter((p) => p.length === 1);
  const sample = [...groups, ...groups.flatMap((g) => paths.filter((p) => p.length === 2 && p[0] === g[0]).slice(0, 1))];
  assert.ok(sample.some((p) => p.length === 2), 'at least one subcommand');
  for (const p of sample) {
    const r = await runCli([...p, '--help']);
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
