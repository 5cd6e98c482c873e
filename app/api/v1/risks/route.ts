import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { demand, environmentsWith } from '@/lib/engine/access';
import { apiUser, handle } from '@/lib/features/api/respond';
import { queryOf } from '@/lib/features/api/request-errors';
import { risksRoute } from '@/lib/features/api/contract/risks';
import { listRisks } from '@/lib/features/risks/view';

/** GET /api/v1/risks: the risks found now, in the environments the caller may see. */
export const GET = handle(async (req) => {
  const user = await apiUser(req, 'read');
  const q = queryOf(req, risksRoute.query);
  const db = getDb();
  if (q.environment !== undefined) await demand(db, user.access, 'viewer', 'This environment', [q.environment]);
  const rows = await listRisks(db, environmentsWith(user.access, 'viewer'), {
    environment: q.environment,
    herd: q.herd,
    severity: q.severity,
    kind: q.kind,
    counted: q.counted === undefined ? undefined : q.counted === '1',
  });
  return NextResponse.json({
    items: rows.map(({ environmentId: _e, kindLabel: _k, ...r }) => ({
      ...r,
      since: r.since.toISOString(),
      seenAt: r.seenAt.toISOString(),
      acknowledged: r.acknowledged ? { ...r.acknowledged, until: r.acknowledged.until.toISOString() } : null,
    })),
  });
});
