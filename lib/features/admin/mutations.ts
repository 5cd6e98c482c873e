// Inventory writes from the console. Each one validates, writes and audits in one transaction;
// the server actions in app/ are thin wrappers over these, and the API (later) calls them too.
import { pgError } from '@/db/pg-error';
import { eq, inArray } from 'drizzle-orm';
import { getTableColumns, sql } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import type { Db, Queries } from '@/db/client';
import { diffChanges, writeAudit, type AuditInput } from '@/lib/engine/write-audit';
import { demand, type Actor } from '@/lib/engine/access';
import { environments } from '@/db/schema';
import type { Role } from '@/db/types';
import { permissionFor, writeScope, type EditableModel, type Model } from './define-admin';
import type { FormField } from './form-fields';
import { collectForDelete } from './collect';
import { idOf, labelsFor, selectFrom } from './list-query';
import { valueText } from './text';

export type SaveResult = { ok: true; id: number; label: string } | { ok: false; fieldErrors: Record<string, string>; formError?: string };

export async function environmentOf(db: Queries, def: Model, id: number): Promise<number | null> {
  if (!def.environmentSql) return null;
  const [row] = await selectFrom(db, def, { env: sql<number | null>`${def.environmentSql}` }).where(eq(def.id, id));
  return row?.env ?? null;
}

/** A save refused by a check made inside its transaction: rolled back, answered as form errors. */
class RefusedSave extends Error {
  constructor(readonly fieldErrors: Record<string, string>) {
    super('refused');
  }
}

async function environmentName(db: Queries, id: number | null): Promise<string> {
  if (id === null) return 'no environment';
  const [e] = await db.select({ name: environments.name }).from(environments).where(eq(environments.id, id));
  return e?.name ?? `environment #${id}`;
}

/** A row the object refers to through one of its fields, found before the write. */
interface Reference {
  field: FormField<Model>;
  target: Model;
  id: number;
  label: string;
}

/**
 * The rows the object refers to (each field that names the model it references), looked up once,
 * before the write: those that do not exist are field errors ("There is no herd with id 9."), which
 * the write's foreign key would otherwise refuse without saying which field.
 */
async function referencedRows(
  tx: Queries,
  def: EditableModel,
  values: Record<string, unknown>,
): Promise<Reference[] | Record<string, string>> {
  const found: Reference[] = [];
  const missing: Record<string, string> = {};
  for (const field of def.form.fields) {
    const id = values[field.name];
    if (!field.references || typeof id !== 'number') continue;
    const target = field.references();
    const [row] = await labelsFor(tx, target, [id]);
    if (row) found.push({ field, target, id, label: row.label });
    else missing[field.name] = `There is no ${target.label} with id ${id}.`;
  }
  return Object.keys(missing).length ? missing : found;
}

/**
 * For each referenced row: the actor needs `need` in its environment (AccessDenied otherwise), and the
 * model's `sameEnvironment` fields must be in the object's own environment. Field errors, or null.
 */
async function checkReferences(
  tx: Queries,
  def: EditableModel,
  refs: Reference[],
  envAfter: number | null,
  actor: Actor,
  need: Role,
  verb: string,
): Promise<Record<string, string> | null> {
  const errors: Record<string, string> = {};
  for (const { field, target, id, label } of refs) {
    const env = await environmentOf(tx, target, id);
    // A shared catalogue (parameter groups): whoever may change the referring object may choose any.
    if (!target.referableByAll || env !== null)
      await demand(tx, actor.access, need, `${verb} this ${def.label} with ${field.label.toLowerCase()} ${label}`, [env]);
    if (def.sameEnvironment?.includes(field.name) && target.environmentSql && env !== envAfter) {
      errors[field.name] =
        `${label} is in ${await environmentName(tx, env)}, and this ${def.label} in ${await environmentName(tx, envAfter)}: they must be in one environment.`;
    }
  }
  return Object.keys(errors).length ? errors : null;
}

