// Rotate credentials: each login a herd declares with `rotate GROUP users=A,B secret=... grace=...` gets a
// new password by alternating users, so that a client that reads the secret at each connect never fails
// to log in. The secret names the user clients log in as now; the other one (idle) gets a new password
// (a SCRAM verifier pgherd computes: no cleartext reaches the server), proven by logging in with it; the
// secret is then pointed at it; and the old user's password expires after the grace (VALID UNTIL), by
// when every client has read the secret again. The password lives in the secret store and this step's
// memory alone: no step output, audit row, page or argv holds it.
import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type pg from 'pg';
import type { Db } from '@/db/client';
import {
  defineHerdAction,
  productionWarning,
  type ActionPlan,
  type ActionStep,
  type Fact,
  type RunContext,
} from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { loginClient, poolerClient, withInstance } from '@/lib/fleet/pg-access';
import { poolerAdmin, poolerSetting } from '@/lib/adapters/pgbouncer/admin';
import { DROP_USERLIST, SET_AUTH_USER, SET_USERLIST_PLAIN } from './pgbouncer-files';
import { refuse, type Refusal } from '@/lib/fleet/refusal';
import { asks } from '@/lib/actions/drivers';
import { declared, SERVER_ROLES, type Declaration, type RotateDecl } from '@/lib/fleet/objects/declaration';
import { quoteIdent, quoteLiteral } from '@/lib/fleet/objects/diff';
import { loadDeclarations, loadReading } from '@/lib/fleet/objects/objects-pass';
import type { ObjectsReading } from '@/lib/fleet/objects/read-objects';
import { newPassword, scramVerifier } from '@/lib/fleet/objects/scram';
import { readSecret, secretFor, writeSecret, type SecretValue } from '@/lib/fleet/objects/secret-store';
import { setting } from '@/lib/settings/settings';

interface Turn {
  /** Who clients log in as now (null: the secret does not exist yet). */
  current: string | null;
  idle?: string;
  /** The new password, between its setting and the secret's write; never noted. */
  password?: string;
}

interface State {
  turns: Map<string, Turn>;
}

interface HerdPrepared {
  declaration: Declaration | null;
  errors: string[];
  reading: ObjectsReading | null;
}

async function prepare(herds: HerdRef[], db: Db): Promise<Map<number, HerdPrepared>> {
  const decls = await loadDeclarations(
    db,
    herds.map((h) => h.id),
  );
  const out = new Map<number, HerdPrepared>();
  for (const h of herds) {
    const d = decls.get(h.id);
    const primary = h.members.find((m) => m.role === 'primary');
    out.set(h.id, {
      declaration: d && declared(d.inputs) ? d.declaration : null,
      errors: d?.errors ?? [],
      reading: primary ? ((await loadReading(db, primary.id))?.reading ?? null) : null,
    });
  }
  return out;
}

const onPrimary = <T>(primary: InstanceRef, fn: (c: pg.Client) => Promise<T>): Promise<T> =>
  withInstance(primary, { connectionTimeoutMillis: 5000, statement_timeout: 30_000, application_name: 'pgherd-rotate' }, fn);

/** What the herd's drift compares a login's password with: a SHA-256 of the verifier pgherd set (never the password). */
const markOf = (verifier: string) => createHash('sha256').update(verifier, 'utf8').digest('hex');

async function mark(db: Db, herdId: number, user: string, verifier: string): Promise<void> {
  await db.execute(sql`
    UPDATE herds SET password_marks = password_marks || jsonb_build_object(${user}::text, ${markOf(verifier)}::text) WHERE id = ${herdId}`);
}

/**
 * A new verifier for `user`: pgherd's mark first (so that the drift judged between the two never sees
 * a password it did not set), then the role.
 */
async function setVerifier(db: Db, herdId: number, primary: InstanceRef, user: string, verifier: string, until: string) {
  const before = (await db.execute<{ m: string | null }>(sql`SELECT password_marks ->> ${user} AS m FROM herds WHERE id = ${herdId}`))
    .rows[0]?.m;
  await mark(db, herdId, user, verifier);
  try {
    await onPrimary(primary, (c) =>
      c.query(`ALTER ROLE ${quoteIdent(user)} PASSWORD ${quoteLiteral(verifier)} VALID UNTIL ${quoteLiteral(until)}`),
    );
  } catch (err) {
    // Not set: the mark goes back to the password the role still has.
    await db.execute(
      before
        ? sql`UPDATE herds SET password_marks = password_marks || jsonb_build_object(${user}::text, ${before}::text) WHERE id = ${herdId}`
        : sql`UPDATE herds SET password_marks = password_marks - ${user}::text WHERE id = ${herdId}`,
    );
    throw err;
  }
}

