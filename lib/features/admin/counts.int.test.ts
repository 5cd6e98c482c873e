// The counts the database keeps for the instances changelist (instance_counts, the instances' copies of
// their herd's environment and server's site, instance type and zone): exact after every kind of write, concurrent ones
// included, and the changelist reads the same totals and facets from them as from a scan.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedScale } from '@/lib/bench/seed-scale';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { waitFor } from '@/lib/testing/wait';
import { SYSTEM_ACCESS, type Access } from '@/lib/engine/access';
import { parseListParams } from './list-params';
import { changeList } from './list-query';
import { getAdmin } from './registry';

let t: TestDb;
let pool: pg.Pool;
const def = getAdmin('instances')!;

beforeAll(async () => {
  t = await freshDatabase();
  pool = new pg.Pool({ connectionString: t.url, max: 8 });
  // pool.end() resolves before its sockets close, and the database is then dropped WITH (FORCE): a
  // backend still closing is terminated (57P01), which must not surface as an unhandled error.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  // 4 environments, 10 herds each, 4 members: 160 instances.
  await seedScale(t.db, { environments: 4, herdsPerEnvironment: 10, membersPerHerd: 4 });
});
afterAll(async () => {
  await ifAssigned(pool)?.end();
  await ifAssigned(t)?.close();
});

type Cell = {
  environment_id: number;
  role: string;
  state: string;
  pg_version: number;
  site: string;
  instance_type: string;
  zone: string;
  n: number;
};
const byCell = (a: Cell, b: Cell) =>
  a.environment_id - b.environment_id ||
  a.role.localeCompare(b.role) ||
  a.state.localeCompare(b.state) ||
  a.pg_version - b.pg_version ||
  a.site.localeCompare(b.site) ||
  a.instance_type.localeCompare(b.instance_type) ||
  a.zone.localeCompare(b.zone);

/** What the kept counts say, and the truth: instances counted through their herds and servers, not their copies. */
async function keptAndTrue() {
  const { rows: kept } = await pool.query<Cell>(
    `SELECT environment_id, role::text, state::text, pg_version, site, instance_type, zone, sum(n)::int AS n FROM instance_counts
     GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING sum(n) <> 0`,
  );
  const { rows: truth } = await pool.query<Cell>(
    `SELECT h.environment_id, i.role::text, i.state::text, i.pg_version, s.site,
            coalesce(s.cloud_instance_type, '') AS instance_type, coalesce(s.cloud_availability_zone, '') AS zone, count(*)::int AS n
     FROM instances i JOIN herds h ON h.id = i.herd_id JOIN servers s ON s.id = i.server_id GROUP BY 1, 2, 3, 4, 5, 6, 7`,
  );
  const { rows: strays } = await pool.query(
    `SELECT i.id FROM instances i JOIN herds h ON h.id = i.herd_id JOIN servers s ON s.id = i.server_id
     WHERE i.environment_id <> h.environment_id OR i.site <> s.site
        OR i.instance_type <> coalesce(s.cloud_instance_type, '') OR i.zone <> coalesce(s.cloud_availability_zone, '')`,
  );
  return { kept: kept.sort(byCell), truth: truth.sort(byCell), strays };
}

async function expectExact() {
  const { kept, truth, strays } = await keptAndTrue();
  expect(strays, 'instances whose environment or site copy is not their herd’s or server’s').toEqual([]);
  expect(kept).toEqual(truth);
}

const one = async <T extends pg.QueryResultRow>(text: string, values: unknown[] = []) => (await pool.query<T>(text, values)).rows[0]!;
const randomOf = async (table: string) => (await one<{ id: number }>(`SELECT id FROM ${table} ORDER BY random() LIMIT 1`)).id;

