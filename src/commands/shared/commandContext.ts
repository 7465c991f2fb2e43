/** What every command runs with: the ports it reads and writes, and who is acting. */
import type { X509Certificate } from 'node:crypto';
import type { Actor } from '../../domain/shared/decider.js';
import type { AggregateCache } from './aggregateCache.js';
import type { AppendResult, EventStore, StreamAppend } from '../../eventStore/eventStore.js';
import type { MediaStorage } from '../../media/mediaStorage.js';
import type { ReferenceView, ViewRequest } from '../../referenceData/referenceView.js';

export type ReferenceViews = { view(request: ViewRequest): Promise<ReferenceView> };

export type CommandDeps = {
  eventStore: EventStore;
  /** Reference data: the records a command names, of one generation (referenceCache.ts). */
  reference: ReferenceViews;
  trustedCAs: X509Certificate[];
  media: MediaStorage;
  clock: () => Date;
  /** How far a time in the client's data (when_handed_over) may be ahead of ours (DS_CLOCK_SKEW_SECONDS). */
  clockSkewMs?: number;
  /**
   * Commits all of a command's appends in one transaction together with what must commit with them
   * (inline read models, the job's outcome). Absent: each append commits on its own.
   */
  commit?: CommandCommit;
  /** The aggregates this process last loaded or wrote (absent: every command reads its stream). */
  aggregates?: AggregateCache;
};

/** An append of a command; `state` is its aggregate's state after the events (the command's own stream). */
export type CommandAppend = StreamAppend & { state?: unknown };
export type CommandCommit = (appends: CommandAppend[]) => Promise<AppendResult[]>;

/**
 * Who is acting, one vocabulary from the access token to the metadata of every event written:
 * the token's user and legal entity (its client_id claim), and the ids that tie events to their cause.
 * System runs (auto-expiration, licence import) act for no legal entity: `Caller<null>`.
 */
export type Caller<LegalEntityId extends string | null = string> = {
  userId: string;
  legalEntityId: LegalEntityId;
  /** The HTTP request id (or a system run's id): ties every event of one request together. */
  correlationId: string;
  /** What caused the events: the job id for async methods, the request id for sync ones, the run id for system runs. */
  causationId: string;
};

/** The domain's stamp of a change (who, for whom, when) for this caller at `now`. */
export const actorOf = (caller: Caller<string | null>, now: Date): Actor => ({
  at: now.toISOString(),
  by: caller.userId,
  legal_entity_id: caller.legalEntityId,
});