/** Whether `user`'s password is one pgherd did not set (null: pg_authid cannot be read here, or pgherd never set one). */
async function drifted(db: Db, herdId: number, primary: InstanceRef, user: string): Promise<boolean | null> {
  const marks = (await db.execute<{ m: Record<string, string> }>(sql`SELECT password_marks AS m FROM herds WHERE id = ${herdId}`)).rows[0]
    ?.m;
  const want = marks?.[user];
  if (!want) return null;
  const have = await onPrimary(primary, async (c) => {
    const may = (await c.query<{ may: boolean }>("SELECT has_table_privilege('pg_catalog.pg_authid', 'SELECT') AS may")).rows[0]?.may;
    if (!may) return undefined;
    const r = await c.query<{ d: string | null }>(
      "SELECT encode(sha256(convert_to(rolpassword, 'UTF8')), 'hex') AS d FROM pg_catalog.pg_authid WHERE rolname = $1",
      [user],
    );
    return r.rows[0]?.d ?? null;
  });
  return have === undefined ? null : have !== want;
}

type Where = { store: 'aws' | 'file'; name: string };
const turnOf = (x: { state: State }, r: RotateDecl) => {
  const t = x.state.turns.get(r.group) ?? { current: null };
  x.state.turns.set(r.group, t);
  return t;
};

/** The idle user still in its grace (the last rotation's old one): its clients may hold its password. */
async function refuseInGrace(primary: InstanceRef, idle: string): Promise<void> {
  const until = await onPrimary(primary, async (c) => {
    const q = await c.query<{ until: string | null }>(
      "SELECT rolvaliduntil::text AS until FROM pg_roles WHERE rolname = $1 AND rolvaliduntil > now() AND rolvaliduntil < 'infinity'",
      [idle],
    );
    return q.rows[0]?.until ?? null;
  });
  if (until)
    throw refuse(
      'not-applicable',
      `${idle}'s password is in its grace until ${until} (clients may still hold it): rotate again after it. Nothing was changed`,
    );
}

/** The roles whose members reach the server (SERVER_ROLES' names): a rotated login is in none of them. */
const SERVER_ROLE_NAMES = SERVER_ROLES.source.replace(/^\^\(|\)\$$/g, '').split('|');

/**
 * Why `user` must not have a password pgherd hands to clients, as the primary has it now: a superuser, a
 * role with an attribute that leads to one, the bootstrap superuser, pgherd's own session's role, or a
 * member (at any depth) of such a role or of one that reaches the server. Null: none.
 */
async function privilegedNow(primary: InstanceRef, user: string): Promise<string | null> {
  return onPrimary(primary, async (c) => {
    const r = await c.query<{ why: string | null }>(
      `SELECT CASE
         WHEN r.oid = 10 OR r.rolsuper THEN 'a superuser'
         WHEN r.rolname = session_user THEN 'pgherd''s own role'
         WHEN r.rolcreaterole OR r.rolreplication OR r.rolbypassrls THEN 'createrole, replication or bypassrls'
         ELSE (SELECT 'a member of ' || s.rolname FROM pg_roles s
               WHERE s.oid <> r.oid AND (s.rolsuper OR s.rolcreaterole OR s.rolreplication OR s.rolbypassrls OR s.rolname = ANY($2::text[]))
                 AND pg_has_role(r.oid, s.oid, 'MEMBER') ORDER BY s.rolname LIMIT 1)
       END AS why
       FROM pg_roles r WHERE r.rolname = $1`,
      [user, SERVER_ROLE_NAMES],
    );
    return r.rows[0]?.why ?? null;
  });
}

/** A new password on the idle user (a verifier pgherd computes), proven by a login before anything points at it. */
function setStep(h: HerdRef, primary: InstanceRef, r: RotateDecl): ActionStep<State> {
  return {
    name: `${r.group}: a new password on the idle user`,
    does: { kind: 'rotate.set', group: r.group, member: memberArg(primary) },
    says: `on ${primary.label}: ALTER ROLE <idle user> PASSWORD '<a SCRAM verifier pgherd computes>' VALID UNTIL 'infinity'; then log in as it with the new password, proving it`,
    run: async (x) => {
      const t = turnOf(x, r);
      const idle = t.idle;
      if (!idle) throw new Error('no idle user was read');
      // Checked right before: a superuser on the host may have made it one since the plan.
      const why = await privilegedNow(primary, idle);
      if (why)
        throw refuse(
          'params',
          `${idle} is ${why} on ${primary.label}: pgherd hands no such role's password to clients. Nothing was changed`,
        );
      const password = newPassword();
      await setVerifier(x.deps.db, h.id, primary, idle, scramVerifier(password), 'infinity');
      const login = loginClient(primary, { user: idle, password }, { connectionTimeoutMillis: 5000, application_name: 'pgherd-rotate' });
      login.on('error', () => {});
      try {
        await login.connect();
      } catch (err) {
        throw new Error(
          `${idle} cannot log in to ${primary.label} with its new password (${(err as Error).message}): the secret still names ${t.current ?? 'nobody'}`,
        );
      } finally {
        await login.end().catch(() => {});
      }
      t.password = password;
      x.note({
        stdout: `${idle}: a new password set (a SCRAM verifier computed by pgherd) and proven by a login; the password itself is in no record`,
      });
    },
  };
}

