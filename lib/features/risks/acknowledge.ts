// A finding acknowledged (the false-positive budget): with a reason and an expiry, and optionally a step
// by which it may get worse before it counts again; an operator's of its environment, audited. The
// judge counts it again once the acknowledgement expires, the measure passes the step, or a warning
// turns critical (find.ts countsDespiteAck). Taking an acknowledgement back is audited too.
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '@/db/client';
import { can, demand, type Actor } from '@/lib/engine/access';
import { writeAudit } from '@/lib/engine/write-audit';
import { isPlainText, NO_TRICKS } from '@/lib/adapters/validation/text';

export class RiskError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

export const ackBody = z
  .object({
    reason: z.string().trim().min(3, 'say why (at least 3 characters)').max(500).refine(isPlainText, NO_TRICKS),
    hours: z
      .number()
      .int()
      .min(1)
      .max(24 * 90)
      .meta({ description: 'How long it stops counting (at most 90 days).' }),
    step: z
      .number()

      .positive()
      .nullable()
      .optional()
      .meta({
        description: "How much worse (in the finding's unit) it may get before it counts again; null: only the expiry or turning critical.",
      }),
  })
  .strict();
export type AckBody = z.output<typeof ackBody>;

type Found = {
  id: string | number;
  environment_id: number;
  kind: string;
  subject: string;
  measure: number;
  severity: string;
  detail: string;
};

/** The finding, if the actor may see its environment (one they may not is one that does not exist). */
async function visible(db: Db, actor: Actor, id: number): Promise<Found> {
  const r = await db.execute<Found>(sql`SELECT id, environment_id, kind, subject, measure, severity, detail FROM risks WHERE id = ${id}`);
  const f = r.rows[0];
  const sees = f && can(actor.access, 'viewer', f.environment_id);
  if (!f || !sees) throw new RiskError(404, `no risk #${String(id)} (it may have cleared)`);
  return f;
}

export async function acknowledgeRisk(db: Db, actor: Actor, id: number, body: AckBody): Promise<void> {
  const f = await visible(db, actor, id);
  await demand(db, actor.access, 'operator', 'Acknowledging a risk', [f.environment_id]);
  await db.transaction(async (tx) => {
    const r = await tx.execute(sql`
      UPDATE risks SET ack_by = ${actor.username}, ack_reason = ${body.reason}, ack_until = now() + ${body.hours} * interval '1 hour',
        ack_measure = measure, ack_step = ${body.step ?? null}, ack_severity = severity, counted = false
      WHERE id = ${id} RETURNING id`);
    if (!r.rows.length) throw new RiskError(404, `no risk #${String(id)} (it cleared)`);
    await writeAudit(tx, {
      user: actor,
      remoteAddr: actor.remoteAddr,
      action: 'risk.acknowledged',
      objectType: 'risks',
      objectId: String(id),
      objectLabel: `${f.kind} ${f.subject}`.trim(),
      environmentId: f.environment_id,
      changes: {
        reason: [null, body.reason],
        hours: [null, body.hours],
        step: [null, body.step ?? null],
        measure: [null, f.measure],
        severity: [null, f.severity],
      },
    });
  });
}

export async function unacknowledgeRisk(db: Db, actor: Actor, id: number): Promise<void> {
  const f = await visible(db, actor, id);
  await demand(db, actor.access, 'operator', 'Taking back an acknowledgement', [f.environment_id]);
  await db.transaction(async (tx) => {
    const r = await tx.execute<{ by: string | null }>(sql`
      UPDATE risks r SET ack_by = NULL, ack_reason = NULL, ack_until = NULL, ack_measure = NULL, ack_step = NULL, ack_severity = NULL, counted = true
      FROM (SELECT ack_by FROM risks WHERE id = ${id} FOR UPDATE) old WHERE r.id = ${id} AND old.ack_by IS NOT NULL RETURNING old.ack_by AS by`);
    // Nothing to take back: said, and nothing audited.
    if (!r.rows.length) throw new RiskError(409, `risk #${String(id)} is not acknowledged`);
    await writeAudit(tx, {
      user: actor,
      remoteAddr: actor.remoteAddr,
      action: 'risk.unacknowledged',
      objectType: 'risks',
      objectId: String(id),
      objectLabel: `${f.kind} ${f.subject}`.trim(),
      environmentId: f.environment_id,
      changes: { acknowledgedBy: [r.rows[0]?.by ?? null, null] },
    });
  });
}
