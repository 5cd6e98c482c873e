import { NextResponse } from 'next/server';
import { apiUser, handle } from '@/lib/features/api/respond';
import { listFromQuery } from '@/lib/features/api/list';
import { drPairsQuery } from '@/lib/features/api/contract/fleet-config';
import { drPairOf } from '@/lib/features/api/fleet-config';

/** GET /api/v1/dr/pairs: the DR changelist, each herd with its primary and its failover candidate. */
export const GET = handle(async (req) => {
  const user = await apiUser(req, 'read');
  const list = await listFromQuery(req, drPairsQuery, 'dr', user.access);
  return NextResponse.json({ items: list.rows.map(drPairOf), total: list.total, page: list.page, pages: list.pages });
});
