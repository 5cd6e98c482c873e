import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle, jsonBody, pathId } from '@/lib/features/api/respond';
import { updateRuleRoute } from '@/lib/features/api/contract/rules';
import { deleteRule, readableRule, ruleView, updateRule } from '@/lib/features/rules/rules';

export const GET = handle(async (req, ctx) => {
  const user = await apiUser(req, 'read');
  const db = getDb();
  return NextResponse.json(await ruleView(db, await readableRule(db, user.access, pathId((await ctx.params).id))));
});

/** PUT /api/v1/rules/{id}: the whole rule, as for POST; its owner or a global admin; whoever saves it owns it from then on. */
export const PUT = handle(async (req, ctx) => {
  const user = await apiUser(req, 'operate');
  const id = pathId((await ctx.params).id);
  const body = await jsonBody(req, updateRuleRoute.body);
  const db = getDb();
  return NextResponse.json(await ruleView(db, await updateRule(db, user, id, body)));
});

export const DELETE = handle(async (req, ctx) => {
  const user = await apiUser(req, 'operate');
  const id = pathId((await ctx.params).id);
  await deleteRule(getDb(), user, id);
  return new NextResponse(null, { status: 204 });
});
