// Database ids are Postgres integers: 1 to 2^31-1. An id outside that range, wherever it comes in (a
// URL, a form, an API body, an action's parameters), is refused as input, never sent to Postgres (which
// would answer "out of range for type integer", a 500).
import { z } from 'zod';

export const MAX_ID = 2_147_483_647;

/** A database id from a URL segment, or null for anything else (which the page turns into a 404). */
export function parseId(raw: string): number | null {
  return /^[1-9]\d{0,9}$/.test(raw) && Number(raw) <= MAX_ID ? Number(raw) : null;
}

/** An id in a schema (API bodies take numbers; forms and query strings, text). */
export const idNumber = (what = 'an id') =>
  z
    .number({ message: `${what} is a whole number from 1 to ${MAX_ID}` })
    .int(`${what} is a whole number from 1 to ${MAX_ID}`)
    .min(1, `${what} is a whole number from 1 to ${MAX_ID}`)
    .max(MAX_ID, `${what} is a whole number from 1 to ${MAX_ID}`);
export const idText = (what = 'an id') =>
  wholeNumber(
    z
      .number({ message: `${what} is a whole number from 1 to ${MAX_ID}` })
      .int(`${what} is a whole number from 1 to ${MAX_ID}`)
      .min(1, `${what} is a whole number from 1 to ${MAX_ID}`)
      .max(MAX_ID, `${what} is a whole number from 1 to ${MAX_ID}`),
  );

/**
 * A whole number as a form or query string writes it ("42", "-1", " 42 "), or as JSON does (42), into
 * `schema`. Nothing else is read as one: not "1e3", "0x2a", "42.0", [42] or true, which JavaScript's
 * Number() would all turn into numbers (z.coerce does), so "1e1" named server 10.
 */
export function wholeNumber<S extends z.ZodType>(schema: S) {
  return z.preprocess((v) => (typeof v === 'string' && /^\s*-?\d{1,16}\s*$/.test(v) ? Number(v) : v), schema);
}
