/**
 * Export streams: a history of 100k events (~100 MB of NDJSON) exports through a child process whose
 * heap is capped well below that size, so the export cannot be holding the history in memory.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { openPostgres, type Database } from '../../src/database/database.js';
import { openPGlite } from '../../src/database/pglite.js';
import { createPostgresEventStore } from '../../src/eventStore/postgresEventStore.js';
import { runCli } from '../support/cli.js';
import { dropSchema, freshSchemaName } from '../support/databases.js';
import { newEvent } from '../support/events.js';

const EVENTS = 100_000;
const PER_APPEND = 1_000; // events per stream
const HEAP_MB = 64;
const padding = 'x'.repeat(700);

let dir: string;
let env: Record<string, string>;
let schema: string | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'export-'));
  // One backend is enough here: the PostgreSQL server when there is one (fast), else PGlite on disk.
  let database: Database;
  if (process.env.DATABASE_URL) {
    schema = freshSchemaName();
    database = await openPostgres(process.env.DATABASE_URL, { schema });
    env = { DATA_DIR: dir, DATABASE_URL: process.env.DATABASE_URL, DATABASE_SCHEMA: schema };
  } else {
    database = await openPGlite(join(dir, 'pglite'));
    env = { DATA_DIR: dir };
  }
  try {
    await seed(database);
  } finally {
    await database.close();
  }
}, 240_000);

async function seed(database: Database) {
  await createPostgresEventStore(database); // the schema
  // Seeded inside the database in one statement (this test is about export, not appends): 100
  // streams of 1,000 events, with the same metadata every append writes.
  const template = newEvent('HistoryFiller', {});
  await database.pool.query(
    `insert into es_events (stream_name, revision, event_id, event_type, data, metadata)
     select 'filler-' || (n / $2::int), n % $2::int, gen_random_uuid(), 'HistoryFiller',
            jsonb_build_object('n', n, 'padding', $3::text),
            $4::jsonb || jsonb_build_object('eventId', gen_random_uuid()::text)
     from generate_series(0, $1::int - 1) as n order by n`,
    [EVENTS, PER_APPEND, padding, JSON.stringify(template.metadata)],
  );
  await database.pool.query(`insert into es_streams select 'filler-' || s, $2::int - 1 from generate_series(0, $1::int / $2::int - 1) as s`, [
    EVENTS,
    PER_APPEND,
  ]);
}

afterAll(async () => {
  if (schema) await dropSchema(schema);
  await rm(dir, { recursive: true, force: true });
});

it(`exports ${EVENTS} events as NDJSON with a ${HEAP_MB} MB heap`, async () => {
  const out = join(dir, 'history.ndjson');
  const result = await runCli(['export', '--out', out], env, { nodeOptions: `--max-old-space-size=${HEAP_MB}` });
  expect(result.stderr).toContain(`exported ${EVENTS} event(s)`);
  expect(result.code).toBe(0);
  const size = (await stat(out)).size;
  expect(size).toBeGreaterThan(HEAP_MB * 1024 * 1024); // more than the heap could ever hold
  let lines = 0;
  let previous = -1;
  for await (const line of createInterface({ input: createReadStream(out) })) {
    const event = JSON.parse(line) as { data: { n: number }; metadata: { event_id: string } };
    expect(event.data.n).toBe(previous + 1); // in log order, nothing lost or repeated
    previous = event.data.n;
    lines += 1;
  }
  expect(lines).toBe(EVENTS);
}, 240_000);
