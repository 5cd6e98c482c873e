import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle } from '@/lib/features/api/respond';
import { queryOf } from '@/lib/features/api/request-errors';
import { pendingMaintenanceRoute } from '@/lib/features/api/contract/upgrades';
import { demand, environmentsWith } from '@/lib/engine/access';
import { pendingMaintenance } from '@/lib/features/upgrades/pending';

/** GET /api/v1/upgrades/pending: the herds behind their major's target release, in the environments the caller may see. */
export const GET = handle(async (req) => {
  const user = await apiUser(req, 'read');
  const q = queryOf(req, pendingMaintenanceRoute.query);
  const db = getDb();
  const env = q.environment;
  if (env !== undefined) await demand(db, user.access, 'viewer', 'This environment', [env]);
  const visible = environmentsWith(user.access, 'viewer');
  const ids = env !== undefined ? [env] : visible;
  return NextResponse.json({ items: await pendingMaintenance(db, ids, { all: q.all === '1' }) });
});
