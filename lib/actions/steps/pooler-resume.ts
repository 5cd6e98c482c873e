// The resume that bounds a PgBouncer pause, kept on the pooler's own host: armed over SSH before PAUSE
// is sent, it sleeps for the pause budget and then sends RESUME for the paused entries through
// PgBouncer's admin console (psql on that host). The normal resume disarms it. Whatever happens to
// the worker, its lease, Redis or pgherd's database in between, traffic waits no longer than the
// budget: the host keeps the promise, not pgherd.
//
// Why psql and not a signal: PgBouncer's SIGUSR2 ends only a pause of the whole pooler (PAUSE with no
// database); a pause of named entries, which is what pgherd sends so that other herds' databases on
// the same pooler keep flowing, is ended only by RESUME on the console.
//
// The process runs in a session of its own (setsid), so neither the SSH channel closing nor the step
// that armed it being killed takes it down; its command line carries a token (never the password,
// which it reads on stdin and hands to psql in its environment), by which it is found and disarmed.
import { randomBytes } from 'node:crypto';
import type { ActionDeps } from '@/lib/engine/define-action';
import type { PoolerRef } from '@/lib/fleet/herd-ref';
import { accessFor } from '@/lib/fleet/pg-access';
import type { StepContext } from '@/lib/engine/pipeline';
import { execNoted, execNotedOk } from './exec-noted';
import { caFileName, caPemOf, WRITE_CA_SH } from './host-ca';
import { errorText } from '@/lib/engine/errors';
import { libpqMajorOf, ruledConninfo } from './libpq-rule';

/** The resume's process name on the host (its $0): `pgherd-resume-<token>`. */
const NAME = 'pgherd-resume-';

/** How long a pause lasts at most by default (s): far more than a switchover's usual second. */
export const DEFAULT_PAUSE_BUDGET_S = 60;
export const PAUSE_BUDGET_LIMITS_S = { min: 5, max: 900 } as const;

export const newResumeToken = () => randomBytes(9).toString('hex');

/** What the pooler's host offers the RESUME's connection string: its libpq's major and where the environment's CA is. */
export interface ResumeHost {
  libpqMajor: number;
  caPath: string | null;
}

/**
 * The admin console as seen from the pooler's own host: its listen address, under pgherd's rule for
 * strings a host's libpq reads (verify-full against the environment's CA where its poolers speak
 * TLS, the password only through SCRAM). PgBouncer binds no channel to SCRAM, so a password needs
 * require_auth there: libpq 16.
 */
export function consoleConninfo(p: PoolerRef, host: ResumeHost, access = accessFor(p.serverEnvironment).pgbouncer): string {
  return ruledConninfo(
    { host: p.host, port: String(p.port), user: p.adminUser, dbname: 'pgbouncer', connect_timeout: '5', application_name: 'pgherd-resume' },
    {
      caPem: caPemOf(access.tls),
      caPath: host.caPath,
      password: access.password !== null,
      libpqMajor: host.libpqMajor,
      channelBinding: false,
      what: `${p.label}: the armed RESUME's connection from its host`,
    },
  );
}

/**
 * Reads the pooler host's libpq (psql's version) and, when the environment's poolers verify TLS, puts
 * the environment's CA in a file of the SSH user's (~/.pgherd/ca-<digest>.crt) for psql to verify with.
 */
export async function resumeHost(p: PoolerRef, deps: ActionDeps, ctx: StepContext): Promise<ResumeHost> {
  const ca = caPemOf(accessFor(p.serverEnvironment).pgbouncer.tls);
  const name = ca === null ? '' : caFileName(ca);
  const script = [
    'v=$(psql --version 2>&1) || { echo "no psql: $v" >&2; exit 3; }',
    'set -e',
    `if [ -n "$1" ]; then ${WRITE_CA_SH}; echo "ca: $f"; fi`,
    'echo "libpq: $v"',
  ].join('\n');
  const r = await execNotedOk(deps, p, ctx, ['sh', '-c', script, 'pgherd-libpq', name], 15_000, { stdin: ca ?? '' });
  const major = libpqMajorOf(/^libpq: (.*)$/m.exec(r.stdout)?.[1] ?? '');
  if (major === null) throw new Error(`${p.label}: psql --version on its host said nothing pgherd can read`);
  return { libpqMajor: major, caPath: /^ca: (.*)$/m.exec(r.stdout)?.[1] ?? null };
}

