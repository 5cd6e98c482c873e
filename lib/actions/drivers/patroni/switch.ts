// Switchover and DR failover on a herd Patroni runs: pgherd asks Patroni (POST /switchover,
// POST /failover) and never promotes, stops or rewinds anything itself; Patroni's leader key is the fence.
// What pgherd adds is what Patroni does not do: the pre-flight that changes nothing, the DNS names and
// PgBouncers moved to the new leader, and the proof, read from Patroni's /cluster and from Postgres
// itself: the candidate leads and accepts writes, the others stream from it.
import { inArray } from 'drizzle-orm';
import { instances } from '@/db/schema';
import { lsnDiff, lsnToNumber } from '@/lib/adapters/format/lsn';
import { refreshFleet } from '@/lib/fleet/refresher';
import { formatBytes } from '@/lib/adapters/format/units';
import { bytesOrUnknown, chooseCandidate, lagOf } from '@/lib/fleet/candidates';
import { productionWarning, type ActionPlan, type ActionStep, type RunContext } from '@/lib/engine/define-action';
import { describeRecordMove, dnsPreflight, dnsSteps } from '@/lib/actions/steps/dns-steps';
import { errorText } from '@/lib/engine/errors';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { observe, type Observed } from '@/lib/fleet/observe';
import { checkPooler, pauseBudgetFacts, pauseSteps, repointAndResumeSteps, repointPoolerSteps } from '@/lib/actions/steps/pooler-steps';
import { DEFAULT_PAUSE_BUDGET_S } from '@/lib/actions/steps/pooler-resume';
import { refuse, type Refusal } from '@/lib/fleet/refusal';
import { describeObserved, recordNewPrimary } from '@/lib/actions/steps/topology-steps';
import { checkCredentials, failover, PatroniError, switchover, type PatroniAccess } from '@/lib/adapters/patroni/client';
import { patroniArg, patroniEndpoint, sleepUnlessStopped, verifyMember } from './steps';
import { chosenWhenItRuns, memberArg, type Arg } from '@/lib/engine/plan-identity';
import { recordTargets } from '@/lib/fleet/dns-records';
import { patroniNow, type PatroniNow } from '@/lib/fleet/patroni-view';

/** How long Patroni may take to name the new leader once asked (its own switchover waits up to 2 x loop_wait, 20 s at least). */
export const PATRONI_SWITCH_MS = 90_000;
/** How long the other members may take to stream from the new leader (Patroni rejoins the old one, with pg_rewind if needed). */
export const PATRONI_FOLLOW_MS = 120_000;

/** Whether Patroni runs the herd (its control driver; every member of a herd shares it). */
export const isPatroniHerd = (h: HerdRef) => h.members.length > 0 && h.members.every((m) => m.controlDriver === 'patroni');

/** What a Patroni switch's steps tell each other (the PgBouncer steps read `promoted` and `repointed`). */
export interface PatroniSwitchState {
  /** Patroni's member names, as its /cluster gave them at the pre-flight. */
  names?: Map<number, string>;
  /** The candidate chosen when it ran (a DR failover chooses then, from what the replicas say). */
  cand?: InstanceRef;
  /** The old leader's last position, when it answered (what a DR failover may lose is measured from it). */
  oldLsn?: string | null;
  /** The REST endpoint the pre-flight checked (the target's own Patroni, taking the credentials): the one asked. */
  endpoint?: { url: string; access: PatroniAccess };
  /** The candidate leads and accepts writes. */
  promoted: boolean;
  /** The PgBouncers already pointed at the candidate. */
  repointed: Set<number>;
}

export const newPatroniSwitchState = (): PatroniSwitchState => ({ promoted: false, repointed: new Set() });

/** Patroni's view now, or an error that says nobody answered. */
async function clusterOf(h: HerdRef): Promise<PatroniNow & { askedOf: string }> {
  const now = await patroniNow(h.members);
  if (!now.askedOf) throw new Error(`no member's Patroni answered: ${now.problems.join('; ')}`);
  return now as PatroniNow & { askedOf: string };
}

/** Patroni's name of `m` in `now`, or an error. */
function nameIn(now: PatroniNow, m: InstanceRef): string {
  const found = now.members.find((x) => x.instanceId === m.id);
  if (!found) throw new Error(`Patroni (asked of ${now.askedOf ?? 'nobody'}) does not list ${m.label}: check its REST address and port`);
  return found.name;
}

