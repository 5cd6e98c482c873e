// The resize capability's contract: what a resize asks (a type, or vCPUs and memory, with fallbacks),
// and what its steps tell each other, whichever driver resizes (EC2's instance type, RDS's class).
import { z } from 'zod';
import { flagParam } from '@/lib/engine/define-action';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import type { CloudTarget } from '@/lib/actions/drivers/cloud-prepare';

const typeName = z
  .string()
  .trim()
  .regex(/^(db\.)?[a-z0-9-]+\.[a-z0-9-]+$/, 'an instance type such as m6i.xlarge, or an RDS class such as db.m6i.xlarge');
const blank = (v: unknown) => (v === '' || v === null ? undefined : v);
/** A decimal number, as a form's text or a JSON number: never true, "0x10" or "1e3". */
const num = (min: number, max: number, what: string) =>
  z.preprocess(
    (v) => {
      const b = blank(v);
      if (typeof b === 'string') return /^\s*\d+(\.\d+)?\s*$/.test(b) ? Number(b) : b;
      return b;
    },
    z
      .number({ message: `${what}: a number such as 4 or 0.5` })
      .min(min, `at least ${min}`)
      .max(max, `at most ${max}`)
      .optional(),
  );

/** What a resize wishes for: the instance action's parameters, and the herd resize's with two more. */
export const resizeWishFields = {
  instanceType: z.preprocess(blank, typeName.optional()),
  minVcpus: num(1, 2048, 'vCPU'),
  minMemoryGiB: num(0.5, 65536, 'GiB'),
  burstable: flagParam(),
  /** Ordered; a form sends them as one line ("m6i.xlarge, r6i.large"). */
  fallbackTypes: z.preprocess(
    (v) => (typeof v === 'string' ? (v.trim() ? v.split(/[\s,]+/).filter(Boolean) : undefined) : v),
    z.array(typeName).max(5, 'at most 5 fallback types').optional(),
  ),
  /** A resized replica must stream with replay lag under this many seconds before its names come back. */
  maxLagSeconds: num(0, 3600, 'seconds'),
};

/** A named type, or the least vCPU and memory: one or the other. */
export const oneWish = (p: { instanceType?: string; minVcpus?: number; minMemoryGiB?: number }) =>
  (p.instanceType === undefined) !== (p.minVcpus === undefined && p.minMemoryGiB === undefined);
export const oneWishError = { message: 'give either instanceType, or minVcpus and/or minMemoryGiB', path: ['instanceType'] };

/**
 * Each target to a type of its own, by instance id: what a rule's reverse gives to put every target back
 * on the type it had before the rule's runs. Instead of a wish, never with one.
 */
const backToSchema = z
  .record(z.string().regex(/^[1-9]\d{0,9}$/, 'an instance id'), typeName)
  .refine((m) => Object.keys(m).length >= 1 && Object.keys(m).length <= 10_000, 'from 1 to 10000 instances');

export const resizeParams = z
  .object({ ...resizeWishFields, backTo: backToSchema.optional() })
  .strict()
  .refine((p) => (p.backTo ? p.instanceType === undefined && p.minVcpus === undefined && p.minMemoryGiB === undefined : oneWish(p)), {
    ...oneWishError,
    message: 'give either instanceType, or minVcpus and/or minMemoryGiB, or backTo (a type for each instance)',
  });
export type ResizeParams = z.output<typeof resizeParams>;

export const newResizeState = (): ResizeState => ({ stopped: false, attempts: [], landed: null, allRefused: false, recorded: false });

export interface ResizeState {
  /** EC2 stopped the instance (the cleanup starts it again). */
  stopped: boolean;
  attempts: { type: string; error: string }[];
  landed: string | null;
  allRefused: boolean;
  /** The type was recorded and said (the last step): the cleanup says it otherwise. */
  recorded: boolean;
}

/**
 * A replica whose Postgres is down (stopped or silent) on a host that runs the type asked for already:
 * what a resize cut short after its type changed leaves. Its resize is only finished (Postgres started,
 * streaming, its names back), so running the resize again brings it back.
 */
export function onlyToFinish(t: InstanceRef, c: CloudTarget | null | undefined): boolean {
  return (
    (t.state === 'stopped' || t.state === 'unreachable') &&
    c?.live?.state === 'running' &&
    !!c.ranking?.ok &&
    c.ranking.target.name === c.ranking.current.name
  );
}
