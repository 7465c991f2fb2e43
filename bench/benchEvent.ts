/** One event for the append benchmarks: the given data and the metadata every append carries. */
import { v4 as uuidv4 } from 'uuid';
import type { EventToAppend, JsonObject } from '../src/eventStore/eventStore.js';

export const benchEvent = (data: JsonObject): EventToAppend => ({
  type: 'BenchEvent',
  data,
  metadata: {
    eventId: uuidv4(),
    correlationId: 'bench',
    causationId: null,
    userId: 'bench',
    clientId: 'bench',
    occurredAt: new Date().toISOString(),
    schemaVersion: 1,
  },
});
