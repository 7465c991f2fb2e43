/**
 * Reference data in PostgreSQL (a server, or PGlite on the embedded default): one table per kind
 * (`ref_<kind>`: id, version, digest, the record as jsonb, when it changed here), with a generated
 * column and an index for every lookup a command makes, and the append-only `reference_changes` log.
 *
 * Writers take one advisory lock per transaction, so change-log sequence numbers commit in order
 * and a cache that has read up to N never misses a change below it (see referenceCache.ts).
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Database } from '../database/database.js';
import { fastCanonicalJson } from '../eventStore/hashChain.js';
import type { JsonValue } from '../eventStore/eventStore.js';
import { REFERENCE_KINDS, type Employee, type ReferenceKind, type ReferenceRecord } from './records.js';
import {
  ReferenceImportError,
  type ChangeNote,
  type ImportLine,
  type ImportOptions,
  type ImportOutcome,
  type LookupRequest,
  type LookupResult,
  type PutOutcome,
  type ReferenceStore,
  type StoredRecord,
} from './referenceStore.js';

/** The NOTIFY channel that tells every instance to read the change log now. */
export const REFERENCE_CHANNEL = 'reference';

const table = (kind: ReferenceKind) => `ref_${kind}`;

/** Columns derived from the record, for the lookups the commands make. */
const LOOKUP_COLUMNS: Partial<Record<ReferenceKind, { columns: string[]; indexes: string[][] }>> = {
  users: { columns: ['party_id'], indexes: [['party_id']] },
  employees: { columns: ['party_id', 'legal_entity_id'], indexes: [['party_id', 'legal_entity_id'], ['legal_entity_id']] },
  divisions: { columns: ['legal_entity_id'], indexes: [['legal_entity_id']] },
  device_requests: { columns: ['subject_id'], indexes: [['subject_id']] },
};

export const referenceTableDdl = (kind: ReferenceKind, name = table(kind)) => {
  const lookups = LOOKUP_COLUMNS[kind];
  const generated = (lookups?.columns ?? []).map((c) => `, ${c} text generated always as (record->>'${c}') stored`).join('');
  const indexes = (lookups?.indexes ?? []).map((cols) => `create index if not exists ${name}_${cols.join('_')} on ${name} (${cols.join(', ')});`).join('\n');
  return `create table if not exists ${name} (
      id text primary key,
      version integer not null,
      digest text not null,
      record jsonb not null,
      changed_at timestamptz not null default now()${generated}
    );
    ${indexes}`;
};

const SCHEMA = `
  ${REFERENCE_KINDS.map((kind) => referenceTableDdl(kind)).join('\n')}
  create table if not exists reference_changes (
    seq bigserial primary key,
    changed_at timestamptz not null default now(),
    actor text not null,
    kind text not null,
    id text not null,
    old_version integer,
    new_version integer,
    old_digest text,
    new_digest text,
    -- The record as of new_version (null: removed), for reads as of a time.
    record jsonb
  );
  create index if not exists reference_changes_record on reference_changes (kind, id, changed_at);
`;

/** SHA-256 of the record's canonical JSON: what "the same content" means. */
export const recordDigest = (record: ReferenceRecord) =>
  createHash('sha256')
    .update(fastCanonicalJson(record as JsonValue))
    .digest('hex');

const WRITE_LOCK = `select pg_advisory_xact_lock(hashtextextended(current_schema() || '/reference:write', 0))`;

