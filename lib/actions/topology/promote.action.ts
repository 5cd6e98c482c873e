import { commonWarnings, defineAction } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import { answeringAsPrimary, observeOthers } from '@/lib/fleet/herd-primary';
import { herdIdentity, identityProblem } from '@/lib/fleet/identity';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { observe, waitObserved } from '@/lib/fleet/observe';
import { refuse } from '@/lib/fleet/refusal';
import { checkpointStep } from '@/lib/actions/steps/topology-steps';
import { refreshStep, sshControlStep } from '@/lib/actions/steps/control-steps';
import { asks } from '@/lib/actions/drivers';

/** The checks before a promote, on what the members say now: none answers as a primary, `t` is the herd's and up to date. */
async function checkPromotable(t: InstanceRef, members: InstanceRef[]): Promise<string> {
  const seen = await observeOthers(t, members);
  const live = answeringAsPrimary(seen);
  if (live.length) throw refuse('split-brain', `${live.map(({ m }) => m.label).join(', ')} answers as a primary`);
  const self = await observe(t);
  if (!self.reachable) throw new Error(`${t.label} is not running (${self.error ?? 'no reason given'})`);
  if (self.inRecovery === false) throw refuse('not-applicable', `${t.label} is a primary already`);
  // It must be the herd's, and not behind the herd's newest timeline (that would fork its history).
  const id = herdIdentity(t.herdSystemIdentifier, [self, ...seen.map(({ o }) => o)]);
  if (id.ambiguous) throw refuse('identity', id.ambiguous);
  const newest = Math.max(0, ...members.map((m) => m.timeline ?? 0), ...seen.map(({ o }) => (o.reachable ? (o.timeline ?? 0) : 0)));
  const why =
    identityProblem(t, self, { systemIdentifier: id.systemIdentifier, timeline: null }) ??
    (self.timeline !== undefined && self.timeline < newest
      ? `${t.label} is on timeline ${self.timeline}, behind the herd's ${newest}: it did not follow an earlier failover (rebuild it)`
      : null);
  if (why) throw refuse('identity', why);
  return seen.map(({ m, o }) => `${m.label}: ${o.reachable ? (o.inRecovery ? 'replica' : 'primary') : 'not answering'}`).join('\n');
}

export const promoteAction = defineAction({
  name: 'promote',
  control: asks('promote'),
  label: 'Promote to primary',
  permission: 'admin',
  dangerous: true,
  plan: (t, { members }) => {
    if (t.role === 'primary') return refuse('not-applicable', 'it is a primary already');
    const primaries = members.filter((m) => m.id !== t.id && m.role === 'primary' && m.state === 'running');
    if (primaries.length)
      return refuse('topology', `the herd has a running primary (${primaries.map((p) => p.label).join(', ')}): stop it, or use switchover`);
    return {
      steps: [
        {
          name: 'check that no other member answers as a primary',
          does: { kind: 'pg.check-promotable', instance: memberArg(t) },
          says: 'check that no other member of the herd answers as a primary, and that it is the herd\u2019s and on its newest timeline',
          timeoutMs: 15_000,
          run: async (x) => x.note({ stdout: await checkPromotable(t, members) }),
        },
        sshControlStep(t, 'promote', 'promote'),
        {
          name: 'wait until it accepts writes',
          does: { kind: 'pg.wait-writable', instance: memberArg(t) },
          says: 'wait until pg_is_in_recovery() is false',
          timeoutMs: 70_000,
          run: async (x) => {
            await waitObserved(t, 'out of recovery', (o) => o.reachable && o.inRecovery === false, { signal: x.signal, timeoutMs: 60_000 });
          },
        },
        checkpointStep('checkpoint', 'CHECKPOINT on the new primary (so that pg_rewind can use it as a source)', () => t, memberArg(t)),
        refreshStep(t),
      ],
      warnings: [
        ...commonWarnings(t),
        'the herd\u2019s DNS name does not move with a promote',
        'the other replicas are not moved: re-point them next',
      ],
    };
  },
});
