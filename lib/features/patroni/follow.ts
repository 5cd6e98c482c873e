// DNS follows Patroni: when Patroni changes leader on its own (an automatic failover, a `patronictl
// switchover`, a scheduled switchover), the herd's DNS names must follow without anyone asking. A
// worker reads each Patroni herd's /cluster every few seconds (PGHERD_PATRONI_FOLLOW_MS, default 5 s);
// when Patroni names a leader that accepts writes and a name does not answer it, pgherd starts a
// Refresh DNS operation on the herd, requested by "system": planned, audited, leased and recorded like
// anyone's, shown on the herd page, never two at once on a herd.
import type { Turn } from '@/lib/engine/turns';
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Queue } from 'bullmq';
import type { Db } from '@/db/client';
import { herds, operations, operationTargets } from '@/db/schema';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { checkRecord } from '@/lib/fleet/dns-records';
import { errorText } from '@/lib/engine/errors';
import { loadHerdRefs, type HerdRef } from '@/lib/fleet/herd-ref';
import { observe } from '@/lib/fleet/observe';
import { planOperation } from '@/lib/engine/plan';
import type { TargetJob } from '@/lib/engine/queue';
import { refreshDnsAction } from '@/lib/actions/topology/refresh-dns.action';
import { isDeliberate } from '@/lib/fleet/record-observation';
import { mapLimit } from '@/lib/adapters/async/map-limit';
import { refreshFleet } from '@/lib/fleet/refresher';
import { writeOperations } from '@/lib/engine/submit';
import { getCluster, leaderOf, PatroniError } from '@/lib/adapters/patroni/client';
import { restUrlProblem } from '@/lib/adapters/patroni/rest-url';
import { patroniAccessFor, patroniNow, type PatroniNow } from '@/lib/fleet/patroni-view';
import { setting } from '@/lib/settings/settings';

/** How the herd's Patroni problem starts when more than one member accepts writes (the changelist shows it). */
export const TWO_PRIMARIES = 'two primaries';

/** How often the worker reads the Patroni herds' /cluster (ms). */
export const followEveryMs = () => setting('PGHERD_PATRONI_FOLLOW_MS');

export interface FollowResult {
  herdId: number;
  herd: string;
  /** What was seen and done: 'in step', 'moved' (an operation started), or why nothing was done. */
  outcome: string;
  operationId?: number;
  /** The members whose inventory disagreed with Patroni, observed again in this round (the herd's every member was). */
  reobserved?: string[];
}

/** Patroni's states of a member whose Postgres runs, and of one that does not (others, starting or stopping, say nothing yet). */
const RUNS = new Set(['running', 'streaming']);
const DOWN = new Set(['stopped', 'crashed', 'start failed']);
/** A herd is observed again because its inventory disagreed with Patroni once in REOBSERVE_MS at most. */
const REOBSERVE_MS = 15_000;

/** Whether this round may observe herd `herdId` again: its turn taken in the database, so the bound holds whichever worker follows. */
async function mayReobserve(db: Db, herdId: number): Promise<boolean> {
  const taken = await db.execute(sql`
    UPDATE herds SET patroni_reobserved_at = now()
    WHERE id = ${herdId}
      AND (patroni_reobserved_at IS NULL OR patroni_reobserved_at <= now() - make_interval(secs => ${REOBSERVE_MS / 1000}))
    RETURNING id`);
  return taken.rows.length > 0;
}

/**
 * pgherd's members whose inventory disagrees with what Patroni says of them: Patroni's leader runs
 * and the inventory does not have it the running primary, a replica Patroni has streaming is not a
 * running replica there, or one Patroni has stopped is running there. States pgherd set on purpose
 * (fenced, needs rebuild) are the inventory's own: only such a member's role is compared.
 */
export function disagreeing(h: Pick<HerdRef, 'members'>, now: PatroniNow): HerdRef['members'] {
  return now.members.flatMap((p) => {
    const m = h.members.find((x) => x.id === p.instanceId);
    if (!m) return [];
    const kept = isDeliberate(m.state);
    if (RUNS.has(p.state)) {
      const role = p.role === 'leader' ? 'primary' : 'replica';
      // A kept state stays (the refresher keeps it too), but its role is still what the instance says.
      return m.role === role && (kept || m.state === 'running') ? [] : [m];
    }
    if (kept) return [];
    return DOWN.has(p.state) && m.state === 'running' ? [m] : [];
  });
}

/**
 * A Patroni herd's inventory follows Patroni within a round, not the refresher's next pass: when
 * Patroni has changed something pgherd's inventory has not seen (a switchover run with patronictl,
 * an old leader rejoined as a replica), every member is observed again (the instances themselves are
 * the truth written, not Patroni's word). Plans then start from the herd as it is.
 */
async function reobserveDisagreeing(db: Db, h: HerdRef, now: PatroniNow): Promise<string[]> {
  const off = disagreeing(h, now);
  if (!off.length || !(await mayReobserve(db, h.id))) return [];
  await refreshFleet(db, { ids: h.members.map((m) => m.id), timeoutMs: 2000 });
  return off.map((m) => m.label);
}

