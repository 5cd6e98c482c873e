// The worker's chores, as one table: what each does, how often, and which run on one worker at a time
// (jobs/chores.ts runs them). The listener is one of them: rule changes, notifications, preemptions and discovery
// asked for arrive as Postgres notifications and ask the chore concerned.
import { expireApprovals } from '@/lib/features/operations/approvals';
import { sealAudit } from '@/lib/features/audit/chain';
import pg from 'pg';
import type { Queue } from 'bullmq';
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import type { SshPool } from '@/lib/adapters/ssh/ssh-client';
import { ec2Client, rdsClient } from '@/lib/adapters/aws/config';
import { setting } from '@/lib/settings/settings';
import type { TargetJob } from '@/lib/engine/queue';
import { WORKER_ALIVE_EVERY_MS, workerAlive } from '@/lib/engine/workers-alive';
import { checkDnsRecords } from '@/lib/fleet/refresher';
import { refreshShare } from '@/lib/fleet/refresh-share';
import { settingsPass } from '@/lib/fleet/settings/drift-pass';
import { objectsPass } from '@/lib/fleet/objects/objects-pass';
import { judgeRisks } from '@/lib/features/risks/judge';
import { readEndpointCertificates } from '@/lib/features/risks/certificates';
import { foldLagSamples, lagSampleEveryMs, sampleLag } from '@/lib/fleet/lag-history';
import type { DiscoveryConfig } from '@/lib/features/discovery/discovery';
import { DISCOVERY_CHANNEL, discoveryWanted, runDiscovery } from '@/lib/features/discovery/discovery-runs';
import { followEveryMs, followPatroni } from '@/lib/features/patroni/follow';
import { retryFailedTargets } from '@/lib/features/rules/fire';
import { enqueueRun, type RuleJob } from '@/lib/features/rules/rule-queue';
import { judgeRecoverability } from '@/lib/features/backups/lapse';
import { expireRestoredHerds } from '@/lib/features/backups/expire';
import { RULES_CHANNEL } from '@/lib/features/rules/rules';
import { PREEMPT_CHANNEL, preemptHere } from '@/lib/engine/preempt';
import { errorText } from '@/lib/engine/errors';
import { autoReplaceRound } from '@/lib/features/heal/auto-replace';
import { reconcileRuns, type startRuleClock } from '@/lib/features/rules/scheduler';
import { deliverDue, NOTIFICATIONS_CHANNEL, processEvents } from '@/lib/features/rules/webhooks';
import type { Chore, ChoreRunner } from './chores';
import type { WorkerConfig } from './worker-config';

/** The audit entries sealed a query (a first pass over a long log takes several). */
const AUDIT_SEAL_BATCH = 5000;

/** How often the lag samples older than a day are folded, and those past the retention deleted. */
const LAG_FOLD_EVERY_MS = 600_000;

export interface ChoreContext {
  cfg: WorkerConfig;
  db: Db;
  ssh: SshPool;
  holder: string;
  queue: Queue<TargetJob>;
  rulesQueue: Queue<RuleJob>;
  clock: ReturnType<typeof startRuleClock>;
  discovery: DiscoveryConfig | null;
  reconcileNow: () => Promise<void>;
  /** The runner of these chores (for a chore or a notification that asks another). */
  runner: () => ChoreRunner;
  log: (event: string, fields: object) => void;
  quietly: (event: string, fields: object) => void;
}

