import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle, pathId } from '@/lib/features/api/respond';
import { keepWebhook } from '@/lib/features/rules/webhooks';

/** POST /api/v1/webhooks/{id}/keep: 204; the rule's owner keeps its webhook, delivered again after a change of owner. */
export const POST = handle(async (req, ctx) => {
  const user = await apiUser(req, 'operate');
  await keepWebhook(getDb(), user, pathId((await ctx.params).id));
  return new NextResponse(null, { status: 204 });
});
