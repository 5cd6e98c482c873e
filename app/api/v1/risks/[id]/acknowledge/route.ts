import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle, jsonBody, pathId } from '@/lib/features/api/respond';
import { MAX_BIG_ID } from '@/lib/adapters/validation/ids';
import { ApiError } from '@/lib/features/api/request-errors';
import { ackBody, acknowledgeRisk, RiskError, unacknowledgeRisk } from '@/lib/features/risks/acknowledge';

const asApi = async <T>(fn: () => Promise<T>): Promise<T> => {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RiskError) throw new ApiError(err.status, err.message);
    throw err;
  }
};

/** POST /api/v1/risks/{id}/acknowledge: it stops counting, with a reason and an expiry (audited). */
export const POST = handle(async (req, ctx) => {
  const user = await apiUser(req, 'operate');
  const id = pathId((await ctx.params).id, 'id', MAX_BIG_ID);
  const body = await jsonBody(req, ackBody);
  await asApi(() => acknowledgeRisk(getDb(), user, id, body));
  return NextResponse.json({ id, acknowledged: true });
});

/** DELETE /api/v1/risks/{id}/acknowledge: it counts again (audited). */
export const DELETE = handle(async (req, ctx) => {
  const user = await apiUser(req, 'operate');
  const id = pathId((await ctx.params).id, 'id', MAX_BIG_ID);
  await asApi(() => unacknowledgeRisk(getDb(), user, id));
  return new NextResponse(null, { status: 204 });
});
