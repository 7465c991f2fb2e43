import pg from 'pg';
import { execSync } from 'node:child_process';
const BATCH = Number(process.env.BATCH ?? 250);
const pgcpu = () => Number(execSync('/tmp/pgcpu.sh').toString());
const pool = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:5432/bench', max: 2 });
const { rows } = await pool.query(`select id, revision, idx, document::text as doc from prof.device_dispenses limit ${Number(process.env.LIMIT ?? 20000)}`);
const recs = rows.map((r) => ({ id: r.id, revision: Number(r.revision), idx: r.idx, document: JSON.parse(r.doc) }));
const cols = `(id, revision, patient_id, legal_entity_id, status, inserted_at, idx, document)`;
const conflict = `on conflict (id) do update set revision = excluded.revision, document = excluded.document where prof.tt.revision < excluded.revision`;
async function run(name: string, fn: (batch: typeof recs) => Promise<void>) {
  await pool.query('truncate prof.tt');
  const [c0, t0, u0] = [pgcpu(), process.hrtime.bigint(), process.cpuUsage()];
  for (let i = 0; i < recs.length; i += BATCH) await fn(recs.slice(i, i + BATCH));
  const u = process.cpuUsage(u0);
  console.log(name, 'wall ms', Number(process.hrtime.bigint() - t0) / 1e6, 'pg cpu s', (pgcpu() - c0) / 100, 'node cpu ms', (u.user + u.system) / 1000);
}
await run('json_to_recordset', async (b) => {
  await pool.query(`insert into prof.tt ${cols} select r.id, r.revision, r.idx->>'patient_id', r.idx->>'legal_entity_id', r.idx->>'status', r.idx->>'inserted_at', r.idx, r.document
    from json_to_recordset($1::json) as r(id text, revision bigint, idx jsonb, document json) ${conflict}`, [Buffer.from(JSON.stringify(b))]);
});
await run('values', async (b) => {
  const values: unknown[] = [];
  const tuples = b.map((r) => {
    const n = values.push(r.id, r.revision, r.idx.patient_id ?? 'p', r.idx.legal_entity_id ?? 'l', r.idx.status ?? 's', r.idx.inserted_at ?? 'i', JSON.stringify(r.idx), JSON.stringify(r.document));
    return `($${n - 7},$${n - 6},$${n - 5},$${n - 4},$${n - 3},$${n - 2},$${n - 1}::jsonb,$${n}::json)`;
  });
  await pool.query(`insert into prof.tt ${cols} values ${tuples.join(',')} ${conflict}`, values);
});
await run('values-nocheck-text', async (b) => {
  const values: unknown[] = [];
  const tuples = b.map((r) => {
    const n = values.push(r.id, r.revision, r.idx.patient_id ?? 'p', r.idx.legal_entity_id ?? 'l', r.idx.status ?? 's', r.idx.inserted_at ?? 'i', JSON.stringify(r.idx), JSON.stringify(r.document));
    return `($${n - 7},$${n - 6},$${n - 5},$${n - 4},$${n - 3},$${n - 2},$${n - 1}::jsonb,$${n}::text::json)`;
  });
  await pool.query(`insert into prof.tt ${cols} values ${tuples.join(',')} ${conflict}`, values);
});
await pool.end();
