/**
 * The database's own ceilings for the read-side benchmark, each in its own process: a raw ordered scan
 * of the log (COPY out) and a copy of its rows into a table like es_events (COPY out → COPY in).
 * Same settings as the CLI (DATABASE_URL, DATABASE_SCHEMA). Prints one JSON line: events, seconds.
 */
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { loadConfig } from '../src/config.js';
import { STREAM_ORDER_PLAN } from '../src/eventStore/postgresEventStore.js';
import { createLogger } from '../src/logger.js';
import { openStores } from '../src/stores.js';

async function main() {
  const [phase] = process.argv.slice(2);
  const stores = await openStores(loadConfig(), createLogger('warn'));
  let events = 0;
  const started = process.hrtime.bigint(); // after start-up: the phase's own work only
  try {
    if (phase === 'raw-scan') {
      const client = await stores.database.pool.connect();
      try {
        let rows = 0;
        const sink = new Writable({
          write(chunk: Buffer, _encoding, done) {
            for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) rows += 1;
            done();
          },
        });
        // The plan export reads with (off the log's index, no sort), so the ceiling is the same walk.
        await client.query(`begin; ${STREAM_ORDER_PLAN}`);
        await pipeline(client.query(copyTo('copy (select * from es_events order by transaction_id, global_position) to stdout')), sink);
        await client.query('commit');
        events = rows;
      } finally {
        client.release();
      }
    } else if (phase === 'copy-in') {
      // The import's ceiling: the database copying the log's rows (COPY out → COPY in) into a table
      // with es_events' columns and indexes, in one transaction; no JSON work in Node at all.
      const [source, target] = [await stores.database.pool.connect(), await stores.database.pool.connect()];
      try {
        await target.query('begin');
        await target.query('create temporary table copy_in (like es_events including all) on commit drop');
        const columns = 'stream_name, revision, event_id, event_type, data, metadata';
        await pipeline(
          source.query(copyTo(`copy (select ${columns} from es_events order by transaction_id, global_position) to stdout`)),
          target.query(copyFrom(`copy copy_in (${columns}) from stdin`)),
        );
        events = Number((await target.query<{ n: string }>('select count(*) as n from copy_in')).rows[0]!.n);
        await target.query('commit');
      } finally {
        source.release();
        target.release();
      }
    } else throw new Error(`unknown phase ${phase}`);
  } finally {
    await stores.close();
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(`${JSON.stringify({ phase, events, seconds })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
