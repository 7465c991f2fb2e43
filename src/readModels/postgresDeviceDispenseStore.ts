/**
 * `device_dispenses` as a PostgreSQL/PGlite JSONB table (tests, CI and the embedded default; MongoDB in
 * production). Records and the projection checkpoint commit in one transaction; a record only
 * replaces a stored one with a lower revision, so replaying a batch changes nothing.
 */
import { prepared, type Database } from '../database/database.js';
import { checkpointsSchema, readCheckpoint, storeCheckpoint } from './checkpoints.js';
import { assertIdentifier, resetTable, scanById } from './postgresTables.js';
import type { DeviceDispenseFilter, DeviceDispenseIndex, DeviceDispenseRecord, DeviceDispenseStore } from './deviceDispenseStore.js';
import { searchLowerBound, searchUpperBound } from './searchBounds.js';
import { createShadowTable } from './shadowTables.js';

/** One statement may not touch a row twice: keep the newest revision of each id. */
const newestPerId = (records: DeviceDispenseRecord[]) => [
  ...records
    .reduce((newest, r) => ((newest.get(r.id)?.revision ?? -1) < r.revision ? newest.set(r.id, r) : newest), new Map<string, DeviceDispenseRecord>())
    .values(),
];

type Row = { id: string; revision: string; idx: DeviceDispenseIndex; document: DeviceDispenseRecord['document'] };

/** Index keys searched by exact match inside the `idx` JSONB column. */
const EXACT_IN_INDEX = ['based_on', 'location', 'performer', 'program', 'part_of', 'encounter', 'context_episode_id', 'origin_episode_id'] as const;

// lz4 compresses the (TOASTed) documents several times faster than the default pglz (a rebuild's
// largest database cost); PGlite and servers built without lz4 keep the default.
async function hasLz4(database: Database): Promise<boolean> {
  if (database.kind !== 'postgres') return false;
  const { rows } = await database.pool.query<{ ok: boolean }>(`select 'lz4' = any(enumvals) as ok from pg_settings where name = 'default_toast_compression'`);
  return rows[0]?.ok === true;
}
const tableDdl = (lz4: boolean, table: string) => `create table if not exists ${table} (
  id text primary key,
  revision bigint not null,
  patient_id text not null,
  legal_entity_id text not null,
  status text not null,
  inserted_at text collate "C" not null,
  idx jsonb not null,
  document json ${lz4 ? 'compression lz4 ' : ''}not null
)`;
const indexDdl = (table: string) => `create index if not exists ${table}_patient on ${table} (patient_id, inserted_at desc, id);
create index if not exists ${table}_legal_entity on ${table} (legal_entity_id, inserted_at desc, id);
create index if not exists ${table}_based_on on ${table} ((idx->>'based_on'));`;

