// A rule as the API and the form give it: what it runs, on what, when. Checked here for shape;
// lib/features/rules/rules.ts checks it against the inventory and the owner's roles before saving.
import { z } from 'zod';
import { actionParamsSchema, herdIdsSchema, instanceIdsSchema } from '@/lib/engine/operation-schemas';
import { isPlainName, isPlainText, NO_TRICKS } from '@/lib/adapters/validation/text';
import { wavesSchema } from '@/lib/engine/waves';
import { conditionSchema } from './conditions';
import { scheduleSchema } from './cron';

/** The longest a saved filter's query string may be. */
const MAX_FILTER = 2000;

export const ruleName = z
  .string()
  .trim()
  .min(1, 'a rule needs a name')
  .max(100, 'at most 100 characters')
  .refine(isPlainName, NO_TRICKS)
  // "rule: NAME" is its operations' requester, and names are told apart by it.
  .refine((v) => !/^\d+$/.test(v), 'a name is not only digits (it would read as an id)');

export const retrySchema = z
  .object({
    afterSeconds: z.number().int().min(1).max(86_400, 'at most a day (86400)'),
    times: z.number().int().min(1).max(20),
    jitterSeconds: z.number().int().min(0).max(3600).default(0),
  })
  .strict();
export type RetrySpec = z.output<typeof retrySchema>;

export const ruleBody = z
  .object({
    name: ruleName,
    description: z.string().max(2000).refine(isPlainText, NO_TRICKS).default(''),
    action: z.string().min(1).max(50),
    params: actionParamsSchema,
    /** Fixed targets: instances (instance actions) or herds (herd actions)... */
    instanceIds: instanceIdsSchema.optional(),
    herdIds: herdIdsSchema.optional(),
    /** ...or a changelist's filter, as its query string ("environment=2&role=replica"), resolved at each fire. */
    filter: z
      .string()
      .trim()
      .min(1, 'an empty filter would match everything: give at least one filter or a search')
      .max(MAX_FILTER)
      .refine((v) => !v.includes('\u0000'), 'may not contain a NUL character')
      .optional(),
    schedule: scheduleSchema,
    /** Checked per target when it fires; a target that does not meet them is skipped, with what was measured. */
    conditions: z.array(conditionSchema).max(10).default([]),
    /** Whether a target must meet all the conditions or any one. */
    logic: z.enum(['all', 'any']).default('all'),
    /** When targets were skipped for their conditions: fire again for them after this long (plus up to jitter), this many times. */
    retry: retrySchema.nullable().default(null),
    /**
     * Put each target back as it was before the rule's runs (the type it had, the state it had), at a
     * second schedule: a resize, a power off or a power on. Done by a companion rule, made with this one.
     */
    reverse: z.object({ schedule: scheduleSchema }).strict().nullable().default(null),
    waves: wavesSchema.nullable().optional(),
    /** A fire missed while no worker ran is run once within this many seconds of its time, else recorded as missed. */
    graceSeconds: z.number().int().min(0).max(604_800, 'at most a week (604800)').default(300),
    /** Fire on a herd only inside one of its maintenance windows; a rolling operation waits between waves for one. */
    insideWindow: z.boolean().default(false),
    enabled: z.boolean().default(true),
    /**
     * What the console's confirmation asks to be typed for the plan the rule makes now (an environment's
     * name, or the number of targets): needed when it asks for one. Not stored: what is kept is the
     * environments it confirmed.
     */
    confirmation: z.string().max(100).optional(),
  })
  .strict()
  .refine((b) => [b.instanceIds, b.herdIds, b.filter].filter((x) => x !== undefined).length === 1, {
    message: 'give one scope: instanceIds, herdIds or filter',
    path: ['instanceIds'],
  });

export type RuleBody = z.output<typeof ruleBody>;

/** What a rule runs on, as stored. */
export type RuleScope = { instanceIds: number[] } | { herdIds: number[] } | { filter: string } | ReverseScope;
/** A reverse's companion rule: the targets its rule changed and that are not back yet. */
export type ReverseScope = { reverseOf: number };

export const scopeOf = (b: Pick<RuleBody, 'instanceIds' | 'herdIds' | 'filter'>): Exclude<RuleScope, ReverseScope> =>
  b.instanceIds ? { instanceIds: b.instanceIds } : b.herdIds ? { herdIds: b.herdIds } : { filter: b.filter ?? '' };

/**
 * A filter's query string as pairs, or why not: "?" and a leading URL are dropped, so that a
 * changelist's address pasted whole works; paging and sorting mean nothing to a rule and are dropped.
 */
export function filterPairs(raw: string): { pairs: [string, string][] } | { problem: string } {
  const query = raw.includes('?') ? raw.slice(raw.indexOf('?') + 1) : raw;
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(query);
  } catch {
    return { problem: 'not a query string' };
  }
  const pairs: [string, string][] = [];
  for (const [k, v] of params) {
    if (['page', 'per', 'sort'].includes(k)) continue;
    if (pairs.some(([seen]) => seen === k)) return { problem: `${k} given twice` };
    pairs.push([k, v]);
  }
  if (!pairs.length) return { problem: 'an empty filter would match everything: give at least one filter or a search' };
  return { pairs };
}
