/**
 * The device dispense decider, Given/When/Then: every transition of the status model (spec §1.1),
 * every refusal with its exact 409 message, what evolve makes of each event; and the device-request
 * dispensing decider (a dispense is attached to its device request once).
 */
import { describe, expect, it } from '@jest/globals';
import { deviceDispenseDecider, type DeviceDispenseCommand } from '../../src/domain/deviceDispense/decider.js';
import { reference, type CodeableConcept, type DeviceDispenseDocument, type DeviceDispenseStatus } from '../../src/domain/deviceDispense/document.js';
import type { DeviceDispenseEvent } from '../../src/domain/deviceDispense/events.js';
import { deviceRequestDispensingDecider, type DeviceRequestDispensingEvent } from '../../src/domain/deviceRequestDispensing/decider.js';
import { SYSTEM_USER_ID, type Actor } from '../../src/domain/shared/decider.js';
import { EsozError } from '../../src/domain/shared/esozError.js';
import { DeciderSpecification, fold } from '../support/deciderSpecification.js';

const ID = '0190a0b0-0000-7000-8000-000000000001';
const PATIENT = '00000000-0000-4000-8000-000000000051';
const LEGAL_ENTITY = '00000000-0000-4000-8000-000000000001';
const AUTHOR = '00000000-0000-4000-8000-000000000011';
const OTHER_USER = '00000000-0000-4000-8000-000000000012';

const createdBy: Actor = { at: '2025-01-01T10:00:00.000Z', by: AUTHOR, legal_entity_id: LEGAL_ENTITY };
const later: Actor = { at: '2025-01-02T11:00:00.000Z', by: OTHER_USER, legal_entity_id: LEGAL_ENTITY };
const system: Actor = { at: '2025-01-05T00:00:00.000Z', by: SYSTEM_USER_ID, legal_entity_id: null };

const dispense: Omit<DeviceDispenseDocument, 'signed_content_links'> = {
  id: ID,
  based_on: reference('device_request', '00000000-0000-4000-8000-000000000081', 'null'),
  status: 'in_progress',
  subject: reference('patient', PATIENT, 'null'),
  primary_source: true,
  performer: reference('employee', '00000000-0000-4000-8000-000000000031', 'Коваленко Олена Петрівна'),
  location: reference('division', '00000000-0000-4000-8000-000000000041', 'Аптечний пункт'),
  note: 'Видано за рецептом',
  performer_legal_entity: reference('legal_entity', LEGAL_ENTITY, 'Аптека №1'),
  program: reference('medical_program', '00000000-0000-4000-8000-000000000071', 'Доступні медичні вироби'),
  details: [
    {
      device: reference('device_definition', '00000000-0000-4000-8000-000000000061'),
      quantity: { value: 10, system: 'device_unit', code: 'piece', unit: 'шт' },
      sell_price: 18.65,
      discount_amount: 150,
    },
  ],
  device_classification_types: ['30221'],
  inserted_at: createdBy.at,
  inserted_by: createdBy.by,
  updated_at: createdBy.at,
  updated_by: createdBy.by,
};

const reason: CodeableConcept = { coding: [{ system: 'device_dispense_mark_in_error_reasons', code: 'incorrect_device' }] };
const completion = {
  when_handed_over: '2025-01-02T10:30:00.000Z',
  payment_id: 'R-1',
  payment_amount: 50,
  signed_content_link: 'media://device_dispenses/1.jws',
};

// --- Commands ----------------------------------------------------------------------------------------
const create: DeviceDispenseCommand = { type: 'CreateDeviceDispense', dispense, patient_id: PATIENT, actor: createdBy };
const complete: DeviceDispenseCommand = { type: 'CompleteDeviceDispense', ...completion, actor: later };
const stop: DeviceDispenseCommand = { type: 'StopDeviceDispense', actor: later };
const markInError: DeviceDispenseCommand = {
  type: 'MarkDeviceDispenseInError',
  status_reason: reason,
  signed_content_link: 'media://device_dispenses/2.jws',
  actor: later,
};
const expire: DeviceDispenseCommand = { type: 'ExpireDeviceDispense', ttl_days: 3, actor: system };

// --- Events ------------------------------------------------------------------------------------------
const created: DeviceDispenseEvent = { type: 'DeviceDispenseCreated', data: { dispense, patient_id: PATIENT, ...createdBy } };
const completed: DeviceDispenseEvent = { type: 'DeviceDispenseCompleted', data: { id: ID, ...completion, ...later } };
const stopped: DeviceDispenseEvent = { type: 'DeviceDispenseStopped', data: { id: ID, ...later } };
const markedInError: DeviceDispenseEvent = {
  type: 'DeviceDispenseMarkedInError',
  data: { id: ID, status_reason: reason, signed_content_link: 'media://device_dispenses/2.jws', ...later },
};
const expired: DeviceDispenseEvent = { type: 'DeviceDispenseExpired', data: { id: ID, ttl_days: 3, ...system } };

