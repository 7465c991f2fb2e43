import { licenseDecider, type LicensesState } from '../../domain/license/decider.js';
import { legalEntityLicensesStream, parseLicenseEvent, type LicenseEvent } from '../../domain/license/events.js';
import { unprocessable } from '../../domain/shared/esozError.js';
import type { CommandStream } from './commandHandler.js';

/** A legal entity's licences stream, for the command handler. */
export const legalEntityLicensesCommandStream = (legalEntityId: string): CommandStream<LicensesState, LicenseEvent> => ({
  streamName: legalEntityLicensesStream(legalEntityId),
  decider: licenseDecider,
  parse: parseLicenseEvent,
});

/** The date rules of Create license (spec §2.2, check 9), applied to the licence as it would be. */
export function checkLicenseDates({
  issued_date,
  active_from_date,
  expiry_date,
}: {
  issued_date: string;
  active_from_date: string;
  expiry_date: string | null;
}) {
  if (issued_date > active_from_date) throw unprocessable('License can not be issued later than active from date', '$.issued_date');
  if (expiry_date !== null && active_from_date > expiry_date)
    throw unprocessable('License can not have active from date later than expiration date', '$.active_from_date');
}
