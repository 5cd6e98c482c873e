// GET /healthz and GET /readyz, for a load balancer in front of the consoles and for systemd: alive is
// "this process answers"; ready is "it can do its work now": pgherd's database takes writes through the
// address it was given (not a replica a stale route still reaches, not a database gone), and the queue's
// Redis answers. A console told to stop says it is not ready at once and goes on serving for its drain
// (PGHERD_WEB_DRAIN_MS), so that the balancer moves its clients elsewhere before it closes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type pg from 'pg';
import { errorText } from '@/lib/engine/errors';

export const HEALTH_PATH = '/healthz';
export const READY_PATH = '/readyz';

export interface Readiness {
  ready: boolean;
  /** pgherd's database: "writable", or why not. */
  database: string;
  /** The queue's Redis: "reachable", "not configured", or why not. */
  queue: string;
  /** Set while the process drains before it stops. */
  stopping?: true;
}

/** Bounds a check: a database that accepts connections and answers nothing must not hold the probe. */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms))),
  ]);
}

/**
 * Whether the database behind `pool` takes writes: a primary, its transactions read-write by default,
 * and a write commits: one row of readiness_probe, whose commit waits, as every write of pgherd's does,
 * for the synchronous standby, so a primary whose standby hangs (Patroni has not yet moved it) is not
 * called writable while every write hangs. (A transaction that writes no WAL does not wait for it.)
 */
export async function databaseState(pool: pg.Pool, timeoutMs = 2000): Promise<string> {
  try {
    const { rows } = await within(
      timeoutMs,
      "pgherd's database",
      pool.query<{ rec: boolean; ro: string }>(`SELECT pg_is_in_recovery() AS rec, current_setting('default_transaction_read_only') AS ro`),
    );
    const r = rows[0];
    if (!r) return 'no answer';
    if (r.rec) return 'in recovery (a replica): not writable';
    if (r.ro === 'on') return 'read-only (default_transaction_read_only)';
    const commit = pool.query('INSERT INTO readiness_probe (id, at) VALUES (1, now()) ON CONFLICT (id) DO UPDATE SET at = EXCLUDED.at');
    commit.catch(() => {});
    await within(timeoutMs, "a commit on pgherd's database (its synchronous standby?)", commit);
    return 'writable';
  } catch (err) {
    return errorText(err);
  }
}

/** Whether Redis answers PING through `ping` (null: no queue configured). */
export async function queueState(ping: (() => Promise<string>) | null, timeoutMs = 2000): Promise<string> {
  if (!ping) return 'not configured';
  try {
    const pong = await within(timeoutMs, "the queue's Redis", ping());
    return pong === 'PONG' ? 'reachable' : `answered ${pong}`;
  } catch (err) {
    return errorText(err);
  }
}

export async function readiness(pool: pg.Pool | null, ping: (() => Promise<string>) | null, stopping: boolean): Promise<Readiness> {
  const [database, queue] = await Promise.all([pool ? databaseState(pool) : Promise.resolve('not configured'), queueState(ping)]);
  const ready = !stopping && database === 'writable' && (queue === 'reachable' || queue === 'not configured');
  return { ready, database, queue, ...(stopping ? { stopping: true as const } : {}) };
}

function json(res: ServerResponse, status: number, body: object) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** Answers /healthz (200 while the process runs) and /readyz (200 ready, 503 not, with why); false for other paths. */
export function serveHealth(
  req: IncomingMessage,
  res: ServerResponse,
  where: string | undefined,
  ready: () => Promise<Readiness>,
): boolean {
  if (where !== HEALTH_PATH && where !== READY_PATH) return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    json(res, 405, { error: `GET ${where} only` });
    return true;
  }
  if (where === HEALTH_PATH) {
    json(res, 200, { alive: true });
    return true;
  }
  void ready().then(
    (r) => json(res, r.ready ? 200 : 503, r),
    (err: unknown) => json(res, 503, { ready: false, error: errorText(err) }),
  );
  return true;
}
