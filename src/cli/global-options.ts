// Global options (-C DIR, -f FILE, --debug) that behave as kubectl's do: they
// may stand anywhere on the line, and a subcommand's own option wins where the
// two share a flag (`kompoxops app logs -f` follows; `-f FILE` before the
// command, or `--file FILE` anywhere, still names the kompoxops.yml).
//
// Why not one of commander 14's switches alone:
// - By default the root program recognises its options anywhere on the line,
//   before any subcommand sees them, so a global `-f <file>` swallows
//   `app logs -f` (issue 13).
// - enablePositionalOptions() stops each command's option parsing at its
//   subcommand, so the subcommand's flags win, but then a global after the
//   subcommand is an unknown option (`kompoxops init -C dir`, which our own
//   hints print, or `app validate --debug`).
// - passThroughOptions() hands everything after the first operand on
//   unparsed; that is for commands that wrap another command line, not for
//   the tree.
// So: positional options on every command, plus a copy of each global option
// on every subcommand, minus the flags (short or long, separately) that the
// subcommand defines itself. The copies are listed under "Global Options:" in
// the subcommand's help, and globalOptions() merges them, the one written
// last on the line winning, as with any repeated option.
import { Option, type Command } from 'commander';

export interface GlobalOptions {
  chdir?: string;
  file?: string;
  debug?: boolean;
}

/** The copies made by shareGlobalOptions, per command (a subcommand's own option of the same name is not one). */
const copies = new WeakMap<Command, Option[]>();

function ownFlags(cmd: Command): Set<string> {
  const flags = new Set<string>(['-h', '--help']);
  for (const o of cmd.options) {
    if (o.short) flags.add(o.short);
    if (o.long) flags.add(o.long);
  }
  return flags;
}

function descendants(cmd: Command): Command[] {
  return cmd.commands.flatMap((c) => [c, ...descendants(c)]);
}

/**
 * Makes the root program's options (all but --version) usable after any
 * subcommand too, as described above. Call it once the whole command tree is
 * built.
 */
export function shareGlobalOptions(program: Command): Command {
  const globals = program.options.filter((o) => o.long !== '--version');
  program.enablePositionalOptions();
  for (const cmd of descendants(program)) {
    cmd.enablePositionalOptions();
    const taken = ownFlags(cmd);
    const names = new Set(cmd.options.map((o) => o.attributeName()));
    const made: Option[] = [];
    for (const g of globals) {
      if (names.has(g.attributeName())) continue; // the subcommand's own option of that name wins outright
      const flags = [g.short, g.long].filter((f): f is string => f !== undefined && !taken.has(f));
      if (flags.length === 0) continue;
      const value = /\s([<[].*)$/.exec(g.flags)?.[1];
      const copy = new Option(`${flags.join(', ')}${value ? ` ${value}` : ''}`, g.description).helpGroup('Global Options:');
      if (g.parseArg) copy.argParser(g.parseArg);
      cmd.addOption(copy);
      made.push(copy);
    }
    copies.set(cmd, made);
  }
  return program;
}

/**
 * The global options as the user gave them, from any command of the tree:
 * the root's values, overridden by each copy set on the command line, from
 * the root down to `cmd` (that is, left to right on the line).
 */
export function globalOptions(cmd: Command): GlobalOptions {
  const chain: Command[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) chain.unshift(c);
  const out: Record<string, unknown> = { ...chain[0]!.opts() };
  for (const c of chain.slice(1)) {
    for (const o of copies.get(c) ?? []) {
      const key = o.attributeName();
      if (c.getOptionValueSource(key) === 'cli') out[key] = c.getOptionValue(key);
    }
  }
  return out as GlobalOptions;
}
