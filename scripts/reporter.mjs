// A small node:test reporter: one line per failing or skipped test (with the
// reason), a dot-free summary per file, and a last line "N passed, N failed".
import { relative } from 'node:path';

export default async function* reporter(source) {
  let passed = 0, failed = 0, skipped = 0;
  const failures = [];
  const files = new Map();
  for await (const ev of source) {
    const d = ev.data ?? {};
    const file = d.file ? relative(process.cwd(), d.file) : '';
    if (ev.type === 'test:pass' || ev.type === 'test:fail') {
      // Count leaf tests only (suites report as tests with children).
      if (d.details?.type === 'suite') continue;
    }
    if (ev.type === 'test:pass') {
      if (d.skip !== undefined && d.skip !== false) {
        skipped++;
        yield `skip  ${file} › ${d.name}${typeof d.skip === 'string' ? ` — ${d.skip}` : ''}\n`;
      } else if (d.todo !== undefined && d.todo !== false) {
        skipped++;
        yield `todo  ${file} › ${d.name}\n`;
      } else {
        passed++;
        files.set(file, (files.get(file) ?? 0) + 1);
      }
    } else if (ev.type === 'test:fail') {
      failed++;
      const err = d.details?.error;
      const cause = err?.cause ?? err;
      const msg = (cause?.stack ?? cause?.message ?? String(cause)).split('\n').slice(0, 12).join('\n      ');
      failures.push(`FAIL  ${file} › ${d.name}\n      ${msg}`);
      yield `FAIL  ${file} › ${d.name}\n`;
    } else if (ev.type === 'test:diagnostic' && !/^(tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) [\d.]+$/.test(d.message ?? '')) {
      yield `note  ${d.message}\n`;
    } else if (ev.type === 'test:stderr' || ev.type === 'test:stdout') {
      if (process.env.KOMPOX_TEST_VERBOSE) yield d.message;
    }
  }
  for (const [f, n] of files) yield `ok    ${f} (${n})\n`;
  if (failures.length) yield `\n${failures.join('\n\n')}\n\n`;
  yield `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`;
}
