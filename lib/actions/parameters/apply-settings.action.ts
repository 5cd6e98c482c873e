// Apply settings: puts a herd's members on what their parameter groups say. The plan says, member by
// member, which settings change and which of them only a restart applies (apply-plan.ts refuses what
// would break the herd). Then: every member read again (what was planned must still be what runs) and
// every value handed to the member's own Postgres to parse; the settings written (ALTER SYSTEM, or on a
// Patroni herd its configuration, PATCH /config) and reloaded; the replicas that need it restarted one at
// a time, each streaming again before the next; the primary's restart by a switchover (no acknowledged
// commit lost), its old primary restarted as it rejoins; then every member read again and its drift judged.
import { z } from 'zod';
import type { Db } from '@/db/client';
import { execNoted, execNotedOk } from '@/lib/actions/steps/exec-noted';
import { newSwitchoverState, switchoverPair, type SwitchoverState } from '@/lib/actions/drivers/switchover';
import { part } from '@/lib/engine/compose';
import { defineHerdAction, flagParam, productionWarning, type ActionPlan, type ActionStep, type Fact } from '@/lib/engine/define-action';
import { binsOf, driverFor } from '@/lib/fleet/drivers';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { memberArg } from '@/lib/engine/plan-identity';
import { instanceClient } from '@/lib/fleet/pg-access';
import { observe, waitObserved } from '@/lib/fleet/observe';
import { lsnToNumber } from '@/lib/adapters/format/lsn';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import { errorText } from '@/lib/engine/errors';
import { judgeDrift, loadSnapshot, loadWantedInputs, recordReading } from '@/lib/fleet/settings/drift-pass';
import { loadCatalog, majorOf, readSettings } from '@/lib/fleet/settings/read-settings';
import { wantedSettings } from '@/lib/fleet/settings/wanted';
import { belowThePrimary, changeWords, planChanges, type MemberChanges, type MemberSettings, type SettingChange } from './apply-plan';
import { checkValue, sameValue, show } from '@/lib/fleet/settings/values';
import { asks, driverOf, lacking, planSwitchoverOf } from '@/lib/actions/drivers';
import type { HerdPlane, ParameterPlane } from '@/lib/actions/drivers/parameters';

export const applySettingsParams = z
  .object({
    /** Restart the primary in place, before the replicas (its writes stop while it restarts), instead of a switchover. */
    primaryFirst: flagParam(),
  })
  .strict();

type Params = z.output<typeof applySettingsParams>;

interface State {
  over: SwitchoverState;
  /** Per member: the postmaster's start time before its restart. */
  startedBefore: Map<number, Date>;
  restarted: string[];
  /** A member that did not start with the new values, and why: every member's file is put back. */
  startFailed?: string;
}

const newState = (): State => ({ over: newSwitchoverState(), startedBefore: new Map(), restarted: [] });

/** postgresql.auto.conf as it was before the apply, kept beside it until the apply ends. */
const autoConf = (m: InstanceRef) => `${m.dataDirectory}/postgresql.auto.conf`;
const keptConf = (m: InstanceRef) => `${m.dataDirectory}/postgresql.auto.conf.pgherd-before-apply`;

/**
 * What the plans read: each member's wanted settings, its last reading, its major's catalogue (`members`);
 * and, by herd, where its driver writes them (`where`: its control plane asked, e.g. RDS's groups).
 */
interface Prepared {
  members: Map<number, MemberSettings>;
  where: Map<number, Awaited<ReturnType<NonNullable<ParameterPlane['whereWritten']>>> | { unread: string }>;
}

/** How long the plan waits for a control plane to say where the values go (RDS's API): the page is waited on. */
const WHERE_READ_MS = 10_000;

async function prepare(herds: HerdRef[], db: Db): Promise<Prepared> {
  const [members, where] = await Promise.all([prepareMembers(herds, db), prepareWhere(herds)]);
  return { members, where };
}

