// Someone hears about it: webhooks, global or for one rule, told when a rule's run fails, is skipped,
// refused or missed (and, if asked, succeeds), and when any operation fails. A JSON POST with a
// Slack-compatible `text`, signed with HMAC-SHA256 over "<timestamp>.<body>" (X-Pgherd-Signature:
// sha256=<hex>), tried again with backoff, every attempt recorded.
import { sqlFile } from '@/lib/adapters/sql/sql-file';
import { createHmac, randomBytes } from 'node:crypto';
import { and, asc, desc, eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '@/db/client';
import { rules, webhookDeliveries, webhooks } from '@/db/schema';
import { writeAudit } from '@/lib/engine/write-audit';
import { demand } from '@/lib/engine/access';
import { errorText } from '@/lib/engine/errors';
import { idNumber } from '@/lib/adapters/validation/ids';
import { isPlainName, NO_TRICKS } from '@/lib/adapters/validation/text';
import { getRule, mayManage, mayRead, RuleError, type RuleRow } from './rules';
import type { Actor } from '@/lib/engine/access';
import { postGuarded, urlProblem, WebhookAddressError } from './webhook-address';
import { setting } from '@/lib/settings/settings';
import { linkUrl, signLink } from '@/lib/features/operations/approval-links';
import { slackEscaped } from '@/lib/engine/approval-policies';

export const NOTIFICATIONS_CHANNEL = 'pgherd_notifications';

export const WEBHOOK_EVENTS = [
  'rule.run.failed',
  'rule.run.skipped',
  'rule.run.refused',
  'rule.run.missed',
  'rule.run.succeeded',
  'operation.failed',
  'herd.two_primaries',
  'herd.no_primary',
  'herd.restore_unverified',
  'herd.auto_replaced',
  'risk.raised',
  'risk.cleared',
  'approval.requested',
  'approval.granted',
  'approval.denied',
  'approval.break_glass',
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];
/** An operation awaiting approval, approved or denied (docs/approvals.md): a global webhook's. */
const APPROVAL_EVENTS = ['approval.requested', 'approval.granted', 'approval.denied', 'approval.break_glass'] as const;
type ApprovalEvent = (typeof APPROVAL_EVENTS)[number];
const isApprovalEvent = (kind: string): kind is ApprovalEvent => (APPROVAL_EVENTS as readonly string[]).includes(kind);
export const WEBHOOK_FORMATS = ['pgherd', 'slack'] as const;
const DEFAULT_EVENTS: WebhookEvent[] = ['rule.run.failed', 'rule.run.skipped', 'rule.run.refused', 'rule.run.missed'];
/** Events of the whole fleet, not of one rule's runs: a global webhook's only. */
const GLOBAL_EVENTS: WebhookEvent[] = [
  'operation.failed',
  'herd.two_primaries',
  'herd.no_primary',
  'herd.restore_unverified',
  'herd.auto_replaced',
  'risk.raised',
  'risk.cleared',
  ...APPROVAL_EVENTS,
];
/** The events that name a herd and what was seen there (no rule, no run): told to every global webhook that asks. */
const HERD_EVENTS = [
  'herd.two_primaries',
  'herd.no_primary',
  'herd.restore_unverified',
  'herd.auto_replaced',
  'risk.raised',
  'risk.cleared',
] as const;
type HerdEvent = (typeof HERD_EVENTS)[number];
const isHerdEvent = (kind: string): kind is HerdEvent => (HERD_EVENTS as readonly string[]).includes(kind);

const HERD_WORDS: Record<HerdEvent, string> = {
  'herd.two_primaries': 'has two primaries',
  'herd.no_primary': 'has no primary',
  'herd.restore_unverified': 'is no longer proven restorable',
  'herd.auto_replaced': 'replaces a member that is gone, by itself',
  'risk.raised': 'has a risk',
  'risk.cleared': 'no longer has a risk',
};

/** At most this many attempts a delivery; the waits between them grow threefold from the first. */
export const MAX_ATTEMPTS = 6;
const firstWaitMs = () => setting('PGHERD_WEBHOOK_RETRY_MS');
const TIMEOUT_MS = 10_000;

export const webhookBody = z
  .object({
    name: z.string().trim().min(1).max(100).refine(isPlainName, NO_TRICKS),
    url: z
      .string()
      .max(2000)
      .refine((u) => {
        try {
          const p = new URL(u);
          return (p.protocol === 'https:' || p.protocol === 'http:') && !p.username && !p.password;
        } catch {
          return false;
        }
      }, 'an http(s) URL without credentials in it'),
    /** Null or absent: global (every rule, every operation). */
    ruleId: idNumber('ruleId').nullable().optional(),
    events: z
      .array(z.enum(WEBHOOK_EVENTS))
      .min(1)
      .max(WEBHOOK_EVENTS.length)
      .transform((e) => [...new Set(e)])
      .optional(),
    enabled: z.boolean().default(true),
    /** pgherd's JSON (with a Slack-compatible `text`), or Slack's Block Kit (`text` and `blocks`). */
    format: z.enum(WEBHOOK_FORMATS).default('pgherd'),
  })
  .strict()
  .refine((b) => !(b.ruleId && b.events?.some((e) => GLOBAL_EVENTS.includes(e))), {
    message: `${GLOBAL_EVENTS.join(' and ')} are a global webhook's events (any operation, any herd)`,
    path: ['events'],
  });

export type WebhookBody = z.output<typeof webhookBody>;

/**
 * A global webhook is a global admin's; a rule's, whoever may manage the rule. A rule the actor may not
 * read is answered as one that does not exist (its name, or that it exists, says nothing).
 */
async function demandFor(db: Db, actor: Actor, ruleId: number | null): Promise<RuleRow | null> {
  if (ruleId === null) {
    await demand(db, actor.access, 'admin', 'A global webhook', [null]);
    return null;
  }
  const rule = await getRule(db, ruleId).catch(() => null);
  if (!rule || !mayRead(actor.access, rule))
    throw new RuleError(400, 'invalid webhook', [{ path: 'ruleId', message: `no rule #${String(ruleId)}` }]);
  if (!mayManage(actor, rule))
    throw new RuleError(403, `only the owner of rule ${JSON.stringify(rule.name)} or a global admin may add its webhooks`);
  return rule;
}

/** Makes one; its secret is in the answer, this once. */
export async function createWebhook(db: Db, actor: Actor, b: WebhookBody) {
  const ruleId = b.ruleId ?? null;
  const rule = await demandFor(db, actor, ruleId);
  const where = await urlProblem(new URL(b.url));
  if (where) throw new RuleError(400, 'invalid webhook', [{ path: 'url', message: where }]);
  const secret = randomBytes(32).toString('hex');
  return db.transaction(async (tx) => {
    const [row] = await tx
      .insert(webhooks)
      .values({
        name: b.name,
        url: b.url,
        secret,
        ruleId,
        events: b.events ?? (ruleId ? DEFAULT_EVENTS : [...DEFAULT_EVENTS, ...GLOBAL_EVENTS]),
        enabled: b.enabled,
        format: b.format,
        // Made for the rule as it is owned now (by its owner, or by a global admin for them).
        keeperId: rule?.ownerId ?? null,
        createdBy: actor.username,
      })
      .returning();
    if (!row) throw new Error('the database returned no row');
    await writeAudit(tx, {
      user: actor,
      remoteAddr: actor.remoteAddr,
      action: 'webhook.created',
      objectType: 'webhooks',
      objectId: String(row.id),
      objectLabel: row.name,
      // The URL's host only: its path or query may carry a token of the receiver's.
      changes: { host: [null, new URL(row.url).host], ruleId: [null, ruleId], events: [null, row.events.join(', ')] },
    });
    return row;
  });
}

/** Deletes one the actor may manage; any other is a 404, as one that does not exist. */
export async function deleteWebhook(db: Db, actor: Actor, id: number) {
  const w = await manageableWebhook(db, actor, id);
  await db.transaction(async (tx) => {
    await tx.delete(webhooks).where(eq(webhooks.id, id));
    await writeAudit(tx, {
      user: actor,
      remoteAddr: actor.remoteAddr,
      action: 'webhook.deleted',
      objectType: 'webhooks',
      objectId: String(id),
      objectLabel: w.name,
    });
  });
}

/** The webhooks `actor` may manage (a global admin: all; else those of rules they may manage), oldest first. */
export async function manageableWebhooks(db: Db, actor: Actor) {
  const all = await db.select().from(webhooks).orderBy(asc(webhooks.id));
  if (actor.access.superuser || actor.access.global === 'admin') return all;
  const owners = new Map((await db.select({ id: rules.id, ownerId: rules.ownerId }).from(rules)).map((r) => [r.id, r]));
  return all.filter((w) => w.ruleId !== null && mayManage(actor, owners.get(w.ruleId) ?? { ownerId: null }));
}

/** One webhook `actor` may manage, or a 404 (one they may not is not there for them). */
export async function manageableWebhook(db: Db, actor: Actor, id: number) {
  const [w] = await db.select().from(webhooks).where(eq(webhooks.id, id));
  const [rule] = w?.ruleId ? await db.select({ ownerId: rules.ownerId }).from(rules).where(eq(rules.id, w.ruleId)) : [];
  const admin = actor.access.superuser || actor.access.global === 'admin';
  if (!w || !(admin || (rule && mayManage(actor, rule)))) throw new RuleError(404, `no webhook #${String(id)}`);
  return w;
}

/** A webhook's last deliveries, newest first, with each one's last answer. */
export async function deliveriesOf(db: Db, webhookId: number, limit = 100) {
  const rows = await db
    .select()
    .from(webhookDeliveries)
    .where(eq(webhookDeliveries.webhookId, webhookId))
    .orderBy(desc(webhookDeliveries.id))
    .limit(limit);
  return rows.map((d) => ({
    id: d.id,
    event: d.event,
    status: d.status,
    attempts: d.attempts,
    responseStatus: d.responseStatus,
    error: d.error,
    createdAt: d.createdAt,
    deliveredAt: d.deliveredAt,
    nextAttemptAt: d.status === 'pending' ? d.nextAttemptAt : null,
    payload: d.payload,
  }));
}

/** A webhook as shown: never its secret. */
export const webhookView = (w: typeof webhooks.$inferSelect) => ({
  id: w.id,
  name: w.name,
  url: w.url,
  ruleId: w.ruleId,
  events: w.events,
  enabled: w.enabled,
  format: w.format,
  /** The rule owner it is delivered for: none, or another than the rule's owner now, and it is held. */
  keeperId: w.keeperId,
  createdBy: w.createdBy,
  createdAt: w.createdAt,
});

/** The signature a receiver checks: HMAC-SHA256 of "<timestamp>.<body>" with the webhook's secret. */
export const signature = (secret: string, timestamp: string, body: string) =>
  `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;

type EventRow = {
  id: number;
  kind: 'operation.finished' | 'run.ended' | HerdEvent | ApprovalEvent;
  herd_id: number | null;
  herd_name: string | null;
  herd_environment: string | null;
  detail: string | null;
  op_id: number | null;
  op_action: string | null;
  op_status: string | null;
  op_requested_by: string | null;
  op_rule_id: number | null;
  run_id: number | null;
  run_kind: string | null;
  run_status: string | null;
  run_reason: string | null;
  run_due_at: Date | null;
  rule_id: number | null;
  rule_name: string | null;
  rule_owner_id: number | null;
  op_digest: string | null;
  op_expires_at: Date | null;
  op_required: number | null;
  op_environments: string[] | null;
  op_targets: number | null;
};

/** What an event is called, for a webhook's list: a run's end in words, or an operation's failure. */
function eventsOf(e: EventRow): { ruleEvent: WebhookEvent | null; operationFailed: boolean } {
  // Preempted (stopped for an evacuation, a DR failover): not done, and someone should know.
  const failed = e.op_status === 'failed' || e.op_status === 'partial' || e.op_status === 'preempted';
  const runStatus = e.run_status;
  let ruleEvent: WebhookEvent | null = null;
  if (e.run_id !== null) {
    if (e.kind === 'operation.finished')
      ruleEvent = failed ? 'rule.run.failed' : e.op_status === 'succeeded' ? 'rule.run.succeeded' : 'rule.run.failed';
    else if (runStatus === 'skipped' || runStatus === 'nothing') ruleEvent = 'rule.run.skipped';
    else if (runStatus === 'refused') ruleEvent = 'rule.run.refused';
    else if (runStatus === 'missed') ruleEvent = 'rule.run.missed';
    else if (runStatus === 'error') ruleEvent = 'rule.run.failed';
  }
  return { ruleEvent, operationFailed: e.kind === 'operation.finished' && failed };
}

/** A delivery's body as pgherd makes it (before a format reshapes it). */
type Payload = { event: WebhookEvent; at: string; text: string } & Record<string, unknown>;

/**
 * An approval's message. approval.requested carries the signed Approve and Deny links (they open the
 * operation's page for a person signed in; the person decides there): valid while the request is.
 */
async function approvalPayload(db: Pick<Db, 'execute'>, event: ApprovalEvent, e: EventRow, consoleUrl: string): Promise<Payload> {
  const id = e.op_id ?? 0;
  const url = `${consoleUrl}/operations/${String(id)}`;
  const raw = (e.detail ? JSON.parse(e.detail) : {}) as { by?: string; comment?: string };
  // A person's words go to chat as words: Slack's <...> links and mentions in them are escaped.
  const detail = {
    by: raw.by === undefined ? undefined : slackEscaped(raw.by),
    comment: raw.comment === undefined ? undefined : slackEscaped(raw.comment),
  };
  const where = (e.op_environments ?? []).join(', ') || 'its environments';
  const what = `${e.op_action ?? '?'} of ${String(e.op_targets ?? 0)} target${e.op_targets === 1 ? '' : 's'} in ${where}`;
  const operation = { id, action: e.op_action, status: e.op_status, requestedBy: e.op_requested_by, url };
  if (event === 'approval.break_glass')
    return {
      event,
      at: new Date().toISOString(),
      text: `pgherd: BREAK GLASS: ${detail.by ?? '?'} ran operation #${String(id)} (${what}) without the approval it needs: ${detail.comment ?? ''}`,
      operation,
      approval: { breakGlass: true, by: detail.by ?? null, reason: detail.comment ?? '' },
    };
  if (event !== 'approval.requested') {
    const verb = event === 'approval.granted' ? 'approved' : 'denied';
    return {
      event,
      at: new Date().toISOString(),
      text: `pgherd: ${detail.by ?? '?'} ${verb} operation #${String(id)} (${what}, asked by ${e.op_requested_by ?? '?'})${detail.comment ? `: ${detail.comment}` : ''}`,
      operation,
      approval: { by: detail.by ?? null, comment: detail.comment ?? '' },
    };
  }
  const expires = e.op_expires_at ? new Date(e.op_expires_at) : new Date(Date.now() + 3_600_000);
  const links =
    e.op_digest && e.op_status === 'awaiting_approval'
      ? {
          approveUrl: linkUrl(consoleUrl, await signLink(db, { id, digest: e.op_digest }, 'approved', expires)),
          denyUrl: linkUrl(consoleUrl, await signLink(db, { id, digest: e.op_digest }, 'denied', expires)),
        }
      : { approveUrl: null, denyUrl: null };
  return {
    event,
    at: new Date().toISOString(),
    text: `pgherd: ${e.op_requested_by ?? '?'} asks for approval of operation #${String(id)}: ${what}; ${String(e.op_required ?? 1)} approval${e.op_required === 1 ? '' : 's'} needed by ${expires.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    operation,
    approval: { required: e.op_required, expiresAt: expires.toISOString(), ...links },
  };
}

/**
 * Slack's Block Kit: the message as a section, and for an approval request its Approve and Deny links as
 * buttons (a button only opens the page: the person decides there, signed in as themselves).
 */
export function slackBody(p: Payload): Record<string, unknown> {
  // An approval's text has a person's words escaped already (approvalPayload); the others, escaped here.
  const text = p.event.startsWith('approval.') ? p.text : slackEscaped(p.text);
  const op = p.operation as { url?: string } | null | undefined;
  const approval = p.approval as { approveUrl?: string | null; denyUrl?: string | null } | undefined;
  const button = (label: string, url: string, style?: 'primary' | 'danger') => ({
    type: 'button',
    text: { type: 'plain_text', text: label },
    url,
    ...(style ? { style } : {}),
  });
  const buttons = [
    ...(approval?.approveUrl ? [button('Approve…', approval.approveUrl, 'primary')] : []),
    ...(approval?.denyUrl ? [button('Deny…', approval.denyUrl, 'danger')] : []),
    ...(op?.url ? [button('Open in pgherd', op.url)] : []),
  ];
  return {
    text: p.text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text } },
      ...(buttons.length ? [{ type: 'actions', elements: buttons }] : []),
      { type: 'context', elements: [{ type: 'mrkdwn', text: `${p.event} · ${p.at}` }] },
    ],
    event: p.event,
  };
}

function payloadOf(event: WebhookEvent, e: EventRow, consoleUrl: string): Payload {
  const op =
    e.op_id !== null
      ? {
          id: e.op_id,
          action: e.op_action,
          status: e.op_status,
          requestedBy: e.op_requested_by,
          url: `${consoleUrl}/operations/${String(e.op_id)}`,
        }
      : null;
  const rule = e.rule_id !== null ? { id: e.rule_id, name: e.rule_name } : null;
  const run =
    e.run_id !== null ? { id: e.run_id, kind: e.run_kind, status: e.run_status, reason: e.run_reason, dueAt: e.run_due_at } : null;
  if (isHerdEvent(event)) {
    const herd = { id: e.herd_id, name: e.herd_name, environment: e.herd_environment };
    const where = `${e.herd_environment ?? '?'}/${e.herd_name ?? `#${String(e.herd_id)}`}`;
    return {
      event,
      at: new Date().toISOString(),
      text: `pgherd: herd ${where} ${HERD_WORDS[event]}: ${e.detail ?? ''}`,
      herd,
      rule,
      run,
      operation: op,
    };
  }
  const what =
    event === 'operation.failed'
      ? `operation #${String(e.op_id)} (${e.op_action ?? ''}, requested by ${e.op_requested_by ?? ''}) ${e.op_status ?? ''}`
      : `rule ${JSON.stringify(e.rule_name)}: ${event.replace('rule.run.', 'run ')}${e.run_reason ? ` (${e.run_reason})` : op ? ` (operation #${String(op.id)} ${op.status ?? ''})` : ''}`;
  return { event, at: new Date().toISOString(), text: `pgherd: ${what}`, rule, run, operation: op };
}

/**
 * The outbox turned into deliveries, a batch at a time (several workers share it: SKIP LOCKED); how
 * many events it took. An operation a rule's run made is told as that run's end (and, to global
 * webhooks, as a failure).
 */
export async function processEvents(
  db: Db,
  consoleUrl = setting('PGHERD_CONSOLE_URL') ?? '',
  /** Told the operations that finished, before their events are gone (so, at least once: it must be idempotent). */
  onFinished?: (operationIds: number[]) => Promise<void>,
): Promise<number> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.execute<EventRow>(sql.raw(sqlFile('lib/features/rules/notification-events.sql')));
    if (!rows.length) return 0;
    const hooks = await tx.select().from(webhooks).where(eq(webhooks.enabled, true));
    const out: (typeof webhookDeliveries.$inferInsert)[] = [];
    const push = (h: (typeof hooks)[number], event: WebhookEvent, payload: Payload) =>
      out.push({ webhookId: h.id, event, payload: h.format === 'slack' ? slackBody(payload) : payload });
    for (const e of rows) {
      if (isApprovalEvent(e.kind)) {
        const kind = e.kind;
        const wanted = hooks.filter((h) => h.ruleId === null && h.events.includes(kind));
        if (!wanted.length) continue;
        // One pair of links an event, the same for every channel told (a link names no approver).
        const payload = await approvalPayload(tx, kind, e, consoleUrl);
        for (const h of wanted) push(h, kind, payload);
        continue;
      }
      // Told to every global webhook that asks for it, whoever's operation saw it.
      if (isHerdEvent(e.kind)) {
        for (const h of hooks) if (h.ruleId === null && h.events.includes(e.kind)) push(h, e.kind, payloadOf(e.kind, e, consoleUrl));
        continue;
      }
      const { ruleEvent, operationFailed } = eventsOf(e);
      for (const h of hooks) {
        const mine = h.ruleId === null || (h.ruleId === e.rule_id && kept(h, e));
        const event =
          ruleEvent && mine && h.events.includes(ruleEvent)
            ? ruleEvent
            : operationFailed && h.ruleId === null && h.events.includes('operation.failed')
              ? 'operation.failed'
              : null;
        if (event) push(h, event, payloadOf(event, e, consoleUrl));
      }
    }
    if (out.length) await tx.insert(webhookDeliveries).values(out);
    const finished = rows.filter((e) => e.kind === 'operation.finished' && e.op_id !== null).map((e) => e.op_id as number);
    if (onFinished && finished.length) await onFinished(finished);
    await tx.execute(sql`DELETE FROM notification_events WHERE id = ANY(${sql.param(rows.map((r) => r.id))}::bigint[])`);
    return rows.length;
  });
}

