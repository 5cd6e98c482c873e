// One pool per process. Next's dev server reloads modules, so the pool lives on globalThis.
import { AsyncLocalStorage } from 'node:async_hooks';
import { sql, type SQL } from 'drizzle-orm';
import { drizzle, type NodePgDatabase, type NodePgQueryResultHKT } from 'drizzle-orm/node-postgres';
import type { PgDatabase } from 'drizzle-orm/pg-core';
import pg from 'pg';
import { setting } from '@/lib/settings/settings';
import { pgError } from './pg-error';
import * as schema from './schema';

export type Db = NodePgDatabase<typeof schema> & { $client: pg.Pool };

/** Queries on pgherd's database, or on a transaction of it: what code that may run inside one takes. */
export type Queries = PgDatabase<NodePgQueryResultHKT, typeof schema>;

const g = globalThis as unknown as { __pgherdPool?: pg.Pool; __pgherdDb?: Db };

// bigint columns (LSNs, byte counts, the ids of instances, operations and runs) and count(*) are read
// as numbers, in raw queries too (node-postgres reads them as text). Arrays of them as well: an
// operation's excused instances, ids gathered with array_agg. Ids stay below 2^53, where a number is exact.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
// _int8 (1016), which pg-types' typings do not name.
const byOid = pg.types as unknown as {
  getTypeParser(oid: number): (v: string) => (string | null)[];
  setTypeParser(oid: number, parse: (v: string) => unknown): void;
};
const readInt8Array = byOid.getTypeParser(1016);
byOid.setTypeParser(1016, (v) => readInt8Array(v).map((x) => (x === null ? null : Number(x))));

export function createDb(
  url: string,
  max = 10,
  extra: Pick<pg.PoolConfig, 'options' | 'application_name' | 'connectionTimeoutMillis' | 'query_timeout'> = {},
): { db: Db; pool: pg.Pool } {
  const pool = new pg.Pool({ connectionString: url, max, application_name: 'pgherd', ...extra });
  // An idle connection the server closes (restart, failover, admin) must not crash the process;
  // the pool drops it and the next query opens a new one.
  pool.on('error', (err) => console.error(JSON.stringify({ event: 'db.pool.idle_error', message: err.message })));
  // A connection that drops while checked out: the pool listens only to idle ones, and pg emits
  // 'error' on the client, which with no listener is an uncaught exception that ends the process (a
  // worker mid-step, when pgherd's database restarts). The query in flight fails with the error, and
  // its holder releases the client with it: nothing more to do here.
  pool.on('connect', (client) => client.on('error', () => {}));
  const db = drizzle(pool, { schema });
  db.transaction = releasingTransactions(pool);
  return { db, pool };
}

/**
 * `db.transaction` that gives its connection back whatever happens. drizzle's own (0.45) sends BEGIN
 * before the block that releases the connection: a BEGIN that fails (the connection lost as it was
 * handed out, pgherd's database restarting) keeps the connection checked out for good, and the
 * process's `pool.end()` then waits for ever (drizzle-orm#6023, #6241, open). It also gives a
 * connection lost mid-transaction back as healthy. Here the transaction runs on a connection this
 * function checked out, through one drizzle instance made for transactions (made once: building one
 * reads the whole schema), which finds its connection for the call in an AsyncLocalStorage.
 */
