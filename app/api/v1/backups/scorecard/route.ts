import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle } from '@/lib/features/api/respond';
import { queryOf } from '@/lib/features/api/request-errors';
import { recoverabilityRoute } from '@/lib/features/api/contract/scorecards';
import { perEnvironment } from '@/lib/features/api/scorecards';
import { recoverabilityScorecard } from '@/lib/features/backups/scorecard';

/** GET /api/v1/backups/scorecard: each herd's recoverability, in the environments the caller may see. */
export const GET = handle(async (req) => {
  const user = await apiUser(req, 'read');
  const q = queryOf(req, recoverabilityRoute.query);
  const db = getDb();
  const rows = await perEnvironment(db, user.access, q.environment, (id) => recoverabilityScorecard(db, id));
  return NextResponse.json({ items: rows.sort((a, b) => a.environment.localeCompare(b.environment) || a.herd.localeCompare(b.herd)) });
});
