// A rule's conditions: measured per target when the rule fires, on the live instance, never from the
// inventory's last reading (but the host's load average, which only its agent knows: its last report,
// if recent). A target that does not meet them is skipped with the values measured; one that cannot be
// measured does not meet them (a condition is a guard).
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '@/db/client';
import { loadHerdRefs } from '@/lib/fleet/herd-ref';
import { loadInstancesWithHerds, type InstanceRef } from '@/lib/fleet/instance-ref';
import { observe } from '@/lib/fleet/observe';
import { instanceClient } from '@/lib/fleet/pg-access';

import { CONDITION_METRICS, METRIC_WORDS } from './metrics';

/** A user name pattern: letters, digits and _ . - @, with * for any run of characters. */
const userPattern = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[A-Za-z0-9_.\-@*]+$/, 'a user name pattern: letters, digits, _ . - @ and * (any characters)');

export const conditionSchema = z
  .object({
    metric: z.enum(CONDITION_METRICS),
    op: z.enum(['<', '=', '>']),
    value: z.number().min(0).max(1_000_000_000),
    /** active_connections only: count the sessions of these users (patterns) alone. */
    users: z.array(userPattern).min(1).max(20).optional(),
  })
  .strict()
  .refine((c) => !c.users || c.metric === 'active_connections', { message: 'users narrows active_connections only', path: ['users'] });

export type Condition = z.output<typeof conditionSchema>;
export type Values = Record<string, number | null>;

/** The key a measured value is kept under: the metric, with its users when it has some. */
export const valueKey = (c: Condition) => (c.users ? `${c.metric}[${c.users.join(',')}]` : c.metric);

/** A value that could not be measured meets no condition: a condition is a guard. */
const holds = (c: Condition, v: number | null) => v !== null && (c.op === '<' ? v < c.value : c.op === '>' ? v > c.value : v === c.value);

/** Whether the values meet the conditions (all of them, or any), and the ones that failed, in words. */
export function judge(conditions: Condition[], logic: 'all' | 'any', values: Values): { pass: boolean; failed: string[] } {
  const failed = conditions
    .filter((c) => !holds(c, values[valueKey(c)] ?? null))
    .map(
      (c) =>
        `${METRIC_WORDS[c.metric]}${c.users ? ` of ${c.users.join(', ')}` : ''} is ${shown(values[valueKey(c)] ?? null)}, not ${c.op} ${c.value}`,
    );
  const pass = logic === 'all' ? failed.length === 0 : failed.length < conditions.length;
  return { pass, failed };
}

const shown = (v: number | null) =>
  v === null ? 'unknown (unreachable, or behind by an unknown time)' : String(Math.round(v * 100) / 100);

/** `*` as SQL's `%`, the rest literal. */
const likePattern = (p: string) => p.replace(/[\\%_]/g, (m) => `\\${m}`).replaceAll('*', '%');

async function activeConnections(m: InstanceRef, users: string[] | undefined): Promise<number | null> {
  let c: ReturnType<typeof instanceClient>;
  try {
    // No credentials for the target's environment (PGHERD_PG_CONFIG) is a value that cannot be measured.
    c = instanceClient(
      { host: m.host, port: m.port, serverEnvironment: m.serverEnvironment },
      { connectionTimeoutMillis: 3000, statement_timeout: 3000, query_timeout: 4000, application_name: 'pgherd-rules' },
    );
  } catch {
    return null;
  }
  c.on('error', () => {});
  try {
    await c.connect();
    const { rows } = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid()
          AND ($1::text[] IS NULL OR usename LIKE ANY ($1::text[]))`,
      [users ? users.map(likePattern) : null],
    );
    return rows[0]?.n ?? null;
  } catch {
    return null;
  } finally {
    await c.end().catch(() => {});
  }
}

const lagOf = async (m: InstanceRef): Promise<number | null> => {
  const o = await observe({ host: m.host, port: m.port, serverEnvironment: m.serverEnvironment }, 3000);
  if (!o.reachable) return null;
  // Behind with no replayed transaction to date it by: not known, so not met.
  return o.inRecovery ? (o.replayLagSeconds ?? null) : 0;
};

/**
 * The 1-minute load average of each server, from its agent's last report; null when none reported it,
 * or the report was observed more than three of its intervals ago (five minutes at least, fifteen at
 * most, whatever interval the agent claims): a silent agent's last figure is not the load now.
 */
async function loadAverages(db: Db, serverIds: number[]): Promise<Map<number, number | null>> {
  if (!serverIds.length) return new Map();
  const rows = await db.execute<{ id: number; load: number | null }>(sql`
    SELECT id, CASE WHEN load_average_at > now() - make_interval(secs => least(900, greatest(300, 3 * agent_interval_seconds))) THEN load_average END AS load
    FROM servers WHERE id = ANY(${sql.param(serverIds)}::int[])`);
  return new Map(rows.rows.map((r) => [r.id, r.load]));
}

async function measureOne(
  conditions: Condition[],
  on: InstanceRef,
  herd: InstanceRef[],
  loads: Map<number, number | null>,
): Promise<Values> {
  const values: Values = {};
  for (const c of conditions) {
    const key = valueKey(c);
    if (key in values) continue;
    if (c.metric === 'load_average') values[key] = loads.get(on.serverId) ?? null;
    else if (c.metric === 'lag_seconds') values[key] = await lagOf(on);
    else if (c.metric === 'active_connections') values[key] = await activeConnections(on, c.users);
    else {
      const replicas = herd.filter((m) => m.role === 'replica' && m.state === 'running');
      const lags = await Promise.all(replicas.map(lagOf));
      values[key] = lags.some((l) => l === null) ? null : Math.max(0, ...(lags as number[]));
    }
  }
  return values;
}

/** Runs `fn` over `items`, `width` at a time. */
async function pooled<T, R>(items: T[], width: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      for (let k = next++; k < items.length; k = next++) out[k] = await fn(items[k] as T);
    }),
  );
  return out;
}

/**
 * Each target's values: an instance's own, a herd's on its primary (the herd's worst lag over its
 * replicas either way). 16 targets measured at a time.
 */
export async function measure(db: Db, onHerds: boolean, ids: number[], conditions: Condition[]): Promise<Map<number, Values>> {
  if (!conditions.length) return new Map();
  const wantsLoad = conditions.some((c) => c.metric === 'load_average');
  if (onHerds) {
    const herds = await loadHerdRefs(db, ids);
    const primaryOf = (h: (typeof herds)[number]) => h.members.find((m) => m.role === 'primary') ?? h.members[0];
    const loads = wantsLoad
      ? await loadAverages(
          db,
          herds.flatMap((h) => primaryOf(h)?.serverId ?? []),
        )
      : new Map<number, number | null>();
    const got = await pooled(herds, 16, async (h) => {
      const primary = primaryOf(h);
      if (!primary) return [h.id, Object.fromEntries(conditions.map((c) => [valueKey(c), null]))] as const;
      return [h.id, await measureOne(conditions, primary, h.members, loads)] as const;
    });
    return new Map(got);
  }
  const { refs, members } = await loadInstancesWithHerds(db, ids);
  const loads = wantsLoad
    ? await loadAverages(
        db,
        refs.map((r) => r.serverId),
      )
    : new Map<number, number | null>();
  const got = await pooled(refs, 16, async (r) => [r.id, await measureOne(conditions, r, members.get(r.herdId) ?? [r], loads)] as const);
  return new Map(got);
}
