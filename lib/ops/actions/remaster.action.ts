import { eq } from 'drizzle-orm';
import pg from 'pg';
import { z } from 'zod';
import { instances } from '@/db/schema';
import { defineAction } from '../define-action';
import type { InstanceRef } from '../instance-ref';
import { herdPrimary } from '../herd-primary';
import { endpointUrl, observe, waitObserved } from '../observe';
import { step } from '../pipeline';
import { refreshStep, sshControlStep } from './control-steps';

/** primary_conninfo as libpq reads it: values quoted, quotes and backslashes escaped. */
export function conninfo(parts: Record<string, string | number>): string {
  return Object.entries(parts).map(([k, v]) => `${k}='${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`).join(' ');
}

export const remasterParams = z.object({
  /** The member to stream from; left out: the herd's primary. */
  upstreamInstanceId: z.coerce.number().int().positive().optional(),
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
      step('set primary_conninfo', async (ctx) => {
        const value = conninfo({ host: up.host, port: up.port, user: process.env.PGHERD_REPLICATION_USER ?? 'postgres', application_name: t.label.split(':')[0] });
        const c = new pg.Client({ connectionString: endpointUrl(t), connectionTimeoutMillis: 3000 });
        c.on('error', () => {}); // connect() or the queries reject with it
        await c.connect();
        try {
          // ALTER SYSTEM takes no parameters: the value goes in as a quoted literal.
          await c.query(`ALTER SYSTEM SET primary_conninfo = ${c.escapeLiteral(value)}`);
          if (t.pgVersion >= 13) await c.query('SELECT pg_reload_conf()');
          ctx.note({ command: `ALTER SYSTEM SET primary_conninfo = '${value}'` });
        } finally {
          await c.end();
        }
      }, { timeoutMs: 15_000 }),
      ...(t.pgVersion >= 13 ? [] : [sshControlStep(t, deps, 'restart', 'restart (PostgreSQL < 13)')]),
      step('wait until it streams from the new upstream', async (ctx) => {
        const o = await waitObserved(t, `streaming from ${up.host}:${up.port}`,
          (x) => x.reachable && x.walReceiver?.status === 'streaming' && x.walReceiver.senderHost === up.host && x.walReceiver.senderPort === up.port,
          { signal: ctx.signal, timeoutMs: 60_000 });
        ctx.note({ stdout: `streaming from ${o.walReceiver?.senderHost}:${o.walReceiver?.senderPort}` });
        await deps.db.update(instances).set({ upstreamInstanceId: up.id }).where(eq(instances.id, t.id));
      }, { timeoutMs: 70_000 }),
      refreshStep(t, deps),
    ];
  },
});
