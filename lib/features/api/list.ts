// The list endpoints: a query string validated strictly (a 400 naming each bad parameter, unlike the
// pages, which fall back to defaults), then the same changelist query the console runs.
import type { NextRequest } from 'next/server';
import { z } from 'zod';
import { getDb } from '@/db/client';
import { parseListParams } from '@/lib/features/admin/list-params';
import { changeList } from '@/lib/features/admin/list-query';
import { getAdmin } from '@/lib/features/admin/registry';
import type { Access } from '@/lib/engine/access';
import { queryOf } from '@/lib/features/api/request-errors';
import { ApiError } from '@/lib/features/api/request-errors';

const PER_PAGE = [10, 25, 50, 100, 200, 500];

/** Text to search or filter with: no NUL (Postgres refuses it in a query; no stored text has one). */
export const searchText = (max = 200) =>
  z
    .string()
    .max(max)
    .refine((v) => !v.includes('\u0000'), 'may not contain a NUL character');

/** Search, sort and paging: the same on every list endpoint (beside its own filters). */
export const pagingQuery = {
  q: searchText().optional(),
  sort: z.string().max(200).optional(),
  page: z.coerce.number().int().min(1).max(1_000_000).optional(),
  per: z.coerce
    .number()
    .int()
    .refine((n) => PER_PAGE.includes(n), `one of ${PER_PAGE.join(', ')}`)
    .optional(),
};

/** What the user may see only: the same scope the console's lists have. */
export async function listFromQuery(req: NextRequest, schema: z.ZodType<Record<string, unknown>>, model: string, access: Access) {
  const query = queryOf(req, schema);
  const def = getAdmin(model);
  if (!def) throw new Error(`listFromQuery: no admin declaration for model ${model}`);
  // A sort key the list cannot sort by is a 400 too (the pages ignore it): the caller asked for an order.
  const sortable = Object.entries(def.fields)
    .filter(([, f]) => f.sortable !== false)
    .map(([key]) => key);
  const badSort = (typeof query.sort === 'string' ? query.sort.split(',') : [])
    .filter((part) => part !== '')
    .map((part) => part.replace(/^-/, ''))
    .filter((key) => !sortable.includes(key));
  if (badSort.length)
    throw new ApiError(400, 'invalid query', [
      {
        path: 'sort',
        message: `cannot sort by ${badSort.map((k) => JSON.stringify(k)).join(', ')}: one of ${sortable.join(', ')}, each optionally with a leading "-"`,
      },
    ]);
  const raw = Object.fromEntries(
    Object.entries(query)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [k, String(v)]),
  );
  return changeList(getDb(), def, parseListParams(def, raw, access));
}
