// The one way Kompox prints YAML: manifests (`app validate --out-manifest`),
// `-o yaml`, kubeconfig files, Helm values and the canonical compose model.
//
// Whatever reads it must see the same data whether it speaks YAML 1.2 (the
// `yaml` package, docker compose) or YAML 1.1 (kubectl and the API server's
// sigs.k8s.io/yaml, Helm, PyYAML): in YAML 1.1 a plain `yes`, `off`, `y`,
// `0777`, `1_000`, `12:30` or `2001-12-14` is not a string, and kubectl then
// sends a bool or number where Kubernetes wants a string. So every string a
// YAML 1.1 or 1.2 reader would take for something else is quoted.
import { Document, isScalar, visit } from 'yaml';

export interface YamlTextOptions {
  /** Sort every mapping's keys (default: keep insertion order). */
  sortMapEntries?: boolean;
}

// `compat: 'yaml-1.1'` below quotes what the yaml package's own 1.1 schema
// would read as bool, int, float, null, timestamp or base-60 number. These are
// quoted on top: the 1.1 words in any letter case (the spec lists only three
// spellings, but readers differ, and quoting costs nothing) and the 1.1 merge
// and value keys.
const YAML11_WORDS = /^(?:y|n|yes|no|on|off|true|false|null|~|<<|=)$/i;

// Characters a YAML 1.1 reader takes for line breaks (NEL, LS, PS) or refuses
// (DEL, C1 controls, BOM, U+FFFE/U+FFFF) but JSON.stringify, which the yaml
// package uses for double-quoted scalars, leaves as they are. Strings that
// contain them are double-quoted and the characters written as escapes.
const UNSAFE_RAW = /[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]/;
const UNSAFE_RAW_ALL = /[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]/g;

function escapeChar(ch: string): string {
  if (ch === '\x85') return '\\N';
  if (ch === '\u2028') return '\\L';
  if (ch === '\u2029') return '\\P';
  const code = ch.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

// A block scalar (`|`) whose first line starts with a tab is valid YAML, but
// Go's reader takes that tab for indentation and fails ("found a tab character
// where an indentation space is expected"); such strings are double-quoted.
const TAB_FIRST = /^[\n ]*\t/;
// A block scalar of only blank lines has no line to take its indentation from:
// the yaml package keeps the spaces as content, Go's reader drops them.
const BLANK = /^[ \t\n]+$/;

/** True when the string must not be written plain or as a block (beyond what `compat` catches). */
function needsQuotes(s: string): boolean {
  return YAML11_WORDS.test(s) || UNSAFE_RAW.test(s) || goYamlNumber(s) || TAB_FIRST.test(s) || BLANK.test(s);
}

/**
 * Go's YAML 1.1 reader (gopkg.in/yaml.v2, behind kubectl, sigs.k8s.io/yaml and
 * Helm) drops every `_` and then tries strconv.ParseInt with base prefixes
 * (0b, 0o, 0x in either case, with a sign) and a float pattern: `0o1_7`,
 * `+0o17` or `0X1F` become numbers there although neither YAML spec says so.
 */
function goYamlNumber(s: string): boolean {
  if (!/^[-+0-9]/.test(s)) return false;
  const p = s.replace(/_/g, '');
  return /^[-+]?(?:0[bB][01]+|0[oO][0-7]+|0[xX][0-9a-fA-F]+|[0-9]+)$/.test(p) || /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/.test(p);
}

/** One YAML document for `value` that reads the same under YAML 1.1 and 1.2. */
export function toYamlText(value: unknown, opts: YamlTextOptions = {}): string {
  const doc = new Document(value, {
    aliasDuplicateObjects: false,
    compat: 'yaml-1.1',
    ...(opts.sortMapEntries ? { sortMapEntries: true } : {}),
  });
  let escapes = false;
  visit(doc, {
    Scalar(_key, node) {
      if (!isScalar(node)) return;
      if (typeof node.value === 'string' && needsQuotes(node.value)) {
        node.type = 'QUOTE_DOUBLE';
        if (UNSAFE_RAW.test(node.value)) escapes = true;
      }
    },
  });
  let out = doc.toString({ lineWidth: 0 });
  // Only double-quoted scalars can hold these characters (forced above), where escapes are read as the character itself.
  if (escapes) out = out.replace(UNSAFE_RAW_ALL, escapeChar);
  return out;
}

/** Several documents, each preceded by `---` (the manifest format of `--out-manifest`). */
export function toYamlDocuments(values: readonly unknown[], opts: YamlTextOptions = {}): string {
  return values.map((v) => `---\n${toYamlText(v, opts)}`).join('');
}
