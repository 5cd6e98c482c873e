import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { ApiError, apiUser, handle, pathId } from '@/lib/api/respond';
import { discoveryRun, runView } from '@/lib/cloud/discovery-runs';

/** GET /api/v1/cloud/discovery/:id: one pass, to poll until its status is done or failed. */
export const GET = handle(async (req, ctx) => {
  const user = await apiUser(req, 'read');
  const run = await discoveryRun(getDb(), pathId((await ctx.params).id));
  if (!run) throw new ApiError(404, 'no such discovery pass');
  return NextResponse.json(runView(run, user.access));
});
