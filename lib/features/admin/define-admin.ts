// One typed declaration per model gives the changelist, filters, search, forms, delete and history.
// A model is one file in lib/features/admin/models, listed in registry.ts.
import { Column, is, type SQL } from 'drizzle-orm';
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core';
import { MAX_ID, maxIdOfType } from '@/lib/adapters/validation/ids';
import type { Role } from '@/db/types';
import type { ModelForm } from './form-fields';
import type { Db, Queries } from '@/db/client';
import type { Actor } from '@/lib/engine/access';

/** A column, or an SQL expression over the model's table and joins. */
export type Expr = SQL | PgColumn;

/** The largest id an id column holds (a bigint one's is MAX_BIG_ID); an expression is taken for an integer. */
export const maxIdOf = (e: Expr): number => (is(e, Column) ? maxIdOfType(e.getSQLType()) : MAX_ID);

export type Permission = 'view' | 'add' | 'change' | 'delete';

/** Unless a model says otherwise: viewers look, operators add and change, admins delete. */
const DEFAULT_PERMISSIONS: Record<Permission, Role> = { view: 'viewer', add: 'operator', change: 'operator', delete: 'admin' };

export type Format = 'text' | 'number' | 'bytes' | 'lsn' | 'seconds' | 'datetime' | 'bool' | 'badge';

export interface ListField {
  label: string;
  sql: Expr;
  /** Default true. Every sortable field must be backed by an index (see db/schema.ts). */
  sortable?: boolean;
  format?: Format;
  /** Sorting by it needs the display-only joins (its SQL reads a display-only joined table). */
  sortNeedsDisplayJoins?: boolean;
  /** Render as a link: to this object's change page, or to a related object whose id is in another field. */
  link?: 'self' | { model: string; idField: string };
}

export type FilterDef =
  | { key: string; label: string; kind: 'choice'; sql: Expr; choices: readonly string[] }
  /** Values drawn from the data (site, version), with counts. */
  | { key: string; label: string; kind: 'values'; sql: Expr; numeric?: boolean }
  /** A foreign key: options are the related rows, labelled; searchable ones render as a search box. */
  | { key: string; label: string; kind: 'relation'; sql: Expr; labelSql: Expr; searchable?: boolean };

export interface Join {
  table: PgTable;
  on: SQL;
  type?: 'inner' | 'left';
  /** A LEFT JOIN that only display fields use: counts and facets leave it out (it cannot change them). */
  displayOnly?: boolean;
}

/**
 * Counts the database keeps for a model (a table such as instance_counts, kept by triggers): the
 * changelist's total and facet counts are read from it, not counted over every row, whenever the list
 * is narrowed only by filters it has (no search, no other filter). Its sums must be exact.
 */
export interface CountsDef {
  table: PgTable;
  /** Joins that give the facets' labels (an environment's name). */
  joins?: Join[];
  /** The count a row stands for (a journal's +n and -n). */
  n: Expr;
  /** Filter key -> its column in the table, and its label when it is a relation. */
  filters: Record<string, { sql: Expr; labelSql?: Expr }>;
  /** The column the user's scope (environment ids) applies to. */
  environment: Expr;
}

/**
 * A panel on an object's change page besides its form, declared by the model; the page draws each
 * kind (app/(console)/admin/[model]/[id]/panels.tsx), without knowing which model asked.
 */
export type Panel =
  /** The line to add to authorized_keys on the server (pgherd's SSH public key). */
  | { kind: 'ssh-public-key' }
  /** Create or rotate the agent token of the object (a server), for those with `role` in its environment. */
  | { kind: 'agent-token'; role: Role; load: (db: Db, id: number) => Promise<{ hasToken: boolean; lastSeen: Date | null }> }
  /** The server's cloud identity as discovery last saw it, and whether AWS can be reached from here. */
  | { kind: 'cloud-identity'; load: (db: Db, id: number) => Promise<CloudIdentity | null> }
  /** The object's lag history (an instance): a chart over the last hour, day or week, from the API's `{path}/{id}/lag`. */
  | { kind: 'lag-history'; path: string };

