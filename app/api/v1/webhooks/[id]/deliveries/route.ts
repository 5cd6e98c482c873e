import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle, pathId } from '@/lib/features/api/respond';
import { deliveriesOf, manageableWebhook } from '@/lib/features/rules/webhooks';

/** GET /api/v1/webhooks/{id}/deliveries: its last 100 deliveries, newest first, with each attempt's answer. */
export const GET = handle(async (req, ctx) => {
  const user = await apiUser(req, 'read');
  const id = pathId((await ctx.params).id);
  const db = getDb();
  const w = await manageableWebhook(db, user, id);
  return NextResponse.json({ items: await deliveriesOf(db, w.id) });
});
