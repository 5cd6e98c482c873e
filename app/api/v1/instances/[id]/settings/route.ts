import { NextResponse } from 'next/server';
import { eq } from 'drizzle-orm';
import { getDb } from '@/db/client';
import { instances } from '@/db/schema';
import { apiUser, handle, pathId } from '@/lib/features/api/respond';
import { ApiError, queryOf } from '@/lib/features/api/request-errors';
import { instanceSettingsRoute } from '@/lib/features/api/contract/settings';
import { demand } from '@/lib/engine/access';
import { changesWithin, settingsAt } from '@/lib/fleet/settings/history';
import { MAX_BIG_ID } from '@/lib/adapters/validation/ids';

/** GET /api/v1/instances/{id}/settings?at=&from=&to=: its settings at a time, and what changed between two. */
export const GET = handle(async (req, ctx) => {
  const user = await apiUser(req, 'read');
  const id = pathId((await ctx.params).id, 'id', MAX_BIG_ID);
  const q = queryOf(req, instanceSettingsRoute.query);
  const db = getDb();
  const [row] = await db.select({ environmentId: instances.environmentId }).from(instances).where(eq(instances.id, id));
  if (!row) throw new ApiError(404, 'no such instance');
  await demand(db, user.access, 'viewer', 'This instance', [row.environmentId]);
  const at = q.at ? new Date(q.at) : new Date();
  const snap = await settingsAt(db, id, at);
  const changes = q.from && q.to ? await changesWithin(db, { instanceId: id }, new Date(q.from), new Date(q.to)) : undefined;
  return NextResponse.json({
    instanceId: id,
    at: at.toISOString(),
    snapshot: snap && {
      effectiveAt: snap.effectiveAt.toISOString(),
      readAt: snap.readAt.toISOString(),
      serverVersionNum: snap.serverVersionNum,
      settings: Object.fromEntries(
        Object.entries(snap.settings).map(([n, r]) => [
          n,
          { value: r.v, source: r.s ?? 'default', file: r.f ?? null, pendingRestart: !!r.p },
        ]),
      ),
    },
    ...(changes ? { changes: changes.map((c) => ({ at: c.at.toISOString(), changes: c.changes, operationId: c.operationId })) } : {}),
  });
});