/** Whether an operation of pgherd's on the herd has not finished (its own switch moves the names itself). */
async function busy(db: Db, herdId: number): Promise<boolean> {
  const [row] = await db
    .select({ id: operationTargets.id })
    .from(operationTargets)
    .innerJoin(operations, eq(operations.id, operationTargets.operationId))
    .where(and(eq(operationTargets.herdId, herdId), inArray(operationTargets.status, ['queued', 'running'])))
    .limit(1);
  return !!row;
}

/**
 * Patroni's view kept on the herd for its changelist: written when it changed, or a minute after the
 * last write (so that a reader can tell a view kept fresh from one nobody reads any more).
 */
async function recordView(db: Db, herdId: number, now: PatroniNow, twoPrimaries: string | null): Promise<void> {
  const leaderId = now.members.find((m) => m.name === now.leader)?.instanceId ?? null;
  const problem = twoPrimaries ?? (now.askedOf ? '' : now.problems.join('; '));
  const v = { leader: now.leader ?? '', paused: now.paused, problem: problem.slice(0, 500) };
  await db.execute(sql`
    UPDATE herds SET patroni_leader = ${v.leader}, patroni_leader_instance_id = ${leaderId}, patroni_paused = ${v.paused},
                     patroni_problem = ${v.problem}, patroni_read_at = now()
    WHERE id = ${herdId}
      AND ((patroni_leader, patroni_leader_instance_id, patroni_paused, patroni_problem)
           IS DISTINCT FROM (${v.leader}, ${leaderId}::bigint, ${v.paused}, ${v.problem})
           OR patroni_read_at IS NULL OR patroni_read_at < now() - interval '1 minute')`);
}

/**
 * Whether more than one member's Patroni names `leader`: /cluster read from every member with an
 * address on its own server, at least two answering and none naming another. A name moves on what
 * the DCS says, and one address (a wrong one, or a listener that is not Patroni) must not be enough
 * to move it. Null when agreed, else why not.
 */
export async function leaderDisagreement(h: Pick<HerdRef, 'members'>, leader: string): Promise<string | null> {
  const asked = h.members.filter((m) => m.patroniUrl !== '' && restUrlProblem(m.patroniUrl, m.host) === null);
  const said = await Promise.all(
    asked.map(async (m) => {
      try {
        const c = await getCluster(m.patroniUrl, { caFile: patroniAccessFor(m.serverEnvironment)?.caFile ?? null });
        return { m, leader: leaderOf(c)?.name ?? null, error: null };
      } catch (err) {
        // No answer is no vote: the reason is said with the count below.
        return { m, leader: undefined, error: err instanceof PatroniError ? err.message : errorText(err) };
      }
    }),
  );
  const answered = said.filter((x) => x.leader !== undefined);
  const other = answered.find((x) => x.leader !== leader);
  if (other) return `${other.m.label}'s Patroni names ${other.leader ?? 'no leader'}, not ${leader}`;
  if (answered.length < 2) {
    const silent = said.flatMap((x) => (x.error === null ? [] : [`${x.m.label}: ${x.error}`]));
    return `only ${answered[0] ? `${answered[0].m.label}'s Patroni` : 'no member'} names ${leader} the leader: a name moves on the word of two members or more${silent.length ? ` (${silent.join('; ')})` : ''}`;
  }
  return null;
}

/** Why the names do not follow a leader pgherd's inventory has fenced or marked for a rebuild. */
const heldLeader = (lead: Pick<HerdRef['members'][number], 'label' | 'state'>, names: string[]) =>
  `Patroni's leader ${lead.label} is ${lead.state === 'fenced' ? 'fenced' : 'marked for a rebuild'} in pgherd's inventory: ${names.join(', ') || 'the names'} not moved to it. If it may lead, set its state to running on its page; the names then follow`;

type Move =
  | string
  | { held: string }
  | { leader: PatroniNow['members'][number]; lead: HerdRef['members'][number]; off: Awaited<ReturnType<typeof checkRecord>>[] };

