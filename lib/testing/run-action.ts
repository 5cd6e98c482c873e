// Runs one action's steps on one instance, recorded as a real operation target would be: for the
// action tests, which drive the pipeline directly (the engine tests go through the queue).
import { asc, eq } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { operations, operationSteps, operationTargets } from '@/db/schema';
import type { SshPool } from '@/lib/adapters/ssh/ssh-client';
import { dbRecorder } from '@/lib/engine/db-recorder';
import type { InstanceAction } from '@/lib/engine/define-action';
import { loadInstancesWithHerds } from '@/lib/fleet/instance-ref';
import { runPipeline } from '@/lib/engine/pipeline';
import { parseParams } from '@/lib/engine/plan';

export async function runAction(db: Db, ssh: SshPool, action: InstanceAction, instanceId: number, params: unknown = {}) {
  const { refs, members: byHerd } = await loadInstancesWithHerds(db, [instanceId]);
  const [target] = refs;
  const members = byHerd.get(target!.herdId)!;
  const [op] = await db
    .insert(operations)
    .values({ action: action.name, planDigest: 'test', requestedByName: 'test', status: 'running' })
    .returning();
  const [tg] = await db
    .insert(operationTargets)
    .values({ operationId: op!.id, instanceId: target!.id, herdId: target!.herdId, label: target!.label, status: 'running' })
    .returning();
  const recorder = dbRecorder(db, tg!.id);
  const res = await runPipeline(action.steps(target!, { db, ssh }, { members, params: parseParams(action, params) }), recorder);
  await recorder.flush();
  const steps = await db.select().from(operationSteps).where(eq(operationSteps.targetId, tg!.id)).orderBy(asc(operationSteps.seq));
  return { res, steps };
}
