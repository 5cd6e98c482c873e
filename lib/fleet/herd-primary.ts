import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { observe, type Observed } from '@/lib/fleet/observe';

/** Every member of the herd but `t`, as each answers now (over a connection of its own, unless `look` says otherwise). */
export function observeOthers(
  t: { id: number },
  members: InstanceRef[],
  look: (m: InstanceRef) => Promise<Observed> = (m) => observe(m, 2000),
): Promise<{ m: InstanceRef; o: Observed }[]> {
  return Promise.all(members.filter((m) => m.id !== t.id).map(async (m) => ({ m, o: await look(m) })));
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

/**
 * Whether `m`'s Postgres may come up as a primary when its host boots: it was fenced or is to be
 * rebuilt (an old primary), or it did not last say it was a replica. Only what the instance itself
 * said counts (`observedRole`): an inventory edited to call an old primary a replica does not make it
 * one, and its standby.signal is what the boot goes by.
 */
export function mayComeUpAsPrimary(m: Pick<InstanceRef, 'state' | 'observedRole'>): boolean {
  return m.state === 'fenced' || m.state === 'needs_rebuild' || m.observedRole !== 'replica';
}

/**
 * Whether `m`, stopped, last said it was a primary no older than `t` (its timeline not below `t`'s, or
 * either unknown): when its host boots it comes back as the herd's primary, so `t` must not be one
 * beside it. An older one (a primary replaced by a promote while it was off) does not count.
 */
export function stoppedPrimaryNotOlder(
  m: Pick<InstanceRef, 'state' | 'observedRole' | 'timeline'>,
  t: Pick<InstanceRef, 'timeline'>,
): boolean {
  if (m.state === 'fenced' || m.state === 'needs_rebuild' || m.observedRole !== 'primary') return false;
  return t.timeline === null || m.timeline === null || m.timeline >= t.timeline;
}

const timelineWords = (m: Pick<InstanceRef, 'timeline'>) => (m.timeline === null ? 'timeline unknown' : `timeline ${m.timeline}`);

/** One other member as seen just now: Postgres's answer, and its host's EC2 state when it has one. */
export interface OtherSeen {
  m: InstanceRef;
  o: Observed;
  /** EC2's state of its host (pending, running, stopping, stopped, ...); null off the cloud or unknown. */
  ec2: string | null;
}

/**
 * The members that are, or may be, a primary: each with why. One that answers as a primary is; one
 * that answers as a replica is not; one that does not answer is not only when its host is stopped in
 * EC2 or it last said it was a replica. Silence is no proof (a stopped process, a partition, a host
 * still booting): the DR failover's rule.
 */
export function primariesOrMaybe(seen: OtherSeen[], t?: Pick<InstanceRef, 'timeline' | 'label'>): { m: InstanceRef; why: string }[] {
  const out: { m: InstanceRef; why: string }[] = [];
  for (const { m, o, ec2 } of seen) {
    if (o.reachable) {
      if (o.inRecovery === false) out.push({ m, why: `${m.label} answers as a primary` });
      continue;
    }
    // Stopped, it is no primary now; but one that last said primary boots as the herd's primary.
    if (ec2 === 'stopped' && t && stoppedPrimaryNotOlder(m, t)) {
      out.push({
        m,
        why: `${m.label}'s host is stopped, and it last answered as the primary (${timelineWords(m)}; ${t.label}: ${timelineWords(t)}): it is the herd's primary when its host starts`,
      });
      continue;
    }
    if (ec2 === 'stopped' || ec2 === 'terminated' || !mayComeUpAsPrimary(m)) continue;
    const host = ec2 ? `its host is ${ec2} in EC2` : 'it has no EC2 host to ask';
    const last =
      m.state === 'fenced' || m.state === 'needs_rebuild'
        ? `was fenced as an old primary`
        : `last answered as ${m.observedRole ?? 'nothing yet'}`;
    out.push({ m, why: `${m.label} does not answer (${o.error ?? 'no answer'}); it ${last} and ${host}, so it may be a primary` });
  }
  return out;
}
