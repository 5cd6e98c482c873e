// Moves of a herd's topology that several actions make: promote a replica, point a replica at an
// upstream, bring an old primary back as a replica of the new one. Each is judged by what the
// instances then say (pg_is_in_recovery(), pg_stat_wal_receiver), never by an exit code.
import { performance } from 'node:perf_hooks';
import { eq } from 'drizzle-orm';
import { instances } from '@/db/schema';
import { lsnDiff } from '@/lib/adapters/format/lsn';
import { binDir, driverFor } from '@/lib/fleet/drivers';
import type { ActionDeps, ActionStep } from '@/lib/engine/define-action';
import { memberArg, type Arg } from '@/lib/engine/plan-identity';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { observe, runSql, sessionTo, shown, waitObserved, type Observed, type Session } from '@/lib/fleet/observe';
import { identityProblem } from '@/lib/fleet/identity';
import { instanceClient } from '@/lib/fleet/pg-access';
import type { StepContext } from '@/lib/engine/pipeline';
import { execNoted, execNotedOk } from './exec-noted';
import { refuse } from '@/lib/fleet/refusal';
import { proveReplaceable } from './data-directory';
import { setting } from '@/lib/settings/settings';
import { replicationConninfo } from './replication-conninfo';

export const replicationUser = () => setting('PGHERD_REPLICATION_USER');

/** What a member said, in one line for a step's record. */
export function describeObserved(m: InstanceRef, o: Observed): string {
  if (!o.reachable) return `${m.label}: not answering (${shown(o.error)})`;
  if (!o.inRecovery) return `${m.label}: primary, timeline ${shown(o.timeline)}, system ${shown(o.systemIdentifier)}, at ${shown(o.lsn)}`;
  const w = o.walReceiver;
  return `${m.label}: replica, timeline ${shown(o.timeline)}, system ${shown(o.systemIdentifier)}, received ${o.receiveLsn ?? 'nothing'}, replayed ${shown(o.lsn)}, ${w ? `${w.status} from ${shown(w.senderHost)}:${shown(w.senderPort)}` : 'not streaming'}`;
}

/**
 * Promotes over SQL (pg_promote, PostgreSQL 12 and later: no SSH round trip) and waits until it
 * accepts writes. A paused replay is resumed by the promotion itself. `onSent` is called just before
 * pg_promote goes out (once it has, the promotion may complete whatever happens to this call: a
 * caller undoing a switchover must know); nothing is sent once the step has been stopped.
 * `deadlineMs`: how long to wait for the promotion once sent (default 60 s). `over`: a session the
 * steps before kept to it (a DR failover's, which watched its replay), else a connection of its own;
 * either way it is promoted only while its postmaster takes new connections, and it must still do
 * once promoted.
 */
export async function promoteNow(
  t: InstanceRef,
  ctx: StepContext,
  opts: { onSent?: () => void; deadlineMs?: number; over?: Session } = {},
): Promise<Observed> {
  const deadline = opts.deadlineMs ?? 60_000;
  ctx.note({ command: `SELECT pg_promote(false) on ${t.label}, then pg_is_in_recovery() until false` });
  const s = opts.over ?? sessionTo(t, { timeoutMs: 3000 });
  try {
    // A candidate whose postmaster takes no new connection would be a primary no client reaches (a
    // session of its own proves it by connecting; one kept from the steps before is asked).
    const before = opts.over ? await s.look() : null;
    if (before && !before.reachable) throw new Error(`${t.label} was not promoted: ${before.error ?? 'it does not answer'}`);
    if (ctx.signal.aborted) throw new Error(`${t.label} was not promoted: the step was stopped before pg_promote was sent`);
    opts.onSent?.();
    // The deadline runs from the moment pg_promote is sent. pg_promote's own wait looks every 100 ms;
    // this session looks every 5 ms for the first 50 ms (a promotion's usual length, on the switchover's
    // pause), then twice as long each time up to 50 ms: fifty promotions at once (a site's DR failover)
    // take seconds on two cores, and a look every 5 ms each was CPU taken from them. Each look only
    // while the deadline has not passed; a query that hangs (frozen mid-promotion) fails at its timeout.
    const until = performance.now() + deadline;
    const [sent] = await s.query<{ ok: boolean }>('SELECT pg_promote(false) AS ok');
    if (!sent?.ok) throw new Error(`${t.label} did not take the promotion signal (pg_promote returned false)`);
    const started = performance.now();
    for (let every = 5; ; every = performance.now() - started < 50 ? 5 : Math.min(50, every * 2)) {
      await new Promise((res) => setTimeout(res, every));
      if (performance.now() > until) throw new Error(`${t.label} did not finish its promotion within ${deadline / 1000} s of pg_promote`);
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- the signal aborts while the loop waits, which TypeScript does not see
      if (ctx.signal.aborted) throw new Error(`stopped waiting for ${t.label} to finish its promotion`);
      // Sent: a look that fails (its session ended: the next one connects again) is not a failed promotion.
      const [r] = await s.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec').catch(() => []);
      if (r?.rec === false) break;
    }
    // What it is now, over the same session, with its postmaster asked whether it takes new connections.
    let o = await s.look();
    if (!o.reachable) o = await s.look();
    if (!o.reachable || o.inRecovery !== false)
      throw new Error(`${t.label} is not answering as a primary after its promotion: ${o.error ?? 'still in recovery'}`);
    return o;
  } finally {
    s.close();
  }
}

