import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle, pathId } from '@/lib/features/api/respond';
import { queryOf } from '@/lib/features/api/request-errors';
import { ruleRunsQuery } from '@/lib/features/api/contract/rules';
import { readableRule, ruleRunsView } from '@/lib/features/rules/rules';

/** GET /api/v1/rules/{id}/runs: its runs, newest first: when, what came of it, each target's fate, the operation. */
export const GET = handle(async (req, ctx) => {
  const user = await apiUser(req, 'read');
  const id = pathId((await ctx.params).id);
  const q = queryOf(req, ruleRunsQuery);
  const db = getDb();
  await readableRule(db, user.access, id);
  return NextResponse.json({ items: await ruleRunsView(db, id, q.limit ?? 50, q.before) });
});
