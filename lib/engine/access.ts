// What a user may do, and where: the roles bound to them and their groups, globally or per
// environment. Read from the database on every request, so a binding removed (or a user disabled)
// takes effect at once, not when a session expires; a directory user's groups and presence are asked of
// the directory again (lib/engine/directory.ts), within its short re-check interval. Superusers (local break-glass accounts) are admin
// everywhere.
import { and, asc, eq, inArray, or, sql } from 'drizzle-orm';
import type { Db, Queries } from '@/db/client';
import { environments, roleBindings, users } from '@/db/schema';
import type { Role } from '@/db/types';
import { writeAudit } from '@/lib/engine/write-audit';
import { standingOf } from '@/lib/engine/directory';

export const ROLES: readonly Role[] = ['viewer', 'operator', 'admin'];
const rank = (r: Role | null | undefined) => (r ? ROLES.indexOf(r) + 1 : 0);
const higher = (a: Role | null, b: Role | null): Role | null => (rank(a) >= rank(b) ? a : b);
/** The higher of a role and one that may be missing. */
const atLeast = (role: Role, other: Role | null | undefined): Role => (other && rank(other) > rank(role) ? other : role);

export interface Access {
  userId: number | null;
  username: string;
  superuser: boolean;
  /** The role held in every environment (null: none). */
  global: Role | null;
  /** Roles bound for one environment, by environment id (each at least as high as `global`). */
  byEnvironment: Map<number, Role>;
  /** Where the request came from, for the audit entry of a refusal. */
  remoteAddr?: string;
  /** Why the user has no access at all, when they are inactive ("is gone from the directory"). */
  inactive?: string;
}

/** For the worker, the lab's seeding, tests and benchmarks: code acting on its own authority. */
export const SYSTEM_ACCESS: Access = { userId: null, username: 'system', superuser: true, global: 'admin', byEnvironment: new Map() };

/** Nobody: a user that is disabled or gone (`inactive` says which). */
export const noAccess = (username: string, userId: number | null = null, inactive?: string): Access => ({
  userId,
  username,
  superuser: false,
  global: null,
  byEnvironment: new Map(),
  ...(inactive ? { inactive } : {}),
});

/** The bindings for a username and its groups (matched without regard to case, as LDAP compares DNs). */
export function bindingsFor(username: string, groups: string[]) {
  return or(
    and(eq(roleBindings.subjectType, 'user'), sql`lower(${roleBindings.subject}) = ${username.toLowerCase()}`),
    groups.length
      ? and(
          eq(roleBindings.subjectType, 'group'),
          inArray(
            sql`lower(${roleBindings.subject})`,
            groups.map((g) => g.toLowerCase()),
          ),
        )
      : sql`false`,
  );
}

export function accessFrom(
  user: { id: number | null; username: string; superuser: boolean },
  bindings: { role: Role; environmentId: number | null }[],
): Access {
  if (user.superuser) return { userId: user.id, username: user.username, superuser: true, global: 'admin', byEnvironment: new Map() };
  let global: Role | null = null;
  for (const b of bindings) if (b.environmentId === null) global = higher(global, b.role);
  const byEnvironment = new Map<number, Role>();
  for (const b of bindings) {
    if (b.environmentId === null) continue;
    byEnvironment.set(b.environmentId, atLeast(atLeast(b.role, byEnvironment.get(b.environmentId)), global));
  }
  return { userId: user.id, username: user.username, superuser: false, global, byEnvironment };
}

/**
 * The user's access now: nothing for a disabled or deleted user, nor for a directory user the directory
 * no longer has (or cannot be asked about); a directory user's groups as the directory has them now.
 */
export async function loadAccess(db: Db, userId: number): Promise<Access> {
  const [u] = await db
    .select({
      id: users.id,
      username: users.username,
      source: users.source,
      isActive: users.isActive,
      superuser: users.isSuperuser,
      groups: users.groups,
    })
    .from(users)
    .where(eq(users.id, userId));
  if (!u) return noAccess(`#${userId}`, userId, 'is no longer a pgherd user');
  const standing = await standingOf(db, u);
  if (!standing.active) return noAccess(u.username, userId, standing.why);
  const rows = u.superuser
    ? []
    : await db
        .select({ role: roleBindings.role, environmentId: roleBindings.environmentId })
        .from(roleBindings)
        .where(bindingsFor(u.username, standing.groups));
  return accessFrom({ id: u.id, username: u.username, superuser: u.superuser }, rows);
}

/** The role held in an environment (null for objects outside any environment: only global roles count). */
export function roleIn(a: Access, environmentId: number | null): Role | null {
  if (environmentId === null) return a.global;
  return higher(a.global, a.byEnvironment.get(environmentId) ?? null);
}

export const can = (a: Access, need: Role, environmentId: number | null) => rank(roleIn(a, environmentId)) >= rank(need);

/** Whether the user holds `need` anywhere at all (a control worth showing). */
export const canSomewhere = (a: Access, need: Role) =>
  rank(a.global) >= rank(need) || [...a.byEnvironment.values()].some((r) => rank(r) >= rank(need));

