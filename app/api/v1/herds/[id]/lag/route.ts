import { NextResponse } from 'next/server';
import { eq } from 'drizzle-orm';
import { getDb } from '@/db/client';
import { herds } from '@/db/schema';
import { apiUser, handle, pathId } from '@/lib/features/api/respond';
import { queryOf } from '@/lib/features/api/request-errors';
import { ApiError } from '@/lib/features/api/request-errors';
import { herdLagRoute } from '@/lib/features/api/contract/history';
import { demand } from '@/lib/engine/access';
import { lagHistory, lagRange } from '@/lib/fleet/lag-history';

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
