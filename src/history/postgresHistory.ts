/**
 * History export and import straight on the PostgreSQL/PGlite event store. Export is one COPY of
 * lines built by the database itself (no row objects, no JSON.parse/stringify per event), so it runs
 * near the raw scan rate in constant memory. Import loads a whole file in one transaction (COPY on a
 * PostgreSQL server; multi-row inserts on PGlite, whose socket does not take COPY FROM): an error on
 * any line leaves the store as it was.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import type { Database } from '../database/database.js';
import { STREAM_ORDER_PLAN } from '../eventStore/postgresEventStore.js';
import { storedMetadataKey } from '../eventStore/storedMetadata.js';
import { HistoryFileError, type HistoryLine } from './historyLine.js';
import { checkHistoryChain, type ChainedLine } from './historyChain.js';
import { GENESIS_HASH } from '../eventStore/hashChain.js';
import { AUDIT_STREAM } from '../audit/anchorRecord.js';
import { domainEventCheck, type EventCheck } from './eventChecks.js';

// CSV with a quote and a delimiter that never occur in the data: COPY then writes each value as is.
export const RAW_CSV = `(format csv, quote e'\\x01', delimiter e'\\x02')`;
const FORBIDDEN_IN_RAW_CSV = /[\x01\x02\n\r]/;

/** Metadata written before stored metadata became snake_case (camelCase keys), renamed on the way out. */
const LEGACY_METADATA_SQL = `jsonb_build_object(${[
  ['event_id', 'eventId'],
  ['correlation_id', 'correlationId'],
  ['causation_id', 'causationId'],
  ['user_id', 'userId'],
  ['client_id', 'clientId'],
  ['occurred_at', 'occurredAt'],
  ['schema_version', 'schemaVersion'],
]
  .map(([snake, camel]) => `'${snake}', ${storedMetadataKey(snake!, camel!)}`)
  .join(', ')})`;
/**
 * The history line of one row, in SQL (fields as in historyLine.ts). Stored metadata goes out as the
 * database prints it (its key order), which costs next to nothing over the raw scan; only legacy rows
 * are rebuilt key by key. A row is current when its text has the key "event_id": a substring test, as
 * `metadata->'event_id'` parses each row's metadata and took a tenth of the export's time in the database
 * (1.16 s against 1.04 s for 200k rows). Inside a JSON string a quote is always escaped, so `"event_id":`
 * occurs only at the end of a key (and metadata is flat: its schema is checked at every append).
 */
export const LINE_SQL = `'{"stream_name":' || to_json(stream_name)::text || ',"revision":' || revision
  || ',"event_type":' || to_json(event_type)::text || ',"data":' || data::text
  || ',"metadata":' || (case when strpos(metadata::text, '"event_id":') > 0 then metadata::text else ${LEGACY_METADATA_SQL}::text end)
  || coalesce(',"prev_hash":"' || encode(prev_hash, 'hex') || '","hash":"' || encode(hash, 'hex') || '"', '') || '}'`;

/** Whether a row's stored hash is the SHA-256 of its prev_hash and stored bytes (null, not false, when a link is missing). */
export const HASH_MATCHES_SQL = `hash = sha256(prev_hash || convert_to('{"data":' || data::text
    || ',"metadata":' || metadata::text || ',"revision":' || revision || ',"stream":' || to_json(stream_name)::text
    || ',"type":' || to_json(event_type)::text || '}', 'UTF8'))`;
const SHORT_LINE_SQL = `'["' || encode(prev_hash, 'hex') || '","' || encode(hash, 'hex') || '","' || event_id || '",' || revision
    || ',' || to_json(event_type)::text || ',' || to_json(stream_name)::text || ']'`;
/**
 * The line `verify --history` reads of one row. Where the stored texts are canonical JSON (every row
 * this store writes), the database recomputes the row's hash from its own prev_hash and the stored bytes
 * (the same SHA-256 over the same canonical form the appender hashed) and sends a short line, a JSON
 * array (hashes, event id, revision, type, stream): no event data crosses the wire or gets parsed. Any
 * other row (a jsonb log from before, legacy metadata, a changed event, an anchor) goes out whole for the
 * verifier to recompute and name. The hashed envelope is hashChain.ts's hashOfTexts written in SQL: the
 * tamper tests (hostile text included) hold the two to the same bytes.
 * The links between rows (revision order, prev_hash = previous hash) and the anchors are the verifier's.
 */
