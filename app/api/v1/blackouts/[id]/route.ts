import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle, pathId } from '@/lib/features/api/respond';
import { deleteBlackout } from '@/lib/features/rules/blackouts';

/** DELETE /api/v1/blackouts/{id}: lifts it (204); who may set it may lift it. */
export const DELETE = handle(async (req, ctx) => {
  const user = await apiUser(req, 'operate');
  await deleteBlackout(getDb(), user, pathId((await ctx.params).id));
  return new NextResponse(null, { status: 204 });
});
