// Every benchmark in bench/ still runs to its end and prints its tables
// (issue 11 is measured by them, and nothing else runs them: the SSH
// benchmark's import rows failed for two sessions unnoticed, once the disk's
// sync started running a command the benchmark's proxy had hidden). Each runs
// as `npm run bench` runs it, a process of its own on a tiny data set: the
// numbers say nothing here; the rows each must print, with numbers in them,
// are the check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sshdMissing } from '../support/sshd.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

type Case = { file: string; args: string[]; rows: string[]; needs?: () => string | undefined };

const needsDist = (): string | undefined =>
  existsSync(join(root, 'dist/cli/kompoxops/main.js')) ? undefined : 'dist/ is missing (npm run build): the benchmarks run the compiled CLI';

const CASES: Case[] = [
  { file: 'convert.bench.ts', args: [], rows: [] },
  { file: 'startup.bench.ts', args: ['1'], rows: ['`kompoxops --help`', '`kompoxops -C examples/gitea app validate`'], needs: needsDist },
  {
    file: 'archive.bench.ts',
    args: ['0.01', '1'],
    rows: ['disk export', 'disk import', 'snapshot create', 'snapshot restore', 'disk export --format tar.gz (once)', 'Kompox tar.zst (v2, level 5)'],
    needs: needsDist,
  },
  {
    file: 'archive-ssh.bench.ts',
    args: ['0.01', '1'],
    rows: [
      '`ssh host \'tar -c \\| zstd -T0 -3\' > file` (peer)',
      'Kompox, SFTP fallback (pipelined reads, file by file)',
      'Kompox, SFTP fallback (file by file)',
      'disk export',
      'disk import',
      'snapshot create vs `ssh host \'tar -c \\| zstd -T0 -3 > f\'`',
      'disk copy vs `ssh host \'cp -a src dst\'`',
    ],
    needs: () => needsDist() ?? sshdMissing(),
  },
  { file: 'cluster.bench.ts', args: ['0.01', '1'], rows: ['Kompox `disk export --via cluster` (pod start, transfer, pod removal)'], needs: needsDist },
  { file: 'many-files.bench.ts', args: ['300', '1'], rows: ['300 | export over SSH', '300 | import through the cluster'], needs: () => needsDist() ?? sshdMissing() },
  { file: 'node-local-many.bench.ts', args: ['300', '1'], rows: ['300 | snapshot', '300 | restore', '300 | copy'], needs: needsDist },
  { file: 'cli-memory.bench.ts', args: ['0.01', '1'], rows: ['disk export', 'disk import over SSH'], needs: () => needsDist() ?? sshdMissing() },
];

/** The cells after `name` in the table row that starts with it (or has it as its second cell), or undefined. */
function rowAfter(output: string, name: string): string[] | undefined {
  for (const line of output.split('\n')) {
    if (!line.startsWith('| ')) continue;
    const at = line.indexOf(`${name} |`);
    if (at !== 2 && !(at > 2 && line.slice(2, at).split(' | ').length === 2)) continue;
    return line
      .slice(at + name.length + 2, line.length - 1)
      .split(' | ')
      .map((c) => c.trim());
  }
  return undefined;
}

for (const c of CASES) {
  const why = c.needs?.();
  test(`bench/${c.file} runs to its end and prints its rows`, { skip: why ? `skipped: ${why}` : false, timeout: 240_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kompox-bench-run-'));
    try {
      const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', join(root, 'bench', c.file), ...c.args],
          { cwd: root, env: { ...process.env, KOMPOX_BENCH_DIR: dir, TMPDIR: dir }, maxBuffer: 16 * 1024 * 1024, timeout: 230_000 },
          (e, stdout, stderr) => done({ code: e ? ((e as { code?: number }).code ?? null) : 0, stdout, stderr }),
        );
      });
      assert.equal(code, 0, `bench/${c.file} failed:\n${stderr.slice(-3000)}`);
      assert.doesNotMatch(stdout, /\bNaN\b|undefined/, `bench/${c.file} printed a number it could not compute:\n${stdout}`);
      assert.match(stdout, /\d/, 'it printed its results');
      for (const name of c.rows) {
        const cells = rowAfter(stdout, name);
        assert.ok(cells, `bench/${c.file} printed no row "${name}":\n${stdout}`);
        assert.ok(
          cells.some((cell) => /^\d[\d,]*(\.\d+)?%?$/.test(cell)),
          `the row "${name}" of bench/${c.file} holds no number: ${JSON.stringify(cells)}`,
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
