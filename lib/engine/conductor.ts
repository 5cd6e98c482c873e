// The wave conductor: moves rolling operations from one wave to the next. One worker at a time holds
// the role, in its turn (lib/engine/turns.ts: renewed every round, lost when it expires); every worker
// LISTENs for the database's "a wave's last target ended" notification, and the one whose turn it is
// acts on it. A worker that dies or freezes loses the turn to another; thawed, the next wave it would
// start is refused by the turn's fence.
//
// A wave's life: running (its targets are released) -> soaking (they all ended; the health gate is
// sampled until every herd the wave touched has been healthy for the soak time without a break) ->
// passed (the next wave's targets are released), or held (the gate did not pass within its deadline:
// the operation pauses with the reason). A wave without a gate passes as soon as its targets have
// ended; the last wave has no gate after it, and ends with the operation.
import { sqlFile } from '@/lib/adapters/sql/sql-file';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { Queue } from 'bullmq';
import { sql } from 'drizzle-orm';
import { prepared, type Db } from '@/db/client';
import { errorText } from '@/lib/engine/errors';
import { REF_SELECT, toRef, type InstanceRef, type RefRow } from '@/lib/fleet/instance-ref';
import { observationPool, observe, type Observed } from '@/lib/fleet/observe';
import { mapLimit } from '@/lib/adapters/async/map-limit';
import { enqueueTargets, type TargetJob } from '@/lib/engine/queue';
import { gateSchema, judgeHerd, type GateMember, type GateSpec } from '@/lib/engine/waves';
import { herdWindowAt, outsideWords, windowsOfHerds } from '@/lib/engine/windows';
import { holdOperation, resumePaused } from './hold';
import { setting } from '@/lib/settings/settings';
import { takeTurn, turnTtlMs, type Executor, type HeldTurn } from './turns';

export const WAVES_CHANNEL = 'pgherd_waves';

/** How the conductor reaches the instances (tests and benchmarks may pass their own). */
export type Observer = (m: InstanceRef) => Promise<Observed>;

interface ActiveWave {
  id: number;
  waves: { gate?: unknown } | null;
  window_bound: boolean;
  wave: number;
  status: 'running' | 'soaking';
  last: number;
  open: boolean;
}

const ACTIVE = {
  name: 'pgherd_conductor_active_v3',
  // Whether the wave is open: its first open target, asked in the open targets' index order (as the
  // settling does, migration 0022), so that no statistics make it a scan of every ended target.
  text: sqlFile('lib/engine/active-waves.sql'),
};

/** Observes over a new connection. */
const observeFresh: Observer = (m) => observe({ host: m.host, port: m.port, serverEnvironment: m.serverEnvironment }, 3000);

// The members of the herds a wave touched (its targets that started, whatever became of them), each
// with whether the operation excused it (stopped when it was confirmed) and whether one of its
// targets succeeded (a member stopped on purpose).
const GATE_MEMBERS = {
  name: 'pgherd_gate_members',
  text: `SELECT r.*, r.id = ANY (o.gate_excused) AS excused,
                EXISTS (SELECT 1 FROM operation_targets d WHERE d.instance_id = r.id AND d.operation_id = $1 AND d.status = 'succeeded') AS done
         FROM (${REF_SELECT}
               WHERE i.herd_id IN (SELECT herd_id FROM operation_targets WHERE operation_id = $1 AND wave = $2 AND attempts > 0 AND herd_id IS NOT NULL)) r
         JOIN operations o ON o.id = $1
         ORDER BY r.id`,
};

/**
 * The longest a soak may go between two readings of its gate and still count as watched (the
 * conductor reads every second; runConductor allows three of its rounds when they are longer).
 */
export const MAX_READING_GAP_MS = 5000;

/** Endpoints observed at once while sampling a gate. */
const SAMPLE_CONCURRENCY = 16;

/**
 * One reading of the gate for a wave: null when every herd the wave touched (its targets that
 * started, whatever became of them) is healthy, else why not (the first few herds that are not).
 * Members the gate does not wait for: fenced or to be rebuilt, stopped when the operation was
 * confirmed (gate_excused), or stopped on purpose by one of its targets that succeeded. Each endpoint
 * is observed once, however many herds name it.
 */