/** A server's cloud identity (servers' cloud_* columns). */
export interface CloudIdentity {
  provider: string | null;
  region: string | null;
  availabilityZone: string | null;
  instanceId: string | null;
  instanceType: string | null;
  architecture: string | null;
  state: string | null;
  privateAddress: string | null;
  tags: Record<string, string> | null;
  herdTag: string | null;
  seenAt: Date | null;
  goneAt: Date | null;
}

/** A panel above a model's changelist. */
export type ListPanel =
  /** EC2 discovery: why it cannot run here, its last passes, and a button that asks for one. */
  { kind: 'ec2-discovery' };

export interface AdminDef<F extends Record<string, ListField> = Record<string, ListField>, T extends PgTable = PgTable> {
  /** URL slug: /admin/<name>. */
  name: string;
  label: string;
  labelPlural: string;
  table: T;
  id: PgColumn;
  joins?: Join[];
  /** How one object reads in breadcrumbs, delete lists and history. */
  labelSql: Expr;
  /**
   * The environment an object belongs to: recorded with its audit entries, and where the roles that
   * decide who sees and changes it must hold. Objects without one need a global role.
   */
  environmentSql?: Expr;
  /** Which rows a user whose roles hold only in these environments sees, when environmentSql cannot say (an operation spans several). */
  scopeSql?: (environmentIds: number[]) => SQL;
  /**
   * Fields and filters as a user whose roles hold only in these environments reads them, in place of
   * the model's own: a row they see may still span environments they do not (an operation's targets),
   * whose names such a field would list.
   */
  scoped?: (environmentIds: number[]) => { fields?: Partial<Record<string, ListField>>; listFilter?: FilterDef[] };
  /** The audit log's action prefix for its writes: 'inventory' unless set ('access' for role bindings). */
  auditAs?: string;
  /** The role each kind of use needs, in the object's environment. */
  permissions?: Partial<Record<Permission, Role>>;
  /**
   * Adding, changing and deleting need their role globally, not in the object's environment (which
   * still decides who reads it): rules over an environment that its own admins must not lift (approval policies).
   */
  globalWrites?: boolean;
  fields: F;
  listDisplay: (keyof F & string)[];
  listFilter: FilterDef[];
  searchFields: (keyof F & string)[];
  /** Default order, e.g. ['environment', '-lag']; '-' means descending. */
  ordering: ((keyof F & string) | `-${keyof F & string}`)[];
  /** How an object is added and changed; a model without one is read-only (records such as operations: no add, change or delete). */
  form?: ModelForm<Model>;
  /** Panels on an object's page besides its form. */
  panels?: Panel[];
  /** Panels above the changelist (drawn by kind in app/(console)/admin/[model]/list-panels.tsx). */
  listPanels?: ListPanel[];
  /** Unique constraint name -> [form field, message]. */
  uniqueErrors?: Record<string, [string, string]>;
  /** Objects of this kind are created by discovery, not typed in (hides "add"). */
  readOnlyAdd?: boolean;
  /** Where an object's own page is, when it is not the generic change form: '/operations' -> /operations/<id>. */
  objectHref?: string;
  /** Fields whose change needs the admin role in the object's environment (where pgherd connects to, say). */
  adminFields?: string[];
  /** Fields that need the admin role to be given a value on a new object too (a server's address, its cloud identity). */
  adminOnAdd?: string[];
  /**
   * Referenced rows (form fields) that must be in the object's own environment: a server and the
   * instances on it are in one environment, a pooler sits in its herd's.
   */
  sameEnvironment?: string[];
  /**
   * Checks that need the database, run in the save's transaction after the write (so they see the row
   * as saved): field errors (or '' for the form) that refuse the save; nothing is written then.
   */
  validate?: (
    tx: Queries,
    id: number,
    values: Record<string, unknown>,
    /** The form's columns before the change; null for a new object. */
    before: Record<string, unknown> | null,
  ) => Promise<Record<string, string> | null>;
  /**
   * What a save writes besides the row and its audit entry, in its transaction, once every check passed
   * (a parameter group's new version, with its author).
   */
  afterSave?: (
    tx: Queries,
    id: number,
    values: Record<string, unknown>,
    before: Record<string, unknown> | null,
    actor: Actor,
  ) => Promise<void>;
  /**
   * Objects without an environment that whoever may change a referring object may choose (a parameter
   * group for a herd), where otherwise a reference to a global object needs the role globally.
   */
  referableByAll?: boolean;
  /** Counts the database keeps, read in place of a scan where they can answer. */
  counts?: CountsDef;
  /** Bulk actions offered besides delete: each leads to its own confirmation page. */
  actions?: { name: string; label: string; href: string; role: Role }[];
}

