// DR failover: the primary is lost (or must be given up). The candidate is chosen at execution from
// what the replicas say then, never from stale data; the old primary is fenced first (stopped when
// it still answers, else recorded as fenced), and pgherd never starts a fenced instance until it
// has been rebuilt. What the old primary may have committed that no replica received is reported.
import { eq, inArray } from 'drizzle-orm';
import { z } from 'zod';
import { instances } from '@/db/schema';
import { lsnToNumber } from '@/lib/inventory/lsn';
import { formatBytes, formatLsn } from '@/lib/admin/format';
import { driverFor } from '../drivers';
import { defineHerdAction } from '../define-action';
import { describeRecordMove, dnsPreflight, dnsSteps } from '../dns-steps';
import type { HerdRef } from '../herd-ref';
import type { InstanceRef } from '../instance-ref';
import { observe, waitObserved, type Observed } from '../observe';
import { step } from '../pipeline';
import { repointPoolerSteps } from '../pooler-steps';
import { bytesOrUnknown, chooseCandidate, lagOf, recordedPrimary } from '../candidates';
import { refreshFleet } from '../refresher';
import { checkpointStep, describeObserved, pointAt, promoteNow } from '../topology-steps';
import { execNoted } from './control-steps';

export const drFailoverParams = z.object({
  /** Promote this replica (if it answers); left out: the reachable replica with the highest received LSN. */
  candidateInstanceId: z.coerce.number().int().positive().optional(),
  /** How long the candidate may take to replay what it received before it is promoted anyway (ms). */
  replayDeadlineMs: z.coerce.number().int().min(0).max(3_600_000).optional(),
}).strict();

/** How long the old primary has to answer before it is taken for gone. */
export const FENCE_PROBE_MS = 1500;

/** Received, then replayed, LSN, highest first: the candidate with the most WAL wins. */
function byWal(a: { o: Observed }, b: { o: Observed }): number {
  const pos = (x?: string | null) => (x ? lsnToNumber(x) : -1);
  return pos(b.o.receiveLsn ?? b.o.lsn) - pos(a.o.receiveLsn ?? a.o.lsn) || pos(b.o.lsn) - pos(a.o.lsn);
}

/** The inventory's view of the failover: the old primary and who would be chosen now. */
export function drPair(h: HerdRef, candidateId?: number): { old: InstanceRef; cand: InstanceRef } | string {
  const old = recordedPrimary(h.members);
  if (typeof old === 'string') return old;
  const cand = chooseCandidate(h.members, candidateId);
  if (typeof cand === 'string') return cand === 'the herd has no running replica' ? 'the herd has no running replica to fail over to' : cand;
  return { old, cand };
}