// pg's query_timeout: the client gave up on the statement, which may still run on its connection.
function timedOut(err: unknown): boolean {
  for (let e = err as { message?: string; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (/Query read timeout/.test(e.message ?? '')) return true;
  }
  return false;
}

function releasingTransactions(pool: pg.Pool): Db['transaction'] {
  const held = new AsyncLocalStorage<pg.PoolClient>();
  // Not a Pool (drizzle decides by the class's name): drizzle runs BEGIN, COMMIT and ROLLBACK on it and releases nothing.
  const onHeld = {
    query: (...args: Parameters<pg.PoolClient['query']>) => {
      const client = held.getStore();
      if (!client) throw new Error('a transaction statement outside its transaction');
      return (client.query as (...a: unknown[]) => unknown)(...args);
    },
  };
  const txDb = drizzle(onHeld as unknown as pg.Client, { schema });
  return async (fn, config) => {
    const client = await pool.connect();
    let failed: unknown = null;
    try {
      return await held.run(client, () => txDb.transaction(fn, config));
    } catch (err) {
      failed = err;
      throw err;
    } finally {
      // A connection lost, or one whose statement is still running on the server past the client's
      // query_timeout, is closed: never given to another.
      const broken = failed !== null && (isDatabaseUnavailable(failed) || timedOut(failed));
      client.release(broken ? (failed as Error) : undefined);
    }
  };
}

export function getDb(): Db {
  if (!g.__pgherdDb) {
    const url = process.env.DATABASE_URL;
    if (!url) throw new Error('DATABASE_URL is not set (see docs/configuration.md)');
    // A connection is given up after PGHERD_DB_CONNECT_TIMEOUT_MS: an address that drops packets (a
    // lost site) would otherwise hold it for the system's TCP timeout, two minutes and more.
    const { db, pool } = createDb(url, setting('PGHERD_DB_POOL'), { connectionTimeoutMillis: setting('PGHERD_DB_CONNECT_TIMEOUT_MS') });
    g.__pgherdPool = pool;
    g.__pgherdDb = db;
  }
  return g.__pgherdDb;
}

/**
 * A named statement on the pool behind `db`: parsed and planned once per connection, then only
 * bound and executed. For the operations engine's hot paths, where drizzle's query building and the
 * server's parse/plan of every statement cost more than the work itself.
 */
export async function prepared<R>(db: Db, name: string, text: string, values: unknown[]): Promise<R[]> {
  const res = await db.$client.query({ name, text, values });
  return res.rows as R[];
}

// What in a statement's text is not a parameter marker, whatever it holds: a quoted string or name, a comment.
const SQL_TOKENS = /('(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|\/\*[\s\S]*?\*\/|\$\d+)/;

/**
 * A statement whose parameters are $1, $2 ... (a .sql file's: lib/adapters/sql/sql-file.ts) with `values`
 * bound, for drizzle to run as it runs its own, in a transaction too, its rows read as drizzle reads them
 * (timestamps as text): `db.execute(withParams(sqlFile('lib/engine/insert-targets.sql'), [ids, ...]))`.
 * `values[n - 1]` is $n, sent as one parameter whatever it is (an array is one array parameter, never a
 * list). Each marker is a parameter of its own (drizzle numbers them in order): a marker written twice
 * sends its value twice, as a value interpolated twice into sql`` does, so each place types it as it would.
 */
export function withParams(text: string, values: unknown[]): SQL {
  const used = new Set<number>();
  const out = sql.empty();
  for (const part of text.split(SQL_TOKENS)) {
    const m = /^\$(\d+)$/.exec(part);
    if (!m) {
      out.append(sql.raw(part));
      continue;
    }
    const n = Number(m[1]);
    if (n < 1 || n > values.length) throw new Error(`withParams: the statement has $${n}, and ${values.length} value(s) were given`);
    // sql`` writes nothing for an undefined value: say null.
    if (values[n - 1] === undefined) throw new Error(`withParams: $${n} is undefined`);
    used.add(n);
    out.append(sql`${sql.param(values[n - 1])}`);
  }
  if (used.size !== values.length) throw new Error(`withParams: ${values.length} value(s) were given, and the statement uses ${used.size}`);
  return out;
}

// Connection-level failures: pgherd's own database is down, restarting or unreachable (not a bad query).
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EPIPE',
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08006',
]);
const UNAVAILABLE_TEXT =
  /Connection terminated|timeout exceeded when trying to connect|the database system is (starting up|shutting down|in recovery mode)|and is not queryable/;

/** Whether an error (or one it wraps: drizzle puts the driver's on `cause`) says the database cannot be reached now. */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (
    let e = err as { code?: string; message?: string; cause?: unknown } | undefined, depth = 0;
    e && depth < 5;
    e = e.cause as typeof e, depth++
  ) {
    if ((e.code && UNAVAILABLE_CODES.has(e.code)) || UNAVAILABLE_TEXT.test(e.message ?? '')) return true;
  }
  return false;
}

