// What an interrupted target's instance (or herd) looked like when pgherd gave up on the target: kept
// with the target, so that the operator (and a retry's plan) can see that a restart had in fact taken
// place before the worker died, instead of running it a second time blind.
import type { Db } from '@/db/client';
import { loadHerdRefs } from '@/lib/fleet/herd-ref';
import { loadInstanceRefs } from '@/lib/fleet/instance-ref';
import { observe, type Observed } from '@/lib/fleet/observe';

function describe(o: Observed, since: Date | null): string {
  if (!o.reachable) return `not answering (${o.error ?? 'no reason given'})`;
  const started = o.startTime ? new Date(o.startTime) : null;
  const after = started && since && started > since;
  return (
    `running as ${o.inRecovery ? 'replica' : 'primary'} on timeline ${o.timeline ?? 'unknown'}, postmaster started ${started?.toISOString() ?? 'unknown'}` +
    (after ? ' (after this attempt began: a start or restart it ran has taken effect)' : '') +
    (o.confLoadTime ? `, configuration loaded ${new Date(o.confLoadTime).toISOString()}` : '')
  );
}

/** One line: what the target's instance, or each member of its herd, says now. Null when it is gone from the inventory. */
export async function lastSeen(
  db: Db,
  target: { instanceId: number | null; herdId: number | null },
  since: Date | null,
): Promise<string | null> {
  const at = new Date().toISOString();
  if (target.instanceId !== null) {
    const [ref] = await loadInstanceRefs(db, [target.instanceId]);
    if (!ref) return null;
    return `last observed ${at}: ${describe(await observe(ref, 2000), since)}`;
  }
  if (target.herdId === null) return null;
  const [herd] = await loadHerdRefs(db, [target.herdId]);
  if (!herd) return null;
  const seen = await Promise.all(herd.members.map(async (m) => `${m.label}: ${describe(await observe(m, 2000), since)}`));
  return `last observed ${at}: ${seen.join('; ')}`;
}
