// Strings that YAML 1.1 readers (the spec, the yaml package's 1.1 schema, Go's
// yaml.v2 behind kubectl and Helm) read as something other than a string, and
// other text that is awkward to print. Shared by the printer and kubectl tests.

export const YAML11_TRAPS = [
  // booleans, in every case the readers know and a few they do not
  ...['y', 'Y', 'yes', 'Yes', 'YES', 'yEs', 'n', 'N', 'no', 'No', 'NO', 'nO', 'on', 'On', 'ON', 'oN', 'off', 'Off', 'OFF', 'oFF', 'true', 'True', 'TRUE', 'tRUE', 'false', 'False', 'FALSE'],
  // nulls and merge/value keys
  ...['~', 'null', 'Null', 'NULL', 'nULL', '<<', '=', ''],
  // integers: octal, 0o, hex, binary, underscores, signs, Go's base prefixes
  ...['0777', '0o17', '0O17', '0o1_7', '+0o17', '0x1F', '0X1F', '-0x1f', '0x_1F', '0b1010', '0B11', '+0b1', '1_000', '1__0', '08', '09', '+1', '-0', '0', '007', '12345678901234567890'],
  // floats: exponents, leading/trailing dots, underscores, inf/nan
  ...['1e3', '1E3', '1e+3', '1_0e3', '.5', '+.5', '-.5', '1.', '1_0.5', '1.0', '.inf', '-.inf', '+.INF', '.Inf', '.nan', '.NaN', '.NAN'],
  // sexagesimal (base 60) numbers and timestamps
  ...['12:30', '1:20:30', '-1:30', '190:20:30.15', '2001-12-14', '2001-12-14t21:59:43.10-05:00', '2001-12-14 21:59:43.10 -5', '2002-12-14T00:00:00Z'],
  // characters YAML 1.1 takes for line breaks or refuses, and other awkward text
  ...['a\u2028b', 'x\u0085y', 'p\u2029', 'del\x7f', 'c1\x9b', '\ufeffbom', 'nul\x00', 'bell\x07', 'tab\there', ' lead', 'trail ', 'a: b', 'a #b', '#c', '- x', '? q', '%YAML', '---', '...', '@at', '`tick', '!tag', '&anchor', '*alias', '{x}', '[y]', '"q"', "'s'", 'line1\nline2\n', 'no newline\nat end', '\n', 'héllo ✓', '日本語'],
  // block scalars Go's reader gets wrong: a tab first, only blank lines
  ...['\tindented\nline', '\n\tx\n', ' \n', '  \n\n', '\t\n', ' \t\n'],
];


function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

// Pieces that make up numbers, words, timestamps and breaks in YAML 1.1.
const PIECES = ['0', '1', '7', '9', '_', '.', ':', '-', '+', 'e', 'E', 'x', 'X', 'o', 'O', 'b', 'B', 'f', 'y', 'n', 'Y', 'N', 'es', 'o', 'ff', 'n', 'rue', 'alse', 'ull', '~', 'inf', 'nan', ' ', 't', 'T', 'Z', '#', '\n', '\t', '\u2028', '\u0085', '\x7f', '\ufeff', '"', "'", '\\', '<<', '=', '%', '@', 'é'];

/** `count` strings of 1-6 pieces, the same for the same seed. */
export function generatedStrings(seed: number, count: number): string[] {
  const r = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = 1 + Math.floor(r() * 6);
    let s = '';
    for (let j = 0; j < n; j++) s += PIECES[Math.floor(r() * PIECES.length)];
    out.push(s);
  }
  return out;
}

/** Multi-line texts built from generated strings (blank lines, tabs and spaces at line starts and ends). */
export function generatedTexts(seed: number, count: number): string[] {
  const g = generatedStrings(seed, count + 2);
  return g.slice(0, count).map((x, i) => (i % 2 === 0 ? `${x}${g[i + 1]} \n\t ${g[i + 2]}` : `\n${x}\n \n`));
}
