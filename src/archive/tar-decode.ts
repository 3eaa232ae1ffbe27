// Reading tar headers directly, for the usual entry. Every entry of a Kompox
// archive is a pax header plus a ustar header, and the `tar` package decodes
// them into two Header objects and a Pax object, every field through string
// slicing and regular expressions: on an import of 20,000 small files that
// was about a tenth of the main thread's time, plus the garbage. This decoder
// reads the fields Kompox uses straight from the bytes, and gives up
// (undefined) on anything unusual: base-256 numbers, a bad checksum, an
// unknown type, a pax record it cannot read exactly, global pax headers. The
// caller then decodes with the `tar` package as before, so unusual headers
// are read exactly as they were (a test compares both on many headers).
//
// One deliberate difference: pax records are read by their length prefix, as
// POSIX defines them, so a value holding a newline (a file name may) is read
// whole; the `tar` package splits records at newlines and loses such a path.
//
// A name or link target whose bytes are not UTF-8 is still decoded (with
// U+FFFD), and its bytes are kept beside it (badPath, badLinkpath): TarReader
// refuses such a member by name, since as text it names something else.
import { notUtf8Bytes } from './utf8-names.js';

/** Type names as the `tar` package gives them (types.name), for the typeflags read here. */
const TYPES: Record<number, string> = {
  0x30: 'File',
  0x00: 'File', // as `tar` reads it (a v7 header's NUL typeflag)
  0x31: 'Link',
  0x32: 'SymbolicLink',
  0x33: 'CharacterDevice',
  0x34: 'BlockDevice',
  0x35: 'Directory',
  0x36: 'FIFO',
  0x37: 'ContiguousFile',
  0x78: 'ExtendedHeader',
  0x67: 'GlobalExtendedHeader',
  0x4c: 'NextFileHasLongPath',
  0x4b: 'NextFileHasLongLinkpath',
};
/** Typeflags of filesystem entries: the only ones a pending pax header applies to (as in `tar`). */
const FS_TYPES = new Set([0x30, 0x00, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37]);

/** The pax values Kompox uses. */
export interface PaxFields {
  path?: string;
  linkpath?: string;
  size?: number;
  uid?: number;
  gid?: number;
  mode?: number;
  mtimeMs?: number;
  /** The bytes of `path` when they are not UTF-8 (`path` is then their lossy decoding). */
  badPath?: Buffer;
  /** The bytes of `linkpath` when they are not UTF-8. */
  badLinkpath?: Buffer;
}

/** A header's fields with pending pax values applied. */
export interface DecodedHeader {
  path: string;
  type: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  linkpath: string;
  /** The bytes of `path` when they are not UTF-8 (`path` is then their lossy decoding): the member is refused. */
  badPath?: Buffer;
  /** The bytes of `linkpath` when they are not UTF-8. */
  badLinkpath?: Buffer;
}

/** Keys read as they are; any other key but these is ignored (as `tar` ignores it). */
const IGNORED = new Set(['atime', 'ctime', 'uname', 'gname', 'charset', 'comment', 'hdrcharset']);
const DIGITS = /^[0-9]+$/;
const SECONDS = /^(-?)([0-9]+)(?:\.([0-9]+))?$/;

/**
 * The records of a pax extended header body (`LEN key=value\n` each), added
 * to `into`; undefined when a record is malformed or a key is one this
 * decoder does not read exactly as `tar` does.
 */
export function parsePax(body: Buffer, into: PaxFields = {}): PaxFields | undefined {
  let at = 0;
  // the `tar` package's writer pads nothing, but GNU tar may leave NULs at the end
  let end = body.length;
  while (end > 0 && body[end - 1] === 0) end--;
  while (at < end) {
    let len = 0;
    let i = at;
    while (i < end && body[i]! >= 0x30 && body[i]! <= 0x39 && i - at < 10) len = len * 10 + (body[i++]! - 0x30);
    if (i === at || body[i] !== 0x20 || len <= i - at + 1 || at + len > end || body[at + len - 1] !== 0x0a) return undefined;
    const eq = body.indexOf(0x3d, i + 1);
    if (eq < 0 || eq >= at + len - 1) return undefined;
    const key = body.toString('latin1', i + 1, eq);
    const value = body.toString('utf8', eq + 1, at + len - 1);
    if (value.includes('\0')) return undefined;
    switch (key) {
      case 'path':
      case 'linkpath': {
        into[key] = value;
        const bad = key === 'path' ? 'badPath' : 'badLinkpath';
        const raw = body.subarray(eq + 1, at + len - 1);
        const bytes = notUtf8Bytes(value, raw);
        if (bytes) into[bad] = bytes;
        else delete into[bad];
        break;
      }
      case 'size':
      case 'uid':
      case 'gid':
      case 'mode': {
        if (!DIGITS.test(value)) return undefined;
        const n = Number(value);
        if (!Number.isSafeInteger(n)) return undefined;
        into[key] = n;
        break;
      }
      case 'mtime': {
        const m = SECONDS.exec(value);
        if (!m) return undefined;
        const frac = (m[3] ?? '').padEnd(3, '0').slice(0, 3);
        // whole milliseconds from the text (float math on the seconds loses the last digit)
        into.mtimeMs = Number(`${m[1]}${m[2]}`) * 1000 + (m[1] ? -1 : 1) * Number(frac);
        break;
      }
      default:
        if (!IGNORED.has(key) && !key.startsWith('SCHILY.') && !key.startsWith('LIBARCHIVE.')) return undefined;
    }
    at += len;
  }
  return into;
}

