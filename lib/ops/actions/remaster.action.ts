import { eq } from 'drizzle-orm';
import pg from 'pg';
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

export const remasterAction = defineAction({
  name: 'remaster',
  label: 'Re-point to the herd\u2019s primary',
  permission: 'operator',
  dangerous: true,
  plan: (t, { members }) => {
    const up = herdPrimary(t, members);
    return {
      steps: typeof up === 'string' ? [] : [
        `ALTER SYSTEM SET primary_conninfo to ${up.label}`,
        t.pgVersion >= 13 ? 'reload the configuration' : `${t.controlDriver} restart (PostgreSQL before 13 reads primary_conninfo at start only)`,
        `wait until pg_stat_wal_receiver streams from ${up.host}:${up.port}`,
      ],
      refused: t.role === 'primary' ? 'it is a primary: only replicas follow an upstream' : typeof up === 'string' ? up : undefined,
      warnings: [],
    };
  },
  steps: (t, deps, { members }) => {
    let up: InstanceRef;
    return [
      step('check the new upstream', async (ctx) => {
        const u = herdPrimary(t, members);
        if (typeof u === 'string') throw new Error(u);
        const o = await observe(u);
        if (!o.reachable || o.inRecovery !== false) throw new Error(`${u.label} does not answer as a primary (${o.error ?? 'in recovery'})`);
        up = u;
        ctx.note({ stdout: `new upstream: ${u.label}` });
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