export const VERIFY_LINE_SQL = `case when stream_name <> '${AUDIT_STREAM}' and ${HASH_MATCHES_SQL}
  then ${SHORT_LINE_SQL}
  else ${LINE_SQL} end`;

/**
 * The links-only line of the split check (verifyStore.ts): the short line for every chained event, its
 * hash taken as stored and confirmed by HASH_CHECK_SQL on a second connection in the same snapshot; an
 * anchor or a row without its links goes out whole. No event data is read in log order.
 */
export const LINK_LINE_SQL = `case when stream_name <> '${AUDIT_STREAM}' and prev_hash is not null and hash is not null
  then ${SHORT_LINE_SQL}
  else ${LINE_SQL} end`;
/** How many chained events' stored hashes the stored bytes do not give (unordered: a plain scan). */
export const HASH_CHECK_SQL = `select count(*)::int as unconfirmed from es_events where stream_name <> '${AUDIT_STREAM}' and (${HASH_MATCHES_SQL}) is not true`;

export type ExportFilter = { stream?: string; from?: string; to?: string };

/** Writes the visible log, in order, as NDJSON to `out`; returns the number of lines. */
export async function copyHistoryOut(database: Database, out: Writable, filter: ExportFilter = {}, onProgress?: (n: number) => void): Promise<number> {
  const client = await database.pool.connect();
  try {
    const where = ['transaction_id < pg_snapshot_xmin(pg_current_snapshot())'];
    // COPY takes no parameters: literals are escaped by the driver.
    if (filter.stream !== undefined) where.push(`stream_name = ${client.escapeLiteral(filter.stream)}`);
    if (filter.from !== undefined)
      where.push(`(${storedMetadataKey('occurred_at', 'occurredAt', true)})::timestamptz >= ${client.escapeLiteral(filter.from)}::timestamptz`);
    if (filter.to !== undefined)
      where.push(`(${storedMetadataKey('occurred_at', 'occurredAt', true)})::timestamptz <= ${client.escapeLiteral(filter.to)}::timestamptz`);
    // The whole log off its index (streamed in order; sorting it first cost a third more). One stream's
    // events are few: there the planner's own choice (the stream's key, then a small sort) stays.
    const offIndex = filter.stream === undefined;
    if (offIndex) await client.query(`begin; ${STREAM_ORDER_PLAN}`);
    const source = client.query(
      copyTo(`copy (select ${LINE_SQL} from es_events where ${where.join(' and ')}
                    order by es_events.transaction_id, es_events.global_position) to stdout with ${RAW_CSV}`),
    );
    let lines = 0;
    let reported = 0;
    const counter = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines += 1;
        if (onProgress && lines - reported >= 10_000) {
          onProgress(lines - reported);
          reported = lines;
        }
        if (out.write(chunk)) done();
        else out.once('drain', () => done());
      },
    });
    await pipeline(source, counter);
    if (offIndex) await client.query('commit');
    if (onProgress && lines > reported) onProgress(lines - reported);
    return lines;
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

export type NumberedLine = { number: number; line: HistoryLine };

const BATCH = 2_000;

/**
 * Loads history lines (already parsed and checked) into the store in one transaction; `force` allows
 * a non-empty store (the file's streams must still be new to it). Returns the number of events.
 */
export async function importHistoryInto(
  database: Database,
  lines: AsyncIterable<NumberedLine>,
  { force = false, onProgress, check = domainEventCheck }: { force?: boolean; onProgress?: (n: number) => void; check?: EventCheck } = {},
): Promise<number> {
  return database.withTransaction(async (client) => {
    // Nobody appends while we load (appends take a row lock on es_streams; this waits them out).
    await client.query('lock table es_streams in exclusive mode');
    const { rows } = await client.query<{ present: boolean }>('select exists (select 1 from es_events) as present');
    if (rows[0]!.present && !force) throw new HistoryFileError(null, 'the event store is not empty (import into an empty store, or pass --force)');
    const checked = checkHistoryChain(checkLines(lines, check));
    const count = database.kind === 'postgres' ? await copyIn(client, checked, onProgress) : await insertBatches(client, checked, onProgress);
    await checkRevisions(client);
    try {
      await client.query(
        `insert into es_streams (stream_name, revision)
         select stream_name, max(revision) from es_events where transaction_id = pg_current_xact_id() group by stream_name`,
      );
    } catch (error) {
      throw new HistoryFileError(0, `a stream of the file already exists in the store (${(error as Error).message})`);
    }
    // Statistics for what was just loaded, as after any bulk load: the rebuild that follows and the
    // server's first queries would otherwise be planned for an empty table.
    await client.query('analyze es_events');
    await client.query('analyze es_streams');
    return count;
  });
}

