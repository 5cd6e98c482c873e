// Vacuum freeze (the fix of an `xid_age` or `mxid_age` risk: docs/risks.md): on a herd's primary, VACUUM
// (FREEZE) of a database's oldest tables, oldest first, each whose age is over half the environment's
// warning threshold (so the database ends well under it), at most `maxTables`. The databases are the one
// named, else those the risks say are old on this herd, else the oldest. Schedulable: a rule inside a
// maintenance window runs it in waves across the fleet (docs/rules.md). Each database's age is measured
// before and after, and the outcome says both.
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import { defineHerdAction } from '@/lib/engine/define-action';
import { refuse } from '@/lib/fleet/refusal';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { withInstance } from '@/lib/fleet/pg-access';
import { thresholdsOf } from '@/lib/fleet/risks/thresholds';
import { isPlainText } from '@/lib/adapters/validation/text';
import { asks } from '@/lib/actions/drivers';
import { failed, readingOf, readOn } from './read';

export const vacuumFreezeParams = z
  .object({
    database: z.string().trim().min(1).max(63).refine(isPlainText, 'a database name without control characters').optional(),
    maxTables: z.coerce.number().int().min(1).max(10_000).optional(),
  })
  .strict();

interface TableAge {
  /** Schema-qualified, quoted by Postgres (format('%I.%I')). */
  name: string;
  xidAge: number;
  mxidAge: number;
  bytes: number;
}

interface DatabasePlan {
  name: string;
  xidAge: number;
  mxidAge: number;
  tables: TableAge[];
  /** Tables over the bound beyond maxTables: left for another run. */
  more: number;
}

type Prepared = Map<number, { primary: string; databases: DatabasePlan[] } | { error: string }>;

const AGES = `SELECT datname AS name, age(datfrozenxid)::float8 AS "xidAge", mxid_age(datminmxid)::float8 AS "mxidAge"
  FROM pg_database WHERE datallowconn ORDER BY age(datfrozenxid) DESC`;

/** The tables (their TOAST tables counted in) older than $1 by either age, oldest first. */
const OLDEST = `SELECT format('%I.%I', n.nspname, c.relname) AS name,
    greatest(age(c.relfrozenxid), coalesce(age(t.relfrozenxid), 0))::float8 AS "xidAge",
    greatest(mxid_age(c.relminmxid), coalesce(mxid_age(t.relminmxid), 0))::float8 AS "mxidAge",
    pg_total_relation_size(c.oid)::float8 AS bytes
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
  WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
    AND greatest(age(c.relfrozenxid), coalesce(age(t.relfrozenxid), 0), mxid_age(c.relminmxid), coalesce(mxid_age(t.relminmxid), 0)) > $1
  ORDER BY greatest(age(c.relfrozenxid), coalesce(age(t.relfrozenxid), 0), mxid_age(c.relminmxid), coalesce(mxid_age(t.relminmxid), 0)) DESC`;

const n = (x: number) => Math.round(x).toLocaleString('en-US');

async function readDatabases(
  p: InstanceRef,
  wanted: (ages: { name: string; xidAge: number; mxidAge: number }[]) => string[],
  bound: number,
  maxTables: number,
): Promise<DatabasePlan[] | { error: string }> {
  const ages = await readOn(p, async (c) => (await c.query<{ name: string; xidAge: number; mxidAge: number }>(AGES)).rows);
  if (failed(ages)) return ages;
  const out: DatabasePlan[] = [];
  for (const name of wanted(ages)) {
    const a = ages.find((x) => x.name === name);
    if (!a) return { error: `there is no database ${JSON.stringify(name)} that accepts connections on ${p.label}` };
    const tables = await readOn(p, async (c) => (await c.query<TableAge>(OLDEST, [bound])).rows, name);
    if (failed(tables)) return tables;
    out.push({ ...a, tables: tables.slice(0, maxTables), more: Math.max(0, tables.length - maxTables) });
  }
  return out;
}

