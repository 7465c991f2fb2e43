/**
 * Inclusive search bounds on ISO-8601 UTC strings, compared as strings by every read-model adapter.
 * A date-only bound ('YYYY-MM-DD', length 10) is widened to the whole day, so `_to=2024-01-31`
 * includes everything handed over on the 31st.
 */

const DATE_ONLY_LENGTH = 10;

/** `_from` bound: a bare date starts at midnight UTC; anything else is used as given. */
export function searchLowerBound(value: string): string {
  return value.length === DATE_ONLY_LENGTH ? `${value}T00:00:00.000Z` : value;
}

/** `_to` bound: a bare date ends at the day's last millisecond UTC; anything else is used as given. */
export function searchUpperBound(value: string): string {
  return value.length === DATE_ONLY_LENGTH ? `${value}T23:59:59.999Z` : value;
}