/**
 * The inventory knows a promoted member as the primary at once, before the steps that follow (DNS,
 * poolers, re-pointing) can fail: the old primary must never be offered again.
 */
export async function recordNewPrimary(deps: ActionDeps, t: InstanceRef, timeline?: number): Promise<void> {
  await deps.db
    .update(instances)
    .set({
      role: 'primary',
      observedRole: 'primary',
      upstreamInstanceId: null,
      lagBytes: 0,
      lagSeconds: 0,
      ...(timeline === undefined ? {} : { timeline }),
    })
    .where(eq(instances.id, t.id));
}

/**
 * Points replica `t` at `up` (ALTER SYSTEM primary_conninfo, then a reload; a restart before
 * PostgreSQL 13) and waits until pg_stat_wal_receiver streams from it. Records the upstream.
 */
export async function pointAt(
  t: InstanceRef,
  up: InstanceRef,
  deps: ActionDeps,
  ctx: StepContext,
  opts: { resumeReplay?: boolean; timeoutMs?: number } = {},
): Promise<Observed> {
  // Both must be the herd's (one system identifier), and t must not be ahead of what it is to follow.
  const [to, uo] = await Promise.all([observe(t, 3000), observe(up, 3000)]);
  if (!uo.reachable) throw new Error(`${up.label} does not answer (${shown(uo.error)})`);
  const herd = { systemIdentifier: t.herdSystemIdentifier ?? uo.systemIdentifier ?? null, timeline: null };
  const why = identityProblem(up, uo, herd) ?? identityProblem(t, to, herd);
  if (why) throw refuse('identity', `${why}; ${t.label} was not re-pointed`);
  if (to.reachable && to.timeline !== undefined && uo.timeline !== undefined && to.timeline > uo.timeline) {
    throw refuse(
      'identity',
      `${t.label} is on timeline ${to.timeline}, ahead of ${up.label}'s ${uo.timeline}: it cannot follow it (rebuild it)`,
    );
  }
  const value = await replicationConninfo(deps, t, ctx, up, { user: replicationUser(), application_name: t.label.replace(/:.*$/, '') });
  const c = instanceClient(t, { connectionTimeoutMillis: 3000, application_name: 'pgherd' });
  c.on('error', () => {}); // connect() or the queries reject with it
  await c.connect();
  try {
    // ALTER SYSTEM takes no parameters: the value goes in as a quoted literal.
    await c.query(`ALTER SYSTEM SET primary_conninfo = ${c.escapeLiteral(value)}`);
    if (t.pgVersion >= 13) await c.query('SELECT pg_reload_conf()');
    ctx.note({ command: `ALTER SYSTEM SET primary_conninfo = '${value}'` });
    // A replica whose replay is paused cannot follow the new primary's timeline (it never reaches the switch).
    if (opts.resumeReplay && (await c.query<{ p: boolean }>('SELECT pg_is_wal_replay_paused() AS p')).rows[0]?.p) {
      await c.query('SELECT pg_wal_replay_resume()');
      ctx.note({ stderr: `${t.label}: its replay was paused; resumed, or it could not follow the new timeline` });
    }
  } finally {
    await c.end().catch(() => {});
  }
  if (t.pgVersion < 13) await execNotedOk(deps, t, ctx, driverFor(t.controlDriver).restart(t));
  // Streaming from it is not enough: it follows it once it receives the upstream's own timeline.
  const o = await waitObserved(
    t,
    `streaming timeline ${shown(uo.timeline)} from ${up.host}:${up.port}`,
    (x) =>
      x.reachable &&
      x.walReceiver?.status === 'streaming' &&
      x.walReceiver.senderHost === up.host &&
      x.walReceiver.senderPort === up.port &&
      (uo.timeline === undefined || x.walReceiver.receivedTli === uo.timeline),
    { signal: ctx.signal, timeoutMs: opts.timeoutMs ?? 60_000 },
  );
  // Receiving the new timeline is not following it: the startup process may yet meet what it cannot
  // replay past (a record the old primary never finished, overwritten on the new timeline) and stop
  // the whole instance. It follows once it has replayed what the upstream had written by now.
  const now = await observe(up, 3000);
  if (!now.reachable || !now.lsn) throw new Error(`${up.label} does not answer (${shown(now.error)})`);
  const upTo = now.lsn;
  const replayed = await waitObserved(
    t,
    `replayed the new timeline up to ${upTo}`,
    (x) => {
      if (!x.reachable && x.refused) throw new Error(`${t.label} stopped while replaying the new timeline (${shown(x.error)})`);
      return x.reachable && x.inRecovery === true && (lsnDiff(x.lsn, upTo) ?? -1) >= 0;
    },
    { signal: ctx.signal, timeoutMs: opts.timeoutMs ?? 60_000 },
  );
  await deps.db.update(instances).set({ upstreamInstanceId: up.id }).where(eq(instances.id, t.id));
  return { ...replayed, walReceiver: replayed.walReceiver ?? o.walReceiver };
}

