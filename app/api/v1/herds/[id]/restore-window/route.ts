import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle, pathId } from '@/lib/features/api/respond';
import { restoreWindow, visibleHerd } from '@/lib/features/api/fleet-config';

/** GET /api/v1/herds/{id}/restore-window: from its oldest backup's end to its last archived WAL, and the operations within. */
export const GET = handle(async (req, ctx) => {
  const user = await apiUser(req, 'read');
  const id = pathId((await ctx.params).id);
  const db = getDb();
  await visibleHerd(db, user.access, id);
  return NextResponse.json(await restoreWindow(db, id));
});
