import { NextResponse } from 'next/server';
import { eq } from 'drizzle-orm';
import { getDb } from '@/db/client';
import { herds } from '@/db/schema';
import { ApiError, apiUser, handle, pathId, queryOf } from '@/lib/api/respond';
import { herdLagRoute } from '@/lib/api/contract/history';
import { demand } from '@/lib/auth/access';
import { lagHistory, lagRange } from '@/lib/inventory/lag-history';

/** GET /api/v1/herds/{id}/lag?range=hour|day|week: its members' lag history and the operations on it meanwhile. */
export const GET = handle(async (req, ctx) => {
  const user = await apiUser(req, 'read');
  const id = pathId((await ctx.params).id);
  const q = queryOf(req, herdLagRoute.query);
  const db = getDb();
  const [herd] = await db.select({ environmentId: herds.environmentId }).from(herds).where(eq(herds.id, id));
  if (!herd) throw new ApiError(404, 'no such herd');
  await demand(db, user.access, 'viewer', 'This herd', [herd.environmentId]);
  return NextResponse.json(await lagHistory(db, { herdId: id }, lagRange(q.range)));
});