/** The herd's system identifier: as recorded, else as its source (a member proven to be the herd's primary) reports it. */
async function herdSystem(t: InstanceRef, src: InstanceRef): Promise<string | null> {
  if (t.herdSystemIdentifier) return t.herdSystemIdentifier;
  const o = await observe(src, 3000);
  return o.reachable ? (o.systemIdentifier ?? null) : null;
}

/** The node's own settings, which pg_rewind and pg_basebackup overwrite with the source's. */
export const OWN_FILES = ['postgresql.conf', 'pg_hba.conf', 'pg_ident.conf'];

/** What the rejoin steps tell each other: whether pg_rewind did it (else pg_basebackup does). */
export interface RejoinState {
  rewound: boolean;
}

/** What the rejoin steps of one node share: the node, its source (asked when they run, and as planned), the words and arguments. */
interface Rejoin<S> {
  t: InstanceRef;
  source: (state: S) => InstanceRef;
  prefix: string;
  opts: { fresh?: boolean };
  d: ReturnType<typeof driverFor>;
  /** Where its own settings are kept meanwhile. */
  save: string;
  sourceLabel: string;
  on: { instance: Arg; dataDirectory: string };
  from: Arg;
}

/**
 * Turns stopped `t` into a streaming replica of `source(state)` (asked when the steps run; `planned` is
 * the source the plan foresees, named in its words and arguments): pg_rewind (which also says "no
 * rewind required" for an old primary stopped cleanly after its replica had everything), pg_basebackup
 * when it cannot rewind, the node's own settings kept, started, streaming. `fresh`: no pg_rewind, a
 * fresh copy.
 */
export function rejoinSteps<S extends RejoinState>(
  t: InstanceRef,
  source: (state: S) => InstanceRef,
  planned: InstanceRef,
  prefix = '',
  opts: { fresh?: boolean } = {},
): ActionStep<S>[] {
  const z: Rejoin<S> = {
    t,
    source,
    prefix,
    opts,
    d: driverFor(t.controlDriver),
    save: `${t.dataDirectory}.pgherd-own`,
    sourceLabel: planned.label,
    on: { instance: memberArg(t), dataDirectory: t.dataDirectory },
    from: memberArg(planned),
  };
  return [saveOwnSettingsStep(z), rewindStep(z), basebackupStep(z), restoreOwnSettingsStep(z), rejoinStartStep(z), waitStreamingStep(z)];
}