/** The history that leads to each status. */
const historyOf: Record<DeviceDispenseStatus, DeviceDispenseEvent[]> = {
  in_progress: [created],
  completed: [created, completed],
  stopped: [created, stopped],
  entered_in_error: [created, markedInError],
  unknown: [created, expired],
};

const given = DeciderSpecification.for(deviceDispenseDecider);

/** A check for thenThrows: the ЕСОЗ error with this status, type and message. */
const esozError = (status: number, type: string, message: string) => (error: unknown) => {
  expect(error).toBeInstanceOf(EsozError);
  expect(error).toMatchObject({ status, type, message });
};
const conflict409 = (message: string) => esozError(409, 'request_conflict', message);

describe('device dispense decider: create', () => {
  it('creates a dispense in_progress', () => {
    given([]).when(create).then([created]);
  });

  it.each(Object.keys(historyOf) as DeviceDispenseStatus[])('refuses to create one with the id of an existing dispense (%s)', (status) => {
    given(historyOf[status]).when(create).thenThrows(conflict409('Device dispense with such id already exists'));
  });
});

describe('device dispense decider: transitions from in_progress', () => {
  it('completes', () => given([created]).when(complete).then([completed]));
  it('stops', () => given([created]).when(stop).then([stopped]));
  it('marks in error', () => given([created]).when(markInError).then([markedInError]));
  it('expires', () => given([created]).when(expire).then([expired]));

  it('completes without payment data (a dispense without a program)', () => {
    const { payment_id: _id, payment_amount: _amount, ...withoutPayment } = completion;
    given([created])
      .when({ type: 'CompleteDeviceDispense', ...withoutPayment, actor: later })
      .then([{ type: 'DeviceDispenseCompleted', data: { id: ID, ...withoutPayment, ...later } }]);
  });
});

describe('device dispense decider: refusals', () => {
  const notInProgress: DeviceDispenseStatus[] = ['completed', 'stopped', 'entered_in_error', 'unknown'];

  it.each(notInProgress)('a dispense in status %s cannot be completed', (status) => {
    given(historyOf[status])
      .when(complete)
      .thenThrows(conflict409(`Device dispense in status ${status} cannot be completed`));
  });

  it.each(notInProgress)('a dispense in status %s cannot be stopped', (status) => {
    given(historyOf[status])
      .when(stop)
      .thenThrows(conflict409(`Device dispense in status ${status} cannot be stopped`));
  });

  it.each(['completed', 'entered_in_error'] as const)('a dispense in status %s cannot be marked in error', (status) => {
    given(historyOf[status])
      .when(markInError)
      .thenThrows(conflict409(`Device dispense in status ${status} cannot be marked in error`));
  });

  it.each(['stopped', 'unknown'] as const)('a dispense in status %s can be marked in error', (status) => {
    given(historyOf[status]).when(markInError).then([markedInError]);
  });

  it.each(notInProgress)('expiring a dispense in status %s changes nothing', (status) => {
    given(historyOf[status]).when(expire).thenNothingHappened();
  });

  it('expiring a dispense that does not exist changes nothing', () => {
    given([]).when(expire).thenNothingHappened();
  });

  it.each([complete, stop, markInError])('$type of a dispense that does not exist is a programming error, not an event', (command) => {
    given([])
      .when(command)
      .thenThrows((error) => {
        expect(error).toBeInstanceOf(Error);
        expect(error).not.toBeInstanceOf(EsozError);
      });
  });
});