/** The first of `members` whose Patroni takes pgherd's credentials: its address and access (the pre-flight's check). */
async function reachableEndpoint(
  members: InstanceRef[],
  peers: InstanceRef[],
): Promise<{ m: InstanceRef; url: string; access: PatroniAccess }> {
  const problems: string[] = [];
  for (const m of members) {
    try {
      const { url, access } = patroniEndpoint(m);
      await verifyMember(m, url, access, peers);
      await checkCredentials(url, access);
      return { m, url, access };
    } catch (err) {
      problems.push(`${m.label}: ${err instanceof PatroniError ? err.message : errorText(err)}`);
    }
  }
  throw new Error(problems.join('; '));
}

/**
 * Waits until Patroni names `cand` the leader and its Postgres accepts writes; returns what Postgres
 * said. `sent` is the REST call's outcome: a refusal Patroni answered with, and a leader unchanged,
 * ends the wait at once (nothing was changed).
 */
async function waitLeader<S extends PatroniSwitchState>(
  h: HerdRef,
  cand: InstanceRef,
  x: RunContext<S>,
  sent: { error: unknown } | null,
): Promise<Observed> {
  const deadline = Date.now() + PATRONI_SWITCH_MS;
  let last = '';
  for (;;) {
    const now = await patroniNow(h.members);
    const leader = now.members.find((m) => m.name === now.leader);
    const o = await observe(cand, 2000);
    if (leader?.instanceId === cand.id && o.reachable && o.inRecovery === false) return o;
    last = now.askedOf
      ? `Patroni says the leader is ${now.leader ?? 'nobody (the key is free)'}; ${cand.label} ${o.reachable ? (o.inRecovery ? 'is still a replica' : 'accepts writes') : `does not answer (${o.error ?? '?'})`}`
      : `no member's Patroni answered: ${now.problems.join('; ')}`;
    // Patroni answered with a refusal and its leader is still the one it had: it did nothing.
    if (sent?.error instanceof PatroniError && sent.error.kind !== 'unreachable' && leader && leader.instanceId !== cand.id)
      throw new Error(`Patroni refused: ${sent.error.message}; ${last}; nothing was changed`);
    if (Date.now() > deadline)
      throw new Error(
        `${cand.label} is not the leader ${String(PATRONI_SWITCH_MS / 1000)} s after Patroni was asked${sent?.error ? ` (${errorText(sent.error)})` : ''}: ${last}`,
      );
    await sleepUnlessStopped(200, x.signal);
  }
}

/** The herd once `cand` leads: every other member its replica (where the DNS names point). */
function membersAfterLeaderChange(h: HerdRef, cand: InstanceRef): InstanceRef[] {
  return h.members.map((m) =>
    m.id === cand.id
      ? { ...m, role: 'primary' as const, state: 'running', upstreamId: null }
      : { ...m, role: m.role === 'primary' ? ('replica' as const) : m.role, upstreamId: cand.id },
  );
}

/**
 * Done when every other member Patroni lists runs and Postgres says it streams from the new leader
 * (Patroni rejoins the old leader itself); records the topology. A member that does not follow in
 * time fails the step with what it says: the switch itself is done, DNS already moved. `label` and
 * `planned`: the new leader as the plan names it, in words and in the step's arguments.
 */