/** The environments where the user holds `need`: null means all of them (a global role). */
export function environmentsWith(a: Access, need: Role = 'viewer'): number[] | null {
  if (rank(a.global) >= rank(need)) return null;
  return [...a.byEnvironment].filter(([, r]) => rank(r) >= rank(need)).map(([id]) => id);
}

/**
 * The environments the user may know of (holds `need` in), by name: what a page offers to choose from.
 * An environment's name is itself something to see: a staging operator is not shown production's.
 */
export async function visibleEnvironments(db: Queries, a: Access, need: Role = 'viewer'): Promise<{ id: number; name: string }[]> {
  const ids = environmentsWith(a, need);
  if (ids !== null && !ids.length) return [];
  return db
    .select({ id: environments.id, name: environments.name })
    .from(environments)
    .where(ids === null ? undefined : inArray(environments.id, ids))
    .orderBy(asc(environments.name));
}

/** Who asked, as the audit log records a refusal. */
export interface Requester {
  id: number | null;
  username: string;
  remoteAddr?: string;
}

/**
 * Refused for lack of a role: a 403 in the API, the forbidden page or a form's message in the console,
 * a refused target in the worker. Code below those only throws it; they record it (answeringDenial).
 */
export class AccessDenied extends Error {
  /** Who was refused, when the refusing code knows (demand does). */
  constructor(
    message: string,
    readonly who?: Requester,
  ) {
    super(message);
    this.name = 'AccessDenied';
  }
}

/**
 * Throws AccessDenied naming the role missing and where, for every environment among `environmentIds`
 * (null: objects outside any environment) in which the user lacks `need`.
 */
export async function demand(db: Queries, a: Access, need: Role, what: string, environmentIds: (number | null)[]): Promise<void> {
  const missing = [...new Set(environmentIds)].filter((e) => !can(a, need, e));
  if (!missing.length) return;
  const ids = missing.filter((e): e is number => e !== null);
  const names = new Map(
    ids.length
      ? (await db.select({ id: environments.id, name: environments.name }).from(environments).where(inArray(environments.id, ids))).map(
          (r) => [r.id, r.name],
        )
      : [],
  );
  const where = missing.map((e) => {
    const has = roleIn(a, e);
    const place = e === null ? 'globally' : `in ${names.get(e) ?? `environment #${e}`}`;
    // Globally, "no role" would read as none at all to someone with roles in some environments.
    if (e === null) return `${place} (${has ? `you have ${has}` : 'you have no global role: roles in single environments do not count'})`;
    return `${place} (${has ? `you have ${has}` : 'you have no role'} there)`;
  });
  throw new AccessDenied(`${what} needs the ${need} role ${where.join(', ')}`, {
    id: a.userId,
    username: a.username,
    remoteAddr: a.remoteAddr,
  });
}

/**
 * Records a refusal in the audit log, with `db` (never a transaction that the refusal rolls back). Only
 * the boundaries where a refusal becomes someone's answer call it, each once per request: the
 * console's deny / orDeny / orAnswer, the API's handle, and the worker (through answeringDenial).
 * `who` is the requester as the boundary knows them, for a refusal that does not say (or lacks the address).
 */
export async function auditDenial(db: Db, err: AccessDenied, who?: Requester): Promise<void> {
  const actor = err.who ? { ...err.who, remoteAddr: err.who.remoteAddr || who?.remoteAddr } : who;
  if (!actor) return;
  await writeAudit(db, {
    user: { id: actor.id, username: actor.username },
    remoteAddr: actor.remoteAddr ?? '',
    action: 'access.denied',
    objectType: 'access',
    objectLabel: err.message,
    changes: { reason: [null, err.message] },
  });
}

/**
 * For a boundary that answers a refusal itself (a form's message, a refused target): runs `fn`; an
 * AccessDenied it throws is recorded, then answered with `answer(err)`. Anything else goes on up.
 */
export async function answeringDenial<T>(
  db: Db,
  who: Requester | undefined,
  fn: () => Promise<T>,
  answer: (err: AccessDenied) => T,
): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof AccessDenied)) throw err;
    await auditDenial(db, err, who);
    return answer(err);
  }
}

export const canOnAll = (a: Access, need: Role, environmentIds: (number | null)[]) => environmentIds.every((e) => can(a, need, e));

/**
 * Who is acting: a person in the console or with an API token (their user), a rule (its owner's user,
 * under the rule's name), or pgherd on its own authority (no user, SYSTEM_ACCESS). Every write that
 * checks a role or writes an audit entry takes one.
 */
export interface Actor {
  /** The user (null: pgherd itself, or a user since deleted). */
  id: number | null;
  username: string;
  /** Where the request came from, for the audit log ('' or absent: not a request). */
  remoteAddr?: string;
  /** What the actor may do, checked against every object it touches. */
  access: Access;
}

/** A person signed in (to the console, or with an API token): always a user, always from an address. */
export type SignedInActor = Actor & { id: number; remoteAddr: string };