export const vacuumFreezeAction = defineHerdAction({
  name: 'vacuum-freeze',
  control: asks(null),
  label: 'Vacuum freeze',
  permission: 'operator',
  dangerous: false,
  // Each database's line, for the target's outcome (all of them, not the last step's alone).
  state: (): { lines: string[] } => ({ lines: [] }),
  params: {
    schema: vacuumFreezeParams,
    fields: [
      {
        name: 'database',
        label: 'Database',
        kind: 'text',
        emptyLabel: 'those the risks name (else the oldest)',
        help: 'The database whose oldest tables are frozen.',
      },
      {
        name: 'maxTables',
        label: 'At most this many tables',
        kind: 'text',
        emptyLabel: '1000',
        help: 'Oldest first; the rest are left for another run (the plan says how many).',
      },
    ],
  },
  prepare: async (herds, params, db): Promise<Prepared> => {
    const out: Prepared = new Map();
    for (const h of herds) {
      const p = h.members.find((m) => m.role === 'primary' && m.state === 'running');
      if (!p) {
        out.set(h.id, { error: 'no running primary' });
        continue;
      }
      const env = await db.execute<{ t: Record<string, unknown> }>(
        sql`SELECT risk_thresholds AS t FROM environments WHERE id = ${h.environmentId}`,
      );
      const t = thresholdsOf(env.rows[0]?.t);
      const named = await db.execute<{ subject: string }>(sql`
        SELECT DISTINCT subject FROM risks WHERE herd_id = ${h.id} AND kind IN ('xid_age', 'mxid_age') ORDER BY subject`);
      // (A database that takes no connection, template0, is autovacuum's to freeze: the risks may name it, this cannot.)
      const wanted = (ages: { name: string }[]) => {
        if (params.database) return [params.database];
        const risky = named.rows.map((r) => r.subject).filter((d) => ages.some((a) => a.name === d));
        return risky.length ? risky : ages.slice(0, 1).map((a) => a.name);
      };
      const bound = Math.floor(Math.min(t.xidAgeWarning, t.mxidAgeWarning) / 2);
      const dbs = await readDatabases(p, wanted, bound, params.maxTables ?? 1000);
      out.set(h.id, failed(dbs) ? dbs : { primary: p.label, databases: dbs });
    }
    return out;
  },
  plan: (h, { prepared }) => {
    const r = readingOf(prepared, h.id);
    if (!r) return refuse('unreachable', `${h.label} was not read`);
    if (failed(r)) return refuse('unreachable', `${h.label}: ${r.error}`);
    const primary = h.members.find((m) => m.label === r.primary);
    if (!primary) return refuse('unreachable', `${h.label}: its primary changed since it was read`);
    const work = r.databases.filter((d) => d.tables.length);
    if (!work.length)
      return refuse(
        'not-applicable',
        `no table of ${r.databases.map((d) => d.name).join(', ')} on ${r.primary} is old enough to need a freeze`,
      );
    return {
      facts: r.databases.map((d) => ({
        label: d.name,
        value: `age ${n(d.xidAge)} (multixacts ${n(d.mxidAge)}); ${String(d.tables.length)} table${d.tables.length === 1 ? '' : 's'} to freeze, oldest ${d.tables
          .slice(0, 3)
          .map((x) => `${x.name} (${n(x.xidAge)})`)
          .join(', ')}${d.more ? `; ${String(d.more)} more left for another run` : ''}`,
      })),
      steps: work.map((d) => ({
        name: `vacuum freeze ${d.name}`,
        does: { kind: 'vacuum.freeze', instance: primary.id, database: d.name, tables: d.tables.map((x) => x.name) },
        says: `on ${primary.label}, database ${d.name}: VACUUM (FREEZE) of its ${String(d.tables.length)} oldest table${d.tables.length === 1 ? '' : 's'}, oldest first (a table dropped since is skipped); its age measured before and after`,
        // A freeze reads every page not yet frozen: hours on a large table.
        timeoutMs: 12 * 3_600_000,
        run: async (x) => {
          const t0 = Date.now();
          const result = await withInstance(
            primary,
            { database: d.name, connectionTimeoutMillis: 5000, statement_timeout: 0, application_name: 'pgherd-vacuum' },
            async (c) => {
              const age = async () =>
                Number(
                  (await c.query<{ a: string }>('SELECT age(datfrozenxid)::text AS a FROM pg_database WHERE datname = current_database()'))
                    .rows[0]?.a ?? 0,
                );
              const before = await age();
              let done = 0;
              const skipped: string[] = [];
              for (const table of d.tables) {
                if (x.signal.aborted) throw new Error('stopped');
                const there = await c.query<{ r: string | null }>('SELECT to_regclass($1)::text AS r', [table.name]);
                if (!there.rows[0]?.r) {
                  skipped.push(table.name);
                  continue;
                }
                // The name as Postgres quoted it (format('%I.%I')) when the plan read it, checked to name a table now.
                await c.query(`VACUUM (FREEZE) ${table.name}`);
                done++;
              }
              return { before, after: await age(), done, skipped };
            },
          );
          const text = `${h.label} ${d.name}: age ${n(result.before)} -> ${n(result.after)}, ${String(result.done)} table${result.done === 1 ? '' : 's'} frozen in ${((Date.now() - t0) / 1000).toFixed(1)} s${result.skipped.length ? `; skipped (gone): ${result.skipped.join(', ')}` : ''}`;
          x.note({ stdout: text });
          x.state.lines.push(text);
          x.deps.outcome?.(x.state.lines.join('; '));
        },
      })),
    };
  },
});
