/**
 * Reference records' canonical text: a parsed record of a kind with fixed fields is JSON.stringify'd
 * as it is (the bulk load's fast path), which holds only while every schema lists its fields in key
 * order. This compares it with the canonicalize package (RFC 8785) on records given in other orders.
 */
import { describe, expect, it } from '@jest/globals';
import canonicalizeModule from 'canonicalize';
import { canonicalRecordText, REFERENCE_SCHEMAS, type ReferenceKind, type ReferenceRecord } from '../../src/referenceData/records.js';

// The package's CommonJS default export, as the hash-chain test takes it.
type Canonicalize = (input: unknown) => string | undefined;
const canonicalize = ((canonicalizeModule as unknown as { default?: Canonicalize }).default ?? canonicalizeModule) as unknown as Canonicalize;

/** Each kind with every optional field given, keys in reverse order; device requests in both prescription forms. */
const samples: Array<[ReferenceKind, Record<string, unknown>]> = [
  ['legal_entities', { version: 2, type: 'PHARMACY', status: 'ACTIVE', name: 'Аптека', id: 'le', edrpou: '1' }],
  ['parties', { version: 1, tax_id: '1', second_name: 'П', last_name: 'К', id: 'p', first_name: 'О' }],
  ['users', { version: 1, party_id: 'p', id: 'u' }],
  ['employees', { version: 1, status: 'APPROVED', party_id: 'p', legal_entity_id: 'le', is_active: true, id: 'e', employee_type: 'PHARMACIST' }],
  ['divisions', { version: 1, status: 'ACTIVE', name: 'Пункт', legal_entity_id: 'le', id: 'd', dls_verified: true }],
  ['persons', { version: 1, verification_status: 'VERIFIED', status: 'active', id: 'x' }],
  ['device_definitions', { version: 1, packaging_unit: 'piece', packaging_count: 1, is_active: true, id: 'dd', classification_type: '30221' }],
  ['medical_programs', { version: 1, name: 'Програма', is_active: true, id: 'mp' }],
  [
    'device_requests',
    {
      version: 3,
      verification_code: '1234',
      subject_id: 'x',
      status: 'active',
      quantity: { value: 10, code: 'piece' },
      program_id: 'mp',
      intent: 'order',
      id: 'dr',
      dispense_valid_to: '2099-12-31',
      dispense_valid_from: '2020-01-01',
      code: { device_definition_id: 'dd' },
    },
  ],
  [
    'device_requests',
    {
      verification_code: null,
      subject_id: 'x',
      status: 'active',
      quantity: null,
      program_id: null,
      intent: 'order',
      id: 'dr2',
      dispense_valid_to: '2099-12-31',
      code: { classification_type: '30222' },
    },
  ],
  ['dictionaries', { version: 1, values: { pack: 'уп', piece: 'шт' }, name: 'device_unit' }],
  ['config', { version: 1, value: { b: 1, a: [2, { d: 1, c: 2 }] }, name: 'free_form' }],
];

describe('canonical text of reference records', () => {
  it.each(samples)('%s: the stored text is RFC 8785 canonical JSON', (kind, input) => {
    const parsed = REFERENCE_SCHEMAS[kind].parse(input) as ReferenceRecord;
    expect(canonicalRecordText(kind, parsed)).toBe(canonicalize(parsed));
  });
});