/** Proven not running and the herd's, then its own settings copied aside (the rebuild overwrites them with the source's). */
function saveOwnSettingsStep<S extends RejoinState>(z: Rejoin<S>): ActionStep<S> {
  const { t, source, prefix, save, on } = z;
  return {
    name: `${prefix}save the node\u2019s own settings`,
    does: { kind: 'pg.save-own-settings', ...on, files: OWN_FILES, to: save },
    says: `${prefix}prove that no server runs on ${t.dataDirectory} and that it holds the herd's data (pg_ctl status, pg_controldata), then copy its own ${OWN_FILES.join(', ')} aside (the rebuild overwrites them with the source's)`,
    timeoutMs: 40_000,
    run: async (x) => {
      await proveReplaceable(x.deps, t, x, await herdSystem(t, source(x.state)));
      // Files that live elsewhere (Debian keeps them in /etc) are not copied over by the rebuild anyway.
      const script =
        'set -e; save=$1; dd=$2; shift 2; mkdir -p "$save"; for f in "$@"; do if [ -e "$dd/$f" ]; then cp -p "$dd/$f" "$save/"; fi; done';
      const r = await execNoted(x.deps, t, x, ['sh', '-c', script, 'sh', save, t.dataDirectory, ...OWN_FILES], 30_000);
      if (r.code !== 0) throw new Error(`could not save the settings: ${r.stderr}`);
    },
  };
}

/** pg_rewind from the source, unless a fresh copy is asked for; says whether it rewound. */
function rewindStep<S extends RejoinState>(z: Rejoin<S>): ActionStep<S> {
  const { t, source, prefix, opts, sourceLabel, on, from } = z;
  return {
    name: `${prefix}pg_rewind`,
    does: opts.fresh ? { kind: 'pg.no-rewind', ...on } : { kind: 'pg.rewind', ...on, source: from },
    says: opts.fresh
      ? `${prefix}no pg_rewind: it is marked needs rebuild (it may hold WAL that pg_rewind would find nothing to rewind in), so a fresh copy is made`
      : `${prefix}pg_rewind from ${sourceLabel}`,
    timeoutMs: 3_700_000,
    run: async (x) => {
      if (opts.fresh) return void x.note({ stdout: 'skipped: a fresh copy is made instead' });
      const src = source(x.state);
      const conn = await replicationConninfo(x.deps, t, x, src, { user: replicationUser(), dbname: 'postgres' });
      const r = await execNoted(
        x.deps,
        t,
        x,
        [`${binDir(t.pgVersion)}/pg_rewind`, '-D', t.dataDirectory, `--source-server=${conn}`, '-R', '--no-sync'],
        3_600_000,
      );
      x.state.rewound = r.code === 0;
      if (!x.state.rewound) x.note({ stdout: 'pg_rewind could not rewind: falling back to pg_basebackup' });
    },
  };
}

/** When pg_rewind could not (or a fresh copy): the data directory moved aside, pg_basebackup from the source, the old one removed. */
function basebackupStep<S extends RejoinState>(z: Rejoin<S>): ActionStep<S> {
  const { t, source, prefix, opts, sourceLabel, on, from } = z;
  return {
    name: `${prefix}pg_basebackup (when pg_rewind could not)`,
    does: { kind: 'pg.basebackup', ...on, source: from, onlyIfNotRewound: !opts.fresh },
    says: `${prefix}${opts.fresh ? '' : 'when pg_rewind could not: '}move the data directory aside and pg_basebackup -X stream -R from ${sourceLabel}`,
    timeoutMs: 86_400_000,
    run: async (x) => {
      if (x.state.rewound) return void x.note({ stdout: 'skipped: rewound' });
      const src = source(x.state);
      // Proven again right before the move: a server may have been started on it since.
      const { exists } = await proveReplaceable(x.deps, t, x, await herdSystem(t, src));
      const aside = `${t.dataDirectory}.pgherd-old-${Date.now()}`;
      if (exists) {
        const mv = await execNoted(x.deps, t, x, ['mv', t.dataDirectory, aside], 60_000);
        if (mv.code !== 0) throw new Error(`could not move the data directory aside: ${mv.stderr}`);
      }
      const r = await execNoted(
        x.deps,
        t,
        x,
        [
          `${binDir(t.pgVersion)}/pg_basebackup`,
          '-d',
          await replicationConninfo(x.deps, t, x, src, { user: replicationUser() }),
          '-D',
          t.dataDirectory,
          '-X',
          'stream',
          '-R',
          '-c',
          'fast',
        ],
        86_400_000,
      );
      if (r.code !== 0)
        throw new Error(`pg_basebackup failed${exists ? ` (the old data directory is kept at ${aside})` : ''}: ${r.stderr}`);
      if (exists) await execNoted(x.deps, t, x, ['rm', '-rf', '--', aside], 600_000);
    },
  };
}

