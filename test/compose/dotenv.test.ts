// dotenv conformance: cases from compose-go dotenv/godotenv_test.go and the
// docker compose documentation of .env syntax.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KompoxError } from '../../src/domain/errors.js';
import { parseDotenv } from '../../src/compose/dotenv.js';

const parse = (text: string, env: Record<string, string> = {}) => parseDotenv(text, { file: '.env', lookup: (k) => env[k] });

describe('dotenv', () => {
  it('plain values, spaces around = and empty values', () => {
    assert.deepEqual(parse('OPTION_A=1\nOPTION_B=2\nOPTION_C= 3\nOPTION_D =4\nOPTION_E = 5\nOPTION_F = \nOPTION_G=\nOPTION_H=1 2'), {
      OPTION_A: '1',
      OPTION_B: '2',
      OPTION_C: '3',
      OPTION_D: '4',
      OPTION_E: '5',
      OPTION_F: '',
      OPTION_G: '',
      OPTION_H: '1 2',
    });
  });

  it('single quotes are literal, double quotes expand escapes', () => {
    const r = parse(`A='1'\nB=''\nC='\\n'\nD="1"\nE=""\nF="\\n"\nG = "echo 'asd'"\nH='line 1\\nline 2'\nI="a\\"b"\nJ="back\\\\slash"`);
    assert.equal(r.A, '1');
    assert.equal(r.B, '');
    assert.equal(r.C, '\\n');
    assert.equal(r.D, '1');
    assert.equal(r.E, '');
    assert.equal(r.F, '\n');
    assert.equal(r.G, "echo 'asd'");
    assert.equal(r.H, 'line 1\\nline 2');
    assert.equal(r.I, 'a"b');
    assert.equal(r.J, 'back\\slash');
  });

  it('export prefix and YAML-style colon', () => {
    assert.deepEqual(parse("export OPTION_A=2\nexport OPTION_B='\\n'\nOPTION_C: 3"), { OPTION_A: '2', OPTION_B: '\\n', OPTION_C: '3' });
  });

  it('comments: full line, after whitespace; # inside a word or quotes is kept', () => {
    const r = parse('# a comment\n  # indented comment\nqux=thud # fred # other\nthud=fred#qux # other\nfoo="bar#baz" # comment\nbar=\'x # y\'\nurl=http://h/p?a=b#frag');
    assert.deepEqual(r, { qux: 'thud', thud: 'fred#qux', foo: 'bar#baz', bar: 'x # y', url: 'http://h/p?a=b#frag' });
  });

  it('multi-line double-quoted values', () => {
    const r = parse('CERT="-----BEGIN-----\nabc\n-----END-----"\nNEXT=1');
    assert.equal(r.CERT, '-----BEGIN-----\nabc\n-----END-----');
    assert.equal(r.NEXT, '1');
  });

  it('multi-line single-quoted values stay literal', () => {
    assert.deepEqual(parse("A='x\n$Y'\nB=2"), { A: 'x\n$Y', B: '2' });
  });

  it('expands earlier variables in unquoted and double-quoted values, not in single quotes', () => {
    const r = parse("OPTION_A=1\nOPTION_B=${OPTION_A}\nOPTION_C=$OPTION_B\nOPTION_D=${OPTION_A}${OPTION_B}\nOPTION_E=${OPTION_NOT_DEFINED}\nOPTION_F=\"x-${OPTION_A}\"\nOPTION_G='${OPTION_A}'\nOPTION_H=${UNDEF:-dflt}");
    assert.deepEqual(r, { OPTION_A: '1', OPTION_B: '1', OPTION_C: '1', OPTION_D: '11', OPTION_E: '', OPTION_F: 'x-1', OPTION_G: '${OPTION_A}', OPTION_H: 'dflt' });
  });

  it('the outer environment wins over the file when expanding', () => {
    assert.deepEqual(parse('A=file\nB=${A}', { A: 'env' }), { A: 'file', B: 'env' });
  });

  it('\\$ is a literal dollar sign in double quotes and unquoted values', () => {
    assert.deepEqual(parse('A="\\$HOME"\nB=\\$X'), { A: '$HOME', B: '$X' });
  });

  it('a key alone inherits from the environment, or is skipped', () => {
    assert.deepEqual(parse('FROM_ENV\nMISSING\n', { FROM_ENV: 'yes' }), { FROM_ENV: 'yes' });
  });

  it('CRLF line endings and BOM', () => {
    assert.deepEqual(parse('\uFEFFA=1\r\nB="2"\r\n'), { A: '1', B: '2' });
  });

  it('an unterminated quote is an error naming the line', () => {
    assert.throws(
      () => parse('A=1\nB="oops\nC=3'),
      (e: unknown) => e instanceof KompoxError && e.location?.line === 2 && e.location.file === '.env' && /unterminated/.test(e.message),
    );
  });

  it('an invalid key is an error naming the line', () => {
    assert.throws(
      () => parse('A=1\n\nBAD KEY=1'),
      (e: unknown) => e instanceof KompoxError && e.location?.line === 3 && /BAD KEY/.test(e.message),
    );
  });

  it('a required variable missing in an expansion is an error', () => {
    assert.throws(() => parse('A=${NOPE:?must be set}'), (e: unknown) => e instanceof KompoxError && /NOPE/.test(e.message) && e.location?.line === 1);
  });
});
