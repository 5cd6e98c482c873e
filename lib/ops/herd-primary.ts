import type { InstanceRef } from './instance-ref';
import { observe, type Observed } from './observe';

/** Every member of the herd but `t`, as each answers now. */
export function observeOthers(t: { id: number }, members: InstanceRef[]): Promise<{ m: InstanceRef; o: Observed }[]> {
  return Promise.all(members.filter((m) => m.id !== t.id).map(async (m) => ({ m, o: await observe(m, 2000) })));
}

/** Those of `seen` that accept writes: primaries, whatever the inventory calls them. */
export function answeringAsPrimary<T extends { o: Observed }>(seen: T[]): T[] {
  return seen.filter(({ o }) => o.reachable && o.inRecovery === false);
}

/** The herd's one running primary other than `t` (per the inventory), or why there is none to use. */
export function herdPrimary(t: InstanceRef, members: InstanceRef[]): InstanceRef | string {
  const primaries = members.filter((m) => m.id !== t.id && m.role === 'primary' && m.state === 'running');
  if (!primaries.length) return 'the herd has no running primary';
  const [only, ...others] = primaries;
  if (!only) return 'the herd has no running primary';
  if (others.length)
    return `the herd has ${primaries.length} running primaries (${primaries.map((p) => p.label).join(', ')}): fence one first`;
  return only;
}
