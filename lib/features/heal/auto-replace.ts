// Auto-replace (docs/grow.md): a herd that heals itself, off unless a policy says so. Each round (a
// worker's chore, one worker at a time) looks at the members of the herds a policy covers that have
// not answered for the policy's time, and for each one decides, with its evidence:
//   1. its host is gone by someone else's word than pgherd's own observations: EC2 says the instance is
//      stopped, terminated or impaired (or no longer lists it), or, on a server without EC2, its agent
//      has gone silent. Without such a word nothing is done (a network blip is not a dead host);
//   2. proved, not assumed: its host is asked over SSH whether Postgres runs there. A host that answers
//      and runs it is never replaced;
//   3. the guard rails: no blackout over it, no other replacement (or evacuation) of its herd open, the
//      environment's budget of replacements this hour not spent, not stopped on purpose (Stop, Power
//      off, maintenance mode), not the primary unless the policy allows the DR failover first;
//   4. then the system runs Replace member on it (a replica), or DR failover on its herd (the primary,
//      when allowed; the member is replaced in a later round, once a replica), audited with its evidence,
//      and the herd.auto_replaced webhook is told.
// A decision to hold is written (and audited) when its reason changes, not every round.
import path from 'node:path';
import { sql } from 'drizzle-orm';
import type { Queue } from 'bullmq';
import { DescribeInstanceStatusCommand, type EC2Client } from '@aws-sdk/client-ec2';
import type { Db } from '@/db/client';
import type { SshPool } from '@/lib/adapters/ssh/ssh-client';
import { describeInstancesById, instanceNotFound } from '@/lib/adapters/aws/ec2';
import { SshTimeoutError } from '@/lib/adapters/ssh/ssh-errors';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { planOperation } from '@/lib/engine/plan';
import type { TargetJob } from '@/lib/engine/queue';
import { writeOperations } from '@/lib/engine/submit';
import { writeAudit } from '@/lib/engine/write-audit';
import { errorText } from '@/lib/engine/errors';
import { driverFor, STATUS_NOT_RUNNING } from '@/lib/fleet/drivers';
import { replaceAction } from '@/lib/actions/grow/replace.action';
import { drFailoverAction } from '@/lib/actions/topology/dr-failover.action';
import { isHerdAction, type AnyAction } from '@/lib/engine/define-action';
import { actions } from '@/lib/actions/registry';
import type { Executor } from '@/lib/engine/turns';
import { loadInstanceRefs, type InstanceRef } from '@/lib/fleet/instance-ref';

/** A member a policy covers that has not answered for the policy's time, with its policy and its agent's silence. */
type Silent = {
  id: number;
  label: string;
  herd_id: number;
  environment_id: number;
  silent_s: number;
  after_seconds: number;
  per_hour: number;
  primaries: boolean;
  agent: boolean;
  agent_silent_s: number | null;
  agent_interval: number;
};

export interface Decision {
  instanceId: number;
  label: string;
  verdict: 'replace' | 'failover' | 'held';
  reason: string;
  evidence: Record<string, unknown>;
  operationId: number | null;
}

export interface RoundDeps {
  db: Db;
  queue: Queue<TargetJob> | null;
  ssh: SshPool;
  /** EC2 in a region (the worker's clients; null: AWS is not configured here). */
  ec2For: ((region: string) => EC2Client) | null;
  log?: (event: string, fields: object) => void;
  /** The chore's turn, confirmed in every transaction that decides (lib/engine/turns.ts). */
  fence?: (tx: Executor) => Promise<void>;
}

/** An environment's replacements an hour when it has no policy of its own (its herds' policies do not set it). */
const DEFAULT_PER_HOUR = 2;