/**
 * The old user's password expires after the grace (`after`: what else it does once it has, with the old
 * user's name: PgBouncer's auth_file loses its line).
 */
function expireStep(
  h: HerdRef,
  primary: InstanceRef,
  r: RotateDecl,
  after?: { says: string; run: (x: RunContext<State>, old: string) => Promise<void> },
): ActionStep<State> {
  return {
    name: `${r.group}: the old user's password expires after the grace`,
    does: { kind: 'rotate.expire', group: r.group, member: memberArg(primary), graceSeconds: r.graceSeconds },
    says: `on ${primary.label}: ALTER ROLE <the old user> VALID UNTIL now() + ${r.graceSeconds} s (the database's clock): a client still on it logs in until then. A password changed behind pgherd's back on it is replaced by one nobody holds${after ? `; ${after.says}` : ''}`,
    run: async (x) => {
      const t = turnOf(x, r);
      if (!t.current) {
        x.note({ stdout: 'no old user: this was the first rotation' });
        return;
      }
      const old = t.current;
      const at = await onPrimary(primary, async (c) => {
        const [row] = (await c.query<{ at: string }>(`SELECT (now() + make_interval(secs => $1))::text AS at`, [r.graceSeconds])).rows;
        return row?.at ?? 'now';
      });
      // Its clients hold the secret's password, which pgherd set: one set by hand is no one's to keep.
      if (await drifted(x.deps.db, h.id, primary, old)) {
        await setVerifier(x.deps.db, h.id, primary, old, scramVerifier(newPassword()), at);
        x.note({ stdout: `${old}'s password had been changed outside pgherd: replaced by one nobody holds, valid until ${at}` });
        await after?.run(x, old);
        return;
      }
      await onPrimary(primary, (c) => c.query(`ALTER ROLE ${quoteIdent(old)} VALID UNTIL ${quoteLiteral(at)}`));
      x.note({ stdout: `${old}'s password is valid until ${at}` });
      await after?.run(x, old);
    },
  };
}

function rotationSteps(h: HerdRef, primary: InstanceRef, r: RotateDecl, where: Where): ActionStep<State>[] {
  const [a, b] = r.users;
  const secretWords = `${where.store === 'aws' ? 'Secrets Manager secret' : 'file secret'} ${where.name}`;
  return [
    {
      name: `${r.group}: read who logs in now`,
      does: { kind: 'rotate.read', group: r.group, store: where.store, secret: where.name },
      says: `read the ${secretWords}: which of ${a} and ${b} its clients log in as now (the other is idle)`,
      run: async (x) => {
        const v = await readSecret(h.environment, where);
        if (v && v.username !== a && v.username !== b)
          throw new Error(`the ${secretWords} names neither ${a} nor ${b}: nothing was changed`);
        const t = turnOf(x, r);
        t.current = v?.username ?? null;
        t.idle = t.current === a ? b : a;
        await refuseInGrace(primary, t.idle);
        x.note({ stdout: `clients log in as ${t.current ?? 'nobody yet (no secret)'}; ${t.idle} is idle` });
      },
    },
    setStep(h, primary, r),
    {
      name: `${r.group}: point the secret at it`,
      does: { kind: 'rotate.write', group: r.group, store: where.store, secret: where.name },
      says: `write the ${secretWords}: the idle user and its new password (clients that read it at connect log in as it from now)`,
      run: async (x) => {
        const t = turnOf(x, r);
        if (!t.idle || !t.password) throw new Error('no new password was set');
        const v: SecretValue = { username: t.idle, password: t.password };
        await writeSecret(h.environment, where, v);
        t.password = undefined;
        x.note({ stdout: `the ${secretWords} names ${t.idle} now` });
      },
    },
    expireStep(h, primary, r),
  ];
}

