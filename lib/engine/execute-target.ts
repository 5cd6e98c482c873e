// Execute: one operation target, under its herd's lease, re-checking the plan's facts first.
import { AwsNotConfiguredError } from '@/lib/adapters/aws/config';
import { and, eq, max, sql } from 'drizzle-orm';
import { isDatabaseUnavailable, prepared, ridingOverFailover, withRideBound, type Db, type RideBound } from '@/db/client';
import { coalescer, type Coalescer } from '@/lib/engine/coalesce';
import { operationSteps, operationTargets } from '@/db/schema';
import type { SshPool } from '@/lib/adapters/ssh/ssh-client';
import { dbRecorder, storable, type DbRecorder, type StepEnd } from '@/lib/engine/db-recorder';
import { sqlFile } from '@/lib/adapters/sql/sql-file';
import {
  checkDriver,
  herdServers,
  isHerdAction,
  pendingRefusal,
  roleNeeded,
  unpinnedRefusal,
  type ActionDeps,
  type ActionParams,
  type AnyAction,
  type ActionLookup,
} from '@/lib/engine/define-action';
import { loadHerdRefs } from '@/lib/fleet/herd-ref';
import type { Step, StepRecord } from '@/lib/engine/pipeline';
import { instanceWithHerd, loadInstanceWithHerd } from '@/lib/fleet/instance-ref';
import {
  claimTarget,
  gate,
  heartbeat,
  LeaseLostError,
  LeaseUnconfirmedError,
  leaseTtlMs,
  releaseLease,
  type ClaimedTarget,
} from '@/lib/engine/lease';
import { errorText } from '@/lib/engine/errors';
import { owedBy } from './owed';
import { lastSeen } from '@/lib/fleet/last-seen';
import { PreemptedError, runPipeline } from '@/lib/engine/pipeline';
import { askPreemption, preemptedError, preemptibleHere } from '@/lib/engine/preempt';
import { cleanupsText, targetEnd } from '@/lib/engine/target-end';
import { ParamsError, parseParams } from '@/lib/engine/plan';
import { Refusal, refuse, type RefusalCode } from '@/lib/fleet/refusal';
import { withLogContext, type LogContext } from '@/lib/adapters/log/log';
import { metrics, stepLabel } from '@/lib/adapters/metrics/registry';
import { answeringDenial, demand, loadAccess, noAccess } from '@/lib/engine/access';

/** `preempting`: an urgent target waits for the herd's holder, asked to stop (its job comes back soon, not later each time). */
export type ExecuteOutcome = 'done' | 'wait' | 'preempting' | 'skipped';

// Ends targets of one operation (one, or a worker's several that ended together): their last steps'
// ends (the step arrays, $6 onwards), their ends, their leases back. Only a running target is ended
// here: one that reconcile has already marked interrupted (its lease expired while this worker was cut
// off) keeps what reconcile recorded; its last step's end is written whatever the target's state.
// Targets are found by their ids alone, each row's values by its place in the arrays: "status =
// 'running'" as such would let the planner read the index of running targets (walking every running
// target for each one that ends, on statistics taken before they ran, as submit takes them), and a
// join with the arrays lets it hash every target to find twenty (on a table of a few thousand it
// does). Rows of one operation only: its settling trigger locks the operation's row, and a statement
// over two operations could lock them in one order while another locks them in the other.
export const FINISH = {
  name: 'pgherd_finish_targets_v2',
  text: sqlFile('lib/engine/finish-targets.sql'),
};

interface Ending {
  operationId: number;
  targetId: number;
  status: 'succeeded' | 'failed' | 'cancelled' | 'interrupted' | 'preempted';
  error: string | null;
  outcome: string | null;
  refusal: RefusalCode | null;
  step: StepEnd | null;
}

async function finishMany(db: Db, items: Ending[]): Promise<null[]> {
  const steps = items.flatMap((e) => (e.step ? [[e.targetId, ...e.step] as const] : []));
  const col = (i: number) => steps.map((s) => s[i]);
  await prepared(db, FINISH.name, FINISH.text, [
    items.map((e) => e.targetId),
    items.map((e) => e.status),
    items.map((e) => e.error),
    items.map((e) => e.outcome),
    items.map((e) => e.refusal),
    ...Array.from({ length: 10 }, (_, i) => col(i)),
  ]);
  return items.map(() => null);
}

const finishers = new WeakMap<Db, Coalescer<Ending, null>>();