/** The members to look at this round: covered by an enabled policy, silent for longer than its time, not stopped on purpose. */
async function silentMembers(db: Db): Promise<Silent[]> {
  const res = await db.execute<Silent>(sql`
    WITH pol AS (
      SELECT h.id AS herd_id, coalesce(hp.enabled, ep.enabled, false) AS enabled,
             coalesce(hp.after_seconds, ep.after_seconds) AS after_seconds,
             -- The budget is the environment's: its policy's figure, else the default, whatever a herd's says.
             coalesce(ep.per_hour, ${DEFAULT_PER_HOUR}) AS per_hour, coalesce(hp.primaries, ep.primaries, false) AS primaries
      FROM herds h
      LEFT JOIN auto_replace_policies ep ON ep.environment_id = h.environment_id AND ep.herd_id IS NULL
      -- A herd's own policy counts only in the environment it was made in (a herd moved since is the new one's).
      LEFT JOIN auto_replace_policies hp ON hp.herd_id = h.id AND hp.environment_id = h.environment_id
      WHERE ep.id IS NOT NULL OR hp.id IS NOT NULL)
    SELECT i.id::float8 AS id, s.hostname || ':' || i.port AS label, h.id AS herd_id, e.id AS environment_id,
           extract(epoch FROM now() - coalesce(i.answered_at, i.created_at))::int AS silent_s,
           pol.after_seconds, pol.per_hour, pol.primaries, s.agent_token_hash IS NOT NULL AS agent,
           extract(epoch FROM now() - s.last_seen_at)::int AS agent_silent_s, s.agent_interval_seconds AS agent_interval
    FROM instances i JOIN pol ON pol.herd_id = i.herd_id AND pol.enabled
    JOIN herds h ON h.id = i.herd_id JOIN environments e ON e.id = h.environment_id JOIN servers s ON s.id = i.server_id
    WHERE i.state IN ('unreachable', 'stopped')
      AND coalesce(i.answered_at, i.created_at) < now() - pol.after_seconds * interval '1 second'
      AND h.automation = 'enabled' AND h.control_driver IN ('pg_ctl', 'pg_ctlcluster', 'systemd')
    ORDER BY i.id`);
  return res.rows;
}

/** Why the host counts as gone by a word other than pgherd's own observations, or null (nothing is done). */
/**
 * How the host is gone: `away` (EC2 says it is stopped, terminated or no longer there: nothing can run on
 * it), or `impaired`, `agent` (it may still run: only SSH saying Postgres does not run proves it).
 */
type GoneKind = 'away' | 'impaired' | 'agent';

async function hostGone(
  m: Silent,
  t: InstanceRef,
  deps: RoundDeps,
): Promise<{ gone: string | null; kind?: GoneKind; held?: string; evidence: Record<string, unknown> }> {
  if (t.cloud) {
    const id = t.cloud.instanceId;
    if (!deps.ec2For) return { gone: null, evidence: { ec2: 'AWS is not configured on this worker: EC2 cannot be asked' } };
    try {
      const c = deps.ec2For(t.cloud.region);
      let i;
      try {
        [i] = await describeInstancesById(c, t.cloud.region, [id]);
      } catch (err) {
        // EC2 answers NotFound for an instance terminated long ago (the worker's account is the one discovery reads).
        if (!instanceNotFound(err)) throw err;
      }
      if (!i) return { gone: `EC2 no longer lists ${id}`, kind: 'away', evidence: { ec2: 'not listed' } };
      const evidence0 = { ec2: i.state, stateReason: i.stateReason };
      // Stopped by a person (in EC2's console, or pgherd's own Power off and Resize): on purpose, never a death.
      if (['stopped', 'stopping'].includes(i.state) && /UserInitiated/i.test(i.stateReason))
        return { gone: null, held: `EC2 says ${id} was stopped by a person (${i.stateReason}): on purpose`, evidence: evidence0 };
      if (['stopped', 'stopping', 'terminated', 'shutting-down'].includes(i.state))
        return { gone: `EC2 says ${id} is ${i.state}`, kind: 'away', evidence: evidence0 };
      const st = await c.send(new DescribeInstanceStatusCommand({ InstanceIds: [id] }));
      const s = st.InstanceStatuses?.[0];
      const instance = s?.InstanceStatus?.Status ?? 'unknown';
      const system = s?.SystemStatus?.Status ?? 'unknown';
      const evidence = { ec2: i.state, instanceStatus: instance, systemStatus: system };
      if (instance === 'impaired' || system === 'impaired')
        return { gone: `EC2's status checks say ${id} is impaired`, kind: 'impaired', evidence };
      return { gone: null, evidence };
    } catch (err) {
      return { gone: null, evidence: { ec2: `not answered: ${errorText(err)}` } };
    }
  }
  if (!m.agent || m.agent_silent_s === null)
    return { gone: null, evidence: { agent: 'no agent has reported for this server, and it is not an EC2 instance pgherd knows' } };
  // Silent: no report for the policy's time, and for three of its own intervals (as reported: at most an hour's worth).
  const need = Math.max(m.after_seconds, 3 * Math.min(Math.max(m.agent_interval, 0), 1200));
  if (m.agent_silent_s >= need)
    return { gone: 'its agent has stopped reporting', kind: 'agent', evidence: { agentSilentS: m.agent_silent_s } };
  return { gone: null, evidence: { agentSilentS: m.agent_silent_s } };
}

