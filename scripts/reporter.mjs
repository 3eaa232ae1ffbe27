// Our node:test reporter. It names every failing test, every skipped (or
// todo) test and every skipped suite with its reason, prints one "ok" line per
// file, and ends with the line "N passed, N failed" (", N skipped" follows
// when anything was skipped), which CI reads.
//
// What is counted:
// - passed / failed: tests (leaves, and tests with subtests by their own
//   outcome). A suite counts as failed only for a failure of its own (a hook,
//   or its body threw), never again for its tests' failures.
// - skipped: skipped and todo tests, plus suites that did not run at all
//   (`describe.skip`, `describe(name, { skip: reason })`, todo suites, suites
//   with no tests in them): their tests are never reported, so the suite
//   itself is counted once. A suite whose tests ran but were all skipped is
//   named too ("all N tests skipped"); its tests are what is counted.
//
// node:test reports a test's children before the test itself, in declaration
// order, so the tree of each top-level test is complete when its own event
// arrives; its lines are printed then, with the full path (suite › test).
import { relative, resolve } from 'node:path';

const STATS = /^(tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) [\d.]+$/;

/** The reason given to skip/todo, or the nearest ancestor's (a test in a todo suite is todo with `true`). */
function reasonOf(v, inherited) {
  if (typeof v === 'string' && v !== '') return v;
  return inherited ?? 'no reason given';
}

