import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle, pathId } from '@/lib/features/api/respond';
import { ApiError } from '@/lib/features/api/request-errors';
import { discoveryRun, runView } from '@/lib/features/discovery/discovery-runs';

/** GET /api/v1/cloud/discovery/:id: one pass, to poll until its status is done or failed. */
export const GET = handle(async (req, ctx) => {
  const user = await apiUser(req, 'read');
  const run = await discoveryRun(getDb(), pathId((await ctx.params).id));
  if (!run) throw new ApiError(404, 'no such discovery pass');
  return NextResponse.json(runView(run, user.access));
});
