// Operations: plan (what would happen, and its digest), submit (the digest confirms that plan), follow,
// pause, resume, abort.
import { z } from 'zod';
import { operationStatus, stepStatus } from '@/db/schema';
import { decisionBody, IDEMPOTENCY_KEY, planBody, submitBody } from '@/lib/engine/operation-schemas';
import { bigIdParams, defineRoute } from './define';

const when = z.iso.datetime({ offset: true });

const fact = z.object({ label: z.string(), value: z.string() });
const perHour = z.object({ nowPerHour: z.number().nullable(), afterPerHour: z.number().nullable() });

export const plannedTarget = z
  .object({
    instanceId: z.number().int().nullable().meta({ description: 'The instance (instance actions); null for herd actions.' }),
    herdId: z.number().int(),
    label: z.string(),
    environment: z.string(),
    herd: z.string(),
    steps: z.array(z.string()).meta({ description: 'What will happen, in words, step by step.' }),
    refused: z.string().nullable().meta({ description: 'Why this target is refused (nothing runs for it); null when it runs.' }),
    warnings: z.array(z.string()),
    facts: z.array(fact).meta({ description: 'What the plan found (a failover: the old primary, the candidate, its lag).' }),
    cost: perHour.optional().meta({ description: 'What it costs an hour now and after (a resize).' }),
    wave: z.number().int().nullable().optional().meta({ description: 'Its wave, when the plan asked for waves.' }),
  })
  .meta({ id: 'PlannedTarget' });

export const planResponse = z
  .object({
    action: z.string(),
    params: z.record(z.string(), z.unknown()).meta({ description: "The action's parameters as validated (defaults filled in)." }),
    digest: z
      .string()
      .regex(/^[0-9a-f]{32}$/)
      .meta({ description: 'Submit it back to confirm exactly this plan.' }),
    confirm: z
      .string()
      .nullable()
      .meta({ description: "What to send as `confirm`: the environment's name, or the number of targets; null: nothing." }),
    targets: z.array(plannedTarget),
    cost: z.object({ nowPerHour: z.number(), afterPerHour: z.number(), targets: z.number().int(), unpriced: z.number().int() }).optional(),
    waves: z
      .object({
        spec: z.record(z.string(), z.unknown()).meta({ description: 'The waves asked for, with their defaults filled in.' }),
        summary: z.string(),
        waves: z.array(
          z.object({
            wave: z.number().int(),
            targets: z.array(
              z.object({ instanceId: z.number().int().nullable(), herdId: z.number().int(), label: z.string(), site: z.string() }),
            ),
          }),
        ),
      })
      .optional(),
    deprecated: z.string().optional().meta({
      description:
        'Set when `action` is a deprecated name (rds-reboot, rds-add-replica): what it is now. The answer also has a Deprecation header.',
    }),
  })
  .meta({ id: 'Plan' });

export const planOperationRoute = defineRoute({
  method: 'post',
  path: '/api/v1/operations/plan',
  tag: 'Operations',
  summary: 'Plan an operation',
  description:
    'What the action would do to each target, step by step, and the digest that confirms this plan. Nothing runs. Refused targets say why; wrong targets or parameters are a 400.',
  auth: 'operate',
  body: planBody,
  responses: { 200: { description: 'The plan.', schema: planResponse } },
  errors: { 404: 'An instance or herd named does not exist (details name them).' },
});

export const submitOperationRoute = defineRoute({
  method: 'post',
  path: '/api/v1/operations',
  tag: 'Operations',
  summary: 'Submit an operation',
  description:
    'Runs the plan the digest confirms. A plan that no longer holds (the inventory moved) is a 409 whose details give the new digest. The same idempotency key (body or header) enqueues once.',
  auth: 'operate',
  body: submitBody,
  headers: z.object({
    'Idempotency-Key': z
      .string()
      .regex(IDEMPOTENCY_KEY)
      .optional()
      .meta({ description: "As the body's idempotencyKey (both given: they must agree)." }),
  }),
  responses: {
    202: {
      description: 'Accepted: the workers run it (or, awaiting approval, once it is approved). Follow it at Location.',
      schema: z.object({
        id: z.number().int(),
        duplicate: z.boolean().meta({ description: 'True when this key was submitted before.' }),
        status: z.enum(operationStatus.enumValues).meta({
          description:
            'queued; or awaiting_approval where an approval policy covers the action in an environment of its targets: nothing runs until other people approve it (POST /api/v1/operations/{id}/approve).',
        }),
        deprecated: z.string().optional().meta({ description: 'Set when `action` is a deprecated name: what it is now.' }),
      }),
      headers: { location: '/api/v1/operations/{id}' },
    },
  },
  errors: { 409: 'The plan no longer holds (details.digest: the new one), or the key was used for another submit.' },
});

const step = z.object({
  name: z.string(),
  status: z.enum(stepStatus.enumValues),
  command: z.string(),
  exitCode: z.number().int().nullable(),
  output: z.string().meta({ description: 'The end of what the step printed (stdout, then stderr).' }),
  startedAt: when,
  finishedAt: when.nullable(),
});

const approvalSchema = z
  .object({
    required: z.number().int().meta({ description: 'How many people other than the requester must approve it.' }),
    expiresAt: when.nullable().meta({ description: 'Not approved by then, it ends expired.' }),
    approvers: z.string().meta({ description: 'Who may approve it, in words.' }),
    decisions: z.array(
      z.object({
        username: z.string(),
        decision: z.enum(['approved', 'denied']),
        comment: z.string(),
        via: z.string(),
        at: when,
      }),
    ),
    viewerRefusal: z.string().nullable().meta({ description: 'Why the caller may not decide on it; null: they may.' }),
    endedReason: z.string().nullable().meta({ description: 'How it ended without running (denied, expired, its plan changed).' }),
    breakGlassReason: z.string().nullable(),
  })
  .meta({ id: 'Approval' });

