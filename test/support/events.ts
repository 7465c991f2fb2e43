import { v4 as uuidv4, v7 as uuidv7 } from 'uuid';
import type { EventToAppend, JsonObject } from '../../src/eventStore/eventStore.js';

export const newEvent = (type: string, data: JsonObject = {}, overrides: Partial<EventToAppend['metadata']> = {}): EventToAppend => ({
  type,
  data,
  metadata: {
    eventId: uuidv7(),
    correlationId: uuidv4(),
    causationId: null,
    userId: 'user-1',
    clientId: 'legal-entity-1',
    occurredAt: new Date().toISOString(),
    schemaVersion: 1,
    ...overrides,
  },
});

export const uniqueStream = (prefix = 'test') => `${prefix}-${uuidv4()}`;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` holds (bounded: throws after `timeoutMs`). */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(20);
  }
}
