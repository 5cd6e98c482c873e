import type { InstanceRef } from './instance-ref';

/** The herd's one running primary other than `t` (per the inventory), or why there is none to use. */
export function herdPrimary(t: InstanceRef, members: InstanceRef[]): InstanceRef | string {
  const primaries = members.filter((m) => m.id !== t.id && m.role === 'primary' && m.state === 'running');
  if (!primaries.length) return 'the herd has no running primary';
  if (primaries.length > 1) return `the herd has ${primaries.length} running primaries (${primaries.map((p) => p.label).join(', ')}): fence one first`;
  return primaries[0];
}
