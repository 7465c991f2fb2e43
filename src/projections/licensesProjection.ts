/**
 * Builds the `licenses` read model from the legal entities' licence streams, folding with the
 * domain's evolve; the rows and the checkpoint commit together (exactly once).
 */
import { licenseDecider } from '../domain/license/decider.js';
import { LICENSE_EVENT_TYPES, LICENSES_STREAM_PREFIX, parseLicenseEvent, type LicenseEvent } from '../domain/license/events.js';
import type { RecordedEvent } from '../eventStore/eventStore.js';
import type { LicenseStore } from '../readModels/licenseStore.js';
import type { Projection } from './projection.js';
import { applying } from './poison.js';

export const LICENSES_PROJECTION = 'licenses';

const licenseIdOf = (event: LicenseEvent) => (event.type === 'LicenseUpdated' ? event.data.id : event.data.license.id);

const isLicenseEvent = (e: RecordedEvent) => e.streamName.startsWith(LICENSES_STREAM_PREFIX) && LICENSE_EVENT_TYPES.has(e.type);

export function createLicensesProjection(store: LicenseStore, name = LICENSES_PROJECTION): Projection {
  return {
    name,
    streamPrefixes: [LICENSES_STREAM_PREFIX],
    readCheckpoint: () => store.readCheckpoint(name),
    relevant: isLicenseEvent,
    async handle(events, { lazy, ...checkpoint }) {
      // Whatever throws on one event is that event's: a poison event (the runner records it as a dead letter).
      const relevant = events.filter(isLicenseEvent).map((recorded) => ({ recorded, event: applying(name, recorded, () => parseLicenseEvent(recorded)) }));
      if (relevant.length === 0 && lazy) return false;
      await store.inTransaction({ projection: name, ...checkpoint }, async (tx) => {
        if (relevant.length === 0) return;
        const ids = [...new Set(relevant.map(({ event }) => licenseIdOf(event)))];
        const state = relevant.reduce((folded, { recorded, event }) => applying(name, recorded, () => licenseDecider.evolve(folded, event)), {
          licenses: Object.fromEntries(await tx.getMany(ids)),
        });
        await tx.put(ids.flatMap((id) => (state.licenses[id] ? [state.licenses[id]] : [])));
      });
    },
    reset: () => store.reset(name),
    async shadow(purpose) {
      const { store: shadowStore, table } = await store.openShadow(name, purpose);
      return { projection: createLicensesProjection(shadowStore, table.projection), table };
    },
  };
}
