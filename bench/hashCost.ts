/**
 * npm run bench — how fast commands are compared with what the database can do at all, measured in
 * one run on one machine, so only the ratios mean something:
 *   raw:     single-row INSERTs into a plain table, one transaction each (the ceiling for durable writes)
 *   append:  event-store appends of one event to a new stream (stream row + event row, one transaction)
 *   command: Create device dispense without HTTP: reference checks, folding two streams, two appends
 * Sequentially, and (PostgreSQL server only; PGlite has one connection) with 8 concurrent writers.
 * The hash chain's cost (issue 16): appends and Creates with it and without it (a store made for this
 * benchmark only), measured in alternating slices so a busy shared machine weighs on both alike.
 * (npm run bench -- hashing.) BENCH_N (default 1000) operations per measurement; DATABASE_URL selects the PostgreSQL server.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { v4 as uuidv4 } from 'uuid';
import { benchEvent } from './benchEvent.js';
import { createDeviceDispense } from '../src/commands/createDeviceDispense.js';
import type { CommandDeps } from '../src/commands/shared/commandContext.js';
import { openPostgres, type Database } from '../src/database/database.js';
import { openPGlite } from '../src/database/pglite.js';
import { createPostgresEventStore } from '../src/eventStore/postgresEventStore.js';
import { createFilesystemMediaStorage } from '../src/media/mediaStorage.js';
import demo from '../src/referenceData/demoReferenceData.json' with { type: 'json' };
import { memoryReferenceViews } from '../src/referenceData/memoryReferenceStore.js';
import { parseReferenceData } from '../src/referenceData/referenceData.js';

const N = Number(process.env.BENCH_N ?? 1000);
const CONCURRENCY = 8;

async function measure(label: string, count: number, concurrency: number, op: (i: number) => Promise<unknown>) {
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await op(next++);
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { label, concurrency, rate: count / seconds };
}

/**
 * Rates of two operations measured in alternating slices (N/2 each), so load changes hit both alike; also
 * the median of the slice pairs' ratios, which one disturbed slice does not move.
 */
async function alternate(count: number, concurrency: number, ops: [(i: number) => Promise<unknown>, (i: number) => Promise<unknown>]) {
  const slices = 40;
  const per = Math.max(1, Math.floor(count / 2 / slices));
  const seconds = [0, 0];
  const ratios: number[] = [];
  for (let slice = 0; slice < slices; slice++) {
    const pair = [0, 0];
    for (const which of slice % 2 ? [1, 0] : [0, 1]) {
      const { rate } = await measure('', per, concurrency, (i) => ops[which]!(slice * per + i));
      pair[which] = rate;
      seconds[which]! += per / rate;
    }
    ratios.push(pair[0]! / pair[1]!);
  }
  ratios.sort((a, b) => a - b);
  const [first, second] = seconds.map((s) => (slices * per) / s) as [number, number];
  return { first, second, ratio: first / second, median: (ratios[(slices - 1) >> 1]! + ratios[slices >> 1]!) / 2 };
}