function followStep<S extends PatroniSwitchState>(h: HerdRef, label: string, planned: Arg): ActionStep<S> {
  return {
    name: 'wait until the others stream from the new leader',
    does: { kind: 'patroni.wait-followers', leader: planned, members: h.members.map((m) => m.id) },
    says: `wait until Patroni lists every other member running and each streams from ${label} (Patroni rejoins the old leader itself), then record the topology`,
    timeoutMs: PATRONI_FOLLOW_MS + 30_000,
    run: async (x) => {
      const cand = x.state.cand;
      if (!cand) throw new Error('no candidate was chosen');
      const others = h.members.filter((m) => m.id !== cand.id);
      const deadline = Date.now() + PATRONI_FOLLOW_MS;
      let lines: string[] = [];
      for (;;) {
        const seen = await Promise.all(others.map(async (m) => ({ m, o: await observe(m, 2000) })));
        const streaming = (o: Observed) =>
          o.reachable &&
          o.inRecovery === true &&
          o.walReceiver?.status === 'streaming' &&
          // Patroni's connect_address: the leader's address or one of its names.
          [cand.address, cand.hostname, cand.host].includes(o.walReceiver.senderHost ?? '');
        lines = seen.map(({ m, o }) => `${m.label}: ${streaming(o) ? `streams from ${cand.label}` : describeObserved(m, o)}`);
        if (seen.every(({ o }) => streaming(o))) break;
        if (Date.now() > deadline) {
          x.note({ stdout: lines.join('\n') });
          const writable = seen.filter(({ o }) => o.reachable && o.inRecovery === false).map(({ m }) => m.label);
          if (writable.length)
            throw new Error(
              `TWO PRIMARIES: ${writable.join(', ')} still accept${writable.length === 1 ? 's' : ''} writes beside ${cand.label} after ${String(PATRONI_FOLLOW_MS / 1000)} s: stop ${writable.length === 1 ? 'it' : 'them'} (or fence the host) now, then look at Patroni's log`,
            );
          throw new Error(
            `${cand.label} leads and the DNS names point at it, but not every other member streams from it after ${String(PATRONI_FOLLOW_MS / 1000)} s: see Patroni's log on them`,
          );
        }
        await sleepUnlessStopped(500, x.signal);
      }
      await x.deps.db
        .update(instances)
        .set({ role: 'replica', observedRole: 'replica', upstreamInstanceId: cand.id })
        .where(
          inArray(
            instances.id,
            others.map((m) => m.id),
          ),
        );
      await refreshFleet(x.deps.db, { ids: h.members.map((m) => m.id), timeoutMs: 2000 });
      x.note({ stdout: lines.join('\n') });
    },
  };
}

/** Pre-flight lines: every member as Postgres and Patroni say, the DNS servers, the PgBouncers. */
async function seenLines<S extends PatroniSwitchState>(h: HerdRef, now: PatroniNow, x: RunContext<S>) {
  const seen = await Promise.all(h.members.map(async (m) => ({ m, o: await observe(m, 2000) })));
  const lines = seen.map(({ m, o }) => describeObserved(m, o));
  lines.push(
    `Patroni (asked of ${now.askedOf ?? '?'}): leader ${now.leader ?? 'none'}${now.paused ? ', paused (maintenance mode)' : ''}; ${now.members.map((m) => `${m.name} ${m.role} ${m.state}${typeof m.lag === 'number' ? ` lag ${formatBytes(m.lag)}` : ''}`).join(', ')}`,
  );
  lines.push(...(await dnsPreflight(h)));
  for (const pl of h.poolers) lines.push(await checkPooler(pl, x.deps, x, { pauses: true }));
  return { seen, lines };
}

/** The candidate leads: recorded, and said. */
async function promoted<S extends PatroniSwitchState>(x: RunContext<S>, cand: InstanceRef, o: Observed, asked: string) {
  x.state.promoted = true;
  await recordNewPrimary(x.deps, cand, o.timeline ?? undefined);
  x.note({
    stdout: `Patroni answered: ${asked}\nPatroni names ${cand.label} the leader; it accepts writes on timeline ${String(o.timeline ?? 'unknown')}`,
  });
}

export interface PatroniSwitchoverParams {
  candidateInstanceId?: number;
  maxLagBytes?: number;
  scheduledAt?: string;
  pauseBudgetSeconds?: number;
}

/**
 * A switchover through Patroni: the pre-flight (Patroni's leader is pgherd's primary, the candidate
 * runs and is within `maxLag`, Patroni takes the credentials, DNS and PgBouncers answer), then POST
 * /switchover; done once Patroni names the candidate and it accepts writes, the DNS names and
 * PgBouncers follow, and the others stream from it. Scheduled (`scheduledAt`): Patroni switches at that
 * time and pgherd's refresher moves the names when it does.
 */
