import { eq } from 'drizzle-orm';
import { instances } from '@/db/schema';
import { binDir, driverFor } from '../drivers';
import { commonWarnings, defineAction } from '../define-action';
import type { InstanceRef } from '../instance-ref';
import { herdPrimary } from '../herd-primary';
import { observe, runSql, waitObserved } from '../observe';
import { step } from '../pipeline';
import { execNoted, execNotedOk, refreshStep } from './control-steps';
import { conninfo } from './remaster.action';

/** The node's own settings, which pg_rewind and pg_basebackup overwrite with the source's. */
const OWN_FILES = ['postgresql.conf', 'pg_hba.conf', 'pg_ident.conf'];


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
        `pg_rewind from ${src.label}; if it cannot rewind, move the data directory aside and pg_basebackup -X stream -R`,
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
    const save = `${t.dataDirectory}.pgherd-own`;
    let src: InstanceRef;
    let rewound = false;
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
      step('save the node\u2019s own settings', async (ctx) => {
        // Files that live elsewhere (Debian keeps them in /etc) are not copied over by the rebuild anyway.
        const script = 'set -e; save=$1; dd=$2; shift 2; mkdir -p "$save"; for f in "$@"; do if [ -e "$dd/$f" ]; then cp -p "$dd/$f" "$save/"; fi; done';
        const r = await execNoted(deps, t, ctx, ['sh', '-c', script, 'sh', save, t.dataDirectory, ...OWN_FILES], 30_000);
        if (r.code !== 0) throw new Error(`could not save the settings: ${r.stderr}`);
      }, { timeoutMs: 40_000 }),
      step('checkpoint on the source', async (ctx) => {
        ctx.note({ command: `CHECKPOINT on ${src.label}` });
        await runSql(src, 'CHECKPOINT');
      }, { timeoutMs: 300_000 }),
      step('pg_rewind', async (ctx) => {
        const source = conninfo({ host: src.host, port: src.port, user: process.env.PGHERD_REPLICATION_USER ?? 'postgres', dbname: 'postgres' });
        const r = await execNoted(deps, t, ctx, [`${binDir(t.pgVersion)}/pg_rewind`, '-D', t.dataDirectory, `--source-server=${source}`, '-R', '--no-sync'], 3_600_000);
        rewound = r.code === 0;
        if (!rewound) ctx.note({ stdout: 'pg_rewind could not rewind: falling back to pg_basebackup' });
      }, { timeoutMs: 3_700_000 }),
      step('pg_basebackup (when pg_rewind could not)', async (ctx) => {
        if (rewound) return void ctx.note({ stdout: 'skipped: rewound' });
        const aside = `${t.dataDirectory}.pgherd-old-${Date.now()}`;
        let r = await execNoted(deps, t, ctx, ['mv', t.dataDirectory, aside], 60_000);
        if (r.code !== 0) throw new Error(`could not move the data directory aside: ${r.stderr}`);
        r = await execNoted(deps, t, ctx, [`${binDir(t.pgVersion)}/pg_basebackup`, '-h', src.host, '-p', String(src.port), '-U', process.env.PGHERD_REPLICATION_USER ?? 'postgres', '-D', t.dataDirectory, '-X', 'stream', '-R', '-c', 'fast'], 86_400_000);
        if (r.code !== 0) throw new Error(`pg_basebackup failed (the old data directory is kept at ${aside}): ${r.stderr}`);
        await execNoted(deps, t, ctx, ['rm', '-rf', '--', aside], 600_000);
      }, { timeoutMs: 86_400_000 }),
      step('restore the node\u2019s own settings', async (ctx) => {
        const script = 'set -e; for f in "$1"/*; do [ -e "$f" ] || continue; cp -p "$f" "$2"/; done; rm -rf -- "$1"';
        const r = await execNoted(deps, t, ctx, ['sh', '-c', script, 'sh', save, t.dataDirectory], 30_000);
        if (r.code !== 0) throw new Error(`could not restore the settings: ${r.stderr}`);
      }, { timeoutMs: 40_000 }),
      step('start', async (ctx) => {
        await execNotedOk(deps, t, ctx, d.start(t));
      }, { timeoutMs: 160_000 }),
      step('wait until it streams from the primary', async (ctx) => {
        await waitObserved(t, `streaming from ${src.label}`, (o) => o.reachable && o.inRecovery === true && o.walReceiver?.status === 'streaming' && o.walReceiver.senderHost === src.host, { signal: ctx.signal, timeoutMs: 120_000 });
        await deps.db.update(instances).set({ upstreamInstanceId: src.id, role: 'replica', state: 'running' }).where(eq(instances.id, t.id));
      }, { timeoutMs: 130_000 }),
      refreshStep(t, deps),
    ];
  },
});
