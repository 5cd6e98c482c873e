// A running step's statements ride over a failover of pgherd's database (ridingOverFailover): a
// statement waits for a connection while none can be had, a read that lost its connection is asked
// again, a write that lost its connection is not (it may have committed). The database's address is
// a TCP front this test opens and closes, as HAProxy is while Patroni has no primary.
import net from 'node:net';
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it, inject } from 'vitest';
import { createDb, isDatabaseUnavailable, RideOverError, ridingOverFailover, withRideBound, type Db } from './client';
import { pgError } from './pg-error';
import { readLab } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';

/** What HAProxy is to pgherd: open (passes bytes to Postgres) or with no primary (accepts, then closes). */
class Front {
  open = true;
  accepted = 0;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;
  private readonly waiting: { n: number; resolve: () => void }[] = [];
  constructor(private readonly to: { host: string; port: number }) {
    this.server = net.createServer((c) => {
      this.accepted++;
      for (const w of this.waiting.filter((w) => this.accepted >= w.n)) {
        this.waiting.splice(this.waiting.indexOf(w), 1);
        w.resolve();
      }
      if (!this.open) return void c.destroy();
      const up = net.connect(this.to);
      for (const s of [c, up]) {
        this.sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => {
          this.sockets.delete(s);
          c.destroy();
          up.destroy();
        });
      }
      c.pipe(up).pipe(c);
    });
  }
  listen(): Promise<number> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as net.AddressInfo).port)));
  }
  /** The primary lost: every session ended, new ones closed at once. */
  lose(): void {
    this.open = false;
    for (const s of this.sockets) s.destroy();
  }
  /** Resolves once `n` more connections were attempted from now. */
  attempts(n: number): Promise<void> {
    return new Promise((resolve) => this.waiting.push({ n: this.accepted + n, resolve }));
  }
  close(): Promise<void> {
    this.lose();
    return new Promise((r) => this.server.close(() => r()));
  }
}

const name = `t_riding_${process.pid}`;
let adminUrl = '';
let url = '';
let front: Front;
let made: ReturnType<typeof createDb>;
let riding: Db;

