// The rules' clock: BullMQ job schedulers, one per cron expression of each enabled rule, rebuilt from
// the rules table (the truth) when a worker starts, when a rule changes (NOTIFY) and now and then; a
// one-time rule is a delayed job. A scheduler's job fires the rule once per due time however many
// workers run (BullMQ hands each job to one worker; lib/features/rules/fire.ts records each due time
// once besides). Run now is a job naming the run a person asked for.
import { Queue, Worker, type Job } from 'bullmq';
import type IORedis from 'ioredis';
import { and, eq, lt, sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { operations, ruleRuns, rules } from '@/db/schema';
import { errorText } from '@/lib/engine/errors';
import { catchUp, decide, fireDue, fireGroup, fireRequested } from './fire';
import { staleDecidingMs, type FireDeps } from './rule-runs';
import { enqueueRun, groupSchedulerId, RULE_QUEUE, runJobId, type RuleJob } from './rule-queue';
import { cronProblem, knownTimeZone, splitGroup } from './cron';
import { runEnded } from './webhooks';
import { scheduleOf } from './rules';
import { setting } from '@/lib/settings/settings';

const onceJobId = (id: number, version: number) => `rule-${id}-v${version}-at`;
/**
 * Makes Redis's schedulers what the rules table says: one per fire group of the enabled rules (however
 * many rules share it; added when missing or different, never touched when the same, so a fire already
 * due is not moved), none for anything else; a one-time rule still ahead gets its delayed job.
 */
export async function reconcileSchedulers(
  db: Db,
  queue: Queue<RuleJob>,
  now = new Date(),
  log: (event: string, fields: object) => void = () => {},
): Promise<{ added: number; removed: number }> {
  const groups = await db.execute<{ g: string }>(sql`SELECT DISTINCT unnest(fire_groups) AS g FROM rules WHERE enabled`);
  const want = new Map<string, { pattern: string; tz: string; group: string }>();
  for (const { g } of groups.rows) {
    const { tz, pattern } = splitGroup(g);
    // A stored schedule that no longer reads (a time zone this runtime dropped) fires never; the others go on.
    const why = knownTimeZone(tz) ? cronProblem(pattern, tz) : `unknown time zone ${tz}`;
    if (why) log('rules.group.unreadable', { group: g, problem: why });
    else want.set(groupSchedulerId(g), { pattern, tz, group: g });
  }
  let added = 0;
  const once = await db
    .select({ id: rules.id, version: rules.version, schedule: rules.schedule })
    .from(rules)
    .where(and(eq(rules.enabled, true), sql`${rules.schedule} ? 'at'`));
  for (const r of once) {
    const s = scheduleOf(r);
    if (!s || !('at' in s)) continue;
    const at = new Date(s.at).getTime();
    if (at <= now.getTime()) continue;
    const jobId = onceJobId(r.id, r.version);
    if (!(await queue.getJob(jobId))) {
      await queue.add('fire', { ruleId: r.id, version: r.version, dueAt: at }, { jobId, delay: at - now.getTime() });
      added++;
    }
  }
  const have = await queue.getJobSchedulers(0, -1);
  let removed = 0;
  for (const h of have) {
    const w = want.get(h.key);
    if (w && w.pattern === h.pattern && w.tz === h.tz) {
      want.delete(h.key);
      continue;
    }
    // Any other of ours: a group no rule has now, or a rule's own scheduler from before fire groups.
    if (h.key.startsWith('group:') || h.key.startsWith('rule:')) {
      await queue.removeJobScheduler(h.key);
      removed++;
    }
  }
  for (const [id, w] of want) {
    await queue.upsertJobScheduler(id, { pattern: w.pattern, tz: w.tz }, { name: 'fire', data: { group: w.group } });
    added++;
  }
  return { added, removed };
}

/**
 * The runs nobody is finishing: run-now requests whose job Redis lost get it again; runs a worker
 * died deciding (a few minutes old) are closed, with the operation they made if they made one.
 */
export async function reconcileRuns(db: Db, queue: Queue<RuleJob>, now = new Date()): Promise<void> {
  const waiting = await db
    .select({ id: ruleRuns.id })
    .from(ruleRuns)
    .where(and(eq(ruleRuns.status, 'firing'), lt(ruleRuns.firedAt, new Date(now.getTime() - 5000))));
  for (const w of waiting) {
    const state = await queue.getJobState(runJobId(w.id));
    if (state === 'unknown' || state === 'completed' || state === 'failed') {
      await (await queue.getJob(runJobId(w.id)))?.remove();
      await enqueueRun(queue, w.id);
    }
  }
  // Runs whose decider went silent (it died, or lost its database): closed, with the operation they
  // made if they made one (found by the rule and the run's key: a key is the requester's to choose, and
  // only the rules engine writes an operation's rule). A run still being decided, however long it takes
  // (hundreds of unreachable targets measured), keeps beating and is left alone.
  const stuck = await db
    .select({ id: ruleRuns.id, ruleId: ruleRuns.ruleId })
    .from(ruleRuns)
    .where(
      and(
        eq(ruleRuns.status, 'deciding'),
        sql`coalesce(${ruleRuns.heartbeatAt}, ${ruleRuns.firedAt}) < ${new Date(now.getTime() - staleDecidingMs())}`,
      ),
    );
  for (const s of stuck) {
    const [op] = await db
      .select({ id: operations.id })
      .from(operations)
      .where(and(eq(operations.ruleId, s.ruleId), eq(operations.idempotencyKey, `rule-run-${s.id}`)));
    const [closed] = await db
      .update(ruleRuns)
      .set(
        op
          ? { status: 'started', operationId: op.id, reason: `operation #${op.id} (the worker that made it stopped before saying so)` }
          : { status: 'error', reason: 'the worker deciding it went silent before it made an operation' },
      )
      .where(and(eq(ruleRuns.id, s.id), eq(ruleRuns.status, 'deciding')))
      .returning({ id: ruleRuns.id });
    if (closed && !op) await runEnded(db, s.id);
  }
}

export interface RuleClockOptions {
  concurrency?: number;
  /** Fires younger than this are the schedulers' to run; older ones not recorded are caught up (default 30 s). */
  catchUpSlackMs?: number;
}

/** The worker's part: the rules queue's consumer, and what keeps the schedulers and the runs right. */
export function startRuleClock(given: FireDeps, connection: IORedis, queue: Queue<RuleJob>, prefix: string, opts: RuleClockOptions = {}) {
  const deps: FireDeps = { ...given, rules: given.rules ?? queue };
  const slack = opts.catchUpSlackMs ?? setting('PGHERD_RULE_CATCHUP_SLACK_MS');
  const worker = new Worker<RuleJob>(
    RULE_QUEUE,
    async (job: Job<RuleJob>) => {
      const d = job.data;
      if ('runId' in d) return void (await fireRequested(deps, d.runId));
      // A scheduler's job says the due time it was made for (prevMillis); a one-time rule's job, in its data.
      if ('group' in d) return void (await fireGroup(deps, d.group, new Date(job.opts.prevMillis ?? job.timestamp), slack));
      // A rule's own scheduler from before fire groups (until the reconcile removes it): its rule's fire.
      const due = d.dueAt ?? job.opts.prevMillis ?? job.timestamp + (job.opts.delay ?? 0);
      await fireDue(deps, d.ruleId, d.version, new Date(due), 'schedule', slack);
    },
    // Not consuming until start(): the missed fires are looked for first (else a scheduler's first
    // fire, recorded before them, would hide them).
    { connection, prefix, concurrency: opts.concurrency ?? 8, autorun: false },
  );
  worker.on('failed', (job, err) => deps.log('rule.job.failed', { jobId: job?.id, error: errorText(err) }));
  worker.on('error', (err) => deps.log('rule.worker.error', { error: err.message }));
  const reconcile = async () => {
    const r = await reconcileSchedulers(deps.db, queue, new Date(), deps.log);
    if (r.added || r.removed) deps.log('rules.reconciled', r);
  };
  const catchUpNow = async () => {
    const fired = await catchUp(deps, slack);
    if (fired.length) deps.log('rules.caught_up', { runs: fired });
  };
  return {
    worker,
    reconcile,
    catchUp: catchUpNow,
    decide: (runId: number) => decide(deps, runId),
    /** The schedulers as the table says, the fires missed meanwhile, then the queue. */
    async start() {
      await reconcile();
      await catchUpNow();
      void worker.run().catch((err: unknown) => deps.log('rule.worker.error', { error: errorText(err) }));
    },
  };
}
