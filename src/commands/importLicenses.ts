/**
 * Imports the licences of the reference data (issued before this registry took over) as events, so
 * the licences read model is still built only from the stream. Safe to run again: a licence already
 * in its legal entity's stream is not imported twice.
 */
import { v7 as uuidv7 } from 'uuid';
import { licenseDecider } from '../domain/license/decider.js';
import { legalEntityLicensesStream } from '../domain/license/events.js';
import type { License } from '../domain/license/license.js';
import { SYSTEM_USER_ID } from '../domain/shared/decider.js';
import type { Position } from '../eventStore/eventStore.js';
import type { ImportedLicense } from '../referenceData/referenceData.js';
import type { CommandDeps, EventAuthor } from './shared/commandContext.js';
import { appendEvents, retryOnConflict } from './shared/eventStream.js';
import { loadLegalEntityLicenses } from './shared/licenses.js';

/** How many licences were imported now (0 when all were before), and the position of the last one. */
export async function importLicenses(deps: CommandDeps, licenses: ImportedLicense[]): Promise<{ imported: number; position: Position | null }> {
  const runId = uuidv7();
  const author: EventAuthor = { userId: SYSTEM_USER_ID, clientId: null, correlationId: runId, causationId: runId };
  const byLegalEntity = new Map<string, ImportedLicense[]>();
  for (const license of licenses) byLegalEntity.set(license.legal_entity_id, [...(byLegalEntity.get(license.legal_entity_id) ?? []), license]);
  let imported = 0;
  let position: Position | null = null;
  for (const [legalEntityId, ofLegalEntity] of byLegalEntity) {
    imported += await retryOnConflict(async () => {
      const { state, revision } = await loadLegalEntityLicenses(deps.eventStore, legalEntityId);
      const now = deps.clock();
      const at = now.toISOString();
      const asLicenses = ofLegalEntity.map(
        (l): License => ({ ...l, issuer_status: null, inserted_at: at, inserted_by: SYSTEM_USER_ID, updated_at: at, updated_by: SYSTEM_USER_ID }),
      );
      const events = licenseDecider.decide({ type: 'ImportLicenses', licenses: asLicenses, actor: { at, by: SYSTEM_USER_ID, legal_entity_id: null } }, state);
      if (events.length > 0) position = (await appendEvents(deps.eventStore, legalEntityLicensesStream(legalEntityId), events, revision, author, now)).position;
      return events.length;
    });
  }
  return { imported, position };
}
