/**
 * Parameters validated to their type's range: a checkpoint or page beyond what the database can hold
 * is the client's error (422 in ЕСОЗ error JSON), never a 500 of the database's 22003. A statement the
 * database refuses never takes the pooled connection away from other requests (on PGlite it is the
 * only one). And every SQLSTATE meaning "the database cannot serve now" answers 503 with Retry-After.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type pg from 'pg';
import request from 'supertest';
import { expectEsozError, expectNoSideEffects } from '../support/sideEffects.js';
import { startTestServer, testBackends, type TestServer } from '../support/testServer.js';

const MAX_XID8 = '18446744073709551615';
const MAX_BIGINT = '9223372036854775807';

describe.each(testBackends())('parameter ranges on %s', (backend) => {
  let t: TestServer;
  let auth: string;
  beforeAll(async () => {
    t = await startTestServer({ backend });
    auth = `Bearer ${await t.token()}`;
  });
  afterAll(async () => t.close());

  const invalidCheckpoint = (res: request.Response) => {
    expectEsozError(res, 422, { type: 'validation_failed', message: 'Invalid checkpoint' });
    expect(res.body.error.invalid).toEqual([
      { entry: '$.after', entry_type: 'query_parameter', rules: [{ rule: 'invalid', description: 'Invalid checkpoint', params: [] }] },
    ]);
  };

  it.each([
    '1:99999999999999999999',
    `1:${BigInt(MAX_BIGINT) + 1n}`,
    `${BigInt(MAX_XID8) + 1n}:1`,
    '99999999999999999999999:1',
    `1:${'9'.repeat(400)}`,
    '-1:1',
    '1:',
  ])('after=%s is 422 "Invalid checkpoint" on $.after', async (after) => {
    invalidCheckpoint(
      await request(t.app)
        .get(`/api/audit/events?after=${encodeURIComponent(after)}`)
        .set('authorization', auth),
    );
  });

  it('the largest checkpoint of each part is a checkpoint: 200, nothing after it', async () => {
    const res = await request(t.app).get(`/api/audit/events?after=${MAX_XID8}:${MAX_BIGINT}`).set('authorization', auth);
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({ events: [], checkpoint: `${MAX_XID8}:${MAX_BIGINT}` });
  });

  it.each([
    ['/api/licenses', 'page', '2147483648', 2147483647],
    ['/api/licenses', 'page', '99999999999999999999', 2147483647],
    ['/api/device_dispenses', 'page', '9007199254740991', 2147483647],
    ['/api/patients/00000000-0000-4000-8000-000000000001/device_dispenses', 'page', '2147483648', 2147483647],
    ['/api/audit/streams/license-x/events', 'page', '9007199254740991', 2147483647],
    ['/api/licenses', 'page_size', '1e30', 100],
    ['/api/device_dispenses', 'page_size', '301', 300],
    ['/api/audit/streams/license-x/events', 'page_size', '501', 500],
    ['/api/audit/events', 'limit', '18446744073709551616', 1000],
    ['/api/audit/events', 'limit', '-1e30', 1],
  ])('%s?%s=%s is 422 naming the parameter once, with its bound %d', async (path, name, value, bound) => {
    const res = await request(t.app).get(`${path}?${name}=${value}`).set('authorization', auth);
    expectEsozError(res, 422, { type: 'validation_failed' });
    const description = bound === 1 ? 'Too small: expected number to be >=1' : `Too big: expected number to be <=${bound}`;
    expect(res.body.error.invalid).toEqual([{ entry: `$.${name}`, entry_type: 'query_parameter', rules: [{ rule: 'number', description, params: [bound] }] }]);
  });

  it('the largest page is a page: 200 and an empty list', async () => {
    const res = await request(t.app).get('/api/licenses?page=2147483647&page_size=100').set('authorization', auth);
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual([]);
    expect(res.body.paging).toMatchObject({ page: 2147483647, page_size: 100 });
  });

  it('a statement the database refuses (22003) keeps the pooled connection: the request right after, and those beside it, succeed', async () => {
    const { pool } = t.server.context.database;
    let removed = 0;
    const counted = () => void (removed += 1);
    pool.on('remove', counted);
    try {
      const refused = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          i % 2 === 0
            ? pool.query(`select $1::bigint as n`, ['99999999999999999999']).then(
                () => 'no error',
                (error: { code?: string }) => error.code,
              )
            : request(t.app)
                .get(i % 4 === 1 ? '/api/licenses' : '/health/ready')
                .set('authorization', auth)
                .then((res) => res.status),
        ),
      );
      expect(refused).toEqual(Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? '22003' : 200)));
      const after = await request(t.app).get('/api/licenses').set('authorization', auth);
      expect(after.status).toBe(200);
      expect(removed).toBe(0);
    } finally {
      pool.off('remove', counted);
    }
  });

  describe('"the database cannot serve now" is 503 with Retry-After, anything else 500', () => {
    /**
     * The next licence-list statement of the pool (the request's own: background work shares the pool)
     * is one the real database refuses with `code`.
     */
    const nextStatementFails = (code: string) => {
      const pool = t.server.context.database.pool;
      const query = pool.query;
      const raising = `do $$ begin raise exception 'injected' using errcode = '${code}'; end $$`;
      const run = query as unknown as (...args: unknown[]) => Promise<pg.QueryResult>;
      pool.query = ((...args: unknown[]) => {
        const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string } | undefined)?.text;
        if (!text?.includes('select document from') || !text.includes('order by inserted_at')) return run.apply(pool, args);
        pool.query = query;
        return run.call(pool, raising);
      }) as unknown as typeof pool.query;
    };

    it.each(['08000', '08001', '08003', '08006', '53300', '55000', '57P01', '57P02', '57P03'])('SQLSTATE %s → 503, Retry-After: 1', async (code) => {
      await expectNoSideEffects(t, async () => {
        nextStatementFails(code);
        const res = await request(t.app).get('/api/licenses').set('authorization', auth);
        expectEsozError(res, 503, { type: 'service_unavailable', message: 'Service is temporarily unavailable. Please retry later.' });
        expect(res.headers['retry-after']).toBe('1');
      });
      expect((await request(t.app).get('/api/licenses').set('authorization', auth)).status).toBe(200);
    });

    it.each(['42P01', '22003', 'XX000'])('SQLSTATE %s → 500 internal_error, no Retry-After', async (code) => {
      nextStatementFails(code);
      const res = await request(t.app).get('/api/licenses').set('authorization', auth);
      expectEsozError(res, 500, { type: 'internal_error', message: 'Internal server error' });
      expect(res.headers['retry-after']).toBeUndefined();
      expect((await request(t.app).get('/api/licenses').set('authorization', auth)).status).toBe(200);
    });
  });
});