export async function sampleGate(
  db: Db,
  operationId: number,
  wave: number,
  gate: Pick<GateSpec, 'maxLagBytes' | 'maxLagSeconds'>,
  look: Observer,
): Promise<string | null> {
  // One statement: every member of the herds the wave touched, and whether the gate waits for it.
  const rows = await prepared<RefRow & { excused: boolean; done: boolean }>(db, GATE_MEMBERS.name, GATE_MEMBERS.text, [operationId, wave]);
  if (!rows.length) return null;
  const members = rows.map((r) => ({ ...toRef(r), excused: r.excused, done: r.done }));
  const endpoint = (m: InstanceRef) => `${m.host}:${m.port}`;
  const distinct = [...new Map(members.map((m) => [endpoint(m), m])).values()];
  const seen = new Map(await mapLimit(distinct, SAMPLE_CONCURRENCY, async (m) => [endpoint(m), await look(m)] as const));
  const byHerd = new Map<number, { herd: string; members: GateMember[] }>();
  for (const m of members) {
    const observed = seen.get(endpoint(m)) ?? { reachable: false, error: 'not observed' };
    const expected = !m.excused && m.state !== 'fenced' && m.state !== 'needs_rebuild' && !(m.state === 'stopped' && m.done);
    const entry = byHerd.get(m.herdId) ?? { herd: m.herd, members: [] };
    entry.members.push({ label: m.hostname, expected, observed });
    byHerd.set(m.herdId, entry);
  }
  const problems = [...byHerd.values()].map((h) => judgeHerd(h.herd, h.members, gate)).filter((p): p is string => p !== null);
  if (!problems.length) return null;
  return problems.length > 3 ? `${problems.slice(0, 3).join('; ')}; and ${problems.length - 3} more herds` : problems.join('; ');
}

/**
 * Starts the next wave: in one transaction on the operation's row (a pause or an abort either comes
 * first and stops this, or comes after and holds what this released), marks this wave passed and the
 * next one running, and releases its targets; then enqueues them. Returns the targets released.
 */
export async function startNextWave(
  db: Db,
  queue: Queue<TargetJob> | null,
  operationId: number,
  wave: number,
  fence?: (tx: Executor) => Promise<void>,
): Promise<number[]> {
  const released = await db.transaction(async (tx) => {
    await fence?.(tx);
    const { rows: ok } = await tx.execute(
      sql`SELECT id FROM operations WHERE id = ${operationId} AND current_wave = ${wave} AND finished_at IS NULL AND paused_at IS NULL AND NOT cancel_requested FOR UPDATE`,
    );
    if (!ok.length) return [];
    await tx.execute(
      sql`UPDATE operation_waves SET status = 'passed', passed_at = now(), ended_at = coalesce(ended_at, now()), updated_at = now() WHERE operation_id = ${operationId} AND wave = ${wave}`,
    );
    const { rows: next } = await tx.execute(
      sql`UPDATE operation_waves SET status = 'running', started_at = now(), updated_at = now() WHERE operation_id = ${operationId} AND wave = ${wave + 1} RETURNING wave`,
    );
    if (!next.length) return [];
    await tx.execute(sql`UPDATE operations SET current_wave = ${wave + 1}, updated_at = now() WHERE id = ${operationId}`);
    const { rows } = await tx.execute<{ id: number }>(
      sql`UPDATE operation_targets SET held = false, updated_at = now() WHERE operation_id = ${operationId} AND wave = ${wave + 1} AND status = 'queued' AND held RETURNING id`,
    );
    return rows.map((r) => r.id);
  });
  // Never enqueued before (a later wave's targets are held from their submit; reconcile enqueues only
  // those not held), so added as they are; one lost with Redis is enqueued again by reconcile.
  if (released.length && queue) await enqueueTargets(queue, released);
  return released;
}

