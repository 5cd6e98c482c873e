import { NextResponse } from 'next/server';
import { z } from 'zod';
import { getDb } from '@/db/client';
import { apiUser, handle } from '@/lib/features/api/respond';
import { ApiError } from '@/lib/features/api/request-errors';
import { listWaiting } from '@/lib/features/operations/approvals';

const query = z.object({ mine: z.enum(['0', '1']).optional() }).strict();

/** GET /api/v1/approvals[?mine=1]: what awaits approval where the caller sees it; mine=1: what they may decide on now. */
export const GET = handle(async (req) => {
  const user = await apiUser(req, 'read');
  const q = query.safeParse(Object.fromEntries(req.nextUrl.searchParams));
  if (!q.success) throw new ApiError(400, 'invalid query', [{ path: 'mine', message: 'mine is 1 or 0' }]);
  return NextResponse.json({ items: await listWaiting(getDb(), user, q.data.mine === '1') });
});
