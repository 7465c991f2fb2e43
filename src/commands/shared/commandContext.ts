/** What every command runs with: the ports it reads and writes, and who is asking. */
import type { X509Certificate } from 'node:crypto';
import type { EventStore } from '../../eventStore/eventStore.js';
import type { MediaStorage } from '../../media/mediaStorage.js';
import type { ReferenceData } from '../../referenceData/referenceData.js';

export type CommandDeps = {
  eventStore: EventStore;
  referenceData: ReferenceData;
  trustedCAs: X509Certificate[];
  media: MediaStorage;
  clock: () => Date;
};

/** Who an event is written for: the metadata every event carries. */
export type EventAuthor = {
  userId: string;
  clientId: string | null;
  /** The HTTP request id (or a sweep's run id): ties every event of one request together. */
  correlationId: string;
  /** What caused the events: the job id for async methods, the request id for sync ones. */
  causationId: string;
};

export type Caller = EventAuthor & {
  /** Legal entity of the access token (client_id). */
  clientId: string;
  /** The HTTP request id: ties every event of one request together. */
  correlationId: string;
  /** What caused the events: the job id for async methods, the request id for sync ones. */
  causationId: string;
};
