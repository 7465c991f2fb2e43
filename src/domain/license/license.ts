/** A licence of a legal entity (spec §2.1): primary ones come from reference data, additional ones are created here. */
import { z } from 'zod';
import { calendarDateSchema } from '../shared/calendarDate.js';

export const isoDateSchema = calendarDateSchema;

export const licenseSchema = z.object({
  id: z.string(),
  legal_entity_id: z.string(),
  type: z.string(),
  license_number: z.string().nullable(),
  issued_by: z.string(),
  issued_date: isoDateSchema,
  active_from_date: isoDateSchema,
  expiry_date: isoDateSchema.nullable(),
  order_no: z.string(),
  what_licensed: z.string().nullable(),
  issuer_status: z.string().nullable(),
  is_primary: z.boolean(),
  is_active: z.boolean(),
  inserted_at: z.string(),
  inserted_by: z.string(),
  updated_at: z.string(),
  updated_by: z.string(),
});
export type License = z.infer<typeof licenseSchema>;

/** The attributes a client may set (create) or change (update). */
export const LICENSE_ATTRIBUTES = [
  'license_number',
  'issued_by',
  'issued_date',
  'active_from_date',
  'expiry_date',
  'order_no',
  'what_licensed',
  'issuer_status',
] as const;
export type LicenseAttribute = (typeof LICENSE_ATTRIBUTES)[number];
export type LicenseChanges = Partial<Pick<License, LicenseAttribute>>;

/** "is_active=true and is_primary=true and (expiry_date >= current_date() or expiry_date is null)" (seed 003). */
export const isActivePrimary = (license: License, today: string) =>
  license.is_active && license.is_primary && (license.expiry_date === null || license.expiry_date >= today);