/**
 * PgBouncer's auth user (`secret=pgbouncer`): the poolers' configuration names the user it logs in as
 * (auth_user), their auth_file its password, in the clear as PgBouncer needs it to log in (the file is
 * the pooler's, kept with its owner and mode). Pointing it at the idle user is a RELOAD of each pooler.
 */
function bouncerSteps(h: HerdRef, primary: InstanceRef, r: RotateDecl): ActionStep<State>[] {
  const [a, b] = r.users;
  const labels = h.poolers.map((p) => p.label).join(', ');
  const admin = (p: HerdRef['poolers'][number]) => (t: Parameters<typeof poolerClient>[1]) => poolerClient(p, t);
  return [
    {
      name: `${r.group}: read who PgBouncer logs in as now`,
      does: { kind: 'rotate.read', group: r.group, store: 'pgbouncer', poolers: h.poolers.map((p) => p.label) },
      says: `on ${labels}: SHOW CONFIG's auth_user, which of ${a} and ${b} PgBouncer logs in as now (the other is idle)`,
      run: async (x) => {
        const named = new Set<string>();
        for (const p of h.poolers) named.add(await poolerSetting(admin(p), 'auth_user'));
        const users = [...named];
        const other = users.filter((u) => u && u !== a && u !== b);
        if (other.length) throw new Error(`${labels}: auth_user is ${other.join(', ')}, neither ${a} nor ${b}: nothing was changed`);
        if (users.length > 1)
          throw new Error(`${labels} do not log in as one user (${users.map((u) => u || 'none').join(', ')}): nothing was changed`);
        const t = turnOf(x, r);
        t.current = users[0] || null;
        t.idle = t.current === a ? b : a;
        await refuseInGrace(primary, t.idle);
        x.note({ stdout: `PgBouncer logs in as ${t.current ?? 'nobody yet (no auth_user)'}; ${t.idle} is idle` });
      },
    },
    setStep(h, primary, r),
    {
      name: `${r.group}: PgBouncer logs in as it`,
      does: { kind: 'rotate.pgbouncer', group: r.group, poolers: h.poolers.map((p) => p.label) },
      says: `on ${labels}: the idle user's line of the auth_file (its new password, on standard input), auth_user = <the idle user> in the configuration, RELOAD; then SHOW CONFIG says it`,
      run: async (x) => {
        const t = turnOf(x, r);
        const { idle, password } = t;
        if (!idle || !password) throw new Error('no new password was set');
        for (const p of h.poolers) {
          const set = await x.deps.ssh.exec(p.ssh, [...SET_USERLIST_PLAIN, p.configFile, idle], {
            stdin: `${password}\n`,
            timeoutMs: 30_000,
            secrets: [password],
          });
          if (set.code !== 0)
            throw new Error(`${p.label}: its auth_file was not changed: ${set.stderr.trim().split('\n').slice(-1)[0] ?? ''}`);
          await x.deps.ssh.execOk(p.ssh, [...SET_AUTH_USER, p.configFile, idle]);
          await poolerAdmin(admin(p), ['RELOAD']);
          const now = await poolerSetting(admin(p), 'auth_user');
          if (now !== idle) throw new Error(`${p.label} logs in as ${now || 'nobody'} after its reload, not ${idle}`);
          // The file pgherd wrote is the one it reads: the idle user is among the users it knows now.
          const users = await poolerAdmin(admin(p), ['SHOW USERS']);
          if (!users.some((u) => u.name === idle))
            throw new Error(`${p.label} does not know ${idle} after its reload: the auth_file pgherd wrote is not the one it reads`);
        }
        t.password = undefined;
        x.note({
          stdout: `${labels} log in as ${idle} now; its password is in their auth_file (PgBouncer logs in with it) and in no record of pgherd's`,
        });
      },
    },
    expireStep(h, primary, r, {
      says: `its line taken out of the auth_file on ${labels}`,
      run: async (x, old) => {
        for (const p of h.poolers) await x.deps.ssh.execOk(p.ssh, [...DROP_USERLIST, p.configFile, old]);
      },
    }),
  ];
}

/** privilegedNow from the last reading (direct memberships): what the plan can tell before it runs. */
function privilegedRead(reading: ObjectsReading, users: string[]): string | null {
  const byName = new Map(reading.roles.map((r) => [r.name, r]));
  const strong = (n: string) => {
    const r = byName.get(n);
    return SERVER_ROLES.test(n) || (!!r && (r.superuser || r.createrole || r.replication || r.bypassrls || r.bootstrap));
  };
  for (const u of users) {
    const r = byName.get(u);
    if (!r) continue;
    if (strong(u) || u === reading.me.user) return `${u} is a superuser, pgherd's own role, or has createrole, replication or bypassrls`;
    const g = r.memberOf.find(strong);
    if (g) return `${u} is a member of ${g}`;
  }
  return null;
}