/** Every line's event must be one a projection can apply (eventChecks.ts): refused here, inside the load's transaction, so nothing stays written. */
async function* checkLines(lines: AsyncIterable<NumberedLine>, check: EventCheck): AsyncGenerator<NumberedLine> {
  for await (const entry of lines) {
    if (FORBIDDEN_IN_RAW_CSV.test(entry.line.stream_name) || FORBIDDEN_IN_RAW_CSV.test(entry.line.event_type))
      throw new HistoryFileError(entry.number, 'control characters in stream_name or event_type');
    const refused = check(entry.line);
    if (refused !== null) throw new HistoryFileError(entry.number, refused);
    yield entry;
  }
}

/**
 * Every stream of the file must run 0, 1, 2, … in the order of its lines, each line's prev_hash being
 * the previous line's hash. Checked by the database over the rows this transaction loaded (memory
 * independent of the number of streams): walking each stream in revision order (its primary key), a
 * row whose revision does not follow the previous one, that lies before it in the file, or that does
 * not link to its hash is a broken line; the first of them in file order is reported (duplicates
 * were refused by the primary key already).
 */
async function checkRevisions(client: pg.PoolClient): Promise<void> {
  type Broken = {
    stream_name: string;
    revision: string;
    global_position: string;
    event_id: string;
    prev_hash: string;
    previous_hash: string | null;
    linked: boolean;
  };
  const { rows } = await client.query<Broken>(
    `select stream_name, revision, global_position, event_id, encode(prev_hash, 'hex') as prev_hash, encode(previous_hash, 'hex') as previous_hash,
            revision = coalesce(previous_revision + 1, 0) and global_position > coalesce(previous_position, 0) as linked
     from (
       select stream_name, revision, global_position, event_id, prev_hash,
              lag(revision) over w as previous_revision, lag(global_position) over w as previous_position, lag(hash) over w as previous_hash
       from es_events where transaction_id = pg_current_xact_id()
       window w as (partition by stream_name order by revision)
     ) t
     where revision <> coalesce(previous_revision + 1, 0) or global_position < previous_position
        or prev_hash <> coalesce(previous_hash, '\\x${GENESIS_HASH}'::bytea)
     order by global_position limit 1`,
  );
  const broken = rows[0];
  if (!broken) return;
  if (broken.linked) {
    const line = await lineOf(client, broken.global_position);
    const previous = broken.previous_hash ?? GENESIS_HASH;
    throw new HistoryFileError(
      line,
      `stream ${broken.stream_name} revision ${broken.revision} (event ${broken.event_id}): prev_hash ${broken.prev_hash} does not link to the previous event's hash ${previous}`,
    );
  }
  const { rows: counted } = await client.query<{ line: string; expected: string }>(
    `select count(*) filter (where global_position <= $2) as line,
            count(*) filter (where global_position < $2 and stream_name = $1) as expected
     from es_events where transaction_id = pg_current_xact_id()`,
    [broken.stream_name, broken.global_position],
  );
  const { line, expected } = counted[0]!;
  throw new HistoryFileError(Number(line), `stream ${broken.stream_name}: revision ${broken.revision}, expected ${expected}`);
}

/** Lines and global positions of one load follow the same order. */
async function lineOf(client: pg.PoolClient, globalPosition: string): Promise<number> {
  const { rows } = await client.query<{ line: string }>(
    'select count(*) as line from es_events where transaction_id = pg_current_xact_id() and global_position <= $1',
    [globalPosition],
  );
  return Number(rows[0]!.line);
}

// 256 KB: with 1 MB chunks the 1M-event import peaked at 256-260 MB RSS (issue 12 asks < 256 MB).
const COPY_CHUNK = 1 << 18;

/** A line's values for es_events (stream_name, revision, event_id, event_type, data, metadata), as text. */
const eventColumns = ({ line, data, metadata }: ChainedLine): string[] => [
  line.stream_name,
  String(line.revision),
  line.metadata.event_id,
  line.event_type,
  data,
  metadata,
];