/**
 * Records how a target ended (and its last step's end) and gives back its herd's lease, in one
 * statement, together with the other targets of its operation this process ends at the same moment.
 * The database settles the operation when this was its last open target (migration 0004's trigger).
 */
async function finishTarget(
  db: Db,
  { operationId, targetId, status, error, outcome, refusal }: Omit<Ending, 'step'>,
  recorder: DbRecorder,
) {
  let finish = finishers.get(db);
  if (!finish) {
    finish = coalescer((items: Ending[]) => finishMany(db, items), { key: (e) => e.operationId, whole: isDatabaseUnavailable });
    finishers.set(db, finish);
  }
  const step = recorder.held();
  await finish({ operationId, targetId, status, error: storable(error), outcome: storable(outcome), refusal, step });
  if (step) recorder.written();
}

/**
 * Runs one target. Bookkeeping is two statements for a one-step instance target (the claim, which
 * reads the herd too, and the finish, which writes the step's record), each shared with the other
 * targets this process claims or ends at the same moment; one more for each further step's record
 * (and for a herd target's inventory), plus a write when a step runs long enough to be seen running.
 */
export async function executeTarget(run: TargetRunner, targetId: number): Promise<ExecuteOutcome> {
  // Every log line written while the target runs (an SSH connection's, a heartbeat's) says which target it is.
  return withLogContext({ targetId }, (ctx) => executeIn(ctx, run, targetId));
}

/** What runs a target: the worker's connections, its actions, its name as a lease holder, its log. */
export interface TargetRunner {
  db: Db;
  ssh: SshPool;
  actionNamed: ActionLookup;
  /** The lease holder's name (the worker's). */
  holder: string;
  log?: (e: string, f: object) => void;
  /** Run once the target holds its herd, before its first step (a test holds it there). */
  beforeSteps?: () => Promise<void>;
}

