import { NextResponse } from 'next/server';
import { z } from 'zod';
import { getDb } from '@/db/client';
import { apiUser, handle, pathId } from '@/lib/features/api/respond';
import { ApiError } from '@/lib/features/api/request-errors';
import { cancelOperation, operationScope, pauseOperation, resumeOperation } from '@/lib/features/operations/operation-control';
import { webQueue } from '@/lib/entry/web/web-queue';
import { MAX_BIG_ID } from '@/lib/adapters/validation/ids';

const verb = z.enum(['pause', 'resume', 'abort']);

/**
 * POST /api/v1/operations/{id}/pause | resume | abort: 202 { id, status } (see GET for where it goes
 * from there). Pause: nothing new starts, running targets finish. Resume: the current wave's held
 * targets start again. Abort: nothing new starts, running targets finish their current step and run
 * their cleanups, the rest end cancelled. A finished operation, or one already paused (not paused),
 * is a 409.
 */
export const POST = handle(async (req, ctx) => {
  const user = await apiUser(req, 'operate');
  const p = await ctx.params;
  const what = verb.safeParse(p.verb);
  if (!what.success) throw new ApiError(404, 'no such verb (pause, resume, abort)');
  const id = pathId(p.id, 'id', MAX_BIG_ID);
  const db = getDb();
  if (!(await operationScope(db, id))) throw new ApiError(404, 'no such operation');
  if (what.data === 'pause') await pauseOperation(db, id, user);
  else if (what.data === 'resume') await resumeOperation(db, webQueue(), id, user);
  else await cancelOperation(db, id, user);
  return NextResponse.json(
    { id, [what.data === 'abort' ? 'aborting' : what.data === 'pause' ? 'paused' : 'resumed']: true },
    { status: 202 },
  );
});
