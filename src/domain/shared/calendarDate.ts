/**
 * Dates as real calendar days: `YYYY-MM-DD` whose day exists in that month (2024-02-29 yes,
 * 2023-02-29 and 2024-02-30 no). `Date.parse` alone would roll 2024-02-30 over to 1 March.
 */
import { z } from 'zod';

const DATE = /^(\d{4})-(\d{2})-(\d{2})/;

/** Whether the text starts with a `YYYY-MM-DD` that names a day of the calendar. */
export function isCalendarDate(text: string): boolean {
  const match = DATE.exec(text);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (month < 1 || month > 12 || day < 1) return false;
  return day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
}

export const calendarDateSchema = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, { message: 'must be a date YYYY-MM-DD', abort: true })
  .refine(isCalendarDate, 'must be a date YYYY-MM-DD that exists in the calendar');
