// A herd's PgBouncers during a switchover or failover: paused (new queries wait, none fails), their
// [databases] entries pointed at the new primary (the file edited over SSH on the pooler's server,
// then RELOAD, then checked with SHOW DATABASES), resumed. A pause is always resumed: by the flow, by
// its cleanup (which runs even after the herd's lease is lost), by the next worker's reconcile (what is
// owed is recorded before the pause), and at the latest by the resume armed on the pooler's host when
// the pause budget runs out (lib/actions/steps/pooler-resume.ts).
import { claimOwedForCleanup, recordOwed } from '@/lib/engine/owed';
import { owedCleanups } from '@/db/schema';
import { databasesOf, poolerAdmin, showDatabases, withPoolerAdmin } from '@/lib/adapters/pgbouncer/admin';
import { readEntries, repointEntries } from '@/lib/adapters/pgbouncer/ini';
import type { ActionDeps, ActionStep, RunContext } from '@/lib/engine/define-action';
import { memberArg, type Arg } from '@/lib/engine/plan-identity';
import { errorText } from '@/lib/engine/errors';
import type { PoolerRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { observe } from '@/lib/fleet/observe';
import type { StepContext } from '@/lib/engine/pipeline';
import { refuse } from '@/lib/fleet/refusal';
import { execNoted, execNotedOk } from './exec-noted';
import { createHash } from 'node:crypto';
import { SshCommandError } from '@/lib/adapters/ssh/ssh-errors';
import { describePooler, poolerConsole } from '@/lib/fleet/pooler';
import { armResume, checkResumeArmable, disarmResume, newResumeToken } from './pooler-resume';

/**
 * Checks that the pooler answers and its configuration file has every entry pgherd is to move; for a
 * flow that pauses it, that the resume bounding the pause can be armed on its host.
 */
export async function checkPooler(p: PoolerRef, deps: ActionDeps, ctx: StepContext, opts: { pauses?: boolean } = {}): Promise<string> {
  const seen = await describePooler(p);
  const ini = await readIni(p, deps, ctx).catch((err: unknown) => {
    throw err instanceof SshCommandError ? err : refuse('pooler', errorText(err));
  });
  const entries = readEntries(ini);
  const missing = p.databases.filter((d) => !entries.has(d));
  if (missing.length)
    throw refuse('pooler', `${p.configFile} on ${p.label} has no [databases] entry ${missing.join(', ')}; nothing was changed`);
  if (opts.pauses) {
    try {
      await checkResumeArmable(p, deps, ctx);
    } catch (err) {
      throw refuse('pooler', `${errorText(err)}; nothing was changed`);
    }
  }
  return `${p.label}: ${seen}`;
}

/** A PgBouncer in a step's arguments: which one, where its console and its file are, the entries it moves. */
export const poolerArg = (p: PoolerRef) => ({ id: p.id, host: p.host, port: p.port, configFile: p.configFile, databases: p.databases });

/** A pause's bound, in the words of a plan. */
export const pauseBoundWords = (budgetS: number) =>
  `paused ${budgetS} s at most: a RESUME armed on its host fires then, whatever happens to pgherd`;

/** The confirmation page's line on how long the herd's PgBouncers may be paused (none without PgBouncers). */
export const pauseBudgetFacts = (poolers: PoolerRef[], budgetS: number) =>
  poolers.length
    ? [
        {
          label: 'PgBouncer pause',
          value: `${budgetS} s at most: a RESUME armed on each PgBouncer's host fires then, whatever happens to pgherd (its worker, its lease, Redis or its database)`,
        },
      ]
    : [];

/** What the pause steps keep between the pause and its resume: each pooler's armed resume and its owed row. */
export interface PauseState {
  paused?: Map<number, { token: string; owedId: number | null }>;
  /** Each pooler's ini as read before its pause: the re-point writes it in one round trip while clients wait. */
  iniBefore?: Map<number, string>;
}

/**
 * Records what is owed, arms the resume on the pooler's host, then pauses. Nothing is paused unless
 * both are in place: a database that cannot take the record, or a host that cannot arm the resume,
 * fails the step before PAUSE is sent.
 */
export async function pausePooler(p: PoolerRef, budgetS: number, x: RunContext<PauseState>): Promise<void> {
  if (x.deps.targetId === undefined) throw new Error('a pause is owed back by its target: it runs only as part of an operation');
  const token = newResumeToken();
  const [owed] = await x.deps.db
    .insert(owedCleanups)
    .values({
      targetId: x.deps.targetId,
      herdId: p.herdId,
      poolerId: p.id,
      kind: 'pooler-resume',
      says: `RESUME ${p.databases.join(', ')} on PgBouncer ${p.label}`,
      databases: p.databases,
      resumeToken: token,
      dueBy: new Date(Date.now() + budgetS * 1000),
    })
    .returning({ id: owedCleanups.id });
  (x.state.paused ??= new Map()).set(p.id, { token, owedId: owed?.id ?? null });
  (x.state.iniBefore ??= new Map()).set(p.id, await readIni(p, x.deps, x));
  const armedAt = Date.now();
  await armResume(p, token, budgetS, x.deps, x);
  x.note({ command: p.databases.map((d) => `PAUSE ${d}`).join('; ') + ` on ${p.label} (a RESUME armed there fires in ${budgetS} s)` });
  await poolerAdmin(
    poolerConsole(p),
    p.databases.map((d) => `PAUSE ${d}` as const),
    30_000,
  ).catch((err: unknown) => {
    throw new Error(
      `PAUSE on ${p.label} did not finish (${errorText(err)}): PAUSE waits for transactions holding its server connections to end; the switch stops here, before the old primary is stopped`,
    );
  });
  // PAUSE waits for the entries' server connections to be released: one that took most of the budget
  // leaves the switch no time before the armed RESUME lets clients through to a primary being stopped.
  const tookS = (Date.now() - armedAt) / 1000;
  if (tookS > budgetS / 2)
    throw new Error(
      `PAUSE on ${p.label} took ${tookS.toFixed(1)} s, more than half the ${budgetS} s pause budget (long transactions holding its server connections?): the switch stops here, before the old primary is stopped`,
    );
}

/**
 * Whether every entry pgherd moves points at a member that answers as the primary now: null when so,
 * else why not, in words. What a pause owes is given back only then: a pooler resumed onto a stopped
 * old primary (a promotion that finished after the switchover gave up on it) still owes its clients.
 */
export async function astrayFromPrimary(p: PoolerRef): Promise<string | null> {
  const dbs = await showDatabases(poolerConsole(p));
  const seen = new Map<string, Awaited<ReturnType<typeof observe>>>();
  for (const d of p.databases) {
    const e = dbs.get(d);
    if (!e) return `${d} is not in its SHOW DATABASES`;
    const key = `${e.host}:${e.port}`;
    const o = seen.get(key) ?? (await observe({ host: e.host, port: e.port, serverEnvironment: p.serverEnvironment }, 3000));
    seen.set(key, o);
    if (!o.reachable || o.inRecovery !== false)
      return `${d} points at ${key}, which ${o.reachable ? 'answers as a replica' : 'does not answer'}`;
  }
  return null;
}

/**
 * Once a pause is resumed: the resume armed on its host disarmed, the owed row settled. The row is
 * written where the database answers; one left open is settled by the next reconcile (which finds
 * nothing paused).
 */
async function settlePause(p: PoolerRef, x: RunContext<PauseState>, how: string): Promise<string> {
  const armed = x.state.paused?.get(p.id);
  if (!armed) return '';
  x.state.paused?.delete(p.id);
  let disarmed: string;
  try {
    disarmed = await disarmResume(p, armed.token, x.deps, x);
  } catch (err) {
    // The pooler is resumed: a RESUME firing later changes nothing (PgBouncer refuses it for an entry
    // not paused). The row stays open for the next reconcile to disarm it.
    return `the armed resume was not disarmed (${errorText(err)}): the next reconcile does it`;
  }
  const astray = await astrayFromPrimary(p).catch((err: unknown) => `not checked: ${errorText(err)}`);
  if (armed.owedId !== null) {
    const open = astray ? `resumed, but ${astray}: the next reconcile points it at the herd's primary once one answers` : null;
    const write = recordOwed(x.deps.db, armed.owedId, open ? { lastError: open } : { settledAt: new Date(), settledHow: how }).then(
      () => true,
      () => false,
    );
    const ok = await Promise.race([write, new Promise<boolean>((r) => setTimeout(() => r(false), 2000).unref())]);
    if (!ok) return `${disarmed}; not recorded as settled (pgherd's database did not answer): the next reconcile settles it`;
    if (open) return `${disarmed}; still owed: ${open}`;
  }
  return disarmed;
}

/** RESUME each entry that is paused (RESUME of an entry that is not paused is an error in PgBouncer). */
export async function resumePooler(p: PoolerRef, ctx: StepContext): Promise<string> {
  const dbs = await showDatabases(poolerConsole(p));
  const paused = p.databases.filter((d) => dbs.get(d)?.paused);
  ctx.note({ command: paused.length ? paused.map((d) => `RESUME ${d}`).join('; ') + ` on ${p.label}` : `nothing paused on ${p.label}` });
  if (paused.length)
    await poolerAdmin(
      poolerConsole(p),
      paused.map((d) => `RESUME ${d}` as const),
    );
  return describePooler(p);
}

/**
 * Points the pooler's entries at `to`: reads its configuration over SSH, rewrites the entries' host
 * and port, writes it back atomically (same owner and mode), RELOAD, then checks SHOW DATABASES. With
 * `resume`, the entries still paused are resumed over the same admin connection once the check holds
 * (one connection, not three, inside a switchover's pause).
 */
/**
 * The pooler's ini as its host has it, whole: its SHA-256 is read after it, and a file whose text does
 * not hash to it is refused, never rewritten (one larger than the 64 KiB of output an SSH command keeps
 * comes back cut short; one not in UTF-8 comes back changed).
 */
async function readIni(p: PoolerRef, deps: ActionDeps, ctx: StepContext): Promise<string> {
  const argv = ['sh', '-c', 'cat -- "$1" && printf \'\\n\' && sha256sum -- "$1"', 'sh', p.configFile];
  const { stdout } = await execNotedOk(deps, p, ctx, argv, 10_000, { recordOutput: false });
  const end = stdout.trimEnd().lastIndexOf('\n');
  const [text, sha] = [
    stdout.slice(0, Math.max(0, end)),
    stdout
      .slice(end + 1)
      .trim()
      .split(/\s+/)[0],
  ];
  if (end < 0 || createHash('sha256').update(text).digest('hex') !== sha)
    throw new Error(
      `${p.label}: ${p.configFile} did not come back whole over SSH (larger than 64 KiB, or not UTF-8): pgherd rewrites only a file it read whole; nothing was changed`,
    );
  return text;
}

/** The pooler's ini replaced by stdin, in place (its owner and mode kept; through a symbolic link, the file it names). */
const WRITE_INI = 'set -e; f=$(readlink -f -- "$1"); cp -p -- "$f" "$f.pgherd-new"; cat > "$f.pgherd-new"; mv -- "$f.pgherd-new" "$f"';
/** The same, only while the file is still the one read (its SHA-256, $2); exit 9 when it changed. */
const WRITE_INI_IF = `set -e; f=$(readlink -f -- "$1"); have=$(sha256sum -- "$f"); [ "\${have%% *}" = "$2" ] || exit ${String(9)}; ${WRITE_INI.replace('set -e; f=$(readlink -f -- "$1"); ', '')}`;

/** Writes the ini re-pointed from `known` when the file is still `known`; false when it changed since. */
async function writeIfUnchanged(p: PoolerRef, known: string, to: InstanceRef, deps: ActionDeps, ctx: StepContext): Promise<boolean> {
  const after = repointEntries(known, p.databases, { host: to.host, port: to.port });
  const sha = createHash('sha256').update(known).digest('hex');
  const r = await execNoted(deps, p, ctx, ['sh', '-c', WRITE_INI_IF, 'sh', p.configFile, sha], 10_000, { stdin: after });
  if (r.code === 9) return false;
  if (r.code !== 0) throw new SshCommandError(p.ssh.host, `write ${p.configFile}`, r.code, r.signal, r.stderr);
  return true;
}

export async function repointPooler(
  p: PoolerRef,
  to: InstanceRef,
  deps: ActionDeps,
  ctx: StepContext,
  opts: { resume?: boolean; known?: string } = {},
): Promise<string> {
  // Read before the pause (`known`): written in one round trip, unless the file changed since.
  const written = opts.known !== undefined && (await writeIfUnchanged(p, opts.known, to, deps, ctx));
  if (!written) {
    const before = await readIni(p, deps, ctx);
    const after = repointEntries(before, p.databases, { host: to.host, port: to.port });
    await execNotedOk(deps, p, ctx, ['sh', '-c', WRITE_INI, 'sh', p.configFile], 10_000, { stdin: after });
  }
  const resumed = await withPoolerAdmin(poolerConsole(p), async (run) => {
    await run('RELOAD');
    const dbs = databasesOf(await run('SHOW DATABASES'));
    const wrong = p.databases.filter((d) => dbs.get(d)?.host !== to.host || dbs.get(d)?.port !== to.port);
    if (wrong.length)
      throw new Error(
        `${p.label}: after RELOAD, ${wrong
          .map((d) => {
            const e = dbs.get(d);
            return e ? `${d} points at ${e.host}:${e.port}` : `${d} is not in SHOW DATABASES`;
          })
          .join(', ')}, not ${to.host}:${to.port}`,
      );
    if (!opts.resume) return [];
    const paused = p.databases.filter((d) => dbs.get(d)?.paused);
    for (const d of paused) await run(`RESUME ${d}`);
    return paused;
  });
  ctx.note({ command: `${p.configFile}: ${p.databases.join(', ')} -> host=${to.host} port=${to.port}; RELOAD` });
  if (opts.resume)
    ctx.note({
      command: resumed.length ? resumed.map((d) => `RESUME ${d}`).join('; ') + ` on ${p.label}` : `nothing paused on ${p.label}`,
    });
  return `${p.label}: ${p.databases.join(', ')} -> ${to.host}:${to.port}`;
}

/**
 * Re-points every pooler of the herd at `to(state)` (a failover: nothing to pause, the old primary is
 * gone); `planned`: the new primary as the plan names it in the steps' arguments.
 */
export function repointPoolerSteps<S>(poolers: PoolerRef[], to: (state: S) => InstanceRef, toLabel: string, planned: Arg): ActionStep<S>[] {
  return poolers.map((p) => ({
    name: `PgBouncer ${p.label}: point at the new primary`,
    does: { kind: 'pgbouncer.point', pooler: poolerArg(p), to: planned },
    says: `point PgBouncer ${p.label} at ${toLabel} (${p.configFile}, RELOAD)`,
    timeoutMs: 30_000,
    run: async (x) => {
      x.note({ stdout: await repointPooler(p, to(x.state), x.deps, x) });
    },
  }));
}

/** What a switchover's PgBouncer steps share: whether the new primary is promoted, and who was pointed at it. */
export interface PoolerSwitchState extends PauseState {
  promoted: boolean;
  repointed: Set<number>;
}

/** The pause's undo: resumed always; once the new primary is promoted, pointed at it first. */
async function resumeAlways<S extends PoolerSwitchState>(pl: PoolerRef, to: InstanceRef | undefined, x: RunContext<S>): Promise<void> {
  const armed = x.state.paused?.get(pl.id);
  // Settled meanwhile by another worker, or the herd another target's (this one was frozen past its
  // lease, say): the pooler may be paused again by whoever holds the herd now, and is not this cleanup's to resume.
  if (armed?.owedId != null && (await claimOwedForCleanup(x.deps.db, armed.owedId)) === 'not ours') {
    x.state.paused?.delete(pl.id);
    return void x.note({
      stdout: 'nothing done: what this pause owed was settled by another worker meanwhile, or the herd is held by another target',
    });
  }
  const lines: string[] = [];
  let failed: Error | null = null;
  try {
    // Promoted but not yet re-pointed (a DNS step failed, say): point it at the new primary first.
    if (x.state.promoted && to && !x.state.repointed.has(pl.id)) lines.push(await repointPooler(pl, to, x.deps, x));
  } catch (err) {
    failed = err instanceof Error ? err : new Error(errorText(err)); // resumed all the same: clients must not wait forever on a pause
    lines.push(`not re-pointed: ${errorText(err)}`);
  }
  lines.push(await resumePooler(pl, x));
  const settled = await settlePause(pl, x, 'resumed by its cleanup');
  if (settled) lines.push(settled);
  x.note({ stdout: lines.join('\n') });
  if (failed) throw failed;
}

/**
 * Each PgBouncer paused before a switch, for `budgetS` seconds at most, with its resume (pointed at
 * `to(state)` once promoted) as a cleanup that always runs, even once the herd's lease is lost.
 */
export function pauseSteps<S extends PoolerSwitchState>(
  poolers: PoolerRef[],
  to: (state: S) => InstanceRef | undefined,
  budgetS: number,
): ActionStep<S>[] {
  return poolers.map((pl) => ({
    name: `PgBouncer ${pl.label}: pause`,
    does: { kind: 'pgbouncer.pause', pooler: poolerArg(pl), budgetSeconds: budgetS },
    says: `PAUSE ${pl.databases.join(', ')} on PgBouncer ${pl.label}: new queries wait (${pauseBoundWords(budgetS)})`,
    timeoutMs: 50_000,
    run: (x) => pausePooler(pl, budgetS, x),
    always: {
      name: `PgBouncer ${pl.label}: resume (always)`,
      does: { kind: 'pgbouncer.resume', pooler: pl.id },
      says: 'RESUME always follows, whatever happens (even should pgherd lose the herd)',
      timeoutMs: 30_000,
      givesBack: true,
      run: (x) => resumeAlways(pl, to(x.state), x),
    },
  }));
}

/** Each paused PgBouncer pointed at the new primary (`planned`, as the plan foresees it), then resumed. */
export function repointAndResumeSteps<S extends PoolerSwitchState>(
  poolers: PoolerRef[],
  to: (state: S) => InstanceRef | undefined,
  planned: InstanceRef,
): ActionStep<S>[] {
  const toLabel = planned.label;
  return poolers.map((pl) => ({
    name: `PgBouncer ${pl.label}: point at ${toLabel} and resume`,
    does: { kind: 'pgbouncer.point-and-resume', pooler: poolerArg(pl), to: memberArg(planned) },
    says: `point PgBouncer ${pl.label} at ${toLabel} (${pl.configFile}, RELOAD), then RESUME`,
    timeoutMs: 30_000,
    run: async (x) => {
      const target = to(x.state);
      if (!target) throw new Error('no new primary was chosen');
      const moved = await repointPooler(pl, target, x.deps, x, { resume: true, known: x.state.iniBefore?.get(pl.id) });
      x.state.repointed.add(pl.id);
      const resumed = await describePooler(pl);
      x.note({ stdout: [moved, resumed, await settlePause(pl, x, 'resumed by the flow')].filter(Boolean).join('\n') });
    },
  }));
}