const psqlArgv = (p: PoolerRef, host: ResumeHost, commands: string[]) => [
  'psql',
  '-X',
  '-w',
  '-q',
  consoleConninfo(p, host),
  ...commands.flatMap((c) => ['-c', c]),
];

const passwordLine = (p: PoolerRef) => `${accessFor(p.serverEnvironment).pgbouncer.password ?? ''}\n`;

/**
 * Proves the resume can be armed on the pooler's host before anything is paused: psql is there and
 * reaches the admin console with the environment's credentials. Returns the line for the record.
 */
export async function checkResumeArmable(p: PoolerRef, deps: ActionDeps, ctx: StepContext): Promise<string> {
  const host = await resumeHost(p, deps, ctx).catch((err: unknown) => {
    throw new Error(
      `${p.label}: the resume that bounds the pause cannot be armed on its host (${errorText(err)}); install psql there and let the SSH user reach the console`,
    );
  });
  const script = 'IFS= read -r pw || pw=; PGPASSWORD=$pw exec "$@"';
  const r = await execNoted(deps, p, ctx, ['sh', '-c', script, 'pgherd-check', ...psqlArgv(p, host, ['SHOW VERSION'])], 15_000, {
    stdin: passwordLine(p),
  });
  if (r.code !== 0) {
    const why = r.stderr.trim().split('\n').pop() || `exit ${r.code ?? 'unknown'}`;
    throw new Error(
      `${p.label}: the resume that bounds the pause cannot be armed on its host (psql to its admin console from there: ${why}); install psql there and let the SSH user reach the console`,
    );
  }
  return `${p.label}: the resume that bounds the pause can be armed there (psql reaches the admin console)`;
}

/**
 * Arms the resume: in `budgetS` seconds RESUME each of `p.databases` (an entry not paused by then is
 * left as it is: PgBouncer refuses that RESUME and psql goes on with the next).
 */
export async function armResume(p: PoolerRef, token: string, budgetS: number, deps: ActionDeps, ctx: StepContext): Promise<void> {
  // The outer shell reads the password and leaves at once; the inner one, in its own session with
  // nothing of the SSH channel open, sleeps and then runs psql. A non-interactive shell's background
  // job is no process group leader, so setsid makes it one without forking: the inner shell's pid is
  // its session's and group's, and a disarm kills the group (the sleep with it).
  const inner = 'sleep "$1" || exit 0; shift; PGPASSWORD=$PGHERD_RESUME_PW exec "$@"';
  const outer = [
    'set -e',
    'IFS= read -r pw || pw=',
    'name=$1; shift',
    'PGHERD_RESUME_PW=$pw setsid sh -c "$0" "$name" "$@" </dev/null >/dev/null 2>&1 &',
    'echo "armed: $name pid $!"',
  ].join('\n');
  const commands = p.databases.map((d) => `RESUME ${d}`);
  const host = await resumeHost(p, deps, ctx);
  await execNotedOk(deps, p, ctx, ['sh', '-c', outer, inner, `${NAME}${token}`, String(budgetS), ...psqlArgv(p, host, commands)], 15_000, {
    stdin: passwordLine(p),
  });
}

/**
 * Disarms the resume armed with `token` (nothing to do when it has fired or was never armed). The token
 * goes in on stdin: on the command line, the search would find the disarming shell itself.
 */
export async function disarmResume(p: PoolerRef, token: string, deps: ActionDeps, ctx: StepContext): Promise<string> {
  const script = [
    'IFS= read -r t',
    'n=0',
    `for pid in $(pgrep -f -- "${NAME}$t"); do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"; n=$((n+1)); done`,
    'echo "disarmed: $n"',
  ].join('\n');
  const r = await execNotedOk(deps, p, ctx, ['sh', '-c', script, 'pgherd-disarm'], 15_000, { stdin: `${token}\n` });
  return r.stdout.includes('disarmed: 0') ? 'the armed resume had already ended' : 'the armed resume was disarmed';
}
