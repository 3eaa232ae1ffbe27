// Variable substitution in compose values, with the syntax of compose-go's
// `template` package: $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?err}, ${VAR?err},
// ${VAR:+alt}, ${VAR+alt}, nesting inside the default/alternative, and `$$`.

export type Lookup = (name: string) => string | undefined;

export class TemplateError extends Error {
  constructor(
    message: string,
    readonly kind: 'invalid' | 'required',
    readonly variable?: string,
  ) {
    super(message);
  }
}

export interface SubstituteHooks {
  /** Called for a variable used without default that is not set (compose warns and uses ""). */
  onUnset?: (name: string) => void;
  /** `\$` is a literal `$` (dotenv values), not a template error. */
  backslashEscape?: boolean;
}

const NAME_START = /[_a-zA-Z]/;
const NAME_CHAR = /[_a-zA-Z0-9]/;

export function substitute(input: string, lookup: Lookup, hooks: SubstituteHooks = {}): string {
  if (!input.includes('$')) return input;
  let out = '';
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (hooks.backslashEscape && c === '\\' && input[i + 1] === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = input[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next !== undefined && NAME_START.test(next)) {
      let j = i + 1;
      while (j < input.length && NAME_CHAR.test(input[j]!)) j++;
      const name = input.slice(i + 1, j);
      out += resolvePlain(name, lookup, hooks);
      i = j;
      continue;
    }
    if (next === '{') {
      const end = matchingBrace(input, i + 1);
      if (end < 0) throw invalid(input);
      out += braced(input.slice(i + 2, end), input, lookup, hooks);
      i = end + 1;
      continue;
    }
    throw invalid(input);
  }
  return out;
}

function invalid(input: string): TemplateError {
  return new TemplateError(`invalid interpolation format in "${input}"`, 'invalid');
}

function resolvePlain(name: string, lookup: Lookup, hooks: SubstituteHooks): string {
  const v = lookup(name);
  if (v === undefined) {
    hooks.onUnset?.(name);
    return '';
  }
  return v;
}

/** Index of the `}` closing the `{` at `open`, honouring nested `${...}`. */
function matchingBrace(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (c === '$' && s[i + 1] === '$') {
      i++;
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

function braced(body: string, whole: string, lookup: Lookup, hooks: SubstituteHooks): string {
  let j = 0;
  if (j < body.length && NAME_START.test(body[j]!)) {
    j++;
    while (j < body.length && NAME_CHAR.test(body[j]!)) j++;
  }
  const name = body.slice(0, j);
  if (name === '') throw invalid(whole);
  const rest = body.slice(j);
  if (rest === '') return resolvePlain(name, lookup, hooks);
  const op = rest.startsWith(':') ? rest.slice(0, 2) : rest.slice(0, 1);
  const arg = rest.slice(op.length);
  const value = lookup(name);
  const sub = () => substitute(arg, lookup, hooks);
  switch (op) {
    case ':-':
      return value === undefined || value === '' ? sub() : value;
    case '-':
      return value === undefined ? sub() : value;
    case ':+':
      return value !== undefined && value !== '' ? sub() : '';
    case '+':
      return value !== undefined ? sub() : '';
    case ':?':
    case '?':
      if (value === undefined || (op === ':?' && value === '')) {
        const msg = sub();
        throw new TemplateError(
          `required variable ${name} is missing a value${msg ? `: ${msg}` : ''}`,
          'required',
          name,
        );
      }
      return value;
    default:
      throw invalid(whole);
  }
}
