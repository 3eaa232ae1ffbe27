// Every option of every binary's command tree, through the real commander
// parser (actions replaced by a recorder): a subcommand's own flags are never
// taken by a global one (issue 13: `app logs -f` must follow), and the global
// options (-C DIR, -f FILE, --debug) reach globalOptions() in every position:
// before the command, between its words, after it and after its operands.
//
// The binaries are found from package.json's "bin" (each launcher names its
// module); a module that exports buildProgram() is walked, so kompox and
// kompoxsvc join in when they grow a command tree.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CommanderError, type Command, type Option } from 'commander';
import { globalOptions } from '../../src/cli/global-options.js';
import { ROOT } from '../support/cli.js';

type Factory = () => Command;

interface Binary {
  name: string;
  module: string;
  build?: Factory;
}

async function binaries(): Promise<Binary[]> {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  const out: Binary[] = [];
  for (const [name, launcher] of Object.entries(pkg.bin)) {
    const m = /loadCli\('([^']+)'\)/.exec(readFileSync(join(ROOT, launcher), 'utf8'));
    assert.ok(m, `${launcher} loads its module with loadCli('…')`);
    const module = `src/${m[1]}.ts`;
    const mod = (await import(pathToFileURL(join(ROOT, module)).href)) as { buildProgram?: Factory };
    out.push({ name, module, build: mod.buildProgram });
  }
  return out;
}

// ---- the tree ---------------------------------------------------------------

function subcommands(cmd: Command): Command[] {
  return cmd.commands.filter((c) => c.name() !== 'help');
}

/** Every command below the root, with the words that reach it. */
function walk(cmd: Command, path: string[] = []): { cmd: Command; path: string[] }[] {
  return subcommands(cmd).flatMap((c) => [{ cmd: c, path: [...path, c.name()] }, ...walk(c, [...path, c.name()])]);
}

/** The global options: the root's, except --version. */
function globals(program: Command): Option[] {
  return program.options.filter((o) => o.long !== '--version');
}

/** A command's own options: not the copies of the global ones (helpGroup "Global Options:", see src/cli/global-options.ts). */
function ownOptions(cmd: Command): Option[] {
  return cmd.options.filter((o) => o.helpGroupHeading !== 'Global Options:');
}

function owns(cmd: Command, flag: string): boolean {
  return ownOptions(cmd).some((o) => o.short === flag || o.long === flag);
}

function flagsOf(o: Option): string[] {
  return [o.short, o.long].filter((f): f is string => f !== undefined);
}

/** Operands and mandatory options a leaf needs to parse at all (`=` form: a variadic value must not swallow what follows). */
function needs(leaf: Command): { options: string[]; operands: string[] } {
  return {
    options: leaf.options.filter((o) => o.mandatory).map((o) => `${o.long ?? o.short}=m1`),
    operands: leaf.registeredArguments.filter((a) => a.required).map((a) => (a.variadic ? 'op1' : 'op1')),
  };
}

/** What to write after a flag, and what the option's value becomes. */
function sample(o: Option): { args: string[]; value: unknown } {
  if (o.negate) return { args: [], value: false };
  if (!o.required && !o.optional) return { args: [], value: true };
  const v = o.argChoices?.[0] ?? 'v1';
  return { args: [v], value: o.variadic ? [v] : v };
}

// ---- the parser, with actions recorded --------------------------------------

interface Parsed {
  program: Command;
  /** The command whose action ran. */
  ran?: Command;
  ranArgs?: unknown[];
  error?: string;
}

async function parse(build: Factory, argv: string[]): Promise<Parsed> {
  const program = build();
  const r: Parsed = { program };
  let stderr = '';
  for (const c of [program, ...walk(program).map((e) => e.cmd)]) {
    c.exitOverride().configureOutput({ writeOut: () => {}, writeErr: (t) => (stderr += t) });
    if (subcommands(c).length === 0 && c !== program) {
      c.action((...args: unknown[]) => {
        r.ran = args.at(-1) as Command;
        r.ranArgs = args.slice(0, -2);
      });
    }
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    r.error = `${e.code}: ${stderr.trim()}`;
  }
  return r;
}