/**
 * Statements asked again on a new connection when the one they were sent on was lost: one statement
 * (nothing after a `;`) that reads, or a BEGIN. A SELECT that calls a function which writes would pass
 * for a read here: steps send none through `ridingOverFailover` (their writes are INSERT, UPDATE,
 * DELETE and WITH statements, and pgherd's own functions are called from those).
 */
const RIDES = /^\s*(select|show|values|begin)\b[^;]*;?\s*$/i;
// Answered without a connection once the connection was lost: the transaction went with it.
const ROLLBACK = /^\s*rollback\b/i;
// The server refused the connection for having too many: a new primary while every client reconnects.
const TOO_MANY_CONNECTIONS = '53300';
// A statement refused by a server that is read-only now (a primary demoted under the connection): it
// ran nothing, and is asked again on another connection.
const READ_ONLY = '25006';

const pause = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/**
 * How long a running step's statements may wait out a failover of pgherd's database, set for the
 * step's run (lib/engine/execute-target.ts): until shortly before the herd's lease could be another
 * worker's, and no longer once it is known to be (`stopped`). No statement is sent after `until()`,
 * whatever the database's state: a write that waited out the failover cannot land after another
 * worker took the herd.
 */
export interface RideBound {
  until(): number;
  stopped(): boolean;
}
const rideBounds = new AsyncLocalStorage<RideBound>();

/** Runs `fn` with its statements through `ridingOverFailover` bounded by `bound`. */
export function withRideBound<T>(bound: RideBound, fn: () => Promise<T>): Promise<T> {
  return rideBounds.run(bound, fn);
}

/**
 * Runs `fn` (and what it starts) with no step's bound: for a statement fenced by its own WHERE (an owed
 * row's claim), which must reach the database to say that the herd is another's now.
 */
export function outsideRideBound<T>(fn: () => T): T {
  return rideBounds.exit(fn);
}

/** A statement not sent: the herd's lease may be another worker's by now (RideBound). */
export class RideOverError extends Error {
  constructor() {
    super("not sent: the herd's lease could not be confirmed in time (pgherd's database did not answer), so it may be another worker's");
    this.name = 'RideOverError';
  }
}

/** One statement's or one transaction's ride: its own bound (`rideMs` from its start) and the step's. */
class Ride {
  constructor(
    private readonly own: number,
    private readonly bound: RideBound | undefined,
  ) {}

  private get until(): number {
    return Math.min(this.own, this.bound?.until() ?? Infinity);
  }

  /** Waits `ms` (less if the ride ends sooner): false when the ride is over, before or after. */
  async pause(ms: number): Promise<boolean> {
    if (Date.now() >= this.until || this.bound?.stopped()) return false;
    await pause(Math.min(ms, this.until - Date.now()));
    return Date.now() < this.until && !this.bound?.stopped();
  }

  /** Throws unless the step's bound still lets a statement be sent. */
  check(): void {
    if (this.bound && (Date.now() >= this.bound.until() || this.bound.stopped())) throw new RideOverError();
  }
}

/**
 * The pool behind `db` as a running step sees it: while pgherd's database fails over (Patroni promotes
 * a replica within 30 s, docs/deployment.md) a statement waits for a connection, for `rideMs` and
 * within the step's RideBound at most, rather than failing the step. A connection's first statement
 * that finds it lost (the pool gave out one the failover had already closed) is asked again on a new
 * one when it is a read or a BEGIN, or when a read-only server refused it; a write is not (it may have
 * committed before the connection went), nor is a statement inside a transaction (the transaction
 * went with the connection).
 * Named `…Pool` because drizzle decides by the class's name that a transaction needs a connection of its own.
 */
class RidingPool {
  constructor(
    private readonly pool: pg.Pool,
    private readonly rideMs: number,
  ) {}

  get options() {
    return this.pool.options;
  }

