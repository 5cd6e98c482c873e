// Rules (and their runs), blackouts, maintenance windows and webhooks: what fires on a schedule, when
// it may not, and who hears of it.
import { z } from 'zod';
import { operationStatus, ruleRuns, rules, webhookDeliveries } from '@/db/schema';
import { blackoutBody } from '@/lib/features/rules/blackouts';
import { ruleBody } from '@/lib/features/rules/rule-body';
import { MAX_RULE_TARGETS } from '@/lib/features/rules/rules';
import { WEBHOOK_EVENTS, WEBHOOK_FORMATS, webhookBody } from '@/lib/features/rules/webhooks';
import { windowBody } from '@/lib/features/rules/maintenance-windows';
import { idText, MAX_BIG_ID } from '@/lib/adapters/validation/ids';
import { defineRoute, idParams } from './define';

const when = z.iso.datetime({ offset: true });
const json = z.record(z.string(), z.unknown());
const list = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item) });

// --- Rules -----------------------------------------------------------------------------------------

export const ruleResponse = z
  .object({
    id: z.number().int(),
    owner: z.string().meta({ description: "Its owner's user name: each fire is checked against the owner's roles." }),
    name: z.string(),
    description: z.string(),
    action: z.string(),
    params: json.meta({ description: "The action's parameters as validated (defaults filled in)." }),
    instanceIds: z.array(z.number().int()).optional().meta({ description: 'Its scope, when it names instances.' }),
    herdIds: z.array(z.number().int()).optional().meta({ description: 'Its scope, when it names herds.' }),
    filter: z
      .string()
      .optional()
      .meta({ description: "Its scope, when it is a changelist's filter (a query string), resolved at each fire." }),
    reverseOf: z
      .number()
      .int()
      .optional()
      .meta({ description: "On a reverse's companion rule: the rule whose targets it puts back (its scope)." }),
    schedule: json.meta({ description: 'As saved: { cron: [...], timezone } or { at }.' }),
    conditions: z.array(json).meta({ description: 'As saved: each checked per target when it fires.' }),
    logic: z.enum(rules.logic.enumValues),
    retry: json.nullable().meta({ description: 'As saved: { afterSeconds, times, jitterSeconds }, or null.' }),
    reverse: json
      .nullable()
      .optional()
      .meta({ description: "As saved: { schedule }, or null; absent on a reverse's companion rule (which is changed through its rule)." }),
    waves: json.nullable().meta({ description: 'As saved, or null: the waves its operations run in.' }),
    graceSeconds: z.number().int(),
    insideWindow: z.boolean(),
    enabled: z.boolean(),
    reverseRule: z
      .object({ id: z.number().int(), name: z.string() })
      .nullable()
      .meta({ description: 'The companion rule that puts back what this one changes; or, on a companion, null.' }),
    nextFires: z.array(when).meta({ description: 'Its next five fires (none when it is disabled or its schedule does not read).' }),
    problem: z.string().nullable().meta({ description: 'Why its stored schedule does not read (it never fires); null when it does.' }),
    lastRun: z
      .object({
        id: z.number().int(),
        at: when,
        status: z.enum(ruleRuns.status.enumValues),
        reason: z.string().nullable(),
        operationId: z.number().int().nullable(),
      })
      .nullable(),
    approval: z
      .object({
        approved: z.boolean().meta({ description: 'Approved as it is saved: its fires run.' }),
        approvals: z.number().int().meta({ description: 'Approvals its shape now has.' }),
        required: z.number().int().meta({ description: 'Approvals it needs (the most any covering policy asks).' }),
        again: z.boolean().meta({ description: 'Approved before and changed since: its fires are skipped until approved again.' }),
        approvedBy: z.string().nullable(),
        approvedAt: when.nullable(),
      })
      .nullable()
      .meta({ description: 'Where an approval policy covers its action in its environments; null: none needed.' }),
    createdAt: when,
    updatedAt: when,
  })
  .meta({ id: 'Rule' });

export const ruleRunResponse = z
  .object({
    id: z.number().int(),
    kind: z
      .enum(ruleRuns.kind.enumValues)
      .meta({ description: 'What made it: the schedule, a person (run now), a retry, a catch-up, a reverse.' }),
    dueAt: when,
    firedAt: when,
    status: z.enum(ruleRuns.status.enumValues),
    outcome: z
      .union([z.enum(ruleRuns.status.enumValues).exclude(['started']), z.enum(operationStatus.enumValues)])
      .nullable()
      .meta({ description: "Its operation's status when it started one (null: the operation is gone); else its own status." }),
    reason: z.string().nullable(),
    operationId: z.number().int().nullable(),
    targets: z
      .array(
        z.object({
          id: z.number().int(),
          label: z.string(),
          skipped: z.string().optional().meta({ description: 'Why it was left out.' }),
          values: z.record(z.string(), z.number().nullable()).optional().meta({ description: 'What its conditions measured.' }),
          before: z.record(z.string(), z.string()).optional().meta({ description: 'What a reverse puts back.' }),
        }),
      )
      .meta({ description: 'Each target as the fire saw it.' }),
    requestedBy: z.string().nullable().meta({ description: 'Who asked (run now); null for the schedule.' }),
  })
  .meta({ id: 'RuleRun' });

