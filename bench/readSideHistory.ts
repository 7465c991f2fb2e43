/**
 * A realistic history for the read-side benchmark, written as an export writes it (canonical JSON,
 * hash-chained, the lines' keys in the export's order): device dispenses of many
 * legal entities created, completed, stopped and marked in error, and licences created and updated.
 * Events are cloned from ones the real commands recorded (bench/fixtures/templates.json).
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { v4 as uuidv4, v7 as uuidv7 } from 'uuid';
import templates from './fixtures/templates.json' with { type: 'json' };
import type { HistoryLine } from '../src/history/historyLine.js';
import { canonicalEvent, GENESIS_HASH } from '../src/eventStore/hashChain.js';

const LEGAL_ENTITIES = 400;

/** Deterministic pseudo-random numbers (mulberry32), so a size always yields the same shape. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function writeHistory(path: string, events: number): Promise<number> {
  const out = createWriteStream(path, { highWaterMark: 1 << 20 });
  const next = random(42);
  const legalEntities = Array.from({ length: LEGAL_ENTITIES }, () => uuidv4());
  let clock = Date.parse('2025-01-01T00:00:00Z');
  let written = 0;
  // Each stream's events are written one after another: the chain needs the last hash only.
  let [lastStream, lastHash] = ['', GENESIS_HASH];
  const emit = async (stream: string, revision: number, type: string, data: HistoryLine['data'], legalEntity: string) => {
    clock += 1_000;
    const at = new Date(clock).toISOString();
    const line: HistoryLine = {
      stream_name: stream,
      revision,
      event_type: type,
      data: { ...data, at },
      metadata: {
        event_id: uuidv7(),
        correlation_id: uuidv4(),
        causation_id: uuidv4(),
        user_id: templates.created.metadata.userId,
        client_id: legalEntity,
        occurred_at: at,
        schema_version: 1,
      },
    };
    written += 1;
    // As an export writes it (LINE_SQL): canonical data and metadata, the stream's hash chain.
    const prev = stream === lastStream ? lastHash : GENESIS_HASH;
    const link = canonicalEvent(prev, stream, revision, type, line.data, line.metadata);
    [lastStream, lastHash] = [stream, link.hash];
    const text = `{"stream_name":${JSON.stringify(stream)},"revision":${revision},"event_type":${JSON.stringify(type)},"data":${link.data},"metadata":${link.metadata},"prev_hash":"${prev}","hash":"${link.hash}"}\n`;
    if (!out.write(text)) await once(out, 'drain');
  };

  // Licences first: each legal entity creates one and updates it a few times (about 3 % of events).
  for (const legalEntity of legalEntities) {
    const stream = `legal_entity_licenses-${legalEntity}`;
    const id = uuidv4();
    const license = { ...templates.license.data.license, id, legal_entity_id: legalEntity, is_primary: false, type: 'PHARMACY_DRUGS' };
    await emit(stream, 0, 'LicenseCreated', { license, by: templates.created.data.by, legal_entity_id: legalEntity }, legalEntity);
    const updates = Math.round((events * 0.03) / LEGAL_ENTITIES);
    for (let u = 1; u <= updates; u++)
      await emit(
        stream,
        u,
        'LicenseUpdated',
        { id, changes: { order_no: `ORD-${u}` }, by: templates.created.data.by, legal_entity_id: legalEntity },
        legalEntity,
      );
  }

  const by = templates.created.data.by;
  while (written < events) {
    const legalEntity = legalEntities[Math.floor(next() * LEGAL_ENTITIES)]!;
    const id = uuidv4();
    const patient = uuidv4();
    const stream = `device_dispense-${id}`;
    const dispense = structuredClone(templates.created.data.dispense);
    dispense.id = id;
    dispense.subject.identifier.value = patient;
    dispense.performer_legal_entity.identifier.value = legalEntity;
    await emit(stream, 0, 'DeviceDispenseCreated', { dispense, patient_id: patient, by, legal_entity_id: legalEntity }, legalEntity);
    const fate = next();
    const link = `media://device_dispenses/${id}/${uuidv4()}.jws`;
    const completed = {
      id,
      when_handed_over: new Date(clock).toISOString(),
      payment_id: 'PAY-1',
      payment_amount: 18.65,
      signed_content_link: link,
      by,
      legal_entity_id: legalEntity,
    };
    if (fate < 0.5) await emit(stream, 1, 'DeviceDispenseCompleted', completed, legalEntity);
    else if (fate < 0.75) await emit(stream, 1, 'DeviceDispenseStopped', { id, by, legal_entity_id: legalEntity }, legalEntity);
    else if (fate < 0.9) {
      await emit(stream, 1, 'DeviceDispenseCompleted', completed, legalEntity);
      const reason = { coding: [{ system: 'device_dispense_mark_in_error_reasons', code: 'incorrect_device' }] };
      await emit(
        stream,
        2,
        'DeviceDispenseMarkedInError',
        { id, status_reason: reason, signed_content_link: link, by, legal_entity_id: legalEntity },
        legalEntity,
      );
    }
  }
  out.end();
  await once(out, 'finish');
  return written;
}