/** The model as a user whose roles hold only in `scope` (null: everywhere) reads it (see AdminDef.scoped). */
export function withinScope<M extends AdminDef>(def: M, scope: number[] | null): M {
  if (scope === null || !def.scoped) return def;
  const o = def.scoped(scope);
  const fields = { ...def.fields };
  for (const [k, f] of Object.entries(o.fields ?? {})) if (f && Object.hasOwn(fields, k)) fields[k] = f;
  return { ...def, fields, listFilter: o.listFilter ?? def.listFilter };
}

/** Any model, as the registry and the generic pages hold it. */
export type Model = AdminDef;

/** A model with a form: objects can be added, changed and deleted in the console. */
export type EditableModel = Model & { form: ModelForm<Model> };

export const isEditable = (m: Model): m is EditableModel => m.form !== undefined;

export const permissionFor = (def: Pick<AdminDef, 'permissions'>, p: Permission): Role => def.permissions?.[p] ?? DEFAULT_PERMISSIONS[p];

/** The model's own field of that name: never one inherited from Object (a URL's ?sort=constructor). */
export const ownField = (def: Pick<AdminDef, 'fields'>, key: string): ListField | undefined =>
  Object.hasOwn(def.fields, key) ? def.fields[key] : undefined;

/** A field that listDisplay, searchFields or a sort names: defineAdmin checked they exist. */
export function fieldOf(def: Pick<AdminDef, 'name' | 'fields'>, key: string): ListField {
  const field = ownField(def, key);
  if (!field) throw new Error(`${def.name}: unknown field ${key}`);
  return field;
}

/** Checks the declaration once, at load, and gives it as the registry holds every model. */
export function defineAdmin<F extends Record<string, ListField>, T extends PgTable>(def: AdminDef<F, T>): Model {
  for (const k of [...def.listDisplay, ...def.searchFields]) {
    if (!(k in def.fields)) throw new Error(`${def.name}: unknown field ${k}`);
  }
  const keys = new Set(def.listFilter.map((f) => f.key));
  for (const k of Object.keys(def.counts?.filters ?? {})) {
    if (!keys.has(k)) throw new Error(`${def.name}: counts for unknown filter ${k}`);
  }
  for (const reserved of ['q', 'sort', 'page', 'per', 'all', 'ids', 'saved', 'deleted']) {
    if (keys.has(reserved)) throw new Error(`${def.name}: filter key ${reserved} is reserved`);
  }
  // The field names checked, the model is held like any other (a copy: TypeScript compares it field
  // by field, where it cannot tell the generic declaration's variance).
  return { ...def };
}

/** Where a write's role must hold: the object's environment, or everywhere for a model of global writes. */
export const writeScope = (def: Pick<AdminDef, 'globalWrites'>, environmentId: number | null): (number | null)[] =>
  def.globalWrites ? [null] : [environmentId];
