/**
 * Reference data in PostgreSQL (a server, or PGlite on the embedded default): one table per kind
 * (`ref_<kind>`: id, version, digest, the record as jsonb, when it changed here), with a generated
 * column and an index for every lookup a command makes, and the append-only `reference_changes` log.
 *
 * Writers take one advisory lock per transaction, so change-log sequence numbers commit in order
 * and a cache that has read up to N never misses a change below it (see referenceCache.ts).
 */
import { hash } from 'node:crypto';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Database } from '../database/database.js';
import { fastCanonicalJson } from '../eventStore/hashChain.js';
import type { JsonValue } from '../eventStore/eventStore.js';
import { recordId, REFERENCE_KINDS, type Employee, type ReferenceKind, type ReferenceRecord } from './records.js';
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
    -- The party of an employee or user (new, or removed): the caches drop that party's list.
    party_id text,
    -- The content of old_version, written when it is superseded or removed: a version's content is the
    -- table's while it is current, and this afterwards (a first load writes no content here).
    old_record jsonb
  );
  create index if not exists reference_changes_record on reference_changes (kind, id, changed_at);
`;

/** SHA-256 of the record's canonical JSON: what "the same content" means. */
// crypto.hash: the one-shot form, a quarter of createHash's cost on a record-sized input (measured).
export const digestOf = (canonicalJson: string) => hash('sha256', canonicalJson, 'hex');
export const recordDigest = (record: ReferenceRecord) => digestOf(fastCanonicalJson(record as JsonValue));

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
      // The last change at or before `at` names the version; its content is the table's while current,
      // else the old_record of the change that superseded it.
      const { rows } = await pool.query<{ new_version: number | null; changed_at: Date; record: ReferenceRecord | null }>(
        `with c as (select seq, new_version, changed_at from reference_changes
                    where kind = $1 and id = $2 and changed_at <= $3 order by changed_at desc, seq desc limit 1)
         select c.new_version, c.changed_at,
                coalesce((select t.record from ${table(kind)} t where t.id = $2 and t.version = c.new_version),
                         (select n.old_record from reference_changes n where n.kind = $1 and n.id = $2 and n.seq > c.seq order by n.seq limit 1)) as record
         from c`,
        [kind, id, at.toISOString()],
      );
      const row = rows[0];
      if (!row || row.new_version === null || row.record === null) return null;
      return { kind, id, version: row.new_version, changedAt: row.changed_at.toISOString(), record: row.record };
    },

    async put(kind, record, actor): Promise<PutOutcome> {
      const id = recordId(kind, record);
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
          `insert into reference_changes (actor, kind, id, old_version, new_version, old_digest, new_digest, party_id, old_record)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
          [
            actor,
            kind,
            id,
            before?.version ?? null,
            record.version,
            before?.digest ?? null,
            digest,
            (record as { party_id?: string }).party_id ?? null,
            before ? JSON.stringify(before.record) : null,
          ],
        );
        return { outcome: before ? 'updated' : 'created', stored: stored(kind, written[0]!) };
      });
      if (outcome.outcome === 'created' || outcome.outcome === 'updated') await notifyChanged();
      return outcome;
    },

    async importLines(source, options) {
      const load = (direct: boolean) =>
        database.withTransaction(async (client) => {
          await client.query(WRITE_LOCK);
          // Kinds with nothing stored yet take their lines straight into their tables (as a raw COPY would).
          const empty = direct ? await emptyKinds(client) : new Set<ReferenceKind>();
          const staged = await stage(client, database.kind, source(), empty, options.onProgress);
          return merge(client, staged, options);
        });
      let outcome: ImportOutcome;
      try {
        outcome = await load(true);
      } catch (error) {
        // The file repeats an id of a kind it loaded straight into its table: read it again, staged.
        if ((error as { code?: string }).code !== UNIQUE_VIOLATION) throw error;
        outcome = await load(false);
      }
      if (outcome.written + outcome.removed > 0) await notifyChanged();
      return outcome;
    },

    async head() {
      const { rows } = await pool.query<{ seq: string | null }>('select max(seq)::text as seq from reference_changes');
      return BigInt(rows[0]?.seq ?? 0);
    },

    async changesSince(seq, limit) {
      const { rows } = await pool.query<{ seq: string; kind: ReferenceKind; id: string; party_id: string | null }>(
        `select seq::text, kind, id, party_id from reference_changes where seq > $1 order by seq limit $2`,
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

const UNIQUE_VIOLATION = '23505';
const stageTable = (kind: ReferenceKind) => `ref_stage_${kind}`;

async function emptyKinds(client: pg.PoolClient): Promise<Set<ReferenceKind>> {
  const { rows } = await client.query<{ kind: ReferenceKind }>(
    REFERENCE_KINDS.map((kind) => `select '${kind}' as kind where not exists (select 1 from ${table(kind)})`).join(' union all '),
  );
  return new Set(rows.map((r) => r.kind));
}

/** Where a kind's lines go: its staging table (with line numbers), or its own empty table. */
type Target = { table: string; direct: boolean };
const columnsOf = (target: Target) => (target.direct ? '(id, version, digest, record)' : '(line, id, version, digest, record)');
const rowOf = (target: Target, l: ImportLine) =>
  target.direct ? [l.id, String(l.version), l.digest, l.json] : [String(l.line), l.id, String(l.version), l.digest, l.json];

/**
 * Stages the lines, one temporary table per kind (a run of lines of one kind goes through one COPY on a
 * server, batched inserts on PGlite); returns the kinds and the lines read.
 */
async function stage(
  client: pg.PoolClient,
  kind: Database['kind'],
  lines: AsyncIterable<ImportLine>,
  empty: ReadonlySet<ReferenceKind>,
  onProgress?: (n: number) => void,
): Promise<Staged> {
  const kinds: ReferenceKind[] = [];
  const open = async (k: ReferenceKind): Promise<Target> => {
    if (empty.has(k)) {
      if (!kinds.includes(k)) kinds.push(k);
      return { table: table(k), direct: true };
    }
    if (!kinds.includes(k)) {
      kinds.push(k);
      await client.query(`create temp table ${stageTable(k)} (line integer, id text, version integer, digest text, record jsonb) on commit drop`);
    }
    return { table: stageTable(k), direct: false };
  };
  const writer = kind === 'postgres' ? copyWriter(client) : insertWriter(client);
  let count = 0;
  let current: ReferenceKind | null = null;
  let reported = 0;
  try {
    for await (const line of lines) {
      if (line.kind !== current) {
        await writer.end();
        current = line.kind;
        writer.start(await open(line.kind));
      }
      await writer.write(line);
      count += 1;
      if (count - reported >= 10_000) {
        onProgress?.(count - reported);
        reported = count;
      }
    }
    await writer.end();
  } catch (error) {
    // A refused line mid-COPY: the COPY must fail (CopyFail) before the transaction can roll back.
    await writer.abort(error);
    throw error;
  }
  if (count > reported) onProgress?.(count - reported);
  return { kinds, direct: kinds.filter((k) => empty.has(k)), lines: count };
}

type Staged = { kinds: ReferenceKind[]; direct: ReferenceKind[]; lines: number };

type StageWriter = { start(target: Target): void; write(line: ImportLine): Promise<void>; end(): Promise<void>; abort(error: unknown): Promise<void> };

/** COPY into one staging table at a time, rows written into byte chunks as they come. */
function copyWriter(client: pg.PoolClient): StageWriter {
  let stream: ReturnType<typeof copyFrom> | null = null;
  let into: Target = { table: '', direct: false };
  let done: Promise<void> | null = null;
  let chunk = Buffer.allocUnsafe(COPY_CHUNK);
  let at = 0;
  const flush = async () => {
    if (at === 0 || !stream) return;
    const full = chunk.subarray(0, at);
    chunk = Buffer.allocUnsafe(COPY_CHUNK);
    at = 0;
    if (!stream.write(full)) await Promise.race([new Promise((resolve) => stream!.once('drain', resolve)), done]);
  };
  return {
    start(target) {
      into = target;
      stream = client.query(copyFrom(`copy ${target.table} ${columnsOf(target)} from stdin with ${RAW_CSV}`));
      const opened = stream;
      done = new Promise<void>((resolve, reject) => {
        opened.on('finish', resolve);
        opened.on('error', reject);
      });
      // Awaited in write/end; a failure between them must not be an unhandled rejection.
      done.catch(() => undefined);
    },
    async write(line) {
      const texts = rowOf(into, line);
      const bound = 3 * texts.reduce((n, text) => n + text.length, 0) + texts.length;
      if (at + bound > chunk.length) {
        await flush();
        if (bound > chunk.length) chunk = Buffer.allocUnsafe(bound);
      }
      for (let i = 0; i < texts.length; i++) {
        at += chunk.write(texts[i]!, at, 'utf8');
        chunk[at++] = i < texts.length - 1 ? 0x02 : 0x0a;
      }
    },
    async end() {
      if (!stream) return;
      await flush();
      stream.end();
      await done;
      stream = null;
    },
    async abort(error) {
      if (!stream) return;
      stream.destroy(error instanceof Error ? error : new Error(String(error)));
      await done?.catch(() => undefined);
      stream = null;
    },
  };
}

/** Batched multi-row inserts (PGlite takes no COPY from a client stream). */
function insertWriter(client: pg.PoolClient): StageWriter {
  let target: Target = { table: '', direct: false };
  let batch: ImportLine[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const columns = [batch.map((l) => l.id), batch.map((l) => l.version), batch.map((l) => l.digest), batch.map((l) => l.json)];
    await client.query(
      target.direct
        ? `insert into ${target.table} (id, version, digest, record) select * from unnest($1::text[], $2::int[], $3::text[], $4::jsonb[])`
        : `insert into ${target.table} (line, id, version, digest, record) select * from unnest($5::int[], $1::text[], $2::int[], $3::text[], $4::jsonb[])`,
      target.direct ? columns : [...columns, batch.map((l) => l.line)],
    );
    batch = [];
  };
  return {
    start: (table) => void (target = table),
    async write(line) {
      batch.push(line);
      if (batch.length >= BATCH_ROWS) await flush();
    },
    end: flush,
    abort: async () => void (batch = []),
  };
}

/**
 * The merge, one statement per kind: the newest line of each record (the first of them, when one
 * version appears twice) against the stored record; conflicts are found in the same statement and
 * refuse the whole load (the transaction rolls back), older lines are counted, the rest upserted and
 * logged.
 */
async function merge(client: pg.PoolClient, staged: Staged, { actor, replace }: ImportOptions): Promise<ImportOutcome> {
  const outcome: ImportOutcome = { lines: staged.lines, written: 0, skippedOlder: 0, unchanged: 0, removed: 0, removedIds: [] };
  // Loaded straight into their (empty) tables: every row is new; the log names each.
  for (const kind of staged.direct) {
    const { rowCount } = await client.query(
      `insert into reference_changes (actor, kind, id, old_version, new_version, old_digest, new_digest, party_id, old_record)
       select $2, $1, id, null, version, null, digest, ${LOOKUP_COLUMNS[kind]?.columns.includes('party_id') ? 'party_id' : 'null'}, null from ${table(kind)}`,
      [kind, actor],
    );
    outcome.written += rowCount ?? 0;
  }
  const kinds = staged.kinds.filter((k) => !staged.direct.includes(k));
  if (replace && !kinds.includes(replace) && !staged.direct.includes(replace)) {
    kinds.push(replace);
    await client.query(`create temp table ${stageTable(replace)} (line integer, id text, version integer, digest text, record jsonb) on commit drop`);
  }
  for (const kind of kinds) {
    const [target, staging] = [table(kind), stageTable(kind)];
    const { rows } = await client.query<{
      older: number;
      unchanged: number;
      written: number;
      shadowed: number;
      twice: { line: number; id: string; version: number } | null;
      conflict: { line: number; id: string; version: number } | null;
    }>(
      `with s as materialized (
              select distinct on (id) line, id, version, digest, record, min(digest) over w <> max(digest) over w as twice
              from ${staging} window w as (partition by id, version) order by id, version desc, line),
            old as materialized (select t.id, t.version, t.digest, t.record from ${target} t join s on s.id = t.id),
            up as (insert into ${target} (id, version, digest, record, changed_at)
                   select s.id, s.version, s.digest, s.record, now() from s left join old on old.id = s.id
                   where old.id is null or s.version > old.version
                   on conflict (id) do update set version = excluded.version, digest = excluded.digest, record = excluded.record, changed_at = excluded.changed_at
                   returning id, version, digest, record->>'party_id' as party_id),
            log as (insert into reference_changes (actor, kind, id, old_version, new_version, old_digest, new_digest, party_id, old_record)
                    select $2, $1, up.id, old.version, up.version, old.digest, up.digest, up.party_id, old.record from up left join old on old.id = up.id
                    returning 1)
       select (select count(*) from s join old on old.id = s.id where s.version < old.version)::int as older,
              (select count(*) from s join old on old.id = s.id where s.version = old.version and s.digest = old.digest)::int as unchanged,
              (select count(*) from log)::int as written,
              ((select count(*) from ${staging}) - (select count(*) from s))::int as shadowed,
              (select json_build_object('line', line, 'id', id, 'version', version) from s where twice order by line limit 1) as twice,
              (select json_build_object('line', s.line, 'id', s.id, 'version', s.version) from s join old on old.id = s.id
               where s.version = old.version and s.digest <> old.digest order by s.line limit 1) as conflict`,
      [kind, actor],
    );
    const counted = rows[0]!;
    // The statement wrote already: throwing rolls the whole load back.
    if (counted.twice)
      throw new ReferenceImportError(
        counted.twice.line,
        'version',
        `${counted.twice.id} appears twice with version ${counted.twice.version} and different content`,
      );
    if (counted.conflict)
      throw new ReferenceImportError(
        counted.conflict.line,
        'version',
        `${counted.conflict.id}: version ${counted.conflict.version} is stored with different content`,
      );
    // Lines that lost to a newer line of the same record in the file count as older, too.
    outcome.skippedOlder += counted.older + counted.shadowed;
    outcome.unchanged += counted.unchanged;
    outcome.written += counted.written;
    if (kind === replace) {
      const { rows: removed } = await client.query<{ id: string }>(
        `with gone as (delete from ${target} t where not exists (select 1 from ${staging} s where s.id = t.id)
                       returning t.id, t.version, t.digest, t.record),
              log as (insert into reference_changes (actor, kind, id, old_version, new_version, old_digest, new_digest, party_id, old_record)
                      select $2, $1, id, version, null, digest, null, record->>'party_id', record from gone returning id)
         select id from log order by id`,
        [kind, actor],
      );
      outcome.removed += removed.length;
      outcome.removedIds.push(...removed.slice(0, 100).map((r) => r.id));
    }
  }
  return outcome;
}