// One statement for every record a command names (arrays empty where nothing is asked): users bring
// their party and every employee of it, employees their party.
const LOOKUP_SQL = `
  with u as (select id, record, party_id from ref_users where id = any($1::text[])),
       e as (select id, record, party_id from ref_employees where id = any($2::text[]))
  select 'users' as kind, record from u
  union all select 'parties', record from ref_parties where id in (select party_id from u union select party_id from e)
  union all select 'party_employees', record from ref_employees where party_id in (select party_id from u)
  union all select 'employees', record from e
  union all select 'legal_entities', record from ref_legal_entities where id = any($3::text[])
  union all select 'divisions', record from ref_divisions where id = any($4::text[])
  union all select 'persons', record from ref_persons where id = any($5::text[])
  union all select 'device_definitions', record from ref_device_definitions where id = any($6::text[])
  union all select 'medical_programs', record from ref_medical_programs where id = any($7::text[])
  union all select 'device_requests', record from ref_device_requests where id = any($8::text[])
  union all select 'dictionaries', record from ref_dictionaries where $9::boolean
  union all select 'config', record from ref_config where $9::boolean`;

type StoredRow = { id: string; version: number; digest: string; record: ReferenceRecord; changed_at: Date };
const stored = (kind: ReferenceKind, row: StoredRow): StoredRecord => ({
  kind,
  id: row.id,
  version: row.version,
  changedAt: row.changed_at.toISOString(),
  record: row.record,
});

/** COPY rows need no quoting with these two control characters (ids and JSON text never hold them: referenceImport.ts). */
const RAW_CSV = `(format csv, quote e'\\x01', delimiter e'\\x02')`;
const BATCH_ROWS = 2_000;
const COPY_CHUNK = 1 << 20;

export async function createPostgresReferenceStore(database: Database): Promise<ReferenceStore> {
  await database.migrate('reference_data', SCHEMA);
  const { pool } = database;

  async function notifyChanged(): Promise<void> {
    await database.notify(REFERENCE_CHANNEL, 'changed').catch(() => undefined);
  }

  return {
    async lookup(request: LookupRequest): Promise<LookupResult> {
      const { rows } = await pool.query<{ kind: string; record: ReferenceRecord }>(LOOKUP_SQL, [
        request.users ?? [],
        request.employees ?? [],
        request.legal_entities ?? [],
        request.divisions ?? [],
        request.persons ?? [],
        request.device_definitions ?? [],
        request.medical_programs ?? [],
        request.device_requests ?? [],
        request.settings ?? false,
      ]);
      const result: LookupResult = { records: [], partyEmployees: [] };
      for (const row of rows) {
        if (row.kind === 'party_employees') result.partyEmployees.push(row.record as Employee);
        else result.records.push({ kind: row.kind as ReferenceKind, record: row.record });
      }
      return result;
    },

    async get(kind, id) {
      const { rows } = await pool.query<StoredRow>(`select id, version, digest, record, changed_at from ${table(kind)} where id = $1`, [id]);
      return rows[0] ? stored(kind, rows[0]) : null;
    },

    async asOf(kind, id, at) {
      const { rows } = await pool.query<{ new_version: number | null; record: ReferenceRecord | null; changed_at: Date }>(
        `select new_version, record, changed_at from reference_changes
         where kind = $1 and id = $2 and changed_at <= $3 order by changed_at desc, seq desc limit 1`,
        [kind, id, at.toISOString()],
      );
      const row = rows[0];
      if (!row || row.new_version === null || row.record === null) return null;
      return { kind, id, version: row.new_version, changedAt: row.changed_at.toISOString(), record: row.record };
    },

    async put(kind, record, actor): Promise<PutOutcome> {
      const id = String((record as { id?: string; name?: string }).id ?? (record as { name?: string }).name);
      const digest = recordDigest(record);
      const outcome = await database.withTransaction(async (client): Promise<PutOutcome> => {
        await client.query(WRITE_LOCK);
        const { rows } = await client.query<StoredRow>(`select id, version, digest, record, changed_at from ${table(kind)} where id = $1`, [id]);
        const before = rows[0];
        if (before && record.version < before.version) return { outcome: 'older', stored: stored(kind, before) };
        if (before && record.version === before.version) return { outcome: before.digest === digest ? 'unchanged' : 'conflict', stored: stored(kind, before) };
        const { rows: written } = await client.query<StoredRow>(
          `insert into ${table(kind)} (id, version, digest, record, changed_at) values ($1, $2, $3, $4, now())
           on conflict (id) do update set version = excluded.version, digest = excluded.digest, record = excluded.record, changed_at = excluded.changed_at
           returning id, version, digest, record, changed_at`,
          [id, record.version, digest, JSON.stringify(record)],
        );
        await client.query(
          `insert into reference_changes (actor, kind, id, old_version, new_version, old_digest, new_digest, record)
           values ($1, $2, $3, $4, $5, $6, $7, $8)`,
          [actor, kind, id, before?.version ?? null, record.version, before?.digest ?? null, digest, JSON.stringify(record)],
        );
        return { outcome: before ? 'updated' : 'created', stored: stored(kind, written[0]!) };
      });
      if (outcome.outcome === 'created' || outcome.outcome === 'updated') await notifyChanged();
      return outcome;
    },

    async importLines(lines, options) {
      const outcome = await database.withTransaction(async (client) => {
        await client.query(WRITE_LOCK);
        await client.query(`create temp table ref_stage (line integer, kind text, id text, version integer, digest text, record jsonb) on commit drop`);
        const count = database.kind === 'postgres' ? await copyStage(client, lines, options.onProgress) : await insertStage(client, lines, options.onProgress);
        return merge(client, count, options);
      });
      if (outcome.written + outcome.removed > 0) await notifyChanged();
      return outcome;
    },

    async head() {
      const { rows } = await pool.query<{ seq: string | null }>('select max(seq)::text as seq from reference_changes');
      return BigInt(rows[0]?.seq ?? 0);
    },

    async changesSince(seq, limit) {
      const { rows } = await pool.query<{ seq: string; kind: ReferenceKind; id: string; party_id: string | null }>(
        `select seq::text, kind, id, record->>'party_id' as party_id from reference_changes where seq > $1 order by seq limit $2`,
        [String(seq), limit],
      );
      return rows.map((r): ChangeNote => ({ seq: BigInt(r.seq), kind: r.kind, id: r.id, partyId: r.party_id }));
    },

    async holds(kind) {
      const { rows } = await pool.query(`select 1 from ${table(kind)} limit 1`);
      return rows.length > 0;
    },
  };
}

