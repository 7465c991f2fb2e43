/**
 * What a request may have changed: events in the store, jobs waiting, idempotency keys kept. A refused
 * request must leave all three as they were.
 */
import { expect } from '@jest/globals';
import type { TestServer } from './testServer.js';

export type SideEffects = { events: number; pendingJobs: number; idempotencyKeys: number };

export async function sideEffects(t: TestServer): Promise<SideEffects> {
  const { eventStore, database, idempotencyKeys } = t.server.context;
  const { rows } = await database.pool.query<{ n: string }>(`select count(*) as n from jobs where status = 'pending'`);
  return { events: await eventStore.countAfter(null), pendingJobs: Number(rows[0]!.n), idempotencyKeys: await idempotencyKeys.count() };
}

/** Runs `act` and asserts that it changed none of the side effects. */
export async function expectNoSideEffects<T>(t: TestServer, act: () => Promise<T>): Promise<T> {
  const before = await sideEffects(t);
  const result = await act();
  expect(await sideEffects(t)).toEqual(before);
  return result;
}

/** The ЕСОЗ error envelope of a 4xx: meta with the code, an error with a type (and message when given). */
export function expectEsozError(res: { status: number; body: unknown }, status: number, error: Record<string, unknown>): void {
  expect(res.status).toBe(status);
  expect(res.body).toEqual({
    meta: expect.objectContaining({ code: status, type: 'object', request_id: expect.any(String), url: expect.any(String) }),
    error: expect.objectContaining(error),
  });
}
