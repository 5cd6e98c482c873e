// Rotate pgherd's credentials: the password of pgherd's own Postgres role and its SSH key, for one
// environment, without a failed login or a restart. One operation over every herd of the environment
// (the password and the key are the environment's): the first target stages a new password and key
// beside the old (lib/fleet/objects/own-credentials.ts); each herd's primary takes the password (a SCRAM
// verifier pgherd computes, with the staged salt, so every worker tells which password a member wants
// from the salt it offers), proven on every member; each host authorizes the new key beside the old,
// proven by logging in with it; the last herd done puts the new password and key in force alone and
// takes the old key off every host. Nothing secret is in a step's output, a plan or argv.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { and, eq, sql } from 'drizzle-orm';
import type pg from 'pg';
import type { Db } from '@/db/client';
import { ownCredentialRotations, ownCredentialStages } from '@/db/schema';
import { CONNECT_TIMEOUT_MS, SshPool, type SshTarget } from '@/lib/adapters/ssh/ssh-client';
import { KEY_FILES_CHECK_MS } from '@/lib/adapters/ssh/keys';
import { defineHerdAction, productionWarning, type ActionStep, type Fact, type RunContext } from '@/lib/engine/define-action';
import { loadHerdRefs, type HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { loginClient, poolerClient, poolerLoginClient, SECRET_FILES_CHECK_MS, withInstance } from '@/lib/fleet/pg-access';
import { poolerAdmin } from '@/lib/adapters/pgbouncer/admin';
import { SET_USERLIST } from './pgbouncer-files';
import { refuse } from '@/lib/fleet/refusal';
import { asks } from '@/lib/actions/drivers';
import { quoteLiteral } from '@/lib/fleet/objects/diff';
import { scramVerifier } from '@/lib/fleet/objects/scram';
import { checkCredentials, reload as reloadPatroni } from '@/lib/adapters/patroni/client';
import { patroniEndpoint } from '@/lib/actions/drivers/patroni/steps';
import {
  ownSecretsOf,
  promoteNext,
  readPasswordFile,
  stageNext,
  promoteKey,
  promotePassword,
  publicKeyOf,
  retiredKeys,
  stageKey,
  stagedPassword,
  stagePassword,
  type OwnSecrets,
} from '@/lib/fleet/objects/own-credentials';

interface State {
  password?: string;
  salt?: string;
  /** Patroni's new REST password. */
  rest?: string;
  /** PgBouncer's new admin password, and the salt of the verifier that carries it. */
  bouncer?: { password: string; salt: string };
  key?: { publicLine: string; privateKey: string };
}

interface Prepared {
  /** Per environment: its herds, and what of pgherd's can be rotated there. */
  environments: Map<string, { herdIds: number[]; missing: string[]; secrets: OwnSecrets }>;
}

async function prepare(herds: HerdRef[], db: Db): Promise<Prepared> {
  const names = [...new Set(herds.map((h) => h.environment))];
  if (!names.length) return { environments: new Map() };
  // Ticked now, or a target of a rotation under way (a target starting: the engine plans it alone again).
  const running = (
    await db.execute<{ id: number }>(
      sql`SELECT t.herd_id AS id FROM operation_targets t JOIN operations o ON o.id = t.operation_id
          WHERE o.action = 'rotate-pgherd-credentials' AND o.status IN ('queued', 'running') AND t.herd_id IS NOT NULL`,
    )
  ).rows.map((r) => r.id);
  const ticked = new Set([...herds.map((h) => h.id), ...running]);
  const rows = (
    await db.execute<{ id: number; name: string; environment: string }>(
      sql`SELECT h.id, h.name, e.name AS environment FROM herds h JOIN environments e ON e.id = h.environment_id
          WHERE e.name IN ${names} ORDER BY h.name`,
    )
  ).rows;
  const environments = new Map<string, { herdIds: number[]; missing: string[]; secrets: OwnSecrets }>();
  for (const env of names) {
    const own = rows.filter((r) => r.environment === env);
    environments.set(env, {
      herdIds: own.map((r) => r.id),
      missing: own.filter((r) => !ticked.has(r.id)).map((r) => r.name),
      secrets: ownSecretsOf(env),
    });
  }
  return { environments };
}

/** The hosts pgherd logs in to for a herd: its members' servers (RDS has none) and its poolers'. */
function hostsOf(h: HerdRef): { label: string; ssh: SshTarget }[] {
  const seen = new Map<string, { label: string; ssh: SshTarget }>();
  for (const m of h.members) if (!m.rds) seen.set(`${m.ssh.host}:${m.ssh.port}`, { label: m.hostname || m.host, ssh: m.ssh });
  for (const p of h.poolers) seen.set(`${p.ssh.host}:${p.ssh.port}`, { label: p.label.split(':')[0] ?? p.label, ssh: p.ssh });
  return [...seen.values()];
}

const lockEnvironment = (tx: Db, environment: string) =>
  tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${`pgherd-own-credentials:${environment}`}))`);

const commentOf = (environment: string, operationId: number) =>
  `pgherd-rotated-${environment.replace(/[^A-Za-z0-9_.-]/g, '_')}-op${operationId}`;

/** The base64 part of a public key line: what identifies it in an authorized keys file. */
const blobOf = (line: string) => line.split(' ')[1] ?? line;

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The new password and key this operation staged already (a step run again, or a later target): read back, never made anew. */
function readBack(x: RunContext<State>, s: OwnSecrets, row: typeof ownCredentialStages.$inferSelect, op: number): void {
  if (row.salt && s.passwordFile) {
    const p = stagedPassword(s.passwordFile, row.salt);
    if (!p) throw new Error(`the password this operation staged is no longer in ${s.passwordFile}`);
    x.state.password = p;
    x.state.salt = row.salt;
  }
  if (s.keyFile) x.state.key = stageKey(s.keyFile, commentOf(s.environment, op), false);
  if (s.patroniFile) {
    x.state.rest = readPasswordFile(s.patroniFile).later.find((p) => sha256(p) === row.restHash);
    if (!x.state.rest) throw new Error(`the Patroni password this operation staged is no longer in ${s.patroniFile}`);
  }
  if (s.bouncerFile && row.bouncerSalt) {
    const p = stagedPassword(s.bouncerFile, row.bouncerSalt);
    if (!p) throw new Error(`the PgBouncer password this operation staged is no longer in ${s.bouncerFile}`);
    x.state.bouncer = { password: p, salt: row.bouncerSalt };
  }
}

/** The operation's new password and key: made by its first target, read back by the others. */
function stageStep(s: OwnSecrets, herdIds: number[]): ActionStep<State> {
  const what = [
    s.passwordFile && `a new password beside the one in ${s.passwordFile}`,
    s.keyFile && `a new SSH key beside ${s.keyFile}`,
    s.patroniFile && `a new Patroni REST password beside the one in ${s.patroniFile}`,
    s.bouncerFile && `a new PgBouncer admin password beside the one in ${s.bouncerFile}`,
  ]
    .filter(Boolean)
    .join(', and ');
  return {
    name: `${s.environment}: stage a new password and key`,
    does: {
      kind: 'own-credentials.stage',
      environment: s.environment,
      passwordFile: s.passwordFile,
      keyFile: s.keyFile,
      patroniFile: s.patroniFile,
      bouncerFile: s.bouncerFile,
    },
    says: `once for the operation: ${what} (every worker reads them within a second; the old ones still work)`,
    run: async (x) => {
      const op = x.deps.operation?.id;
      if (!op) throw new Error('a rotation runs as an operation');
      const wrote = await x.deps.db.transaction(async (tx) => {
        await lockEnvironment(tx as unknown as Db, s.environment);
        const other = await tx.execute<{ id: number }>(
          sql`SELECT s.operation_id AS id FROM own_credential_stages s JOIN operations o ON o.id = s.operation_id
              WHERE s.environment = ${s.environment} AND s.operation_id <> ${op} AND o.status IN ('queued', 'running') LIMIT 1`,
        );
        if (other.rows[0])
          throw refuse('not-applicable', `operation ${other.rows[0].id} is rotating ${s.environment}'s credentials: nothing was changed`);
        // The rotation is put in force by its last herd: one whose every herd is a target that has not ended badly.
        const mine = (
          await tx.execute<{ herd: number; status: string }>(
            sql`SELECT herd_id AS herd, status::text FROM operation_targets WHERE operation_id = ${op} AND herd_id IS NOT NULL`,
          )
        ).rows;
        const lost = herdIds.filter(
          (id) => !mine.some((t) => t.herd === id && !['failed', 'cancelled', 'interrupted', 'preempted'].includes(t.status)),
        );
        if (lost.length)
          throw refuse(
            'not-applicable',
            `${String(lost.length)} of ${s.environment}'s herds are not in this rotation or ended without it: it could not be put in force. Nothing was changed; rotate every herd again`,
          );
        const [row] = await tx
          .select()
          .from(ownCredentialStages)
          .where(and(eq(ownCredentialStages.operationId, op), eq(ownCredentialStages.environment, s.environment)));
        if (row) {
          readBack(x, s, row, op);
          return false;
        }
        if (s.passwordFile) {
          const staged = stagePassword(s.passwordFile);
          x.state.password = staged.password;
          x.state.salt = staged.salt.toString('base64');
        }
        if (s.keyFile) x.state.key = stageKey(s.keyFile, commentOf(s.environment, op), true);
        if (s.patroniFile) x.state.rest = stageNext(s.patroniFile);
        if (s.bouncerFile) {
          const staged = stagePassword(s.bouncerFile);
          x.state.bouncer = { password: staged.password, salt: staged.salt.toString('base64') };
        }
        await tx.insert(ownCredentialStages).values({
          operationId: op,
          environment: s.environment,
          salt: x.state.salt ?? null,
          restHash: x.state.rest ? sha256(x.state.rest) : null,
          bouncerSalt: x.state.bouncer?.salt ?? null,
        });
        return true;
      });
      // Every process of pgherd reads the staged password before any member has it (whichever target staged it).
      await wait(3 * SECRET_FILES_CHECK_MS);
      x.note({ stdout: wrote ? `staged: ${what}` : `this operation's new password and key were staged already` });
    },
  };
}

