import { z } from 'zod';
import { idNumber, MAX_BIG_ID, MAX_ID } from '@/lib/adapters/validation/ids';
import { MAX_SELECTION } from '@/lib/adapters/validation/selection';
import { wavesSchema } from '@/lib/engine/waves';

/** Postgres keeps no NUL in text: refused as input, never a 500 at the write. */
const noNul = (s: string) => !s.includes('\u0000');
const NUL_MESSAGE = 'no NUL characters';

/** An idempotency key, in the body or the Idempotency-Key header. */
export const IDEMPOTENCY_KEY = /^[A-Za-z0-9_-]{8,64}$/;

// The console's bulk selection's bound (lib/adapters/validation/selection.ts), as a JSON array: each id
// counted once (the body's 64 KiB cap bounds the array itself).
const idsOf = (max: number) =>
  z
    .array(idNumber('each id', max))
    .transform((a) => [...new Set(a)])
    .pipe(z.array(z.number()).min(1).max(MAX_SELECTION, `At most ${MAX_SELECTION} distinct ids.`));
/** Instances' ids are bigint, herds' integer. */
export const instanceIdsSchema = idsOf(MAX_BIG_ID);
export const herdIdsSchema = idsOf(MAX_ID);

/** An action's parameters (remaster: `{ upstreamInstanceId }`); the action's own schema checks them. */
/** A parameter's value: a scalar, or a short list of strings (a resize's ordered fallback types); the action's schema says which. */
// Names are identifiers: `__proto__` (which an object built from the record would take as its
// prototype, dropping it unseen) and the like are refused with the rest of what no action takes.
const paramName = z
  .string()
  .max(50)
  .regex(/^[A-Za-z][A-Za-z0-9]*$/, 'a parameter name is letters and digits')
  .refine((k) => !['constructor', 'prototype'].includes(k), 'not a parameter name');
export const actionParamsSchema = z
  .unknown()
  .refine((v) => !(v && typeof v === 'object' && Object.hasOwn(v, '__proto__')), '__proto__ is not a parameter name')
  .pipe(z.record(paramName, z.union([z.string().max(200), z.number(), z.boolean(), z.null(), z.array(z.string().max(200)).max(20)])))
  .optional();

/** Switchover and DR failover: the replica to promote, also accepted beside `params` (as the API documents). */
const candidate = idNumber('candidateInstanceId', MAX_BIG_ID).optional();
const withCandidate = <T extends { params?: Record<string, unknown>; candidateInstanceId?: number }>({ candidateInstanceId, ...b }: T) => ({
  ...b,
  params: candidateInstanceId === undefined ? b.params : { ...b.params, candidateInstanceId },
});

const oneKind = (b: { instanceIds?: number[]; herdIds?: number[] }) => !!b.instanceIds !== !!b.herdIds;
const oneKindMessage = { message: 'give instanceIds (instance actions) or herdIds (herd actions), not both', path: ['instanceIds'] };

export const planBody = z
  .object({
    action: z.string().min(1).max(50),
    instanceIds: instanceIdsSchema.optional(),
    herdIds: herdIdsSchema.optional(),
    params: actionParamsSchema,
    candidateInstanceId: candidate,
    /** Run in waves (lib/engine/waves.ts): { size | percent, canary, order, gate, budget }. */
    waves: wavesSchema.optional(),
  })
  .strict()
  .refine(oneKind, oneKindMessage)
  .transform(withCandidate);

export const submitBody = z
  .object({
    action: z.string().min(1).max(50),
    instanceIds: instanceIdsSchema.optional(),
    herdIds: herdIdsSchema.optional(),
    params: actionParamsSchema,
    candidateInstanceId: candidate,
    waves: wavesSchema.optional(),
    digest: z.string().regex(/^[0-9a-f]{32}$/, 'the digest from /api/v1/operations/plan'),
    confirm: z.string().max(200).refine(noNul, NUL_MESSAGE).default(''),
    /** Repeat a submit with the same key and it is enqueued once; without one, every submit is new. */
    idempotencyKey: z.string().regex(IDEMPOTENCY_KEY).optional(),
    /** Break glass: an admin runs a plan that needs approval at once, saying why (docs/approvals.md). */
    breakGlass: z
      .object({ reason: z.string().trim().min(10, 'say why, in at least 10 characters').max(500).refine(noNul, NUL_MESSAGE) })
      .strict()
      .optional(),
  })
  .strict()
  .refine(oneKind, oneKindMessage)
  .transform(withCandidate);

/** An approver's decision (POST /api/v1/operations/{id}/approve | deny): a comment, kept with it. */
export const decisionBody = z
  .object({ comment: z.string().max(500, 'At most 500 characters.').refine(noNul, NUL_MESSAGE).default('') })
  .strict()
  .meta({ id: 'Decision' });