export const listRulesRoute = defineRoute({
  method: 'get',
  path: '/api/v1/rules',
  tag: 'Rules',
  summary: 'List rules',
  description: 'The rules the caller may read, with their next fires and last runs.',
  auth: 'read',
  responses: { 200: { description: 'The rules, by name.', schema: list(ruleResponse) } },
  errors: { 400: 'It takes no query parameters.' },
});

const ruleErrors = {
  404: 'An instance or herd it names does not exist (details name them).',
  409: `A rule of that name exists (or of its reverse's name), or its filter matches more than ${MAX_RULE_TARGETS} targets.`,
};

export const createRuleRoute = defineRoute({
  method: 'post',
  path: '/api/v1/rules',
  tag: 'Rules',
  summary: 'Create a rule',
  description:
    "Whoever makes it owns it: each fire is checked against the owner's roles. Refused (400) when the action, its parameters, the scope or the schedule do not hold; 403 when the maker may not run the action on a target it names now; 409 for a name taken.",
  auth: 'operate',
  body: ruleBody,
  responses: { 201: { description: 'Made.', schema: ruleResponse, headers: { location: '/api/v1/rules/{id}' } } },
  errors: ruleErrors,
});

export const getRuleRoute = defineRoute({
  method: 'get',
  path: '/api/v1/rules/{id}',
  tag: 'Rules',
  summary: 'Get a rule',
  description: 'The rule, with its next fires and last run (one the caller may not read is not there for them).',
  auth: 'read',
  params: idParams,
  responses: { 200: { description: 'The rule.', schema: ruleResponse } },
  errors: { 404: 'No such rule.' },
});

export const updateRuleRoute = defineRoute({
  method: 'put',
  path: '/api/v1/rules/{id}',
  tag: 'Rules',
  summary: 'Change a rule',
  description: 'The whole rule, as for POST; its owner or a global admin; whoever saves it owns it from then on.',
  auth: 'operate',
  params: idParams,
  body: ruleBody,
  responses: { 200: { description: 'Saved.', schema: ruleResponse } },
  errors: {
    404: 'No such rule, or an instance or herd it names does not exist.',
    409: `${ruleErrors[409]} Or it is a reverse's companion rule (changed through its rule).`,
  },
});

export const deleteRuleRoute = defineRoute({
  method: 'delete',
  path: '/api/v1/rules/{id}',
  tag: 'Rules',
  summary: 'Delete a rule',
  description: 'Its owner or a global admin; its reverse goes with it.',
  auth: 'operate',
  params: idParams,
  responses: { 204: { description: 'Deleted.' } },
  errors: { 404: 'No such rule.', 409: "It is a reverse's companion rule (deleted with its rule)." },
});

export const runRuleRoute = defineRoute({
  method: 'post',
  path: '/api/v1/rules/{id}/run',
  tag: 'Rules',
  summary: 'Run a rule now',
  description:
    "Fire it now. A worker decides it as it would a scheduled fire, on the owner's roles; its owner or a global admin may ask. It takes no body: the rule says what runs.",
  auth: 'operate',
  params: idParams,
  noBody: true,
  responses: {
    202: {
      description: 'The run, waiting for a worker; its outcome is in the rule\u2019s runs.',
      schema: z.object({ runId: z.number().int(), status: z.literal('firing') }),
      headers: { location: '/api/v1/rules/{id}/runs' },
    },
  },
  errors: { 404: 'No such rule.' },
});

export const approveRuleRoute = defineRoute({
  method: 'post',
  path: '/api/v1/rules/{id}/approve',
  tag: 'Approvals',
  summary: 'Approve a rule',
  description:
    'Approves the rule as it is saved now, where an approval policy covers its action in its environments: its fires then run without asking, each operation naming the approval. Never its owner; a save that changes it needs approval again.',
  auth: 'operate',
  params: idParams,
  noBody: true,
  responses: { 200: { description: 'Approved.', schema: z.object({ id: z.number().int(), approved: z.literal(true) }) } },
  errors: {
    403: 'The approval policies do not let the caller approve it (its owner, a role or group missing).',
    404: 'No such rule.',
    409: 'No policy covers it, it is approved as it is already, or it was saved meanwhile.',
  },
});

