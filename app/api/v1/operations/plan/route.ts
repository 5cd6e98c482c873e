import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { ApiError, apiUser, handle, jsonBody } from '@/lib/api/respond';
import { planBody } from '@/lib/api/operation-schemas';
import { ParamsError, planOperation } from '@/lib/ops/plan';
import { getAction } from '@/lib/ops/registry';
import { targetIdsFor } from '@/lib/ops/submit';

export const POST = handle(async (req) => {
  const user = await apiUser(req, 'operate');
  const body = await jsonBody(req, planBody);
  const action = getAction(body.action);
  if (!action) throw new ApiError(400, `unknown action ${body.action}`);
  let ids: number[];
  try {
    ids = targetIdsFor(action, body);
  } catch (err) {
    throw new ApiError(400, (err as Error).message);
  }
  const plan = await planOperation(getDb(), user.access, action, ids, body.params ?? {}).catch((err: unknown) => {
    throw err instanceof ParamsError ? new ApiError(400, 'invalid params', { params: err.message }) : err;
  });
  if (plan.missing.length) throw new ApiError(404, `unknown ${plan.on === 'herd' ? 'herds' : 'instances'}`, { [plan.on === 'herd' ? 'herdIds' : 'instanceIds']: plan.missing });
  return NextResponse.json({
    action: plan.action,
    params: plan.params,
    digest: plan.digest,
    confirm: plan.typeToConfirm,
    targets: plan.targets.map((t) => ({ instanceId: t.instanceId, herdId: t.herdId, label: t.label, environment: t.environment, herd: t.herd, steps: t.steps, refused: t.refused ?? null, warnings: t.warnings, facts: t.facts ?? [] })),
  });
});
