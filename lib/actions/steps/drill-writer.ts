// A DR drill's synthetic writer: commits numbered rows into a scratch table on whichever member of the
// herd accepts writes, as an application with a retry loop would, and keeps every commit the server
// acknowledged, with when and where. What a drill measures comes from it: the time to the first write
// on the new primary, the longest gap between two acknowledged commits, and (counted on the primary at
// the end) acknowledged commits lost.
import type pg from 'pg';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { instanceClient } from '@/lib/fleet/pg-access';
import { ownName, ownTable } from '@/lib/fleet/own-schema';

export interface Ack {
  seq: number;
  /** Date.now() when the commit was acknowledged. */
  at: number;
  /** The member that acknowledged it. */
  memberId: number;
}

export interface DrillWriter {
  readonly acks: readonly Ack[];
  /** Errors seen (connections lost, writes refused): expected while the primary changes. */
  readonly errors: number;
  stop(): Promise<void>;
}

/**
 * A scratch table's name in pgherd's own schema (qualified): the drill's operation, digits only. Viewers see
 * operation ids, so the name is predictable: it lives where no other role can make it first.
 */
export const scratchTable = (operationId: number) => ownName(`drill_${String(Math.trunc(Math.abs(operationId)))}`);

/** Makes the scratch table on the member that accepts writes, proven pgherd's own; returns its qualified name. */
export async function createScratchTable(members: InstanceRef[], operationId: number): Promise<string> {
  const base = scratchTable(operationId).slice('pgherd.'.length);
  const at = await writable(members);
  if (!at) throw new Error('no member of the herd accepts writes');
  try {
    return await ownTable(at.c, base, 'seq bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp()');
  } finally {
    await at.c.end().catch(() => {});
  }
}

const PAUSE_MS = 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A connection to the member that accepts writes now, or null when none does. */
async function writable(members: InstanceRef[]): Promise<{ c: pg.Client; m: InstanceRef } | null> {
  for (const m of members) {
    let c: pg.Client;
    try {
      c = instanceClient(m, { connectionTimeoutMillis: 1000, query_timeout: 2000, application_name: 'pgherd-dr-drill' });
    } catch {
      continue;
    }
    c.on('error', () => {});
    try {
      await c.connect();
      // pgherd writes as superuser: no name in its statements may resolve to another role's object.
      await c.query('SET search_path = pg_catalog, pg_temp');
      const { rows } = await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
      if (rows[0]?.r === false) return { c, m };
    } catch {
      // not this one
    }
    await c.end().catch(() => {});
  }
  return null;
}

/** Starts writing into `table` (qualified, made by `createScratchTable`) until stopped. */
export function startDrillWriter(members: InstanceRef[], table: string): DrillWriter {
  const acks: Ack[] = [];
  let errors = 0;
  let stopping = false;
  const loop = async () => {
    let at: { c: pg.Client; m: InstanceRef } | null = null;
    for (let seq = 1; !stopping; seq++) {
      at ??= await writable(members);
      if (!at) {
        errors++;
        await sleep(PAUSE_MS);
        continue;
      }
      try {
        await at.c.query(`INSERT INTO ${table} (seq) VALUES ($1)`, [seq]);
        acks.push({ seq, at: Date.now(), memberId: at.m.id });
      } catch {
        // Not acknowledged: it may or may not have committed, and counts neither way.
        errors++;
        await at.c.end().catch(() => {});
        at = null;
      }
      await sleep(PAUSE_MS);
    }
    await at?.c.end().catch(() => {});
  };
  const done = loop();
  return {
    acks,
    get errors() {
      return errors;
    },
    stop: async () => {
      stopping = true;
      await done;
    },
  };
}

/** The longest time between two acknowledged commits (ms), or null with fewer than two. */
export function longestGap(acks: readonly Ack[]): number | null {
  let gap: number | null = null;
  for (let k = 1; k < acks.length; k++) gap = Math.max(gap ?? 0, (acks[k]?.at ?? 0) - (acks[k - 1]?.at ?? 0));
  return gap;
}

/** Runs `sql` on the member that accepts writes now; throws when none does. */
export async function onPrimary<T extends pg.QueryResultRow>(members: InstanceRef[], text: string, values: unknown[] = []): Promise<T[]> {
  const at = await writable(members);
  if (!at) throw new Error('no member of the herd accepts writes');
  try {
    return (await at.c.query<T>(text, values)).rows;
  } finally {
    await at.c.end().catch(() => {});
  }
}