/** Its own settings copied back from where they were kept. */
function restoreOwnSettingsStep<S extends RejoinState>(z: Rejoin<S>): ActionStep<S> {
  const { t, prefix, save, on } = z;
  return {
    name: `${prefix}restore the node\u2019s own settings`,
    does: { kind: 'pg.restore-own-settings', ...on, files: OWN_FILES, from: save },
    says: `${prefix}restore its own ${OWN_FILES.join(', ')}`,
    timeoutMs: 40_000,
    run: async (x) => {
      const script = 'set -e; for f in "$1"/*; do [ -e "$f" ] || continue; cp -p "$f" "$2"/; done; rm -rf -- "$1"';
      const r = await execNoted(x.deps, t, x, ['sh', '-c', script, 'sh', save, t.dataDirectory], 30_000);
      if (r.code !== 0) throw new Error(`could not restore the settings: ${r.stderr}`);
    },
  };
}

/** Started by its control driver. */
function rejoinStartStep<S extends RejoinState>(z: Rejoin<S>): ActionStep<S> {
  const { t, prefix, d, on } = z;
  return {
    name: `${prefix}start`,
    does: { kind: 'pg.start', ...on, driver: t.controlDriver },
    says: `${prefix}start it (${t.controlDriver})`,
    timeoutMs: 160_000,
    run: async (x) => {
      await execNotedOk(x.deps, t, x, d.start(t));
    },
  };
}

/** Waited for until it receives the source's own timeline; then recorded as the source's running replica. */
function waitStreamingStep<S extends RejoinState>(z: Rejoin<S>): ActionStep<S> {
  const { t, source, prefix, sourceLabel, from } = z;
  return {
    name: `${prefix}wait until it streams from the primary`,
    does: { kind: 'pg.wait-streaming', instance: memberArg(t), source: from },
    says: `${prefix}wait until it streams from ${sourceLabel}`,
    timeoutMs: 130_000,
    run: async (x) => {
      const src = source(x.state);
      // Streaming is not enough: a rewound replica first streams the timeline it forked from, then its
      // WAL receiver restarts on the source's own timeline. Done once it receives that one.
      const so = await observe(src, 3000);
      const tli = so.reachable ? so.timeline : undefined;
      await waitObserved(
        t,
        `streaming timeline ${shown(tli)} from ${src.label}`,
        (o) =>
          o.reachable &&
          o.inRecovery === true &&
          o.walReceiver?.status === 'streaming' &&
          o.walReceiver.senderHost === src.host &&
          (tli === undefined || o.walReceiver.receivedTli === tli),
        { signal: x.signal, timeoutMs: 120_000 },
      );
      await x.deps.db
        .update(instances)
        .set({ upstreamInstanceId: src.id, role: 'replica', observedRole: 'replica', state: 'running' })
        .where(eq(instances.id, t.id));
    },
  };
}

/**
 * CHECKPOINT on `target(state)` (before pg_rewind uses it as a source; before a clean stop, to make it
 * short); `on`: that member as the plan names it in the step's arguments.
 */
export function checkpointStep<S>(name: string, says: string, target: (state: S) => InstanceRef, on: Arg): ActionStep<S> {
  return {
    name,
    does: { kind: 'pg.checkpoint', instance: on },
    says,
    timeoutMs: 300_000,
    run: async (x) => {
      const t = target(x.state);
      x.note({ command: `CHECKPOINT on ${t.label}` });
      await runSql(t, 'CHECKPOINT');
    },
  };
}
