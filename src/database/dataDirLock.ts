/**
 * One process owns a PGlite data directory: PGlite runs the database inside the process that opened
 * it, and two processes writing the same files corrupt them. The owner (the server, or a CLI command)
 * holds `esoz.lock` in the directory — its pid and host name — and touches it every couple of seconds
 * while it holds it. A second opener is refused while the owner lives; a lock whose owner is gone is
 * taken over:
 * - on the same host with another pid: the pid is asked (gone → stale; alive but no longer touching
 *   the file → a reused pid, stale);
 * - when the pid says nothing — another host or container, or this very pid from an earlier life (a
 *   container's server is pid 1 after every restart) — the heartbeat decides: a lock untouched for
 *   STALE_MS is stale, so the opener waits at most that long before it takes it over or is refused.
 */
import { open, readFile, stat, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';

export const LOCK_FILE = 'esoz.lock';
const HEARTBEAT_MS = 2_000;
const STALE_MS = 10_000;

export class DataDirLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly ownerPid: number,
    readonly ownerHost: string,
  ) {
    super(
      `the PGlite data directory ${dataDir} is in use by process ${ownerPid} on ${ownerHost} (a running server or CLI command): ` +
        "stop it first, or do this through the running server's admin API (e.g. POST /api/admin/projections/{name}/rebuild, " +
        `GET /api/admin/projections); if no such process runs, remove ${join(dataDir, LOCK_FILE)}`,
    );
    this.name = 'DataDirLockedError';
  }
}

const ownerSchema = z.object({ pid: z.number().int().positive(), host: z.string() });
type Owner = z.infer<typeof ownerSchema>;

/** The directories this process holds (a second open in the same process is refused at once). */
const heldHere = new Set<string>();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

const ignoreMissing = (error: NodeJS.ErrnoException) => {
  if (error.code !== 'ENOENT') throw error;
  return null;
};

/** The lock's owner and when it last touched the file; null when there is no lock (any more). */
async function lockState(path: string): Promise<{ owner: Owner | null; touched: number } | null> {
  const [text, stats] = await Promise.all([readFile(path, 'utf8').catch(ignoreMissing), stat(path).catch(ignoreMissing)]);
  if (text === null || stats === null) return null;
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = null; // unreadable as an owner (a torn write): only the heartbeat can tell
  }
  const owner = ownerSchema.safeParse(parsed);
  return { owner: owner.success ? owner.data : null, touched: stats.mtimeMs };
}

/** Whether the lock's heartbeat has stopped: untouched for `staleMs` (waiting, at most that long, to see). */
async function heartbeatStopped(path: string, touched: number, staleMs: number): Promise<boolean> {
  const age = Date.now() - touched;
  if (age >= staleMs) return true;
  await sleep(staleMs - age + 100);
  const now = await lockState(path);
  return now === null || now.touched === touched;
}

export type LockTiming = { heartbeatMs?: number; staleMs?: number };

/** Takes the directory's lock for this process; resolves with its release. The directory must exist. */
export async function lockDataDir(dataDir: string, { heartbeatMs = HEARTBEAT_MS, staleMs = STALE_MS }: LockTiming = {}): Promise<() => Promise<void>> {
  const path = join(dataDir, LOCK_FILE);
  const me: Owner = { pid: process.pid, host: hostname() };
  if (heldHere.has(path)) throw new DataDirLockedError(dataDir, me.pid, me.host);
  for (let attempt = 0; attempt < 5; attempt += 1) {
    try {
      const file = await open(path, 'wx');
      try {
        await file.writeFile(`${JSON.stringify(me)}\n`);
      } finally {
        await file.close();
      }
      heldHere.add(path);
      const heartbeat = setInterval(() => {
        const now = new Date();
        utimes(path, now, now).catch(() => undefined);
      }, heartbeatMs);
      heartbeat.unref();
      return async () => {
        clearInterval(heartbeat);
        if (!heldHere.delete(path)) return;
        // Only our own lock: never one a later owner took over.
        const state = await lockState(path).catch(() => null);
        if (state?.owner?.pid === me.pid && state.owner.host === me.host) await unlink(path).catch(() => undefined);
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const state = await lockState(path);
    if (state === null) continue; // released meanwhile
    const { owner, touched } = state;
    const askable = owner !== null && owner.host === me.host && owner.pid !== me.pid;
    const stale = askable ? !isAlive(owner.pid) || Date.now() - touched >= staleMs : await heartbeatStopped(path, touched, staleMs);
    if (!stale) throw new DataDirLockedError(dataDir, owner?.pid ?? 0, owner?.host ?? 'an unknown host');
    await unlink(path).catch(ignoreMissing);
  }
  throw new Error(`could not take the lock ${path}: other processes keep taking it`);
}
