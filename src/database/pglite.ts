/**
 * The embedded default: PGlite (PostgreSQL compiled to WASM) served over a private unix socket by
 * pglite-socket, so the very same `pg` code that runs against a PostgreSQL server runs here.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { createDatabase, type Database } from './database.js';
import { lockDataDir } from './dataDirLock.js';

/** `dataDir` undefined keeps everything in memory (tests). */
export async function openPGlite(dataDir?: string): Promise<Database> {
  return (await servePGlite(dataDir)).database;
}

/** The database and the socket server in front of it (which fault-injection tests stop and start). */
export async function servePGlite(dataDir?: string): Promise<{ database: Database; socketServer: PGLiteSocketServer }> {
  // One process owns a data directory (dataDirLock.ts): a second server or CLI command is refused.
  let unlock: () => Promise<void> = async () => undefined;
  if (dataDir !== undefined) {
    await mkdir(dataDir, { recursive: true });
    unlock = await lockDataDir(dataDir);
  }
  let db: PGlite;
  try {
    db = await PGlite.create(dataDir === undefined ? {} : { dataDir });
  } catch (error) {
    await unlock();
    throw error;
  }
  // A unix socket in a fresh private directory: no port to collide with, nothing reachable from outside.
  const socketDir = await mkdtemp(join(tmpdir(), 'pglite-'));
  const server = new PGLiteSocketServer({ db, path: join(socketDir, '.s.PGSQL.5432') });
  await server.start();
  // A socket that does not answer must fail the request (503), not hang it.
  const pool = new pg.Pool({ host: socketDir, port: 5432, user: 'postgres', database: 'postgres', max: 1, connectionTimeoutMillis: 5_000 });
  const database = createDatabase({
    kind: 'pglite',
    pool,
    onClose: async () => {
      await server.stop();
      await db.close();
      await rm(socketDir, { recursive: true, force: true });
      await unlock();
    },
  });
  return { database, socketServer: server };
}
