// Plan: what an action will do to each selected instance, what refuses and what warns. Nothing runs.
// The digest covers every fact the plan relied on; a confirm with another digest is refused.
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '@/db/client';
import type { ActionDef, ActionParams, TargetPlan } from './define-action';
import { driverFor } from './drivers';
import { loadHerdMembers, loadInstanceRefs, type InstanceRef } from './instance-ref';

export interface PlannedTarget extends TargetPlan {
  instanceId: number;
  label: string;
  herdId: number;
  herd: string;
  environment: string;
}

export interface Plan {
  action: string;
  label: string;
  /** The action's parameters as validated (empty for actions without any). */
  params: ActionParams;
  targets: PlannedTarget[];
  /** Ids asked for that do not exist (any more). */
  missing: number[];
  digest: string;
  /** What the user must type to confirm: the environment's name, or the number of targets. */
  typeToConfirm: string | null;
  /** A fresh key for this confirmation page: submitting it twice enqueues once. */
  idempotencyKey: string;
}

export const TYPE_COUNT_ABOVE = 10;

function facts(r: InstanceRef) {
  return [r.id, r.herdId, r.environmentId, r.role, r.state, r.upstreamId, r.host, r.port, r.dataDirectory, r.pgVersion, r.controlDriver, r.ssh.port, r.ssh.username, r.ssh.hostKeyFingerprint];
}

/** Parameters that do not fit the action's schema: a 400, nothing planned. */
export class ParamsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ParamsError';
  }
}

export function parseParams(action: ActionDef, raw: unknown): ActionParams {
  if (!action.params) {
    if (raw && typeof raw === 'object' && Object.keys(raw).length) throw new ParamsError(`${action.name} takes no parameters`);
    return {};
  }
  const r = action.params.schema.safeParse(raw ?? {});
  if (!r.success) throw new ParamsError(r.error.issues.map((i) => `${i.path.join('.') || 'params'}: ${i.message}`).join('; '));
  return r.data;
}

export function digestOf(action: string, refs: InstanceRef[], params: ActionParams = {}): string {
  const h = createHash('sha256').update(action).update(JSON.stringify(Object.entries(params).sort()));
  for (const r of [...refs].sort((a, b) => a.id - b.id)) h.update(JSON.stringify(facts(r)));
  return h.digest('hex').slice(0, 32);
}

export function typeToConfirm(action: ActionDef, targets: PlannedTarget[]): string | null {
  const runnable = targets.filter((t) => !t.refused);
  if (!runnable.length) return null;
  const envs = [...new Set(runnable.map((t) => t.environment))];
  if (runnable.length > TYPE_COUNT_ABOVE || envs.length > 1) return String(runnable.length);
  if (envs.some((e) => /^prod/i.test(e))) return envs[0];
  return action.dangerous && runnable.length > 1 ? String(runnable.length) : null;
}

/** Throws ParamsError when `rawParams` do not fit the action. */
export async function planOperation(db: Db, action: ActionDef, instanceIds: number[], rawParams: unknown = {}): Promise<Plan> {
  const params = parseParams(action, rawParams);
  const ids = [...new Set(instanceIds)];
  const refs = await loadInstanceRefs(db, ids);
  const found = new Set(refs.map((r) => r.id));
  const members = await loadHerdMembers(db, refs);
  const targets = refs.map((r): PlannedTarget => {
    let p: TargetPlan;
    try {
      driverFor(r.controlDriver); // refuses drivers pgherd cannot run, before anything else
      p = action.plan(r, { members: members.get(r.herdId)!, params });
    } catch (err) {
      p = { steps: [], refused: (err as Error).message, warnings: [] };
    }
    return { ...p, instanceId: r.id, label: r.label, herdId: r.herdId, herd: r.herd, environment: r.environment };
  });
  return {
    action: action.name,
    label: action.label,
    params,
    targets,
    missing: ids.filter((id) => !found.has(id)),
    digest: digestOf(action.name, [...members.values()].flat(), params),
    typeToConfirm: typeToConfirm(action, targets),
    idempotencyKey: randomBytes(16).toString('hex'),
  };
}
