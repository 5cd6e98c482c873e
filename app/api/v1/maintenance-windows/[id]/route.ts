import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle, pathId } from '@/lib/features/api/respond';
import { deleteWindow } from '@/lib/features/rules/maintenance-windows';

/** DELETE /api/v1/maintenance-windows/{id}: removes it (204); who may set it may remove it. */
export const DELETE = handle(async (req, ctx) => {
  const user = await apiUser(req, 'operate');
  await deleteWindow(getDb(), user, pathId((await ctx.params).id));
  return new NextResponse(null, { status: 204 });
});
