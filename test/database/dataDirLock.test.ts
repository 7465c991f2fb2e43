/**
 * The PGlite data directory's lock: refused while its owner lives, taken over from an owner that is
 * gone — also when the pid cannot tell (another host or container, or this pid from an earlier life:
 * a container's server is pid 1 after every restart), by the lock's heartbeat.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataDirLockedError, lockDataDir } from '../../src/database/dataDirLock.js';

const TIMING = { heartbeatMs: 50, staleMs: 400 };
let dir: string;
let lockFile: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'esoz-lock-'));
  lockFile = join(dir, 'esoz.lock');
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

const deadPid = async () => {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
};
const aged = async (ms: number) => {
  const then = new Date(Date.now() - ms);
  await utimes(lockFile, then, then);
};

describe('lockDataDir', () => {
  it('writes its pid and host, refuses a second holder in this process, and removes the file on release', async () => {
    const release = await lockDataDir(dir, TIMING);
    expect(JSON.parse(await readFile(lockFile, 'utf8'))).toEqual({ pid: process.pid, host: hostname() });
    await expect(lockDataDir(dir, TIMING)).rejects.toEqual(new DataDirLockedError(dir, process.pid, hostname()));
    await release();
    await expect(readFile(lockFile, 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
    const again = await lockDataDir(dir, TIMING);
    await again();
  });

  it('another live process on this host: refused at once', async () => {
    // The parent of this process (jest's runner) lives; its lock is fresh.
    await writeFile(lockFile, JSON.stringify({ pid: process.ppid, host: hostname() }));
    const started = Date.now();
    await expect(lockDataDir(dir, { ...TIMING, staleMs: 60_000 })).rejects.toEqual(new DataDirLockedError(dir, process.ppid, hostname()));
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('a process that is gone: taken over at once', async () => {
    await writeFile(lockFile, JSON.stringify({ pid: await deadPid(), host: hostname() }));
    const started = Date.now();
    const release = await lockDataDir(dir, { ...TIMING, staleMs: 60_000 });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(JSON.parse(await readFile(lockFile, 'utf8'))).toEqual({ pid: process.pid, host: hostname() });
    await release();
  });

  it('this very pid from an earlier life (a restarted container): taken over once its heartbeat has stopped', async () => {
    await writeFile(lockFile, JSON.stringify({ pid: process.pid, host: hostname() }));
    const started = Date.now();
    const release = await lockDataDir(dir, TIMING); // fresh: waits out one stale period
    expect(Date.now() - started).toBeGreaterThanOrEqual(TIMING.staleMs);
    await release();
    await writeFile(lockFile, JSON.stringify({ pid: process.pid, host: hostname() }));
    await aged(60_000);
    const quick = Date.now();
    await (
      await lockDataDir(dir, { ...TIMING, staleMs: 30_000 })
    )();
    expect(Date.now() - quick).toBeLessThan(1_000);
  });

  it('another host with a live heartbeat: refused after watching it; its heartbeat stopped: taken over', async () => {
    await writeFile(lockFile, JSON.stringify({ pid: 1, host: 'other-container' }));
    const beating = setInterval(() => void utimes(lockFile, new Date(), new Date()).catch(() => undefined), 50);
    try {
      await expect(lockDataDir(dir, TIMING)).rejects.toEqual(new DataDirLockedError(dir, 1, 'other-container'));
    } finally {
      clearInterval(beating);
    }
    await aged(1_000);
    const release = await lockDataDir(dir, TIMING);
    expect(JSON.parse(await readFile(lockFile, 'utf8'))).toEqual({ pid: process.pid, host: hostname() });
    await release();
  });

  it('the holder keeps its lock fresh while it holds it', async () => {
    const release = await lockDataDir(dir, TIMING);
    await aged(60_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const { mtimeMs } = await import('node:fs/promises').then((fs) => fs.stat(lockFile));
    expect(Date.now() - mtimeMs).toBeLessThan(1_000);
    await release();
  });
});
