import { PgDialect } from 'drizzle-orm/pg-core';
import { describe, expect, it } from 'vitest';
import { parseListParams } from './list-params';
import { likeContains, orderSql, whereSql } from './list-sql';
import { instancesAdmin } from './models/instances.admin';
import { sql } from 'drizzle-orm';
import { SYSTEM_ACCESS } from '@/lib/engine/access';

const def = instancesAdmin;
const dialect = new PgDialect();
const render = (s: ReturnType<typeof whereSql>) => (s ? dialect.sqlToQuery(s) : null);

describe('whereSql', () => {
  it('is empty without search or filters', () => {
    expect(whereSql(def, parseListParams(def, {}, SYSTEM_ACCESS))).toBeUndefined();
  });

  it('binds every filter value as a parameter, typed by its filter kind', () => {
    const q = render(
      whereSql(def, parseListParams(def, { environment: '2', herd: '7', role: 'replica', version: '15', site: "dc'east" }, SYSTEM_ACCESS)),
    );
    expect(q!.sql).toBe(
      '("instances"."environment_id" = $1 and "instances"."herd_id" = $2 and "instances"."role" = $3 and "instances"."pg_version" = $4 and "instances"."site" = $5)',
    );
    expect(q!.params).toEqual([2, 7, 'replica', 15, "dc'east"]);
  });

  it('searches every search field with the user text as a literal substring', () => {
    const q = render(whereSql(def, parseListParams(def, { q: "50%_off\\'; --" }, SYSTEM_ACCESS)));
    expect(q!.sql).toBe(
      '(("servers"."hostname")::text ilike $1 or ("herds"."name")::text ilike $2 or ("environments"."name")::text ilike $3)',
    );
    expect(q!.params).toEqual(Array(3).fill("%50\\%\\_off\\\\'; --%"));
  });

  it("bounds every query by the user's environments, whatever the filters say", () => {
    const q = render(whereSql(def, { q: '', filters: { environment: '9' }, scope: [2, 5] }));
    expect(q!.sql).toBe('("instances"."environment_id" in ($1, $2) and "instances"."environment_id" = $3)');
    expect(q!.params).toEqual([2, 5, 9]);
    // No role anywhere: nothing at all; a model without an environment: only global roles see it.
    expect(render(whereSql(def, { q: '', filters: {}, scope: [] }))!.sql).toBe('false');
    expect(render(whereSql({ ...def, environmentSql: undefined }, { q: '', filters: {}, scope: [2] }))!.sql).toBe('false');
  });

  it('can leave one filter out, for that filter\u2019s own counts', () => {
    const q = render(whereSql(def, parseListParams(def, { role: 'replica', state: 'running' }, SYSTEM_ACCESS), 'role'));
    expect(q!.sql).toBe('"instances"."state" = $1');
  });
});

describe('orderSql', () => {
  it('orders by each sort key, empty values smallest, and the id last', () => {
    const parts = orderSql(def, parseListParams(def, { sort: '-lag,upstream' }, SYSTEM_ACCESS));
    const q = dialect.sqlToQuery(sql.join(parts, sql`, `));
    expect(q.sql).toBe(
      '"instances"."lag_bytes" desc NULLS LAST, "upstream_server"."hostname" || \':\' || "upstream"."port" asc NULLS FIRST, "instances"."id" asc',
    );
  });

  it('leaves the NULLS clause off NOT NULL columns, so that their indexes serve both directions', () => {
    const q = dialect.sqlToQuery(sql.join(orderSql(def, parseListParams(def, { sort: '-server,port' }, SYSTEM_ACCESS)), sql`, `));
    expect(q.sql).toBe('"servers"."hostname" desc, "instances"."port" asc, "instances"."id" asc');
  });
});

describe('likeContains', () => {
  it('escapes LIKE metacharacters', () => {
    expect(likeContains('a%b_c\\d')).toBe('%a\\%b\\_c\\\\d%');
  });
});
