import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { ApiError, apiUser, handle, pathId } from '@/lib/api/respond';
import { ruleRunsQuery } from '@/lib/api/contract/schedules';
import { readableRule, ruleRunsView } from '@/lib/schedules/rules';

/** GET /api/v1/rules/{id}/runs: its runs, newest first: when, what came of it, each target's fate, the operation. */
export const GET = handle(async (req, ctx) => {
  const user = await apiUser(req, 'read');
  const id = pathId((await ctx.params).id);
  const q = ruleRunsQuery.safeParse(Object.fromEntries(req.nextUrl.searchParams.entries()));
  if (!q.success)
    throw new ApiError(
      400,
      'invalid query',
      q.error.issues.map((i) => ({ path: i.path.join('.') || '(query)', message: i.message })),
    );
  const db = getDb();
  await readableRule(db, user.access, id);
  return NextResponse.json({ items: await ruleRunsView(db, id, q.data.limit ?? 50, q.data.before) });
});