export const operationResponse = z
  .object({
    id: z.number().int(),
    action: z.string(),
    params: z.record(z.string(), z.unknown()),
    status: z.enum(operationStatus.enumValues),
    requestedBy: z.string(),
    createdAt: when,
    finishedAt: when.nullable(),
    pausedAt: when.nullable(),
    pausedReason: z.string().nullable(),
    waves: z
      .object({
        summary: z.string(),
        current: z.number().int(),
        list: z.array(
          z.object({
            wave: z.number().int(),
            status: z.string(),
            targets: z.number().int(),
            counts: z.record(z.string(), z.number().int()),
            startedAt: when.nullable(),
            endedAt: when.nullable(),
            passedAt: when.nullable(),
            gateNote: z.string().nullable(),
          }),
        ),
      })
      .nullable(),
    approval: approvalSchema.nullable().meta({ description: 'Its approval, when a policy asked for one; null otherwise.' }),
    targets: z.array(
      z.object({
        instanceId: z.number().int().nullable(),
        herdId: z.number().int().nullable(),
        label: z.string(),
        status: z.enum(operationStatus.enumValues),
        wave: z.number().int(),
        held: z.boolean(),
        error: z.string().nullable(),
        outcome: z.string().nullable(),
        steps: z.array(step),
      }),
    ),
  })
  .meta({ id: 'Operation' });

export const getOperationRoute = defineRoute({
  method: 'get',
  path: '/api/v1/operations/{id}',
  tag: 'Operations',
  summary: 'Follow an operation',
  description: 'Its status, its waves, and each target with its steps (the targets in environments the caller may see).',
  auth: 'read',
  params: bigIdParams,
  responses: { 200: { description: 'The operation.', schema: operationResponse } },
  errors: { 404: 'No such operation.' },
});

export const operationVerbParams = z.object({
  id: bigIdParams.shape.id,
  verb: z.enum(['pause', 'resume', 'abort']),
});

export const operationVerbRoute = defineRoute({
  method: 'post',
  path: '/api/v1/operations/{id}/{verb}',
  tag: 'Operations',
  summary: 'Pause, resume or abort an operation',
  description:
    "Pause: nothing new starts, running targets finish. Resume: the current wave's held targets start again. Abort: nothing new starts; running targets finish their current step and run their cleanups; the rest end cancelled.",
  auth: 'operate',
  params: operationVerbParams,
  responses: {
    202: {
      description: 'Done; GET the operation to see where it goes from there.',
      schema: z.object({
        id: z.number().int(),
        paused: z.literal(true).optional(),
        resumed: z.literal(true).optional(),
        aborting: z.literal(true).optional(),
      }),
    },
  },
  errors: { 404: 'No such operation, or no such verb.', 409: 'It has ended, or it is already (or not) paused.' },
});

const decisionAnswer = z.object({
  id: z.number().int(),
  status: z
    .enum(operationStatus.enumValues)
    .meta({ description: 'awaiting_approval (more approvals needed), queued (approved: it runs), or denied.' }),
  approvals: z.number().int(),
  required: z.number().int(),
});

const decisionRouteSpec = (verb: 'approve' | 'deny') =>
  defineRoute({
    method: 'post',
    path: `/api/v1/operations/{id}/${verb}`,
    tag: 'Approvals',
    summary: verb === 'approve' ? 'Approve an operation' : 'Deny an operation',
    description:
      verb === 'approve'
        ? "Approves the plan the requester confirmed, as the token's person (never the requester, whatever token or session). The plan is made again as the requester: a plan that changed since is refused (409) and the operation ends; the approval that completes the count queues it."
        : 'Denies it: it ends denied, with the comment.',
    auth: 'operate',
    params: bigIdParams,
    body: decisionBody,
    responses: { 200: { description: 'The decision, recorded.', schema: decisionAnswer } },
    errors: {
      403: 'The approval policies do not let the caller decide on it (the requester, a role or group missing).',
      404: 'No such operation.',
      409: 'It is not awaiting approval, it has expired, the caller decided already, or its plan changed since it was confirmed.',
    },
  });

export const approveOperationRoute = decisionRouteSpec('approve');
export const denyOperationRoute = decisionRouteSpec('deny');

export const listApprovalsRoute = defineRoute({
  method: 'get',
  path: '/api/v1/approvals',
  tag: 'Approvals',
  summary: 'Operations awaiting approval',
  description:
    'What waits for approval in environments the caller sees, the soonest to expire first (at most 1,000); mine=1: only what the caller may decide on now.',
  auth: 'read',
  query: z.object({ mine: z.enum(['0', '1']).optional().meta({ description: '1: only what the caller may approve or deny now.' }) }),
  responses: {
    200: {
      description: 'The list.',
      schema: z.object({
        items: z.array(
          z.object({
            id: z.number().int(),
            action: z.string(),
            requestedBy: z.string(),
            createdAt: when,
            expiresAt: when.nullable(),
            required: z.number().int(),
            approvals: z.number().int(),
            environments: z.array(z.string()),
            yours: z.boolean().meta({ description: 'Whether the caller may decide on it now.' }),
          }),
        ),
      }),
    },
  },
});
