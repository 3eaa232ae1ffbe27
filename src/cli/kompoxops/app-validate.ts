import type { Command } from 'commander';

/** Registers this group's commands (not yet implemented). */
export function register(_parent: Command): void {}
