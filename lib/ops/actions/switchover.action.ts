// Switchover: a planned change of primary with no committed transaction lost. The old primary stops
// cleanly only after its poolers hold new queries; the candidate is promoted only once it has
// replayed the old primary's shutdown checkpoint, i.e. everything the old primary ever committed.
// Undo steps are registered before the steps they undo: poolers are always resumed, and the old
// primary is started again as primary when no replica was promoted.
import { eq, inArray } from 'drizzle-orm';
import { z } from 'zod';
import { idText } from '@/lib/admin/parse-id';
import { instances } from '@/db/schema';
import { lsnToNumber } from '@/lib/inventory/lsn';
import { formatBytes } from '@/lib/admin/format';
import { binDir, driverFor } from '../drivers';
import { defineHerdAction, type ActionDeps } from '../define-action';
import { describeRecordMove, dnsSteps, dnsPreflight } from '../dns-steps';
import type { HerdRef } from '../herd-ref';
import type { InstanceRef } from '../instance-ref';
import { observe, waitObserved } from '../observe';
import { step, type StepContext } from '../pipeline';
import { checkPooler, pausePooler, repointPooler, resumePooler } from '../pooler-steps';
import { bytesOrUnknown, chooseCandidate, lagOf } from '../candidates';
import { refreshFleet } from '../refresher';
import { herdIdentity, identityProblem } from '../identity';
import { checkpointStep, describeObserved, lsnDiff, pointAt, promoteNow, recordNewPrimary, rejoinSteps } from '../topology-steps';
import { execNotedOk } from './control-steps';

export const DEFAULT_MAX_LAG_BYTES = 16 * 1024 * 1024;
/** How long the undo waits for a promotion that was sent to show whether it went through. */
const PROMOTE_SETTLE_MS = 10_000;

export const switchoverParams = z.object({
  /** The replica to promote; left out: the most up-to-date running replica. */
  candidateInstanceId: idText('candidateInstanceId').optional(),
  /** Refuse when the candidate's replay is further behind than this (default 16 MB). */
  maxLagBytes: z.coerce.number().int().min(0).max(2 ** 50).optional(),
  /** How long the candidate may take to replay the old primary's last WAL before the switchover is undone (ms, default 30 s). */
  catchUpDeadlineMs: z.coerce.number().int().min(100).max(3_600_000).optional(),
  /** How long to wait for the candidate to leave recovery once pg_promote is sent (ms, default 60 s). */
  promoteDeadlineMs: z.coerce.number().int().min(1).max(600_000).optional(),
}).strict();

/** The herd's running primary and the candidate, per the inventory; or why the switchover cannot be. */
export function switchoverPair(h: HerdRef, candidateId?: number): { old: InstanceRef; cand: InstanceRef } | string {
  const primaries = h.members.filter((m) => m.role === 'primary' && m.state === 'running');
  if (primaries.length !== 1) return primaries.length ? `the herd has ${primaries.length} running primaries` : 'the herd has no running primary: use DR failover';
  const cand = chooseCandidate(h.members, candidateId);
  if (typeof cand === 'string') return cand;
  return { old: primaries[0], cand };
}

/** The herd as it is once the candidate is the primary and everyone else follows it. */
function membersAfter(h: HerdRef, old: InstanceRef, cand: InstanceRef): InstanceRef[] {
  return h.members.map((m) => (m.id === cand.id ? { ...m, role: 'primary' as const, state: 'running', upstreamId: null }
    : { ...m, role: m.id === old.id ? ('replica' as const) : m.role, upstreamId: cand.id }));
}

/** "Latest checkpoint location" of a stopped cluster, read with pg_controldata; refuses one not shut down cleanly. */
async function shutdownCheckpoint(t: InstanceRef, deps: ActionDeps, ctx: StepContext): Promise<string> {
  const { stdout } = await execNotedOk(deps, t, ctx, [`${binDir(t.pgVersion)}/pg_controldata`, '-D', t.dataDirectory], 15_000);
  const state = /^Database cluster state:\s+(.+)$/m.exec(stdout)?.[1].trim();
  const lsn = /^Latest checkpoint location:\s+([0-9A-F]+\/[0-9A-F]+)$/m.exec(stdout)?.[1];
  if (state !== 'shut down' || !lsn) throw new Error(`${t.label} is not cleanly shut down (pg_controldata says "${state ?? 'nothing'}")`);
  return lsn;
}