async function executeIn(ctx: LogContext, runner: TargetRunner, targetId: number): Promise<ExecuteOutcome> {
  const { db, ssh, actionNamed, holder, beforeSteps } = runner;
  const log = runner.log ?? (() => {});
  const claimedAt = Date.now();
  const target = await claimTarget(db, targetId, holder);
  // Only a queued target is run: a running one is someone's (or was, and reconcile will say so).
  if (!target || target.status !== 'queued') return 'skipped';
  // Held back (a later wave, a paused operation): its job ends here; the wave's start or the resume
  // enqueues it again.
  if ((target.held || target.paused) && !target.cancel_requested) return 'skipped';
  const operationId = target.operation_id;
  Object.assign(ctx, { operationId, action: target.action });
  const m = metrics();
  // Set by end(); read in `finally` (an object: a flag set in a closure is not something the compiler follows).
  const run = { finished: false };
  let outcome: string | null = null;
  const recorder = dbRecorder(db, targetId);
  // When the lease was last known to be this worker's (the moment its last renewal was sent: the
  // database made it last the TTL from some moment after). Until half a TTL after it, nobody else may
  // take the herd, so a database that does not answer is waited for rather than given up on.
  const lease = { confirmedAt: claimedAt };
  const whileHeld = async <T>(attempt: () => Promise<T>, unavailable: (r: T) => unknown): Promise<T> => {
    for (let wait = 100; ; wait = Math.min(2 * wait, 1000)) {
      const r = await attempt();
      const why = unavailable(r);
      if (!isDatabaseUnavailable(why) || Date.now() + wait > lease.confirmedAt + leaseTtlMs() / 2) return r;
      log('db.unavailable.retry', { operationId, targetId, error: errorText(why) });
      await new Promise((res) => setTimeout(res, wait));
    }
  };
  // Ends the target (and frees its lease, if it has one) in one statement: if pgherd's database is
  // away for a moment, once it is back (the target's steps and how it ended are only in memory).
  const end = async (
    status: 'succeeded' | 'failed' | 'cancelled' | 'interrupted' | 'preempted',
    error: string | null,
    refusal: RefusalCode | null = null,
  ) => {
    const failure = await whileHeld(
      () =>
        finishTarget(db, { operationId, targetId, status, error, outcome, refusal }, recorder).then(
          () => null,
          (err: unknown) => ({ err }),
        ),
      (r) => r?.err,
    );
    if (failure) throw failure.err;
    run.finished = true;
    m.targets.inc({ action: target.action, outcome: status });
    log('target.end', { operationId, targetId, status });
    return 'done' as const;
  };
  if (target.cancel_requested) return end('cancelled', 'cancelled before it started');
  if (target.herd_id === null) return end('failed', 'the herd was deleted from the inventory');
  if (target.attempts === null && target.generation !== null) {
    // The lease was granted but the target did not start (held by a pause in that very moment): give it back.
    await releaseLease(db, target.herd_id, targetId);
    return 'skipped';
  }
  if (target.attempts === null || target.generation === null) {
    m.leaseWaits.inc({ action: target.action });
    // An urgent target asks whoever holds the herd to stop, and comes back soon.
    if (target.urgent && (await askPreemption(db, target.herd_id, targetId))) {
      log('target.preempting', { operationId: target.operation_id, targetId, herdId: target.herd_id });
      return 'preempting';
    }
    return 'wait';
  }
  const { herd_id: herdId, attempts, generation } = target;
  const action = actionNamed(target.action);
  if (!action) return end('failed', `unknown action ${target.action}`);

  // The lease found gone by a heartbeat stops the running step at once: the herd may be another's now.
  // So does a lease that could not be renewed for most of its TTL (pgherd's database away from this
  // worker): it is given up before it expires, so the step is stopped, and its command killed on the
  // host, before any other worker may take the herd (a claim, and reconcile, wait for the expiry).
  const lost = new AbortController();
  // Asked to stop for an urgent target (lib/engine/preempt.ts): by a NOTIFY, a heartbeat or a step's gate.
  const preempt = new AbortController();
  const stopFor = (by: number) => {
    if (preempt.signal.aborted) return;
    log('target.preempted', { operationId, targetId, herdId, by });
    preempt.abort(new PreemptedError(by));
  };
  // An urgent target is never preempted (whatever a NOTIFY or a row says).
  const unregister = target.urgent ? () => {} : preemptibleHere(targetId, stopFor);
  // Until when no other worker may hold the herd yet, with half a second to spare: the lease's last
  // confirmation plus its TTL.
  const heldUntil = () => lease.confirmedAt + leaseTtlMs() - 500;
  const giveUpAfterMs = leaseTtlMs() * 0.75;
  // A local clock, no round trip: checked often, so that the give-up is on time.
  const watchdog = setInterval(
    () => {
      if (lost.signal.aborted || Date.now() - lease.confirmedAt <= giveUpAfterMs) return;
      log('lease.unconfirmed', { targetId, herdId, generation, confirmedMsAgo: Date.now() - lease.confirmedAt });
      lost.abort(
        new LeaseLostError(`it could not be renewed for ${Math.round(giveUpAfterMs)} ms: pgherd's database did not answer`, false),
      );
    },
    Math.max(50, leaseTtlMs() / 20),
  );
  const beat = setInterval(
    () => {
      const sent = Date.now();
      heartbeat(db, herdId, targetId, generation)
        .then((held) => {
          if (held) {
            lease.confirmedAt = Math.max(lease.confirmedAt, sent);
            if (held.preemptedBy !== null && !target.urgent) stopFor(held.preemptedBy);
          } else {
            log('lease.lost', { targetId, herdId, generation });
            lost.abort(new LeaseLostError('it expired or was taken over while a step ran'));
          }
        })
        .catch((err: unknown) => log('lease.heartbeat.error', { targetId, error: errorText(err) }));
    },
    Math.max(200, leaseTtlMs() / 4),
  );
  try {
    log('target.start', { operationId, targetId, action: target.action });
    await beforeSteps?.();
    // The steps' own statements (their cleanups' too) wait out a failover of pgherd's database while
    // the lease is surely still this worker's: until shortly before it could expire, and not once it
    // was found gone. None is sent after that, so none lands after another worker took the herd.
    const ride: RideBound = {
      until: heldUntil,
      stopped: () => lost.signal.aborted && lost.signal.reason instanceof LeaseLostError && lost.signal.reason.mayBeTaken,
    };
    const deps: ActionDeps = {
      db: ridingOverFailover(db, giveUpAfterMs),
      ssh,
      operation: { id: operationId, requestedBy: { id: target.requested_by, username: target.requested_by_name } },
      targetId,
      outcome: (text) => {
        outcome = text;
      },
    };
    // Whom the steps name (their names become a metric's label with these taken out).
    const names = { instances: [] as string[], poolers: [] as string[] };
    const steps = await withRideBound(ride, () => stepsNow(db, action, target, herdId, deps, names));
    if (steps instanceof Refusal) return await end('failed', `refused at execution: ${steps.reason}`, steps.code);
    // A retry appends its steps after those of earlier attempts.
    const firstSeq =
      attempts > 1
        ? ((
            await db
              .select({ last: max(operationSteps.seq) })
              .from(operationSteps)
              .where(eq(operationSteps.targetId, targetId))
          )[0]?.last ?? 0) + 1
        : 1;
    // Before the first step the claim (made just now) vouches for the lease, unless getting here took
    // half its TTL (the database stalled, say): then it is confirmed like before any other step. A
    // confirmation the database does not answer is asked again while the lease is surely still held.
    const grant = { herdId, targetId, generation, operationId };
    const confirm = async () => {
      const sent = Date.now();
      const stop = await whileHeld(
        () => gate(db, grant),
        (r) => (r instanceof LeaseUnconfirmedError ? r.reason : null),
      );
      if (stop === null) lease.confirmedAt = Math.max(lease.confirmedAt, sent);
      return stop;
    };
    const stepGate = (i: number) => (i === 0 && Date.now() - claimedAt < leaseTtlMs() / 2 ? Promise.resolve(null) : confirm());
    // Each step: timed into pgherd_step_duration_seconds, logged at its end (its start is its row), and run in a
    // log context that names it.
    const started = new Map<number, number>();
    const timed = {
      start: (seq: number, name: string) => {
        started.set(seq, performance.now());
        return recorder.start(seq, name);
      },
      finish: (seq: number, rec: StepRecord) => {
        const seconds = (performance.now() - (started.get(seq) ?? performance.now())) / 1000;
        m.stepSeconds.observe({ action: target.action, step: stepLabel(rec.name, names), status: rec.status }, seconds);
        log('step.end', { status: rec.status, ms: Math.round(seconds * 1000) });
        return recorder.finish(seq, rec);
      },
    };
    const res = await withRideBound(ride, () =>
      runPipeline(steps, timed, {
        gate: stepGate,
        firstSeq,
        stop: lost.signal,
        preempt: preempt.signal,
        leaveCleanups: (e) => e instanceof LeaseLostError,
        // Given up unconfirmed, the lease is still this worker's until it expires: an undo of the target's
        // own change may run until shortly before then.
        heldForMs: (e) => (e instanceof LeaseLostError && !e.mayBeTaken ? heldUntil() - Date.now() : 0),
        around: (seq, stepName, fn) => withLogContext({ step: seq, stepName }, fn),
      }),
    );
    if (res.error instanceof LeaseLostError) {
      log('target.lease_lost', { operationId, targetId, herdId, cleanupsLeft: res.cleanupsLeft });
      outcome = (await observedNow(db, { instanceId: target.instance_id, herdId: target.herd_id }, new Date(claimedAt))) ?? outcome;
      const left = res.cleanupsLeft?.length
        ? `; not run, as the herd may be another's now: ${res.cleanupsLeft.join(', ')} (do them by hand, or run the action again: its plan says what it can finish)`
        : '';
      const gave = res.givenBack ?? [];
      const given = gave.filter((g) => !g.error).map((g) => g.name);
      const notGiven = gave.filter((g) => g.error);
      const back =
        (given.length
          ? `; run all the same, as they only give back what it took or undo its own change while the herd could be no one else's: ${given.join(', ')}`
          : '') +
        (notGiven.length
          ? `; failed, owed until the next worker's reconcile does them: ${notGiven.map((g) => `${g.name} (${errorText(g.error)})`).join(', ')}`
          : '');
      const failed = res.cleanupErrors.length ? `; and ${cleanupsText(res.cleanupErrors)}` : '';
      if (gave.length) log('target.given_back', { operationId, targetId, given, failed: notGiven.map((g) => g.name) });
      return await end('interrupted', `${res.error.message}${left}${back}${failed}`);
    }
    if (res.error instanceof PreemptedError) {
      // Said in full: which operation, and that this one can be planned again.
      const why = await preemptedError(db, res.error.by);
      res.error = why;
      log('target.preempted.end', { operationId, targetId, by: why.by, cleanupsFailed: res.cleanupErrors.length });
    }
    const ending = targetEnd(res);
    if (res.cleanupErrors.length)
      log('target.cleanup_failed', { operationId, targetId, cleanups: res.cleanupErrors.map((e) => e.message) });
    return await end(ending.status, ending.error, ending.refusal);
  } finally {
    unregister();
    clearInterval(beat);
    clearInterval(watchdog);
    if (!run.finished) {
      // Ending the target failed (pgherd's database went away, say): its last step's end is still worth a try.
      await recorder.flush().catch(() => {});
      await releaseLease(db, herdId, targetId);
    }
  }
}