/** The leaf command at `path` of a freshly built tree (to read its options). */
function at(program: Command, path: string[]): Command {
  let c = program;
  for (const w of path) c = subcommands(c).find((s) => s.name() === w)!;
  return c;
}

const shown = (argv: string[]) => argv.join(' ');

// ---- the tests ----------------------------------------------------------------

for (const bin of await binaries()) {
  describe(`${bin.name}: options`, () => {
    const build = bin.build;
    if (!build) {
      test(`${bin.name} command tree`, { skip: `${bin.module} has no buildProgram() yet (the binary prints "not yet available")` }, () => {});
      return;
    }
    const tree = build();
    const leaves = walk(tree).filter((e) => subcommands(e.cmd).length === 0);
    const globalFlags = globals(tree);

    test('no subcommand option is shadowed by a global one: each flag, right after its command and after the operands', async () => {
      let checked = 0;
      for (const { cmd, path } of walk(tree)) {
        // An option of a command group is written after the group's name, then the words down to a leaf.
        const rest = walk(cmd).find((e) => subcommands(e.cmd).length === 0)?.path ?? [];
        const leaf = at(tree, [...path, ...rest]);
        const { options, operands } = needs(leaf);
        for (const o of ownOptions(cmd)) {
          if (o.mandatory) continue; // given anyway (needs); its other flag is checked below when it has one
          for (const flag of flagsOf(o)) {
            const { args, value } = sample(o);
            const sep = o.variadic && operands.length ? ['--'] : [];
            const positions = [[...path, flag, ...args, ...rest, ...options, ...sep, ...operands]];
            if (rest.length === 0 && operands.length && !o.variadic) positions.push([...path, ...options, ...operands, flag, ...args]);
            for (const argv of positions) {
              const r = await parse(build, argv);
              assert.equal(r.error, undefined, `${bin.name} ${shown(argv)}: ${r.error}`);
              assert.ok(r.ran, `${bin.name} ${shown(argv)} ran its action`);
              const owner = at(r.program, path);
              assert.equal(owner.getOptionValueSource(o.attributeName()), 'cli', `${bin.name} ${shown(argv)}: ${flag} was taken by another option`);
              if (!o.parseArg) assert.deepEqual(owner.getOptionValue(o.attributeName()), value, `${bin.name} ${shown(argv)}: ${flag}`);
              assert.deepEqual(globalOptions(r.ran), {}, `${bin.name} ${shown(argv)}: no global option set`);
              checked++;
            }
          }
        }
      }
      assert.ok(checked > 0, 'some subcommand options were checked');
    });

    test('every global flag reaches globalOptions() before, between and after the command words, and after the operands', async () => {
      let checked = 0;
      for (const { cmd: leaf, path } of leaves) {
        const { options, operands } = needs(leaf);
        for (const g of globalFlags) {
          for (const flag of flagsOf(g)) {
            const { args, value } = sample(g);
            // Insert the flag after i words of the path (0 = before the command), then after the operands.
            const positions: { argv: string[]; parser: Command }[] = [];
            for (let i = 0; i <= path.length; i++) {
              positions.push({ argv: [...path.slice(0, i), flag, ...args, ...path.slice(i), ...options, ...operands], parser: at(tree, path.slice(0, i)) });
            }
            positions.push({ argv: [...path, ...options, ...operands, flag, ...args], parser: leaf });
            for (const { argv, parser } of positions) {
              // Where the command parsing that word has a flag of its own, the own flag wins (the test above).
              if (parser !== tree && owns(parser, flag)) continue;
              const r = await parse(build, argv);
              assert.equal(r.error, undefined, `${bin.name} ${shown(argv)}: ${r.error}`);
              assert.ok(r.ran, `${bin.name} ${shown(argv)} ran its action`);
              assert.equal(r.ran.name(), leaf.name(), `${bin.name} ${shown(argv)} ran ${path.join(' ')}`);
              assert.deepEqual(globalOptions(r.ran), { [g.attributeName()]: value }, `${bin.name} ${shown(argv)}`);
              checked++;
            }
          }
        }
      }
      assert.ok(checked > leaves.length * globalFlags.length, `global flags checked in ${checked} positions`);
    });

    test('where a subcommand owns a global short flag, the global long flag still works after it, and the short one before it', async () => {
      for (const { cmd: leaf, path } of leaves) {
        const { operands } = needs(leaf);
        for (const g of globalFlags) {
          if (!g.short || !g.long || !owns(leaf, g.short)) continue;
          const { args, value } = sample(g);
          const own = ownOptions(leaf).find((o) => o.short === g.short)!;
          const ownSample = sample(own);
          // the own option is given by its short flag here (a mandatory one too: `secret pull set -f FILE`)
          const options = needs(leaf).options.filter((o) => !o.startsWith(`${own.long ?? own.short}=`));
          for (const argv of [
            [g.short, ...args, ...path, g.short, ...ownSample.args, ...options, ...operands],
            [...path, g.long, ...args, g.short, ...ownSample.args, ...options, ...operands],
          ]) {
            const r = await parse(build, argv);
            assert.equal(r.error, undefined, `${bin.name} ${shown(argv)}: ${r.error}`);
            assert.deepEqual(globalOptions(r.ran!), { [g.attributeName()]: value }, `${bin.name} ${shown(argv)}`);
            assert.deepEqual(r.ran!.getOptionValue(own.attributeName()), ownSample.value, `${bin.name} ${shown(argv)}: ${g.short} is ${own.long}`);
          }
        }
      }
    });

    test('a global written twice: the one last on the line wins', async () => {
      const g = globalFlags.find((o) => o.required);
      assert.ok(g, 'a global option with a value');
      const { cmd: leaf, path } = leaves[0]!;
      const { options, operands } = needs(leaf);
      const r = await parse(build, [g.long!, 'first', ...path, g.long!, 'second', ...options, ...operands]);
      assert.equal(r.error, undefined, r.error);
      assert.equal(globalOptions(r.ran!)[g.attributeName() as keyof ReturnType<typeof globalOptions>], 'second');
    });

    test(`every documented ${bin.name} command line parses to its command, with its global options`, async () => {
      const lines = documentedLines(bin.name);
      assert.ok(lines.length > 0, `the docs show ${bin.name} command lines`);
      if (bin.name === 'kompoxops') {
        for (const l of ['kompoxops -C examples/gitea app validate', 'kompoxops -C dir app validate', 'kompoxops app validate -C dir']) assert.ok(lines.includes(l), `${l} is among ${lines.join('; ')}`);
      }
      for (const line of lines) {
        const argv = line.split(/\s+/).slice(1);
        const r = await parse(build, argv);
        assert.equal(r.error, undefined, `${line}: ${r.error}`);
        assert.ok(r.ran, `${line} ran an action`);
        // The words of the line that name commands, and the globals written where no command owns the flag.
        const expected: Record<string, unknown> = {};
        let cmd = tree;
        for (let i = 0; i < argv.length; i++) {
          const word = argv[i]!;
          const sub = subcommands(cmd).find((s) => s.name() === word);
          if (sub) {
            cmd = sub;
            continue;
          }
          const g = globalFlags.find((o) => flagsOf(o).includes(word));
          if (g && (cmd === tree || !owns(cmd, word))) expected[g.attributeName()] = g.required ? argv[++i] : true;
        }
        assert.equal(r.ran, at(r.program, commandPath(cmd)), `${line} ran ${cmd.name()}`);
        assert.deepEqual(globalOptions(r.ran), expected, line);
      }
    });
  });
}