/** The table's columns for the form's fields: the form is derived from the table, so each is one. */
function formColumns(def: EditableModel): Record<string, PgColumn> {
  const columns: Record<string, PgColumn> = getTableColumns(def.table);
  const out: Record<string, PgColumn> = {};
  for (const { name } of def.form.fields) {
    const col = columns[name];
    if (!col) throw new Error(`${def.name}: form field ${name} is not a column of its table`);
    out[name] = col;
  }
  return out;
}

/** A column's value default as text ('' where it has none, or where SQL computes it). */
function columnDefault(def: EditableModel, name: string): string {
  const d: unknown = getTableColumns(def.table)[name]?.default;
  return typeof d === 'string' || typeof d === 'number' || typeof d === 'boolean' || typeof d === 'bigint' ? String(d) : '';
}

export async function saveObject(db: Db, def: EditableModel, id: number | null, input: unknown, actor: Actor): Promise<SaveResult> {
  const parsed = def.form.schema.safeParse(input);
  if (!parsed.success) {
    const fieldErrors: Record<string, string> = {};
    for (const issue of parsed.error.issues) {
      const k = String(issue.path[0] ?? '');
      if (k && !fieldErrors[k]) fieldErrors[k] = issue.message;
    }
    return { ok: false, fieldErrors };
  }
  const values: Record<string, unknown> = parsed.data;
  try {
    return await db.transaction(async (tx) => {
      const refs = await referencedRows(tx, def, values);
      if (!Array.isArray(refs)) return { ok: false as const, fieldErrors: refs };
      let before: Record<string, unknown> | null = null;
      let savedId: number;
      if (id !== null) {
        const [current] = await tx.select(formColumns(def)).from(def.table).where(eq(def.id, id)).for('update');
        if (!current) return { ok: false as const, fieldErrors: {}, formError: `This ${def.label} no longer exists.` };
        before = current;
        await demand(
          tx,
          actor.access,
          permissionFor(def, 'change'),
          `Changing this ${def.label}`,
          writeScope(def, await environmentOf(tx, def, id)),
        );
        await tx.update(def.table).set(values).where(eq(def.id, id));
        savedId = id;
      } else {
        const [row] = await tx
          .insert(def.table)
          .values(values)
          .returning({ id: sql<number>`${def.id}` });
        if (!row) throw new Error(`INSERT INTO ${def.name} returned no id`);
        savedId = row.id;
      }
      // Where it is now (a new object, or one moved to another environment): the role must hold there too.
      const envAfter = await environmentOf(tx, def, savedId);
      const need = permissionFor(def, id === null ? 'add' : 'change');
      const verb = id === null ? 'Adding' : 'Changing';
      await demand(tx, actor.access, need, `${verb} this ${def.label}`, writeScope(def, envAfter));
      // Every row it refers to, and the model's own rules, as the row now is.
      // Fields only an admin may change (a server's address: where pgherd sends passwords and commands).
      const sensitive =
        id === null ? [] : (def.adminFields ?? []).filter((k) => before && k in values && valueText(before[k]) !== valueText(values[k]));
      if (sensitive.length) await demand(tx, actor.access, 'admin', `Changing ${sensitive.join(', ')} of this ${def.label}`, [envAfter]);
      // Fields an admin alone may give a value, on a new object too (where pgherd connects: a new place
      // it sends its credentials to; a server's cloud identity: what EC2 stops).
      // A value other than the column's own default counts (an instance's role other than 'unknown').
      const adminSet =
        id === null ? (def.adminOnAdd ?? []).filter((k) => k in values && valueText(values[k]) !== columnDefault(def, k)) : [];
      if (adminSet.length) await demand(tx, actor.access, 'admin', `Setting ${adminSet.join(', ')} of a new ${def.label}`, [envAfter]);
      const refused =
        (await checkReferences(tx, def, refs, envAfter, actor, need, verb)) ?? (await def.validate?.(tx, savedId, values, before)) ?? null;
      if (refused) throw new RefusedSave(refused);
      await def.afterSave?.(tx, savedId, values, before, actor);
      const [saved] = await labelsFor(tx, def, [savedId]);
      if (!saved) throw new Error(`${def.label} #${savedId} is not there after its save`);
      const { label } = saved;
      const changes = diffChanges(before, values);
      if (id === null || Object.keys(changes).length) {
        await writeAudit(tx, {
          user: actor,
          remoteAddr: actor.remoteAddr,
          action: `${def.auditAs ?? 'inventory'}.${id === null ? 'create' : 'update'}`,
          objectType: def.name,
          objectId: String(savedId),
          objectLabel: label,
          environmentId: envAfter,
          changes,
        });
      }
      return { ok: true as const, id: savedId, label };
    });
  } catch (err) {
    if (err instanceof RefusedSave) {
      const { '': formError, ...fieldErrors } = err.fieldErrors;
      return { ok: false, fieldErrors, ...(formError ? { formError } : {}) };
    }
    const e = pgError(err);
    if (e.code === '23505') {
      const [field, message] = def.uniqueErrors?.[e.constraint ?? ''] ?? ['', `Another ${def.label} already has these values.`];
      return field ? { ok: false, fieldErrors: { [field]: message } } : { ok: false, fieldErrors: {}, formError: message };
    }
    if (e.code === '23503') return { ok: false, fieldErrors: {}, formError: 'A related object you chose does not exist (any more).' };
    // AccessDenied too (the transaction is rolled back): the console or the API answers it and records it.
    throw err;
  }
}

