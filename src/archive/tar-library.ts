// The `tar` package, loaded on first use. Kompox writes and reads the usual
// entry itself (tar-header.ts, tar-decode.ts); the package's Header and Pax
// classes handle the rest (long or non-ASCII names, huge numbers, global pax
// headers). Imported up front it cost every data command 2.8 MiB of memory
// on top of the node modules it shares with the data path (its bundle and
// what it loads), whether or not any entry needed it (issue 11's 100 MiB).
// Its CommonJS build is loaded synchronously, as the header code is.
import { createRequire } from 'node:module';

type TarLibrary = typeof import('tar');

let library: TarLibrary | undefined;

export function tarLibrary(): TarLibrary {
  return (library ??= createRequire(import.meta.url)('tar') as TarLibrary);
}
