// Interpolation conformance, cases from compose-go template/template_test.go.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { substitute, TemplateError } from '../../src/compose/template.js';

const vars: Record<string, string> = { FOO: 'first', BAR: '' };
const lookup = (k: string) => vars[k];
const sub = (s: string) => substitute(s, lookup);

describe('template substitution', () => {
  const table: Array<[string, string]> = [
    ['foo', 'foo'],
    ['$${foo}', '${foo}'],
    ['$$FOO', '$FOO'],
    ['$FOO-bar', 'first-bar'],
    ['This $FOO var', 'This first var'],
    ['This ${FOO} var', 'This first var'],
    ['This ${missing} var', 'This  var'],
    ['This ${BAR} var', 'This  var'],
    ['ok ${missing:-def}', 'ok def'],
    ['ok ${missing-def}', 'ok def'],
    ['ok ${BAR:-def}', 'ok def'],
    ['ok ${FOO:-def}', 'ok first'],
    ['ok ${BAR-def}', 'ok '],
    ['ok ${BAR:-/non:-alphanumeric}', 'ok /non:-alphanumeric'],
    ['ok ${UNSET_VAR-$FOO}', 'ok first'],
    ['ok ${UNSET_VAR-${FOO}}', 'ok first'],
    ['ok ${UNSET_VAR-${FOO} ${FOO}}', 'ok first first'],
    ['ok ${BAR:-$FOO}', 'ok first'],
    ['ok ${BAR:-${FOO}}', 'ok first'],
    ['ok ${BAR:-${FOO} ${FOO}}', 'ok first first'],
    ['ok ${A:-${B:-${FOO}}}', 'ok first'],
    ['ok ${FOO:?err}', 'ok first'],
    ['ok ${FOO?err}', 'ok first'],
    ['ok ${BAR?err}', 'ok '],
    ['${UNSET_VAR-myerror?msg}', 'myerror?msg'],
    ['${FOO?bar-baz}', 'first'],
    ['${FOO:+alt}', 'alt'],
    ['${BAR:+alt}', ''],
    ['${BAR+alt}', 'alt'],
    ['${UNSET+alt}', ''],
    ['${FOO+${FOO}-x}', 'first-x'],
    ['$FOO$FOO', 'firstfirst'],
    ['${FOO}_suffix', 'first_suffix'],
    ['$FOO_suffix', ''],
  ];
  for (const [input, expected] of table) {
    it(`${JSON.stringify(input)} → ${JSON.stringify(expected)}`, () => {
      assert.equal(sub(input), expected);
    });
  }

  for (const bad of ['${', '$}', '${}', '${ }', '${ foo}', '${foo }', '${foo!}', 'echo $1', 'tail $']) {
    it(`rejects the invalid template ${JSON.stringify(bad)}`, () => {
      assert.throws(() => sub(bad), (e: unknown) => e instanceof TemplateError && e.kind === 'invalid');
    });
  }

  const required: Array<[string, string]> = [
    ['not ok ${UNSET_VAR:?Mandatory Variable Unset}', 'required variable UNSET_VAR is missing a value: Mandatory Variable Unset'],
    ['not ok ${BAR:?Mandatory Variable Empty}', 'required variable BAR is missing a value: Mandatory Variable Empty'],
    ['not ok ${UNSET_VAR:?}', 'required variable UNSET_VAR is missing a value'],
    ['not ok ${UNSET_VAR?Mandatory Variable Unset}', 'required variable UNSET_VAR is missing a value: Mandatory Variable Unset'],
    ['not ok ${UNSET_VAR?}', 'required variable UNSET_VAR is missing a value'],
    ['not ok ${UNSET_VAR:?Mandatory Variable ${FOO}}', 'required variable UNSET_VAR is missing a value: Mandatory Variable first'],
    ['${UNSET_VAR?bar-baz}', 'required variable UNSET_VAR is missing a value: bar-baz'],
  ];
  for (const [input, message] of required) {
    it(`required: ${input}`, () => {
      assert.throws(
        () => sub(input),
        (e: unknown) => e instanceof TemplateError && e.kind === 'required' && e.message === message,
      );
    });
  }

  it('reports each unset variable used without a default', () => {
    const unset: string[] = [];
    assert.equal(substitute('${A}-$B-${C:-c}-${FOO}', lookup, { onUnset: (n) => unset.push(n) }), '--c-first');
    assert.deepEqual(unset, ['A', 'B']);
  });

  it('only evaluates the branch it needs (no error from an unused required default)', () => {
    assert.equal(sub('${FOO:-${NOPE:?never}}'), 'first');
  });
});