function count(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function isSet(v) {
  return v !== undefined && v !== false;
}

/** The first lines of an error, as a FAIL detail. */
function describeError(err) {
  const cause = err?.cause ?? err;
  return String(cause?.stack ?? cause?.message ?? cause).split('\n').slice(0, 12).join('\n      ');
}

/** How many leaf tests below a node, and how many of them skipped (for "all N tests skipped"). */
function leavesOf(node) {
  return node.children.length === 0
    ? { total: node.type === 'suite' ? 0 : 1, skipped: node.type !== 'suite' && (isSet(node.skip) || isSet(node.todo)) ? 1 : 0 }
    : node.children.reduce((a, c) => ({ total: a.total + c.leaves.total, skipped: a.skipped + c.leaves.skipped }), { total: 0, skipped: 0 });
}

/** Marks a node and everything below it todo (the reason stays its todo suite's). */
function inheritTodo(node) {
  if (!isSet(node.todo)) node.todo = true;
  for (const c of node.children) inheritTodo(c);
  node.leaves = leavesOf(node);
}

export default async function* reporter(source) {
  const totals = { passed: 0, failed: 0, skippedTests: 0, suitesNotRun: 0, suitesAllSkipped: 0 };
  const failures = [];
  const okPerFile = new Map();
  // Per file and nesting level: nodes reported but whose parent is not yet.
  const pending = new Map();
  // Per file: the last lines it wrote to stderr (a file that fails to load says why only there).
  const stderrTail = new Map();

  const take = (file, nesting) => {
    const key = `${file}\0${nesting}`;
    const nodes = pending.get(key) ?? [];
    pending.delete(key);
    return nodes;
  };

  /** Counts a finished top-level tree and returns its report lines. */
  function settle(node, path, inherited) {
    const lines = [];
    const name = [...path, node.name].join(' › ');
    const where = node.isFile ? node.file : `${node.file} › ${name}`;
    const isSuite = node.type === 'suite';
    const own = [node.skip, node.todo].find((v) => typeof v === 'string' && v !== '');
    for (const child of node.children) lines.push(...settle(child, [...path, node.name], own ?? inherited));

    const failureType = node.error?.failureType;
    if (node.failed && !(isSet(node.todo) && !isSuite)) {
      // A suite (or a test with subtests) fails again for each failed subtest; count only its own failure.
      if (failureType !== 'subtestsFailed') {
        totals.failed++;
        let detail = describeError(node.error);
        if (node.children.length === 0 && path.length === 0 && node.isFile) {
          const tail = stderrTail.get(node.file) ?? [];
          const said = tail.join('').split('\n').filter((l) => l.trim() !== '' && !/^\s+at /.test(l)).slice(-12);
          if (said.length) detail += `\n      stderr:\n        ${said.join('\n        ')}`;
        }
        failures.push(`FAIL  ${where}\n      ${detail}`);
        lines.push(`FAIL  ${where}\n`);
      }
      return lines;
    }
    if (isSuite || (node.children.length > 0 && !isSet(node.skip) && !isSet(node.todo))) {
      if (!isSuite) {
        // A test with subtests that passed: its own body is a test.
        totals.passed++;
        okPerFile.set(node.file, (okPerFile.get(node.file) ?? 0) + 1);
        return lines;
      }
      const leaves = node.leaves;
      if (node.children.length === 0) {
        totals.suitesNotRun++;
        const why = isSet(node.skip) ? reasonOf(node.skip, inherited) : isSet(node.todo) ? `todo: ${reasonOf(node.todo, inherited)}` : 'it has no tests';
        lines.push(`skip  ${where} (suite, not run) — ${why}\n`);
      } else if (leaves.total > 0 && leaves.skipped === leaves.total) {
        totals.suitesAllSkipped++;
        lines.push(`skip  ${where} (suite: ${leaves.total === 1 ? 'its only test' : `all ${leaves.total} tests`} skipped)\n`);
      }
      return lines;
    }
    // A test (with or without subtests) by its own outcome.
    if (isSet(node.todo)) {
      totals.skippedTests++;
      lines.push(`todo  ${where} — ${reasonOf(node.todo, inherited)}${node.failed ? ' (fails, as expected)' : ''}\n`);
    } else if (isSet(node.skip)) {
      totals.skippedTests++;
      const ran = node.children.length ? ` (its ${count(node.children.length, 'subtest')} ran and ${node.children.length === 1 ? 'is' : 'are'} counted)` : '';
      lines.push(`skip  ${where} — ${reasonOf(node.skip, inherited)}${ran}\n`);
    } else {
      totals.passed++;
      okPerFile.set(node.file, (okPerFile.get(node.file) ?? 0) + 1);
    }
    return lines;
  }

  for await (const ev of source) {
    const d = ev.data ?? {};
    if (ev.type === 'test:pass' || ev.type === 'test:fail') {
      const file = d.file ? relative(process.cwd(), d.file) : '';
      const children = take(file, d.nesting + 1);
      const node = {
        name: d.name,
        file,
        isFile: d.file !== undefined && resolve(String(d.name)) === d.file,
        type: d.details?.type,
        failed: ev.type === 'test:fail',
        error: d.details?.error,
        skip: d.skip,
        todo: d.todo,
        children,
      };
      // Node 24 marks the tests of a todo suite as todo; Node 22 runs them as plain
      // tests. Inherit it here so that both runtimes count them alike.
      if (node.type === 'suite' && isSet(node.todo)) for (const c of children) inheritTodo(c);
      node.leaves = leavesOf(node);
      if (d.nesting > 0) {
        const key = `${file}\0${d.nesting}`;
        pending.set(key, [...(pending.get(key) ?? []), node]);
      } else {
        for (const line of settle(node, [], undefined)) yield line;
      }
    } else if (ev.type === 'test:diagnostic' && !STATS.test(d.message ?? '')) {
      yield `note  ${d.message}\n`;
    } else if (ev.type === 'test:stderr' || ev.type === 'test:stdout') {
      if (ev.type === 'test:stderr' && d.file) {
        const file = relative(process.cwd(), d.file);
        stderrTail.set(file, [...(stderrTail.get(file) ?? []), d.message].slice(-40));
      }
      if (process.env.KOMPOX_TEST_VERBOSE) yield d.message;
    }
  }
  for (const [f, n] of okPerFile) yield `ok    ${f} (${n})\n`;
  if (failures.length) yield `\n${failures.join('\n\n')}\n\n`;
  const skipped = totals.skippedTests + totals.suitesNotRun;
  if (skipped || totals.suitesAllSkipped) {
    const parts = [
      count(totals.skippedTests, 'test'),
      totals.suitesNotRun ? `${count(totals.suitesNotRun, 'suite')} not run` : '',
      totals.suitesAllSkipped ? `${count(totals.suitesAllSkipped, 'suite')} with every test skipped` : '',
    ].filter(Boolean);
    yield `skipped: ${parts.join(', ')} (each named above with the reason)\n`;
  }
  yield `${totals.passed} passed, ${totals.failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`;
}
