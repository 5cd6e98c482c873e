// Rolling operations: the targets of one operation started in waves, a health gate between waves and
// a failure budget over the whole. This file is the part with no database: what the user may ask for
// (the spec), how targets are cut into waves, and how a gate judges what it observed.
import { z } from 'zod';
import { lsnDiff } from '@/lib/adapters/format/lsn';
import type { Observed } from '@/lib/fleet/observe';
import { SubmitError } from '@/lib/engine/submit-errors';

const whole = (min: number, max: number) => z.number().int(`a whole number`).min(min).max(max);

export const gateSchema = z
  .object({
    /** How long every herd the wave touched must stay healthy, without a break, before the next wave. */
    soakSeconds: whole(0, 3600).default(30),
    /** A replica further behind its primary than this fails the gate. */
    maxLagBytes: whole(0, 2 ** 40).default(16 * 1024 * 1024),
    /** ...or further behind in time than this (seconds since its last replayed transaction, while it has WAL to replay). */
    maxLagSeconds: whole(0, 86_400).default(30),
    /** The gate must pass within this long after the wave's last target ended, or the operation pauses. */
    deadlineSeconds: whole(1, 86_400).default(600),
  })
  .strict()
  .refine((g) => g.deadlineSeconds >= g.soakSeconds, { message: 'the deadline must be at least the soak time', path: ['deadlineSeconds'] });

export const budgetSchema = z
  .object({
    /** Stop starting targets once this many have failed... */
    failures: whole(1, 100_000).optional(),
    /** ...or once more than this percentage of those started have failed. */
    percent: whole(1, 100).optional(),
  })
  .strict()
  .refine((b) => b.failures !== undefined || b.percent !== undefined, {
    message: 'give a number of failures or a percentage (or leave the budget out)',
  });

export const WAVE_ORDERS = ['listed', 'site', 'environment'] as const;

export const wavesSchema = z
  .object({
    /** Targets a wave (after the canary): a count... */
    size: whole(1, 100_000).optional(),
    /** ...or a percentage of the operation's runnable targets (rounded up). */
    percent: whole(1, 100).optional(),
    /** A first wave of this many targets, alone, before the others. */
    canary: whole(0, 100_000).default(0),
    /** listed: as selected; site or environment: one site (environment) after another, a wave never spanning two. */
    order: z.enum(WAVE_ORDERS).default('listed'),
    /** Between waves; absent: the next wave starts when the last one's targets have ended. */
    gate: gateSchema.optional(),
    budget: budgetSchema.optional(),
  })
  .strict()
  .refine((w) => w.size !== undefined || w.percent !== undefined, { message: 'give a wave size or a percentage', path: ['size'] })
  .refine((w) => w.size === undefined || w.percent === undefined, {
    message: 'give a wave size or a percentage, not both',
    path: ['size'],
  });

export type WaveSpec = z.output<typeof wavesSchema>;
export type GateSpec = z.output<typeof gateSchema>;

/** What a target needs for its wave: where it runs, in the order the plan lists it. */
export interface WaveCandidate {
  site: string;
  environment: string;
}

/**
 * The wave of each target (1-based, in the candidates' order). A canary wave first, then waves of
 * `size` (or `percent` of all), in the order asked; by site or environment the targets are grouped
 * (groups in name order, each keeping the listed order) and a wave ends where its group does.
 */
export function assignWaves(candidates: WaveCandidate[], spec: WaveSpec): number[] {
  const n = candidates.length;
  const size = spec.size ?? Math.max(1, Math.ceil(((spec.percent ?? 100) * n) / 100));
  const key = (c: WaveCandidate) => (spec.order === 'site' ? c.site : spec.order === 'environment' ? c.environment : '');
  const order = candidates.map((c, i) => ({ i, group: key(c) })).sort((a, b) => a.group.localeCompare(b.group) || a.i - b.i);
  const waves = new Array<number>(n).fill(0);
  // The canary comes from the first site (environment) alone: it is a wave too, and never spans two.
  const canary = Math.min(spec.canary, order.filter((o) => o.group === order[0]?.group).length);
  let wave = 0;
  let inWave = 0;
  let group: string | null = null;
  for (const [pos, c] of order.entries()) {
    const isCanary = pos < canary;
    const full = pos === 0 || (isCanary ? false : pos === canary || inWave >= size || c.group !== group);
    if (full) {
      wave++;
      inWave = 0;
    }
    waves[c.i] = wave;
    inWave++;
    group = c.group;
  }
  return waves;
}

/** Waves that do not fit the targets they were asked for (a 400, as a malformed waves object). */
export class WavesError extends SubmitError {
  constructor(message: string) {
    super('waves', 400, message, { waves: message }, 'invalid waves');
    this.name = 'WavesError';
  }
}

/**
 * Why a canary cannot be what was asked, or null: larger than the runnable targets, or (by site or
 * environment) than the first one's targets, since a canary never spans two.
 */
export function canaryProblem(candidates: WaveCandidate[], spec: WaveSpec): string | null {
  if (!spec.canary) return null;
  const n = candidates.length;
  if (spec.canary > n) return `a canary of ${spec.canary} is more than the ${n} target${n === 1 ? '' : 's'} that can run`;
  if (spec.order === 'listed') return null;
  const key = (c: WaveCandidate) => (spec.order === 'site' ? c.site : c.environment);
  const first = [...new Set(candidates.map(key))].sort((a, b) => a.localeCompare(b))[0] ?? '';
  const inFirst = candidates.filter((c) => key(c) === first).length;
  return spec.canary > inFirst
    ? `a canary of ${spec.canary} is more than the ${inFirst} target${inFirst === 1 ? '' : 's'} of the first ${spec.order} (${first || 'none'}): a canary never spans two`
    : null;
}