/** One round over every rolling operation that is not paused: what each wave's state calls for. */
export async function conductWaves(
  db: Db,
  queue: Queue<TargetJob> | null,
  opts: {
    look?: Observer;
    log?: (e: string, f: object) => void;
    maxGapMs?: number;
    /** The conductor's turn confirmed in each transaction that starts a wave. */
    fence?: (tx: Executor) => Promise<void>;
  } = {},
): Promise<void> {
  const log = opts.log ?? (() => {});
  const maxGapMs = opts.maxGapMs ?? MAX_READING_GAP_MS;
  const look = opts.look ?? observeFresh;
  await resumeInsideWindows(db, queue, log);
  const active = await prepared<ActiveWave>(db, ACTIVE.name, ACTIVE.text, []);
  for (const w of active) {
    // Its targets still run; or it is the last wave, which ends with the operation (the database settles both).
    if (w.open || w.wave >= w.last) continue;
    const parsed = w.waves?.gate === undefined ? null : gateSchema.safeParse(w.waves.gate);
    if (parsed && !parsed.success) {
      // A gate was confirmed but cannot be read back: never treat it as no gate.
      await holdOperation(db, w.id, `wave ${w.wave}'s health gate cannot be read: ${parsed.error.message}`);
      continue;
    }
    const gate = parsed?.data ?? null;
    if (!gate) {
      if (await waitsForWindow(db, w, log)) continue;
      log('wave.passed', { operationId: w.id, wave: w.wave });
      await startNextWave(db, queue, w.id, w.wave, opts.fence);
      continue;
    }
    if (w.status === 'running') {
      await prepared(
        db,
        'pgherd_wave_soaking_v2',
        `UPDATE operation_waves SET status = 'soaking', ended_at = now(), soak_from = now(), last_reading_at = NULL, updated_at = now()
         WHERE operation_id = $1 AND wave = $2 AND status = 'running'`,
        [w.id, w.wave],
      );
      log('wave.ended', { operationId: w.id, wave: w.wave });
    }
    const began = performance.now();
    const problem = await sampleGate(db, w.id, w.wave, gate, look).catch((err: unknown) => `the gate could not be read: ${errorText(err)}`);
    const tookMs = performance.now() - began;
    if (problem === null) {
      // Healthy time is only what readings saw: when this reading began longer than maxGapMs after the
      // last one ended (or, for the first, after the soak began), nobody watched in between (no
      // conductor, pgherd's database away) and the soak starts again from this reading.
      const [r] = await prepared<{ soaked: boolean }>(db, 'pgherd_gate_healthy_v3', sqlFile('lib/engine/gate-healthy.sql'), [
        w.id,
        w.wave,
        gate.soakSeconds,
        Math.round(tookMs),
        maxGapMs,
      ]);
      if (r?.soaked && !(await waitsForWindow(db, w, log))) {
        log('wave.passed', { operationId: w.id, wave: w.wave });
        await startNextWave(db, queue, w.id, w.wave, opts.fence);
      }
      continue;
    }
    const [r] = await prepared<{ late: boolean }>(
      db,
      'pgherd_gate_unhealthy_v2',
      `UPDATE operation_waves SET soak_from = now(), last_reading_at = now(), gate_note = $3, updated_at = now()
       WHERE operation_id = $1 AND wave = $2 AND status = 'soaking' RETURNING now() - ended_at > $4 * interval '1 second' AS late`,
      [w.id, w.wave, problem, gate.deadlineSeconds],
    );
    if (r?.late) {
      const reason = `wave ${w.wave}'s health gate did not pass within ${gate.deadlineSeconds} s: ${problem}`;
      await holdOperation(db, w.id, reason);
      log('wave.gate_failed', { operationId: w.id, wave: w.wave, reason });
    }
  }
}

/** The reason an operation waiting for a maintenance window is paused with: its prefix is how it is found again. */
export const WINDOW_WAIT = 'maintenance window:';

/** Why the herds of an operation's wave (its queued targets') are outside their windows now; null: all inside one. */
async function outsideWindows(db: Db, operationId: number, wave: number, now = new Date()): Promise<string | null> {
  const { rows } = await db.execute<{ id: number; name: string }>(
    sql`SELECT DISTINCT h.id, h.name FROM operation_targets t JOIN herds h ON h.id = t.herd_id
        WHERE t.operation_id = ${operationId} AND t.wave = ${wave} AND t.status = 'queued' ORDER BY h.name`,
  );
  const byHerd = await windowsOfHerds(
    db,
    rows.map((r) => r.id),
  );
  const why = rows.flatMap((h) => {
    const w = outsideWords(h.name, herdWindowAt(byHerd.get(h.id) ?? [], now));
    return w ? [w] : [];
  });
  return why.length ? why.join('; ') : null;
}

/** A rule's operation bound to windows whose next wave's herds are outside them: paused until one opens. */
async function waitsForWindow(db: Db, w: ActiveWave, log: (e: string, f: object) => void): Promise<boolean> {
  if (!w.window_bound) return false;
  const why = await outsideWindows(db, w.id, w.wave + 1);
  if (!why) return false;
  if (await holdOperation(db, w.id, `${WINDOW_WAIT} wave ${String(w.wave + 1)} waits: ${why}`))
    log('wave.window_wait', { operationId: w.id, wave: w.wave + 1, reason: why });
  return true;
}

