/**
 * A JSON body's bytes must be valid in their charset: an invalid UTF-8 byte is refused as malformed
 * JSON (400), never decoded to U+FFFD and stored. Both ways a body is read are covered: Express's
 * body parser (licences; any request with an idempotency key) and the fast lane in front of it
 * (a plain Create of a dispense).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import { createBody, ids } from '../support/fixtures.js';
import { expectEsozError, expectNoSideEffects } from '../support/sideEffects.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';
import { createLicenseBody, licenseReferenceData } from '../licenses/helpers.js';

const MALFORMED_JSON = {
  type: 'request_malformed',
  message: 'Malformed request. Probably, you have sent corrupted JSON.',
  invalid: [{ entry_type: 'request', rules: [{ rule: 'json', description: 'invalid JSON', params: [] }] }],
};

/** The JSON of `body` with `bytes` put into the string value `marker` (as raw bytes, not escapes). */
const withBytes = (body: object, marker: string, bytes: number[]): Buffer => {
  const [before, after] = JSON.stringify(body).split(marker) as [string, string];
  return Buffer.concat([Buffer.from(before), Buffer.from(bytes), Buffer.from(after)]);
};

const INVALID: Array<[string, number[]]> = [
  ['a lone 0xFF', [0x41, 0xff, 0x42]],
  ['a lone continuation byte', [0x80]],
  ['an overlong "/" (C0 AF)', [0xc0, 0xaf]],
  ['an encoded surrogate (ED A0 80)', [0xed, 0xa0, 0x80]],
  ['a truncated sequence (E2 82)', [0xe2, 0x82, 0x41]],
  ['a code point past U+10FFFF (F4 90 80 80)', [0xf4, 0x90, 0x80, 0x80]],
];

describe.each(testBackends())('body bytes on %s', (backend) => {
  let t: TestServer;
  let auth: string;
  beforeAll(async () => {
    t = await startTestServer({ backend, data: licenseReferenceData() });
    auth = `Bearer ${await t.token()}`;
  });
  afterAll(async () => t.close());

  const send = (path: string, bytes: Buffer, headers: Record<string, string> = {}) =>
    request(t.app)
      .post(path)
      .set({ authorization: auth, 'content-type': 'application/json', ...headers })
      .serialize(() => bytes as unknown as string)
      .send(bytes as unknown as string);
  const dispenses = `/api/patients/${ids.patient}/device_dispenses`;

  it.each(INVALID)('a licence body with %s → 400 malformed JSON, nothing written', async (_name, bytes) => {
    const res = await expectNoSideEffects(t, () => send('/api/licenses', withBytes(createLicenseBody({ order_no: 'MARK' }), 'MARK', bytes)));
    expectEsozError(res, 400, MALFORMED_JSON);
  });

  it.each(INVALID)('a plain Create (the fast lane) with %s → 400 malformed JSON, no job', async (_name, bytes) => {
    const res = await expectNoSideEffects(t, () => send(dispenses, withBytes(createBody(newId(), { note: 'MARK' }), 'MARK', bytes)));
    expectEsozError(res, 400, MALFORMED_JSON);
  });

  it('the same Create with an idempotency key (Express) → the same 400, and the key is kept for that answer', async () => {
    const body = withBytes(createBody(newId(), { note: 'MARK' }), 'MARK', [0xff]);
    const res = await send(dispenses, body, { 'x-idempotency-key': `bytes-${newId()}` });
    expectEsozError(res, 400, MALFORMED_JSON);
  });

  it('invalid UTF-8 inside a gzip body → 400 malformed JSON', async () => {
    const res = await expectNoSideEffects(t, () =>
      send('/api/licenses', gzipSync(withBytes(createLicenseBody({ order_no: 'MARK' }), 'MARK', [0xc3, 0x28])), { 'content-encoding': 'gzip' }),
    );
    expectEsozError(res, 400, MALFORMED_JSON);
  });

  it('UTF-16 declared, an unpaired surrogate in it → 400 malformed JSON; a charset no strict decoder knows → 415', async () => {
    const text = Buffer.from(JSON.stringify(createLicenseBody({ order_no: 'MARK' })), 'utf16le');
    const at = text.indexOf(Buffer.from('MARK', 'utf16le'));
    const broken = Buffer.concat([text.subarray(0, at), Buffer.from([0x00, 0xd8]), text.subarray(at)]); // U+D800 alone
    expectEsozError(await send('/api/licenses', broken, { 'content-type': 'application/json; charset=utf-16le' }), 400, MALFORMED_JSON);
    const res = await send('/api/licenses', Buffer.from('{}'), { 'content-type': 'application/json; charset=utf-32' });
    expectEsozError(res, 415, { type: 'content_type_invalid' });
  });

  it('valid multi-byte text (Cyrillic, an emoji) passes both readers unchanged', async () => {
    const created = await send('/api/licenses', Buffer.from(JSON.stringify(createLicenseBody({ order_no: 'Наказ №7 🙂' }))));
    expect(created.status).toBe(201);
    expect(created.body.data.order_no).toBe('Наказ №7 🙂');
    const accepted = await send(dispenses, Buffer.from(JSON.stringify(createBody(newId(), { note: 'Видано 🙂' }))));
    expect(accepted.status).toBe(202);
  });
});