export function planPatroniSwitchover<S extends PatroniSwitchState>(
  h: HerdRef,
  p: PatroniSwitchoverParams,
  pair: { old: InstanceRef; cand: InstanceRef },
  maxLag: number,
): ActionPlan<S> | Refusal {
  const { old, cand } = pair;
  const lag = lagOf(old, cand);
  const after = membersAfterLeaderChange(h, cand);
  const at = p.scheduledAt ? new Date(p.scheduledAt) : null;
  const budgetS = p.pauseBudgetSeconds ?? DEFAULT_PAUSE_BUDGET_S;
  const facts = switchoverFacts(h, pair, { lag, maxLag, at, budgetS });
  const refusedForLag =
    lag !== null && lag > maxLag ? refuse('lag', `${cand.label} is ${formatBytes(lag)} behind (limit ${formatBytes(maxLag)})`) : undefined;
  const preflight = switchoverPreflightStep<S>(h, pair, maxLag);
  const ask = askSwitchover<S>(pair, at);
  if (at)
    return {
      facts,
      refused: refusedForLag,
      warnings: [
        ...productionWarning(h),
        'the switchover happens at the scheduled time, whatever the herd looks like then: Patroni checks it, not pgherd',
      ],
      steps: [preflight, scheduleSwitchoverStep<S>(h, pair, at, ask)],
    };
  return {
    change: { kind: 'switchover', candidateId: cand.id },
    facts,
    refused: refusedForLag,
    warnings: [
      ...productionWarning(h),
      h.poolers.length
        ? 'writes through PgBouncer wait during the switch; direct connections to the old leader are closed'
        : 'clients connected to the old leader lose their connections; the herd has no PgBouncer to hold them',
    ],
    steps: [
      preflight,
      ...pauseSteps<S>(h.poolers, (st) => st.cand, budgetS),
      switchStep<S>(h, pair, ask),
      ...dnsSteps(
        h,
        () => after,
        (r) => recordTargets(r, after),
        (r) => describeRecordMove(r, after),
      ),
      ...repointAndResumeSteps<S>(h.poolers, (st) => st.cand, cand),
      followStep(h, cand.label, memberArg(cand)),
    ],
  };
}

type Pair = { old: InstanceRef; cand: InstanceRef };

/** The confirmation page's facts of a switchover through Patroni. */
function switchoverFacts(
  h: HerdRef,
  { old, cand }: Pair,
  { lag, maxLag, at, budgetS }: { lag: number | null; maxLag: number; at: Date | null; budgetS: number },
) {
  return [
    { label: 'Run by', value: 'Patroni: pgherd asks, Patroni switches over (pgherd stops, starts and promotes nothing itself)' },
    { label: 'Old leader', value: old.label },
    { label: 'New leader', value: `${cand.label}${cand.site ? ` (site ${cand.site})` : ''}` },
    { label: 'Lag now', value: `${bytesOrUnknown(lag)} (limit ${formatBytes(maxLag)})` },
    {
      label: 'Patroni will be asked',
      value: `POST /switchover {leader: ${old.label}, candidate: ${cand.label}${at ? `, scheduled_at: ${at.toISOString()}` : ''}}`,
    },
    at
      ? {
          label: 'When',
          value: `${at.toISOString()}, by Patroni; pgherd's refresher moves the DNS names once Patroni names the new leader`,
        }
      : {
          label: 'pgherd checks afterwards',
          value: `Patroni's /cluster names ${cand.label} the leader, it accepts writes, every other member streams from it`,
        },
    ...h.dns.map((r) => ({ label: `DNS ${r.name}`, value: `${r.type} -> ${cand.hostname}, TTL ${r.ttl} s` })),
    {
      label: 'Committed transactions lost',
      value: 'none: Patroni shuts the old leader down cleanly and the candidate takes over from there',
    },
    ...(at ? [] : pauseBudgetFacts(h.poolers, budgetS)),
  ];
}

