// Archive paths and symlink targets are UTF-8 text: in pax records, in the
// manifest (JSON) and everywhere a path is a JS string. Linux allows any
// bytes but '/' and NUL in a name, and a name that is not UTF-8 decodes with
// U+FFFD in place of its bad bytes: a name that no longer exists (the walk's
// lstat of it finds nothing, as if removed meanwhile: the entry and all under
// it silently left out), or a symlink pointing somewhere else. Such a name is
// refused instead, saying which one and what to do: nothing is lost unsaid.
import { KompoxError } from '../domain/errors.js';

/** The name as a string when its bytes are valid UTF-8 (they decode and encode back the same), else undefined. */
export function utf8Name(raw: Buffer): string | undefined {
  const s = raw.toString('utf8');
  // U+FFFD comes only from bad bytes, or from a name that holds the character itself (then it round-trips)
  return !s.includes('\uFFFD') || Buffer.from(s, 'utf8').equals(raw) ? s : undefined;
}

/**
 * A copy of `raw` when `text` (its UTF-8 decoding) stands for bytes that are
 * not UTF-8, else undefined: decoded once by the caller, checked only when
 * the text holds U+FFFD. A copy: `raw` may be a view of a chunk a reader frees.
 */
export function notUtf8Bytes(text: string, raw: Buffer): Buffer | undefined {
  return text.includes('\uFFFD') && !Buffer.from(text, 'utf8').equals(raw) ? Buffer.from(raw) : undefined;
}

/** What to do about a name (or, with `link`, a symlink's target) that is not UTF-8; `where`: where to do it. */
function renameHint(link: boolean, where = ''): string {
  return link
    ? `Point the symlink at a UTF-8 path (ln -sfn)${where}, or remove it, then run the command again${where ? ' (for an archive: pack it again)' : ''}.`
    : `Rename it to UTF-8${where} (convmv -f latin1 -t utf8 --notest, or mv with the name in UTF-8), then run the command again${where ? ' (for an archive: pack it again)' : ''}.`;
}

/** The bytes of a name as text a user can read and type: printable ASCII as is, every other byte as \xNN. */
export function showBytes(raw: Buffer): string {
  let out = '';
  for (const b of raw) out += b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return out;
}

/**
 * The refusal of an entry of `dir` whose name (or, for a symlink `name`, its
 * target) is not valid UTF-8: nothing was archived.
 */
export function notUtf8(dir: string, raw: Buffer, link?: string): KompoxError {
  const what = link === undefined ? `${dir}/${showBytes(raw)}: its name` : `${dir}/${link}: the target of this symlink (${showBytes(raw)})`;
  return new KompoxError('unsupported', `${what} is not valid UTF-8, which a Kompox archive cannot hold (its paths are UTF-8 text); nothing was archived`, {
    code: 'archive.name.encoding',
    details: { dir, bytes: raw.toString('hex'), ...(link !== undefined ? { link } : {}) },
    hint: renameHint(link !== undefined),
  });
}

/**
 * The refusal of a member of a tar stream (`stream`: "the archive", "the
 * node's tar stream") whose name, or for the symlink or hard link `link` its
 * target, is not valid UTF-8. Its bytes travel as they are in tar (on the
 * node), but everywhere Kompox holds a path as text they would become U+FFFD:
 * a file renamed, a symlink re-pointed, a manifest that names something else.
 */
export function notUtf8Member(stream: string, raw: Buffer, link?: string): KompoxError {
  const what = link === undefined ? `${stream} holds ${showBytes(raw)}, whose name` : `${stream} holds the link ${link}, whose target (${showBytes(raw)})`;
  return new KompoxError('unsupported', `${what} is not valid UTF-8, which a Kompox archive cannot hold (its paths are UTF-8 text)`, {
    code: 'archive.name.encoding',
    details: { stream, bytes: raw.toString('hex'), ...(link !== undefined ? { link } : {}) },
    hint: renameHint(link !== undefined, ' where it was packed'),
  });
}

/**
 * The refusal of a name that came as text with U+FFFD for bytes that are not
 * UTF-8 (SFTP: ssh2 decodes names before Kompox sees them, so the bytes are
 * gone): `dir`/`name` (or, with `link`, the target `name` of the symlink
 * `dir`/`link`) as received.
 */
export function notUtf8Decoded(dir: string, name: string, link?: string): KompoxError {
  const what = link === undefined ? `${dir}/${name}: its name` : `${dir}/${link}: the target of this symlink (${name})`;
  return new KompoxError('unsupported', `${what} is not valid UTF-8 (it came over SFTP as text, with \uFFFD for the bytes that are not; such a ${link === undefined ? 'name' : 'target'} cannot be told there from one holding \uFFFD itself), which a Kompox archive cannot hold (its paths are UTF-8 text); nothing was archived`, {
    code: 'archive.name.encoding',
    details: { dir, name, ...(link !== undefined ? { link } : {}) },
    hint: renameHint(link !== undefined),
  });
}