export async function createPostgresDeviceDispenseStore(
  database: Database,
  { table = 'device_dispenses', migrated = false }: { table?: string; migrated?: boolean } = {},
): Promise<DeviceDispenseStore> {
  assertIdentifier(table);
  await database.migrate('projection_checkpoints', checkpointsSchema);
  // A shadow table is created by its ShadowTable (indexes after the bulk load), not here.
  const lz4 = await hasLz4(database);
  if (!migrated)
    await database.migrate(
      `device_dispenses:${table}`,
      `${tableDdl(lz4, table)};\n${lz4 ? `alter table ${table} alter column document set compression lz4;\n` : ''}${indexDdl(table)}`,
    );
  const pool = database.pool;
  const toRecord = (row: Row): DeviceDispenseRecord => ({ id: row.id, revision: Number(row.revision), index: row.idx, document: row.document });

  function where(filter: DeviceDispenseFilter): { sql: string; params: unknown[] } {
    const clauses: string[] = [];
    const params: unknown[] = [];
    const add = (clause: (p: string) => string, value: unknown) => {
      params.push(value);
      clauses.push(clause(`$${params.length}`));
    };
    if (filter.patient_id !== undefined) add((p) => `patient_id = ${p}`, filter.patient_id);
    if (filter.legal_entity_id !== undefined) add((p) => `legal_entity_id = ${p}`, filter.legal_entity_id);
    if (filter.status !== undefined) add((p) => `status = ${p}`, filter.status);
    for (const key of EXACT_IN_INDEX) {
      const value = filter[key];
      if (value !== undefined) add((p) => `idx->>'${key}' = ${p}`, value);
    }
    if (filter.device !== undefined) add((p) => `idx->'devices' @> jsonb_build_array(${p}::text)`, filter.device);
    if (filter.device_code !== undefined) add((p) => `idx->'device_codes' @> jsonb_build_array(${p}::text)`, filter.device_code);
    if (filter.when_handed_over_from !== undefined)
      add((p) => `(idx->>'when_handed_over') collate "C" >= ${p}`, searchLowerBound(filter.when_handed_over_from));
    if (filter.when_handed_over_to !== undefined) add((p) => `(idx->>'when_handed_over') collate "C" <= ${p}`, searchUpperBound(filter.when_handed_over_to));
    if (filter.inserted_at_from !== undefined) add((p) => `inserted_at >= ${p}`, searchLowerBound(filter.inserted_at_from));
    if (filter.inserted_at_to !== undefined) add((p) => `inserted_at <= ${p}`, searchUpperBound(filter.inserted_at_to));
    return { sql: clauses.length ? `where ${clauses.join(' and ')}` : '', params };
  }

  /**
   * Each record replaces the stored one only when its revision is newer (replays change nothing). A
   * multi-row VALUES with each value its own parameter: the server only checks each document's JSON
   * (json_in). A batch as one JSON parameter unpacked by json_to_recordset made the server parse it
   * field by field (2.2–2.6 s of server CPU per 20,000 documents against 0.55 s, statements alone),
   * and the driver encoded a megabyte string in one slow piece (3.3 ms per 600 KB, 1 ms written per document).
   */
  const upsert = (records: DeviceDispenseRecord[]) => {
    const values: unknown[] = [];
    const rows = records.map(({ id, revision, index, document }) => {
      const n = values.push(
        id,
        revision,
        index.patient_id,
        index.legal_entity_id,
        index.status,
        index.inserted_at,
        JSON.stringify(index),
        // `json`, not `jsonb`: the server only checks it, the document is stored as the text it is.
        JSON.stringify(document),
      );
      return `($${n - 7}::text, $${n - 6}::bigint, $${n - 5}::text, $${n - 4}::text, $${n - 3}::text, $${n - 2}::text, $${n - 1}::jsonb, $${n}::json)`;
    });
    return {
      text: `insert into ${table} (id, revision, patient_id, legal_entity_id, status, inserted_at, idx, document)
             values ${rows.join(', ')}
             on conflict (id) do update set
               revision = excluded.revision, patient_id = excluded.patient_id, legal_entity_id = excluded.legal_entity_id,
               status = excluded.status, inserted_at = excluded.inserted_at, idx = excluded.idx, document = excluded.document
             where ${table}.revision < excluded.revision`,
      values,
    };
  };
  // Records per statement: the server plans each VALUES row and copies its constants, and big statements
  // cost it page faults (rebuild of 94k dispenses, server CPU: 4,000 rows 15.9 s, 100 rows 11.5 s, 25 rows 13.7 s).
  const UPSERT_ROWS = 100;

  return {
    description: `${database.kind} table ${table}`,

    inlineWrite: (records) => upsert(newestPerId(records)),

    readCheckpoint: (projection) => readCheckpoint(pool, projection),

    async applyBatch(batch, checkpoint) {
      const records = newestPerId(batch);
      await database.withTransaction(async (client) => {
        for (let i = 0; i < records.length; i += UPSERT_ROWS) {
          const { text, values } = upsert(records.slice(i, i + UPSERT_ROWS));
          await client.query(text, values);
        }
        await storeCheckpoint(client, checkpoint);
      });
    },

    async get(id) {
      const text = `select id, revision, idx, document from ${table} where id = $1`;
      // The read after every job (an MIS shows what it changed): prepared once per connection on a server.
      const { rows } = await pool.query<Row>(database.kind === 'postgres' ? prepared(text, [id]) : { text, values: [id] });
      return rows[0] ? toRecord(rows[0]) : null;
    },

    async getMany(ids) {
      if (ids.length === 0) return new Map();
      const { rows } = await pool.query<Row>(`select id, revision, idx, document from ${table} where id = any($1::text[])`, [ids]);
      return new Map(rows.map((row) => [row.id, toRecord(row)]));
    },

    async search(filter, { page, pageSize }) {
      const { sql, params } = where(filter);
      const [{ rows }, count] = [
        await pool.query<Row>(
          `select id, revision, idx, document from ${table} ${sql} order by inserted_at desc, id asc limit $${params.length + 1} offset $${params.length + 2}`,
          [...params, pageSize, (page - 1) * pageSize],
        ),
        await pool.query<{ n: string }>(`select count(*) as n from ${table} ${sql}`, params),
      ];
      return { items: rows.map(toRecord), total: Number(count.rows[0]!.n) };
    },

    async *scan() {
      for await (const row of scanById<Row>(database, table, 'id, revision, idx, document')) yield toRecord(row);
    },

    reset: (projection) => resetTable(database, table, projection),

    async openShadow(projection, purpose) {
      const shadow = await createShadowTable(database, {
        live: table,
        projection,
        purpose,
        // Commands write this table inline (inlineWrite): the swap waits until the shadow has every event.
        writtenInline: true,
        tableDdl: (name) => tableDdl(lz4, name),
        indexDdl,
        comparedAs: (t) => `jsonb_build_object('revision', ${t}.revision, 'index', ${t}.idx, 'document', ${t}.document::jsonb)`,
        // Same text is the same document; different text (e.g. a table written as jsonb) compares as JSON.
        differs: `l.revision <> s.revision or l.idx <> s.idx or (l.document::text <> s.document::text and l.document::jsonb <> s.document::jsonb)`,
      });
      return { store: await createPostgresDeviceDispenseStore(database, { table: shadow.table, migrated: true }), table: shadow };
    },

    async close() {
      // The database is shared and closed by its owner.
    },
  };
}