  /** A connection of the pool, waited for while the database cannot give one, for the ride's length. */
  async acquire(ride: Ride): Promise<pg.PoolClient> {
    for (let wait = 100; ; wait = Math.min(2 * wait, 1000)) {
      try {
        return await this.pool.connect();
      } catch (err) {
        const waitable = isDatabaseUnavailable(err) || pgError(err).code === TOO_MANY_CONNECTIONS;
        if (!waitable || !(await ride.pause(wait))) throw err;
      }
    }
  }

  async connect(): Promise<pg.PoolClient> {
    const ride = new Ride(Date.now() + this.rideMs, rideBounds.getStore());
    ride.check();
    return new RidingClient(this, await this.acquire(ride), ride) as unknown as pg.PoolClient;
  }

  async query(config: string | pg.QueryConfig, values?: unknown[]): Promise<pg.QueryResult> {
    const client = await this.connect();
    try {
      const res = await client.query(config as pg.QueryConfig, values);
      client.release();
      return res;
    } catch (err) {
      // As pg's own pool.query: a connection whose statement failed is not given to another.
      client.release(err as Error);
      throw err;
    }
  }
}

/** A connection of a RidingPool: its first statement, a read or a BEGIN, is asked again on a new connection if this one was lost. */
class RidingClient {
  private fresh = true;
  // Set once the connection was lost (it is given back to the pool at once, to be closed): nothing
  // more is sent on it, and a ROLLBACK is answered here (drizzle sends one, before giving the
  // transaction's own error, and would give the ROLLBACK's instead).
  private lostTo: Error | null = null;

  constructor(
    private readonly pool: RidingPool,
    private client: pg.PoolClient | null,
    private readonly ride: Ride,
  ) {}

  async query(config: string | pg.QueryConfig, values?: unknown[]): Promise<pg.QueryResult> {
    const text = typeof config === 'string' ? config : config.text;
    if (this.lostTo) {
      if (ROLLBACK.test(text)) return { command: 'ROLLBACK', rowCount: null, oid: 0, rows: [], fields: [] };
      throw this.lostTo;
    }
    const first = this.fresh;
    this.fresh = false;
    for (let wait = 100; ; wait = Math.min(2 * wait, 1000)) {
      if (!this.client) throw new Error('the connection was released');
      // A ROLLBACK is always sent: a transaction refused mid-way is not left open on the connection.
      if (!ROLLBACK.test(text)) {
        try {
          this.ride.check();
        } catch (err) {
          if (first) this.release(undefined, err as Error);
          throw err;
        }
      }
      try {
        return await this.client.query(config as pg.QueryConfig, values);
      } catch (err) {
        const lost = isDatabaseUnavailable(err);
        const again = first && ((lost && RIDES.test(text)) || pgError(err).code === READ_ONLY);
        if (lost || again) {
          // Closed, not given to another: lost, or on a server that is read-only now.
          this.client.release(err as Error);
          this.client = null;
        }
        if (!again || !(await this.ride.pause(wait))) {
          if (lost || again) this.lostTo = err as Error;
          // A first statement that failed gives its connection back now: drizzle sends a transaction's
          // BEGIN outside the block that releases the connection, and would keep it for good.
          if (first) this.release(lost || again ? (err as Error) : undefined, err as Error);
          throw err;
        }
        this.client = await this.pool.acquire(this.ride).catch((e: unknown) => {
          this.lostTo = e as Error;
          throw e;
        });
      }
    }
  }

  /** `refused`: what anything sent on it from now on is told (it was given back early). */
  release(err?: Error | boolean, refused?: Error): void {
    this.client?.release(err);
    this.client = null;
    if (refused) this.lostTo ??= refused;
  }
}

const riding = new WeakMap<Db, { rideMs: number; db: Db }>();

/** `db` for a running step's statements: they ride over a failover of pgherd's database (RidingPool), for `rideMs` at most. */
export function ridingOverFailover(db: Db, rideMs: number): Db {
  let r = riding.get(db);
  if (r?.rideMs !== rideMs) {
    r = { rideMs, db: drizzle<typeof schema>(new RidingPool(db.$client, rideMs) as unknown as pg.Pool, { schema }) };
    riding.set(db, r);
  }
  return r.db;
}
