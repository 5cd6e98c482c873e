// The drain a replica goes through before something takes it away (a resize, a power off, a minor
// upgrade): where each DNS name points meanwhile, the TTL waited out, the wait until it streams again,
// and the name put back as the cleanup of its drain, only onto a replica that answers and streams.
import type { ActionStep } from '@/lib/engine/define-action';
import { dnsSteps } from '@/lib/actions/steps/dns-steps';
import { refuse, type Refusal } from '@/lib/fleet/refusal';
import { memberArg } from '@/lib/engine/plan-identity';
import { recordTargets, standIn } from '@/lib/fleet/dns-records';
import type { DnsRecordRef, HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { observe, waitObserved, type Observed } from '@/lib/fleet/observe';

/** A resized (or upgraded) replica must stream with replay lag under this many seconds before its names come back. */
export const DEFAULT_MAX_LAG_SECONDS = 30;
/** How long the step that puts a name back gives the replica to be seen answering and streaming within its bound. */
const BACK_SETTLE_MS = 5_000;
/** How long a replica may take to stream again. */
const STREAMING_TIMEOUT_MS = 300_000;

/** Where a record points while `t` is away, or why nowhere (the drain is refused then). */
export function drainTargets(rec: DnsRecordRef, members: InstanceRef[], t: InstanceRef): InstanceRef[] | string {
  if (rec.match === 'instance') return standIn(rec, members, t);
  const others = members.filter((m) => m.id !== t.id && m.state === 'running');
  const primary = others.filter((m) => m.role === 'primary');
  const rest = recordTargets(rec, others);
  if (typeof rest !== 'string') return rest;
  // A read name with no other replica: the primary serves the reads meanwhile.
  return primary.length === 1 ? primary : rest;
}

/** The records that point at `t` now (a name matched to it, or a role name it is one of the answers of). */
export function recordsAt(h: HerdRef, members: InstanceRef[], t: InstanceRef): DnsRecordRef[] {
  return h.dns.filter((rec) => {
    const to = recordTargets(rec, members);
    return typeof to !== 'string' && to.some((m) => m.id === t.id);
  });
}

/**
 * Each drain step carrying, as its cleanup (run at the end whatever happened), the step that puts its
 * name back: only onto a replica that serves what the herd has, i.e. answers and streams with replay
 * lag under `maxLag` (a failed resize may leave it up but cut off from its upstream), and not when
 * `stays(state)` gives a reason. A name left drained fails the cleanup (`'fail'`) or is only noted.
 */
export function withBacks<S>(
  drains: ActionStep<S>[],
  backs: ActionStep<S>[],
  t: InstanceRef,
  maxLag: number,
  stays: (state: S) => string | null,
  left: 'fail' | 'note',
): ActionStep<S>[] {
  return drains.map((drain, k) => {
    const back = backs[k];
    return {
      ...drain,
      always: back && {
        ...back,
        // Putting back a name pgherd drained is safe whoever holds the herd: done even once the lease is lost.
        givesBack: true,
        run: async (x) => {
          const kept = stays(x.state);
          if (kept) return void x.note({ stdout: kept });
          // Looked at for a few seconds, not once: one look is a moment (a record an idle primary writes
          // makes a replica look behind, by the age of its last transaction, until it is replayed).
          const fine = (v: Observed) => v.reachable && (t.role === 'primary' || streamsWithin(v, maxLag));
          const until = Date.now() + BACK_SETTLE_MS;
          let o = await observe(t);
          while (!fine(o) && Date.now() < until && !x.signal.aborted) {
            await new Promise((r) => setTimeout(r, 250));
            o = await observe(t);
          }
          const why = !o.reachable
            ? `does not answer (${o.error ?? 'no reason given'})`
            : t.role !== 'primary' && !streamsWithin(o, maxLag)
              ? `does not stream with replay lag under ${maxLag} s (WAL receiver ${o.walReceiver?.status ?? 'none'}, replay lag ${o.replayLagSeconds ?? '?'} s)`
              : null;
          if (why) {
            x.note({ stdout: `${t.label} ${why}: the name stays where the drain sent it` });
            if (left === 'fail') throw new Error(`${back.name.replace(/^DNS back: /, '')} left drained: ${t.label} ${why}`);
            return;
          }
          await back.run(x);
        },
      },
    };
  });
}

/** After a drain: waits out the longest TTL of the drained names, so that clients stop resolving them to `host`. */
export function waitOutTtlStep<S>(ttl: number, host: string): ActionStep<S> {
  return {
    name: 'wait out the TTL',
    does: { kind: 'dns.wait-out-ttl', seconds: ttl, host },
    says: `wait ${ttl} s (the longest TTL of the drained names) for clients to stop resolving them to ${host}`,
    timeoutMs: ttl * 1000 + 10_000,
    run: (x) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, ttl * 1000);
        x.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(new Error('stopped while waiting out the TTL'));
        });
      }),
  };
}

