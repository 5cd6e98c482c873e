// The risks' thresholds: a default for each, and an environment's own where it sets them
// (environments.risk_thresholds). docs/risks.md lists them; what an environment sets is checked here.
import { z } from 'zod';
import { RISK_KINDS } from './kinds';

const GiB = 1024 ** 3;

/** Each threshold: its default and what it bounds. */
export const THRESHOLDS = {
  xidAgeWarning: { default: 500_000_000, doc: 'age(datfrozenxid) of a database: a warning from here' },
  xidAgeCritical: { default: 1_200_000_000, doc: 'critical from here (wraparound is at 2^31, about 2.1 billion)' },
  mxidAgeWarning: { default: 500_000_000, doc: 'mxid_age(datminmxid) of a database: a warning from here' },
  mxidAgeCritical: { default: 1_200_000_000, doc: 'critical from here' },
  slotRetainedWarningBytes: {
    default: 1 * GiB,
    doc: 'WAL a slot keeps from removal: a warning from here (an inactive slot is one however little it keeps)',
  },
  slotRetainedCriticalBytes: {
    default: 20 * GiB,
    doc: 'critical from here (and whenever the slot is about to lose its WAL: wal_status unreserved or lost)',
  },
  logicalBehindWarningBytes: { default: 1 * GiB, doc: "a logical slot's consumer this far behind: a warning" },
  transactionWarningSeconds: { default: 3600, doc: 'a transaction open (or idle in transaction) this long: a warning' },
  transactionCriticalSeconds: { default: 6 * 3600, doc: 'critical from here' },
  certificateWarningDays: { default: 30, doc: 'a server certificate this many days or fewer from expiry: a warning' },
  certificateCriticalDays: { default: 7, doc: 'critical at this many days or fewer (and once expired)' },
  eolWarningDays: { default: 180, doc: 'a major this many days or fewer from its end of life: a warning (critical once past)' },
  diskDaysWarning: { default: 14, doc: "a filesystem full in this many days or fewer at the last week's growth: a warning" },
  diskDaysCritical: { default: 3, doc: 'critical at this many days or fewer' },
  diskFreeWarningPercent: { default: 10, doc: 'a filesystem with this share free or less, whatever its growth: a warning' },
  diskFreeCriticalPercent: { default: 5, doc: 'critical at this share or less' },
} as const;

/**
 * Open transactions younger than this are never read (read-risks.ts): an environment's bound may not be
 * shorter, or it would never find what it says it finds.
 */
export const SESSION_FLOOR_SECONDS = 10;

export type ThresholdName = keyof typeof THRESHOLDS;
export type Thresholds = Record<ThresholdName, number>;

export const DEFAULT_THRESHOLDS = Object.fromEntries(Object.entries(THRESHOLDS).map(([k, v]) => [k, v.default])) as Thresholds;

/** What an environment may set: known names, positive numbers, each critical beyond its warning; and kinds it ignores. */
export const thresholdsSchema = z
  .object({
    /** Kinds not judged in the environment at all (a lab that runs with fsync off on purpose): said on the Risks page. */
    ignore: z
      .array(z.string().refine((k) => (RISK_KINDS as readonly string[]).includes(k), `a risk kind: one of ${RISK_KINDS.join(', ')}`))
      .max(RISK_KINDS.length)
      .optional(),
  })
  .extend(
    Object.fromEntries(Object.keys(THRESHOLDS).map((k) => [k, z.number().positive().optional()])) as Record<
      ThresholdName,
      z.ZodOptional<z.ZodNumber>
    >,
  )
  .strict()
  .superRefine((t, ctx) => {
    const all = { ...DEFAULT_THRESHOLDS, ...t };
    const pairs: [ThresholdName, ThresholdName, 'above' | 'below'][] = [
      ['xidAgeWarning', 'xidAgeCritical', 'above'],
      ['mxidAgeWarning', 'mxidAgeCritical', 'above'],
      ['slotRetainedWarningBytes', 'slotRetainedCriticalBytes', 'above'],
      ['transactionWarningSeconds', 'transactionCriticalSeconds', 'above'],
      ['certificateWarningDays', 'certificateCriticalDays', 'below'],
      ['diskDaysWarning', 'diskDaysCritical', 'below'],
      ['diskFreeWarningPercent', 'diskFreeCriticalPercent', 'below'],
    ];
    if (all.transactionWarningSeconds < SESSION_FLOOR_SECONDS)
      ctx.addIssue({
        code: 'custom',
        path: ['transactionWarningSeconds'],
        message: `transactionWarningSeconds must be at least ${String(SESSION_FLOOR_SECONDS)}: younger transactions are not read`,
      });
    for (const [w, c, way] of pairs)
      if (way === 'above' ? all[c] < all[w] : all[c] > all[w])
        ctx.addIssue({
          code: 'custom',
          path: [c],
          message: `${c} (${String(all[c])}) must be ${way === 'above' ? 'at least' : 'at most'} ${w} (${String(all[w])})`,
        });
  });

/** The kinds an environment does not judge (its risk_thresholds' `ignore`). */
export function ignoredKinds(own: Record<string, unknown> | null | undefined): Set<string> {
  const list = own?.ignore;
  return new Set(Array.isArray(list) ? list.filter((k): k is string => typeof k === 'string') : []);
}

/** An environment's thresholds: its own over the defaults (what it holds that no longer parses is ignored, key by key). */
export function thresholdsOf(own: Record<string, unknown> | null | undefined): Thresholds {
  const out = { ...DEFAULT_THRESHOLDS };
  for (const [k, v] of Object.entries(own ?? {}))
    if (k in THRESHOLDS && typeof v === 'number' && Number.isFinite(v) && v > 0) out[k as ThresholdName] = v;
  return out;
}

/** The environment form's text: JSON that thresholdsSchema takes (empty: the defaults), as the object kept. */
export const riskThresholdsText = z
  // Left out (a form or a caller that does not name it): the defaults.
  .preprocess((v) => v ?? '', z.string().trim().max(4000))
  .transform((text, ctx) => {
    if (!text) return {};
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not JSON: an object such as {"xidAgeWarning": 400000000}' });
      return z.NEVER;
    }
    const parsed = thresholdsSchema.safeParse(raw);
    if (!parsed.success) {
      ctx.addIssue({
        code: 'custom',
        message: parsed.error.issues.map((i) => `${i.path.join('.') || 'thresholds'}: ${i.message}`).join('; '),
      });
      return z.NEVER;
    }
    return parsed.data;
  });