/**
 * A rule's webhook is told of its runs only while the rule's owner is who it was made or kept for: a
 * rule that changed hands does not keep telling the former owner's address about the new owner's runs.
 */
const kept = (h: { keeperId: number | null }, e: { rule_owner_id: number | null }) => h.keeperId !== null && h.keeperId === e.rule_owner_id;

/**
 * The rule's owner keeps its webhook: it is delivered again (it stopped when the rule changed owner).
 * Only the owner: a global admin who would keep them saves the rule, and so owns it.
 */
export async function keepWebhook(db: Db, actor: Actor, id: number): Promise<void> {
  const w = await manageableWebhook(db, actor, id);
  const rule = w.ruleId === null ? null : await getRule(db, w.ruleId);
  if (!rule) throw new RuleError(400, `webhook #${String(id)} is global: it is not kept by a rule's owner`);
  if (actor.id === null || rule.ownerId !== actor.id)
    throw new RuleError(403, `only the owner of rule ${JSON.stringify(rule.name)} (${rule.ownerName}) may keep its webhooks`);
  if (w.keeperId === actor.id) return;
  await db.transaction(async (tx) => {
    await tx.update(webhooks).set({ keeperId: actor.id }).where(eq(webhooks.id, id));
    await writeAudit(tx, {
      user: actor,
      remoteAddr: actor.remoteAddr,
      action: 'webhook.kept',
      objectType: 'webhooks',
      objectId: String(id),
      objectLabel: w.name,
      changes: { keeper: [w.keeperId, actor.id] },
    });
  });
}

