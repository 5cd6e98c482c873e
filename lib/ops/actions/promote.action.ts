import { commonWarnings, defineAction } from '../define-action';
import { herdIdentity, identityProblem } from '../identity';
import { observe, runSql, waitObserved } from '../observe';
import { answeringAsPrimary, observeOthers } from '../herd-primary';
import { step } from '../pipeline';
import { refreshStep, sshControlStep } from './control-steps';

export const promoteAction = defineAction({
  name: 'promote',
  label: 'Promote to primary',
  permission: 'admin',
  dangerous: true,
  plan: (t, { members }) => {
    const primaries = members.filter((m) => m.id !== t.id && m.role === 'primary' && m.state === 'running');
    return {
      steps: [
        'check that no other member of the herd answers as a primary',
        `${t.controlDriver} promote on ${t.ssh.host}`,
        'wait until pg_is_in_recovery() is false',
        'CHECKPOINT on the new primary (so that pg_rewind can use it as a source)',
        'the other replicas are not moved: remaster them next',
      ],
      refused: t.role === 'primary' ? 'it is a primary already'
        : primaries.length ? `the herd has a running primary (${primaries.map((p) => p.label).join(', ')}): stop it, or use switchover`
        : undefined,
      warnings: [...commonWarnings(t), 'the herd\u2019s DNS name does not move with a promote'],
    };
  },
  steps: (t, deps, { members }) => [
    step('check that no other member answers as a primary', async (ctx) => {
      const seen = await observeOthers(t, members);
      const live = answeringAsPrimary(seen);
      if (live.length) throw new Error(`refused: ${live.map(({ m }) => m.label).join(', ')} answers as a primary`);
      const self = await observe(t);
      if (!self.reachable) throw new Error(`${t.label} is not running (${self.error})`);
      if (self.inRecovery === false) throw new Error(`${t.label} is a primary already`);
      // It must be the herd's, and not behind the herd's newest timeline (that would fork its history).
      const all = [self, ...seen.map(({ o }) => o)];
      const id = herdIdentity(t.herdSystemIdentifier, all);
      if (id.ambiguous) throw new Error(`refused: ${id.ambiguous}`);
      const newest = Math.max(0, ...members.map((m) => m.timeline ?? 0), ...seen.map(({ o }) => (o.reachable ? o.timeline ?? 0 : 0)));
      const why = identityProblem(t, self, { systemIdentifier: id.systemIdentifier, timeline: null })
        ?? (self.timeline !== undefined && self.timeline < newest ? `${t.label} is on timeline ${self.timeline}, behind the herd's ${newest}: it did not follow an earlier failover (rebuild it)` : null);
      if (why) throw new Error(`refused: ${why}`);
      ctx.note({ stdout: seen.map(({ m, o }) => `${m.label}: ${o.reachable ? (o.inRecovery ? 'replica' : 'primary') : 'not answering'}`).join('\n') });
    }, { timeoutMs: 15_000 }),
    sshControlStep(t, deps, 'promote', 'promote'),
    step('wait until it accepts writes', async (ctx) => {
      await waitObserved(t, 'out of recovery', (o) => o.reachable && o.inRecovery === false, { signal: ctx.signal, timeoutMs: 60_000 });
    }, { timeoutMs: 70_000 }),
    step('checkpoint', async (ctx) => {
      ctx.note({ command: 'CHECKPOINT' });
      await runSql(t, 'CHECKPOINT');
    }, { timeoutMs: 120_000 }),
    refreshStep(t, deps),
  ],
});
