// Paths the kernel cannot take whole. Packing and unpacking through a TreeFs
// (the local filesystem, SFTP) name every entry by its full path, which
// Linux refuses from PATH_MAX bytes on (ENAMETOOLONG), and OpenSSH's
// sftp-server builds each listed entry's path in a PATH_MAX buffer and
// silently leaves out of a directory listing any entry whose path does not
// fit: without this check an export over SFTP lost such a subtree unsaid.
import { KompoxError } from '../domain/errors.js';

/** Linux's PATH_MAX: bytes of a path with its terminating NUL. */
export const PATH_MAX = 4096;
/** The longest name of one entry (NAME_MAX). */
const NAME_MAX = 255;

/** Whether `path` (and its NUL) does not fit in PATH_MAX; cheap for the usual short path. */
export function pathTooLongFor(path: string): boolean {
  // a UTF-16 unit is at most 3 UTF-8 bytes
  return path.length * 3 >= PATH_MAX && Buffer.byteLength(path) >= PATH_MAX;
}

/**
 * Whether DIR/REL does not fit in PATH_MAX, without making the string for
 * the usual short path (a listing may hold millions of entries).
 */
export function joinedPathTooLong(dir: string, rel: string): boolean {
  // a UTF-16 unit is at most 3 UTF-8 bytes
  if ((dir.length + 1 + rel.length) * 3 < PATH_MAX) return false;
  return pathTooLongFor(`${dir}/${rel}`);
}

/**
 * Whether a listing of the directory `dir` by a transport that drops
 * entries whose path does not fit (SFTP) may have left one out: some name
 * (up to NAME_MAX bytes) would not fit beside it.
 */
export function listingMayDropNames(dir: string): boolean {
  return pathTooLongFor(`${dir}/${'x'.repeat(NAME_MAX)}`);
}

/**
 * The refusal of a tree holding a path of PATH_MAX bytes or more (`what`:
 * `archived` or `extracted`); `listing` when only the directory is known
 * (an SFTP listing could not show what it holds).
 */
export function pathTooLong(path: string, what: 'archived' | 'extracted', how: 'path' | 'listing' | 'tar' = 'path'): KompoxError {
  const bytes = Buffer.byteLength(path);
  const why =
    how === 'listing'
      ? `the directory ${path} (${bytes} bytes) is too deep to list over SFTP: the server leaves out, without an error, every entry whose path reaches ${PATH_MAX} bytes`
      : how === 'tar'
        ? `a path of the archive reaches the ${PATH_MAX}-byte limit of a path on the node (tar: ${path}: File name too long)`
        : `the path ${path} is ${bytes} bytes long, at or over the ${PATH_MAX}-byte limit of a path this way reads and writes`;
  return new KompoxError('unsupported', `${why}; nothing was ${what}`, {
    code: 'archive.path-too-long',
    details: how === 'tar' ? { limit: PATH_MAX } : { path, bytes, limit: PATH_MAX },
    hint:
      what === 'archived'
        ? `Move or rename directories on the disk so that every path is shorter than ${PATH_MAX} bytes (a node with GNU tar exports deeper trees).`
        : `Extract it where every path of the archive stays shorter than ${PATH_MAX} bytes, or shorten its deepest directory names.`,
  });
}
