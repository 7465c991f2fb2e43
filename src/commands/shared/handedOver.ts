/** When a device was handed over: a moment between the dispense's creation and now, within the request's dispense period. */
import type { DeviceRequest } from '../../referenceData/records.js';

export function handedOverInPeriod(
  handedOver: Date,
  { notBefore, now, skewMs, deviceRequest }: { notBefore: Date; now: Date; skewMs: number; deviceRequest: DeviceRequest | undefined },
): boolean {
  // Clocks differ: the allowance applies to both ends, which are our clock's (inserted_at, now).
  if (handedOver.getTime() < notBefore.getTime() - skewMs || handedOver.getTime() > now.getTime() + skewMs) return false;
  if (!deviceRequest) return true;
  // The period is in calendar days (UTC, as dispense_valid_to is compared everywhere here).
  const day = handedOver.toISOString().slice(0, 10);
  return day <= deviceRequest.dispense_valid_to && (deviceRequest.dispense_valid_from === undefined || day >= deviceRequest.dispense_valid_from);
}