export function workerChores(x: ChoreContext): { chores: Chore[]; stopRefresh: () => void; closeListener: () => Promise<void> } {
  const { cfg, db, queue, rulesQueue, clock, discovery, holder, log, quietly } = x;
  // Notifications: the outbox into deliveries, then the deliveries due (one pass at a time here; workers
  // share them). A rule's operation that failed: its failed targets again, when the rule retries.
  const retryFailed = async (ids: number[]) => {
    for (const id of ids) await retryFailedTargets({ db, queue, rules: rulesQueue, log }, id);
  };
  const notify = async () => {
    while ((await processEvents(db, undefined, retryFailed)) > 0);
    await deliverDue(db);
  };
  // EC2 discovery, when configured (PGHERD_AWS_DISCOVERY): on its schedule, and when a user asks (a row
  // in discovery_runs, announced by NOTIFY, and looked for on every tick besides: a lost notification
  // delays a pass, never loses it).
  const discover = async (asked: ReadonlySet<string>) => {
    if (!discovery) return;
    const scheduled = asked.has('timer') || asked.has('start');
    const summary = await runDiscovery(db, discovery, (region) => ec2Client(region), {
      scheduled,
      rdsClientFor: (region) => rdsClient(region),
    });
    if (summary) log('discovery.done', summary);
  };
  let foldedAt = 0;
  let listener: pg.Client | null = null;
  const listen = async () => {
    if (listener) return;
    const c = new pg.Client({ connectionString: cfg.databaseUrl, application_name: 'pgherd-worker-listen' });
    listener = c;
    c.on('error', (err) => quietly('listen.error', { error: err.message }));
    c.on('end', () => {
      if (listener === c) listener = null;
    });
    c.on('notification', (n) => {
      if (n.channel === PREEMPT_CHANNEL)
        return void preemptHere(db, n.payload ?? '').then(
          // A NOTIFY the rows do not back (any role on pgherd's database can send one): said, not obeyed.
          (v) =>
            v.verdict === 'refused'
              ? quietly('preempt.refused', { holder: v.holder, by: v.by, payload: n.payload?.slice(0, 80) })
              : undefined,
          (err: unknown) => quietly('preempt.error', { error: errorText(err) }),
        );
      if (n.channel === NOTIFICATIONS_CHANNEL) return void x.runner().ask('notifications', 'notify');
      const runId = n.channel === RULES_CHANNEL ? /^run:(\d+)$/.exec(n.payload ?? '')?.[1] : undefined;
      // Run now: its job (the same id as the one the console adds, so it runs once).
      if (runId) x.runner().errand('rules.run', () => enqueueRun(rulesQueue, Number(runId)));
      // A rule changed: its schedulers now.
      else if (n.channel === RULES_CHANNEL) x.runner().ask('rules.reconcile', 'notify');
      else x.runner().ask('discovery', 'notify');
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${RULES_CHANNEL}`);
      await c.query(`LISTEN ${NOTIFICATIONS_CHANNEL}`);
      await c.query(`LISTEN ${PREEMPT_CHANNEL}`);
      if (discovery) await c.query(`LISTEN ${DISCOVERY_CHANNEL}`);
    } catch (err) {
      if (listener === c) listener = null;
      await c.end().catch(() => {});
      throw err;
    }
  };

  const tick = cfg.reconcileEveryMs ?? 10_000;
  const refreshEvery = cfg.refreshEveryMs ?? setting('PGHERD_REFRESH_INTERVAL_MS');
  const startedAt = Date.now();
  const share = refreshEvery ? refreshShare(db, { holder, intervalMs: refreshEvery }) : null;
  const ruleEvery = cfg.ruleReconcileEveryMs ?? 60_000;
  const discoverEvery = setting('PGHERD_AWS_DISCOVERY_EVERY_MS');
  // The worker's chores: each runs on its own clock, never twice at once here; those with a turn run on
  // one worker at a time, in its turn (lib/engine/turns.ts).
  const chores: Chore[] = [
    {
      name: 'reconcile',
      says: 'interrupted targets, queued targets without a job, what ended targets owe',
      every: tick,
      run: x.reconcileNow,
    },
    // The listener (rule changes, notifications, discovery asked for), and again on every tick if it was lost.
    {
      name: 'listen',
      says: 'the LISTEN client (rule changes, notifications, discovery asked for), again if it was lost',
      every: tick,
      atStart: 'run',
      run: listen,
    },
    // Run-now requests left without a job; runs a worker died deciding.
    { name: 'rules.runs', says: 'run-now requests of rules, queued', every: tick, run: () => reconcileRuns(db, rulesQueue) },
    {
      name: 'notifications',
      says: 'the outbox into webhook deliveries, and the deliveries due',
      every: tick,
      whileRunning: 'again',
      run: notify,
    },
    // A rule changed while its schedulers were being rebuilt: rebuilt once more right after.
    { name: 'rules.reconcile', says: "the rules' schedulers", every: ruleEvery, whileRunning: 'again', run: () => clock.reconcile() },
    { name: 'rules.catch_up', says: 'fires a rule missed while no worker ran', every: ruleEvery, run: () => clock.catchUp() },
    // The changelists' kept counts: fold the journal the instances' triggers append to (one worker at a time, in SQL).
    {
      name: 'counts.compact',
      says: "the changelists' kept counts (one worker at a time, in SQL)",
      every: tick,
      run: async () => void (await db.execute(sql`SELECT pgherd_compact_instance_counts()`)),
    },
    // This process, as the console sees it: alive while it says so every few seconds.
    { name: 'worker.alive', says: 'this worker, as the console sees it', every: WORKER_ALIVE_EVERY_MS, run: () => workerAlive(db, holder) },
    // Restored herds past their expiry: torn down, as the system, one operation each.
    {
      name: 'restores.expire',
      says: 'restored herds past their expiry torn down, one operation each',
      every: 60_000,
      turn: true,
      run: async (_, turn) => {
        const started = await expireRestoredHerds(db, queue, turn);
        if (started.length) log('restores.expire', { operations: started });
      },
    },
    // The audit log's hash chain: what was committed since, sealed (one worker at a time; its lock besides).
    {
      name: 'audit.seal',
      says: 'audit entries committed since the last pass sealed into the hash chain the export gives (GET /api/v1/audit/export)',
      every: 5_000,
      turn: true,
      run: async () => {
        let sealed = 0;
        for (let n = AUDIT_SEAL_BATCH; n === AUDIT_SEAL_BATCH; sealed += n) n = await sealAudit(db, AUDIT_SEAL_BATCH);
        if (sealed > AUDIT_SEAL_BATCH) log('audit.seal', { sealed });
      },
    },
    // Operations not approved in time: ended expired, audited (the database's clock decides; any worker may).
    {
      name: 'approvals.expire',
      says: 'operations not approved in time, ended expired',
      every: 15_000,
      run: async () => {
        const n = await expireApprovals(db);
        if (n) log('approvals.expire', { expired: n });
      },
    },
    // Herds whose restore was proven and is no longer: said once (herd.restore_unverified), cleared when proven again.
    {
      name: 'restores.judge',
      says: 'herds no longer restore-proven said once (herd.restore_unverified), cleared when proven again',
      every: 60_000,
      turn: true,
      run: async (_, turn) => {
        const j = await judgeRecoverability(db, turn);
        if (j.raised.length || j.cleared.length) log('restores.judge', j);
      },
    },
    // The refresh, shared by the workers: every quarter second, the herds due now that this one may claim
    // (lib/fleet/refresh-share.ts). The DNS records, by one worker at a time, once an interval.
    ...(share
      ? ([
          {
            name: 'refresh',
            says: 'the herds due now, observed over kept sessions and recorded (shared by herd, below)',
            every: Math.min(250, refreshEvery),
            everySays: '250 ms (first round one interval after start)',
            run: async () => {
              // The first round one interval after the worker starts, as one pass an interval always began
              // (what is due in between, the other workers claim).
              if (Date.now() - startedAt < refreshEvery) return;
              const r = await share.round();
              if (r.herds) log('refresh.done', r);
            },
          },
          {
            name: 'refresh.dns',
            says: "every herd's DNS records asked and checked",
            every: refreshEvery,
            everySays: '`PGHERD_REFRESH_INTERVAL_MS`',
            turn: true,
            run: async () => log('refresh.dns', await checkDnsRecords(db)),
          },
        ] satisfies Chore[])
      : []),
    // Settings: read again where the refresh saw the configuration loaded again, drift judged
    // (lib/fleet/settings/drift-pass.ts).
    {
      name: 'settings',
      says: 'settings read again where the refresh saw the configuration loaded again, drift judged',
      every: cfg.settingsEveryMs ?? setting('PGHERD_SETTINGS_EVERY_MS'),
      everySays: '`PGHERD_SETTINGS_EVERY_MS`',
      turn: true,
      run: async (_, turn) => {
        const r = await settingsPass(db, { fence: turn?.fence });
        if (r.read || r.judged) log('settings.pass', r);
      },
    },
    // Fleet objects: a primary's roles, databases, extensions and pg_hba read again where the refresh saw
    // them change, drift judged against its herd's declaration (lib/fleet/objects/objects-pass.ts).
    {
      name: 'objects',
      says: 'roles, databases, extensions and pg_hba read again where the refresh saw them change, drift judged',
      every: cfg.objectsEveryMs ?? setting('PGHERD_OBJECTS_EVERY_MS'),
      everySays: '`PGHERD_OBJECTS_EVERY_MS`',
      turn: true,
      run: async () => {
        const r = await objectsPass(db);
        if (r.read || r.judged) log('objects.pass', r);
      },
    },
    // The fleet's risks judged from the refresh's last readings and the inventory (lib/features/risks).
    {
      name: 'risks.judge',
      says: 'the risks (wraparound, slots, long transactions, certificates, shape, versions) judged; risk.raised and risk.cleared told',
      every: cfg.risksEveryMs ?? setting('PGHERD_RISKS_JUDGE_MS'),
      everySays: '`PGHERD_RISKS_JUDGE_MS`',
      turn: true,
      run: async () => {
        const r = await judgeRisks(db);
        if (r.raised || r.cleared) log('risks.judge', r);
      },
    },
    // The certificates of the fleet's PgBouncers and Patroni REST APIs, for the certificate risk.
    {
      name: 'risks.certificates',
      says: "the fleet's PgBouncers' and Patroni REST APIs' certificates read (a TLS handshake each)",
      every: setting('PGHERD_RISKS_CERTIFICATES_MS'),
      everySays: '`PGHERD_RISKS_CERTIFICATES_MS`',
      // Read at start too: a worker restarted more often than the interval would never read them.
      atStart: 'run',
      turn: true,
      run: async () => {
        const r = await readEndpointCertificates(db);
        if (r.failed) log('risks.certificates', r);
      },
    },
    // Herds that heal themselves: members gone replaced by the system, where a policy says so (docs/grow.md).
    {
      name: 'auto-replace',
      says: 'members gone (silent, their host gone by EC2 or their agent, proven not to run Postgres) replaced where a policy says so',
      every: cfg.autoReplaceEveryMs ?? setting('PGHERD_AUTO_REPLACE_EVERY_MS'),
      everySays: '`PGHERD_AUTO_REPLACE_EVERY_MS`',
      turn: true,
      run: async (_asked, turn) => {
        const decided = await autoReplaceRound({
          db,
          queue,
          ssh: x.ssh,
          ec2For: (region) => ec2Client(region || undefined),
          log,
          ...(turn ? { fence: turn.fence } : {}),
        });
        for (const d of decided)
          log('auto_replace.decided', { instanceId: d.instanceId, verdict: d.verdict, reason: d.reason, operationId: d.operationId });
      },
    },
    // DNS follows Patroni: its herds' leaders read every few seconds (lib/features/patroni/follow.ts).
    {
      name: 'patroni.follow',
      says: "DNS follows Patroni's leaders",
      every: cfg.patroniFollowEveryMs ?? followEveryMs(),
      everySays: '`PGHERD_PATRONI_FOLLOW_MS`',
      turn: true,
      run: async (_, turn) => {
        for (const r of await followPatroni(db, queue, { turn }))
          if (r.operationId || r.reobserved || r.outcome.startsWith('error')) log('patroni.follow', r);
      },
    },
    // Lag history: a sample of the fleet every minute, folded after a day (lib/fleet/lag-history.ts).
    {
      name: 'lag.sample',
      says: "the lag charts' samples, folded after a day",
      every: cfg.lagSampleEveryMs ?? lagSampleEveryMs(),
      everySays: '`PGHERD_LAG_SAMPLE_MS`',
      turn: true,
      run: async () => {
        await sampleLag(db);
        if (Date.now() - foldedAt < LAG_FOLD_EVERY_MS) return;
        foldedAt = Date.now();
        const f = await foldLagSamples(db);
        if (f.folded || f.deleted) log('lag.folded', f);
      },
    },
    ...(discovery
      ? ([
          // A pass asked for while one runs is run right after it (that one may have claimed the asked-for rows before).
          {
            name: 'discovery',
            says: 'EC2 and RDS discovery, scheduled and asked for',
            every: discoverEvery,
            everySays: '`PGHERD_AWS_DISCOVERY_EVERY_MS`',
            turn: true,
            whileRunning: 'again',
            atStart: 'run',
            run: discover,
          },
          {
            name: 'discovery.tick',
            says: 'a discovery pass asked for in the console, started',
            every: tick,
            run: async () => {
              if (await discoveryWanted(db)) x.runner().ask('discovery', 'wanted');
            },
          },
        ] satisfies Chore[])
      : []),
  ];
  return {
    chores,
    /** The refresh claims nothing more (the worker is closing): a round in progress ends after its batch. */
    stopRefresh: () => share?.stop(),
    closeListener: async () => {
      share?.close();
      await listener?.end().catch(() => {});
    },
  };
}