const stageColumns = (l: ImportLine) => [String(l.line), l.kind, l.id, String(l.version), l.digest, l.json];

async function copyStage(client: pg.PoolClient, lines: AsyncIterable<ImportLine>, onProgress?: (n: number) => void): Promise<number> {
  let count = 0;
  let reported = 0;
  async function* chunks() {
    let chunk = Buffer.allocUnsafe(COPY_CHUNK);
    let at = 0;
    for await (const line of lines) {
      const texts = stageColumns(line);
      const bound = 3 * texts.reduce((n, text) => n + text.length, 0) + texts.length;
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
  await pipeline(
    Readable.from(chunks(), { highWaterMark: 1 }),
    client.query(copyFrom(`copy ref_stage (line, kind, id, version, digest, record) from stdin with ${RAW_CSV}`)),
  );
  return count;
}

async function insertStage(client: pg.PoolClient, lines: AsyncIterable<ImportLine>, onProgress?: (n: number) => void): Promise<number> {
  let count = 0;
  let batch: ImportLine[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await client.query(
      `insert into ref_stage (line, kind, id, version, digest, record)
       select * from unnest($1::int[], $2::text[], $3::text[], $4::int[], $5::text[], $6::jsonb[])`,
      [
        batch.map((l) => l.line),
        batch.map((l) => l.kind),
        batch.map((l) => l.id),
        batch.map((l) => l.version),
        batch.map((l) => l.digest),
        batch.map((l) => l.json),
      ],
    );
    onProgress?.(batch.length);
    batch = [];
  };
  for await (const line of lines) {
    batch.push(line);
    count += 1;
    if (batch.length >= BATCH_ROWS) await flush();
  }
  await flush();
  return count;
}

/** The one merge of a staged load: conflicts refuse it whole, older lines are counted, the rest upserted and logged. */
async function merge(client: pg.PoolClient, lines: number, { actor, replace }: ImportOptions): Promise<ImportOutcome> {
  // The same record twice in the file with one version and two contents.
  const { rows: twice } = await client.query<{ line: number; id: string; version: number }>(
    `select max(line) as line, id, version from ref_stage group by kind, id, version having count(distinct digest) > 1 order by 1 limit 1`,
  );
  if (twice[0]) throw new ReferenceImportError(twice[0].line, 'version', `${twice[0].id} appears twice with version ${twice[0].version} and different content`);
  const { rows: kindsRows } = await client.query<{ kind: ReferenceKind }>('select distinct kind from ref_stage');
  const kinds = kindsRows.map((r) => r.kind);
  if (replace && !kinds.includes(replace)) kinds.push(replace);
  const outcome: ImportOutcome = { lines, written: 0, skippedOlder: 0, unchanged: 0, removed: 0, removedIds: [] };
  for (const kind of kinds) {
    const target = table(kind);
    // The newest line of each record (the first of them in the file, when one version appears twice).
    const newest = `select distinct on (id) line, id, version, digest, record from ref_stage where kind = $1 order by id, version desc, line`;
    const { rows: conflicts } = await client.query<{ line: number; id: string; version: number }>(
      `select s.line, s.id, s.version from (${newest}) s join ${target} t on t.id = s.id
       where s.version = t.version and s.digest <> t.digest order by s.line limit 1`,
      [kind],
    );
    if (conflicts[0])
      throw new ReferenceImportError(conflicts[0].line, 'version', `${conflicts[0].id}: version ${conflicts[0].version} is stored with different content`);
    const { rows: counted } = await client.query<{ older: number; unchanged: number; written: number }>(
      `with s as (${newest}),
            old as (select t.id, t.version, t.digest from ${target} t join s on s.id = t.id),
            up as (insert into ${target} (id, version, digest, record, changed_at)
                   select s.id, s.version, s.digest, s.record, now() from s left join old on old.id = s.id
                   where old.id is null or s.version > old.version
                   on conflict (id) do update set version = excluded.version, digest = excluded.digest, record = excluded.record, changed_at = excluded.changed_at
                   returning id, version, digest, record),
            log as (insert into reference_changes (actor, kind, id, old_version, new_version, old_digest, new_digest, record)
                    select $2, $1, up.id, old.version, up.version, old.digest, up.digest, up.record from up left join old on old.id = up.id
                    returning 1)
       select (select count(*) from s join old on old.id = s.id where s.version < old.version)::int as older,
              (select count(*) from s join old on old.id = s.id where s.version = old.version)::int as unchanged,
              (select count(*) from log)::int as written`,
      [kind, actor],
    );
    // Lines that lost to a newer line of the same record in the file count as older, too.
    const { rows: shadowed } = await client.query<{ n: number }>(`select (count(*) - count(distinct id))::int as n from ref_stage where kind = $1`, [kind]);
    outcome.skippedOlder += counted[0]!.older + shadowed[0]!.n;
    outcome.unchanged += counted[0]!.unchanged;
    outcome.written += counted[0]!.written;
    if (kind === replace) {
      const { rows: removed } = await client.query<{ id: string }>(
        `with gone as (delete from ${target} t where not exists (select 1 from ref_stage s where s.kind = $1 and s.id = t.id)
                       returning t.id, t.version, t.digest),
              log as (insert into reference_changes (actor, kind, id, old_version, new_version, old_digest, new_digest, record)
                      select $2, $1, id, version, null, digest, null, null from gone returning id)
         select id from log order by id`,
        [kind, actor],
      );
      outcome.removed += removed.length;
      outcome.removedIds.push(...removed.slice(0, 100).map((r) => r.id));
    }
  }
  return outcome;
}
