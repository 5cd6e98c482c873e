// A plan's identity is what it will do, as data. Each step carries `does` (a kind and its arguments:
// addresses, ports, data directories, instance ids and types, DNS records, poolers) beside `says` (its
// words for people). The digest and the check of a confirmed plan compare these values, never the
// words: rewording a sentence changes no plan, and another type, address or DNS target always does.
import { refuse, type Refusal } from '@/lib/fleet/refusal';

/** An argument of what a step does: plain JSON data (a key left undefined is absent). */
export type Arg = string | number | boolean | null | readonly Arg[] | { readonly [key: string]: Arg | undefined };

/**
 * What a step (or a warning that changes what is done) does: a kind and its arguments (one left
 * undefined is absent). Only what was decided, not how long it may take: a bound that is the worker's
 * own setting (an EC2 wait, say) is no argument, or a worker configured apart from the console would
 * find every plan changed.
 */
export interface Does {
  readonly kind: string;
  readonly [arg: string]: Arg | undefined;
}

/** A step as a confirmed plan keeps it: what it does, and the words the person read. */
export interface ConfirmedStep {
  says: string;
  does: Does;
}

/** An instance named in a step's arguments: which one, and where its commands go. */
export const memberArg = (m: { id: number; host: string; port: number }) => ({ id: m.id, host: m.host, port: m.port });

/** An instance the step chooses only when it runs (a failover's candidate): the rule that chooses it. */
export const chosenWhenItRuns = (rule: string) => ({ chosenWhenItRuns: rule });

/** JSON with every object's keys sorted: the same value always reads the same, however it was built. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** The steps of a target's plan as it is confirmed: its words and its values, step by step. */
export const confirmedSteps = (t: { steps: string[]; does: Does[] }): ConfirmedStep[] =>
  t.does.map((does, k) => ({ says: t.steps[k] ?? '', does }));

const shown = (v: Arg | undefined) => (v === undefined ? '(none)' : canonical(v));

/** Which arguments of one step differ, in a few words: "instanceType m5.large, now m5.xlarge". */
function argsChanged(was: Does, now: Does): string {
  if (was.kind !== now.kind) return `another kind of step: ${was.kind}, now ${now.kind}`;
  const keys = [...new Set([...Object.keys(was), ...Object.keys(now)])].sort();
  return keys
    .filter((k) => canonical(was[k]) !== canonical(now[k]))
    .map((k) => `${k} ${shown(was[k])}, now ${shown(now[k])}`)
    .join('; ');
}

/** How many differing steps a refusal spells out; the rest are counted. */
const NAMED = 3;

/**
 * Why the plan made now is not the one the person confirmed, or null: the steps whose values differ,
 * each with its words then and now for the person to read. Two identical resizes confirmed together:
 * the second finds its instance on another type than it confirmed, and stops there instead of resizing
 * again to a type nobody confirmed. A step confirmed before plans carried values (its words only) is
 * compared by its words.
 */
export function changedSince(confirmed: readonly (ConfirmedStep | string)[], now: readonly ConfirmedStep[]): Refusal | null {
  const differ: string[] = [];
  for (let k = 0; k < Math.max(confirmed.length, now.length); k++) {
    const c = confirmed[k];
    const n = now[k];
    const was = typeof c === 'string' ? { says: c, does: null } : c;
    const same = was && n && (was.does ? canonical(was.does) === canonical(n.does) : was.says === n.says);
    if (same) continue;
    const how = was?.does && n ? ` (${argsChanged(was.does, n.does)})` : '';
    differ.push(`step ${k + 1} was "${was?.says ?? '(none)'}", now "${n?.says ?? '(none)'}"${how}`);
  }
  if (!differ.length) return null;
  const more = differ.length > NAMED ? `; and ${differ.length - NAMED} more step${differ.length - NAMED > 1 ? 's' : ''}` : '';
  return refuse(
    'stale',
    `what it would do changed since it was confirmed: ${differ.slice(0, NAMED).join('; ')}${more}. Nothing was run; plan it again`,
  );
}
