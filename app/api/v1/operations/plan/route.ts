import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { ApiError, apiUser, handle, jsonBody } from '@/lib/api/respond';
import { planBody } from '@/lib/api/operation-schemas';
import { ParamsError, planOperation } from '@/lib/ops/plan';
import { getAction } from '@/lib/ops/registry';

export const POST = handle(async (req) => {
  await apiUser(req, 'operate');
  const body = await jsonBody(req, planBody);
  const action = getAction(body.action);
  if (!action) throw new ApiError(400, `unknown action ${body.action}`);
  const plan = await planOperation(getDb(), action, body.instanceIds, body.params ?? {}).catch((err) => {
    throw err instanceof ParamsError ? new ApiError(400, 'invalid params', { params: err.message }) : err;
  });
  if (plan.missing.length) throw new ApiError(404, 'unknown instances', { instanceIds: plan.missing });
  return NextResponse.json({
    action: plan.action,
    params: plan.params,
    digest: plan.digest,
    confirm: plan.typeToConfirm,
    targets: plan.targets.map((t) => ({ instanceId: t.instanceId, label: t.label, environment: t.environment, herd: t.herd, steps: t.steps, refused: t.refused ?? null, warnings: t.warnings })),
  });
});