/** What pgherd checks before it asks anything of Patroni: its leader and candidate as planned, Patroni and Postgres agreeing the candidate streams within the limit. */
function switchoverPreflightStep<S extends PatroniSwitchState>(h: HerdRef, { old, cand }: Pair, maxLag: number): ActionStep<S> {
  return {
    name: 'pre-flight',
    does: {
      kind: 'patroni.switchover-preflight',
      leader: patroniArg(old),
      candidate: patroniArg(cand),
      maxLagBytes: maxLag,
      dns: h.dns.map((r) => r.id),
      poolers: h.poolers.map((pl) => pl.id),
    },
    says: `pre-flight: Patroni takes pgherd's credentials and names ${old.label} the leader, ${cand.label} runs within ${formatBytes(maxLag)}, the DNS servers answer${h.poolers.length ? ', the PgBouncers answer' : ''} (changes nothing)`,
    timeoutMs: 45_000,
    run: async (x) => {
      const fail: PreflightFail = (lines, why, code = 'topology') => {
        x.note({ stdout: lines.join('\n') });
        return refuse(code, `${why}; nothing was changed`);
      };
      const endpoint = await reachableEndpoint(
        [old, cand, ...h.members.filter((m) => m.id !== old.id && m.id !== cand.id)],
        h.members,
      ).catch((err: unknown) => {
        throw refuse('unreachable', `pre-flight: ${errorText(err)}; nothing was changed`);
      });
      const now = await clusterOf(h);
      const { lines } = await seenLines(h, now, x);
      lines.unshift(`${endpoint.url} takes pgherd's credentials`);
      const oldName = nameIn(now, old);
      const candName = nameIn(now, cand);
      if (now.leader !== oldName)
        throw fail(lines, `Patroni's leader is ${now.leader ?? 'nobody'}, not ${old.label} as planned: refresh the herd and plan again`);
      const c = now.members.find((m) => m.name === candName);
      if (!c || !['running', 'streaming'].includes(c.state) || c.role === 'leader')
        throw fail(lines, `Patroni lists ${cand.label} as ${c ? `${c.role}, ${c.state}` : 'absent'}: it cannot take over`);
      if (c.noFailover)
        throw fail(lines, `${cand.label} is tagged nofailover in its Patroni configuration: Patroni never makes it the leader`);
      // Asked of the candidate's own Patroni: a hung one would take the switch and never promote.
      await reachableEndpoint([cand], h.members).catch((err: unknown) => {
        throw fail(lines, `the candidate's own Patroni: ${errorText(err)}`, 'unreachable');
      });
      // An immediate switchover would cancel it without a word; a second one cannot be scheduled.
      if (now.scheduledSwitchover)
        throw fail(
          lines,
          `Patroni has a switchover scheduled at ${now.scheduledSwitchover.at}${now.scheduledSwitchover.to ? ` to ${now.scheduledSwitchover.to}` : ''}: let it run, or flush it first (patronictl flush ${old.patroniScope} switchover)`,
        );
      await lagPerPostgres({ old, cand }, c.lag, maxLag, lines, fail);
      // Patroni lists a replica as running (lag 0) before, and while, its WAL receiver is not streaming:
      // what the leader commits meanwhile is not on it. A switchover to it could lose acknowledged
      // commits; Postgres itself says whether it streams.
      const co = await observe(cand, 3000);
      if (!co.reachable || co.walReceiver?.status !== 'streaming')
        throw fail(
          lines,
          `${cand.label} does not stream from the leader (${co.reachable ? `WAL receiver ${co.walReceiver?.status ?? 'not running'}` : (co.error ?? 'not answering')}): a switchover now could lose what it has not received`,
          'lag',
        );
      x.state.names = new Map([
        [old.id, oldName],
        [cand.id, candName],
      ]);
      x.state.cand = cand;
      x.state.endpoint = { url: endpoint.url, access: endpoint.access };
      x.note({ stdout: lines.join('\n') });
    },
  };
}

/** How a pre-flight refuses: its lines noted, then the refusal (nothing was changed). */
type PreflightFail = (lines: string[], why: string, code?: Parameters<typeof refuse>[0]) => Refusal;