export const switchoverAction = defineHerdAction({
  name: 'switchover',
  label: 'Switchover',
  permission: 'admin',
  dangerous: true,
  params: {
    schema: switchoverParams,
    fields: [{
      name: 'candidateInstanceId',
      label: 'New primary',
      kind: 'herd-member',
      emptyLabel: 'the most up-to-date replica',
      help: 'A running replica of the herd.',
    }],
  },
  plan: (h, { params }) => {
    const p = switchoverParams.parse(params);
    const maxLag = p.maxLagBytes ?? DEFAULT_MAX_LAG_BYTES;
    const pair = switchoverPair(h, p.candidateInstanceId);
    if (typeof pair === 'string') return { steps: [], refused: pair, warnings: [] };
    const { old, cand } = pair;
    const lag = lagOf(old, cand);
    const others = h.members.filter((m) => m.id !== old.id && m.id !== cand.id);
    const after = membersAfter(h, old, cand);
    return {
      facts: [
        { label: 'Old primary', value: old.label },
        { label: 'New primary', value: `${cand.label}${cand.site ? ` (site ${cand.site})` : ''}` },
        { label: 'Lag now', value: `${bytesOrUnknown(lag)} (limit ${formatBytes(maxLag)})` },
        ...h.dns.map((r) => ({ label: `DNS ${r.name}`, value: `${r.type} -> ${after.find((m) => m.id === cand.id)!.hostname}, TTL ${r.ttl} s` })),
        { label: 'Committed transactions lost', value: 'none: the candidate replays everything the old primary wrote before it is promoted' },
      ],
      steps: [
        `pre-flight: every member answers, ${cand.label} streams and is less than ${formatBytes(maxLag)} behind, the DNS servers answer${h.poolers.length ? ', the PgBouncers answer' : ''}`,
        `CHECKPOINT on ${old.label} (keeps its clean stop short)`,
        ...h.poolers.map((pl) => `PAUSE ${pl.databases.join(', ')} on PgBouncer ${pl.label}: new queries wait (RESUME always follows, whatever happens)`),
        `stop ${old.label} cleanly (${old.controlDriver} stop -m fast); should the switchover stop before pg_promote is sent to ${cand.label}, it is started again as primary (once it is sent, never: it stays stopped and fenced)`,
        `wait until ${cand.label} has replayed ${old.label}\u2019s shutdown checkpoint (pg_controldata)`,
        `promote ${cand.label} (pg_promote) and wait until it accepts writes`,
        ...h.dns.map((r) => describeRecordMove(r, after)),
        ...h.poolers.map((pl) => `point PgBouncer ${pl.label} at ${cand.label} (${pl.configFile}, RELOAD), then RESUME`),
        `CHECKPOINT on ${cand.label}`,
        ...others.map((m) => `re-point ${m.label} to ${cand.label}`),
        `${old.label} becomes a replica of ${cand.label}: pg_rewind (pg_basebackup if it cannot), start, wait until it streams`,
      ],
      refused: lag !== null && lag > maxLag ? `${cand.label} is ${formatBytes(lag)} behind (limit ${formatBytes(maxLag)})` : undefined,
      warnings: [
        ...(/^prod/i.test(h.environment) ? [`production: ${h.environment}`] : []),
        h.poolers.length ? 'writes through PgBouncer wait during the switch (about a second); direct connections to the old primary are closed'
          : 'clients connected to the old primary lose their connections; the herd has no PgBouncer to hold them',
      ],
    };
  },
  steps: (h, deps, { params }) => {
    const p = switchoverParams.parse(params);
    const maxLag = p.maxLagBytes ?? DEFAULT_MAX_LAG_BYTES;
    const pair = switchoverPair(h, p.candidateInstanceId);
    if (typeof pair === 'string') throw new Error(pair);
    const { old, cand } = pair;
    const others = h.members.filter((m) => m.id !== old.id && m.id !== cand.id);
    const after = membersAfter(h, old, cand);
    const d = driverFor(old.controlDriver);
    let stopping = false;
    let promoted = false;
    // Once pg_promote has gone out, the promotion may complete whatever this worker sees: from then on
    // the old primary is never started again as a primary.
    let promoteSent = false;
    let promoteAttempt: Promise<unknown> | null = null;
    const repointed = new Set<number>();
    return [
      step('pre-flight', async (ctx) => {
        const seen = await Promise.all(h.members.map(async (m) => ({ m, o: await observe(m, 2000) })));
        const lines = seen.map(({ m, o }) => describeObserved(m, o));
        const fail = (why: string) => {
          ctx.note({ stdout: lines.join('\n') });
          throw new Error(`refused: ${why}; nothing was changed`);
        };
        const down = seen.filter(({ o }) => !o.reachable);
        if (down.length) fail(`${down.map(({ m }) => m.label).join(', ')} does not answer: every member must`);
        const po = seen.find(({ m }) => m.id === old.id)!.o;
        const co = seen.find(({ m }) => m.id === cand.id)!.o;
        if (po.inRecovery) fail(`${old.label} answers as a replica, not as the primary`);
        // Every member is promoted or re-pointed below: each must be the herd's, on the primary's timeline.
        const id = herdIdentity(h.systemIdentifier, seen.map(({ o }) => o));
        if (id.ambiguous) fail(id.ambiguous);
        const want = { systemIdentifier: id.systemIdentifier, timeline: po.timeline ?? null };
        for (const { m, o } of seen) {
          const why = identityProblem(m, o, want);
          if (why) fail(why);
        }
        if (!co.inRecovery) fail(`${cand.label} answers as a primary`);
        if (co.walReceiver?.status !== 'streaming') fail(`${cand.label} is not streaming (${co.walReceiver?.status ?? 'no WAL receiver'})`);
        const lag = lsnDiff(po.lsn, co.lsn) ?? Infinity;
        if (lag > maxLag) fail(`${cand.label} has ${formatBytes(lag)} left to replay (limit ${formatBytes(maxLag)})`);
        lines.push(...(await dnsPreflight(h)));
        for (const pl of h.poolers) lines.push(await checkPooler(pl, deps, ctx));
        ctx.note({ stdout: lines.join('\n') });
      }, { timeoutMs: 30_000 }),
      checkpointStep(`checkpoint on ${old.label}`, () => old),
      ...h.poolers.map((pl) => step(`PgBouncer ${pl.label}: pause`, (ctx) => pausePooler(pl, ctx), {
        timeoutMs: 35_000,
        defer: step(`PgBouncer ${pl.label}: resume (always)`, async (ctx) => {
          const lines: string[] = [];
          let failed: unknown = null;
          try {
            // Promoted but not yet re-pointed (a DNS step failed, say): point it at the new primary first.
            if (promoted && !repointed.has(pl.id)) lines.push(await repointPooler(pl, cand, deps, ctx));
          } catch (err) {
            failed = err; // resumed all the same: clients must not wait forever on a pause
            lines.push(`not re-pointed: ${(err as Error).message}`);
          }
          lines.push(await resumePooler(pl, ctx));
          ctx.note({ stdout: lines.join('\n') });
          if (failed) throw failed;
        }, { timeoutMs: 30_000 }),
      })),
      step(`stop ${old.label} (fast, clean)`, async (ctx) => {
        stopping = true;
        await execNotedOk(deps, old, ctx, d.stop(old, 'fast'));
      }, {
        timeoutMs: 160_000,
        defer: step(`start ${old.label} again as primary if no replica was promoted`, async (ctx) => {
          if (!stopping || promoted) return void ctx.note({ stdout: `skipped: ${promoted ? `${cand.label} was promoted` : `${old.label} was not stopped`}` });
          // A promotion given up on may still be under way: let the attempt settle (it sends nothing once stopped).
          if (promoteAttempt) await Promise.race([promoteAttempt.catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
          if (promoteSent) {
            // A promotion sent usually completes within a second: give it PROMOTE_SETTLE_MS to show which way it went.
            const co = await waitObserved(cand, 'out of recovery', (o) => o.reachable && o.inRecovery === false, { signal: ctx.signal, timeoutMs: PROMOTE_SETTLE_MS, everyMs: 50 })
              .catch(() => observe(cand, 2000));
            if (co.reachable && co.inRecovery === false) {
              promoted = true; // the PgBouncer cleanups point at it before they resume
              const text = `${cand.label} finished its promotion after the switchover gave up on it: it is the primary; ${old.label} stays stopped (never started as a second primary). DNS, the other replicas and ${old.label} were not moved: refresh DNS, re-point them, rebuild ${old.label}`;
              deps.outcome?.(text);
              await recordNewPrimary(deps, cand, co.timeline);
              await deps.db.update(instances).set({ state: 'fenced' }).where(eq(instances.id, old.id));
              return void ctx.note({ stdout: text });
            }
            const text = `pg_promote was sent to ${cand.label}, which ${co.reachable ? 'has not left recovery' : `does not answer (${co.error})`}: its promotion may still complete, so ${old.label} stays stopped rather than risk two primaries. The herd may have no primary: check ${cand.label}, then refresh DNS, or, once ${cand.label} is stopped, set ${old.label}'s state in the inventory and start it`;
            deps.outcome?.(text);
            // pgherd will not start it either until someone who has looked says so (a rebuild, or its state changed by an admin).
            await deps.db.update(instances).set({ state: 'fenced' }).where(eq(instances.id, old.id));
            throw new Error(text);
          }
          if ((await observe(old, 2000)).reachable) return void ctx.note({ stdout: `skipped: ${old.label} answers` });
          await execNotedOk(deps, old, ctx, d.start(old));
          await waitObserved(old, 'accepting writes', (o) => o.reachable && o.inRecovery === false, { signal: ctx.signal, timeoutMs: 60_000 });
          ctx.note({ stdout: `${old.label} is the primary again` });
        }, { timeoutMs: 180_000 }),
      }),
      step(`wait until ${cand.label} has replayed everything ${old.label} wrote`, async (ctx) => {
        const last = await shutdownCheckpoint(old, deps, ctx);
        // The candidate has replayed the shutdown checkpoint record once its replay position is past its start.
        const o = await waitObserved(cand, `replayed past ${last}`, (x) => x.reachable && !!x.lsn && lsnToNumber(x.lsn) > lsnToNumber(last),
          { signal: ctx.signal, timeoutMs: p.catchUpDeadlineMs ?? 30_000, everyMs: 10 });
        ctx.note({ stdout: `${old.label} shut down at ${last}; ${cand.label} replayed ${o.lsn}` });
      }, { timeoutMs: (p.catchUpDeadlineMs ?? 30_000) + 30_000 }),
      step(`promote ${cand.label}`, async (ctx) => {
        const attempt = promoteNow(cand, ctx, { onSent: () => { promoteSent = true; }, deadlineMs: p.promoteDeadlineMs });
        promoteAttempt = attempt;
        const o = await attempt;
        promoted = true;
        await recordNewPrimary(deps, cand, o.timeline);
        ctx.note({ stdout: `${cand.label} accepts writes on timeline ${o.timeline}` });
      }, { timeoutMs: 90_000 }),
      ...dnsSteps(h, deps, () => after),
      ...h.poolers.map((pl) => step(`PgBouncer ${pl.label}: point at ${cand.label} and resume`, async (ctx) => {
        const moved = await repointPooler(pl, cand, deps, ctx);
        repointed.add(pl.id);
        ctx.note({ stdout: `${moved}\n${await resumePooler(pl, ctx)}` });
      }, { timeoutMs: 30_000 })),
      checkpointStep(`checkpoint on ${cand.label}`, () => cand),
      ...others.map((m) => step(`re-point ${m.label} to ${cand.label}`, async (ctx) => {
        const o = await pointAt(m, cand, deps, ctx, { resumeReplay: true });
        ctx.note({ stdout: `streaming from ${o.walReceiver?.senderHost}:${o.walReceiver?.senderPort}` });
      }, { timeoutMs: 200_000 })),
      ...rejoinSteps(old, deps, () => cand, `${old.label}: `),
      step('record the new topology', async () => {
        await deps.db.update(instances).set({ role: 'primary', upstreamInstanceId: null, lagBytes: 0, lagSeconds: 0 }).where(eq(instances.id, cand.id));
        await deps.db.update(instances).set({ role: 'replica', upstreamInstanceId: cand.id }).where(inArray(instances.id, [old.id, ...others.map((m) => m.id)]));
        await refreshFleet(deps.db, { ids: h.members.map((m) => m.id), timeoutMs: 2000 });
        deps.outcome?.(`${cand.label} is the primary; ${old.label} streams from it; no committed transaction lost`);
      }, { timeoutMs: 20_000 }),
    ];
  },
});
