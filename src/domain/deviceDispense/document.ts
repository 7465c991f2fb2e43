/**
 * A device dispense as ЕСОЗ keeps it (spec §1.2, openapi/device-dispense-get-details.json), plus the
 * internal `signed_content_links`. It is the aggregate's state and the read model's document; GET
 * renders it without the internal fields.
 */
import { z } from 'zod';

const codingSchema = z.object({ system: z.string(), code: z.string() });
export const codeableConceptSchema = z.object({ coding: z.array(codingSchema), text: z.string().optional() });
const identifierSchema = z.object({
  type: z.object({ coding: z.array(codingSchema), text: z.string().optional() }),
  value: z.string(),
});
const referenceSchema = z.object({ identifier: identifierSchema, display_value: z.string().optional() });

const DEVICE_DISPENSE_STATUSES = ['in_progress', 'completed', 'stopped', 'entered_in_error', 'unknown'] as const;
const deviceDispenseStatusSchema = z.enum(DEVICE_DISPENSE_STATUSES);
export type DeviceDispenseStatus = z.infer<typeof deviceDispenseStatusSchema>;

const detailSchema = z.object({
  device: referenceSchema.optional(),
  device_code: codeableConceptSchema.optional(),
  program_device: referenceSchema.optional(),
  quantity: z.object({ value: z.number(), system: z.string(), code: z.string(), unit: z.string() }),
  sell_price: z.number().optional(),
  discount_amount: z.number().optional(),
  reimbursement_amount: z.number().optional(),
});

export const deviceDispenseDocumentSchema = z.object({
  id: z.string(),
  based_on: referenceSchema,
  status: deviceDispenseStatusSchema,
  status_reason: codeableConceptSchema.optional(),
  subject: referenceSchema,
  primary_source: z.boolean(),
  performer: referenceSchema,
  location: referenceSchema,
  when_handed_over: z.string().optional(),
  note: z.string(),
  performer_legal_entity: referenceSchema,
  program: referenceSchema.optional(),
  details: z.array(detailSchema),
  payment_id: z.string().optional(),
  payment_amount: z.number().optional(),
  inserted_at: z.string(),
  inserted_by: z.string(),
  updated_at: z.string(),
  updated_by: z.string(),
  /** Internal (not rendered): classification types of the dispensed devices, for the device_code search. */
  device_classification_types: z.array(z.string()),
  /** Internal (not rendered): media-storage links of every signed content accepted for this dispense. */
  signed_content_links: z.array(z.string()),
});

export type Reference = z.infer<typeof referenceSchema>;
export type CodeableConcept = z.infer<typeof codeableConceptSchema>;
export type DeviceDispenseDetail = z.infer<typeof detailSchema>;
export type DeviceDispenseDocument = z.infer<typeof deviceDispenseDocumentSchema>;

/** An ЕСОЗ Reference to an eHealth resource. */
export const reference = (resource: string, id: string, displayValue?: string): Reference => ({
  identifier: { type: { coding: [{ system: 'eHealth/resources', code: resource }], text: '' }, value: id },
  ...(displayValue !== undefined ? { display_value: displayValue } : {}),
});

export const referencedId = (ref: Reference | undefined): string | null => ref?.identifier.value ?? null;

export type RenderedDeviceDispense = Omit<DeviceDispenseDocument, 'signed_content_links' | 'device_classification_types'>;

/** The dispense as GET returns it: the document without internal fields. */
export function renderDeviceDispense(document: DeviceDispenseDocument): RenderedDeviceDispense {
  const { signed_content_links: _links, device_classification_types: _types, ...rendered } = document;
  return rendered;
}
