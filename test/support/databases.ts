/**
 * Real databases for tests, never mocks: an in-memory PGlite always, and the PostgreSQL server when
 * DATABASE_URL is set — each test file gets its own schema there, dropped afterwards.
 */
import pg from 'pg';
import { v4 as uuidv4 } from 'uuid';
import { openPostgres, type Database } from '../../src/database/database.js';
import { openPGlite } from '../../src/database/pglite.js';

export type DatabaseFactory = { name: 'pglite' | 'postgres'; open(): Promise<Database> };

export const freshSchemaName = () => `t_${uuidv4().replace(/-/g, '').slice(0, 20)}`;

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    await client.query(`drop schema if exists ${schema} cascade`);
  } finally {
    await client.end();
  }
}

export function databaseFactories(): DatabaseFactory[] {
  const factories: DatabaseFactory[] = [{ name: 'pglite', open: () => openPGlite() }];
  const url = process.env.DATABASE_URL;
  if (url) {
    factories.push({
      name: 'postgres',
      async open() {
        const schema = freshSchemaName();
        const database = await openPostgres(url, { schema });
        const close = database.close.bind(database);
        return { ...database, close: async () => (await close(), await dropSchema(schema)) };
      },
    });
  }
  return factories;
}

/** One line on stderr for a suite that cannot run here, so a green run never hides what it skipped. */
export function reportSkipped(what: string): void {
  process.stderr.write(`skipped: ${what}\n`);
}
