import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { ApiError, apiUser, handle, jsonBody } from '@/lib/api/respond';
import { planBody } from '@/lib/api/operation-schemas';
import { planOperation } from '@/lib/ops/plan';
import { getAction } from '@/lib/ops/registry';
import { targetIdsFor } from '@/lib/ops/submit';

/** POST /api/v1/operations/plan: the plan and its digest; wrong targets or parameters are a 400 (a SubmitError, answered by handle). */
export const POST = handle(async (req) => {
  const user = await apiUser(req, 'operate');
  const body = await jsonBody(req, planBody);
  const action = getAction(body.action);
  if (!action) throw new ApiError(400, `unknown action ${body.action}`);
  const plan = await planOperation(getDb(), user.access, action, targetIdsFor(action, body), body.params ?? {});
  if (plan.missing.length)
    throw new ApiError(404, `unknown ${plan.on === 'herd' ? 'herds' : 'instances'}`, {
      [plan.on === 'herd' ? 'herdIds' : 'instanceIds']: plan.missing,
    });
  return NextResponse.json({
    action: plan.action,
    params: plan.params,
    digest: plan.digest,
    confirm: plan.typeToConfirm,
    targets: plan.targets.map((t) => ({
      instanceId: t.instanceId,
      herdId: t.herdId,
      label: t.label,
      environment: t.environment,
      herd: t.herd,
      steps: t.steps,
      refused: t.refused ?? null,
      warnings: t.warnings,
      facts: t.facts ?? [],
    })),
  });
});