async function proveLogin(m: InstanceRef, user: string, password: string, signal: AbortSignal): Promise<void> {
  const until = Date.now() + 60_000;
  for (;;) {
    const c = loginClient(m, { user, password }, { connectionTimeoutMillis: 5000, application_name: 'pgherd-rotate' });
    c.on('error', () => {});
    try {
      await c.connect();
      return;
    } catch (err) {
      // A replica that has not replayed the change yet refuses it; a member restarting is not up yet.
      if (Date.now() > until || signal.aborted)
        throw new Error(`${m.label} does not take pgherd's new password (${(err as Error).message}): the old one still works there`);
      await wait(250);
    } finally {
      await c.end().catch(() => {});
    }
  }
}

const SESSION = { connectionTimeoutMillis: 5000, statement_timeout: 30_000, application_name: 'pgherd-rotate' };
const onSession = <T>(m: InstanceRef, fn: (c: pg.Client) => Promise<T>) => withInstance(m, SESSION, fn);

/** Waits until replica `m` has replayed WAL up to `lsn` (a minute at most: then its login is tried and judged). */
async function replayed(m: InstanceRef, lsn: string, signal: AbortSignal): Promise<void> {
  const until = Date.now() + 60_000;
  while (Date.now() < until && !signal.aborted) {
    try {
      const done = await onSession(
        m,
        async (c) => (await c.query<{ ok: boolean }>('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [lsn])).rows[0]?.ok,
      );
      if (done) return;
    } catch {
      /* restarting: asked again */
    }
    await wait(200);
  }
}

/** The herd's primary takes the staged password (as a verifier with the staged salt); every member proves it. */
function passwordStep(h: HerdRef, primary: InstanceRef, s: OwnSecrets): ActionStep<State> {
  const others = h.members.filter((m) => m.id !== primary.id && m.state === 'running');
  return {
    name: `${h.name}: pgherd's new password`,
    does: { kind: 'own-credentials.password', herd: h.id, user: s.user },
    says: `on ${primary.label}: ALTER ROLE CURRENT_USER (${s.user ?? '?'}) PASSWORD '<a SCRAM verifier pgherd computes>'; then log in with the new password on ${[primary, ...others].map((m) => m.label).join(', ')} (its replicas once they replay it)`,
    run: async (x) => {
      const { password, salt } = x.state;
      if (!password || !salt || !s.user) throw new Error('no password was staged');
      const at = await onSession(primary, async (c) => {
        await c.query(`ALTER ROLE CURRENT_USER PASSWORD ${quoteLiteral(scramVerifier(password, Buffer.from(salt, 'base64')))}`);
        return (await c.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]?.lsn ?? null;
      });
      await proveLogin(primary, s.user, password, x.signal);
      // A replica is asked once it has replayed the change (pgherd's own session, which logs in either way):
      // a login with the new password before that would be refused, and logged as a failure on the server.
      for (const m of others) {
        if (at && !m.rds) await replayed(m, at, x.signal);
        await proveLogin(m, s.user, password, x.signal);
      }
      x.note({
        stdout: `${s.user}: the new password set on ${primary.label} (a verifier computed by pgherd) and proven on ${1 + others.length} member(s); the password itself is in no record`,
      });
    },
  };
}

/** Adds `line` to the authorized keys file (once; after a newline when its last line has none); refuses a file that is not there. */
export const ADD_KEY = [
  'sh',
  '-c',
  'f=$1; k=$2; [ -f "$f" ] || { echo "$f: no such file (PGHERD_SSH_AUTHORIZED_KEYS)" >&2; exit 3; }; ' +
    'grep -qxF -- "$k" "$f" && exit 0; [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ] && printf "\\n" >> "$f"; printf "%s\\n" "$k" >> "$f"',
  'pgherd-add-key',
];

/**
 * Takes out of the authorized keys file the lines holding a retired key (each argument after the first three)
 * and those whose comment is an earlier rotation's of this environment (`tag`, an extended regular
 * expression matched at the end of the line), never the line holding `keep`; refuses when `keep` would not be
 * left in it. Written whole beside it (its owner and mode kept) and renamed over it (a link's target): sshd
 * reads the old file or the new one, never one cut short, which would refuse every key.
 */
export const REMOVE_KEYS = [
  'sh',
  '-c',
  'f=$(readlink -f -- "$1") || exit 3; keep=$2; tag=$3; shift 3; t="$f.pgherd-tmp"; cp -p "$f" "$t" || exit 3; ' +
    'for old in "$@"; do grep -vF -- "$old" "$t" > "$t.1"; cat "$t.1" > "$t"; done; ' +
    // The new key's line carries the tag too: put back once (at the end) if it was taken out; nothing else deduplicated.
    'grep -vE -- " $tag\\$" "$t" > "$t.1"; grep -qF -- "$keep" "$t.1" || grep -F -- "$keep" "$f" | head -n 1 >> "$t.1"; ' +
    'grep -qF -- "$keep" "$t.1" || { rm -f "$t" "$t.1"; echo "$f would not hold the new key: left as it was" >&2; exit 3; }; ' +
    'cat "$t.1" > "$t" && mv -f "$t" "$f" && rm -f "$t.1"',
  'pgherd-remove-keys',
];

/** Each host authorizes the new key beside the old (added with the key in force), proven by logging in with the new key alone. */
async function authorizeOn(
  x: RunContext<State>,
  hosts: { label: string; ssh: SshTarget }[],
  key: { publicLine: string; privateKey: string },
  s: OwnSecrets,
) {
  const prove = new SshPool({
    keys: { fallback: null, byEnvironment: new Map([[s.environment, Buffer.from(key.privateKey)]]) },
    connectRetries: 1,
  });
  try {
    for (const t of hosts) {
      await x.deps.ssh.execOk(t.ssh, [...ADD_KEY, s.authorizedKeys, key.publicLine]);
      await prove.execOk(t.ssh, ['true']);
    }
  } finally {
    await prove.close();
  }
}

/** Every host of the herd authorizes the new key beside the old; proven by logging in with the new one alone. */
function keyStep(h: HerdRef, s: OwnSecrets): ActionStep<State> {
  const hosts = hostsOf(h);
  return {
    name: `${h.name}: pgherd's new SSH key on its hosts`,
    does: { kind: 'own-credentials.key', herd: h.id, hosts: hosts.map((t) => t.label), file: s.authorizedKeys },
    says: `on ${hosts.map((t) => t.label).join(', ')}: add the new public key to ${s.authorizedKeys} (beside the old), then log in with the new key alone`,
    run: async (x) => {
      const key = x.state.key;
      if (!key) throw new Error('no key was staged');
      await authorizeOn(x, hosts, key, s);
      x.note({ stdout: `the new key authorized and proven on ${hosts.map((t) => t.label).join(', ')}` });
    },
  };
}

/**
 * Sets restapi.authentication.password in a member's patroni.yml (the password on stdin, never argv),
 * rewritten whole with PyYAML (Patroni's own dependency): written aside, its mode kept, renamed into place.
 */
const SET_REST_PASSWORD = [
  'python3',
  '-c',
  [
    'import os, sys, yaml',
    'f = sys.argv[1]',
    'pw = sys.stdin.read()',
    'd = yaml.safe_load(open(f))',
    "auth = (d.get('restapi') or {}).get('authentication') if isinstance(d, dict) else None",
    "if not isinstance(auth, dict) or not auth.get('username'): sys.exit(f + ': no restapi.authentication.username to set a password for')",
    "auth['password'] = pw",
    "t = f + '.pgherd-new'",
    'os.path.lexists(t) and os.unlink(t)',
    'fd = os.open(t, os.O_WRONLY | os.O_CREAT | os.O_EXCL, os.stat(f).st_mode & 0o777)',
    "h = os.fdopen(fd, 'w'); yaml.safe_dump(d, h, default_flow_style=False, sort_keys=False); h.close()",
    'os.replace(t, f)',
  ].join('\n'),
];

/** Each member's Patroni takes the new REST password (its patroni.yml, then a reload); proven by a call with it alone. */
function patroniStep(h: HerdRef, s: OwnSecrets): ActionStep<State> {
  const members = h.members.filter((m) => m.patroniUrl);
  const fileOf = (m: InstanceRef) => s.patroniConfigFile.replaceAll('{data_directory}', m.dataDirectory);
  return {
    name: `${h.name}: Patroni's new REST password`,
    does: { kind: 'own-credentials.patroni', herd: h.id, members: members.map((m) => m.label), file: s.patroniConfigFile },
    says: `on ${members.map((m) => m.label).join(', ')}: restapi.authentication.password in ${s.patroniConfigFile} (rewritten whole: comments are not kept), Patroni reloaded, then a call with the new password alone`,
    run: async (x) => {
      const rest = x.state.rest;
      if (!rest) throw new Error('no Patroni password was staged');
      for (const m of members) {
        const { url, access } = patroniEndpoint(m);
        const set = await x.deps.ssh.exec(m.ssh, [...SET_REST_PASSWORD, fileOf(m)], { stdin: rest, timeoutMs: 30_000, secrets: [rest] });
        if (set.code !== 0)
          throw new Error(
            `${m.label}: ${fileOf(m)} was not changed: ${set.stderr.trim().split('\n').slice(-1)[0] ?? `exit ${String(set.code)}`}`,
          );
        await reloadPatroni(url, access);
        const until = Date.now() + 30_000;
        for (;;) {
          try {
            await checkCredentials(url, { ...access, password: rest, nextPasswords: [] });
            break;
          } catch (err) {
            if (Date.now() > until || x.signal.aborted)
              throw new Error(
                `${m.label}'s Patroni does not take the new REST password (${(err as Error).message}): the old one still works there`,
              );
            await wait(250);
          }
        }
      }
      x.note({
        stdout: `Patroni's new REST password set and proven on ${members.map((m) => m.label).join(', ')}; the password itself is in no record`,
      });
    },
  };
}

/** Each PgBouncer of the herd takes the new admin password (its auth_file, then RELOAD); proven by a login with it alone. */
function bouncerStep(h: HerdRef): ActionStep<State> {
  return {
    name: `${h.name}: PgBouncer's new admin password`,
    does: { kind: 'own-credentials.pgbouncer', herd: h.id, poolers: h.poolers.map((p) => p.label) },
    says: `on ${h.poolers.map((p) => p.label).join(', ')}: the admin user's line of the auth_file its configuration names (a SCRAM verifier pgherd computes), RELOAD, then a login to its admin console with the new password alone`,
    run: async (x) => {
      const b = x.state.bouncer;
      if (!b) throw new Error('no PgBouncer password was staged');
      for (const p of h.poolers) {
        const verifier = scramVerifier(b.password, Buffer.from(b.salt, 'base64'));
        const set = await x.deps.ssh.exec(p.ssh, [...SET_USERLIST, p.configFile, p.adminUser], {
          stdin: `${verifier}\n`,
          timeoutMs: 30_000,
          secrets: [verifier],
        });
        if (set.code !== 0)
          throw new Error(
            `${p.label}: its auth_file was not changed: ${set.stderr.trim().split('\n').slice(-1)[0] ?? `exit ${String(set.code)}`}`,
          );
        // pgherd's own admin connection answers the salt PgBouncer offers: the old password until the reload, the new after.
        await poolerAdmin((t) => poolerClient(p, t), ['RELOAD']);
        const c = poolerLoginClient(p, b.password, { connectionTimeoutMillis: 5000 });
        c.on('error', () => {});
        try {
          await c.connect();
          await c.query('SHOW VERSION');
        } catch (err) {
          throw new Error(`${p.label} does not take the new admin password (${(err as Error).message}): the old one still works there`);
        } finally {
          await c.end().catch(() => {});
        }
      }
      x.note({
        stdout: `PgBouncer's new admin password set and proven on ${h.poolers.map((p) => p.label).join(', ')}; the password itself is in no record`,
      });
    },
  };
}

/** The last herd of the environment done puts the new password and key in force and takes the old key off every host. */
function finishStep(h: HerdRef, s: OwnSecrets, herdIds: number[]): ActionStep<State> {
  const parts = [
    s.passwordFile && `the new password alone in ${s.passwordFile}`,
    s.patroniFile && `the new REST password alone in ${s.patroniFile}`,
    s.bouncerFile && `the new PgBouncer admin password alone in ${s.bouncerFile}`,
    s.keyFile &&
      `the new key authorized on ${s.environment}'s other hosts (backup hosts, scratch servers) and put in ${s.keyFile}, then the old key taken out of ${s.authorizedKeys} on every host of ${s.environment}`,
  ].filter(Boolean);
  return {
    name: `${s.environment}: the new password and key in force once every herd has them`,
    does: { kind: 'own-credentials.finish', environment: s.environment, herds: herdIds.length },
    says: `when the last of ${s.environment}'s ${String(herdIds.length)} herd(s) is done: ${parts.join('; ')}`,
    run: (x) => finish(x, h, s, herdIds),
  };
}

async function finish(x: RunContext<State>, h: HerdRef, s: OwnSecrets, herdIds: number[]): Promise<void> {
  const op = x.deps.operation?.id;
  if (!op) throw new Error('a rotation runs as an operation');
  // Recorded whatever happens next: a herd done stays done.
  const left = await x.deps.db.transaction(async (tx) => {
    await lockEnvironment(tx as unknown as Db, s.environment);
    await tx.insert(ownCredentialRotations).values({ operationId: op, herdId: h.id, environment: s.environment }).onConflictDoNothing();
    const done = await tx
      .select({ herdId: ownCredentialRotations.herdId })
      .from(ownCredentialRotations)
      .where(and(eq(ownCredentialRotations.operationId, op), eq(ownCredentialRotations.environment, s.environment)));
    return herdIds.filter((id) => !done.some((d) => d.herdId === id)).length;
  });
  if (left) {
    x.note({
      stdout: `${String(herdIds.length - left)} of ${String(herdIds.length)} herds done: the last one puts the new password and key in force`,
    });
    return;
  }
  const all = await loadHerdRefs(x.deps.db, herdIds);
  const herdHosts = new Map(all.flatMap(hostsOf).map((t) => [`${t.ssh.host}:${t.ssh.port}`, t]));
  const others = s.keyFile && x.state.key ? await otherHosts(x.deps.db, s.environment, new Set(herdHosts.keys())) : [];
  // The environment's other hosts (backup hosts, scratch servers) authorize the new key before it is put in force.
  if (others.length && x.state.key) await authorizeOn(x, others, x.state.key, s);
  const key = await putInForce(x, s);
  let note = `in force for ${s.environment}: ${s.passwordFile ? 'the new password alone' : 'the password as it was'}`;
  if (key) {
    const hosts = [...herdHosts.values(), ...others];
    await retireOldKeys(x, s, hosts, key);
    note += `; the new key, the old one taken off ${String(hosts.length)} host(s)`;
  }
  x.note({ stdout: note });
}

/** The environment's servers pgherd logs in to over SSH beyond its herds' (backup hosts, scratch servers). */
async function otherHosts(db: Db, environment: string, covered: Set<string>): Promise<{ label: string; ssh: SshTarget }[]> {
  const rows = (
    await db.execute<{ id: number; hostname: string; host: string; port: number; username: string; fp: string }>(sql`
      SELECT s.id, s.hostname, coalesce(nullif(s.address, ''), s.hostname) AS host, s.ssh_port AS port, s.ssh_user AS username,
             s.ssh_host_key_fingerprint AS fp
      FROM servers s JOIN environments e ON e.id = s.environment_id
      WHERE e.name = ${environment} AND s.ssh_host_key_fingerprint IS NOT NULL AND coalesce(s.cloud_provider, '') <> 'rds'
        AND s.cloud_gone_at IS NULL
      ORDER BY s.hostname`)
  ).rows;
  return rows
    .filter((r) => !covered.has(`${r.host}:${String(r.port)}`))
    .map((r) => ({
      label: r.hostname,
      ssh: { host: r.host, port: r.port, username: r.username, hostKeyFingerprint: r.fp, serverId: r.id, environment },
    }));
}

/**
 * The new password and key in force, under the environment's lock: each only if not already (a step run
 * again finds them so); the old key's public part kept in `<key file>.retired`, to be taken off every host.
 * The key's public part now, or null when the key is not rotated.
 */
async function putInForce(x: RunContext<State>, s: OwnSecrets): Promise<string | null> {
  return x.deps.db.transaction(async (tx) => {
    await lockEnvironment(tx as unknown as Db, s.environment);
    if (s.passwordFile && x.state.password && x.state.salt && readPasswordFile(s.passwordFile).password !== x.state.password)
      if (!promotePassword(s.passwordFile, x.state.salt))
        throw new Error(`the password this operation staged is no longer in ${s.passwordFile}`);
    const b = x.state.bouncer;
    if (s.bouncerFile && b && readPasswordFile(s.bouncerFile).password !== b.password)
      if (!promotePassword(s.bouncerFile, b.salt))
        throw new Error(`the PgBouncer password this operation staged is no longer in ${s.bouncerFile}`);
    if (s.patroniFile && x.state.rest && readPasswordFile(s.patroniFile).password !== x.state.rest)
      if (!promoteNext(s.patroniFile, x.state.rest))
        throw new Error(`the Patroni password this operation staged is no longer in ${s.patroniFile}`);
    let now: string | null = null;
    if (s.keyFile && x.state.key) {
      const staged = x.state.key.publicLine.split(' ').slice(0, 2).join(' ');
      if (publicKeyOf(readFileSync(s.keyFile)) !== staged) {
        const promoted = promoteKey(s.keyFile, staged, x.state.key.publicLine);
        if (!promoted) throw new Error(`${s.keyFile}.next is not the key this operation staged: another rotation ran`);
      }
      now = staged;
    }
    await tx.delete(ownCredentialStages).where(eq(ownCredentialStages.environment, s.environment));
    return now;
  });
}

/**
 * Takes every retired key (`<key file>.retired`) and earlier rotations' keys off each host, once every pool
 * reads the new key and a connection that chose the old one just before is ready or has failed. A host that
 * cannot be changed is named; the others are done; running the rotation again takes it off.
 */
async function retireOldKeys(x: RunContext<State>, s: OwnSecrets, hosts: { label: string; ssh: SshTarget }[], now: string) {
  await wait(CONNECT_TIMEOUT_MS + 3 * KEY_FILES_CHECK_MS);
  const retired = s.keyFile ? retiredKeys(s.keyFile) : [];
  const tag = `pgherd-rotated-${s.environment.replace(/[^A-Za-z0-9_.-]/g, '_').replaceAll('.', '\\.')}-op[0-9]+`;
  const failed: string[] = [];
  for (const t of hosts) {
    const r = await x.deps.ssh
      .exec(t.ssh, [...REMOVE_KEYS, s.authorizedKeys, blobOf(now), tag, ...retired.map(blobOf)])
      .catch((err: unknown) => ({
        code: -1,
        stderr: (err as Error).message,
      }));
    if (r.code !== 0) failed.push(`${t.label} (${r.stderr.trim().split('\n').slice(-1)[0] ?? ''})`);
  }
  if (failed.length)
    throw new Error(
      `the new password and key are in force; the old key is still authorized on ${failed.join(', ')}: rotate again (it takes retired keys off every host) or remove it by hand`,
    );
}

export const rotateOwnCredentialsAction = defineHerdAction({
  name: 'rotate-pgherd-credentials',
  control: asks(null),
  label: "Rotate pgherd's credentials",
  permission: 'admin',
  dangerous: false,
  state: (): State => ({}),
  prepare: (herds, _p, db) => prepare(herds, db),
  plan: (h, { prepared }) => {
    // Planned without what prepare read (a driver's test): nothing to rotate is known.
    const e = (prepared as Prepared | undefined)?.environments.get(h.environment);
    if (!e) return refuse('gone', `${h.environment} is not in the inventory`);
    const s = e.secrets;
    if (e.missing.length)
      return refuse(
        'params',
        `pgherd's password and key for ${h.environment} are one for its ${e.herdIds.length} herds: tick them all in one operation (not ticked: ${e.missing.join(', ')})`,
      );
    if (!s.passwordFile && !s.keyFile && !s.patroniFile && !s.bouncerFile)
      return refuse('not-applicable', `nothing pgherd can rotate: ${s.passwordWhyNot ?? ''}; ${s.keyWhyNot ?? ''}`);
    const elsewhere = [...h.members, ...h.poolers].find((m) => m.serverEnvironment !== h.environment);
    if (elsewhere)
      return refuse(
        'not-applicable',
        `${elsewhere.label} is on a server of ${elsewhere.serverEnvironment}: pgherd logs in there with that environment's credentials`,
      );
    const primary = h.members.find((m) => m.role === 'primary');
    if (s.passwordFile && !primary) return refuse('topology', `${h.name} has no primary: pgherd's password is set on it`);
    const steps: ActionStep<State>[] = [stageStep(s, e.herdIds)];
    if (s.passwordFile && primary) steps.push(passwordStep(h, primary, s));
    if (s.keyFile && hostsOf(h).length) steps.push(keyStep(h, s));
    if (s.patroniFile && h.members.some((m) => m.patroniUrl)) steps.push(patroniStep(h, s));
    if (s.bouncerFile && h.poolers.length) steps.push(bouncerStep(h));
    steps.push(finishStep(h, s, e.herdIds));
    return { steps, warnings: productionWarning(h), facts: factsOf(h, s) };
  },
});

function factsOf(h: HerdRef, s: OwnSecrets): Fact[] {
  return [
    {
      label: 'Role',
      value: s.passwordFile
        ? `${s.user ?? '?'} (pgherd's own), on every member through its primary`
        : `not rotated: ${s.passwordWhyNot ?? ''}`,
    },
    {
      label: 'SSH key',
      value: s.keyFile
        ? `${s.keyFile}: a new ed25519 key, authorized on ${
            hostsOf(h)
              .map((t) => t.label)
              .join(', ') || 'no host (RDS)'
          } before the old one is taken out`
        : `not rotated: ${s.keyWhyNot ?? ''}`,
    },
    ...(h.members.some((m) => m.patroniUrl)
      ? [
          {
            label: 'Patroni REST',
            value: s.patroniFile
              ? `${s.patroniFile}: a new password in each member's ${s.patroniConfigFile}, Patroni reloaded`
              : `not rotated: ${s.patroniWhyNot ?? 'no Patroni REST credentials configured'}`,
          },
        ]
      : []),
    ...(h.poolers.length
      ? [
          {
            label: 'PgBouncer admin',
            value: s.bouncerFile
              ? `${s.bouncerFile}: a new password for ${[...new Set(h.poolers.map((p) => p.adminUser))].join(', ')} in each pooler's auth_file, then RELOAD`
              : `not rotated: ${s.bouncerWhyNot ?? 'pgherd logs in to its admin console without a password (no pgbouncer entry in PGHERD_PG_CONFIG)'}`,
          },
        ]
      : []),
    {
      label: 'What changes for people',
      value: 'nothing: pgherd uses the new password and key from the moment a member or host has them; no restart, no failed login',
    },
  ];
}
