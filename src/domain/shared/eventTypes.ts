/**
 * The event types of a domain's discriminated-union event schema, read off the schema itself: a set of
 * types kept by hand drifts from it (a type missing from the set was skipped silently by the projections).
 */
import type { z } from 'zod';

type EventUnion = z.ZodDiscriminatedUnion<Array<z.ZodObject<{ type: z.ZodLiteral<string>; data: z.ZodType }>>, 'type'>;

export const eventTypesOf = <S extends EventUnion>(schema: S): Array<z.infer<S>['type']> =>
  schema.options.flatMap((option) => [...option.shape.type.values]) as Array<z.infer<S>['type']>;