/** The switchover pre-flight's lag check, when Patroni's report is over the limit (or unknown): Postgres asked itself. */
async function lagPerPostgres({ old, cand }: Pair, lag: number | 'unknown' | null, maxLag: number, lines: string[], fail: PreflightFail) {
  // Patroni's lag is its members' last report (a loop_wait old at most): a leader that wrote a segment
  // since reads as far ahead. Over the limit by Patroni, it is asked of Postgres itself: the leader's
  // position now against what the candidate has received; only that refuses.
  if (lag === 'unknown' || (typeof lag === 'number' && lag > maxLag)) {
    const [lo, co0] = await Promise.all([observe(old, 3000), observe(cand, 3000)]);
    const seen = lo.reachable && co0.reachable ? lsnDiff(lo.lsn, co0.receiveLsn ?? co0.lsn) : null;
    if (seen === null || seen > maxLag)
      throw fail(
        lines,
        `${cand.label} is ${lag === 'unknown' ? 'an unknown amount' : formatBytes(lag)} behind per Patroni and ${seen === null ? 'an unknown amount' : formatBytes(Math.max(0, seen))} per Postgres (limit ${formatBytes(maxLag)})`,
        'lag',
      );
    lines.push(
      `${cand.label}: ${formatBytes(Math.max(0, seen))} behind per Postgres now (Patroni's last report said ${lag === 'unknown' ? 'unknown' : formatBytes(lag)})`,
    );
  }
}

/** POST /switchover to the Patroni the pre-flight found answering, with the names it read (at a time, when scheduled). */
function askSwitchover<S extends PatroniSwitchState>({ old, cand }: Pair, at: Date | null): (x: RunContext<S>) => Promise<string> {
  return async (x: RunContext<S>) => {
    const leader = x.state.names?.get(old.id);
    const candidate = x.state.names?.get(cand.id);
    if (!leader || !candidate) throw new Error('the pre-flight did not run');
    if (!x.state.endpoint) throw new Error('the pre-flight did not run');
    const { url, access } = x.state.endpoint;
    x.note({ command: `POST ${url}/switchover {leader: ${leader}, candidate: ${candidate}}` });
    return switchover(url, access, { leader, candidate, ...(at ? { scheduledAt: at } : {}) });
  };
}

/** A scheduled switchover: asked of Patroni, then seen in its /cluster. */
function scheduleSwitchoverStep<S extends PatroniSwitchState>(
  h: HerdRef,
  { cand, old }: Pair,
  at: Date,
  ask: (x: RunContext<S>) => Promise<string>,
): ActionStep<S> {
  return {
    name: 'schedule the switchover',
    does: {
      kind: 'patroni.call',
      call: 'POST /switchover',
      leader: memberArg(old),
      candidate: memberArg(cand),
      scheduledAt: at.toISOString(),
    },
    says: `ask Patroni to switch over at ${at.toISOString()} (POST /switchover with scheduled_at)`,
    timeoutMs: 30_000,
    run: async (x) => {
      const answer = await ask(x);
      const now = await clusterOf(h);
      if (!now.scheduledSwitchover) throw new Error(`Patroni answered "${answer}" but /cluster shows no scheduled switchover`);
      x.deps.outcome?.(
        `Patroni will switch over to ${cand.label} at ${now.scheduledSwitchover.at}; the refresher moves the DNS names when it does`,
      );
      x.note({
        stdout: `Patroni answered: ${answer}\n/cluster: scheduled at ${now.scheduledSwitchover.at} to ${now.scheduledSwitchover.to ?? '?'}`,
      });
    },
  };
}

/** The switchover now: asked, then Patroni's /cluster and Postgres watched until the candidate leads and takes writes. */
function switchStep<S extends PatroniSwitchState>(
  h: HerdRef,
  { old, cand }: Pair,
  ask: (x: RunContext<S>) => Promise<string>,
): ActionStep<S> {
  return {
    name: `switch over to ${cand.label} through Patroni`,
    does: { kind: 'patroni.call', call: 'POST /switchover', leader: memberArg(old), candidate: memberArg(cand) },
    says: `POST /switchover to Patroni, then wait until its /cluster names ${cand.label} the leader and it accepts writes`,
    timeoutMs: PATRONI_SWITCH_MS + 90_000,
    run: async (x) => {
      let answer = '';
      let sent: { error: unknown } = { error: null };
      try {
        answer = await ask(x);
      } catch (err) {
        sent = { error: err }; // what it did is read from /cluster, never from the answer alone
        answer = errorText(err);
      }
      await promoted(x, cand, await waitLeader(h, cand, x, sent), answer);
    },
  };
}

export interface PatroniFailoverParams {
  candidateInstanceId?: number;
}

