import { driverFor } from '../drivers';
import { commonWarnings, defineAction } from '../define-action';
import type { InstanceRef } from '../instance-ref';
import { herdPrimary } from '../herd-primary';
import { observe } from '../observe';
import { step } from '../pipeline';
import { checkpointStep, OWN_FILES, rejoinSteps } from '../topology-steps';
import { execNotedOk, refreshStep } from './control-steps';

/** A replica that could not follow a new primary is copied afresh; an old primary that diverged is rewound. */
const freshCopy = (t: InstanceRef) => t.state === 'needs_rebuild' && t.role === 'replica';

export const rebuildAction = defineAction({
  name: 'rebuild',
  label: 'Rebuild from the primary',
  permission: 'operator',
  dangerous: true,
  plan: (t, { members }) => {
    const src = herdPrimary(t, members);
    const primaryOk = t.role !== 'primary' || ['needs_rebuild', 'fenced'].includes(t.state);
    return {
      steps: typeof src === 'string' ? [] : [
        `stop ${t.label} (fast) if it runs`,
        `CHECKPOINT on ${src.label}`,
        freshCopy(t)
          // A replica marked so because it could not follow: it may hold WAL that pg_rewind would find nothing to rewind in.
          ? `move the data directory aside and pg_basebackup -X stream -R from ${src.label} (it is marked needs rebuild: no pg_rewind)`
          : `pg_rewind from ${src.label}; if it cannot rewind, move the data directory aside and pg_basebackup -X stream -R`,
        `restore the node's own ${OWN_FILES.join(', ')}`,
        'start it, and wait until it streams from the primary',
      ],
      refused: !primaryOk ? 'it is the herd\u2019s primary: only replicas (or a failed-over old primary) are rebuilt'
        : typeof src === 'string' ? src : undefined,
      warnings: [...commonWarnings(t).filter((w) => !w.includes('primary')), 'everything on it that the primary does not have is discarded'],
    };
  },
  steps: (t, deps, { members }) => {
    const d = driverFor(t.controlDriver);
    let src: InstanceRef;
    return [
      step('check the target and the source', async (ctx) => {
        const s = herdPrimary(t, members);
        if (typeof s === 'string') throw new Error(s);
        const so = await observe(s);
        if (!so.reachable || so.inRecovery !== false) throw new Error(`${s.label} does not answer as a primary`);
        const o = await observe(t);
        if (o.reachable && o.inRecovery === false) throw new Error(`refused: ${t.label} runs as a primary; stop it (or fail over) before rebuilding it`);
        src = s;
        ctx.note({ stdout: `source: ${s.label}; target ${o.reachable ? 'running as a replica' : 'not running'}` });
      }, { timeoutMs: 15_000 }),
      step('stop it', async (ctx) => {
        if (!(await observe(t)).reachable) return void ctx.note({ stdout: 'skipped: not running' });
        await execNotedOk(deps, t, ctx, d.stop(t, 'fast'));
      }, { timeoutMs: 160_000 }),
      checkpointStep('checkpoint on the source', () => src),
      ...rejoinSteps(t, deps, () => src, '', { fresh: freshCopy(t) }),
      refreshStep(t, deps),
    ];
  },
});
