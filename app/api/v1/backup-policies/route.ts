import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle } from '@/lib/features/api/respond';
import { listFromQuery } from '@/lib/features/api/list';
import { policiesQuery } from '@/lib/features/api/contract/fleet-config';
import { policiesOf } from '@/lib/features/api/fleet-config';

/** GET /api/v1/backup-policies: the policies of the environments the caller sees. */
export const GET = handle(async (req) => {
  const user = await apiUser(req, 'read');
  const list = await listFromQuery(req, policiesQuery, 'backup-policies', user.access);
  return NextResponse.json({ items: await policiesOf(getDb(), list.rows), total: list.total, page: list.page, pages: list.pages });
});
