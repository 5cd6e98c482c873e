// What a changelist's checkboxes select, as its bulk actions receive it: ticked ids ("ids=3,1,4"),
// or "all=1" with the list's filters (every object that matches, which the server computes). One
// schema, bounded and de-duplicated, for the delete and confirmation pages and the server actions
// they post to; the API's bodies take the same bound (lib/engine/operation-schemas.ts).
import { z } from 'zod';
import { MAX_ID } from './ids';

/** The most objects one bulk action takes, ticked or "all matching". */
export const MAX_SELECTION = 1000;

const TOO_MANY = `At most ${MAX_SELECTION} objects at once: narrow the selection.`;

/** "3,1,3" -> [3, 1]: ids in the order given, each once, each an id of a table whose largest is `max`. */
export const idList = (max = MAX_ID) =>
  z
    .string()
    // Bounded before it is split: MAX_SELECTION ids of 16 digits and their commas, and a little slack for repeats.
    .max(MAX_SELECTION * 34, TOO_MANY)
    .regex(/^\d{1,16}(,\d{1,16})*$/, `Ids are a comma-separated list of whole numbers from 1 to ${max}.`)
    .transform((s) => [...new Set(s.split(',').map(Number))])
    .pipe(
      z
        .array(z.number().int().min(1, `Ids are whole numbers from 1 to ${max}.`).max(max, `Ids are whole numbers from 1 to ${max}.`))
        .min(1)
        .max(MAX_SELECTION, TOO_MANY),
    );

export type Selection = { all: true } | { all: false; ids: number[] };

/** A selection of objects whose largest id is `max` (MAX_BIG_ID: instances, operations). */
export const selection = (max = MAX_ID) =>
  z.union([
    z.object({ all: z.literal('1') }).transform((): Selection => ({ all: true })),
    z.object({ ids: idList(max) }).transform(({ ids }): Selection => ({ all: false, ids })),
  ]);

/** The selection a page's query string or a posted form carries, or the reason it is not one. */
export function parseSelection(
  raw: Record<string, unknown>,
  max = MAX_ID,
): { ok: true; selection: Selection } | { ok: false; empty: boolean; error: string } {
  if (Array.isArray(raw.ids) || Array.isArray(raw.all))
    return { ok: false, empty: false, error: 'The selection is given twice: give ids once, as a comma-separated list.' };
  const parsed = selection(max).safeParse({ ...(raw.all === '1' ? { all: '1' } : {}), ids: raw.ids });
  if (parsed.success) return { ok: true, selection: parsed.data };
  if (raw.all !== '1' && (raw.ids === undefined || raw.ids === '')) return { ok: false, empty: true, error: 'Nothing was selected.' };
  const issue = parsed.error.issues
    .flatMap((i) => (i.code === 'invalid_union' ? i.errors.flat() : [i]))
    .find((i) => i.path.includes('ids'));
  return { ok: false, empty: false, error: issue?.message ?? 'The selection is not well formed.' };
}
