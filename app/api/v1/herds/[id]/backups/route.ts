import { NextResponse } from 'next/server';
import { and, desc, eq, isNull } from 'drizzle-orm';
import { getDb } from '@/db/client';
import { backups, herds } from '@/db/schema';
import { apiUser, handle, pathId } from '@/lib/features/api/respond';
import { ApiError, queryOf } from '@/lib/features/api/request-errors';
import { herdBackupsRoute } from '@/lib/features/api/contract/scorecards';
import { demand } from '@/lib/engine/access';

/** GET /api/v1/herds/{id}/backups: the backups in its repository, newest first (`all=1`: the expired too). */
export const GET = handle(async (req, ctx) => {
  const user = await apiUser(req, 'read');
  const id = pathId((await ctx.params).id);
  const q = queryOf(req, herdBackupsRoute.query);
  const db = getDb();
  const [herd] = await db.select({ environmentId: herds.environmentId }).from(herds).where(eq(herds.id, id));
  if (!herd) throw new ApiError(404, 'no such herd');
  await demand(db, user.access, 'viewer', 'This herd', [herd.environmentId]);
  const rows = await db
    .select({
      id: backups.id,
      label: backups.label,
      type: backups.type,
      prior: backups.prior,
      startedAt: backups.startedAt,
      stoppedAt: backups.stoppedAt,
      sizeBytes: backups.sizeBytes,
      repoSizeBytes: backups.repoSizeBytes,
      lsnStart: backups.lsnStart,
      lsnStop: backups.lsnStop,
      operationId: backups.operationId,
      goneAt: backups.goneAt,
    })
    .from(backups)
    .where(q.all === '1' ? eq(backups.herdId, id) : and(eq(backups.herdId, id), isNull(backups.goneAt)))
    .orderBy(desc(backups.stoppedAt), desc(backups.id));
  return NextResponse.json({ items: rows });
});
