import { z } from 'zod';
import { idText } from '@/lib/admin/parse-id';
import { defineAction } from '../define-action';
import type { InstanceRef } from '../instance-ref';
import { herdPrimary } from '../herd-primary';
import { observe } from '../observe';
import { step } from '../pipeline';
import { pointAt } from '../topology-steps';
import { refreshStep } from './control-steps';


export const remasterParams = z.object({
  /** The member to stream from; left out: the herd's primary. */
  upstreamInstanceId: idText('upstreamInstanceId').optional(),
}).strict();

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
  for (let m: InstanceRef | undefined = up, hops = 0; m && hops <= members.length; m = m.upstreamId ? byId.get(m.upstreamId) : undefined, hops++) {
    if (m.upstreamId === t.id) return `${up.label} streams from ${t.label}${m === up ? '' : ' through other replicas'}: that would be a loop`;
  }
  return up;
}

export const remasterAction = defineAction({
  name: 'remaster',
  label: 'Re-point (remaster)',
  permission: 'operator',
  dangerous: true,
  params: {
    schema: remasterParams,
    fields: [{
      name: 'upstreamInstanceId',
      label: 'New upstream',
      kind: 'herd-member',
      emptyLabel: 'the herd\u2019s primary',
      help: 'Another member of the herd: its primary, or a replica for cascading replication.',
    }],
  },
  plan: (t, { members, params }) => {
    const up = chooseUpstream(t, members, remasterParams.parse(params).upstreamInstanceId);
    const ok = typeof up !== 'string';
    return {
      steps: !ok ? [] : [
        `ALTER SYSTEM SET primary_conninfo to ${up.label}${up.role === 'replica' ? ' (a replica: cascading replication)' : ''}`,
        t.pgVersion >= 13 ? 'reload the configuration' : `${t.controlDriver} restart (PostgreSQL before 13 reads primary_conninfo at start only)`,
        `wait until pg_stat_wal_receiver streams from ${up.host}:${up.port}`,
      ],
      refused: t.role === 'primary' ? 'it is a primary: only replicas follow an upstream' : !ok ? up : undefined,
      warnings: ok && t.upstreamId === up.id ? [`it streams from ${up.label} already: it will reconnect`] : [],
    };
  },
  steps: (t, deps, { members, params }) => {
    let up: InstanceRef;
    return [
      step('check the new upstream', async (ctx) => {
        const chosen = remasterParams.parse(params).upstreamInstanceId;
        const u = chooseUpstream(t, members, chosen);
        if (typeof u === 'string') throw new Error(u);
        const o = await observe(u);
        if (!o.reachable) throw new Error(`${u.label} does not answer (${o.error})`);
        if (o.inRecovery && chosen === undefined) throw new Error(`${u.label} does not answer as a primary (in recovery)`);
        // A replica passes on only what it receives: it must be streaming itself.
        if (o.inRecovery && o.walReceiver?.status !== 'streaming') throw new Error(`${u.label} is a replica that is not streaming: it would pass on nothing`);
        up = u;
        ctx.note({ stdout: `new upstream: ${u.label} (${o.inRecovery ? 'replica' : 'primary'})` });
      }, { timeoutMs: 10_000 }),
      step('set primary_conninfo and wait until it streams from the new upstream', async (ctx) => {
        const o = await pointAt(t, up, deps, ctx);
        ctx.note({ stdout: `streaming from ${o.walReceiver?.senderHost}:${o.walReceiver?.senderPort}` });
      }, { timeoutMs: 200_000 }),
      refreshStep(t, deps),
    ];
  },
});
