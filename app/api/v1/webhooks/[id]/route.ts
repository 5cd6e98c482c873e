import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle, pathId } from '@/lib/features/api/respond';
import { deleteWebhook } from '@/lib/features/rules/webhooks';

/** DELETE /api/v1/webhooks/{id}: 204; who may make it may delete it. */
export const DELETE = handle(async (req, ctx) => {
  const user = await apiUser(req, 'operate');
  await deleteWebhook(getDb(), user, pathId((await ctx.params).id));
  return new NextResponse(null, { status: 204 });
});
