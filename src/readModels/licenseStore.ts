/**
 * The `licenses` read model: a PostgreSQL/PGlite table. The projection writes it in one transaction
 * with its checkpoint; queries read it.
 */
import type pg from 'pg';
import type { Database, Sql } from '../database/database.js';
import type { License } from '../domain/license/license.js';
import type { Position } from '../eventStore/eventStore.js';
import { checkpointsSchema, readCheckpoint, storeCheckpoint, type CheckpointUpdate } from './checkpoints.js';
import type { Page, PageOf } from './paging.js';
import { assertIdentifier, resetTable, scanById } from './postgresTables.js';
import { createShadowTable, type ShadowPurpose, type ShadowTable } from './shadowTables.js';

export type LicenseFilter = Partial<{ legal_entity_id: string; id: string; license_number: string; type: string; is_primary: boolean; is_active: boolean }>;

export type LicenseStore = {
  readonly table: string;
  readCheckpoint(projection: string): Promise<Position | null>;
  /** Runs `work` in one transaction that also moves the checkpoint. */
  inTransaction(checkpoint: CheckpointUpdate, work: (tx: LicenseWriter) => Promise<void>): Promise<void>;
  get(id: string): Promise<License | null>;
  search(filter: LicenseFilter, page: Page): Promise<PageOf<License>>;
  scan(): AsyncIterable<License>;
  reset(projection: string): Promise<void>;
  /** An empty shadow beside this table, for a rebuild while serving (blue/green) and for verify. */
  openShadow(projection: string, purpose: ShadowPurpose): Promise<{ store: LicenseStore; table: ShadowTable }>;
};

export type LicenseWriter = { getMany(ids: string[]): Promise<Map<string, License>>; put(licenses: License[]): Promise<void> };

const tableDdl = (table: string) => `create table if not exists ${table} (
  id text primary key,
  legal_entity_id text not null,
  type text not null,
  license_number text,
  is_primary boolean not null,
  is_active boolean not null,
  inserted_at text collate "C" not null,
  document jsonb not null
)`;
const indexDdl = (table: string) => `create index if not exists ${table}_legal_entity on ${table} (legal_entity_id, inserted_at, id);`;

export async function createLicenseStore(
  database: Database,
  { table = 'licenses', migrated = false }: { table?: string; migrated?: boolean } = {},
): Promise<LicenseStore> {
  assertIdentifier(table);
  await database.migrate('projection_checkpoints', checkpointsSchema);
  // A shadow table is created by its ShadowTable (index after the bulk load), not here.
  if (!migrated) await database.migrate(`licenses:${table}`, `${tableDdl(table)};\n${indexDdl(table)}`);
  const getMany = async (sql: Sql, ids: string[]) => {
    if (ids.length === 0) return new Map<string, License>();
    const { rows } = await sql.query<{ document: License }>(`select document from ${table} where id = any($1::text[])`, [ids]);
    return new Map(rows.map((row) => [row.document.id, row.document]));
  };
  const put = async (client: pg.PoolClient, licenses: License[]) => {
    if (licenses.length === 0) return;
    await client.query(
      `insert into ${table} (id, legal_entity_id, type, license_number, is_primary, is_active, inserted_at, document)
       select d->>'id', d->>'legal_entity_id', d->>'type', d->>'license_number', (d->>'is_primary')::boolean, (d->>'is_active')::boolean, d->>'inserted_at', d
       from unnest($1::jsonb[]) as t(d)
       on conflict (id) do update set legal_entity_id = excluded.legal_entity_id, type = excluded.type, license_number = excluded.license_number,
         is_primary = excluded.is_primary, is_active = excluded.is_active, inserted_at = excluded.inserted_at, document = excluded.document`,
      [licenses.map((l) => JSON.stringify(l))],
    );
  };
  const where = (filter: LicenseFilter) => {
    const clauses: string[] = [];
    const params: unknown[] = [];
    for (const [key, value] of Object.entries(filter)) {
      if (value === undefined) continue;
      params.push(value);
      clauses.push(`${key} = $${params.length}`);
    }
    return { sql: clauses.length ? `where ${clauses.join(' and ')}` : '', params };
  };

  return {
    table,
    readCheckpoint: (projection) => readCheckpoint(database.pool, projection),
    async inTransaction(checkpoint, work) {
      await database.withTransaction(async (client) => {
        await work({ getMany: (ids) => getMany(client, ids), put: (licenses) => put(client, licenses) });
        await storeCheckpoint(client, checkpoint);
      });
    },
    async get(id) {
      return (await getMany(database.pool, [id])).get(id) ?? null;
    },
    async search(filter, { page, pageSize }) {
      const { sql, params } = where(filter);
      const { rows } = await database.pool.query<{ document: License }>(
        `select document from ${table} ${sql} order by inserted_at, id limit $${params.length + 1} offset $${params.length + 2}`,
        [...params, pageSize, (page - 1) * pageSize],
      );
      const count = await database.pool.query<{ n: string }>(`select count(*) as n from ${table} ${sql}`, params);
      return { items: rows.map((row) => row.document), total: Number(count.rows[0]!.n) };
    },
    async *scan() {
      for await (const row of scanById<{ id: string; document: License }>(database, table, 'id, document')) yield row.document;
    },
    reset: (projection) => resetTable(database, table, projection),
    async openShadow(projection, purpose) {
      const shadow = await createShadowTable(database, {
        live: table,
        projection,
        purpose,
        tableDdl,
        indexDdl,
        comparedAs: (t) => `${t}.document`,
        differs: 'l.document <> s.document',
      });
      return { store: await createLicenseStore(database, { table: shadow.table, migrated: true }), table: shadow };
    },
  };
}
