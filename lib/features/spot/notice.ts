// EC2's spot interruption warning (two minutes before the capacity goes), as EventBridge delivers it
// ("EC2 Spot Instance Interruption Warning", through an API destination) or as the host's agent relays
// what its instance metadata says: recorded once per instance, and an evacuation started at once for
// each member on the instance (Evacuate: its read names drained first, a primary switched over, a
// successor launched like it, the member retired), as the system, audited like any operation.
// An agent's token is within reach of whoever is a superuser of its host's Postgres (`COPY ... TO
// PROGRAM` reads the token file): its notice moves nothing until EC2 itself says the instance is spot
// capacity with an interruption pending. Only EventBridge's token, which no host holds, is taken as is.
import path from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import type { Queue } from 'bullmq';
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '@/db/client';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { planOperation } from '@/lib/engine/plan';
import type { TargetJob } from '@/lib/engine/queue';
import { writeOperations } from '@/lib/engine/submit';
import { errorText } from '@/lib/engine/errors';
import { evacuateAction } from '@/lib/actions/grow/replace.action';
import { writeAudit } from '@/lib/engine/write-audit';
import { ec2Client } from '@/lib/adapters/aws/config';
import { spotStanding, type SpotAction } from '@/lib/adapters/aws/ec2-spot';
import { serverForToken } from '@/lib/features/agents/ingest';
import { setting } from '@/lib/settings/settings';

/** The event as EventBridge sends it (the fields pgherd reads; others are let through). */
export const spotNoticeSchema = z.looseObject({
  'detail-type': z.literal('EC2 Spot Instance Interruption Warning'),
  source: z.literal('aws.ec2'),
  time: z.iso.datetime({ offset: true }).optional(),
  region: z
    .string()
    .regex(/^[a-z]{2}(-[a-z]+)+-\d$/)
    .optional(),
  detail: z.looseObject({
    'instance-id': z.string().regex(/^i-[0-9a-f]{8,17}$/, 'an EC2 instance id'),
    'instance-action': z.enum(['terminate', 'stop', 'hibernate']),
  }),
});
export type SpotNotice = z.output<typeof spotNoticeSchema>;

export interface NoticeAnswer {
  status: number;
  body: { id?: number; operations?: number[]; outcome?: string; duplicate?: boolean; error?: string };
}

const sameSecret = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/**
 * Where a successor's data directory goes: beside the member's, in a folder of its own named after the
 * notice (`/var/lib/postgresql/15/main` gives `/var/lib/postgresql/15-spot-7/main`): a fresh host has
 * none, and a host that does (a lab's shared disk) is not written over, since the claim makes the folder.
 */
export const successorDirectory = (dataDirectory: string, noticeId: number) => {
  const folder = path.dirname(dataDirectory);
  return path.join(path.dirname(folder), `${path.basename(folder)}-spot-${String(noticeId)}`, path.basename(dataDirectory));
};

/**
 * Why EC2 does not confirm an agent's notice, or the action EC2 says it will take when it does. A notice
 * EC2 cannot be asked about is not confirmed either: evacuating retires the member and buys an instance.
 */
async function unconfirmedByEc2(instanceId: string, region: string): Promise<{ why: string } | { action: SpotAction }> {
  let standing;
  try {
    standing = await spotStanding(ec2Client(region || undefined), instanceId);
  } catch (err) {
    return { why: `EC2 could not be asked about ${instanceId}: ${errorText(err)}` };
  }
  if (!standing.found) return { why: `EC2 has no instance ${instanceId}` };
  if (standing.lifecycle !== 'spot')
    return { why: `EC2 says ${instanceId} is ${standing.lifecycle ?? 'on-demand'} capacity, not spot: it has no interruption to give` };
  if (!standing.pending)
    return {
      why: `EC2 has no interruption pending for ${instanceId} (its spot request is ${standing.status ?? 'not found'}, not marked for termination, stop or hibernation)`,
    };
  return { action: standing.pending };
}

/**
 * One notice, from the bearer token to the answer: 401 without a token, 403 for an agent speaking for
 * another instance than its own (or EventBridge's token unset or wrong), 400 for a body that is not the
 * event, 404 for an instance pgherd does not know, 409 for an agent's notice EC2 does not confirm (held:
 * nothing recorded as an interruption, nothing moved, the refusal audited), 200 with the operations
 * started (or the same answer again for a notice already received).
 */
