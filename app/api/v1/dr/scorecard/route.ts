import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle } from '@/lib/features/api/respond';
import { queryOf } from '@/lib/features/api/request-errors';
import { drScorecardRoute } from '@/lib/features/api/contract/scorecards';
import { perEnvironment } from '@/lib/features/api/scorecards';
import { drScorecard } from '@/lib/features/dr/scorecard';

/** GET /api/v1/dr/scorecard: each herd's last DR drill, in the environments the caller may see. */
export const GET = handle(async (req) => {
  const user = await apiUser(req, 'read');
  const q = queryOf(req, drScorecardRoute.query);
  const db = getDb();
  const rows = await perEnvironment(db, user.access, q.environment, (id) => drScorecard(db, id));
  return NextResponse.json({ items: rows.sort((a, b) => a.environment.localeCompare(b.environment) || a.herd.localeCompare(b.herd)) });
});
