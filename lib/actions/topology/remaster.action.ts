import { z } from 'zod';
import { idText, MAX_BIG_ID } from '@/lib/adapters/validation/ids';
import { defineAction } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { herdPrimary } from '@/lib/fleet/herd-primary';
import { observe } from '@/lib/fleet/observe';
import { refuse } from '@/lib/fleet/refusal';
import { pointAt } from '@/lib/actions/steps/topology-steps';
import { refreshStep } from '@/lib/actions/steps/control-steps';
import { asks } from '@/lib/actions/drivers';

export const remasterParams = z
  .object({
    /** The member to stream from; left out: the herd's primary. */
    upstreamInstanceId: idText('upstreamInstanceId', MAX_BIG_ID).optional(),
  })
  .strict();

/**
 * The upstream `t` is to follow: the chosen member, or the herd's primary. A refusal (string) when the
 * choice is not in the herd, is `t` itself, is not running, or would close a loop (it streams from
 * `t`, directly or through other replicas).
 */
export function chooseUpstream(t: InstanceRef, members: InstanceRef[], upstreamId?: number): InstanceRef | string {
  if (upstreamId === undefined) return herdPrimary(t, members);
  const up = members.find((m) => m.id === upstreamId);
  if (!up) return `instance ${upstreamId} is not a member of the herd ${t.environment}/${t.herd}`;
  if (up.id === t.id) return 'a replica cannot stream from itself';
  if (up.state !== 'running') return `${up.label} is not running (the inventory says ${up.state})`;
  const byId = new Map(members.map((m) => [m.id, m]));
  for (
    let m: InstanceRef | undefined = up, hops = 0;
    m && hops <= members.length;
    m = m.upstreamId ? byId.get(m.upstreamId) : undefined, hops++
  ) {
    if (m.upstreamId === t.id)
      return `${up.label} streams from ${t.label}${m === up ? '' : ' through other replicas'}: that would be a loop`;
  }
  return up;
}

export const remasterAction = defineAction({
  name: 'remaster',
  control: asks('remaster'),
  label: 'Re-point (remaster)',
  permission: 'operator',
  dangerous: true,
  params: {
    schema: remasterParams,
    fields: [
      {
        name: 'upstreamInstanceId',
        label: 'New upstream',
        kind: 'herd-member',
        emptyLabel: 'the herd\u2019s primary',
        help: 'Another member of the herd: its primary, or a replica for cascading replication.',
      },
    ],
  },
  plan: (t, { members, params }) => {
    if (t.role === 'primary') return refuse('not-applicable', 'it is a primary: only replicas follow an upstream');
    const chosen = params.upstreamInstanceId;
    const up = chooseUpstream(t, members, chosen);
    if (typeof up === 'string') return refuse('topology', up);
    return {
      change: { kind: 'remaster', targetIds: [t.id], upstreamId: up.id },
      steps: [
        {
          name: 'check the new upstream',
          does: {
            kind: 'pg.check-upstream',
            upstream: memberArg(up),
            asPrimary: chosen === undefined,
            streamsItself: up.role === 'replica',
          },
          says: `check that ${up.label} answers${chosen === undefined ? ' as the primary' : ''}${up.role === 'replica' ? ' and streams itself' : ''}`,
          timeoutMs: 10_000,
          run: async (x) => {
            const o = await observe(up);
            if (!o.reachable)
              throw refuse('unreachable', `${up.label} does not answer (${o.error ?? 'no reason given'}); nothing was changed`);
            if (o.inRecovery && chosen === undefined)
              throw refuse('topology', `${up.label} does not answer as a primary (in recovery); nothing was changed`);
            // A replica passes on only what it receives: it must be streaming itself.
            if (o.inRecovery && o.walReceiver?.status !== 'streaming')
              throw refuse('topology', `${up.label} is a replica that is not streaming: it would pass on nothing; nothing was changed`);
            x.note({ stdout: `new upstream: ${up.label} (${o.inRecovery ? 'replica' : 'primary'})` });
          },
        },
        {
          name: 'set primary_conninfo and wait until it streams from the new upstream',
          does: {
            kind: 'pg.point-at',
            instance: memberArg(t),
            upstream: memberArg(up),
            then: t.pgVersion >= 13 ? 'reload' : 'restart',
            driver: t.controlDriver,
          },
          says: [
            `ALTER SYSTEM SET primary_conninfo to ${up.label}${up.role === 'replica' ? ' (a replica: cascading replication)' : ''}`,
            t.pgVersion >= 13
              ? 'reload the configuration'
              : `${t.controlDriver} restart (PostgreSQL before 13 reads primary_conninfo at start only)`,
            `wait until pg_stat_wal_receiver streams from ${up.host}:${up.port}`,
          ].join('; '),
          timeoutMs: 200_000,
          run: async (x) => {
            const o = await pointAt(t, up, x.deps, x);
            x.note({ stdout: `streaming from ${o.walReceiver?.senderHost ?? '?'}:${o.walReceiver?.senderPort ?? '?'}` });
          },
        },
        refreshStep(t),
      ],
      warnings: t.upstreamId === up.id ? [`it streams from ${up.label} already: it will reconnect`] : [],
    };
  },
});