export async function receiveSpotNotice(
  db: Db,
  queue: Queue<TargetJob> | null,
  req: { authorization: string | null; body: unknown },
): Promise<NoticeAnswer> {
  const token = /^Bearer (\S+)$/.exec(req.authorization ?? '')?.[1];
  if (!token) return { status: 401, body: { error: 'authentication required: Authorization: Bearer <EventBridge token or agent token>' } };
  // Who speaks first: a stranger learns nothing of what the body should be.
  const events = setting('PGHERD_SPOT_EVENTS_TOKEN');
  const fromEvents = !!events && sameSecret(token, events);
  const agent = fromEvents ? null : await serverForToken(db, token);
  if (!fromEvents && !agent)
    return { status: 403, body: { error: 'the token is neither EventBridge\u2019s (PGHERD_SPOT_EVENTS_TOKEN) nor an agent\u2019s' } };
  const source: 'eventbridge' | 'agent' = agent ? 'agent' : 'eventbridge';
  const parsed = spotNoticeSchema.safeParse(req.body);
  if (!parsed.success)
    return {
      status: 400,
      body: { error: parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ') },
    };
  const n = parsed.data;
  const instanceId = n.detail['instance-id'];
  const server = await db.execute<{ id: number; region: string | null; zone: string | null }>(sql`
    SELECT id, cloud_region AS region, cloud_availability_zone AS zone FROM servers WHERE cloud_instance_id = ${instanceId}`);
  const s = server.rows[0];
  // An agent speaks for its own instance only: a notice for another would evacuate a member it does not run.
  if (agent && (!s || agent.id !== s.id))
    return { status: 403, body: { error: `this agent's server is not ${instanceId}: an agent sends notices for its own instance only` } };
  if (!s) return { status: 404, body: { error: `no server of the inventory is EC2 instance ${instanceId}` } };
  let action: SpotAction = n.detail['instance-action'];
  if (agent) {
    const ec2 = await unconfirmedByEc2(instanceId, n.region ?? s.region ?? '');
    if ('why' in ec2) {
      const error = `spot notice held, nothing moved: ${ec2.why}`;
      await writeAudit(db, {
        user: { id: null, username: `agent:${agent.hostname}` },
        action: 'spot.notice.refused',
        objectType: 'servers',
        objectId: String(s.id),
        objectLabel: `${instanceId}: ${error}`,
        environmentId: agent.environment_id ?? null,
        changes: { reason: [null, error] },
      });
      return { status: 409, body: { error } };
    }
    // EC2's word, not the host's, on what happens to the instance.
    action = ec2.action;
  }
  const due = n.time ? new Date(new Date(n.time).getTime() + 120_000) : null;
  const row = await db.execute<{ id: number }>(sql`
    INSERT INTO spot_interruptions (cloud_instance_id, region, availability_zone, server_id, source, instance_action, due_at)
    VALUES (${instanceId}, ${n.region ?? s.region ?? ''}, ${s.zone ?? ''}, ${s.id}, ${source}, ${action}, ${due})
    ON CONFLICT (cloud_instance_id) DO NOTHING RETURNING id`);
  let id = row.rows[0]?.id;
  if (id === undefined) {
    const [seen] = (
      await db.execute<{ id: number; operation_id: number | null; outcome: string }>(
        sql`SELECT id, operation_id, outcome FROM spot_interruptions WHERE cloud_instance_id = ${instanceId}`,
      )
    ).rows;
    // A notice that started nothing (every member refused) is tried again: what refused it may be mended.
    if (seen && seen.operation_id === null) id = seen.id;
    else
      return {
        status: 200,
        body: { id: seen?.id, operations: seen?.operation_id ? [seen.operation_id] : [], outcome: seen?.outcome ?? '', duplicate: true },
      };
  }
  const members = await db.execute<{ id: number; data_directory: string; label: string }>(sql`
    SELECT i.id, i.data_directory, s.hostname || ':' || i.port AS label FROM instances i JOIN servers s ON s.id = i.server_id
    WHERE i.server_id = ${s.id} ORDER BY i.id`);
  const started: number[] = [];
  const said: string[] = [];
  for (const m of members.rows) {
    try {
      const params = { dataDirectory: successorDirectory(m.data_directory, id) };
      const plan = await planOperation(db, SYSTEM_ACCESS, evacuateAction, [m.id], params);
      const refused = plan.targets.find((t) => t.refused);
      if (refused) {
        said.push(`${m.label}: not evacuated: ${refused.refused ?? ''}`);
        continue;
      }
      const [op] = await writeOperations(db, queue, [
        {
          action: evacuateAction,
          plan,
          actor: { id: null, username: 'system', access: SYSTEM_ACCESS },
          reason: `spot interruption notice for ${instanceId} (${source}; EC2 takes it back${due ? ` at ${due.toISOString()}` : ' in two minutes'})`,
          confirmation: plan.typeToConfirm ?? '',
          idempotencyKey: `spot:${instanceId}:${String(m.id)}`,
          waves: null,
        },
      ]);
      if (op) {
        started.push(op);
        said.push(`${m.label}: evacuation started (operation #${String(op)})`);
      }
    } catch (err) {
      said.push(`${m.label}: not evacuated: ${errorText(err)}`);
    }
  }
  const outcome = said.join('; ') || 'no member of the inventory runs there';
  await db.execute(
    sql`UPDATE spot_interruptions SET operation_id = coalesce(${started[0] ?? null}, operation_id), outcome = ${outcome} WHERE id = ${id}`,
  );
  return { status: 200, body: { id, operations: started, outcome } };
}