/** An octal number field (leading spaces, digits, then a space or NUL); undefined for anything else (base-256, garbage, empty). */
function octal(b: Buffer, off: number, size: number): number | undefined {
  let i = off;
  const end = off + size;
  while (i < end && b[i] === 0x20) i++;
  let n = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = b[i]!;
    if (c >= 0x30 && c <= 0x37) {
      n = n * 8 + (c - 0x30);
      digits++;
    } else break;
  }
  if (digits === 0) return undefined;
  if (i < end && b[i] !== 0x20 && b[i] !== 0) return undefined;
  return n;
}

/** A NUL-terminated field's bytes. */
export function field(b: Buffer, off: number, size: number): Buffer {
  let end = off;
  const max = off + size;
  while (end < max && b[end] !== 0) end++;
  return b.subarray(off, end);
}

const USTAR = Buffer.from('ustar\u000000', 'latin1');

/**
 * The 512-byte header `block` with the pending pax values `pax` applied, or
 * undefined when it needs the `tar` package (see the top of the file).
 */
export function decodeHeader(block: Buffer, pax: PaxFields | undefined): DecodedHeader | undefined {
  const flag = block[156]!;
  const type = TYPES[flag];
  if (type === undefined) return undefined;
  const ex = FS_TYPES.has(flag) ? pax : undefined;
  // the checksum: the block's bytes with its own field counted as spaces
  const cksum = octal(block, 148, 8);
  if (cksum === undefined) return undefined;
  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += block[i]!;
  for (let i = 156; i < 512; i++) sum += block[i]!;
  if (sum !== cksum) return undefined;
  const mode = ex?.mode ?? octal(block, 100, 8);
  const uid = ex?.uid ?? octal(block, 108, 8);
  const gid = ex?.gid ?? octal(block, 116, 8);
  let size = ex?.size ?? octal(block, 124, 12);
  const mtimeSec = octal(block, 136, 12);
  if (mode === undefined || uid === undefined || gid === undefined || size === undefined || (ex?.mtimeMs === undefined && mtimeSec === undefined)) return undefined;
  let path = ex?.path;
  let badPath = ex?.badPath;
  if (path === undefined) {
    let raw = field(block, 0, 100);
    if (block.compare(USTAR, 0, 8, 257, 265) === 0) {
      // ustar's prefix: 155 bytes, or 130 where star keeps times after it
      const prefix = block[475] !== 0 ? field(block, 345, 155) : field(block, 345, 130);
      if (prefix.length) raw = Buffer.concat([prefix, Buffer.from('/'), raw]);
    }
    path = raw.toString('utf8');
    badPath = notUtf8Bytes(path, raw);
  }
  let linkpath = ex?.linkpath;
  let badLinkpath = ex?.badLinkpath;
  if (linkpath === undefined) {
    const raw = field(block, 157, 100);
    linkpath = raw.toString('utf8');
    badLinkpath = notUtf8Bytes(linkpath, raw);
  }
  let name = type;
  // old tars marked directories as files with a trailing slash; directories have no body
  if (name === 'File' && path.endsWith('/')) name = 'Directory';
  if (name === 'Directory') size = 0;
  return {
    path,
    type: name,
    size,
    mode: mode & 0o7777,
    uid,
    gid,
    mtimeMs: ex?.mtimeMs ?? mtimeSec! * 1000,
    linkpath,
    ...(badPath ? { badPath } : {}),
    ...(badLinkpath ? { badLinkpath } : {}),
  };
}