/** The leader and the write names that do not answer it, or why nothing is to be moved. */
async function toMove(h: HerdRef, now: PatroniNow): Promise<Move> {
  if (!now.askedOf) return `Patroni not read: ${now.problems.join('; ')}`;
  if (!h.dns.length) return 'no DNS name to move';
  const leader = now.members.find((m) => m.name === now.leader);
  if (!leader) return 'Patroni names no leader (a failover under way?)';
  const lead = h.members.find((m) => m.id === leader.instanceId);
  if (!lead) return `Patroni's leader ${leader.name} is not a member pgherd knows`;
  // Fenced or to be rebuilt in pgherd's inventory (someone, or a failover, said so): Refresh DNS points
  // names at running members only, so it would fail every round. Said on the herd instead, once.
  if (isDeliberate(lead.state))
    return {
      held: heldLeader(
        lead,
        h.dns.map((r) => r.name),
      ),
    };
  // The leader key is taken before the promotion ends: wait until it accepts writes. Postgres itself
  // confirms what Patroni says: a primary, of the herd's system.
  const o = await observe(lead, 2000);
  if (!o.reachable || o.inRecovery !== false) return `${lead.label} leads per Patroni but does not accept writes yet`;
  // Said on the herd (its Patroni problem), as for a fenced leader: nothing moves until it is resolved.
  if (h.systemIdentifier && o.systemIdentifier !== h.systemIdentifier)
    return {
      held: `names not moved: ${lead.label} leads per Patroni but its Postgres is of another system (${o.systemIdentifier ?? 'unknown'}), not the herd's (${h.systemIdentifier})`,
    };
  const disagree = await leaderDisagreement(h, leader.name);
  if (disagree) return { held: `names not moved: ${disagree}` };
  const members = h.members.map((m) =>
    m.id === lead.id ? { ...m, role: 'primary' as const, state: 'running' } : m.role === 'primary' ? { ...m, role: 'replica' as const } : m,
  );
  const seen = await Promise.all(
    h.dns.filter((r) => r.match === 'role' && (r.matchRole ?? 'primary') === 'primary').map((r) => checkRecord(r, members)),
  );
  const off = seen.filter((d) => d.answers !== null && !d.ok);
  if (!off.length) return seen.some((d) => d.answers === null) ? 'a DNS server did not answer' : 'in step';
  return { leader, lead, off };
}

/** One herd: its view recorded, then in step or a Refresh DNS started by the system; never throws (the reason is the outcome). */
async function followHerd(db: Db, queue: Queue<TargetJob> | null, h: HerdRef, turn?: Turn): Promise<FollowResult> {
  let reobserved: string[] = [];
  const out = (outcome: string, operationId?: number): FollowResult => ({
    herdId: h.id,
    herd: h.label,
    outcome,
    operationId,
    ...(reobserved.length ? { reobserved } : {}),
  });
  try {
    const now = await patroniNow(h.members);
    if (now.askedOf) reobserved = await reobserveDisagreeing(db, h, now);
    const move = await toMove(h, now);
    // More than one member accepting writes (looked for only when the names would move): said on the
    // herd (its changelist row), and DNS left where it is; no operation that would fail every round.
    let twoPrimaries: string | null = null;
    if (typeof move !== 'string' && 'held' in move) {
      await recordView(db, h.id, now, move.held);
      return out(move.held);
    }
    if (typeof move !== 'string') {
      const writable = (await Promise.all(h.members.map(async (m) => ({ m, o: await observe(m, 2000) })))).filter(
        ({ o }) => o.reachable && o.inRecovery === false,
      );
      if (writable.length > 1)
        twoPrimaries = `${TWO_PRIMARIES}: ${writable.map(({ m }) => m.label).join(', ')} accept writes; DNS left where it is`;
    }
    await recordView(db, h.id, now, twoPrimaries);
    if (twoPrimaries) return out(twoPrimaries);
    if (typeof move === 'string') return out(move);
    const { leader, lead, off } = move;
    if (await busy(db, h.id))
      return out(`${off.map((d) => d.record.name).join(', ')} off ${lead.label}, but an operation on the herd has not finished`);
    const plan = await planOperation(db, SYSTEM_ACCESS, refreshDnsAction, [h.id]);
    if (!plan.targets.some((t) => !t.refused)) return out(`Refresh DNS refused: ${plan.targets[0]?.refused ?? '?'}`);
    const answers = off.map((d) => `${d.record.name} answers ${d.answers?.join(', ') || 'nothing'}`).join('; ');
    const [id] = await writeOperations(
      db,
      queue,
      [
        {
          action: refreshDnsAction,
          plan,
          actor: { id: null, username: 'system', access: SYSTEM_ACCESS },
          reason: `Patroni names ${leader.name} the leader (timeline ${String(leader.timeline ?? '?')}); ${answers}`,
          confirmation: plan.typeToConfirm ?? '',
          // One per herd, leader and 10 s (one worker follows at a time, under its lock; the key also holds
          // if two ever did). One that failed (two members briefly answering as primaries) is tried again soon.
          idempotencyKey: `patroni-follow:${String(h.id)}:${leader.name}:${String(leader.timeline ?? 0)}:${String(Math.floor(Date.now() / 10_000))}`,
          waves: null,
        },
      ],
      undefined,
      turn?.fence,
    );
    return id ? out(`moved: Patroni's leader is ${lead.label}; ${answers}`, id) : out('another worker started it');
  } catch (err) {
    return out(`error: ${errorText(err)}`);
  }
}

/** Every Patroni herd: its view recorded; those with a write name in step with Patroni's leader, or a Refresh DNS started. */
export async function followPatroni(
  db: Db,
  queue: Queue<TargetJob> | null,
  opts: { herdIds?: number[]; turn?: Turn } = {},
): Promise<FollowResult[]> {
  const ids = opts.herdIds ?? (await db.select({ id: herds.id }).from(herds).where(eq(herds.controlDriver, 'patroni'))).map((r) => r.id);
  if (!ids.length) return [];
  const refs = await loadHerdRefs(db, ids);
  return mapLimit(refs, 16, (h) => followHerd(db, queue, h, opts.turn));
}
