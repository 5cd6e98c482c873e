// The switch between blue and green, one way (cut-over) or back (roll back): PgBouncer paused, the serving
// side made read-only, a marker written on it seen on the other (every commit before it applied), sequences
// set with a gap, a reverse subscription, the write name and PgBouncer moved, resumed.
import { claimOwedForCleanup, recordOwed } from '@/lib/engine/owed';
import { and, eq } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '@/db/client';
import { dnsRecords, majorUpgrades, operations, owedCleanups, poolers } from '@/db/schema';
import {
  defineHerdAction,
  flagParam,
  productionWarning,
  type ActionPlan,
  type ActionStep,
  type RunContext,
} from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import { writeAudit } from '@/lib/engine/write-audit';
import { loadHerdRefs, type HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import { dnsSteps } from '@/lib/actions/steps/dns-steps';
import { observe, shown } from '@/lib/fleet/observe';
import { pauseSteps, repointAndResumeSteps, type PoolerSwitchState } from '@/lib/actions/steps/pooler-steps';
import { DEFAULT_PAUSE_BUDGET_S } from '@/lib/actions/steps/pooler-resume';
import { onDb, setReadOnly, type Endpoint } from '@/lib/actions/steps/endpoint-db';
import { provenOwnTable, useOwnSchema } from '@/lib/fleet/own-schema';
import { newLogin, subscribe } from './subscribe';
import { closeDoor, openDoor } from '@/lib/actions/steps/door';
import { BACK_PUBLICATION, backSubscription, MARKER, MARKER_TABLE, PUBLICATION, subscription, type SubName } from './replication';
import { asks } from '@/lib/actions/drivers';
import { primaryOf, type OpenUpgrade, openUpgradeOf, SEQUENCES, progress, endpointOf, type Labelled } from './major-parts';

export const switchParams = z
  .object({
    /** How long PgBouncer may hold clients before its armed RESUME lets them through. */
    pauseBudgetSeconds: z.preprocess(
      (v) => (typeof v === 'string' ? (v.trim() ? Number(v) : undefined) : v),
      z.number({ message: 'a number' }).int().min(5).max(900).optional(),
    ),
    /** A cut-over with fewer replicas on green than blue has (they are added to green before, with Add replica). */
    fewerReplicas: flagParam(),
  })
  .strict();

/** A herd's running replicas, by site: "2 (dc-east, dc-west)". */
function replicaShape(h: HerdRef): { count: number; words: string } {
  const rs = h.members.filter((m) => m.role === 'replica' && m.state === 'running');
  const sites = [...new Set(rs.map((m) => m.site || 'no site'))].sort();
  return { count: rs.length, words: rs.length ? `${String(rs.length)} (${sites.join(', ')})` : 'none' };
}

/**
 * Why green should not take the writes yet: it has fewer running replicas than blue (it would serve
 * with less redundancy and fewer readers than the herd it replaces); null when it has the herd's shape.
 */
export function shapeRefusal(blue: HerdRef, green: HerdRef): string | null {
  const b = replicaShape(blue);
  const g = replicaShape(green);
  if (g.count >= b.count) return null;
  return `green (${green.label}) has ${String(g.count)} running replica(s), blue has ${b.words}: add them to ${green.label} first (Add replica onto an empty server, seeded from green's primary with the new build's pg_basebackup), so that the new side takes the writes with the herd's shape; or tick "with fewer replicas" to cut over as it is`;
}

export interface SwitchPrepared {
  open: Map<number, OpenUpgrade | null>;
  /** Whether the operation that builds green has ended (a worker killed mid-build leaves it `building`). */
  buildEnded: Map<number, boolean>;
  /** Blue and green herds of each target's upgrade. */
  sides: Map<number, { blue: HerdRef; green: HerdRef } | string>;
  /** Blue, read on its own: an upgrade whose green is gone can still be abandoned. */
  blues: Map<number, HerdRef | null>;
  /** Green when it is still in the inventory. */
  greens: Map<number, HerdRef | null>;
  /** For a cut-over upgrade whose green is lost: why (its herd deleted, or no member answers as a primary). */
  greenLost: Map<number, string>;
}

export interface SwitchState extends PoolerSwitchState {
  fenced: boolean;
  /** Its owed_cleanups row: a worker's reconcile makes the old side writable again should this worker die before the switch. */
  fenceOwed: number | null;
  /** The new side's owed writability, from the switch until it is writable. */
  toOwed: number | null;
  switched: boolean;
  to: InstanceRef | undefined;
}

/** Why green is lost (no member answers as a primary, Postgres asked now), or null when one does. */
export async function lostWhy(green: HerdRef): Promise<string | null> {
  if (!green.members.length) return `${green.label} has no member left in the inventory`;
  const seen = await Promise.all(green.members.map(async (m) => [m, await observe(m, 3000)] as const));
  if (seen.some(([, o]) => o.reachable && o.inRecovery === false)) return null;
  return seen.map(([m, o]) => `${m.label} ${o.reachable ? 'answers as a replica' : `does not answer (${shown(o.error)})`}`).join('; ');
}

export async function prepareSwitch(herdList: HerdRef[], db: Db): Promise<SwitchPrepared> {
  const open = new Map<number, OpenUpgrade | null>();
  const buildEnded = new Map<number, boolean>();
  const sides = new Map<number, { blue: HerdRef; green: HerdRef } | string>();
  const blues = new Map<number, HerdRef | null>();
  const greens = new Map<number, HerdRef | null>();
  const greenLost = new Map<number, string>();
  for (const h of herdList) {
    const u = await openUpgradeOf(db, h.id);
    open.set(h.id, u);
    if (!u) continue;
    const [op] =
      u.operationId === null ? [] : await db.select({ f: operations.finishedAt }).from(operations).where(eq(operations.id, u.operationId));
    buildEnded.set(h.id, u.operationId === null || !op || op.f !== null);
    const refs = await loadHerdRefs(
      db,
      [u.blueHerdId, u.greenHerdId].filter((id): id is number => id !== null),
    );
    const blue = refs.find((r) => r.id === u.blueHerdId) ?? null;
    const green = refs.find((r) => r.id === u.greenHerdId) ?? null;
    blues.set(h.id, blue);
    greens.set(h.id, green);
    if (u.greenHerdId === null || u.blueHerdId === null)
      sides.set(h.id, `its ${u.greenHerdId === null ? 'green' : 'blue'} herd was deleted from the inventory`);
    else sides.set(h.id, blue && green ? { blue, green } : 'blue or green is gone from the inventory');
    if (u.status === 'cut-over') {
      const lost = green ? await lostWhy(green) : 'its herd was deleted from the inventory';
      if (lost !== null) greenLost.set(h.id, lost);
    }
  }
  return { open, buildEnded, sides, blues, greens, greenLost };
}

/** Records that `instance` owes its clients their writes (a writes-fence row): settled by the flow, else a worker's reconcile. */
export async function oweWritable(
  db: Pick<Db, 'insert'>,
  o: { targetId: number; herdId: number; instanceId: number; upgradeId: number; says: string },
): Promise<number | null> {
  const [owed] = await db
    .insert(owedCleanups)
    .values({ ...o, kind: 'writes-fence', databases: [], resumeToken: '', dueBy: new Date() })
    .returning({ id: owedCleanups.id });
  return owed?.id ?? null;
}

/**
 * Commits a marker row on `from` (flushed at its commit whatever synchronous_commit says: WAL is sent
 * once flushed) and waits until `to` has it, looking every 5 ms: every commit before it is applied
 * there. The time it took, or null when it did not arrive within `withinMs`.
 */
export async function markerThrough(from: Endpoint, to: Endpoint, database: string, token: string, withinMs: number, signal: AbortSignal) {
  const t0 = Date.now();
  await onDb(from, database, async (c) => {
    await useOwnSchema(c, false);
    if (!(await provenOwnTable(c, MARKER_TABLE))) throw refuse('not-applicable', `${database}: ${MARKER} is missing`);
    await c.query('BEGIN READ WRITE');
    await c.query('SET LOCAL synchronous_commit = on');
    await c.query(`INSERT INTO ${MARKER} (token) VALUES ($1)`, [token]);
    await c.query('COMMIT');
  });
  return onDb(to, database, async (c) => {
    await useOwnSchema(c, false);
    if (!(await provenOwnTable(c, MARKER_TABLE))) throw refuse('not-applicable', `${database}: ${MARKER} is missing`);
    for (;;) {
      if ((await c.query(`SELECT 1 FROM ${MARKER} WHERE token = $1`, [token])).rowCount) return Date.now() - t0;
      if (signal.aborted || Date.now() - t0 > withinMs) return null;
      await new Promise((r) => setTimeout(r, 5));
    }
  });
}

/** What the steps of one switch share: the upgrade, both sides (herd, primary, endpoint), the replication's names, the marker's token. */
interface Switch {
  u: OpenUpgrade;
  direction: 'cutover' | 'rollback';
  fromHerd: HerdRef;
  toHerd: HerdRef;
  from: InstanceRef;
  to: InstanceRef;
  fromEnd: Labelled;
  toEnd: Labelled;
  /** On `to`, fed by `from`. */
  oldSub: SubName;
  /** On `from`, fed by `to`. */
  newSub: SubName;
  /** On `to`. */
  newPub: string;
  token: string;
}

/**
 * The switch from `from` (the side that takes the writes now) to `to`: PgBouncer paused, `from` made
 * read-only, a marker written there seen on `to`, sequences carried, the replication turned around,
 * names and poolers moved, resumed. `direction`: cut-over (blue to green) or roll back (green to blue).
 */
export function switchPlan(
  h: HerdRef,
  u: OpenUpgrade,
  fromHerd: HerdRef,
  toHerd: HerdRef,
  direction: 'cutover' | 'rollback',
  budgetS: number,
): ActionPlan<SwitchState> | Refusal {
  const from = primaryOf(fromHerd);
  if (from instanceof Refusal) return from;
  const to = primaryOf(toHerd);
  if (to instanceof Refusal) return to;
  const z: Switch = {
    u,
    direction,
    fromHerd,
    toHerd,
    from,
    to,
    fromEnd: endpointOf(from),
    toEnd: endpointOf(to),
    oldSub: direction === 'cutover' ? subscription(u.id) : backSubscription(u.id),
    newSub: direction === 'cutover' ? backSubscription(u.id) : subscription(u.id),
    newPub: direction === 'cutover' ? BACK_PUBLICATION : PUBLICATION,
    token: `${direction}-${String(u.id)}-${String(Date.now())}`,
  };
  // Where the writes go now: the pooler and the names are the serving herd's (blue before the cut-over, green after).
  const serving = fromHerd;
  const writeNames = serving.dns.filter((r) => r.match === 'role');
  const members = () => [{ ...to, role: 'primary' as const }];
  return {
    steps: [
      preflightStep(z),
      ...pauseSteps<SwitchState>(serving.poolers, (s) => (s.switched ? s.to : undefined), budgetS),
      { ...fenceWritesStep(z), always: unfenceUnlessSwitchedStep(z) },
      markerStep(z),
      sequencesStep(z),
      turnAroundStep(z),
      writableStep(z),
      ...dnsSteps<SwitchState>(
        { ...serving, dns: writeNames },
        () => members(),
        () => [to],
        (rec) => `point ${rec.name} at ${to.hostname}`,
        undefined,
        { targetsOf: () => [to], name: (rec) => `DNS: ${rec.name} to ${to.hostname}` },
      ),
      ...repointAndResumeSteps<SwitchState>(serving.poolers, (s) => s.to, to),
      recordStep(z),
    ],
    warnings: [
      ...productionWarning(h),
      serving.poolers.length
        ? 'writes through PgBouncer wait during the switch (about a second); from the switch on, the old side refuses the connections of every role but superusers, and ends their sessions'
        : 'the herd has no PgBouncer: clients must reconnect through the write name; from the switch on, the old side refuses the connections of every role but superusers, and ends their sessions',
    ],
    facts: switchFacts(z),
    state: () => ({ fenced: false, fenceOwed: null, toOwed: null, switched: false, to: undefined, promoted: false, repointed: new Set() }),
  };
}

/** What the plan says of a switch: from where to where, what is lost (nothing), the sequences, the way back. */
function switchFacts({ u, direction, fromHerd, toHerd, from, to }: Switch) {
  return [
    { label: 'From', value: `${fromHerd.label} (${from.label})` },
    { label: 'To', value: `${toHerd.label} (${to.label})` },
    { label: 'Committed transactions lost', value: 'none: the switch waits until a marker committed after the last write is applied' },
    { label: 'Sequences', value: `set past the old side's values by ${String(u.sequenceGap)}, each checked` },
    {
      label: 'The way back',
      value: direction === 'cutover' ? 'upgrade-rollback, as long as the upgrade is not cleaned up' : 'upgrade-cutover again',
    },
  ];
}

/** The new side is current and its subscriptions apply now (a marker through each), before anything is paused: else nothing is changed. */
function preflightStep(z: Switch): ActionStep<SwitchState> {
  const { u, direction, from, to, fromEnd, toEnd, oldSub, token } = z;
  return {
    name: 'pre-flight',
    does: { kind: 'upgrade.preflight', upgrade: u.id, direction, from: memberArg(from), to: memberArg(to) },
    says: `${to.label} is current (every table copied, less than 16 MB behind ${from.label}) and its subscription's worker runs, before anything is paused`,
    timeoutMs: 60_000,
    run: async (x) => {
      // The fence closes the old side's door to every role but superusers: pgherd's must be one on both sides.
      for (const [end, t] of [
        [fromEnd, from],
        [toEnd, to],
      ] as const) {
        const su = await onDb(
          end,
          'postgres',
          async (c) => (await c.query<{ s: boolean }>('SELECT rolsuper AS s FROM pg_roles WHERE rolname = current_user')).rows[0]?.s,
        );
        if (!su)
          throw refuse(
            'not-applicable',
            `pgherd's role is not a superuser on ${t.label}: the switch closes a side's door to every other role, pgherd's with it; nothing was changed`,
          );
      }
      // A subscription made a moment ago may not have its worker yet (Postgres 15 starts one every
      // wal_retrieve_retry_interval at most): waited for here, where no client waits, not at the marker.
      // Then a marker through each database's subscription proves it applies now (a schema change on
      // one side stops it): all before anything is paused.
      for (const [k, d] of u.databases.entries()) {
        await waitSubscriptionWorker(z, x, k, d);
        const probe = await markerThrough(fromEnd, toEnd, d, `${token}-preflight`, 10_000, x.signal);
        if (probe === null)
          throw refuse(
            'topology',
            `${to.label}/${d} does not apply ${from.label}'s changes (a marker did not arrive in 10 s: a schema change on one side? see ${to.label}'s log); nothing was changed`,
          );
      }
      const s = await progress(fromEnd, toEnd, u.databases, u.id, oldSub);
      x.note({ stdout: `${String(s.ready)} of ${String(s.tables)} tables ready; ${String(s.behind)} bytes behind` });
      if (s.ready !== s.tables || s.behind >= 16 * 1024 * 1024)
        throw refuse(
          'topology',
          `${to.label} is not current (${String(s.ready)} of ${String(s.tables)} tables ready, ${String(s.behind)} bytes behind); nothing was changed`,
        );
    },
  };
}

/** Waits (40 s at most) until the subscription of database `d` (the `k`th) on the new side has a running worker. */
async function waitSubscriptionWorker({ to, toEnd, oldSub }: Switch, x: RunContext<SwitchState>, k: number, d: string): Promise<void> {
  await onDb(toEnd, d, async (c) => {
    const t0 = Date.now();
    for (;;) {
      const r = await c.query(`SELECT 1 FROM pg_stat_subscription WHERE subname = $1 AND relid IS NULL AND pid IS NOT NULL`, [oldSub(k)]);
      if (r.rowCount) return;
      if (Date.now() - t0 > 40_000)
        throw refuse('topology', `${to.label}/${d}: subscription ${oldSub(k)} has no running worker (see its log); nothing was changed`);
      if (x.signal.aborted) throw new Error('stopped waiting for the subscription worker');
      await new Promise((r) => setTimeout(r, 100));
    }
  });
}

/** The serving side made read-only (its writability owed back first), every transaction still open there ended. */
function fenceWritesStep({ u, fromHerd, from, to, fromEnd }: Switch): ActionStep<SwitchState> {
  return {
    name: `${from.label}: read-only`,
    does: { kind: 'upgrade.fence-writes', instance: memberArg(from) },
    says: `ALTER SYSTEM SET default_transaction_read_only = on on ${from.label}, reload; CONNECTION LIMIT 0 on its databases (superusers and the subscriptions still connect) and the sessions of every other role ended: no client commits there from now on (replication still applies)`,
    timeoutMs: 30_000,
    run: async (x) => {
      if (x.deps.targetId === undefined) throw new Error('a fence is owed back by its target: it runs only as part of an operation');
      // Owed before it is taken: should this worker die before the switch, another one's reconcile gives it back.
      x.state.fenceOwed = await oweWritable(x.deps.db, {
        targetId: x.deps.targetId,
        herdId: fromHerd.id,
        instanceId: from.id,
        upgradeId: u.id,
        says: `${from.label} writable again (default_transaction_read_only reset), unless the switch to ${to.label} went through`,
      });
      x.state.fenced = true;
      await setReadOnly(fromEnd, true);
      // A default any client may override (BEGIN READ WRITE): application clients are refused at the door
      // too, and their sessions ended, with every transaction begun before the reload (else it could
      // commit after the marker).
      const door = await closeDoor(x.deps.db, from.id, fromEnd);
      x.note({ stdout: `read-only; CONNECTION LIMIT 0 on ${door.databases.join(', ')}; ${String(door.ended)} session(s) ended` });
    },
  };
}

/** The fence's undo: should the switch stop before the names move, the old side takes writes again (and its owed row is settled). */
function unfenceUnlessSwitchedStep({ from, fromEnd }: Switch): ActionStep<SwitchState> {
  return {
    name: `${from.label}: writable again unless switched`,
    does: { kind: 'upgrade.unfence-unless-switched', instance: from.id },
    says: `should the switch stop before the names move: ${from.label} writable again`,
    timeoutMs: 30_000,
    givesBack: true,
    run: async (x) => {
      if (!x.state.fenced || x.state.switched) return;
      // Settled meanwhile by another worker's reconcile, or the herd another target's (this one frozen
      // past its lease): not this cleanup's.
      if (x.state.fenceOwed !== null && (await claimOwedForCleanup(x.deps.db, x.state.fenceOwed)) === 'not ours')
        return void x.note({
          stdout: 'nothing done: the fence was settled by another worker meanwhile, or the herd is held by another target',
        });
      await setReadOnly(fromEnd, false);
      await openDoor(x.deps.db, from.id, fromEnd);
      if (x.state.fenceOwed !== null)
        await recordOwed(x.deps.db, x.state.fenceOwed, {
          settledAt: new Date(),
          settledHow: 'by its cleanup: writable again, the switch did not happen',
        });
      x.note({ stdout: `${from.label} takes writes again` });
    },
  };
}

/** A marker written on the old side in each database and seen on the new one: every commit before it is applied there. */
function markerStep({ u, from, to, fromEnd, toEnd, token }: Switch): ActionStep<SwitchState> {
  return {
    name: `every commit of ${from.label} applied on ${to.label}`,
    does: { kind: 'upgrade.marker', from: from.id, to: to.id, databases: u.databases },
    says: `write a marker in ${MARKER} on ${from.label} in each database and wait until ${to.label} has it: every commit before it is applied`,
    timeoutMs: 60_000,
    run: async (x) => {
      const t0 = Date.now();
      for (const d of u.databases)
        if ((await markerThrough(fromEnd, toEnd, d, token, 50_000 - (Date.now() - t0), x.signal)) === null)
          throw new Error(`${to.label}/${d} did not apply the marker in time: the switch stops, ${from.label} takes writes again`);
      x.note({ stdout: `applied on ${to.label} in ${String(Date.now() - t0)} ms` });
    },
  };
}

/** Each sequence on the new side set to the old side's value plus the upgrade's gap, then checked. */
function sequencesStep({ u, from, to, fromEnd, toEnd }: Switch): ActionStep<SwitchState> {
  return {
    name: 'sequences',
    does: { kind: 'upgrade.sequences', from: from.id, to: to.id, gap: u.sequenceGap },
    says: `set each sequence on ${to.label} to ${from.label}'s value plus ${String(u.sequenceGap)}, then check each one`,
    timeoutMs: 120_000,
    run: async (x) => {
      const lines: string[] = [];
      for (const d of u.databases) {
        const seqs = await onDb(fromEnd, d, async (c) => (await c.query<{ s: string; v: string | null }>(SEQUENCES)).rows);
        if (!seqs.length) continue;
        await onDb(toEnd, d, async (c) => {
          await c.query(
            `SELECT setval(s::regclass, v::bigint + $2::bigint, true) FROM jsonb_to_recordset($1::jsonb) AS r(s text, v text) WHERE v IS NOT NULL`,
            [JSON.stringify(seqs), u.sequenceGap],
          );
          const now = await c.query<{ s: string; v: string | null }>(SEQUENCES);
          const at = new Map(now.rows.map((r) => [r.s, r.v]));
          const short = seqs.filter((q) => q.v !== null && BigInt(at.get(q.s) ?? '0') < BigInt(q.v) + BigInt(u.sequenceGap));
          if (short.length) throw new Error(`${d}: ${short.map((q) => q.s).join(', ')} not set past ${from.label}'s value on ${to.label}`);
        });
        lines.push(`${d}: ${String(seqs.length)} sequence(s) set and checked`);
      }
      x.note({ stdout: lines.join('\n') || 'no sequences' });
    },
  };
}

/** The old side subscribes to the new one (nothing copied), the new side's subscriptions dropped; then the switch recorded. */
function turnAroundStep(z: Switch): ActionStep<SwitchState> {
  const { u, from, to, oldSub, newSub, newPub } = z;
  return {
    name: 'turn the replication around',
    does: { kind: 'upgrade.reverse', upgrade: u.id, drop: oldSub(0), create: newSub(0), databases: u.databases.length },
    says: `on ${from.label}, in each database: a subscription (${newSub(0)}, ...) to ${to.label}'s ${newPub} (nothing copied: both hold the same rows), so that it stays current; on ${to.label}: ${oldSub(0)}, ... dropped`,
    timeoutMs: 120_000,
    run: async (x) => {
      await reverseSubscriptions(z, x);
      await recordSwitch(z, x);
      x.state.to = to;
      x.state.switched = true;
      x.state.promoted = true;
    },
  };
}

/** In each database: a subscription on the old side to the new side's publication, then the new side's own subscription dropped. */
async function reverseSubscriptions({ u, from, fromEnd, toEnd, oldSub, newSub, newPub }: Switch, x: RunContext<SwitchState>) {
  // One new password for all of them (each replaces the one before): a subscription an earlier attempt
  // left is made again with it. Nothing is lost: the new side takes no writes before the switch.
  for (const [k, d] of u.databases.entries())
    await onDb(fromEnd, d, async (c) => {
      if ((await c.query(`SELECT 1 FROM pg_subscription WHERE subname = $1`, [newSub(k)])).rowCount)
        await c.query(`DROP SUBSCRIPTION ${newSub(k)}`);
    });
  const login = await newLogin(toEnd, u.id);
  for (const [k, d] of u.databases.entries()) {
    await subscribe(x.deps, x, {
      sub: { ...fromEnd, ssh: from.ssh, dataDirectory: from.dataDirectory },
      pub: toEnd,
      login,
      database: d,
      name: newSub(k),
      publication: newPub,
      upgradeId: u.id,
      copyData: false,
    });
    await onDb(toEnd, d, async (c) => {
      if ((await c.query(`SELECT 1 FROM pg_subscription WHERE subname = $1`, [oldSub(k)])).rowCount)
        await c.query(`DROP SUBSCRIPTION ${oldSub(k)}`);
    });
  }
}

/** The switch in the inventory: the upgrade's status, the write names and poolers the new side's, the fence settled, the new side's writability owed. */
async function recordSwitch({ u, direction, fromHerd, toHerd, from, to }: Switch, x: RunContext<SwitchState>) {
  // The switch, in one transaction: where the upgrade stands, and the names and poolers rows now the
  // serving herd's (a worker's reconcile then resumes a PgBouncer onto it, and leaves the old side fenced).
  await x.deps.db.transaction(async (tx) => {
    await tx
      .update(majorUpgrades)
      .set(direction === 'cutover' ? { status: 'cut-over', cutOverAt: new Date() } : { status: 'ready', rolledBackAt: new Date() })
      .where(eq(majorUpgrades.id, u.id));
    await tx
      .update(dnsRecords)
      .set({ herdId: toHerd.id })
      .where(and(eq(dnsRecords.herdId, fromHerd.id), eq(dnsRecords.match, 'role')));
    await tx.update(poolers).set({ herdId: toHerd.id }).where(eq(poolers.herdId, fromHerd.id));
    if (x.state.fenceOwed !== null)
      await tx
        .update(owedCleanups)
        .set({ settledAt: new Date(), settledHow: `the switch went through: ${from.label} stays read-only` })
        .where(eq(owedCleanups.id, x.state.fenceOwed));
    // From now on the new side owes its clients their writes: should the next step not make it
    // writable (it fails, the worker dies), a worker's reconcile does.
    if (x.deps.targetId !== undefined) {
      x.state.toOwed = await oweWritable(tx, {
        targetId: x.deps.targetId,
        herdId: toHerd.id,
        instanceId: to.id,
        upgradeId: u.id,
        says: `${to.label} writable (default_transaction_read_only reset): it serves since the switch`,
      });
    }
  });
}

/** The new side takes writes, and what it owed is settled by the flow. */
function writableStep({ to, toEnd }: Switch): ActionStep<SwitchState> {
  return {
    name: `${to.label}: writable`,
    does: { kind: 'upgrade.unfence', instance: memberArg(to) },
    says: `${to.label} takes writes (default_transaction_read_only reset, the CONNECTION LIMIT its databases had given back)`,
    timeoutMs: 30_000,
    run: async (x) => {
      await setReadOnly(toEnd, false);
      await openDoor(x.deps.db, to.id, toEnd);
      if (x.state.toOwed !== null)
        await x.deps.db
          .update(owedCleanups)
          .set({ settledAt: new Date(), settledHow: 'by the flow: writable' })
          .where(eq(owedCleanups.id, x.state.toOwed));
    },
  };
}

/** The switch in the audit log, and the operation's outcome: which side takes the writes now. */
function recordStep({ u, direction, fromHerd, toHerd, to }: Switch): ActionStep<SwitchState> {
  return {
    name: 'record where the writes go',
    does: { kind: 'upgrade.record', upgrade: u.id, direction },
    says: `the names and PgBouncer are ${toHerd.label}'s now; the upgrade is ${direction === 'cutover' ? 'cut over (blue stays current: roll back, or clean up)' : 'back on blue (green stays current: cut over again, or clean up)'}`,
    timeoutMs: 30_000,
    settles: true,
    run: async (x) => {
      await writeAudit(x.deps.db, {
        user: x.deps.operation?.requestedBy ?? { id: null, username: 'pgherd' },
        action: direction === 'cutover' ? 'upgrade.cutover' : 'upgrade.rollback',
        objectType: 'herds',
        objectId: String(toHerd.id),
        objectLabel: toHerd.label,
        environmentId: toHerd.environmentId,
        changes: { serving: [fromHerd.label, toHerd.label] },
      });
      x.deps.outcome?.(`${toHerd.label} (${to.label}) takes the writes; ${fromHerd.label} is read-only and stays current`);
    },
  };
}

export function switchAction(direction: 'cutover' | 'rollback') {
  return defineHerdAction({
    name: direction === 'cutover' ? 'upgrade-cutover' : 'upgrade-rollback',
    control: asks('upgrade-major'),
    label: direction === 'cutover' ? 'Cut over to the upgraded herd' : 'Roll back to the herd before the upgrade',
    permission: 'admin',
    dangerous: true,
    // Moving the clients to the other side (or back) is a person's call on the day, after looking at it.
    schedulable: false,
    runsAsConfirmed: true,
    params: {
      schema: switchParams,
      fields: [
        {
          name: 'pauseBudgetSeconds',
          label: 'Pause at most (s)',
          kind: 'text',
          emptyLabel: String(DEFAULT_PAUSE_BUDGET_S),
          help: 'PgBouncer resumes by itself after this.',
        },
        ...(direction === 'cutover'
          ? [
              {
                name: 'fewerReplicas',
                label: 'With fewer replicas',
                kind: 'flag' as const,
                emptyLabel: 'refused while green has fewer replicas than blue',
                help: 'Cut over although green has fewer running replicas than blue: it serves with less redundancy until you add them.',
              },
            ]
          : []),
      ],
    },
    prepare: (herdList, _p, db) => prepareSwitch(herdList, db),
    plan: (h, { params, prepared }): ActionPlan<SwitchState> | Refusal => {
      const u = prepared.open.get(h.id);
      if (!u) return refuse('not-applicable', `${h.label} has no major upgrade under way (upgrade-major makes one)`);
      const sides = prepared.sides.get(h.id);
      if (!sides || typeof sides === 'string') return refuse('gone', sides ?? 'not read');
      const want = direction === 'cutover' ? 'ready' : 'cut-over';
      if (u.status !== want)
        return refuse(
          'not-applicable',
          direction === 'cutover'
            ? `the upgrade is ${u.status}: a cut-over takes a ready one${u.status === 'cut-over' ? ' (it is cut over already)' : ''}`
            : `the upgrade is ${u.status}: only a cut-over is rolled back`,
        );
      const lost = prepared.greenLost.get(h.id);
      if (direction === 'rollback' && lost !== undefined)
        return refuse(
          'not-applicable',
          `green is lost (${lost}): a roll back needs it; Clean up abandons it and points the write names and PgBouncer back at blue`,
        );
      const [from, to] = direction === 'cutover' ? [sides.blue, sides.green] : [sides.green, sides.blue];
      const shape = direction === 'cutover' && !params.fewerReplicas ? shapeRefusal(sides.blue, sides.green) : null;
      if (shape) return refuse('topology', shape);
      const plan = switchPlan(h, u, from, to, direction, params.pauseBudgetSeconds ?? DEFAULT_PAUSE_BUDGET_S);
      if (plan instanceof Refusal) return plan;
      return {
        ...plan,
        facts: [
          ...(plan.facts ?? []),
          { label: `Replicas of ${to.label}`, value: replicaShape(to).words },
          { label: `Replicas of ${from.label}`, value: replicaShape(from).words },
        ],
      };
    },
  });
}