/**
 * A DR failover through Patroni: POST /failover to a candidate (Patroni allows it without a healthy
 * leader; a leader still holding its key is demoted by Patroni). The candidate, when not named, is the
 * replica with the most WAL received when it runs. Done once Patroni names it and it accepts writes;
 * then DNS and PgBouncers follow, and what the old leader had that the candidate did not is reported.
 */
export function planPatroniFailover<S extends PatroniSwitchState>(
  h: HerdRef,
  p: PatroniFailoverParams,
  state?: () => S,
): ActionPlan<S> | Refusal {
  const named = p.candidateInstanceId !== undefined ? chooseCandidate(h.members, p.candidateInstanceId) : null;
  if (typeof named === 'string') return refuse('topology', named);
  const replicas = h.members.filter((m) => m.role === 'replica');
  if (!replicas.length) return refuse('topology', 'the herd has no replica to fail over to');
  const old = h.members.find((m) => m.role === 'primary') ?? null;
  const label = named?.label ?? 'the replica with the most WAL';
  // The new leader in the steps' arguments: the one named, else the rule Patroni's candidate is chosen by when it runs.
  const planned = named ? memberArg(named) : chosenWhenItRuns('most WAL received');
  const after = (s: S) => (s.cand ? membersAfterLeaderChange(h, s.cand) : h.members);
  // Drawn after: the named candidate, else the replica the inventory last saw least behind (Patroni may pick another).
  const likely = named ?? [...replicas].sort((a, b) => (a.lagBytes ?? Infinity) - (b.lagBytes ?? Infinity))[0];
  return {
    ...(likely ? { change: { kind: 'failover' as const, candidateId: likely.id } } : {}),
    facts: failoverFacts(h, old, named, label),
    warnings: [
      ...productionWarning(h),
      'a failover may lose the commits the candidate never received: prefer a switchover while the leader is healthy',
    ],
    ...(state ? { state } : {}),
    steps: [
      failoverPreflightStep<S>(h, { old, named, label, planned }),
      failoverStep<S>(h, planned),
      ...dnsSteps(
        h,
        after,
        (r) => (named ? recordTargets(r, membersAfterLeaderChange(h, named)) : { chosenWhenItRuns: 'most WAL received' }),
        (r) => `point ${r.name} at the new leader, then ask the zone\u2019s server until it answers so`,
      ),
      ...repointPoolerSteps<S>(
        h.poolers,
        (s) => {
          if (!s.cand) throw new Error('no candidate was chosen');
          return s.cand;
        },
        'the new leader',
        planned,
      ),
      followStep(h, 'the new leader', planned),
    ],
  };
}

/** The confirmation page's facts of a DR failover through Patroni. */
function failoverFacts(h: HerdRef, old: InstanceRef | null, named: InstanceRef | null, label: string) {
  return [
    {
      label: 'Run by',
      value: 'Patroni: pgherd asks, Patroni fails over (its leader key is the fence: a leader that loses it is demoted)',
    },
    { label: 'Old leader', value: old?.label ?? 'none recorded' },
    { label: 'New leader', value: named ? named.label : 'the replica with the most WAL received, measured when it runs' },
    { label: 'Patroni will be asked', value: `POST /failover {candidate: ${label}}, at the candidate's own Patroni` },
    {
      label: 'pgherd checks afterwards',
      value: `Patroni's /cluster names the candidate the leader, it accepts writes, every other member streams from it`,
    },
    ...h.dns.map((r) => ({ label: `DNS ${r.name}`, value: `${r.type} -> the new leader, TTL ${r.ttl} s` })),
    { label: 'Committed transactions lost', value: 'what the old leader had that the candidate never received: measured and reported' },
  ];
}

/**
 * The failover's pre-flight (changes nothing): Patroni not paused, the candidate (the one named, else the
 * replica with the most WAL received) a running replica Patroni lists and may make leader, its own
 * Patroni taking the credentials; the old leader's last position kept, for what the failover may lose.
 */