export const ruleRunsQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(500).optional().meta({ description: 'How many (50 unless given).' }),
    before: idText('before', MAX_BIG_ID).optional().meta({ description: 'Runs older than this run id (the next page).' }),
  })
  .strict();

export const listRuleRunsRoute = defineRoute({
  method: 'get',
  path: '/api/v1/rules/{id}/runs',
  tag: 'Rules',
  summary: "List a rule's runs",
  description: "Its runs, newest first: when, what came of it, each target's fate, the operation.",
  auth: 'read',
  params: idParams,
  query: ruleRunsQuery,
  responses: { 200: { description: 'Its runs, newest first.', schema: list(ruleRunResponse) } },
  errors: { 404: 'No such rule.' },
});

// --- Blackouts -------------------------------------------------------------------------------------

export const blackoutResponse = z
  .object({
    id: z.number().int(),
    name: z.string(),
    reason: z.string(),
    startsAt: when,
    endsAt: when,
    timezone: z.string().meta({ description: 'The zone its dates were read in.' }),
    environmentId: z.number().int().nullable(),
    herdId: z.number().int().nullable().meta({ description: 'Null with environmentId null: every rule everywhere.' }),
    createdBy: z.string(),
  })
  .meta({ id: 'Blackout' });

export const blackoutsQuery = z
  .object({ past: z.enum(['0', '1']).optional().meta({ description: '1: every blackout, those over too.' }) })
  .strict();

export const listBlackoutsRoute = defineRoute({
  method: 'get',
  path: '/api/v1/blackouts',
  tag: 'Rules',
  summary: 'List blackouts',
  description: 'Those not over yet, soonest first (`?past=1`: every one).',
  auth: 'read',
  query: blackoutsQuery,
  responses: { 200: { description: 'The blackouts, soonest first.', schema: list(blackoutResponse) } },
});

export const createBlackoutRoute = defineRoute({
  method: 'post',
  path: '/api/v1/blackouts',
  tag: 'Rules',
  summary: 'Set a blackout',
  description:
    '{ name, reason?, dates: { from, to }, timezone } (whole days in that zone) or { name, startsAt, endsAt } (with offsets); environmentId or herdId, or neither for every rule. A global admin sets a global one; an admin of its environment, the others.',
  auth: 'operate',
  body: blackoutBody,
  responses: { 201: { description: 'Set.', schema: blackoutResponse, headers: { location: '/api/v1/blackouts/{id}' } } },
});

export const deleteBlackoutRoute = defineRoute({
  method: 'delete',
  path: '/api/v1/blackouts/{id}',
  tag: 'Rules',
  summary: 'Lift a blackout',
  description: 'Lifts it; who may set it may lift it.',
  auth: 'operate',
  params: idParams,
  responses: { 204: { description: 'Lifted.' } },
  errors: { 404: 'No such blackout.' },
});

// --- Maintenance windows ---------------------------------------------------------------------------

export const windowResponse = z
  .object({
    id: z.number().int(),
    name: z.string(),
    days: z.array(z.number().int()).meta({ description: 'The days it opens on: 0 (Sunday) to 6 (Saturday).' }),
    starts: z.string().meta({ description: 'When it opens (HH:MM), on the wall clock of its time zone.' }),
    durationMinutes: z.number().int(),
    timezone: z.string(),
    environmentId: z.number().int().nullable(),
    herdId: z.number().int().nullable().meta({ description: 'Null with environmentId null: every herd.' }),
    words: z.string().meta({ description: 'The window in words: "Tuesday, Thursday 02:00 for 120 min (Europe/Paris)".' }),
    createdBy: z.string(),
  })
  .meta({ id: 'MaintenanceWindow' });

export const listWindowsRoute = defineRoute({
  method: 'get',
  path: '/api/v1/maintenance-windows',
  tag: 'Rules',
  summary: 'List maintenance windows',
  description: 'Every window, oldest first.',
  auth: 'read',
  responses: { 200: { description: 'The windows, oldest first.', schema: list(windowResponse) } },
});

export const createWindowRoute = defineRoute({
  method: 'post',
  path: '/api/v1/maintenance-windows',
  tag: 'Rules',
  summary: 'Set a maintenance window',
  description:
    '{ name, days: [0-6], starts: "HH:MM", durationMinutes, timezone, environmentId? | herdId? } (neither: every herd). A global admin sets a global one; an admin of its environment, the others.',
  auth: 'operate',
  body: windowBody,
  responses: {
    201: { description: 'Set.', schema: windowResponse, headers: { location: '/api/v1/maintenance-windows/{id}' } },
  },
});

