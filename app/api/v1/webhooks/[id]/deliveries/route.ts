import { NextResponse } from 'next/server';
import { desc, eq } from 'drizzle-orm';
import { getDb } from '@/db/client';
import { rules, webhookDeliveries, webhooks } from '@/db/schema';
import { ApiError, apiUser, handle, pathId } from '@/lib/api/respond';
import { mayManage } from '@/lib/schedules/rules';

/** GET /api/v1/webhooks/{id}/deliveries: its last 100 deliveries, newest first, with each attempt's answer. */
export const GET = handle(async (req, ctx) => {
  const user = await apiUser(req, 'read');
  const id = pathId((await ctx.params).id);
  const db = getDb();
  const [w] = await db.select().from(webhooks).where(eq(webhooks.id, id));
  const [rule] = w?.ruleId ? await db.select({ ownerId: rules.ownerId }).from(rules).where(eq(rules.id, w.ruleId)) : [];
  const admin = user.access.superuser || user.access.global === 'admin';
  if (!w || !(admin || (rule && mayManage(user, rule)))) throw new ApiError(404, `no webhook #${String(id)}`);
  const rows = await db
    .select()
    .from(webhookDeliveries)
    .where(eq(webhookDeliveries.webhookId, id))
    .orderBy(desc(webhookDeliveries.id))
    .limit(100);
  return NextResponse.json({
    items: rows.map((d) => ({
      id: d.id,
      event: d.event,
      status: d.status,
      attempts: d.attempts,
      responseStatus: d.responseStatus,
      error: d.error,
      createdAt: d.createdAt,
      deliveredAt: d.deliveredAt,
      nextAttemptAt: d.status === 'pending' ? d.nextAttemptAt : null,
      payload: d.payload,
    })),
  });
});
