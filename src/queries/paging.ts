/**
 * The paging parameters of every list, validated to a range the stores can compute with: a page
 * beyond int4 is refused (422 naming `$.page`) rather than turned into an offset that loses precision
 * or overflows the database's bigint (22003, a 500).
 */
import { z } from 'zod';

/** The largest page number (PostgreSQL's int4): with the largest page size an offset stays exact. */
export const MAX_PAGE = 2_147_483_647;

/** An integer within [1, max]; a value out of range is named once (the range), not also as an unsafe integer. */
const boundedInteger = (max: number) => z.coerce.number().min(1, { abort: true }).max(max, { abort: true }).int();

export const pageNumber = boundedInteger(MAX_PAGE).default(1);

export const pageSize = (max: number, byDefault = 50) => boundedInteger(max).default(byDefault);