/** POSTs the deliveries that are due, a few at a time; each attempt recorded, a failure tried again later. */
export async function deliverDue(db: Db, max = 20): Promise<number> {
  // Claimed by moving their next attempt on (a worker that dies mid-POST leaves them to be tried again then).
  const { rows } = await db.execute<{ id: number; attempts: number; event: string; payload: unknown; url: string; secret: string }>(sql`
    UPDATE webhook_deliveries d SET attempts = d.attempts + 1,
      next_attempt_at = now() + make_interval(secs => ${firstWaitMs() / 1000}::float8 * power(3, d.attempts))
    FROM webhooks w
    WHERE w.id = d.webhook_id AND d.id IN (
      SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT ${max} FOR UPDATE SKIP LOCKED)
    RETURNING d.id, d.attempts, d.event, d.payload, w.url, w.secret`);
  await Promise.all(
    rows.map(async (d) => {
      const body = JSON.stringify({ ...(d.payload as object), delivery: d.id });
      const timestamp = String(Math.floor(Date.now() / 1000));
      let status: number | null = null;
      let error: string | null = null;
      let refused = false;
      try {
        status = await postGuarded(
          new URL(d.url),
          {
            'content-type': 'application/json',
            'user-agent': 'pgherd-webhook',
            'x-pgherd-event': d.event,
            'x-pgherd-delivery': String(d.id),
            'x-pgherd-timestamp': timestamp,
            'x-pgherd-signature': signature(d.secret, timestamp, body),
          },
          body,
          TIMEOUT_MS,
        );
        if (status < 200 || status >= 300) error = `answered ${String(status)}`;
      } catch (err) {
        // An address webhooks may not reach is not tried again: nothing was sent, nothing will be.
        refused = err instanceof WebhookAddressError || (err as NodeJS.ErrnoException).code === 'EPGHERDBLOCKED';
        error = errorText(err);
      }
      const done = error === null;
      const last = !done && (refused || d.attempts >= MAX_ATTEMPTS);
      await db
        .update(webhookDeliveries)
        .set({
          responseStatus: status,
          error,
          ...(done ? { status: 'delivered' as const, deliveredAt: new Date() } : last ? { status: 'failed' as const } : {}),
        })
        .where(and(eq(webhookDeliveries.id, d.id), eq(webhookDeliveries.status, 'pending')));
    }),
  );
  return rows.length;
}

/** A run that ended without an operation (skipped, refused, missed, nothing, error): into the outbox. */
export async function runEnded(db: Pick<Db, 'execute'>, runId: number): Promise<void> {
  await notifyRunsEnded(db, [runId]);
}

/** Runs that ended without an operation, any number: into the outbox in one statement, one wake-up. */
export async function notifyRunsEnded(db: Pick<Db, 'execute'>, runIds: number[]): Promise<void> {
  if (!runIds.length) return;
  await db.execute(sql`INSERT INTO notification_events (kind, rule_run_id) SELECT 'run.ended', unnest(${sql.param(runIds)}::bigint[])`);
  await db.execute(sql`SELECT pg_notify(${NOTIFICATIONS_CHANNEL}, '')`);
}
