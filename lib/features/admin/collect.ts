// What goes with an object when it is deleted, read from the schema's own ON DELETE rules
// (Django's Collector): cascades are listed as deleted, SET NULL references as unlinked.
import { inArray, sql } from 'drizzle-orm';
import { getTableConfig, PgTable, type PgColumn } from 'drizzle-orm/pg-core';
import type { Queries } from '@/db/client';
import * as schema from '@/db/schema';
import type { AdminDef } from './define-admin';
import { labelsFor } from './list-query';
import { adminForTable } from './registry';

const tables: PgTable[] = Object.values(schema).filter((t) => t instanceof PgTable);

interface Reference {
  table: PgTable;
  column: PgColumn;
  onDelete: string;
}

function referencesTo(target: PgTable): Reference[] {
  const out: Reference[] = [];
  for (const t of tables) {
    for (const fk of getTableConfig(t).foreignKeys) {
      const ref = fk.reference();
      const [column, ...more] = ref.columns;
      if (ref.foreignTable !== target || !column || more.length) continue;
      out.push({ table: t, column, onDelete: fk.onDelete ?? 'no action' });
    }
  }
  return out;
}

export interface CollectedGroup {
  /** Admin model name when the console shows this kind, else the table name. */
  model: string;
  label: string;
  /** True when the console has pages for these objects. */
  linkable: boolean;
  ids: number[];
  items: { id: number; label: string }[];
}

export interface Collected {
  deleted: CollectedGroup[];
  unlinked: CollectedGroup[];
  /** Rows whose reference would block the delete (ON DELETE NO ACTION / RESTRICT). */
  protectedBy: CollectedGroup[];
}

const ITEM_LIMIT = 200;

async function describe(db: Queries, table: PgTable, ids: number[]): Promise<CollectedGroup> {
  const def = adminForTable(table);
  const name = getTableConfig(table).name;
  if (def) {
    const items = await labelsFor(db, def, ids.slice(0, ITEM_LIMIT));
    return { model: def.name, label: def.labelPlural, linkable: true, ids, items };
  }
  return {
    model: name,
    label: name.replace(/_/g, ' '),
    linkable: false,
    ids,
    items: ids.slice(0, ITEM_LIMIT).map((id) => ({ id, label: `${name} #${id}` })),
  };
}

function idColumn(table: PgTable): PgColumn {
  const col = getTableConfig(table).columns.find((c) => c.primary);
  if (!col) throw new Error(`${getTableConfig(table).name} has no primary key`);
  return col;
}

/** Everything that deleting `ids` of `def` takes with it, breadth first, each row once. */
export async function collectForDelete(db: Queries, def: AdminDef, ids: number[]): Promise<Collected> {
  const seen = new Map<PgTable, Set<number>>([[def.table, new Set(ids)]]);
  const unlinked = new Map<PgTable, Set<number>>();
  const blocked = new Map<PgTable, Set<number>>();
  let frontier: [PgTable, number[]][] = [[def.table, ids]];
  while (frontier.length) {
    const next: [PgTable, number[]][] = [];
    for (const [table, tIds] of frontier) {
      if (!tIds.length) continue;
      for (const ref of referencesTo(table)) {
        const pk = idColumn(ref.table);
        const rows = await db
          .select({ id: sql<number>`${pk}` })
          .from(ref.table)
          .where(inArray(ref.column, tIds));
        const found = rows.map((r) => r.id);
        if (!found.length) continue;
        const bucket = ref.onDelete === 'cascade' ? seen : ref.onDelete === 'set null' ? unlinked : blocked;
        const set = bucket.get(ref.table) ?? new Set<number>();
        const fresh = found.filter((id) => !set.has(id) && !(bucket !== seen && seen.get(ref.table)?.has(id)));
        fresh.forEach((id) => set.add(id));
        bucket.set(ref.table, set);
        if (ref.onDelete === 'cascade' && fresh.length) next.push([ref.table, fresh]);
      }
    }
    frontier = next;
  }
  // A row both cascaded and unlinked is simply deleted.
  for (const [t, set] of unlinked) for (const id of seen.get(t) ?? []) set.delete(id);
  // A herd an open major upgrade holds (as blue or green) stays: its subscriptions, its fence and the names
  // it took follow it, and without it the upgrade could be neither finished nor abandoned. Its upgrade is
  // cleaned up, rolled back or cut over first.
  const herdIds = [...(seen.get(schema.herds) ?? [])];
  if (herdIds.length) {
    const open = await db
      .select({ id: schema.majorUpgrades.id })
      .from(schema.majorUpgrades)
      .where(
        sql`${schema.majorUpgrades.status} IN ('building', 'ready', 'cut-over') AND (${inArray(schema.majorUpgrades.blueHerdId, herdIds)} OR ${inArray(schema.majorUpgrades.greenHerdId, herdIds)})`,
      );
    if (open.length) {
      blocked.set(schema.majorUpgrades, new Set(open.map((r) => r.id)));
      for (const r of open) unlinked.get(schema.majorUpgrades)?.delete(r.id);
    }
  }
  // One after another: a delete collects inside its transaction, whose one connection runs one query at
  // a time anyway (node-postgres queues the rest, and deprecates being handed them at once).
  const groups = async (m: Map<PgTable, Set<number>>, skipRoot: boolean) => {
    const out: Awaited<ReturnType<typeof describe>>[] = [];
    for (const [t, s] of m.entries()) {
      if (!s.size || (skipRoot && t === def.table)) continue;
      out.push(
        await describe(
          db,
          t,
          [...s].sort((a, b) => a - b),
        ),
      );
    }
    return out;
  };
  return {
    deleted: [await describe(db, def.table, ids), ...(await groups(seen, true))],
    unlinked: await groups(unlinked, false),
    protectedBy: await groups(blocked, false),
  };
}

export const _forTests = { referencesTo };