export const drFailoverAction = defineHerdAction({
  name: 'dr-failover',
  label: 'DR failover',
  permission: 'admin',
  dangerous: true,
  params: {
    schema: drFailoverParams,
    fields: [{
      name: 'candidateInstanceId',
      label: 'New primary',
      kind: 'herd-member',
      emptyLabel: 'the reachable replica with the most WAL, measured when it runs',
      help: 'Forcing a replica that has less WAL than another loses more.',
    }],
  },
  plan: (h, { params }) => {
    const p = drFailoverParams.parse(params);
    const pair = drPair(h, p.candidateInstanceId);
    if (typeof pair === 'string') return { steps: [], refused: pair, warnings: [] };
    const { old, cand } = pair;
    const lag = lagOf(old, cand);
    const others = h.members.filter((m) => m.id !== old.id && m.id !== cand.id && m.state === 'running');
    const after = h.members.map((m) => (m.id === cand.id ? { ...m, role: 'primary' as const, state: 'running' } : m.id === old.id ? { ...m, state: 'fenced' } : m));
    return {
      facts: [
        { label: 'Old primary', value: `${old.label} (${old.state})` },
        { label: 'Candidate', value: `${cand.label}${cand.site ? ` (site ${cand.site})` : ''}${p.candidateInstanceId ? '' : ', chosen again when it runs'}` },
        { label: 'Lag', value: bytesOrUnknown(lag) },
        ...h.dns.map((r) => ({ label: `DNS ${r.name}`, value: `${r.type} -> ${cand.hostname}, TTL ${r.ttl} s (clients may use the old answer for up to ${r.ttl} s)` })),
        { label: 'Possible data loss', value: lag === null ? 'unknown' : `${lag} bytes of WAL (${formatBytes(lag)}), as last observed; measured again when it runs` },
      ],
      steps: [
        'ask every replica for its received and replayed LSN, and the DNS servers whether they take pgherd\u2019s key (refused if no replica answers or a server refuses: nothing is changed)',
        `fence ${old.label}: if it answers within ${FENCE_PROBE_MS / 1000} s, stop it (-m immediate); if not, record it as fenced. pgherd will not start it until it is rebuilt`,
        `choose the reachable replica with the highest received LSN${p.candidateInstanceId ? ` (asked for: ${cand.label})` : ` (now: ${cand.label})`}; let it replay what it received (deadline ${(p.replayDeadlineMs ?? 30_000) / 1000} s)`,
        'promote it (pg_promote) and wait until it accepts writes; CHECKPOINT',
        ...h.dns.map((r) => describeRecordMove(r, after)),
        ...h.poolers.map((pl) => `point PgBouncer ${pl.label} at the new primary (${pl.configFile}, RELOAD)`),
        ...(others.length ? [`re-point the other replicas (${others.map((m) => m.label).join(', ')}) to the new primary`] : []),
        `report the possible data loss: ${old.label}\u2019s last LSN seen minus what the new primary received`,
      ],
      warnings: [
        ...(/^prod/i.test(h.environment) ? [`production: ${h.environment}`] : []),
        'unplanned: transactions the old primary committed that no replica received are lost',
        ...(old.state === 'running' ? [`${old.label} runs as far as pgherd knows: it will be stopped (-m immediate); use switchover for a planned change`] : []),
      ],
    };
  },
  steps: (h, deps, { params }) => {
    const p = drFailoverParams.parse(params);
    const pair = drPair(h, p.candidateInstanceId);
    if (typeof pair === 'string') throw new Error(pair);
    const { old } = pair;
    const replicas = h.members.filter((m) => m.id !== old.id);
    let cand: InstanceRef;
    let candObserved: Observed;
    let oldLastLsn: string | null = old.lsn === null ? null : formatLsn(old.lsn);
    let lastSeenHow = 'as last observed by pgherd';
    const others = () => replicas.filter((m) => m.id !== cand.id);
    const after = () => h.members.map((m) => (m.id === cand.id ? { ...m, role: 'primary' as const, state: 'running', upstreamId: null } : m.id === old.id ? { ...m, state: 'fenced' } : m));
    const measure = async () => (await Promise.all(replicas.map(async (m) => ({ m, o: await observe(m, 2000) }))));
    return [
      step('ask the replicas and the DNS servers', async (ctx) => {
        const seen = await measure();
        const lines = seen.map(({ m, o }) => describeObserved(m, o));
        ctx.note({ stdout: lines.join('\n') });
        if (!seen.some(({ o }) => o.reachable && o.inRecovery)) throw new Error('refused: no replica answers; nothing was changed');
        lines.push(...(await dnsPreflight(h)));
        ctx.note({ stdout: lines.join('\n') });
      }, { timeoutMs: 20_000 }),
      step(`fence ${old.label}`, async (ctx) => {
        const o = await observe(old, FENCE_PROBE_MS);
        const lines = [describeObserved(old, o)];
        if (o.reachable) {
          if (o.inRecovery === false && o.lsn) {
            oldLastLsn = o.lsn;
            lastSeenHow = 'when it was fenced';
          }
          const r = await execNoted(deps, old, ctx, driverFor(old.controlDriver).stop(old, 'immediate'), 30_000);
          if (r.code !== 0 || (await observe(old, FENCE_PROBE_MS)).reachable) {
            throw new Error(`refused: ${old.label} still answers and could not be stopped (${r.stderr.trim() || `exit ${r.code}`}): promoting now would make two primaries; nothing else was changed`);
          }
          lines.push(`stopped (-m immediate)`);
        } else {
          lines.push('does not answer: recorded as fenced (it will not be started by pgherd until it is rebuilt)');
        }
        await deps.db.update(instances).set({ state: 'fenced' }).where(eq(instances.id, old.id));
        ctx.note({ stdout: lines.join('\n') });
      }, { timeoutMs: 45_000 }),
      step('choose the candidate', async (ctx) => {
        // Measured again now that the old primary sends nothing more: the received LSNs are final.
        const seen = (await measure()).filter(({ o }) => o.reachable && o.inRecovery).sort(byWal);
        const lines = seen.map(({ m, o }) => describeObserved(m, o));
        const wanted = p.candidateInstanceId === undefined ? seen[0] : seen.find(({ m }) => m.id === p.candidateInstanceId);
        if (!wanted) {
          ctx.note({ stdout: lines.join('\n') });
          throw new Error(p.candidateInstanceId === undefined ? 'no replica answers any more' : `the replica asked for (instance ${p.candidateInstanceId}) does not answer as a replica`);
        }
        cand = wanted.m;
        candObserved = wanted.o;
        ctx.note({ stdout: `${lines.join('\n')}\nchosen: ${cand.label}` });
      }, { timeoutMs: 15_000 }),
      step('let the candidate replay what it received', async (ctx) => {
        const received = candObserved.receiveLsn;
        if (!received) return void ctx.note({ stdout: 'skipped: it received nothing by streaming' });
        const deadline = p.replayDeadlineMs ?? 30_000;
        try {
          const o = await waitObserved(cand, `replayed ${received}`, (x) => x.reachable && !!x.lsn && lsnToNumber(x.lsn) >= lsnToNumber(received),
            { signal: ctx.signal, timeoutMs: deadline, everyMs: 20 });
          ctx.note({ stdout: `received ${received}, replayed ${o.lsn}` });
        } catch {
          // Not lost: the promotion replays what is on disk before it ends recovery. It just takes longer.
          ctx.note({ stdout: `still replaying after ${deadline / 1000} s: the promotion finishes the replay` });
        }
      }, { timeoutMs: (p.replayDeadlineMs ?? 30_000) + 10_000 }),
      step('promote the candidate', async (ctx) => {
        const o = await promoteNow(cand, ctx);
        ctx.note({ stdout: `${cand.label} accepts writes on timeline ${o.timeline}` });
      }, { timeoutMs: 90_000 }),
      checkpointStep('checkpoint on the new primary', () => cand),
      ...dnsSteps(h, deps, after),
      ...repointPoolerSteps(h.poolers, deps, () => cand),
      step('re-point the other replicas', async (ctx) => {
        const lines: string[] = [];
        for (const m of others()) {
          if (!(await observe(m, 2000)).reachable) {
            lines.push(`${m.label}: does not answer, left as it is (re-point or rebuild it later)`);
            continue;
          }
          const o = await pointAt(m, cand, deps, ctx, { resumeReplay: true });
          lines.push(`${m.label}: streaming from ${o.walReceiver?.senderHost}:${o.walReceiver?.senderPort}`);
        }
        ctx.note({ command: `ALTER SYSTEM SET primary_conninfo on ${others().length} replica(s)`, stdout: lines.join('\n') || 'no other replica' });
      }, { timeoutMs: 300_000 }),
      step('record the new topology and the possible data loss', async (ctx) => {
        await deps.db.update(instances).set({ role: 'primary', upstreamInstanceId: null, lagBytes: 0, lagSeconds: 0 }).where(eq(instances.id, cand.id));
        const moved = others().map((m) => m.id);
        if (moved.length) await deps.db.update(instances).set({ upstreamInstanceId: cand.id }).where(inArray(instances.id, moved));
        await refreshFleet(deps.db, { ids: replicas.map((m) => m.id), timeoutMs: 2000 });
        const received = candObserved.receiveLsn ?? candObserved.lsn ?? null;
        const loss = oldLastLsn && received ? Math.max(0, lsnToNumber(oldLastLsn) - lsnToNumber(received)) : null;
        const text = `${cand.label} is the primary; ${old.label} is fenced; possible data loss: ${loss === null ? 'unknown' : `${loss} bytes`}`
          + ` (old primary\u2019s last LSN ${oldLastLsn ?? 'unknown'} ${lastSeenHow}, new primary received ${received ?? 'unknown'})`;
        ctx.note({ stdout: text });
        deps.outcome?.(text);
      }, { timeoutMs: 20_000 }),
    ];
  },
});