export interface DeleteResult {
  deleted: number;
  cascaded: number;
}

/** Deletes the objects and what cascades with them, auditing every console-visible object that goes. */
export async function deleteObjects(db: Db, def: EditableModel, ids: number[], actor: Actor): Promise<DeleteResult> {
  if (!ids.length) return { deleted: 0, cascaded: 0 };
  return db.transaction(async (tx) => {
    const txDb = tx;
    // Lock the roots first so that what we audit is what goes.
    const present = (
      await tx
        .select({ id: idOf(def) })
        .from(def.table)
        .where(inArray(def.id, ids))
        .for('update')
    ).map((r) => r.id);
    if (!present.length) return { deleted: 0, cascaded: 0 };
    // What is gone already is not deleted again, nor counted.
    const collected = await collectForDelete(txDb, def, present);
    const [root, ...cascaded] = collected.deleted;
    if (!root) throw new Error('collectForDelete lists the objects themselves first');
    if (collected.protectedBy.length) {
      throw new Error(`cannot delete: ${collected.protectedBy.map((g) => `${g.ids.length} ${g.label}`).join(', ')} still refer to it`);
    }
    const envs = new Map<number, number | null>();
    for (const id of root.ids) envs.set(id, await environmentOf(txDb, def, id));
    await demand(
      txDb,
      actor.access,
      permissionFor(def, 'delete'),
      `Deleting ${def.labelPlural}`,
      [...envs.values()].flatMap((e) => writeScope(def, e)),
    );
    const rootLabels = `${def.label} ${root.items.map((r) => r.label).join(', ')}`.slice(0, 500);
    const entries: AuditInput[] = collected.deleted.flatMap((g) =>
      g.items.map((it): AuditInput => ({
        user: actor,
        remoteAddr: actor.remoteAddr,
        action: g === root ? `${def.auditAs ?? 'inventory'}.delete` : 'inventory.delete_cascade',
        objectType: g.model,
        objectId: String(it.id),
        objectLabel: it.label,
        environmentId: g === root ? (envs.get(it.id) ?? null) : null,
        changes: g === root ? {} : { deletedWith: [null, rootLabels] },
      })),
    );
    await writeAudit(tx, entries);
    await tx.delete(def.table).where(inArray(def.id, root.ids));
    return { deleted: root.ids.length, cascaded: cascaded.reduce((n, g) => n + g.ids.length, 0) };
  });
}
