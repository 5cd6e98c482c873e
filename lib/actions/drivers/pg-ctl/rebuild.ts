// Rebuild on a herd pgherd runs with pg_ctl: a replica that could not follow a new primary is copied
// afresh (pg_basebackup); an old primary that diverged is rewound (pg_rewind), both from the primary.
import { commonWarnings, PRIMARY_WARNING, type ActionPlan } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import { herdPrimary } from '@/lib/fleet/herd-primary';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { observe } from '@/lib/fleet/observe';
import { refuse, type Refusal } from '@/lib/fleet/refusal';
import { checkpointStep, rejoinSteps } from '@/lib/actions/steps/topology-steps';
import { hostSaysRunning, proveDirectoryServed } from '@/lib/actions/steps/data-directory';
import { refreshStep, stopIfRunningStep } from '@/lib/actions/steps/control-steps';
import type { RebuildState } from '../driver';

/** A replica that could not follow a new primary is copied afresh; an old primary that diverged is rewound. */
const freshCopy = (t: InstanceRef) => t.state === 'needs_rebuild' && t.role === 'replica';

export function planRebuild<S extends RebuildState>(t: InstanceRef, members: InstanceRef[]): ActionPlan<S> | Refusal {
  if (t.role === 'primary' && !['needs_rebuild', 'fenced'].includes(t.state)) {
    return refuse('not-applicable', 'it is the herd\u2019s primary: only replicas (or a failed-over old primary) are rebuilt');
  }
  const src = herdPrimary(t, members);
  if (typeof src === 'string') return refuse('topology', src);
  return {
    steps: [
      {
        name: 'check the target and the source',
        does: { kind: 'pg.check-rebuildable', instance: memberArg(t), dataDirectory: t.dataDirectory, source: memberArg(src) },
        says: `check that ${src.label} answers as the primary and that ${t.label} does not`,
        timeoutMs: 15_000,
        run: async (x) => {
          const so = await observe(src);
          if (!so.reachable || so.inRecovery !== false)
            throw refuse('unreachable', `${src.label} does not answer as a primary; nothing was changed`);
          const o = await observe(t);
          if (o.reachable && o.inRecovery === false)
            throw refuse('not-applicable', `${t.label} runs as a primary; stop it (or fail over) before rebuilding it`);
          await proveDirectoryServed(x.deps, t, x, o);
          const herd = t.herdSystemIdentifier ?? so.systemIdentifier ?? null;
          if (o.reachable && herd && o.systemIdentifier && o.systemIdentifier !== herd)
            throw refuse(
              'identity',
              `${t.label} runs system ${o.systemIdentifier}, not the herd's ${herd}: it is another cluster; nothing was changed`,
            );
          // Not answering is not stopped (saturated, frozen, or refusing pgherd's credentials): the host says.
          if (!o.reachable && (await hostSaysRunning(x.deps, t, x)))
            throw refuse(
              'unreachable',
              `${t.label} did not answer (${o.error ?? 'no answer'}), yet a server runs on ${t.dataDirectory} (pg_ctl status): pgherd cannot prove what it is and touches nothing; make it answer, or stop it, first`,
            );
          x.note({ stdout: `source: ${src.label}; target ${o.reachable ? 'running as a replica' : 'not running (its host says so)'}` });
        },
      },
      stopIfRunningStep<S>(t),
      checkpointStep('checkpoint on the source', `CHECKPOINT on ${src.label}`, () => src, memberArg(src)),
      ...rejoinSteps<S>(t, () => src, src, '', { fresh: freshCopy(t) }),
      refreshStep(t),
    ],
    warnings: [
      // A primary rebuilt is an old one (fenced, or to be rebuilt): no client uses it.
      ...commonWarnings(t).filter((w) => typeof w === 'string' || w.does.kind !== PRIMARY_WARNING),
      'everything on it that the primary does not have is discarded',
    ],
  };
}
