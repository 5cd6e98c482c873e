import { NextResponse } from 'next/server';
import { eq } from 'drizzle-orm';
import { getDb } from '@/db/client';
import { instances } from '@/db/schema';
import { apiUser, handle, pathId } from '@/lib/features/api/respond';
import { queryOf } from '@/lib/features/api/request-errors';
import { ApiError } from '@/lib/features/api/request-errors';
import { instanceLagRoute } from '@/lib/features/api/contract/history';
import { demand } from '@/lib/engine/access';
import { lagHistory, lagRange } from '@/lib/fleet/lag-history';
import { MAX_BIG_ID } from '@/lib/adapters/validation/ids';

/** GET /api/v1/instances/{id}/lag?range=hour|day|week: its lag history and the operations on its herd meanwhile. */
export const GET = handle(async (req, ctx) => {
  const user = await apiUser(req, 'read');
  const id = pathId((await ctx.params).id, 'id', MAX_BIG_ID);
  const q = queryOf(req, instanceLagRoute.query);
  const db = getDb();
  const [row] = await db.select({ environmentId: instances.environmentId }).from(instances).where(eq(instances.id, id));
  if (!row) throw new ApiError(404, 'no such instance');
  await demand(db, user.access, 'viewer', 'This instance', [row.environmentId]);
  return NextResponse.json(await lagHistory(db, { instanceId: id }, lagRange(q.range)));
});