describe('kept instance counts', () => {
  it('are exact after a seed, and after each kind of write: insert, update, move, delete, cascade, truncate-free', async () => {
    await expectExact();
    const herd = await randomOf('herds');
    const server = await one<{ id: number }>(
      `INSERT INTO servers (hostname, environment_id, site) SELECT 'extra-1', environment_id, 'zrh1' FROM herds WHERE id = $1 RETURNING id`,
      [herd],
    );
    // The application writes a wrong environment and site: the database keeps the herd's and server's.
    await pool.query(
      `INSERT INTO instances (herd_id, server_id, port, environment_id, site, instance_type) VALUES ($1, $2, 5433, 9999, 'nowhere', 'x9.huge')`,
      [herd, server.id],
    );
    await expectExact();
    await pool.query(
      `UPDATE instances SET role = 'replica', state = 'unreachable' WHERE id IN (SELECT id FROM instances ORDER BY id LIMIT 7)`,
    );
    // One counted column at a time: a state alone, a version alone.
    await pool.query(
      `UPDATE instances SET state = 'stopped' WHERE id IN (SELECT id FROM instances WHERE state = 'running' ORDER BY id DESC LIMIT 4)`,
    );
    await pool.query(
      `UPDATE instances SET pg_version = 16 WHERE id IN (SELECT id FROM instances WHERE pg_version <> 16 ORDER BY id LIMIT 4)`,
    );
    await pool.query(
      `UPDATE instances SET environment_id = 4242, site = 'mars', zone = 'mars-1a' WHERE id IN (SELECT id FROM instances ORDER BY id DESC LIMIT 3)`,
    );
    await expectExact();
    // A herd moves to another environment, a server to another site, an instance to another herd.
    const other = await one<{ id: number }>(
      `SELECT id FROM environments WHERE id <> (SELECT environment_id FROM herds WHERE id = $1) LIMIT 1`,
      [herd],
    );
    await pool.query(`UPDATE herds SET environment_id = $2 WHERE id = $1`, [herd, other.id]);
    await pool.query(`UPDATE servers SET site = 'osl1' WHERE id = $1`, [server.id]);
    // Discovery (or a resize) gives it an EC2 type and zone, then another type.
    await pool.query(`UPDATE servers SET cloud_instance_type = 'm6i.large', cloud_availability_zone = 'eu-west-1a' WHERE id = $1`, [
      server.id,
    ]);
    await expectExact();
    await pool.query(`UPDATE servers SET cloud_instance_type = 'r6i.xlarge' WHERE id = $1`, [server.id]);
    await pool.query(`UPDATE instances SET herd_id = (SELECT id FROM herds WHERE id <> $1 ORDER BY id LIMIT 1) WHERE server_id = $2`, [
      herd,
      server.id,
    ]);
    await expectExact();
    // Deleted one by one, and by cascade: a server, a herd, a whole environment.
    await pool.query(`DELETE FROM instances WHERE id IN (SELECT id FROM instances ORDER BY id LIMIT 5)`);
    await pool.query(`DELETE FROM servers WHERE id = $1`, [server.id]);
    await pool.query(`DELETE FROM herds WHERE id = $1`, [herd]);
    await pool.query(`DELETE FROM environments WHERE id = $1`, [other.id]);
    await expectExact();
    // Folding the journal changes no sum, and leaves one row a cell.
    const before = await keptAndTrue();
    await pool.query('SELECT pgherd_compact_instance_counts()');
    await expectExact();
    const { cells, rows } = await one<{ cells: number; rows: number }>(
      `SELECT count(DISTINCT (environment_id, role, state, pg_version, site, instance_type, zone))::int AS cells, count(*)::int AS rows FROM instance_counts`,
    );
    expect(rows).toBe(cells);
    expect((await keptAndTrue()).kept).toEqual(before.kept);
  });

  /**
   * A transaction adds an instance (reading its herd's environment and its server's site) and has not
   * committed when the herd or the server moves: the move must wait for it, then move that instance too.
   */
  async function raceMoveAgainstAdd(name: string, move: (mover: pg.PoolClient, herd: number, server: number) => Promise<unknown>) {
    const herd = await randomOf('herds');
    const adder = await pool.connect();
    const mover = await pool.connect();
    try {
      const { rows } = await pool.query<{ id: number }>(
        `INSERT INTO servers (hostname, environment_id, site) SELECT $2, environment_id, 'fra1' FROM herds WHERE id = $1 RETURNING id`,
        [herd, name],
      );
      const server = rows[0]!.id;
      await adder.query('BEGIN');
      await adder.query(`INSERT INTO instances (herd_id, server_id, port) VALUES ($1, $2, 5432)`, [herd, server]);
      const moverPid = (await mover.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const moved = { done: false };
      const moving = move(mover, herd, server).then(() => {
        moved.done = true;
      });
      await waitFor(
        'the move waiting for a lock',
        async () =>
          moved.done ||
          (await pool.query(`SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'`, [moverPid])).rowCount! > 0,
      );
      expect(moved.done, 'the move waited for the transaction that added an instance').toBe(false);
      await adder.query('COMMIT');
      await moving;
    } finally {
      adder.release();
      mover.release();
    }
    await expectExact();
  }

  it('a herd that moves to another environment while a transaction adds an instance to it waits, then moves that instance too', async () => {
    await raceMoveAgainstAdd('racer-herd', (mover, herd) =>
      mover.query(
        `UPDATE herds SET environment_id = (SELECT id FROM environments WHERE id <> herds.environment_id ORDER BY id LIMIT 1) WHERE id = $1`,
        [herd],
      ),
    );
  });

  it('a server that moves to another site while a transaction adds an instance on it waits, then moves that instance too', async () => {
    await raceMoveAgainstAdd('racer-server', (mover, _herd, server) =>
      mover.query(`UPDATE servers SET site = 'zrh9' WHERE id = $1`, [server]),
    );
  });

  it('stay exact under concurrent writers of every kind, moves and folds included', async () => {
    const until = Date.now() + 4000;
    const failures = { deadlocks: 0, other: [] as string[] };
    const rnd = (n: number) => Math.floor(Math.random() * n);
    let serial = 0;
    const moves: (() => Promise<unknown>)[] = [
      // The refresher and the agents: roles and states, one instance or many.
      () =>
        pool.query(
          `UPDATE instances SET state = (ARRAY['running','stopped','unreachable'])[1 + floor(random() * 3)]::instance_state WHERE id = (SELECT id FROM instances ORDER BY random() LIMIT 1)`,
        ),
      () =>
        pool.query(
          `UPDATE instances SET role = CASE WHEN role = 'primary' THEN 'replica' ELSE 'primary' END::instance_role WHERE herd_id = (SELECT id FROM herds ORDER BY random() LIMIT 1)`,
        ),
      () =>
        pool.query(
          `UPDATE instances SET lag_bytes = floor(random() * 1000) WHERE id IN (SELECT id FROM instances ORDER BY random() LIMIT 20)`,
        ),
      // Discovery: a new server and instance in a random herd, written the way the ingest writes (upsert).
      async () => {
        const k = ++serial;
        await pool.query(
          `WITH h AS (SELECT id, environment_id FROM herds ORDER BY random() LIMIT 1),
                s AS (INSERT INTO servers (hostname, environment_id, site) SELECT 'c-' || $1, environment_id, (ARRAY['fra1','ams1','zrh1'])[1 + $1::int % 3] FROM h RETURNING id)
           INSERT INTO instances AS i (herd_id, server_id, port, pg_version, role, state)
           SELECT h.id, s.id, 5432, (ARRAY[14, 15, 16])[1 + $1::int % 3], 'replica', 'running' FROM h, s
           ON CONFLICT (server_id, port) DO UPDATE SET herd_id = excluded.herd_id, state = 'running'`,
          [k],
        );
      },
      () => pool.query(`DELETE FROM instances WHERE id = (SELECT id FROM instances ORDER BY random() LIMIT 1)`),
      // An admin moves a herd, a server's site, an instance to another herd.
      () =>
        pool.query(
          `UPDATE herds SET environment_id = (SELECT id FROM environments ORDER BY random() LIMIT 1) WHERE id = (SELECT id FROM herds ORDER BY random() LIMIT 1)`,
        ),
      () =>
        pool.query(
          `UPDATE servers SET site = (ARRAY['fra1','fra2','ams1','lon1','zrh1'])[1 + floor(random() * 5)] WHERE id = (SELECT id FROM servers ORDER BY random() LIMIT 1)`,
        ),
      () =>
        pool.query(
          `UPDATE instances SET herd_id = (SELECT id FROM herds ORDER BY random() LIMIT 1) WHERE id = (SELECT id FROM instances ORDER BY random() LIMIT 1)`,
        ),
      // EC2 discovery, or a resize: a server's instance type and zone.
      () =>
        pool.query(
          `UPDATE servers SET cloud_instance_type = (ARRAY['m6i.large','r6i.xlarge',NULL])[1 + floor(random() * 3)],
                              cloud_availability_zone = (ARRAY['eu-west-1a','eu-west-1b'])[1 + floor(random() * 2)]
           WHERE id = (SELECT id FROM servers ORDER BY random() LIMIT 1)`,
        ),
      // Several writes in one transaction, some of them rolled back.
      async () => {
        const c = await pool.connect();
        try {
          await c.query('BEGIN');
          await c.query(`UPDATE instances SET state = 'stopped' WHERE id IN (SELECT id FROM instances ORDER BY random() LIMIT 3)`);
          await c.query(`DELETE FROM instances WHERE id = (SELECT id FROM instances ORDER BY random() LIMIT 1)`);
          await c.query(rnd(2) ? 'COMMIT' : 'ROLLBACK');
        } catch (err) {
          await c.query('ROLLBACK').catch(() => {});
          throw err;
        } finally {
          c.release();
        }
      },
      () => pool.query('SELECT pgherd_compact_instance_counts()'),
    ];
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        while (Date.now() < until) {
          await moves[rnd(moves.length)]!().catch((err: unknown) => {
            // Two writers that wait on each other: Postgres stops one, which changed nothing.
            if (err instanceof pg.DatabaseError && err.code === '40P01') failures.deadlocks++;
            else failures.other.push(err instanceof Error ? err.message : JSON.stringify(err));
          });
        }
      }),
    );
    expect(failures.other).toEqual([]);
    await expectExact();
  }, 30_000);

  it('the changelist reads the same totals and facets from them as from a scan, for every filter and scope', async () => {
    const scan = { ...def, counts: undefined };
    const [e1, e2] = (await pool.query<{ id: number }>('SELECT id FROM environments ORDER BY id LIMIT 2')).rows.map((r) => String(r.id));
    const narrow: Access = { ...SYSTEM_ACCESS, superuser: false, global: null, byEnvironment: new Map([[Number(e1), 'viewer']]) };
    const cases: [Record<string, string>, Access][] = [
      [{}, SYSTEM_ACCESS],
      [{ role: 'replica' }, SYSTEM_ACCESS],
      [{ environment: e1!, state: 'running', sort: '-lag' }, SYSTEM_ACCESS],
      [{ site: 'fra1', version: '15' }, SYSTEM_ACCESS],
      [{ instanceType: 'm6i.large' }, SYSTEM_ACCESS],
      [{ zone: 'eu-west-1b', role: 'primary' }, SYSTEM_ACCESS],
      [{ environment: e2! }, narrow],
      [{}, narrow],
    ];
    for (const [raw, access] of cases) {
      const kept = await changeList(t.db, def, parseListParams(def, raw, access));
      const scanned = await changeList(t.db, scan, parseListParams(scan, raw, access));
      expect(kept.total, JSON.stringify(raw)).toBe(scanned.total);
      expect(kept.facets, JSON.stringify(raw)).toEqual(scanned.facets);
      expect(kept.rows.map((r) => r.__id)).toEqual(scanned.rows.map((r) => r.__id));
    }
  });

  it('a page read from the end is the same page as read from the start', async () => {
    const total = (await one<{ n: number }>('SELECT count(*)::int AS n FROM instances')).n;
    const per = 10;
    const pages = Math.ceil(total / per);
    for (const sort of ['-lag', 'server', '-state,lag']) {
      const all: number[] = [];
      for (let page = 1; page <= pages; page++) {
        const list = await changeList(t.db, def, parseListParams(def, { sort, per: String(per), page: String(page) }, SYSTEM_ACCESS));
        all.push(...list.rows.map((r) => r.__id));
      }
      // Every instance once, in the order one query over all of them gives.
      const everything = await changeList(t.db, def, parseListParams(def, { sort, per: '500' }, SYSTEM_ACCESS));
      expect(all, sort).toEqual(everything.rows.map((r) => r.__id));
    }
  });

  it('a search finds its matches field by field, and answers as the plain search does', async () => {
    for (const q of ['db00', 'herd-0001', 'env-02', 'example.com', '%', 'no such thing']) {
      const list = await changeList(t.db, def, parseListParams(def, { q, per: '500' }, SYSTEM_ACCESS));
      const { rows } = await pool.query<{ id: number }>(
        `SELECT i.id FROM instances i JOIN herds h ON h.id = i.herd_id JOIN environments e ON e.id = h.environment_id JOIN servers s ON s.id = i.server_id
         WHERE s.hostname ILIKE $1 OR h.name ILIKE $1 OR e.name ILIKE $1`,
        [`%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`],
      );
      expect(list.total, q).toBe(rows.length);
      expect(
        list.rows.map((r) => r.__id).sort((a, b) => a - b),
        q,
      ).toEqual(rows.map((r) => r.id).sort((a, b) => a - b));
    }
  });
});