/** "3" or "10%". */
export const waveSize = (spec: WaveSpec) => (spec.size !== undefined ? String(spec.size) : `${String(spec.percent ?? 100)}%`);

/** One line for the confirmation page and the audit entry: "waves of 3 by site after a canary of 1, ...". */
export function describeWaves(spec: WaveSpec, waveCount: number): string {
  const parts = [
    `${waveCount} wave${waveCount === 1 ? '' : 's'}`,
    spec.canary ? `a canary of ${spec.canary} first` : null,
    `then ${waveSize(spec)} at a time${spec.order === 'listed' ? '' : `, ${spec.order} by ${spec.order}`}`,
    spec.gate
      ? `between waves every herd touched stays healthy for ${spec.gate.soakSeconds} s (a writable primary, replicas streaming, lag under ${exactBytes(spec.gate.maxLagBytes)} and ${spec.gate.maxLagSeconds} s), or the operation pauses after ${spec.gate.deadlineSeconds} s`
      : 'each wave starts when the last one ended',
    spec.budget?.failures !== undefined
      ? `pauses after ${spec.budget.failures} failed target${spec.budget.failures === 1 ? '' : 's'}`
      : null,
    spec.budget?.percent !== undefined ? `pauses when more than ${spec.budget.percent}% of the started targets failed` : null,
  ];
  return parts.filter(Boolean).join('; ');
}

/** A byte count as a bound is written: "16 MiB" when it is a whole number of a unit, else bytes. */
function exactBytes(n: number): string {
  if (n >= 1024 ** 3 && n % 1024 ** 3 === 0) return `${n / 1024 ** 3} GiB`;
  if (n >= 1024 ** 2 && n % 1024 ** 2 === 0) return `${n / 1024 ** 2} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} kiB`;
  return `${n} bytes`;
}

/** A member of a herd as the gate looks at it: whether it is expected to run, and what was just observed. */
export interface GateMember {
  label: string;
  /**
   * False for members the gate does not wait for: fenced or to be rebuilt, already stopped when the
   * operation was confirmed, or stopped by this operation on purpose (a stop that succeeded).
   */
  expected: boolean;
  observed: Observed;
}

/**
 * Why a herd fails the gate, or null when it passes: exactly one writable primary; every other
 * member expected to run is a replica that streams, whose replay is not paused, and that is within
 * the lag limits of that primary. A replica that has replayed all the primary has written is not
 * behind, however old its last replayed transaction (a quiet primary writes none).
 */
export function judgeHerd(herd: string, members: GateMember[], gate: Pick<GateSpec, 'maxLagBytes' | 'maxLagSeconds'>): string | null {
  const expected = members.filter((m) => m.expected);
  const primaries = members.filter((m) => m.observed.reachable && m.observed.inRecovery === false);
  const [primary, ...more] = primaries;
  if (!primary) return `${herd}: no writable primary`;
  if (more.length) return `${herd}: ${primaries.length} writable primaries (${primaries.map((p) => p.label).join(', ')})`;
  const problems: string[] = [];
  for (const m of expected) {
    if (m === primary) continue;
    const o = m.observed;
    if (!o.reachable) problems.push(`${m.label} not answering (${o.error ?? 'no reason given'})`);
    else if (o.inRecovery === false) problems.push(`${m.label} is not a replica`);
    else if (o.walReceiver?.status !== 'streaming')
      problems.push(`${m.label} not streaming (${o.walReceiver?.status ?? 'no WAL receiver'})`);
    else if (o.replayPaused) problems.push(`${m.label} replay paused`);
    else {
      const bytes = lsnDiff(primary.observed.lsn, o.lsn);
      const seconds = o.replayLagSeconds ?? 0;
      if (bytes === null) problems.push(`${m.label} lag unknown`);
      else if (bytes > gate.maxLagBytes) problems.push(`${m.label} ${exactBytes(bytes)} behind (limit ${exactBytes(gate.maxLagBytes)})`);
      else if (bytes > 0 && seconds > gate.maxLagSeconds)
        problems.push(`${m.label} ${seconds.toFixed(1)} s behind (limit ${gate.maxLagSeconds} s)`);
    }
  }
  return problems.length ? `${herd}: ${problems.join(', ')}` : null;
}

/** The runnable targets of a plan, wave by wave (as the confirmation page lists them and submit writes them). */
export function wavesOf<T extends WaveCandidate & { refused?: string | null }>(
  plan: { targets: T[] },
  spec: WaveSpec,
): { wave: number; targets: T[] }[] {
  const runnable = plan.targets.filter((t) => !t.refused);
  const waves = assignWaves(runnable, spec);
  const out: { wave: number; targets: T[] }[] = [];
  for (const [i, t] of runnable.entries()) {
    const w = waves[i] ?? 1;
    (out[w - 1] ??= { wave: w, targets: [] }).targets.push(t);
  }
  return out;
}

/** What the confirmation page and the API's plan say about the waves: one line, and who is in each. */
export function wavePlan<T extends WaveCandidate & { refused?: string | null }>(plan: { targets: T[] }, spec: WaveSpec) {
  const waves = wavesOf(plan, spec);
  return { spec, summary: describeWaves(spec, waves.length), waves };
}
