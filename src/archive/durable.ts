// Durability of files written on this machine (export archives and their
// checksums, a local K3s node's disks and snapshots through LocalHostFs): a
// rename or link can reach the disk before the data it names, so after a
// power loss a file reported written could read back as zeros. Data is
// synced before the name that publishes it, and the directory after.
import { constants as fsc, promises as fsp } from 'node:fs';

/** fsync of a file by its path, before its rename or link into place (Linux syncs the inode through any descriptor). */
export async function syncFile(path: string): Promise<void> {
  const fh = await fsp.open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * fsync of a directory, after a rename or link into it. A filesystem that
 * cannot sync a directory (EINVAL, ENOTSUP: some network and FUSE ones) has
 * nothing more to do; any other failure is the write's.
 */
export async function syncDir(path: string): Promise<void> {
  const fh = await fsp.open(path, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    await fh.sync();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
  } finally {
    await fh.close();
  }
}