/** A connection that did not reach the host at all (refused, timed out, no route), not one it turned away (a key, a login). */
const unreachable = (err: unknown) =>
  err instanceof SshTimeoutError ||
  ['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EHOSTDOWN'].includes((err as { code?: string }).code ?? '') ||
  ['client-socket', 'client-timeout'].includes((err as { level?: string }).level ?? '');

interface Probe {
  /** true: runs; false: proved not to (SSH says so, or the host is unreachable: `away`); null: cannot tell. */
  runs: boolean | null;
  said: string;
  /** The host did not answer SSH at all. */
  away?: boolean;
}

/**
 * Proved over SSH: whether Postgres runs on its host (never assumed from a silence). A host that does not
 * answer at all is `away` (proof only where EC2 says the instance is gone); one that turns pgherd away (a
 * key that changed, a login refused) cannot tell.
 */
async function hostRunsIt(t: InstanceRef, ssh: SshPool): Promise<Probe> {
  if (!t.ssh.hostKeyFingerprint) return { runs: null, said: 'no pinned host key: its host cannot be asked' };
  try {
    const r = await ssh.exec(t.ssh, driverFor(t.controlDriver).status(t), { timeoutMs: 15_000, readOnly: true });
    if (r.code === 0) return { runs: true, said: 'its host answers SSH and runs it' };
    if (r.code === STATUS_NOT_RUNNING) return { runs: false, said: 'its host answers SSH: no server runs on its data directory' };
    return {
      runs: null,
      said: `its host answers SSH but cannot tell whether it runs (status exited ${String(r.code ?? r.signal ?? '?')})`,
    };
  } catch (err) {
    if (unreachable(err)) return { runs: false, away: true, said: 'its host does not answer SSH' };
    return { runs: null, said: `its host turned SSH away (${errorText(err)})` };
  }
}

/** How long a member proven down is watched before it is replaced: the policy's time, at most a minute. */
const watchMs = (m: Silent) => Math.min(m.after_seconds, 60) * 1000;

/**
 * Watches the member's host for `ms`, asking it every second whether Postgres runs there, and reads
 * whether pgherd's observations reached it meanwhile: a member that flaps (up a moment every 20 s) comes
 * back during the watch and is not replaced. `runs` false only when no probe saw it run and every one
 * proved it does not: SSH saying so, or, where EC2 says the instance is gone, a host that does not answer.
 */
async function watch(db: Db, m: Silent, t: InstanceRef, ssh: SshPool, ms: number, kind: GoneKind): Promise<Probe> {
  const from = new Date();
  const until = Date.now() + ms;
  let last: Probe = { runs: null, said: 'not asked' };
  let proved = 0;
  let probes = 0;
  while (Date.now() < until) {
    const started = Date.now();
    last = await hostRunsIt(t, ssh);
    probes++;
    if (last.runs === true) return { runs: true, said: `${last.said} (seen on probe ${probes} of the watch)` };
    // A host that does not answer proves nothing where it may still run (impaired, an agent silent).
    if (last.runs === false && (!last.away || kind === 'away')) proved++;
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - started))));
  }
  const [seen] = (await db.execute<{ answered: boolean }>(sql`SELECT answered_at >= ${from} AS answered FROM instances WHERE id = ${m.id}`))
    .rows;
  if (seen?.answered) return { runs: true, said: "pgherd's observations reached it during the watch" };
  if (proved < probes)
    return { runs: null, said: last.away ? `${last.said}, and EC2 does not say it is gone: it may still run` : last.said };
  return { runs: false, said: `${last.said}, on each of ${probes} probes over ${Math.round(ms / 1000)} s` };
}

