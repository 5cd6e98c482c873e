import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle } from '@/lib/features/api/respond';
import { listFromQuery } from '@/lib/features/api/list';
import { groupsQuery } from '@/lib/features/api/contract/fleet-config';
import { groupsOf } from '@/lib/features/api/fleet-config';

/** GET /api/v1/parameter-groups: every group with its settings (a catalogue). */
export const GET = handle(async (req) => {
  const user = await apiUser(req, 'read');
  const list = await listFromQuery(req, groupsQuery, 'parameter-groups', user.access);
  return NextResponse.json({ items: await groupsOf(getDb(), list.rows), total: list.total, page: list.page, pages: list.pages });
});