/**
 * Whoever asked for the operation must still hold the action's role, now, in the environment of
 * everything the steps will touch as the inventory is now (the target may have moved while it
 * queued, the requester may have lost a binding): the herd's, each member's server's, each
 * PgBouncer's server's. pgherd's own operations have no user to check; a user who is gone has no roles.
 */
async function authorizeNow(
  db: Db,
  action: AnyAction,
  target: ClaimedTarget,
  environmentIds: number[],
  params: ActionParams,
): Promise<Refusal | null> {
  if (target.requested_by_system) return null;
  const access = target.requested_by === null ? noAccess(target.requested_by_name) : await loadAccess(db, target.requested_by);
  // The worker is where this refusal is answered (a refused target): recorded here, with no request to name an address.
  return answeringDenial<Refusal | null>(
    db,
    { id: target.requested_by, username: target.requested_by_name },
    async () => {
      await demand(db, access, roleNeeded(action, params), `${action.label} (requested by ${target.requested_by_name})`, [
        ...new Set(environmentIds),
      ]);
      return null;
    },
    (err) => refuse('access', err.message),
  );
}

/**
 * The target's steps, from a plan made again against the inventory as it is now (it may have moved
 * while the target queued); or the Refusal that says why it may not run. Anything else thrown is a
 * failure, not a refusal.
 */
