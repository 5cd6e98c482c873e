// Database ids come in two widths. What people make (environments, herds, servers, rules, users,
// webhooks) has Postgres integer ids: 1 to 2^31 - 1. What is made over and over (instances, which the
// agents report every minute, operations and their targets, rule runs, the audit log) has bigint ids,
// of which pgherd takes 1 to 2^53 - 1: the whole numbers JavaScript's numbers hold exactly. An id
// outside its table's range, wherever it comes in (a URL, a form, an API body, an action's parameters),
// is refused as input, never sent to Postgres (which would answer "out of range for type integer", a
// 500): an id in range that names nothing is the caller's 404.
import { z } from 'zod';

/** The largest id of a table with integer ids. */
export const MAX_ID = 2_147_483_647;
/** The largest id of a table with bigint ids that pgherd takes (Number.MAX_SAFE_INTEGER). */
export const MAX_BIG_ID = Number.MAX_SAFE_INTEGER;

/** The largest id a column of this SQL type holds, as drizzle names it (getSQLType(): serial, integer, bigserial, bigint). */
export const maxIdOfType = (sqlType: string): number => (sqlType.startsWith('big') ? MAX_BIG_ID : MAX_ID);

/** A database id from a URL segment, or null for anything else (which the page turns into a 404). */
export function parseId(raw: string, max = MAX_ID): number | null {
  return /^[1-9]\d{0,15}$/.test(raw) && Number(raw) <= max ? Number(raw) : null;
}

/** What a field that is not such an id is told. */
export const idMessage = (what: string, max = MAX_ID) => `${what} is a whole number from 1 to ${max}`;

const idSchema = (what: string, max: number) =>
  z
    .number({ message: idMessage(what, max) })
    .int(idMessage(what, max))
    .min(1, idMessage(what, max))
    .max(max, idMessage(what, max));

/** An id in a schema (API bodies take numbers; forms and query strings, text). `max`: MAX_BIG_ID for a bigint id. */
export const idNumber = (what = 'an id', max = MAX_ID) => idSchema(what, max);
export const idText = (what = 'an id', max = MAX_ID) => wholeNumber(idSchema(what, max));

/**
 * A whole number as a form or query string writes it ("42", "-1", " 42 "), or as JSON does (42), into
 * `schema`. Nothing else is read as one: not "1e3", "0x2a", "42.0", [42] or true, which JavaScript's
 * Number() would all turn into numbers (z.coerce does), so "1e1" named server 10.
 */
export function wholeNumber<S extends z.ZodType>(schema: S) {
  return z.preprocess((v) => (typeof v === 'string' && /^\s*-?\d{1,16}\s*$/.test(v) ? Number(v) : v), schema);
}