beforeAll(async () => {
  adminUrl = readLab(inject('labFile')).database.adminUrl;
  await query(adminUrl, `CREATE DATABASE ${name}`);
  const direct = new URL(adminUrl.replace(/\/postgres$/, `/${name}`));
  await query(direct.toString(), 'CREATE TABLE writes (id serial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())');
  front = new Front({ host: direct.hostname, port: Number(direct.port || 5432) });
  direct.port = String(await front.listen());
  direct.hostname = '127.0.0.1';
  url = direct.toString();
  made = createDb(url, 4);
  riding = ridingOverFailover(made.db, 20_000);
});
afterEach(() => {
  front.open = true;
});
afterAll(async () => {
  await made.pool.end();
  await front.close();
  await query(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
});

const directUrl = () => adminUrl.replace(/\/postgres$/, `/${name}`);
const count = async () => (await query<{ n: number }>(directUrl(), 'SELECT count(*)::int AS n FROM writes'))[0]!.n;
const failure = (p: PromiseLike<unknown>) =>
  p.then(
    () => null,
    (err: unknown) => err,
  );

// What drizzle wraps (a statement's error is its cause).
const pgCause = (err: unknown) => (err as { cause?: unknown }).cause ?? err;

/** The backend running `text` on the test's database, once it runs. */
async function runningBackend(text: string): Promise<void> {
  for (;;) {
    const rows = await query<{ n: number }>(
      adminUrl,
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND query = $2 AND state = 'active'`,
      [name, text],
    );
    if (rows[0]!.n > 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('statements of a running step across a failover of pgherd database', () => {
  it('a read asked while there is no primary waits and is answered once there is one', async () => {
    front.lose();
    // Without the ride, the step's statement fails at once.
    const plain = await made.db.execute(sql`SELECT 1`).then(
      () => null,
      (err: unknown) => err,
    );
    expect(isDatabaseUnavailable(plain)).toBe(true);
    // (drizzle's query runs once it is awaited or then'd.)
    const asked = riding.execute<{ v: number }>(sql`SELECT 42 AS v`).then((r) => r.rows[0]!.v);
    // It keeps asking (two attempts after the first), then the new primary is there.
    await front.attempts(3);
    front.open = true;
    expect(await asked).toBe(42);
  });

  it('a transaction begun while there is no primary waits for one and commits', async () => {
    front.lose();
    const done = riding.transaction(async (tx) => {
      await tx.execute(sql`INSERT INTO writes DEFAULT VALUES`);
      return (await tx.execute<{ n: number }>(sql`SELECT count(*)::int AS n FROM writes`)).rows[0]!.n;
    });
    await front.attempts(2);
    const before = (await query<{ n: number }>(adminUrl.replace(/\/postgres$/, `/${name}`), 'SELECT count(*)::int AS n FROM writes'))[0]!.n;
    front.open = true;
    expect(await done).toBe(before + 1);
  });

  it('a read that loses its connection mid-statement is asked again', async () => {
    const text = 'SELECT pg_sleep(0.3), 7 AS v';
    const asked = riding.$client.query<{ v: number }>(text);
    await runningBackend(text);
    front.lose();
    front.open = true;
    expect((await asked).rows[0]!.v).toBe(7);
  });

  it('a write that loses its connection mid-statement is not asked again: it may have committed', async () => {
    const before = await count();
    const text = 'INSERT INTO writes (at) SELECT now() FROM pg_sleep(0.3)';
    const asked = riding.$client.query(text).then(
      () => null,
      (err: unknown) => err,
    );
    await runningBackend(text);
    front.lose();
    front.open = true;
    expect(isDatabaseUnavailable(await asked)).toBe(true);
    // The server finishes the statement its client left: it committed once, and only once.
    for (;;) {
      const still = await query<{ n: number }>(
        adminUrl,
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND query = $2`,
        [name, text],
      );
      if (still[0]!.n === 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await count()).toBe(before + 1);
  });

  it('gives up after its bound, and never rides over an error of the statement itself', async () => {
    const short = ridingOverFailover(made.db, 300);
    front.lose();
    const t0 = Date.now();
    const err = await short.execute(sql`SELECT 1`).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isDatabaseUnavailable(err)).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    front.open = true;
    const attempts = front.accepted;
    await expect(riding.execute(sql`SELECT * FROM no_such_table`)).rejects.toThrow(/no_such_table/);
    // One connection at most (the pool may hold one already): the failed statement was not asked again.
    expect(front.accepted - attempts).toBeLessThanOrEqual(1);
  });
  it("stops waiting at the step's bound, at once when the lease is found taken, and sends nothing after it", async () => {
    // The bound a step's lease sets (execute-target.ts): shorter than the pool's own 20 s.
    let until = Date.now() + 400;
    let taken = false;
    const bound = { until: () => until, stopped: () => taken };
    front.lose();
    const t0 = Date.now();
    const waited = await failure(withRideBound(bound, async () => await riding.execute(sql`SELECT 1`)));
    expect(isDatabaseUnavailable(waited)).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
    expect(Date.now() - t0).toBeLessThan(5000);

    // Found taken while it waits: it stops at its next look, not at its bound.
    until = Date.now() + 15_000;
    const t1 = Date.now();
    const asked = failure(withRideBound(bound, async () => await riding.execute(sql`SELECT 1`)));
    await front.attempts(1);
    taken = true;
    expect(isDatabaseUnavailable(await asked)).toBe(true);
    expect(Date.now() - t1).toBeLessThan(3000);

    // The database back, a write whose bound has passed is not sent: the row is not there.
    front.open = true;
    taken = false;
    until = Date.now() - 1;
    const before = await count();
    const late = await failure(withRideBound(bound, async () => await riding.execute(sql`INSERT INTO writes DEFAULT VALUES`)));
    expect(pgCause(late)).toBeInstanceOf(RideOverError);
    // Nor inside a transaction begun in time: the statement after the bound is refused, the rest rolled back.
    until = Date.now() + 10_000;
    const tx = await failure(
      withRideBound(bound, () =>
        riding.transaction(async (t) => {
          await t.execute(sql`INSERT INTO writes DEFAULT VALUES`);
          until = Date.now() - 1;
          await t.execute(sql`INSERT INTO writes DEFAULT VALUES`);
        }),
      ),
    );
    expect(pgCause(tx)).toBeInstanceOf(RideOverError);
    expect(await count()).toBe(before);
    // Transactions begun past the bound, more than the pool holds (half of them given a connection
    // before the bound passed, their BEGIN refused): refused, and no connection kept.
    for (let i = 0; i < 6; i++) {
      let looks = 0;
      const passing = { until: () => (i % 2 === 1 && looks++ === 0 ? Date.now() + 10_000 : Date.now() - 1), stopped: () => false };
      const refused = await failure(withRideBound(passing, () => riding.transaction(async (t) => void (await t.execute(sql`SELECT 1`)))));
      expect(pgCause(refused)).toBeInstanceOf(RideOverError);
    }
    expect(made.pool.totalCount - made.pool.idleCount).toBe(0);
    expect((await riding.execute<{ v: number }>(sql`SELECT 3 AS v`)).rows[0]!.v).toBe(3);
  });

  it('a transaction that loses its connection fails with the loss, and its connection is not given out again', async () => {
    const before = await count();
    const text = 'SELECT pg_sleep(0.3)';
    const done = failure(
      riding.transaction(async (tx) => {
        await tx.execute(sql`INSERT INTO writes DEFAULT VALUES`);
        await tx.execute(sql.raw(text));
      }),
    );
    await runningBackend(text);
    front.lose();
    front.open = true;
    const err = await done;
    // The loss itself, not the ROLLBACK's failure on a closed connection.
    expect(isDatabaseUnavailable(err)).toBe(true);
    expect((err as Error).message).not.toMatch(/not queryable/);
    // The pool holds no connection of the lost ones: each of its connections answers.
    const answers = await Promise.all(Array.from({ length: 4 }, () => riding.$client.query<{ v: number }>('SELECT 5 AS v')));
    expect(answers.map((r) => r.rows[0]!.v)).toEqual([5, 5, 5, 5]);
    expect(made.pool.totalCount - made.pool.idleCount).toBe(0);
    expect(await count()).toBe(before);
  });

  it('two statements in one string are not asked again after a loss: the second may have run', async () => {
    const text = 'SELECT pg_sleep(0.3); INSERT INTO writes DEFAULT VALUES';
    const asked = failure(riding.$client.query(text));
    await runningBackend(text);
    front.lose();
    front.open = true;
    expect(isDatabaseUnavailable(await asked)).toBe(true);
  });

  it('waits out a server with no connection to spare (53300) and a read-only one (25006): a new primary', async () => {
    const role = `t_riding_role_${process.pid}`;
    await query(adminUrl, `CREATE ROLE ${role} LOGIN PASSWORD 'riding-test' CONNECTION LIMIT 0`);
    await query(directUrl(), `GRANT INSERT, SELECT ON writes TO ${role}; GRANT USAGE ON SEQUENCE writes_id_seq TO ${role}`);
    const asRole = new URL(url);
    asRole.username = role;
    asRole.password = 'riding-test';
    const mine = createDb(asRole.toString(), 2);
    try {
      const rides = ridingOverFailover(mine.db, 20_000);
      const plain = await failure(mine.db.execute(sql`SELECT 1`));
      expect(pgError(plain).code).toBe('53300');
      // (drizzle's query runs once it is then'd.)
      const answered = rides.execute<{ v: number }>(sql`SELECT 9 AS v`).then((r) => r.rows[0]!.v);
      await front.attempts(2);
      await query(adminUrl, `ALTER ROLE ${role} CONNECTION LIMIT -1`);
      expect(await answered).toBe(9);

      // Read-only (a primary demoted under its connections): the write ran nothing and is asked again
      // on a new connection, which finds the new primary.
      await query(adminUrl, `ALTER ROLE ${role} SET default_transaction_read_only = on`);
      await mine.pool.end();
      const again = createDb(asRole.toString(), 2);
      try {
        const before = await count();
        const refused = await failure(again.db.execute(sql`INSERT INTO writes DEFAULT VALUES`));
        expect(pgError(refused).code).toBe('25006');
        const write = ridingOverFailover(again.db, 20_000)
          .execute(sql`INSERT INTO writes DEFAULT VALUES`)
          .then(() => null);
        await front.attempts(2);
        await query(adminUrl, `ALTER ROLE ${role} RESET default_transaction_read_only`);
        await write;
        expect(await count()).toBe(before + 1);
      } finally {
        await again.pool.end();
      }
    } finally {
      await mine.pool.end().catch(() => {});
      await query(directUrl(), `DROP OWNED BY ${role}`);
      await query(adminUrl, `DROP ROLE ${role}`);
    }
  });
});