async function stepsNow(
  db: Db,
  action: AnyAction,
  target: ClaimedTarget,
  herdId: number,
  deps: ActionDeps,
  names: { instances: string[]; poolers: string[] },
): Promise<Step[] | Refusal> {
  // Confirmed with the plan, and parsed again: a stored operation cannot carry what the form refuses.
  let params: ActionParams;
  try {
    params = parseParams(action, target.action_params ?? {});
  } catch (err) {
    if (err instanceof ParamsError) return refuse('params', err.message);
    throw err;
  }
  const guarded = (steps: () => Step[]): Step[] | Refusal => {
    try {
      return steps();
    } catch (err) {
      if (err instanceof Refusal) return err;
      throw err;
    }
  };
  if (isHerdAction(action)) {
    const [herd] = await loadHerdRefs(db, [herdId]);
    if (!herd) return refuse('gone', 'the herd was deleted from the inventory');
    names.instances.push(...herd.members.map((x) => x.label));
    names.poolers.push(...herd.poolers.map((p) => p.label));
    const denied = await authorizeNow(
      db,
      action,
      target,
      [herd.environmentId, ...herd.members.map((m) => m.serverEnvironmentId), ...herd.poolers.map((p) => p.serverEnvironmentId)],
      params,
    );
    if (denied) return denied;
    const pending = pendingRefusal(herdServers(herd));
    if (pending) return pending;
    const unpinned = unpinnedRefusal(action, herdServers(herd));
    if (unpinned) return unpinned;
    const prepared = await preparedFor(db, action, [herd], params);
    if (prepared instanceof Refusal) return prepared;
    return guarded(() => {
      for (const m of herd.members) checkDriver(action, m.controlDriver);
      return action.steps(herd, deps, { params, prepared }, confirmedOf(action, target));
    });
  }
  // Read by the claim; read again only when the claim found nothing (the instance is gone, as far as it saw).
  const loaded =
    target.instance_id === null
      ? null
      : ((target.members && instanceWithHerd(target.instance_id, target.members)) ?? (await loadInstanceWithHerd(db, target.instance_id)));
  if (!loaded) return refuse('gone', 'the instance was deleted from the inventory');
  names.instances.push(loaded.ref.label, ...loaded.members.map((x) => x.label));
  const denied = await authorizeNow(db, action, target, [loaded.ref.environmentId, loaded.ref.serverEnvironmentId], params);
  if (denied) return denied;
  const pending = pendingRefusal([{ name: loaded.ref.hostname, approval: loaded.ref.serverApproval }]);
  if (pending) return pending;
  const unpinned = unpinnedRefusal(action, [{ name: loaded.ref.hostname, ssh: loaded.ref.ssh, shell: !loaded.ref.rds }]);
  if (unpinned) return unpinned;
  const prepared = await preparedFor(db, action, [loaded.ref], params);
  if (prepared instanceof Refusal) return prepared;
  return guarded(() => {
    checkDriver(action, loaded.ref.controlDriver);
    return action.steps(loaded.ref, deps, { members: loaded.members, params, prepared }, confirmedOf(action, target));
  });
}