/** The actions on a herd as a whole (a target of one of another member's, its instance since retired, has no instance either). */
const HERD_ACTIONS = () => actions.filter(isHerdAction).map((a) => a.name);

/** Whatever keeps it from being replaced now, in words that stay the same while it does (a held decision is written when they change). */
async function heldBack(db: Executor, m: Silent): Promise<string | null> {
  const [r] = (
    await db.execute<{ blackout: string | null; open: string | null; spent: number; acted: string | null; came_back: boolean }>(sql`
      SELECT
        (SELECT b.name FROM blackouts b WHERE b.starts_at <= now() AND b.ends_at > now()
           AND ((b.environment_id IS NULL AND b.herd_id IS NULL) OR b.environment_id = ${m.environment_id} OR b.herd_id = ${m.herd_id})
           ORDER BY b.id LIMIT 1) AS blackout,
        -- Anything running on its herd (a resize stops instances, a replacement is one at a time): decided after it.
        (SELECT o.action || ' #' || o.id FROM operation_targets t JOIN operations o ON o.id = t.operation_id
           WHERE t.herd_id = ${m.herd_id} AND t.status IN ('queued', 'running') ORDER BY o.id LIMIT 1) AS open,
        (SELECT count(*)::int FROM auto_replace_decisions d
           WHERE d.environment_id = ${m.environment_id} AND d.verdict IN ('replace', 'failover') AND d.decided_at > now() - interval '1 hour') AS spent,
        -- Acted on since it last answered (a Stop, a Power off, a resize, a failover of its herd, an earlier
        -- replacement that failed), however it ended: a person's business now, not a silence to heal.
        (SELECT o.action || ' #' || o.id FROM operation_targets t JOIN operations o ON o.id = t.operation_id
           WHERE (t.instance_id = ${m.id} OR (t.herd_id = ${m.herd_id} AND o.action = ANY(${sql.param(HERD_ACTIONS())}::text[])))
             AND t.updated_at >= coalesce((SELECT i.answered_at FROM instances i WHERE i.id = ${m.id}), '-infinity')
           ORDER BY o.id DESC LIMIT 1) AS acted,
        -- Came back while watched within the hour: a member that flaps is left to a person.
        EXISTS (SELECT 1 FROM auto_replace_decisions d WHERE d.instance_id = ${m.id} AND d.verdict = 'held'
                  AND d.reason LIKE 'it came back while watched%' AND d.decided_at > now() - interval '1 hour') AS came_back`)
  ).rows;
  if (!r) return null;
  if (r.blackout !== null) return `a blackout is on (${r.blackout})`;
  if (r.open !== null) return `an operation runs on its herd (${r.open}): one thing at a time`;
  if (r.acted !== null) return `pgherd acted on it since it last answered (${r.acted}): a person decides`;
  if (r.spent >= m.per_hour) return `the environment's budget is spent: ${m.per_hour} replacement(s) an hour`;
  if (r.came_back) return 'a member that came back while watched in the last hour is left to a person (it flaps)';
  return null;
}

/** Beside the member's data directory, in a folder of its own (`/srv/pg/15/main` gives `/srv/pg/15-auto-<tag>/main`). */
const successorDirectory = (dataDirectory: string, tag: string) => {
  const folder = path.dirname(dataDirectory);
  return path.join(path.dirname(folder), `${path.basename(folder)}-auto-${tag}`, path.basename(dataDirectory));
};

/** The advisory lock key space of an environment's auto-replace budget (its id the second key). */
const BUDGET_LOCK = 73_100_001;