// drizzle's own db.transaction sends BEGIN before the block that gives its connection back
// (drizzle-orm#6023): a BEGIN that failed kept its connection checked out for good, and the worker's
// `pool.end()` then waited for ever as it stopped. createDb's transactions give it back on every path.
describe('a transaction of the plain pool gives its connection back whatever happens', () => {
  /** A pool of one connection, warmed: a connection kept would leave nothing for the next statement. */
  async function onePool() {
    const one = createDb(url, 1);
    await one.db.execute(sql`SELECT 1`);
    return one;
  }
  /** The next statement on the pool, answered within 5 s or said to have waited for a connection kept. */
  const nextAnswers = (one: ReturnType<typeof createDb>) =>
    Promise.race([
      one.db.execute<{ v: number }>(sql`SELECT 7 AS v`).then((r) => r.rows[0]!.v),
      new Promise((r) => setTimeout(() => r('waited 5 s: the connection was never given back'), 5000)),
    ]);

  it('a BEGIN lost with its connection: the transaction fails with the loss, runs nothing, and the pool ends', async () => {
    const one = await onePool();
    try {
      const before = await count();
      let ran = false;
      const done = failure(
        one.db.transaction(async (tx) => {
          ran = true;
          await tx.execute(sql`INSERT INTO writes DEFAULT VALUES`);
        }),
      );
      // Before the BEGIN is written (it goes in a later turn): the front's end of every session closes.
      front.lose();
      front.open = true;
      expect(isDatabaseUnavailable(await done)).toBe(true);
      expect(ran).toBe(false);
      expect(one.pool.totalCount - one.pool.idleCount).toBe(0);
      expect(await nextAnswers(one)).toBe(7);
      expect(await count()).toBe(before);
    } finally {
      await one.pool.end();
    }
  });

  it('a BEGIN the server refuses: the error is the BEGIN’s, and the connection serves the next statement', async () => {
    const one = await onePool();
    try {
      const err = await failure(one.db.transaction(async () => {}, { isolationLevel: 'no such level' as never }));
      expect((pgCause(err) as Error).message).toMatch(/syntax error/);
      expect(one.pool.totalCount - one.pool.idleCount).toBe(0);
      expect(await nextAnswers(one)).toBe(7);
    } finally {
      await one.pool.end();
    }
  });

  it('a transaction lost mid-way: nothing of it stays, its connection is closed, the next one commits', async () => {
    const one = await onePool();
    try {
      const before = await count();
      const text = 'SELECT pg_sleep(0.31)';
      const done = failure(
        one.db.transaction(async (tx) => {
          await tx.execute(sql`INSERT INTO writes DEFAULT VALUES`);
          await tx.execute(sql.raw(text));
        }),
      );
      await runningBackend(text);
      front.lose();
      front.open = true;
      expect(isDatabaseUnavailable(await done)).toBe(true);
      expect(one.pool.totalCount - one.pool.idleCount).toBe(0);
      await one.db.transaction(async (tx) => {
        await tx.execute(sql`INSERT INTO writes DEFAULT VALUES`);
        // A savepoint inside it, as drizzle's nested transactions make.
        await tx.transaction(async (inner) => inner.execute(sql`SELECT 1`));
      });
      expect(await count()).toBe(before + 1);
    } finally {
      await one.pool.end();
    }
  });
});
