/**
 * Imports the licences of the reference data (issued before this registry took over) as events, so
 * the licences read model is still built only from the stream. Safe to run again: a licence already
 * in its legal entity's stream is not imported twice.
 */
import { uuidv7 } from '../shared/uuidv7.js';
import { licenseDecider } from '../domain/license/decider.js';
import type { License } from '../domain/license/license.js';
import { SYSTEM_USER_ID } from '../domain/shared/decider.js';
import type { Position } from '../eventStore/eventStore.js';
import type { ImportedLicense } from '../referenceData/referenceData.js';
import { actorOf, type Caller, type CommandDeps } from './shared/commandContext.js';
import { handleCommand } from './shared/commandHandler.js';
import { legalEntityLicensesCommandStream } from './shared/licenses.js';

/** How many licences were imported now (0 when all were before), and the position of the last one. */
export async function importLicenses(deps: CommandDeps, licenses: ImportedLicense[]): Promise<{ imported: number; position: Position | null }> {
  const runId = uuidv7();
  const system: Caller<null> = { userId: SYSTEM_USER_ID, legalEntityId: null, correlationId: runId, causationId: runId };
  const byLegalEntity = new Map<string, ImportedLicense[]>();
  for (const license of licenses) byLegalEntity.set(license.legal_entity_id, [...(byLegalEntity.get(license.legal_entity_id) ?? []), license]);
  let imported = 0;
  let position: Position | null = null;
  for (const [legalEntityId, ofLegalEntity] of byLegalEntity) {
    // The decider leaves out licences already in the stream, so no skipping by causation id is needed.
    const handled = await handleCommand(
      deps,
      legalEntityLicensesCommandStream(legalEntityId),
      system,
      (state, now) => {
        const actor = actorOf(system, now);
        const asLicenses = ofLegalEntity.map((l): License => ({
          ...l,
          issuer_status: null,
          inserted_at: actor.at,
          inserted_by: SYSTEM_USER_ID,
          updated_at: actor.at,
          updated_by: SYSTEM_USER_ID,
        }));
        return licenseDecider.decide({ type: 'ImportLicenses', licenses: asLicenses, actor }, state);
      },
      { skipIfAlreadyHandled: false },
    );
    imported += handled.events.length;
    if (handled.position) position = handled.position;
  }
  return { imported, position };
}
