/**
 * One process owns a PGlite data directory: PGlite runs the database inside the process that opened
 * it, and two processes writing the same files corrupt them. The owner (the server, or a CLI command)
 * holds `esoz.lock` in the directory, holding its pid; a second opener is refused while that process
 * lives, and takes the lock over from a process that is gone (killed, crashed).
 */
import { open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';

export const LOCK_FILE = 'esoz.lock';

export class DataDirLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly ownerPid: number,
  ) {
    super(
      `the PGlite data directory ${dataDir} is in use by process ${ownerPid} (a running server or CLI command): ` +
        "stop it first, or do this through the running server's admin API (e.g. POST /api/admin/projections/{name}/rebuild, " +
        `GET /api/admin/projections); if no such process runs, remove ${join(dataDir, LOCK_FILE)}`,
    );
    this.name = 'DataDirLockedError';
  }
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

const ownerOf = async (path: string): Promise<number | null> => {
  try {
    const pid = Number.parseInt((await readFile(path, 'utf8')).trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
};

/** Takes the directory's lock for this process; resolves with its release. The directory must exist. */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const path = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 5; attempt += 1) {
    try {
      const file = await open(path, 'wx');
      try {
        await file.writeFile(`${process.pid}\n`);
      } finally {
        await file.close();
      }
      return async () => {
        // Only our own lock: never one a later owner took over.
        if ((await ownerOf(path).catch(() => null)) === process.pid) await unlink(path).catch(() => undefined);
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = await ownerOf(path);
    if (owner !== null && owner !== process.pid && isAlive(owner)) throw new DataDirLockedError(dataDir, owner);
    if (owner === process.pid) throw new DataDirLockedError(dataDir, owner); // opened twice in this process
    // A stale lock (its process is gone, or the file is empty or unreadable as a pid): take it over.
    await unlink(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }
  throw new Error(`could not take the lock ${path}: other processes keep taking it`);
}