function failoverPreflightStep<S extends PatroniSwitchState>(
  h: HerdRef,
  { old, named, label, planned }: { old: InstanceRef | null; named: InstanceRef | null; label: string; planned: Arg },
): ActionStep<S> {
  return {
    name: 'pre-flight',
    does: {
      kind: 'patroni.failover-preflight',
      candidate: planned,
      dns: h.dns.map((r) => r.id),
      poolers: h.poolers.map((pl) => pl.id),
    },
    says: `pre-flight: choose ${label}, check that its Patroni takes pgherd's credentials and lists it running, the DNS servers answer (changes nothing)`,
    timeoutMs: 45_000,
    run: async (x) => {
      const now = await clusterOf(h);
      const { seen, lines } = await seenLines(h, now, x);
      const fail = (why: string, code: Parameters<typeof refuse>[0] = 'topology') => {
        x.note({ stdout: lines.join('\n') });
        return refuse(code, `${why}; nothing was changed`);
      };
      const pos = (o: Observed) => {
        const at = o.receiveLsn ?? o.lsn;
        return at ? lsnToNumber(at) : -1;
      };
      const listedRunning = (m: InstanceRef) => {
        const pm = now.members.find((y) => y.instanceId === m.id);
        return !!pm && ['running', 'streaming'].includes(pm.state) && pm.role !== 'leader';
      };
      const candidates = seen
        .filter(
          ({ m, o }) => (named ? m.id === named.id : m.role === 'replica') && o.reachable && o.inRecovery === true && listedRunning(m),
        )
        .sort((a, b) => pos(b.o) - pos(a.o));
      // Paused, Patroni neither demotes an old leader that comes back nor keeps it out: two primaries.
      if (now.paused)
        throw fail(
          'Patroni is paused (maintenance mode): a leader that is only slow would keep its lock and stay writable beside the new one. Resume Patroni first (or, if the old leader is surely gone, resume and let Patroni fail over)',
        );
      const chosen = candidates.find(({ m }) => !now.members.find((y) => y.instanceId === m.id)?.noFailover);
      if (!chosen)
        throw fail(
          named ? `${named.label} is not a running replica that Patroni lists` : 'no replica answers as one that Patroni lists running',
        );
      const endpoint = await reachableEndpoint([chosen.m], h.members).catch((err: unknown) => {
        throw fail(`pre-flight: ${errorText(err)}`, 'unreachable');
      });
      const oldSeen = old ? seen.find(({ m }) => m.id === old.id)?.o : undefined;
      x.state.oldLsn = oldSeen?.reachable && oldSeen.inRecovery === false ? oldSeen.lsn : null;
      x.state.cand = chosen.m;
      x.state.names = new Map([[chosen.m.id, nameIn(now, chosen.m)]]);
      lines.unshift(
        `${endpoint.url} takes pgherd's credentials; candidate ${chosen.m.label} (received ${chosen.o.receiveLsn ?? chosen.o.lsn ?? '?'})`,
      );
      x.note({ stdout: lines.join('\n') });
    },
  };
}

/** POST /failover to the candidate's own Patroni; done once its /cluster names the candidate and it takes writes, with what may be lost said. */
function failoverStep<S extends PatroniSwitchState>(h: HerdRef, planned: Arg): ActionStep<S> {
  return {
    name: 'fail over through Patroni',
    does: { kind: 'patroni.call', call: 'POST /failover', candidate: planned },
    says: `POST /failover to the candidate's Patroni, then wait until its /cluster names the candidate the leader and it accepts writes`,
    timeoutMs: PATRONI_SWITCH_MS + 90_000,
    run: async (x) => {
      const cand = x.state.cand;
      const name = cand ? x.state.names?.get(cand.id) : undefined;
      if (!cand || !name) throw new Error('the pre-flight did not run');
      const { url, access } = patroniEndpoint(cand);
      x.note({ command: `POST ${url}/failover {candidate: ${name}}` });
      let answer = '';
      let sent: { error: unknown } = { error: null };
      try {
        answer = await failover(url, access, name);
      } catch (err) {
        sent = { error: err };
        answer = errorText(err);
      }
      const o = await waitLeader(h, cand, x, sent);
      await promoted(x, cand, o, answer);
      const lost = x.state.oldLsn && o.lsn ? lsnToNumber(x.state.oldLsn) - lsnToNumber(o.lsn) : null;
      x.deps.outcome?.(
        `${cand.label} leads${lost !== null && lost > 0 ? `; the old leader was ${formatBytes(lost)} ahead when last seen: those commits may be lost` : ''}`,
      );
    },
  };
}