async function main() {
  const schema = `bench_${uuidv4().slice(0, 8)}`;
  const dir = await mkdtemp(join(tmpdir(), 'bench-'));
  const database: Database = process.env.DATABASE_URL ? await openPostgres(process.env.DATABASE_URL, { schema, max: CONCURRENCY + 2 }) : await openPGlite();
  try {
    const store = await createPostgresEventStore(database);
    const unhashedStore = await createPostgresEventStore(database, { hashChain: false });
    await database.pool.query('create table if not exists bench_raw (id uuid primary key, stream text not null, data jsonb not null)');

    // Reference data with one device request per Create, so no two creates meet on one request.
    const template = demo.device_requests[0]!;
    const requests = Array.from({ length: 8 * N }, () => ({ ...template, id: uuidv4() }));
    const referenceData = parseReferenceData({ ...demo, device_requests: requests }, 'bench');
    const deps: CommandDeps = {
      eventStore: store,
      reference: memoryReferenceViews(referenceData),
      trustedCAs: [],
      media: createFilesystemMediaStorage(dir),
      clock: () => new Date(),
    };
    const unhashedDeps: CommandDeps = { ...deps, eventStore: unhashedStore };
    const employee = demo.employees[0]!;
    const ref = (code: string, value: string) => ({ identifier: { type: { coding: [{ system: 'eHealth/resources', code }] }, value } });
    const create = (deviceRequestId: string, withDeps = deps) =>
      createDeviceDispense(
        withDeps,
        { userId: demo.users[0]!.id, legalEntityId: employee.legal_entity_id, correlationId: uuidv4(), causationId: uuidv4() },
        {
          patient_id: template.subject_id,
          body: {
            id: uuidv4(),
            status: 'in_progress',
            primary_source: true,
            performer: ref('employee', employee.id),
            location: ref('division', demo.divisions[0]!.id),
            based_on: ref('device_request', deviceRequestId),
            program: ref('medical_program', template.program_id!),
            verification_code: template.verification_code!,
            details: [{ device: ref('device_definition', demo.device_definitions[0]!.id), quantity: { value: 10, system: 'device_unit', code: 'piece' } }],
          },
        },
      );
    const event = (i: number) => benchEvent({ i, note: 'x'.repeat(200) });

    const levels = database.kind === 'postgres' ? [1, CONCURRENCY] : [1];
    const results = [];
    const hashing: Array<{ concurrency: number; hashed: Awaited<ReturnType<typeof alternate>>; control: Awaited<ReturnType<typeof alternate>> }> = [];
    for (const concurrency of levels) {
      const offset = concurrency === 1 ? 0 : N;
      const controlOffset = 4 * N + 2 * offset;
      results.push(
        await measure('raw pg INSERT (1 row, 1 tx)', N, concurrency, (i) =>
          database.pool.query('insert into bench_raw values ($1, $2, $3)', [uuidv4(), `raw-${i}`, JSON.stringify({ i, note: 'x'.repeat(200) })]),
        ),
        await measure('event store append (1 event)', N, concurrency, (i) =>
          store.appendToStream(`bench-${concurrency}-${i}`, [event(i)], { expectedRevision: 'no_stream' }),
        ),
        await measure('Create device dispense command', N, concurrency, (i) => create(requests[offset + i]!.id)),
      );
      const hashOffset = 2 * N + offset;
      const hashed = await alternate(N, concurrency, [
        (i) => create(requests[hashOffset + i]!.id),
        (i) => create(requests[hashOffset + N / 2 + i]!.id, unhashedDeps),
      ]);
      // The A/A control: both sides with the chain, to show how far this machine scatters such a ratio.
      const control = await alternate(N, concurrency, [(i) => create(requests[controlOffset + i]!.id), (i) => create(requests[controlOffset + N / 2 + i]!.id)]);
      hashing.push({ concurrency, hashed, control });
    }

    process.stdout.write(
      `\nbackend: ${database.kind}${process.env.DATABASE_URL ? ' (PostgreSQL server)' : ' (PGlite, one connection)'}; ${N} operations each\n\n`,
    );
    process.stdout.write(`${'operation'.padEnd(34)} ${'writers'.padStart(7)} ${'ops/s'.padStart(9)} ${'× raw ceiling'.padStart(14)}\n`);
    for (const r of results) {
      const ceiling = results.find((x) => x.concurrency === r.concurrency && x.label.startsWith('raw'))!.rate;
      process.stdout.write(
        `${r.label.padEnd(34)} ${String(r.concurrency).padStart(7)} ${r.rate.toFixed(0).padStart(9)} ${(r.rate / ceiling).toFixed(2).padStart(14)}\n`,
      );
    }
    process.stdout.write(`\nhash chain (issue 16), Create device dispense, ${N / 2} each side, 40 alternating slices:\n`);
    for (const { concurrency, hashed, control } of hashing)
      process.stdout.write(
        `${String(concurrency).padStart(2)} writer(s): with ${hashed.first.toFixed(0)}/s, without ${hashed.second.toFixed(0)}/s → ` +
          `${hashed.ratio.toFixed(3)}× (median of slice pairs ${hashed.median.toFixed(3)}×; target ≥ 0.95); ` +
          `A/A control (with ÷ with) ${control.ratio.toFixed(3)}× (median ${control.median.toFixed(3)}×)\n`,
      );
    const [one, five, fifteen] = loadavg();
    process.stdout.write(`load average: ${one!.toFixed(2)} ${five!.toFixed(2)} ${fifteen!.toFixed(2)} (${cpus().length} cores, shared)\n`);
  } finally {
    if (process.env.DATABASE_URL) await database.pool.query(`drop schema ${schema} cascade`).catch(() => undefined);
    await database.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
