/**
 * Processes of one installation wake each other through the database: a message sent on one handle
 * reaches a listener on another (two connections, as two processes have), only within the same schema,
 * and still after the listener's connection was terminated (it reconnects).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { openPostgres, type Database } from '../../src/database/database.js';
import { openPGlite } from '../../src/database/pglite.js';
import { dropSchema, freshSchemaName } from '../support/databases.js';
import { eventually } from '../support/events.js';

describe('listen/notify on PGlite (one process)', () => {
  it('delivers within the process', async () => {
    const database = await openPGlite();
    try {
      const got: string[] = [];
      const listening = await database.listen('jobs', (payload) => got.push(payload));
      await database.notify('jobs', 'hello');
      await database.notify('other', 'not for jobs');
      expect(got).toEqual(['hello']);
      await listening.close();
      await database.notify('jobs', 'after close');
      expect(got).toEqual(['hello']);
    } finally {
      await database.close();
    }
  });
});

const url = process.env.DATABASE_URL;
(url ? describe : describe.skip)('listen/notify between two handles on the PostgreSQL server', () => {
  const schema = freshSchemaName();
  const otherSchema = freshSchemaName();
  let listener: Database;
  let sender: Database;
  let stranger: Database;
  beforeAll(async () => {
    // One after the other: concurrent `create schema if not exists` of one name can collide.
    listener = await openPostgres(url!, { schema });
    sender = await openPostgres(url!, { schema });
    stranger = await openPostgres(url!, { schema: otherSchema });
  });
  afterAll(async () => {
    await Promise.all([listener, sender, stranger].map((d) => d?.close()));
    await dropSchema(schema);
    await dropSchema(otherSchema);
  });

  it('delivers across connections, only within the schema, and again after the listening connection is terminated', async () => {
    const got: string[] = [];
    const listening = await listener.listen('jobs', (payload) => got.push(payload));
    try {
      await sender.notify('jobs', 'one');
      await stranger.notify('jobs', 'another installation');
      await eventually(() => got.includes('one'), 10_000, 'the first message');

      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      try {
        const { rows } = await admin.query<{ n: string }>(
          `select count(pg_terminate_backend(pid)) as n from pg_stat_activity where application_name = $1 and query ilike 'listen%'`,
          [`esoz-registry/${schema}`],
        );
        expect(Number(rows[0]!.n)).toBe(1);
      } finally {
        await admin.end();
      }
      // Messages sent while it reconnects may be lost (the job worker and the waiters also poll); later ones arrive.
      await eventually(
        async () => {
          await sender.notify('jobs', 'two');
          return got.includes('two');
        },
        15_000,
        'a message after the reconnect',
      );
      expect(got).not.toContain('another installation');
    } finally {
      await listening.close();
    }
  });
});