/** Writes a decision and its audit entry (in `db`: a transaction where it must count with a check). */
async function insertDecision(db: Executor, m: Silent, d: Omit<Decision, 'instanceId' | 'label'>): Promise<number> {
  const [row] = (
    await db.execute<{ id: number }>(sql`
      INSERT INTO auto_replace_decisions (environment_id, herd_id, instance_id, label, verdict, reason, evidence, operation_id)
      VALUES (${m.environment_id}, ${m.herd_id}, ${m.id}, ${m.label}, ${d.verdict}, ${d.reason}, ${JSON.stringify(d.evidence)}::jsonb, ${d.operationId})
      RETURNING id::float8 AS id`)
  ).rows;
  await writeAudit(db, {
    user: { id: null, username: 'system' },
    action: `auto_replace.${d.verdict}`,
    objectType: 'instances',
    objectId: String(m.id),
    objectLabel: `${m.label}: ${d.reason}`,
    environmentId: m.environment_id,
    changes: { evidence: [null, d.evidence] },
  });
  return row?.id ?? 0;
}

/** A held decision, written (and audited) only when its reason is not the member's last one's. */
async function recordHeld(deps: RoundDeps, m: Silent, reason: string, evidence: Record<string, unknown>): Promise<Decision | null> {
  const [last] = (
    await deps.db.execute<{ verdict: string; reason: string }>(
      sql`SELECT verdict, reason FROM auto_replace_decisions WHERE instance_id = ${m.id} ORDER BY id DESC LIMIT 1`,
    )
  ).rows;
  if (last?.verdict === 'held' && last.reason === reason) return null;
  const d = { verdict: 'held' as const, reason, evidence, operationId: null };
  await deps.db.transaction(async (tx) => {
    await deps.fence?.(tx);
    await insertDecision(tx, m, d);
  });
  return { ...d, instanceId: m.id, label: m.label };
}