/**
 * The steps a target must still do as confirmed: an action that runs only what was confirmed, on
 * its first attempt. A later attempt continues a run that already changed things, and is planned afresh.
 */
const confirmedOf = (action: AnyAction, target: ClaimedTarget) =>
  action.runsAsConfirmed && target.attempts === 1 ? target.confirmed_steps : null;

/**
 * What the action's prepare reads for this target when it starts (EC2's view now, not the page's):
 * a Refusal refuses it; AWS not configured here refuses it saying so; anything else fails it.
 */
async function preparedFor<T>(
  db: Db,
  action: { prepare?: (targets: T[], params: ActionParams, db: Db) => Promise<unknown> },
  targets: T[],
  params: ActionParams,
) {
  if (!action.prepare) return undefined;
  try {
    return await action.prepare(targets, params, db);
  } catch (err) {
    if (err instanceof Refusal) return err;
    if (err instanceof AwsNotConfiguredError) return refuse('cloud', err.message);
    throw err;
  }
}

/**
 * What an interrupted target looks like now, or why that could not be seen: the operator reads this
 * before retrying, and an observation that failed must not read as one never made.
 */
async function observedNow(db: Db, target: { instanceId: number | null; herdId: number | null }, since: Date): Promise<string | null> {
  return lastSeen(db, target, since).catch((err: unknown) => `not observed: ${errorText(err)}`);
}

/**
 * At worker start and periodically: targets marked running whose lease is gone or expired were
 * running in a worker that died (or was cut off for longer than the lease): they become interrupted,
 * with what their instance (or herd) looks like now (rerunning a half-done step blindly is not safe;
 * the operation page offers a retry, which plans again). Returns the queued targets, for the caller
 * to enqueue.
 */
export async function reconcile(db: Db): Promise<{ interrupted: number[]; queued: number[]; stale: number[] }> {
  const dead = await db.execute(sql`
    SELECT t.id, t.operation_id, t.instance_id, t.herd_id, t.updated_at FROM operation_targets t
    LEFT JOIN herd_leases l ON l.target_id = t.id AND l.expires_at > now()
    WHERE t.status = 'running' AND l.herd_id IS NULL`);
  const interrupted: number[] = [];
  for (const row of dead.rows as {
    id: number;
    operation_id: number;
    instance_id: number | null;
    herd_id: number | null;
    updated_at: string | Date;
  }[]) {
    const seen = await observedNow(db, { instanceId: row.instance_id, herdId: row.herd_id }, new Date(row.updated_at));
    const owed = await owedBy(db, row.id);
    const owedText = owed.length
      ? `; what it took from clients is owed back, and the next reconcile gives it back once no one holds the herd: ${owed.join('; ')}`
      : '';
    // One transaction: whoever sees the target interrupted (and its operation settled) sees its herd
    // free and its step closed too, never the operation ended with the herd still leased.
    const done = await db.transaction(async (tx) => {
      const marked = await tx
        .update(operationTargets)
        .set({
          status: 'interrupted',
          error: `the worker running it stopped or lost the herd's lease; check what was last observed, then retry it from the operation page${owedText}`,
          outcome: seen,
        })
        .where(and(eq(operationTargets.id, row.id), eq(operationTargets.status, 'running')))
        .returning({ id: operationTargets.id });
      if (!marked.length) return false;
      await tx.execute(sql`DELETE FROM herd_leases WHERE target_id = ${row.id}`);
      await tx.execute(
        sql`UPDATE operation_steps SET status = 'failed', finished_at = now(), stderr_tail = stderr_tail || 'interrupted' WHERE target_id = ${row.id} AND status = 'running'`,
      );
      return true;
    });
    if (!done) continue;
    interrupted.push(row.id);
  }
  const rows = await db
    .select({ id: operationTargets.id, stale: sql<boolean>`${operationTargets.updatedAt} < now() - interval '10 seconds'` })
    .from(operationTargets)
    .where(and(eq(operationTargets.status, 'queued'), eq(operationTargets.held, false)));
  // Held targets wait for their wave (or their operation's resume), which enqueues them. Queued for a while: worth asking Redis whether its job can still run (see requeueTargets).
  return { interrupted, queued: rows.map((r) => r.id), stale: rows.filter((r) => r.stale).map((r) => r.id) };
}