/** A replica that streams from its upstream with replay lag under `maxLag` seconds. */
export const streamsWithin = (v: Observed, maxLag: number) =>
  v.reachable && v.inRecovery === true && v.walReceiver?.status === 'streaming' && (v.replayLagSeconds ?? 0) <= maxLag;

/** Waits until the replica streams with replay lag under `maxLag` seconds. */
export function streamingStep<S>(t: InstanceRef, maxLag: number): ActionStep<S> {
  return {
    name: 'streaming',
    does: { kind: 'pg.wait-streaming', instance: memberArg(t), maxReplayLagSeconds: maxLag },
    says: `wait until it streams from its upstream with replay lag under ${maxLag} s`,
    timeoutMs: STREAMING_TIMEOUT_MS + 10_000,
    run: async (x) => {
      const o = await waitObserved(t, `streaming with lag under ${maxLag} s`, (v) => streamsWithin(v, maxLag), {
        timeoutMs: STREAMING_TIMEOUT_MS,
        signal: x.signal,
      });
      x.note({
        stdout: `streaming from ${o.walReceiver?.senderHost ?? '?'}:${o.walReceiver?.senderPort ?? '?'}, replay lag ${o.replayLagSeconds ?? 0} s`,
      });
    },
  };
}

/**
 * A replica's drain as a resize runs it: the names that point at it now, each step pointing one at
 * another member (carrying, as its cleanup, the step that puts it back once the replica streams within
 * `maxLag`), then the wait out of their longest TTL; or why a name cannot be drained.
 */
export function replicaDrain<S>(
  herd: HerdRef,
  members: InstanceRef[],
  t: InstanceRef,
  maxLag: number,
): { drained: DnsRecordRef[]; steps: ActionStep<S>[] } | Refusal {
  const drained = recordsAt(herd, members, t);
  for (const rec of drained) {
    const to = drainTargets(rec, members, t);
    if (typeof to === 'string') return refuse('dns', `${rec.name} cannot be drained: ${to}`);
  }
  const isDrained = (rec: DnsRecordRef) => drained.some((d) => d.id === rec.id);
  const drains = dnsSteps<S>(
    herd,
    () => members,
    (rec) => drainTargets(rec, members, t),
    (rec) => {
      const to = drainTargets(rec, members, t);
      return `drain ${rec.name}: point it at ${typeof to === 'string' ? '?' : to.map((m) => m.hostname).join(', ')} instead of ${t.hostname}`;
    },
    isDrained,
    { targetsOf: (rec, ms) => drainTargets(rec, ms, t), name: (rec) => `DNS drain: ${rec.name}` },
  );
  const backs = dnsSteps<S>(
    herd,
    () => members,
    (rec) => recordTargets(rec, members),
    (rec) => `${rec.name} back to ${t.hostname}`,
    isDrained,
    { name: (rec) => `DNS back: ${rec.name}` },
  );
  const ttl = Math.max(0, ...drained.map((d) => d.ttl));
  return {
    drained,
    steps: [...withBacks(drains, backs, t, maxLag, () => null, 'fail'), ...(drained.length ? [waitOutTtlStep<S>(ttl, t.hostname)] : [])],
  };
}

/**
 * The names that answer `t` once it runs, and the steps that point each at it again (where a drain may
 * have left it): what a power on, and a resize found done already, end with.
 */
export function namesBack<S>(
  herd: HerdRef | undefined,
  members: InstanceRef[],
  t: InstanceRef,
  says: (rec: DnsRecordRef) => string,
): { names: DnsRecordRef[]; steps: ActionStep<S>[] } {
  if (!herd) return { names: [], steps: [] };
  // The herd once it runs again (it may be down now: a name matched to it points elsewhere meanwhile).
  const up = members.map((m) => (m.id === t.id ? { ...m, state: 'running' } : m));
  const names = recordsAt(herd, up, { ...t, state: 'running' });
  const steps = dnsSteps<S>(
    herd,
    () => up,
    (rec) => recordTargets(rec, up),
    says,
    (rec) => names.some((n) => n.id === rec.id),
    { name: (rec) => `DNS back: ${rec.name}` },
  );
  return { names, steps };
}