function planHerd(h: HerdRef, prepared: Map<number, HerdPrepared> | undefined): ActionPlan<State> | Refusal {
  const p = prepared?.get(h.id);
  const primary = h.members.find((m) => m.role === 'primary');
  if (!primary) return refuse('topology', `${h.name} has no primary: a login's password is set on its primary`);
  if (!p?.declaration || !p.declaration.rotations.size)
    return refuse('not-applicable', `${h.name} declares no login to rotate (a rotate line in its object set or its own lines)`);
  if (p.errors.length) return refuse('params', `its declaration cannot be used: ${p.errors.join('; ')}`);
  if (!p.reading) return refuse('unreachable', `${primary.label}'s objects have not been read yet`);
  const has = new Set(p.reading.roles.map((r) => r.name));
  const steps: ActionStep<State>[] = [];
  const facts: Fact[] = [];
  for (const r of p.declaration.rotations.values()) {
    const missing = [r.group, ...r.users].filter((u) => !has.has(u));
    if (missing.length) return refuse('not-applicable', `${missing.join(', ')} not on ${primary.label} yet: Apply fleet objects first`);
    const privileged = privilegedRead(p.reading, r.users);
    if (privileged) return refuse('params', `${privileged} on ${primary.label}: pgherd hands no such role's password to clients`);
    const admins = r.secret === 'pgbouncer' ? r.users.filter((u) => h.poolers.some((x) => x.adminUser === u)) : [];
    if (admins.length)
      return refuse('params', `${admins.join(', ')} is PgBouncer's admin user on ${h.name}'s pooler: not a login to rotate`);
    const where = secretFor(r.secret, { environment: h.environment, herd: h.name });
    if (typeof where === 'string') return refuse('params', where);
    if (where.store === 'pgbouncer') {
      if (!h.poolers.length) {
        facts.push({ label: `Login ${r.group}`, value: `not rotated: ${h.name} has no PgBouncer in front, whose auth user it is` });
        continue;
      }
      const elsewhere = h.poolers.find((p) => p.serverEnvironment !== h.environment);
      if (elsewhere) return refuse('not-applicable', `${elsewhere.label} is on a server of ${elsewhere.serverEnvironment}`);
      steps.push(...bouncerSteps(h, primary, r));
      facts.push({
        label: `Login ${r.group}`,
        value: `PgBouncer's auth user on ${h.poolers.map((p) => p.label).join(', ')}: ${r.users.join(' and ')} alternate; the one that gets the new password goes into each pooler's auth_file and auth_user, then RELOAD; the other's password expires ${r.graceSeconds} s later, and its line leaves the auth_file at once (PgBouncer stopped using it at its reload)`,
      });
      continue;
    }
    if (where.store === 'file' && !(setting('PGHERD_SECRET_FILES') ?? {})[h.environment])
      return refuse('params', `${r.secret}: environment ${h.environment} has no folder for file secrets (PGHERD_SECRET_FILES)`);
    steps.push(...rotationSteps(h, primary, r, where));
    facts.push({
      label: `Login ${r.group}`,
      value: `${r.users.join(' and ')} alternate; the secret ${r.secret.startsWith('aws:') ? '' : 'file '}${where.name} (${where.store === 'aws' ? 'AWS Secrets Manager' : 'PGHERD_SECRET_FILES'}) is pointed at the one that gets the new password; the other's expires ${r.graceSeconds} s later`,
    });
  }
  if (!steps.length) return refuse('not-applicable', facts.map((f) => `${f.label}: ${f.value}`).join('; '));
  const pooled = [...p.declaration.rotations.values()].some((r) => r.secret === 'pgbouncer') && h.poolers.length;
  facts.push(
    {
      label: 'Hosts',
      value: `${primary.label} (the primary: its replicas replay the change)${pooled ? `; ${h.poolers.map((x) => x.label).join(', ')} (PgBouncer)` : ''}`,
    },
    {
      label: 'What a client must do',
      value:
        'read the secret (username and password) at each connect: one that keeps a password from before has the grace to read it again',
    },
  );
  return { steps, warnings: productionWarning(h), facts };
}

export const rotateCredentialsAction = defineHerdAction({
  name: 'rotate-credentials',
  control: asks(null),
  label: 'Rotate credentials',
  permission: 'admin',
  dangerous: false,
  state: (): State => ({ turns: new Map() }),
  prepare: (herds, _p, db) => prepare(herds, db),
  plan: (h, { prepared }) => planHerd(h, prepared),
});