/** One member: held (and why), or the operation the system started for it. */
async function decide(deps: RoundDeps, m: Silent, t: InstanceRef, busy: Set<number>): Promise<Decision | null> {
  const evidence: Record<string, unknown> = { silentS: m.silent_s, afterS: m.after_seconds, state: t.state, role: t.role };
  const hold = (reason: string) => recordHeld(deps, m, reason, evidence);
  if (busy.has(m.herd_id)) return hold('another member of its herd is being replaced: one at a time');
  // The database's refusals first (no EC2 call, no watch, for a member that would be held anyway).
  const primary = t.role === 'primary' || t.observedRole === 'primary';
  if (primary && !m.primaries) return hold('it is the primary, and the policy does not allow the DR failover first');
  const early = await heldBack(deps.db, m);
  if (early) return hold(early);
  const gone = await hostGone(m, t, deps);
  Object.assign(evidence, gone.evidence);
  if (gone.held) return hold(gone.held);
  if (!gone.gone || !gone.kind) return hold('it does not answer, but nothing besides pgherd says its host is gone (EC2, or its agent)');
  evidence.gone = gone.gone;
  // Proved, not assumed: watched, its host asked every second whether it runs.
  busy.add(m.herd_id);
  const held = async (reason: string) => {
    busy.delete(m.herd_id);
    return hold(reason);
  };
  const proof = await watch(deps.db, m, t, deps.ssh, watchMs(m), gone.kind);
  evidence.host = proof.said;
  if (proof.runs === true)
    return held(`it came back while watched (${proof.said.split(' (')[0] ?? ''}): a member that answers now and then is not replaced`);
  if (proof.runs === null) return held(`its host cannot be proven not to run it: ${proof.said}`);
  const verdict = primary ? ('failover' as const) : ('replace' as const);
  const action: AnyAction = primary ? drFailoverAction : replaceAction;
  const ids = primary ? [m.herd_id] : [m.id];
  // Its own folder, named by the moment (a second attempt after a failed one never meets the first's).
  const tag = Date.now().toString(36);
  const params: Record<string, unknown> = primary ? {} : { dataDirectory: successorDirectory(t.dataDirectory, tag) };
  let plan: Awaited<ReturnType<typeof planOperation>>;
  try {
    plan = await planOperation(deps.db, SYSTEM_ACCESS, action, ids, params);
  } catch (err) {
    return held(`${action.label} could not be planned: ${errorText(err)}`);
  }
  const refused = plan.targets.find((x) => x.refused);
  if (refused) return held(`${action.label} refuses: ${refused.refused ?? ''}`);
  // Checked again and counted in one transaction, under the environment's lock: herds decided side by
  // side (an outage of a zone) never spend one budget twice; the turn fences it (a worker thawed late
  // writes nothing).
  const reason = `${gone.gone}; ${proof.said}`;
  const decided = await deps.db.transaction(async (tx) => {
    await deps.fence?.(tx);
    await tx.execute(sql`SELECT pg_advisory_xact_lock(${BUDGET_LOCK}, ${m.environment_id})`);
    const now = await heldBack(tx, m);
    if (now) return { held: now, id: 0 };
    return { held: null, id: await insertDecision(tx, m, { verdict, reason, evidence, operationId: null }) };
  });
  if (decided.held !== null) return held(decided.held);
  let operationId: number | null = null;
  let failure: string | null = null;
  try {
    [operationId = null] = await writeOperations(
      deps.db,
      deps.queue,
      [
        {
          action,
          plan,
          actor: { id: null, username: 'system', access: SYSTEM_ACCESS },
          reason: `auto-replace: ${m.label} ${gone.gone}, and ${proof.said}`,
          confirmation: plan.typeToConfirm ?? '',
          idempotencyKey: `auto-replace:${String(decided.id)}`,
          waves: null,
        },
      ],
      undefined,
      deps.fence,
    );
  } catch (err) {
    failure = `${action.label} could not be started: ${errorText(err)}`;
  }
  if (failure !== null || operationId === null) {
    // Not spent: a replacement that did not start is a held decision, said as such (and audited as such).
    const why = failure ?? 'nothing was started';
    await deps.db.execute(sql`UPDATE auto_replace_decisions SET verdict = 'held', reason = ${why} WHERE id = ${decided.id}`);
    await writeAudit(deps.db, {
      user: { id: null, username: 'system' },
      action: 'auto_replace.held',
      objectType: 'instances',
      objectId: String(m.id),
      objectLabel: `${m.label}: ${why}`,
      environmentId: m.environment_id,
      changes: { evidence: [null, evidence] },
    });
    busy.delete(m.herd_id);
    deps.log?.('auto_replace.not_started', { instanceId: m.id, why });
    return { verdict: 'held', reason: why, evidence, operationId: null, instanceId: m.id, label: m.label };
  }
  await deps.db.execute(sql`UPDATE auto_replace_decisions SET operation_id = ${operationId} WHERE id = ${decided.id}`);
  await deps.db.execute(sql`
    INSERT INTO notification_events (kind, herd_id, operation_id, detail)
    VALUES ('herd.auto_replaced', ${m.herd_id}, ${operationId},
            ${`${m.label}: ${verdict === 'replace' ? 'being replaced' : 'its herd failed over first'} (operation #${String(operationId)}): ${reason}`})`);
  deps.log?.('auto_replace.started', { instanceId: m.id, verdict, operationId });
  return { verdict, reason, evidence, operationId, instanceId: m.id, label: m.label };
}

/**
 * One round over every herd a policy covers: a decision for each silent member (held ones only when
 * their reason changed). Run by one worker at a time (a chore with a turn).
 */
export async function autoReplaceRound(deps: RoundDeps): Promise<Decision[]> {
  const silent = await silentMembers(deps.db);
  if (!silent.length) return [];
  const refs = new Map(
    (
      await loadInstanceRefs(
        deps.db,
        silent.map((m) => m.id),
      )
    ).map((r) => [r.id, r]),
  );
  const busy = new Set<number>();
  const out: Decision[] = [];
  // Herds side by side (a watch takes up to a minute), a herd's members one after the other.
  const byHerd = new Map<number, Silent[]>();
  for (const m of silent) byHerd.set(m.herd_id, [...(byHerd.get(m.herd_id) ?? []), m]);
  await Promise.all(
    [...byHerd.values()].map(async (ms) => {
      for (const m of ms) {
        const t = refs.get(m.id);
        if (!t) continue;
        try {
          const d = await decide(deps, m, t, busy);
          if (d) out.push(d);
        } catch (err) {
          deps.log?.('auto_replace.error', { instanceId: m.id, error: errorText(err) });
        }
      }
    }),
  );
  return out;
}
