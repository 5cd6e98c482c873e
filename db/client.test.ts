import net from 'node:net';
import { sql } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import { afterEach, describe, expect, it } from 'vitest';
import { getDb, isDatabaseUnavailable, withParams } from './client';

const dialect = new PgDialect();
const built = (text: string, values: unknown[]) => dialect.sqlToQuery(withParams(text, values));

describe('withParams', () => {
  it('sends what sql`` sends for the same statement: an array as one parameter, a value named twice twice', () => {
    const at = new Date(0);
    const ids = [1, 2];
    expect(built('SELECT $1::timestamptz - $2::interval WHERE a = ANY($3::int[]) AND b > $1::timestamptz', [at, '1 day', ids])).toEqual(
      dialect.sqlToQuery(
        sql`SELECT ${at}::timestamptz - ${'1 day'}::interval WHERE a = ANY(${sql.param(ids)}::int[]) AND b > ${at}::timestamptz`,
      ),
    );
    expect(built('SELECT $2, $1', ['x', [1, 2]])).toMatchObject({ sql: 'SELECT $1, $2', params: [[1, 2], 'x'] });
  });

  it('leaves markers in strings, quoted names and comments alone', () => {
    const text = `SELECT '$1' AS "$1", $1 -- not $2\n/* nor $3 */ FROM t`;
    expect(built(text, [7])).toMatchObject({ sql: text, params: [7] });
  });

  it('refuses a marker without its value, a value no marker uses, and undefined', () => {
    expect(() => built('SELECT $2', [1])).toThrow(/has \$2/);
    expect(() => built('SELECT $1', [1, 2])).toThrow(/uses 1/);
    expect(() => built('SELECT $1', [undefined])).toThrow(/undefined/);
  });
});

describe('getDb', () => {
  const g = globalThis as unknown as { __pgherdDb?: unknown; __pgherdPool?: unknown };
  const env = { ...process.env };
  afterEach(async () => {
    await getDb().$client.end();
    delete g.__pgherdDb;
    delete g.__pgherdPool;
    process.env = { ...env };
  });

  it('gives up on a database address that accepts and never answers (a lost site) after PGHERD_DB_CONNECT_TIMEOUT_MS', async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      process.env.DATABASE_URL = `postgres://pgherd:x@127.0.0.1:${(silent.address() as net.AddressInfo).port}/pgherd`;
      process.env.PGHERD_DB_CONNECT_TIMEOUT_MS = '600';
      const t0 = Date.now();
      const err = await getDb()
        .execute(sql`SELECT 1`)
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(isDatabaseUnavailable(err)).toBe(true);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(550);
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      silent.close();
    }
  });
});