async function prepareWhere(herds: HerdRef[]): Promise<Prepared['where']> {
  const out: Prepared['where'] = new Map();
  await Promise.all(
    herds.map(async (h) => {
      const d = driverOf(h);
      const plane = d instanceof Refusal ? undefined : d.parameters;
      if (!plane?.whereWritten) return;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${String(WHERE_READ_MS / 1000)} s`)), WHERE_READ_MS);
      });
      try {
        out.set(h.id, await Promise.race([plane.whereWritten(h.members), late]));
      } catch (err) {
        out.set(h.id, { unread: errorText(err) });
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return out;
}

async function prepareMembers(herds: HerdRef[], db: Db): Promise<Prepared['members']> {
  const ids = herds.flatMap((h) => h.members.map((m) => m.id));
  const inputs = await loadWantedInputs(db, ids);
  const catalogs = new Map<number, Awaited<ReturnType<typeof loadCatalog>>>();
  const out: Prepared['members'] = new Map();
  for (const id of ids) {
    const row = inputs.get(id);
    if (!row) continue;
    const snap = row.settings_snapshot_id === null ? null : await loadSnapshot(db, row.settings_snapshot_id);
    const major = snap ? majorOf(snap.serverVersionNum) : 0;
    let catalog = catalogs.get(major);
    if (!catalog) {
      catalog = snap ? await loadCatalog(db, major) : new Map();
      catalogs.set(major, catalog);
    }
    out.set(id, { wanted: wantedSettings(row.inputs), running: snap?.settings ?? null, catalog });
  }
  return out;
}

/** `name` as ALTER SYSTEM takes it (an extension's dotted name: each part quoted). */
const identifier = (c: { escapeIdentifier: (s: string) => string }, name: string) =>
  name
    .split('.')
    .map((p) => c.escapeIdentifier(p))
    .join('.');

/** Whether a member running `v` runs the change's value (or `value`): as a value, as drift compares them. */
const runs = (c: SettingChange, v: string | undefined, value = c.to) => v !== undefined && sameValue({ vartype: c.vartype }, value, v);

/** The values the plan writes on a member, as data (the digest covers them). */
const setOf = (mc: MemberChanges) => Object.fromEntries(mc.changes.map((c) => [c.name, c.write]));

/**
 * Every member read again: what the plan changes from must still be what runs (a value already there is
 * fine), and each value is handed to the member's own postgres binary to parse (`postgres -C`, with no
 * configuration file: nothing of the member is read or written).
 */
function checkStep(h: HerdRef, plan: MemberChanges[], plane: ParameterPlane): ActionStep<State> {
  return {
    name: 'read every member again; its Postgres parses each value',
    does: { kind: 'settings.check', members: plan.map((mc) => ({ instance: memberArg(mc.member), set: setOf(mc) })) },
    says: plane.noShell
      ? `read each member's settings again (they must still be what the plan read); no postgres -C: ${plane.noShell}`
      : `read each member's settings again (they must still be what the plan read), then each member's own postgres binary parses the new values (postgres -C, given no configuration file: nothing is written)`,
    timeoutMs: 60_000,
    run: async (x) => {
      const moved: string[] = [];
      for (const mc of plan) {
        const now = await readSettings(mc.member);
        for (const c of mc.changes) {
          const v = now.settings[c.name]?.v;
          if (!runs(c, v, c.from) && !runs(c, v, c.to))
            moved.push(`${mc.member.label}: ${c.name} is ${v ?? 'gone'} now, the plan read ${c.from}`);
        }
      }
      if (moved.length) throw refuse('stale', `the settings changed since the plan: ${moved.join('; ')}. Nothing was written: plan again`);
      if (plane.noShell) {
        x.note({ stdout: `${plan.length} members read; no shell to parse the values with (${plane.noShell})` });
        return;
      }
      for (const mc of plan) {
        if (!mc.changes.length) continue;
        const argv = [
          `${binsOf(mc.member)}/postgres`,
          '--config-file=/dev/null',
          ...['data_directory=/pgherd-parse-check', 'hba_file=/dev/null', 'ident_file=/dev/null'].flatMap((s) => ['-c', s]),
          ...mc.changes.flatMap((c) => ['-c', `${c.name}=${c.write}`]),
          '-C',
          (mc.changes[0] as { name: string }).name,
        ];
        const r = await execNoted(x.deps, mc.member, x, argv, 30_000);
        if (r.code !== 0) {
          const said = /(?:FATAL|ERROR):\s+(.*)/.exec(r.stderr)?.[1] ?? r.stderr.trim().split('\n').pop() ?? `exit ${String(r.code)}`;
          throw refuse('settings', `${mc.member.label}: its Postgres does not take the new values: ${said}. Nothing was written`);
        }
      }
      x.note({ stdout: `${plan.length} members read; every value parsed` });
    },
  };
}

/** ALTER SYSTEM on one member, then a reload; the values a reload applies must be running after it. */
function writeStep(mc: MemberChanges): ActionStep<State> {
  const m = mc.member;
  return {
    name: `write the settings on ${m.label}`,
    does: { kind: 'settings.alter-system', instance: memberArg(m), set: setOf(mc) },
    says: `on ${m.label}: ALTER SYSTEM SET ${mc.changes.map((c) => `${c.name} = '${c.write}'`).join(', ')}; pg_reload_conf(); wait until it has reloaded`,
    timeoutMs: 60_000,
    always: {
      name: `${m.label}: put its settings back if a member did not start with the new ones`,
      does: { kind: 'settings.put-back-if-a-start-failed', instance: memberArg(m) },
      says: `should a member not start with the new values: ${m.label}'s postgresql.auto.conf put back as it was, and it reloaded (started, if it is down); the copy removed either way`,
      timeoutMs: 120_000,
      run: async (x) => {
        if (x.state.startFailed) {
          await execNotedOk(x.deps, m, x, ['cp', '-p', keptConf(m), autoConf(m)], 30_000);
          const o = await observe(m);
          if (o.reachable) {
            const c = instanceClient(m, { connectionTimeoutMillis: 5000, application_name: 'pgherd-settings' });
            c.on('error', () => {});
            await c.connect();
            await c.query('SELECT pg_reload_conf()').finally(() => c.end().catch(() => {}));
            const before = o.confLoadTime;
            if (before)
              await waitObserved(m, 'configuration reloaded', (y) => y.reachable && !!y.confLoadTime && y.confLoadTime > before, {
                timeoutMs: 30_000,
              });
            x.note({
              stdout: `${m.label}: its settings as they were, reloaded (a setting a restart applied stays until its next restart)`,
            });
          } else {
            await execNotedOk(x.deps, m, x, driverFor(m.controlDriver).start(m), 150_000);
            await waitObserved(m, 'running again', (y) => y.reachable, { timeoutMs: 90_000 });
            x.note({ stdout: `${m.label}: its settings as they were, started again` });
          }
        }
        await execNoted(x.deps, m, x, ['rm', '-f', keptConf(m)], 30_000);
      },
    },
    run: async (x) => {
      const before = (await observe(m)).confLoadTime;
      if (!before) throw new Error(`${m.label} did not say when it last loaded its configuration`);
      // The file as it is, kept until the apply ends: what a member that does not start is given back.
      await execNotedOk(x.deps, m, x, ['cp', '-p', autoConf(m), keptConf(m)], 30_000);
      const c = instanceClient(m, { connectionTimeoutMillis: 5000, statement_timeout: 10_000, application_name: 'pgherd-settings' });
      c.on('error', () => {});
      await c.connect();
      try {
        for (const ch of mc.changes) {
          const text = `ALTER SYSTEM SET ${identifier(c, ch.name)} = ${c.escapeLiteral(ch.write)}`;
          x.note({ command: text });
          await c.query(text);
        }
        await c.query('SELECT pg_reload_conf()');
      } finally {
        await c.end().catch(() => {});
      }
      await waitObserved(m, 'configuration reloaded', (o) => o.reachable && !!o.confLoadTime && o.confLoadTime > before, {
        signal: x.signal,
        timeoutMs: 30_000,
      });
      const now = await readSettings(m);
      const wrong = mc.changes.filter((ch) =>
        ch.restart ? !runs(ch, now.settings[ch.name]?.v) && !now.settings[ch.name]?.p : !runs(ch, now.settings[ch.name]?.v),
      );
      if (wrong.length)
        throw new Error(
          `${m.label} reloaded and does not run ${wrong.map((w) => `${w.name} = ${w.to} (it runs ${now.settings[w.name]?.v ?? '?'})`).join(', ')}`,
        );
      x.note({ stdout: mc.changes.map((ch) => `${ch.name}: ${ch.restart ? 'written, waits for the restart' : 'running'}`).join('\n') });
    },
  };
}

/** One configuration for the herd (its driver's one write), then every member runs (or waits to restart into) the values. */
function herdWriteStep(plane: HerdPlane, primary: InstanceRef, plan: MemberChanges[], outside: SettingChange[]): ActionStep<State> {
  const first = plan.find((mc) => mc.changes.length) ?? plan[0];
  const w = plane.writeHerd(
    primary,
    [...(first?.changes ?? []), ...outside],
    plan.map((mc) => mc.member),
  );
  return {
    name: w.name,
    does: w.does,
    says: `${w.says}; wait until every member runs the values (or marks the restart they need)`,
    timeoutMs: 90_000,
    run: async (x) => {
      await w.write(x);
      for (const mc of plan) {
        const deadline = Date.now() + 60_000;
        for (;;) {
          const now = await readSettings(mc.member);
          // A static value that waits outside Postgres (RDS's group) shows only after the reboot.
          const left = mc.changes.filter(
            (c) => !(plane.pendsOutside && c.restart) && !runs(c, now.settings[c.name]?.v) && !now.settings[c.name]?.p,
          );
          if (!left.length) break;
          if (x.signal.aborted || Date.now() > deadline)
            throw new Error(
              `${mc.member.label} does not run ${left.map((c) => `${c.name} = ${c.to}`).join(', ')} a minute after the change was taken`,
            );
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      x.note({ stdout: `every member runs the values, or marks the restart they wait for` });
    },
  };
}

/**
 * A restart whose failure is recorded as a start that failed (the server's last words with it): the write
 * steps' cleanups then put every member's file back, and this one is started on the old values.
 */
function failedStartNoted(m: InstanceRef, step: ActionStep<State>): ActionStep<State> {
  return {
    ...step,
    run: async (x) => {
      try {
        await step.run(x);
      } catch (err) {
        if (x.signal.aborted) throw err;
        const log = await execNoted(x.deps, m, x, ['tail', '-n', '5', `${m.dataDirectory}/pg_ctl.log`], 15_000).catch(() => null);
        const said = (log?.stdout ?? '')
          .split('\n')
          .filter((l) => /FATAL|ERROR|PANIC/.test(l))
          .map((l) => l.replace(/^.*?(FATAL|ERROR|PANIC):\s*/, ''))
          .join('; ');
        x.state.startFailed = `${m.label} did not start with the new values${said ? ` (${said})` : ''}`;
        throw new Error(`${x.state.startFailed}: every member's settings are put back as they were, and it is started on them`);
      }
    },
  };
}

/** A member restarted (as its driver restarts one), then running again: a replica streaming. */
function restartSteps(plane: ParameterPlane, m: InstanceRef): ActionStep<State>[] {
  return [
    {
      name: `${m.label}: read the postmaster start time`,
      does: { kind: 'pg.read-start-time', instance: m.id },
      says: `read ${m.label}'s postmaster start time`,
      timeoutMs: 10_000,
      run: async (x) => {
        const o = await observe(m);
        if (!o.reachable || !o.startTime) throw new Error(`${m.label} is not running (${o.error ?? 'no start time'})`);
        x.state.startedBefore.set(m.id, o.startTime);
      },
    },
    // A member's own file: one that does not start is put back (writeStep's cleanup) and started on the old values.
    plane.scope === 'member' ? failedStartNoted(m, plane.restart<State>(m)) : plane.restart<State>(m),
    {
      name: `${m.label}: wait until restarted${m.role === 'replica' ? ' and streaming' : ''}`,
      does: { kind: 'pg.wait-restarted', instance: m.id, streaming: m.role === 'replica' },
      says: `wait until ${m.label}'s postmaster start time has moved${m.role === 'replica' ? ' and it streams from its upstream again' : ' and it accepts writes'}`,
      timeoutMs: 120_000,
      run: async (x) => {
        const before = x.state.startedBefore.get(m.id);
        if (!before) throw new Error('the start time before the restart was not read');
        const o = await waitObserved(
          m,
          m.role === 'replica' ? 'restarted and streaming' : 'restarted and accepting writes',
          (y) =>
            y.reachable &&
            !!y.startTime &&
            y.startTime > before &&
            (m.role === 'replica' ? y.walReceiver?.status === 'streaming' : y.inRecovery === false),
          { signal: x.signal, timeoutMs: 100_000 },
        );
        x.state.restarted.push(m.label);
        x.note({ stdout: `started at ${o.startTime?.toISOString() ?? '?'}` });
      },
    },
  ];
}

/**
 * After the primary's restart in place: every replica has replayed past it before any is restarted. The
 * primary's restart writes its new values into its WAL (a parameter change record); a replica that has not
 * replayed it yet still records the old, higher values, and restarted below them it would not start.
 */
function replayedStep(primary: InstanceRef, replicas: InstanceRef[]): ActionStep<State> {
  return {
    name: `every replica replays past ${primary.label}'s restart`,
    does: { kind: 'pg.wait-replayed', primary: memberArg(primary), replicas: replicas.map(memberArg) },
    says: `wait until ${replicas.map((r) => r.label).join(', ')} have replayed ${primary.label}'s WAL since its restart (it carries the lowered values a replica checks its own against)`,
    timeoutMs: 90_000,
    run: async (x) => {
      const p = await observe(primary);
      if (!p.reachable || !p.lsn) throw new Error(`${primary.label} does not answer after its restart (${p.error ?? 'no position'})`);
      const target = lsnToNumber(p.lsn);
      for (const r of replicas)
        await waitObserved(r, `replayed past ${p.lsn}`, (o) => o.reachable && !!o.lsn && lsnToNumber(o.lsn) >= target, {
          signal: x.signal,
          timeoutMs: 60_000,
        });
      x.note({ stdout: `${primary.label} at ${p.lsn}; every replica replayed past it` });
    },
  };
}

/** Every member read again: the planned values run; the readings kept, drift judged. */
function verifyStep(h: HerdRef, plan: MemberChanges[]): ActionStep<State> {
  return {
    name: 'read every member again and judge its drift',
    does: { kind: 'settings.verify', members: plan.map((mc) => ({ instance: mc.member.id, set: setOf(mc) })) },
    says: 'read every member again: each runs the planned values, none waits for a restart of them; record what each runs',
    timeoutMs: 60_000,
    settles: true,
    run: async (x) => {
      const off: string[] = [];
      for (const mc of plan) {
        const now = await readSettings(mc.member);
        for (const c of mc.changes) {
          const r = now.settings[c.name];
          if (!runs(c, r?.v) || r?.p)
            off.push(`${mc.member.label}: ${c.name} runs ${r?.v ?? '?'}${r?.p ? ' (a restart pending)' : ''}, not ${c.to}`);
        }
        await recordReading(x.deps.db, mc.member, now);
      }
      const j = await judgeDrift(x.deps.db, { ids: plan.map((mc) => mc.member.id) });
      if (off.length) throw new Error(`not every member runs the values: ${off.join('; ')}`);
      const n = plan.reduce((s, mc) => s + mc.changes.length, 0);
      const text = `${n} setting${n === 1 ? '' : 's'} on ${plan.filter((mc) => mc.changes.length).length} member(s)${x.state.restarted.length ? `; restarted ${x.state.restarted.join(', ')}` : ''}${x.state.over.promoted ? '; switched over' : ''}; ${j.drifted} instance(s) of the fleet drifted`;
      x.deps.outcome?.(text);
      x.note({ stdout: text });
    },
  };
}

/**
 * Apply settings on herd `h`: what refuses it first (its driver, the changes planChanges refuses); then every
 * member checked, the values written, the primary restarted in place when asked for, the replicas restarted one
 * at a time, the primary's restart by a switchover otherwise, and every member read again.
 */
function planHerd(h: HerdRef, params: Params, prepared: Prepared): ActionPlan<State> | Refusal {
  const d = driverOf(h);
  if (d instanceof Refusal) return d;
  const plane = d.parameters;
  if (!plane) return lacking(d, 'set-parameters');
  const unready = plane.unready?.(h.members);
  if (unready) return refuse('settings', unready);
  const where = prepared.where.get(h.id);
  if (where && 'refused' in where) return refuse('settings', `${where.refused}; nothing was changed`);
  const p = planChanges(h.members, prepared.members, {
    primaryFirst: params.primaryFirst === true,
    ...(plane.keeps ? { keeps: plane.keeps } : {}),
    ...(plane.scope === 'herd' ? { oneConfig: plane.oneConfig } : {}),
  });
  if (!p.ok) return refuse('settings', p.problems.join('; '));
  const { members: plan, primary } = p;
  const outside = where && 'facts' in where && where.held ? heldElsewhere(plan, prepared.members, primary, where.held) : [];
  const writes = plan.filter((mc) => mc.changes.length);
  const replicas = plan.filter((mc) => mc.member.id !== primary.id && mc.restart).sort((a, b) => a.member.id - b.member.id);
  const primaryRestart = plan.some((mc) => mc.member.id === primary.id && mc.restart);
  if (!writes.length && !replicas.length && !primaryRestart && !outside.length)
    return refuse('not-applicable', 'every member already runs what its groups say');
  const inPlace = primaryRestart && params.primaryFirst;
  // No switchover on this control plane: the primary restarts in place, after the replicas.
  const inPlaceLast = primaryRestart && !params.primaryFirst && !!plane.primaryInPlace;
  const bySwitchover = primaryRestart && !params.primaryFirst && !plane.primaryInPlace;
  const over = bySwitchover ? switchoverRestartSteps(h, plan, prepared, primary) : [];
  if (over instanceof Refusal) return over;
  const order = [
    ...(inPlace ? [`restart ${primary.label} in place (the primary: writes stop while it restarts)`] : []),
    ...replicas.map((mc) => `restart ${mc.member.label}`),
    ...(bySwitchover ? [`switch over (${primary.label} restarts as a replica as it rejoins)`] : []),
    ...(inPlaceLast ? [`restart ${primary.label} in place (the primary: writes stop while it restarts)`] : []),
  ];
  return {
    steps: [
      checkStep(h, plan, plane),
      ...writeSteps(plane, primary, plan, writes, outside),
      ...(inPlace ? primaryInPlaceSteps(h, plane, primary) : []),
      ...replicas.flatMap((mc) => restartSteps(plane, mc.member)),
      ...over,
      ...(inPlaceLast ? primaryInPlaceSteps(h, plane, primary) : []),
      verifyStep(h, plan),
    ],
    warnings: [
      ...productionWarning(h),
      ...(inPlace || inPlaceLast
        ? [
            `${primary.label} (the primary) restarts in place: writes to the herd stop while it does${inPlaceLast ? ` (${plane.primaryInPlace ?? ''})` : ''}`,
          ]
        : []),
      ...(p.lowering.length ? [`lowered with the primary first: ${p.lowering.join(', ')}`] : []),
    ],
    facts: [
      ...applyFacts(plane, plan, order, bySwitchover),
      ...(where && 'facts' in where ? where.facts : []),
      ...(outside.length
        ? [
            {
              label: 'Only where the configuration is kept',
              value: `${outside.map((c) => `${c.name} ${c.words}`).join(', ')}: every member runs pgherd's value already, and would run the other at its next reboot; written back, no member restarted for it`,
            },
          ]
        : []),
      ...(where && 'unread' in where
        ? [{ label: 'Where the values go', value: `not read when the plan was made (${where.unread}): read when the step runs` }]
        : []),
    ],
  };
}

/** The values written: the herd's one write where its driver keeps one configuration for all, else each member's own. */
function writeSteps(
  plane: ParameterPlane,
  primary: InstanceRef,
  plan: MemberChanges[],
  writes: MemberChanges[],
  outside: SettingChange[],
): ActionStep<State>[] {
  if (plane.scope === 'herd') return writes.length || outside.length ? [herdWriteStep(plane, primary, plan, outside)] : [];
  return writes.map(writeStep);
}

/**
 * The settings whose value where the herd's configuration is kept (RDS's group: `held`, base unit, a
 * boolean 1 or 0) is not the groups', while every member runs the groups' value: what runs is right, and
 * the other value would run at the next reboot. Changes from the held value to the groups'.
 */
function heldElsewhere(
  plan: MemberChanges[],
  settings: Map<number, MemberSettings>,
  primary: InstanceRef,
  held: Record<string, string>,
): SettingChange[] {
  const mine = settings.get(primary.id);
  if (!mine) return [];
  const changing = new Set(plan.flatMap((mc) => mc.changes.map((c) => c.name)));
  const out: SettingChange[] = [];
  for (const [name, w] of mine.wanted) {
    const meta = mine.catalog.get(name);
    const raw = held[name];
    if (changing.has(name) || !meta || w.value === null || raw === undefined) continue;
    const checked = checkValue(meta, w.value);
    if (!checked.ok) continue;
    const isNow = meta.vartype === 'bool' ? (raw === '1' ? 'on' : raw === '0' ? 'off' : raw) : raw;
    if (sameValue(meta, checked.value, isNow)) continue;
    out.push({
      name,
      from: isNow,
      to: checked.value,
      write: w.value,
      words: `${show(meta, isNow)} -> ${show(meta, checked.value)}`,
      restart: meta.context === 'postmaster',
      vartype: meta.vartype,
    });
  }
  return out;
}

/** The primary restarted in place, before the replicas; then every replica replays past its restart. */
function primaryInPlaceSteps(h: HerdRef, plane: ParameterPlane, primary: InstanceRef): ActionStep<State>[] {
  const followers = h.members.filter((m) => m.role === 'replica');
  return [...restartSteps(plane, primary), ...(followers.length ? [replayedStep(primary, followers)] : [])];
}

/** The primary's restart by a switchover, after the replicas (its old primary restarts as it rejoins); or why not. */
function switchoverRestartSteps(
  h: HerdRef,
  plan: MemberChanges[],
  prepared: Prepared,
  primary: InstanceRef,
): ActionStep<State>[] | Refusal {
  const otherReplicas = h.members.filter((m) => m.role === 'replica');
  if (!otherReplicas.length)
    return refuse(
      'settings',
      `${primary.label} needs a restart and the herd has no replica to switch over to: tick "restart the primary first" (its writes stop while it restarts)`,
    );
  const over = planSwitchoverOf(h, {});
  if (over instanceof Refusal) return refuse(over.code, `the switchover that restarts the primary: ${over.reason}`);
  // Once switched over, the candidate is the primary every other member must not be below.
  const pair = switchoverPair(h);
  if (typeof pair !== 'string') {
    const below = belowThePrimary(plan, prepared.members, pair.cand.id);
    if (below.length) return refuse('settings', below.join('; '));
  }
  if (over.refused) return refuse(over.refused.code, `the switchover that restarts the primary: ${over.refused.reason}`);
  return part<SwitchoverState, State>(
    over.steps,
    (s) => s.over,
    (n) => `switchover: ${n}`,
    true,
  );
}

/** The confirmation page's facts: who runs it, each member's changes, the order, and no commit lost by the switchover. */
function applyFacts(plane: ParameterPlane, plan: MemberChanges[], order: string[], bySwitchover: boolean): Fact[] {
  return [
    {
      label: 'Run by',
      value: plane.runBy,
    },
    ...plan.map((mc) => ({ label: `${mc.member.label} (${mc.member.role})`, value: changeWords(mc) })),
    { label: 'In order', value: ['write and reload every member', ...order, 'read every member again'].join('; then ') },
    ...(bySwitchover
      ? [{ label: 'Committed transactions lost', value: 'none: the switchover promotes a replica only once it has replayed all' }]
      : []),
  ];
}

export const applySettingsAction = defineHerdAction({
  name: 'apply-settings',
  control: asks('set-parameters'),
  label: 'Apply settings',
  permission: 'admin',
  dangerous: true,
  runsAsConfirmed: true,
  params: {
    schema: applySettingsParams,
    fields: [
      {
        name: 'primaryFirst',
        label: 'Restart the primary first, in place',
        kind: 'flag',
        emptyLabel: 'the primary is restarted by a switchover, after the replicas',
        help: 'Needed to lower max_connections and the other settings a replica must have at least as high as its primary. Writes stop while the primary restarts.',
      },
    ],
  },
  state: newState,
  prepare: (herds, _p, db) => prepare(herds, db),
  plan: (h, { params, prepared }) => planHerd(h, params, prepared),
});
