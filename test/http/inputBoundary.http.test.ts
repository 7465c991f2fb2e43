/**
 * The trust boundary on a real server: every class of input an attacker run answered with 500 now
 * gets the matching ЕСОЗ 4xx, and appends no event, queues no job and keeps no idempotency key.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import { createBody, ids } from '../support/fixtures.js';
import { expectEsozError, expectNoSideEffects } from '../support/sideEffects.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';
import { createLicenseBody, licenseReferenceData } from '../licenses/helpers.js';

const MALFORMED = { type: 'request_malformed' };
const textRule = { rule: 'format', description: 'must not contain NUL characters or unpaired UTF-16 surrogates', params: [] };

describe.each(testBackends())('input boundary on %s', (backend) => {
  let t: TestServer;
  let auth: string;
  let licenseId: string;
  beforeAll(async () => {
    t = await startTestServer({ backend, data: licenseReferenceData() });
    auth = `Bearer ${await t.token()}`;
    const created = await request(t.app).post('/api/licenses').set('authorization', auth).send(createLicenseBody());
    expect(created.status).toBe(201);
    licenseId = created.body.data.id;
  });
  afterAll(async () => t.close());

  // superagent would serialise a Buffer as JSON ({"type":"Buffer",…}) under a JSON content type: send the bytes.
  const raw = (body: string | Buffer) => (): string => body as string;
  const postJson = (path: string, body: string | Buffer) =>
    request(t.app).post(path).set('authorization', auth).set('content-type', 'application/json').serialize(raw(body)).send(body);
  const patchJson = (path: string, body: string | Buffer) =>
    request(t.app).patch(path).set('authorization', auth).set('content-type', 'application/json').serialize(raw(body)).send(body);
  const dispenses = `/api/patients/${ids.patient}/device_dispenses`;

  describe('text PostgreSQL cannot store, in JSON strings → 422 naming the field', () => {
    const cases: Array<[string, () => Promise<request.Response>, string]> = [
      ['NUL in the licence PATCH (sync)', () => patchJson(`/api/licenses/${licenseId}`, '{"is_primary": false, "order_no": "A\\u0000B"}'), '$.order_no'],
      [
        'a lone high surrogate in the licence POST',
        () => postJson('/api/licenses', JSON.stringify({ ...createLicenseBody(), issued_by: 'x' }).replace('"x"', '"\\ud800"')),
        '$.issued_by',
      ],
      [
        'a lone low surrogate in a nested create field',
        () => postJson(dispenses, JSON.stringify(createBody(newId(), { note: 'n' })).replace('"n"', '"\\udc00 tail"')),
        '$.note',
      ],
      [
        'NUL in an array item',
        () => postJson(dispenses, JSON.stringify({ ...createBody(newId()), extra: ['ok', 'x'] }).replace('"x"', '"\\u0000"')),
        '$.extra[1]',
      ],
      ['NUL in a key', () => patchJson(`/api/licenses/${licenseId}`, '{"is_primary": false, "a\\u0000": 1}'), '$.a\u0000'],
      ['NUL in signed_data', () => patchJson(`${dispenses}/${newId()}/actions/complete`, '{"signed_data": "\\u0000"}'), '$.signed_data'],
    ];
    it.each(cases)('%s', async (_name, send, entry) => {
      const res = await expectNoSideEffects(t, send);
      expectEsozError(res, 422, { type: 'validation_failed', invalid: [{ entry, entry_type: 'json_data_property', rules: [textRule] }] });
    });

    it('keeps a well-formed surrogate pair (an emoji) as ordinary text', async () => {
      const res = await patchJson(`/api/licenses/${licenseId}`, '{"is_primary": false, "order_no": "\\ud83d\\ude00"}');
      expect(res.status).toBe(200);
      expect(res.body.data.order_no).toBe('😀');
    });
  });

  describe('paths and queries that do not decode to text', () => {
    const badRequests: Array<[string, string]> = [
      ['malformed percent-encoding in the path', '/api/device_dispenses/%E0%A4%A'],
      ['a truncated escape', `/api/licenses/%`],
      ['invalid UTF-8 (%FF) in a path id', '/api/licenses/%FF'],
      ['invalid UTF-8 (%C3%28) in a path id', `/api/patients/%C3%28/device_dispenses`],
      ['an encoded lone surrogate in a path id', '/api/jobs/%ED%A0%80'],
      ['NUL in a path id', '/api/licenses/%00'],
      ['NUL in a stream name', '/api/audit/streams/x%00y/events'],
      ['invalid UTF-8 in a query value', '/api/licenses?type=%FF'],
      ['malformed percent-encoding in a query name', '/api/device_dispenses?%E0%A4%A=1'],
    ];
    it.each(badRequests)('%s → 400 request_malformed', async (_name, path) => {
      const res = await expectNoSideEffects(t, () => request(t.app).get(path).set('authorization', auth));
      expectEsozError(res, 400, MALFORMED);
    });

    it('the same for a write (PATCH with an undecodable id)', async () => {
      const res = await expectNoSideEffects(t, () => request(t.app).patch(`${dispenses}/%FF/actions/stop`).set('authorization', auth));
      expectEsozError(res, 400, MALFORMED);
    });

    it('NUL in a query value → 422 naming the query parameter', async () => {
      const res = await request(t.app).get('/api/device_dispenses?status=a%00b').set('authorization', auth);
      expectEsozError(res, 422, {
        type: 'validation_failed',
        invalid: [
          { entry: '$.status', entry_type: 'query_parameter', rules: [{ rule: 'format', description: 'must not contain control characters', params: [] }] },
        ],
      });
    });
  });

  describe('bodies that cannot be read', () => {
    it.each(['gzip', 'deflate', 'br'])('a broken %s body → 400 request_malformed', async (encoding) => {
      const res = await expectNoSideEffects(t, () => postJson('/api/licenses', Buffer.from('definitely not compressed')).set('content-encoding', encoding));
      expectEsozError(res, 400, MALFORMED);
    });

    it('a well-formed gzip body is read', async () => {
      const res = await patchJson(`/api/licenses/${licenseId}`, gzipSync(JSON.stringify({ is_primary: false, order_no: 'GZ-1' }))).set(
        'content-encoding',
        'gzip',
      );
      expect(res.status).toBe(200);
      expect(res.body.data.order_no).toBe('GZ-1');
    });

    it('an unknown content encoding → 415', async () => {
      const res = await expectNoSideEffects(t, () => postJson('/api/licenses', '{}').set('content-encoding', 'compress'));
      expectEsozError(res, 415, { type: 'content_type_invalid' });
    });

    it('a body that is not JSON → 415', async () => {
      const res = await expectNoSideEffects(t, () =>
        request(t.app).post('/api/licenses').set('authorization', auth).set('content-type', 'text/plain').send('type=PHARMACY'),
      );
      expectEsozError(res, 415, { type: 'content_type_invalid' });
    });

    it('an oversized body → 413', async () => {
      const res = await expectNoSideEffects(t, () =>
        postJson('/api/licenses', JSON.stringify({ ...createLicenseBody(), what_licensed: 'x'.repeat(1_100_000) })),
      );
      expectEsozError(res, 413, { type: 'request_entity_too_large' });
    });

    it('JSON nested 10 000 levels deep → 400 request_malformed', async () => {
      const deep = `{"is_primary": false, "order_no": ${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
      const res = await expectNoSideEffects(t, () => patchJson(`/api/licenses/${licenseId}`, deep));
      expectEsozError(res, 400, { type: 'request_malformed', message: 'Malformed request. JSON is nested deeper than 32 levels.' });
    });
  });

  describe('impossible calendar dates → 422 with the field', () => {
    it('2024-02-30 in a licence body', async () => {
      const res = await expectNoSideEffects(t, () =>
        request(t.app)
          .post('/api/licenses')
          .set('authorization', auth)
          .send(createLicenseBody({ issued_date: '2024-02-30' })),
      );
      expectEsozError(res, 422, {
        type: 'validation_failed',
        invalid: [
          {
            entry: '$.issued_date',
            entry_type: 'json_data_property',
            rules: [{ rule: 'invalid', description: 'must be a date YYYY-MM-DD that exists in the calendar', params: [] }],
          },
        ],
      });
    });

    it('2023-02-29 in a licence PATCH; 2024-02-29 (leap day) is fine', async () => {
      const bad = await patchJson(`/api/licenses/${licenseId}`, JSON.stringify({ is_primary: false, expiry_date: '2027-02-29' }));
      expectEsozError(bad, 422, { type: 'validation_failed', invalid: [expect.objectContaining({ entry: '$.expiry_date' })] });
      const leap = await patchJson(`/api/licenses/${licenseId}`, JSON.stringify({ is_primary: false, expiry_date: '2028-02-29' }));
      expect(leap.status).toBe(200);
    });

    it('2024-02-30 as a search bound', async () => {
      const res = await request(t.app).get('/api/device_dispenses?inserted_at_from=2024-02-30').set('authorization', auth);
      expectEsozError(res, 422, {
        type: 'validation_failed',
        invalid: [
          {
            entry: '$.inserted_at_from',
            entry_type: 'query_parameter',
            rules: [{ rule: 'invalid', description: 'must be a date or a date-time', params: [] }],
          },
        ],
      });
    });

    it('2024-02-30T10:00:00Z as when_handed_over of a create', async () => {
      const res = await expectNoSideEffects(t, () =>
        request(t.app)
          .post(dispenses)
          .set('authorization', auth)
          .send(createBody(newId(), { when_handed_over: '2024-02-30T10:00:00Z' })),
      );
      expectEsozError(res, 422, {
        type: 'validation_failed',
        invalid: [expect.objectContaining({ entry: '$.when_handed_over', entry_type: 'json_data_property' })],
      });
    });
  });
});