function commandPath(cmd: Command): string[] {
  const out: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) out.unshift(c.name());
  return out;
}

/**
 * Command lines written out in README.md and docs/*.md (code spans and code
 * blocks starting with the binary's name and giving an option), without synopses ([optional],
 * a|b) and comments. Includes `kompoxops -C examples/gitea app validate` and
 * the README's `kompoxops app validate -C DIR`.
 */
function documentedLines(name: string): string[] {
  const files = [join(ROOT, 'README.md'), ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join(ROOT, 'docs', f))];
  const lines = new Set<string>();
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    const blocks = /```[^\n]*\n([\s\S]*?)```/g;
    // A shell line continued with a trailing backslash is one command line.
    const blockLines = [...text.matchAll(blocks)].flatMap((m) => m[1]!.replace(/\\\n\s*/g, ' ').split('\n'));
    // A code span may wrap onto the next line of the paragraph.
    const spans = [...text.replace(blocks, '').matchAll(/`([^`]+)`/g)].map((m) => m[1]!.replace(/\s+/g, ' '));
    for (const raw of [...spans, ...blockLines]) {
      // Placeholders in capitals (DIR, FILE) stand for a value: any word does.
      const line = raw.replace(/\s+#.*$/, '').trim().replace(/\b[A-Z][A-Z0-9_]+\b/g, (w) => w.toLowerCase());
      if (!line.startsWith(`${name} `) || !/\s-/.test(line)) continue; // a command named in prose (`kompoxops app tunnel`) is no command line
      if (/[[\]|…<>'"]|\.\.\.|--help/.test(line)) continue;
      lines.add(line);
    }
  }
  // What our own messages tell users to type (src/config/loader.ts) and the issue's cases.
  if (name === 'kompoxops') {
    for (const l of ['kompoxops init -C dir -f k.yml', 'kompoxops -C dir -f nope.yml app validate', 'kompoxops -C dir --debug app validate']) lines.add(l);
  }
  return [...lines];
}

describe('kompoxops app logs -f (issue 13)', async () => {
  const { buildProgram } = await import('../../src/cli/kompoxops/main.js');
  const cases: { argv: string[]; follow?: true; container?: string; globals: Record<string, unknown> }[] = [
    { argv: ['app', 'logs', '-c', 'web', '-f'], follow: true, container: 'web', globals: {} },
    { argv: ['app', 'logs', '-f', '-c', 'web'], follow: true, container: 'web', globals: {} },
    { argv: ['app', 'logs', '-fc', 'web'], follow: true, container: 'web', globals: {} },
    { argv: ['-f', 'k.yml', 'app', 'logs', '-f'], follow: true, globals: { file: 'k.yml' } },
    { argv: ['app', 'logs', '--file', 'k.yml', '-f'], follow: true, globals: { file: 'k.yml' } },
    { argv: ['-C', 'd', 'app', 'logs', '--follow', '-C', 'e'], follow: true, globals: { chdir: 'e' } },
    { argv: ['app', 'logs', '--debug'], globals: { debug: true } },
  ];
  for (const c of cases) {
    test(`kompoxops ${shown(c.argv)}`, async () => {
      const r = await parse(buildProgram, c.argv);
      assert.equal(r.error, undefined, r.error);
      assert.equal(r.ran?.name(), 'logs');
      assert.equal(r.ran.opts().follow, c.follow);
      assert.equal(r.ran.opts().container, c.container);
      assert.deepEqual(globalOptions(r.ran), c.globals);
    });
  }

  test('after --, a command line is the command’s: no global or own option is taken from it', async () => {
    const r = await parse(buildProgram, ['app', 'exec', '-c', 'web', '--', 'ls', '-f', 'x', '-C', 'y', '--debug']);
    assert.equal(r.error, undefined, r.error);
    assert.equal(r.ran?.name(), 'exec');
    assert.deepEqual(r.ranArgs, [['ls', '-f', 'x', '-C', 'y', '--debug']]);
    assert.equal(r.ran.opts().container, 'web');
    assert.deepEqual(globalOptions(r.ran), {});
  });
});

test('the binary: a usage error in a subcommand (unknown option, extra argument) exits 2 with commander\'s message, like one at the root', async () => {
  const { runCli } = await import('../support/cli.js');
  for (const [args, message] of [
    [['app', 'logs', '--bogus'], /^error: unknown option '--bogus'/],
    [['app', 'logs', '-f', 'extra'], /^error: too many arguments for 'logs'/],
    [['--bogus'], /^error: unknown option '--bogus'/],
  ] as const) {
    const r = await runCli([...args], { cwd: ROOT });
    assert.equal(r.code, 2, `kompoxops ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});