async function copyIn(client: pg.PoolClient, lines: AsyncIterable<ChainedLine>, onProgress?: (n: number) => void): Promise<number> {
  let count = 0;
  let reported = 0;
  // Rows are written into byte chunks as they come (each text encoded once, straight into place): a
  // megabyte string built with += was a rope of thousands of pieces that the stream flattened, then
  // encoded, the import's largest single cost.
  async function* rows() {
    let chunk = Buffer.allocUnsafe(COPY_CHUNK);
    let at = 0;
    for await (const chained of lines) {
      const texts = [...eventColumns(chained), `\\x${chained.line.prev_hash}`, `\\x${chained.line.hash}`];
      // UTF-8 takes at most 3 bytes per UTF-16 unit; 8 separators.
      const bound = 3 * texts.reduce((n, text) => n + text.length, 0) + 8;
      if (at + bound > chunk.length) {
        if (at > 0) {
          yield chunk.subarray(0, at);
          onProgress?.(count - reported);
          reported = count;
        }
        chunk = Buffer.allocUnsafe(Math.max(COPY_CHUNK, bound));
        at = 0;
      }
      for (let i = 0; i < texts.length; i++) {
        at += chunk.write(texts[i]!, at, 'utf8');
        chunk[at++] = i < texts.length - 1 ? 0x02 : 0x0a;
      }
      count += 1;
    }
    if (at > 0) yield chunk.subarray(0, at);
    if (count > reported) onProgress?.(count - reported);
  }
  try {
    await pipeline(
      // One chunk ahead at most (object mode would queue 16).
      Readable.from(rows(), { highWaterMark: 1 }),
      client.query(copyFrom(`copy es_events (stream_name, revision, event_id, event_type, data, metadata, prev_hash, hash) from stdin with ${RAW_CSV}`)),
    );
  } catch (error) {
    if (error instanceof HistoryFileError) throw error;
    // COPY names the failing row ("COPY es_events, line N"): one row per line of the file, in order.
    const where = (error as { where?: string }).where ?? '';
    const row = /COPY es_events, line (\d+)/.exec(where);
    throw new HistoryFileError(row ? Number(row[1]) : 0, (error as Error).message);
  }
  return count;
}

async function insertBatches(client: pg.PoolClient, lines: AsyncIterable<ChainedLine>, onProgress?: (n: number) => void): Promise<number> {
  let count = 0;
  let batch: ChainedLine[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await client.query('savepoint batch');
    try {
      await client.query(
        `insert into es_events (stream_name, revision, event_id, event_type, data, metadata, prev_hash, hash)
         select r.stream_name, r.revision, r.event_id, r.event_type, r.data, r.metadata, decode(r.prev_hash, 'hex'), decode(r.hash, 'hex')
         from unnest($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::json[], $6::json[], $7::text[], $8::text[]) with ordinality
           as r(stream_name, revision, event_id, event_type, data, metadata, prev_hash, hash, ord)
         order by r.ord`,
        [
          batch.map((e) => e.line.stream_name),
          batch.map((e) => String(e.line.revision)),
          batch.map((e) => e.line.metadata.event_id),
          batch.map((e) => e.line.event_type),
          batch.map((e) => e.data),
          batch.map((e) => e.metadata),
          batch.map((e) => e.line.prev_hash),
          batch.map((e) => e.line.hash),
        ],
      );
    } catch (error) {
      await client.query('rollback to savepoint batch');
      throw await pinpoint(client, batch, error);
    }
    count += batch.length;
    onProgress?.(batch.length);
    batch = [];
  };
  for await (const entry of lines) {
    batch.push(entry);
    if (batch.length === BATCH) await flush();
  }
  await flush();
  return count;
}

/** Finds the line of a failed batch by inserting its rows one by one (rare: only on bad input). */
async function pinpoint(client: pg.PoolClient, batch: ChainedLine[], cause: unknown): Promise<HistoryFileError> {
  for (const chained of batch) {
    const { number } = chained;
    await client.query('savepoint one');
    try {
      await client.query(
        'insert into es_events (stream_name, revision, event_id, event_type, data, metadata) values ($1, $2, $3, $4, $5, $6)',
        eventColumns(chained),
      );
      await client.query('release savepoint one');
    } catch (error) {
      await client.query('rollback to savepoint one');
      return new HistoryFileError(number, (error as Error).message);
    }
  }
  return new HistoryFileError(0, (cause as Error).message);
}
