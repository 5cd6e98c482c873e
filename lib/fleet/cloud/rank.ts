// Which instance types an EC2 instance can be resized to, cheapest first. A named type is checked; "at
// least N vCPU and M GiB" is answered from the whole catalogue, every candidate priced before any is
// dropped (PG Spot Operator truncated the list first, and so could miss the cheapest). A type the
// instance cannot run is refused with the reason: another architecture than its AMI's, a virtualization
// it does not support, ENA it does not have, not offered in its zone.
import type { TypeInfo } from '@/lib/adapters/aws/ec2';
import { cost } from './prices';

/** The instance as the ranking needs it (its server's cloud identity, and its ENA and virtualization). */
export interface RankedInstance {
  instanceId: string;
  region: string;
  availabilityZone: string;
  instanceType: string;
  architecture: string;
  enaSupport: boolean;
  virtualization: string;
}

export interface ResizeWish {
  /** A named type, or the least the type must have. */
  instanceType?: string;
  minVcpus?: number;
  minMemoryGiB?: number;
  /** Burstable (T) types are candidates only when asked for. */
  burstable?: boolean;
  /** Tried in this order when the target cannot be had; unset: the next cheapest candidates. */
  fallbackTypes?: string[];
}

export interface TypeChoice {
  name: string;
  vcpus: number;
  memoryGiB: number;
  perHour: number | null;
  perMonth: number | null;
}

export type Ranking =
  { ok: true; current: TypeChoice; target: TypeChoice; fallbacks: TypeChoice[]; candidates: number } | { ok: false; reason: string };

/** How many fallbacks are proposed when none are given (the list is editable on the confirmation page). */
export const DEFAULT_FALLBACKS = 2;

export interface Catalogue {
  types: Map<string, TypeInfo>;
  /** The types offered in the instance's zone. */
  offered: Set<string>;
  perHour: (instanceType: string) => number | null;
  /** What a type is called in refusals (default: an EC2 instance type). */
  noun?: string;
}

/** Why this instance cannot run this type, or null when it can. */
export function cannotRun(i: RankedInstance, name: string, c: Catalogue): string | null {
  const t = c.types.get(name);
  if (!t) return `${name} is not ${c.noun ?? 'an EC2 instance type'} in ${i.region}`;
  if (!t.architectures.includes(i.architecture))
    return `${name} runs ${t.architectures.join(' or ')}, not ${i.architecture} (the instance's image would not boot)`;
  if (!t.virtualization.includes(i.virtualization)) return `${name} does not support ${i.virtualization} virtualization`;
  if (t.ena === 'required' && !i.enaSupport) return `${name} requires ENA, which ${i.instanceId} does not have enabled`;
  if (!c.offered.has(name)) return `${name} is not offered in ${i.availabilityZone}`;
  return null;
}

function choice(name: string, c: Catalogue): TypeChoice {
  const t = c.types.get(name);
  return { name, vcpus: t?.vcpus ?? 0, memoryGiB: t?.memoryGiB ?? 0, ...cost(c.perHour(name)) };
}

/** Cheapest first; unpriced after every priced type; then the smaller, then by name (the same order every time). */
export function byPrice(a: TypeChoice, b: TypeChoice): number {
  if (a.perHour !== b.perHour) {
    if (a.perHour === null) return 1;
    if (b.perHour === null) return -1;
    return a.perHour - b.perHour;
  }
  return a.vcpus - b.vcpus || a.memoryGiB - b.memoryGiB || a.name.localeCompare(b.name);
}

export function rankTypes(i: RankedInstance, wish: ResizeWish, c: Catalogue): Ranking {
  const current = choice(i.instanceType, c);
  let target: TypeChoice;
  let rest: TypeChoice[] = [];
  let candidates = 1;
  if (wish.instanceType !== undefined) {
    const why = cannotRun(i, wish.instanceType, c);
    if (why) return { ok: false, reason: why };
    // Already there: nothing to do (the resize refuses it, a herd resize leaves the member as it is).
    if (wish.instanceType === i.instanceType) return { ok: true, current, target: current, fallbacks: [], candidates: 1 };
    target = choice(wish.instanceType, c);
  } else {
    const vcpus = wish.minVcpus ?? 0;
    const mem = wish.minMemoryGiB ?? 0;
    const fits = [...c.types.values()]
      .filter(
        (t) => t.vcpus >= vcpus && t.memoryGiB >= mem && (wish.burstable === true || !t.burstable) && cannotRun(i, t.name, c) === null,
      )
      .map((t) => choice(t.name, c))
      .sort(byPrice);
    const [first, ...others] = fits;
    if (!first)
      return {
        ok: false,
        reason:
          `no instance type offered in ${i.availabilityZone} has at least ${vcpus} vCPU and ${mem} GiB ` +
          `for ${i.architecture}${wish.burstable ? '' : ', burstable types left out'}`,
      };
    // Its own type, when it is the cheapest that fits: nothing to do. Else never a fallback (it is the last resort anyway).
    if (first.name === i.instanceType) return { ok: true, current, target: current, fallbacks: [], candidates: fits.length };
    target = first;
    rest = others.filter((t) => t.name !== i.instanceType);
    candidates = fits.length;
  }
  if (wish.fallbackTypes === undefined) return { ok: true, current, target, fallbacks: rest.slice(0, DEFAULT_FALLBACKS), candidates };
  const seen = new Set<string>([target.name]);
  const fallbacks: TypeChoice[] = [];
  for (const f of wish.fallbackTypes) {
    if (f === target.name) return { ok: false, reason: `fallback ${f} is the target type itself` };
    if (seen.has(f)) return { ok: false, reason: `fallback ${f} is listed twice` };
    if (f === i.instanceType) return { ok: false, reason: `fallback ${f} is the instance's own type, which is the last resort anyway` };
    const why = cannotRun(i, f, c);
    if (why) return { ok: false, reason: `fallback ${why}` };
    seen.add(f);
    fallbacks.push(choice(f, c));
  }
  return { ok: true, current, target, fallbacks, candidates };
}
