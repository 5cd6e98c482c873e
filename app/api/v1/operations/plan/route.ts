import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { answeringWith, apiUser, handle, jsonBody } from '@/lib/features/api/respond';
import { ApiError } from '@/lib/features/api/request-errors';
import { planBody } from '@/lib/engine/operation-schemas';
import { planOperation } from '@/lib/engine/plan';
import { deprecatedName, deprecationHeaders, getAction } from '@/lib/actions/registry';
import { targetIdsFor } from '@/lib/engine/submit';
import { wavePlan } from '@/lib/engine/waves';

/** POST /api/v1/operations/plan: the plan and its digest; wrong targets or parameters are a 400 (a SubmitError, answered by handle). */
export const POST = handle(async (req) => {
  const user = await apiUser(req, 'operate');
  const body = await jsonBody(req, planBody);
  // A deprecated name's answer says so, a refusal or an error too.
  return answeringWith(deprecationHeaders(body.action), async () => {
    const action = getAction(body.action);
    if (!action) throw new ApiError(400, `unknown action ${body.action}`);
    const plan = await planOperation(getDb(), user.access, action, targetIdsFor(action, body), body.params ?? {}, body.waves ?? null);
    if (plan.missing.length)
      throw new ApiError(404, `unknown ${plan.on === 'herd' ? 'herds' : 'instances'}`, {
        [plan.on === 'herd' ? 'herdIds' : 'instanceIds']: plan.missing,
      });
    const rolling = body.waves ? wavePlan(plan, body.waves) : null;
    const waveOf = new Map(rolling?.waves.flatMap((w) => w.targets.map((t) => [t, w.wave] as const)));
    return NextResponse.json(
      {
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
          ...(t.cost ? { cost: t.cost } : {}),
          ...(rolling ? { wave: waveOf.get(t) ?? null } : {}),
        })),
        // What the runnable targets cost an hour now and after, added up (a resize).
        ...(plan.cost ? { cost: plan.cost } : {}),
        // The waves as submit will run them (absent without a waves object): the spec with its defaults
        // filled in, in words, and the targets of each wave in order.
        ...(rolling
          ? {
              waves: {
                spec: rolling.spec,
                summary: rolling.summary,
                waves: rolling.waves.map((w) => ({
                  wave: w.wave,
                  targets: w.targets.map((t) => ({ instanceId: t.instanceId, herdId: t.herdId, label: t.label, site: t.site })),
                })),
              },
            }
          : {}),
        ...(deprecatedName(body.action) ? { deprecated: deprecatedName(body.action) } : {}),
      },
      { headers: deprecationHeaders(body.action) },
    );
  });
});
