import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle, noBody, pathId } from '@/lib/features/api/respond';
import { webRuleQueue } from '@/lib/entry/web/web-queue';
import { logLine } from '@/lib/adapters/log/log';
import { requestRun } from '@/lib/features/rules/rules';
import { enqueueRun } from '@/lib/features/rules/rule-queue';

/**
 * POST /api/v1/rules/{id}/run: fire it now (202, the run). A worker decides it as it would a
 * scheduled fire, on the owner's roles; its owner or a global admin may ask.
 */
export const POST = handle(async (req, ctx) => {
  const user = await apiUser(req, 'operate');
  const id = pathId((await ctx.params).id);
  await noBody(req, 'POST /api/v1/rules/{id}/run', 'the rule says what runs');
  const { runId } = await requestRun(getDb(), user, id);
  const queue = webRuleQueue();
  if (queue)
    // Redis away: the run waits in Postgres; a worker's reconcile gives it its job.
    await enqueueRun(queue, runId).catch((err: unknown) => logLine('rule.run.enqueue.deferred', { runId, error: (err as Error).message }));
  return NextResponse.json({ runId, status: 'firing' }, { status: 202, headers: { location: `/api/v1/rules/${id}/runs` } });
});