export const deleteWindowRoute = defineRoute({
  method: 'delete',
  path: '/api/v1/maintenance-windows/{id}',
  tag: 'Rules',
  summary: 'Remove a maintenance window',
  description: 'Removes it; who may set it may remove it.',
  auth: 'operate',
  params: idParams,
  responses: { 204: { description: 'Removed.' } },
  errors: { 404: 'No such maintenance window.' },
});

// --- Webhooks --------------------------------------------------------------------------------------

const webhookShape = {
  id: z.number().int(),
  name: z.string(),
  url: z.string(),
  ruleId: z
    .number()
    .int()
    .nullable()
    .meta({ description: "The rule whose runs it hears of; null: every rule's runs and every operation." }),
  events: z.array(z.enum(WEBHOOK_EVENTS)),
  enabled: z.boolean(),
  format: z
    .enum(WEBHOOK_FORMATS)
    .meta({ description: "pgherd's JSON (with a Slack-compatible text), or Slack's Block Kit (text and blocks)." }),
  keeperId: z.number().int().nullable().meta({
    description:
      "The user it is delivered for: a rule's webhook is delivered only while this is the rule's owner (another owner keeps it with POST /api/v1/webhooks/{id}/keep).",
  }),
  createdBy: z.string(),
  createdAt: when,
};

export const webhookResponse = z.object(webhookShape).meta({ id: 'Webhook' });

export const webhookDeliveryResponse = z
  .object({
    id: z.number().int(),
    event: z.enum(WEBHOOK_EVENTS),
    status: z.enum(webhookDeliveries.status.enumValues),
    attempts: z.number().int(),
    responseStatus: z.number().int().nullable().meta({ description: "The receiver's HTTP status at the last attempt." }),
    error: z.string().nullable().meta({ description: 'Why the last attempt failed.' }),
    createdAt: when,
    deliveredAt: when.nullable(),
    nextAttemptAt: when.nullable().meta({ description: 'When it is tried again (pending ones only).' }),
    payload: json.meta({ description: 'What is posted: { event, at, text, rule, run, operation } (the delivery id is added when sent).' }),
  })
  .meta({ id: 'WebhookDelivery' });

export const listWebhooksRoute = defineRoute({
  method: 'get',
  path: '/api/v1/webhooks',
  tag: 'Webhooks',
  summary: 'List webhooks',
  description: 'The webhooks you may manage (a global admin: all), never their secrets.',
  auth: 'read',
  responses: { 200: { description: 'The webhooks, oldest first.', schema: list(webhookResponse) } },
  errors: { 400: 'It takes no query parameters.' },
});

export const createWebhookRoute = defineRoute({
  method: 'post',
  path: '/api/v1/webhooks',
  tag: 'Webhooks',
  summary: 'Create a webhook',
  description:
    '{ name, url, ruleId?, events?, enabled?, format? }. Answers with the webhook and its `secret`, shown this once: receivers check X-Pgherd-Signature with it.',
  auth: 'operate',
  body: webhookBody,
  responses: {
    201: {
      description: 'Made.',
      schema: z
        .object({
          ...webhookShape,
          secret: z.string().meta({ description: 'The HMAC-SHA256 key of its signatures: shown this once.' }),
        })
        .meta({ id: 'NewWebhook' }),
      headers: { location: '/api/v1/webhooks/{id}' },
    },
  },
});

export const deleteWebhookRoute = defineRoute({
  method: 'delete',
  path: '/api/v1/webhooks/{id}',
  tag: 'Webhooks',
  summary: 'Delete a webhook',
  description: 'Who may make it may delete it.',
  auth: 'operate',
  params: idParams,
  responses: { 204: { description: 'Deleted.' } },
  errors: { 404: 'No such webhook (or one you may not manage).' },
});

export const keepWebhookRoute = defineRoute({
  method: 'post',
  path: '/api/v1/webhooks/{id}/keep',
  tag: 'Webhooks',
  summary: "Keep a rule's webhook after the rule changed owner",
  description:
    "A rule's webhook is delivered only while the rule's owner is the one it was made (or last kept) for; the new owner keeps it here.",
  auth: 'operate',
  params: idParams,
  responses: { 204: { description: 'Kept: delivered again.' } },
  errors: {
    400: 'A global webhook (kept by no rule owner).',
    403: "Only the rule's owner may keep it.",
    404: 'No such webhook (or one you may not manage).',
  },
});

export const listDeliveriesRoute = defineRoute({
  method: 'get',
  path: '/api/v1/webhooks/{id}/deliveries',
  tag: 'Webhooks',
  summary: "List a webhook's deliveries",
  description: "Its last 100 deliveries, newest first, with each attempt's answer.",
  auth: 'read',
  params: idParams,
  responses: { 200: { description: 'Its deliveries, newest first.', schema: list(webhookDeliveryResponse) } },
  errors: { 404: 'No such webhook (or one you may not manage).' },
});
