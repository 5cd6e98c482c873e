import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle, pathId } from '@/lib/features/api/respond';
import { ApiError } from '@/lib/features/api/request-errors';
import { MAX_BIG_ID } from '@/lib/adapters/validation/ids';
import { operationView } from '@/lib/engine/operation-view';
import { demandOnOperation } from '@/lib/features/operations/operation-control';
import { approvalView } from '@/lib/features/operations/approvals';

export const GET = handle(async (req, ctx) => {
  const user = await apiUser(req, 'read');
  const id = pathId((await ctx.params).id, 'id', MAX_BIG_ID);
  const op = await operationView(getDb(), id, user.access);
  if (!op) throw new ApiError(404, 'no such operation');
  await demandOnOperation(getDb(), user.access, op.id, 'view');
  return NextResponse.json({
    id: op.id,
    action: op.action,
    params: op.params,
    status: op.status,
    requestedBy: op.requestedBy,
    createdAt: op.createdAt,
    finishedAt: op.finishedAt,
    pausedAt: op.pausedAt,
    pausedReason: op.pausedReason,
    waves: op.waves,
    approval: await approvalView(getDb(), op.id, user),
    targets: op.targets.map((t) => ({
      instanceId: t.instanceId,
      herdId: t.herdId,
      label: t.label,
      status: t.status,
      wave: t.wave,
      held: t.held,
      error: t.error,
      outcome: t.outcome,
      steps: t.steps.map((s) => ({
        name: s.name,
        status: s.status,
        command: s.command,
        exitCode: s.exitCode,
        output: s.output,
        startedAt: s.startedAt,
        finishedAt: s.finishedAt,
      })),
    })),
  });
});
