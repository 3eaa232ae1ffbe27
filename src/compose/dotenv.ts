// `.env` / env_file parsing with the rules of compose-go's dotenv package:
// `export ` prefix, `KEY=value` or `KEY: value`, `#` comments (line start, or
// after whitespace in an unquoted value), single quotes literal, double quotes
// with escapes and multi-line values, variable expansion in unquoted and
// double-quoted values (earlier keys of the file, then the given environment).
import { KompoxError } from '../domain/errors.js';
import { substitute, TemplateError, type Lookup } from './template.js';

export interface DotenvOptions {
  /** Variables from outside the file; they win over the file's own for expansion (as compose does). */
  lookup?: Lookup;
  /** For messages. */
  file: string;
  /** Filled with the line each key was defined on (for source positions). */
  lines?: Record<string, number>;
  /**
   * The file holds secrets: messages name the line and the variable, never
   * the file's text, and a name without a value (which would inherit from the
   * environment) is an error.
   */
  redact?: boolean;
}

export function parseDotenv(text: string, opts: DotenvOptions): Record<string, string> {
  const out: Record<string, string> = {};
  const lookup: Lookup = (k) => opts.lookup?.(k) ?? (Object.prototype.hasOwnProperty.call(out, k) ? out[k] : undefined);
  const src = text.replace(/\r\n?/g, '\n').replace(/^\uFEFF/, '');
  let i = 0;
  let line = 1;
  const fail = (msg: string, hint?: string): never => {
    throw new KompoxError('config', msg, { location: { file: opts.file, line }, hint });
  };
  while (i < src.length) {
    // one statement per iteration
    const nl = src.indexOf('\n', i);
    const lineEnd = nl < 0 ? src.length : nl;
    const raw = src.slice(i, lineEnd);
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) {
      i = lineEnd + 1;
      line++;
      continue;
    }
    let stmt = raw.replace(/^\s+/, '');
    let offset = i + (raw.length - stmt.length);
    if (/^export\s+/.test(stmt)) {
      const m = /^export\s+/.exec(stmt)!;
      stmt = stmt.slice(m[0].length);
      offset += m[0].length;
    }
    const sep = stmt.search(/[=:]/);
    if (sep < 0) {
      // `KEY` alone: inherit from the environment when set (compose does the same)
      const key = stmt.replace(/\s+#.*$/, '').trim();
      // a line without `=` may be a value on a line of its own: never echoed
      if (opts.redact) fail('this line is not NAME=value (its text is not shown: the file holds secrets)', 'Write one NAME=value per line.');
      checkKey(key, fail);
      const v = opts.lookup?.(key);
      if (v !== undefined) {
        out[key] = v;
        if (opts.lines) opts.lines[key] = line;
      }
      i = lineEnd + 1;
      line++;
      continue;
    }
    const key = stmt.slice(0, sep).trim();
    if (opts.redact && !KEY_RE.test(key)) fail('the variable name on this line is not valid (it is not shown: the file holds secrets)', 'Names start with a letter or "_" and contain letters, digits, "_", "." or "-".');
    checkKey(key, fail);
    let p = offset + sep + 1;
    // skip spaces (not newlines) before the value
    while (p < src.length && (src[p] === ' ' || src[p] === '\t')) p++;
    const q = src[p];
    const startLine = line;
    let value: string;
    if (q === '"' || q === "'") {
      let j = p + 1;
      while (j < src.length) {
        if (q === '"' && src[j] === '\\') {
          j += 2;
          continue;
        }
        if (src[j] === q) break;
        j++;
      }
      if (j >= src.length) {
        line = startLine;
        fail(`unterminated quoted value for ${key}`, `Close the ${q === '"' ? 'double' : 'single'} quote`);
      }
      const body = src.slice(p + 1, j);
      line += (body.match(/\n/g) ?? []).length;
      if (q === "'") value = body;
      else value = expand(unescapeDouble(body), lookup, key, opts.file, startLine, opts.redact);
      const eol = src.indexOf('\n', j);
      const after = src.slice(j + 1, eol < 0 ? src.length : eol).trim();
      if (after !== '' && !after.startsWith('#')) {
        line = startLine;
        fail(opts.redact ? `unexpected text after the quoted value of ${key}` : `unexpected text after the quoted value of ${key}: "${after}"`, 'Put comments after a space and "#"');
      }
      i = eol < 0 ? src.length : eol + 1;
      line++;
    } else {
      let v = src.slice(p, lineEnd);
      // a comment starts at `#` preceded by whitespace
      const m = /(^|\s)#/.exec(v);
      if (m) v = v.slice(0, m.index);
      value = expand(v.trim(), lookup, key, opts.file, line, opts.redact);
      i = lineEnd + 1;
      line++;
    }
    out[key] = value;
    if (opts.lines) opts.lines[key] = startLine;
  }
  return out;
}

const KEY_RE = /^[A-Za-z_][A-Za-z0-9_.\-]*$/;

function checkKey(key: string, fail: (m: string, h?: string) => never): void {
  if (!KEY_RE.test(key)) {
    fail(`invalid variable name "${key}"`, 'Names start with a letter or "_" and contain letters, digits, "_", "." or "-"');
  }
}

/** Double-quoted escapes: \n and \r become control characters, `\$` stays for the expander, `\x` becomes x. */
function unescapeDouble(s: string): string {
  return s.replace(/\\(.)/gs, (_m, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c === '$' ? '\\$' : c));
}

function expand(v: string, lookup: Lookup, key: string, file: string, line: number, redact?: boolean): string {
  try {
    return substitute(v, lookup, { backslashEscape: true });
  } catch (e) {
    if (e instanceof TemplateError) {
      throw new KompoxError('config', redact ? `the value of ${key} has a $ that cannot be expanded (${e.kind === 'invalid' ? 'not a variable reference' : 'a required variable is not set'})` : `${e.message} (variable ${key})`, {
        location: { file, line },
        hint: e.kind === 'invalid' ? 'Write $$ or \\$ for a literal $' : 'Set the variable or give it a default',
      });
    }
    throw e;
  }
}
