import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle, noBody, pathId } from '@/lib/features/api/respond';
import { approveRule } from '@/lib/features/rules/rule-approval';

/**
 * POST /api/v1/rules/{id}/approve: approves the rule as it is saved now, where an approval policy covers
 * its action (docs/approvals.md): by one the policies let approve it, never its owner.
 */
export const POST = handle(async (req, ctx) => {
  const user = await apiUser(req, 'operate');
  const id = pathId((await ctx.params).id);
  await noBody(req, 'POST /api/v1/rules/{id}/approve', 'it approves the rule as it is saved');
  await approveRule(getDb(), user, id);
  return NextResponse.json({ id, approved: true });
});