/** Operations paused for a window whose next wave's herds are inside one now: resumed, by the system. */
async function resumeInsideWindows(db: Db, queue: Queue<TargetJob> | null, log: (e: string, f: object) => void) {
  const { rows } = await db.execute<{ id: number; wave: number }>(
    sql`SELECT id, current_wave AS wave FROM operations
        WHERE finished_at IS NULL AND window_bound AND paused_at IS NOT NULL AND NOT cancel_requested AND starts_with(paused_reason, ${WINDOW_WAIT})`,
  );
  for (const op of rows) {
    if (await outsideWindows(db, op.id, op.wave + 1)) continue;
    if (await resumePaused(db, queue, op.id, { id: null, username: 'system' }, WINDOW_WAIT))
      log('wave.window_open', { operationId: op.id, wave: op.wave + 1 });
  }
}

/**
 * Runs the conductor while this process holds its turn: a round on every notification and every
 * `everyMs` (the soak's samples, and a safety net for a notification lost with a connection), the turn
 * renewed before each timed round.
 */
export function runConductor(
  url: string,
  db: Db,
  queue: Queue<TargetJob> | null,
  opts: { holder: string; everyMs?: number; look?: Observer; log: (e: string, f: object) => void },
): { close: () => Promise<void> } {
  let client: pg.Client | null = null;
  let turn: HeldTurn | null = null;
  const life = { closed: false };
  // Read through a call: the flag changes while lead() awaits, which narrowing does not see.
  const closed = () => life.closed;
  const leading = () => turn?.held() === true && !closed();
  let round: Promise<void> | null = null;
  let again = false;
  const everyMs = opts.everyMs ?? setting('PGHERD_WAVE_ROUND_MS');
  // The gate's samples keep their connections between rounds, each reading checked by a probe that
  // the instance takes new connections (see observationPool); those a round no longer uses close.
  const observations = observationPool();
  const look =
    opts.look ?? ((m: InstanceRef) => observations.look({ host: m.host, port: m.port, serverEnvironment: m.serverEnvironment }, 3000));

  const roundNow = () => {
    const t = turn;
    if (!t || !leading()) return;
    if (round) {
      again = true;
      return;
    }
    round = conductWaves(db, queue, { look, log: opts.log, maxGapMs: Math.max(MAX_READING_GAP_MS, 3 * everyMs), fence: t.fence })
      .catch((err: unknown) => opts.log('conductor.error', { error: errorText(err) }))
      .finally(() => {
        observations.sweep(Math.max(10_000, 3 * everyMs));
        round = null;
        if (again) {
          again = false;
          roundNow();
        }
      });
  };

  // The notifications' connection (kept by every worker, so that whoever takes the turn hears them), then the turn.
  const lead = async () => {
    if (closed()) return;
    try {
      if (!client) {
        const c = new pg.Client({ connectionString: url, application_name: 'pgherd-conductor' });
        c.on('error', (err) => {
          if (!closed()) opts.log('conductor.connection_error', { error: err.message });
        });
        c.on('end', () => {
          if (client === c) client = null;
        });
        c.on('notification', () => roundNow());
        await c.connect();
        // Closed while connecting (the database was slow to answer): this connection is not needed.
        if (closed()) return void (await c.end().catch(() => {}));
        await c.query(`LISTEN ${WAVES_CHANNEL}`);
        client = c;
      }
      // Renewed a few times a TTL (not every round: a write a second for nothing).
      if ((turn?.held() && turn.age() < turnTtlMs() / 4) || (turn && (await turn.renew()))) {
        roundNow();
        return;
      }
      if (turn) opts.log('conductor.turn_lost', {});
      turn = await takeTurn(db, 'conductor', opts.holder);
      if (!turn || closed()) return;
      opts.log('conductor.leading', { generation: turn.generation });
      roundNow();
    } catch (err) {
      opts.log('conductor.error', { error: errorText(err) });
      const c = client;
      client = null;
      await c?.end().catch(() => {});
    }
  };

  // One attempt at a time: a database that is slow to answer must not pile up connections.
  let trying: Promise<void> | null = null;
  const tryLead = () => {
    trying ??= lead().finally(() => {
      trying = null;
    });
  };
  tryLead();
  const timer = setInterval(tryLead, everyMs);

  return {
    async close() {
      life.closed = true;
      clearInterval(timer);
      await Promise.all([round, trying]);
      observations.close();
      if (turn?.held()) await turn.release().catch(() => {});
      await client?.end().catch(() => {});
      client = null;
    },
  };
}