describe('device dispense decider: evolve', () => {
  const stateAfter = (events: DeviceDispenseEvent[]) => fold(deviceDispenseDecider, events);

  it('starts with no dispense', () => {
    expect(deviceDispenseDecider.initialState()).toBeNull();
  });

  it('created: the document as given, with no signed content yet', () => {
    expect(stateAfter([created])).toEqual({ ...dispense, signed_content_links: [] });
  });

  it('completed: status, handing over, payment, who and when, and the signed content link appended', () => {
    expect(stateAfter([created, completed])).toEqual({
      ...dispense,
      status: 'completed',
      when_handed_over: completion.when_handed_over,
      payment_id: 'R-1',
      payment_amount: 50,
      updated_at: later.at,
      updated_by: later.by,
      signed_content_links: [completion.signed_content_link],
    });
  });

  it('completed without payment data leaves payment fields absent', () => {
    const event: DeviceDispenseEvent = {
      type: 'DeviceDispenseCompleted',
      data: { id: ID, when_handed_over: completion.when_handed_over, signed_content_link: 'media://x', ...later },
    };
    const state = stateAfter([created, event]);
    expect(state).not.toHaveProperty('payment_id');
    expect(state).not.toHaveProperty('payment_amount');
    expect(state?.signed_content_links).toEqual(['media://x']);
  });

  it('stopped: status and who and when; nothing else changes', () => {
    expect(stateAfter([created, stopped])).toEqual({ ...dispense, status: 'stopped', updated_at: later.at, updated_by: later.by, signed_content_links: [] });
  });

  it('marked in error: status, status_reason, who and when, signed content link appended', () => {
    expect(stateAfter([created, markedInError])).toEqual({
      ...dispense,
      status: 'entered_in_error',
      status_reason: reason,
      updated_at: later.at,
      updated_by: later.by,
      signed_content_links: ['media://device_dispenses/2.jws'],
    });
  });

  it('expired: unknown, updated by the system user; inserted_* stay', () => {
    const state = stateAfter([created, expired]);
    expect(state).toEqual({ ...dispense, status: 'unknown', updated_at: system.at, updated_by: SYSTEM_USER_ID, signed_content_links: [] });
    expect(state).toMatchObject({ inserted_at: createdBy.at, inserted_by: AUTHOR });
  });

  it('signed content links accumulate in event order (evolve records, decide judges)', () => {
    const second: DeviceDispenseEvent = { ...markedInError, data: { ...markedInError.data, signed_content_link: 'media://b' } };
    const first: DeviceDispenseEvent = { ...completed, data: { ...completed.data, signed_content_link: 'media://a' } };
    expect(stateAfter([created, first, second])?.signed_content_links).toEqual(['media://a', 'media://b']);
  });

  it('ignores a non-creation event without a created dispense', () => {
    expect(stateAfter([stopped])).toBeNull();
  });

  it('a decided event evolves into the state the next decision sees', () => {
    const events = deviceDispenseDecider.decide(stop, stateAfter([created]));
    expect(stateAfter([created, ...events])?.status).toBe('stopped');
  });
});

describe('device request dispensing decider', () => {
  const REQUEST = '00000000-0000-4000-8000-000000000081';
  const OTHER_DISPENSE = '0190a0b0-0000-7000-8000-000000000002';
  const givenRequest = DeciderSpecification.for(deviceRequestDispensingDecider);
  const attach = (dispenseId: string) => ({
    type: 'AttachDeviceDispense' as const,
    device_request_id: REQUEST,
    device_dispense_id: dispenseId,
    actor: createdBy,
  });
  const attached = (dispenseId: string): DeviceRequestDispensingEvent => ({
    type: 'DeviceDispenseAttached',
    data: { device_request_id: REQUEST, device_dispense_id: dispenseId, ...createdBy },
  });

  it('attaches a dispense to its device request', () => {
    givenRequest([])
      .when(attach(ID))
      .then([attached(ID)]);
  });

  it('attaching the same dispense again changes nothing', () => {
    givenRequest([attached(ID)])
      .when(attach(ID))
      .thenNothingHappened();
  });

  it('attaches another dispense next to the first', () => {
    givenRequest([attached(ID)])
      .when(attach(OTHER_DISPENSE))
      .then([attached(OTHER_DISPENSE)]);
  });

  it('evolve lists the attached dispenses in order', () => {
    expect(fold(deviceRequestDispensingDecider, [attached(ID), attached(OTHER_DISPENSE)])).toEqual({
      attached: [
        { id: ID, at: expect.any(String) },
        { id: OTHER_DISPENSE, at: expect.any(String) },
      ],
    });
    expect(deviceRequestDispensingDecider.initialState()).toEqual({ attached: [] });
  });
});

describe('the Given/When/Then helper itself can fail', () => {
  it('fails when the events differ, when something happened, or when nothing was thrown', () => {
    expect(() => given([created]).when(stop).then([completed])).toThrow();
    expect(() => given([created]).when(stop).thenNothingHappened()).toThrow();
    expect(() =>
      given([created])
        .when(stop)
        .thenThrows(() => undefined),
    ).toThrow(/Expected decide to throw/);
    expect(() => given([created, stopped]).when(stop).thenThrows(conflict409('some other message'))).toThrow();
  });
});
