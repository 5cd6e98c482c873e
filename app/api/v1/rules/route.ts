import { NextResponse } from 'next/server';
import { asc } from 'drizzle-orm';
import { getDb } from '@/db/client';
import { rules } from '@/db/schema';
import { apiUser, handle, jsonBody } from '@/lib/features/api/respond';
import { ApiError } from '@/lib/features/api/request-errors';
import { createRuleRoute } from '@/lib/features/api/contract/rules';
import { createRule, mayRead, ruleView } from '@/lib/features/rules/rules';

/** GET /api/v1/rules: the rules the caller may read (docs/rules.md, "Rules"), with their next fires and last runs. */
export const GET = handle(async (req) => {
  const user = await apiUser(req, 'read');
  if ([...req.nextUrl.searchParams.keys()].length) throw new ApiError(400, 'GET /api/v1/rules takes no query parameters');
  const db = getDb();
  const rows = (await db.select().from(rules).orderBy(asc(rules.name))).filter((r) => mayRead(user.access, r));
  const now = new Date();
  return NextResponse.json({ items: await Promise.all(rows.map((r) => ruleView(db, r, now))) });
});

/**
 * POST /api/v1/rules: 201 and the rule. Whoever makes it owns it: each fire is checked against the
 * owner's roles. Refused (400) when the action, its parameters, the scope or the schedule do not
 * hold; 403 when the maker may not run the action on a target it names now; 409 for a name taken.
 */
export const POST = handle(async (req) => {
  const user = await apiUser(req, 'operate');
  const body = await jsonBody(req, createRuleRoute.body);
  const db = getDb();
  const row = await createRule(db, user, body);
  return NextResponse.json(await ruleView(db, row), { status: 201, headers: { location: `/api/v1/rules/${row.id}` } });
});
