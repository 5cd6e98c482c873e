// Apply fleet objects: puts a herd's roles, memberships, databases, CONNECT grants, extensions and access
// rules on what its object set and its own lines declare. The plan lists every statement it will run
// on the primary and the pg_hba lines it will write, from the last reading of the primary; what is there
// undeclared is dropped only when the person ticks "drop what is not declared". It refuses access rules
// that would shut out pgherd, a replica's replication, a pooler or the control plane's local socket,
// naming the line. Then: the primary read again (what the plan changes from must still be what runs),
// the statements run one by one, pg_hba written where the driver keeps it and reloaded, every member's
// rules read back, and the drift judged again.
import type pg from 'pg';
import { z } from 'zod';
import type { Db } from '@/db/client';
import { defineHerdAction, flagParam, productionWarning, type ActionPlan, type ActionStep, type Fact } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { instanceClient } from '@/lib/fleet/pg-access';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import { asks, driverOf, lacking } from '@/lib/actions/drivers';
import { declared, type Declaration } from '@/lib/fleet/objects/declaration';
import type { ObjectChange, Statement } from '@/lib/fleet/objects/diff';
import { hbaFileText, ruleKey, shutOut, type Essential, type RenderedLine } from '@/lib/fleet/objects/hba';
import {
  changesOf,
  hbaContexts,
  hbaLinesOf,
  judgeObjects,
  loadDeclarations,
  loadReading,
  recordObjects,
  type HerdContext,
} from '@/lib/fleet/objects/objects-pass';
import { readHbaRules, type ObjectsReading } from '@/lib/fleet/objects/read-objects';

export const applyObjectsParams = z
  .object({
    /** Drop the roles, databases, extensions and memberships there that nothing declares. */
    dropUndeclared: flagParam(),
  })
  .strict();

type Params = z.output<typeof applyObjectsParams>;

interface State {
  /** Every member read back with the new rules: what the write replaced is not put back. */
  hbaKept: boolean;
}

interface HerdPrepared {
  decl: { declaration: Declaration; errors: string[] } | null;
  declared: boolean;
  ctx: HerdContext | null;
  reading: ObjectsReading | null;
}

async function prepare(herds: HerdRef[], db: Db): Promise<Map<number, HerdPrepared>> {
  const ids = herds.map((h) => h.id);
  const [decls, ctxs] = await Promise.all([loadDeclarations(db, ids), hbaContexts(db, ids)]);
  const out = new Map<number, HerdPrepared>();
  for (const h of herds) {
    const d = decls.get(h.id) ?? null;
    const primary = h.members.find((m) => m.role === 'primary');
    out.set(h.id, {
      decl: d,
      declared: !!d && declared(d.inputs),
      ctx: ctxs.get(h.id) ?? null,
      reading: primary ? ((await loadReading(db, primary.id))?.reading ?? null) : null,
    });
  }
  return out;
}

/** What the plan runs: the changes it makes (by what they change from), and the pg_hba lines it writes. */
interface Planned {
  changes: ObjectChange[];
  statements: Statement[];
  hba: RenderedLine[] | null;
}

function planned(changes: ObjectChange[], hba: RenderedLine[] | null, params: Params): Planned {
  const run = changes.filter((c) => c.what !== 'cannot' && (!c.drop || params.dropUndeclared));
  return { changes: run, statements: run.flatMap((c) => c.sql), hba: run.some((c) => c.kind === 'hba') ? hba : null };
}

/** The connections the herd cannot lose, as its primary saw them (and the inventory says). */
/** How pgherd logs in: SCRAM (md5 lines take a SCRAM password too), a client certificate, or trust. */
const PGHERD_METHODS = ['scram-sha-256', 'md5', 'cert', 'trust'] as const;

function essentials(h: HerdRef, ctx: HerdContext, reading: ObjectsReading, declaredDatabases: string[], viaSsh: boolean): Essential[] {
  const me = reading.me;
  const direct = new Map(reading.roles.map((r) => [r.name, r.memberOf]));
  // +group in pg_hba matches members of members too.
  const roleOf = new Map(
    reading.roles.map((r) => {
      const all = new Set<string>();
      const walk = (n: string): void => {
        for (const g of direct.get(n) ?? [])
          if (!all.has(g)) {
            all.add(g);
            walk(g);
          }
      };
      walk(r.name);
      return [r.name, [...all]];
    }),
  );
  const bootstrap = reading.roles.find((r) => r.bootstrap)?.name ?? 'postgres';
  const out: Essential[] = [...new Set([me.database, ...declaredDatabases])].map((database) => ({
    who: `pgherd (${me.user}${me.address ? ` from ${me.address}` : ' over the socket'}, database ${database})`,
    local: me.address === null,
    address: me.address,
    ssl: me.ssl,
    user: me.user,
    database,
    memberOf: roleOf.get(me.user) ?? [],
    methods: PGHERD_METHODS,
  }));
  const streaming = new Set<string>();
  for (const r of reading.replication) {
    if (r.address) streaming.add(r.address);
    out.push({
      who: `the replication of ${r.address ?? 'a replica over the socket'} (${r.user})`,
      local: r.address === null,
      address: r.address,
      ssl: r.ssl,
      user: r.user,
      database: 'replication',
      memberOf: roleOf.get(r.user) ?? [],
    });
  }
  const primary = h.members.find((m) => m.role === 'primary');
  for (const m of h.members)
    if (m !== primary && !streaming.has(m.address || m.host))
      out.push({
        who: `the replication of ${m.label} (not streaming now)`,
        local: false,
        address: m.address || m.host,
        ssl: null,
        user: null,
        database: 'replication',
      });
  for (const p of ctx.poolers) out.push({ who: `the pooler on ${p}`, local: false, address: p, ssl: null, user: null, database: 'all' });
  // pg_ctl, pgBackRest and Patroni reach the server over its socket as the bootstrap superuser.
  if (viaSsh)
    out.push({
      who: `the control plane's local connections (${bootstrap} over the socket)`,
      local: true,
      address: null,
      ssl: false,
      user: bootstrap,
      database: 'postgres',
    });
  return out;
}

const statementWords = (s: Statement) => (s.database === 'postgres' ? s.text : `in ${s.database}: ${s.text}`);

/** Runs each statement on its own (CREATE DATABASE runs in no transaction), a connection a database. */
async function runStatements(primary: InstanceRef, statements: Statement[], note: (s: string) => void): Promise<void> {
  const clients = new Map<string, pg.Client>();
  try {
    for (const s of statements) {
      let c = clients.get(s.database);
      if (!c) {
        c = instanceClient(primary, {
          database: s.database,
          connectionTimeoutMillis: 5000,
          statement_timeout: 120_000,
          application_name: 'pgherd-objects',
        });
        c.on('error', () => {});
        await c.connect();
        clients.set(s.database, c);
      }
      try {
        await c.query(s.text);
      } catch (err) {
        throw new Error(`${statementWords(s)}: ${(err as Error).message} (the statements before it ran; nothing after it did)`);
      }
      note(statementWords(s));
    }
  } finally {
    for (const c of clients.values()) await c.end().catch(() => {});
  }
}

/** The words that say what a plan's changes are, for a check that finds another plan now. */
const plannedKey = (p: Planned) => JSON.stringify([p.statements, p.hba?.map(ruleKey) ?? null]);

function checkStep(
  h: HerdRef,
  primary: InstanceRef,
  p: HerdPrepared & { decl: NonNullable<HerdPrepared['decl']>; ctx: NonNullable<HerdPrepared['ctx']> },
  params: Params,
  plan: Planned,
): ActionStep<State> {
  return {
    name: `read ${primary.label}'s objects again`,
    does: { kind: 'objects.check', member: memberArg(primary) },
    says: `read ${primary.label}'s roles, databases, extensions${plan.hba ? ' and pg_hba' : ''} again: what the plan changes must still be what differs, else nothing is written`,
    run: async (x) => {
      const reading = await recordObjects(x.deps.db, primary.id, p.decl.declaration);
      const hba = hbaLinesOf(p.decl.declaration, p.ctx, reading);
      const now = planned(changesOf(p.decl, p.ctx, reading).changes, hba?.lines ?? null, params);
      if (plannedKey(now) !== plannedKey(plan)) {
        const before = new Set(plan.statements.map(statementWords));
        const after = new Set(now.statements.map(statementWords));
        const moved = [
          ...[...after].filter((s) => !before.has(s)).map((s) => `now also: ${s}`),
          ...[...before].filter((s) => !after.has(s)).map((s) => `no longer: ${s}`),
        ];
        throw refuse(
          'stale',
          `${h.name}'s objects changed since the plan${moved.length ? ` (${moved.join('; ')})` : ' (its pg_hba)'}. Nothing was written: plan again`,
        );
      }
      x.note({ stdout: `${primary.label}: as planned, ${plan.changes.length} to change` });
    },
  };
}

function sqlStep(primary: InstanceRef, statements: Statement[]): ActionStep<State> {
  return {
    name: `run the statements on ${primary.label}`,
    does: { kind: 'objects.sql', member: memberArg(primary), statements: statements.map((s) => [s.database, s.text]) },
    says: `on ${primary.label}, one by one (each on its own; a failure stops the rest): ${statements.map(statementWords).join('; ')}`,
    timeoutMs: 30 * 60_000,
    run: async (x) => {
      const ran: string[] = [];
      try {
        await runStatements(primary, statements, (s) => ran.push(s));
      } finally {
        x.note({ stdout: ran.length ? `ran: ${ran.join('\n')}` : 'ran nothing' });
      }
    },
  };
}

function verifyStep(
  h: HerdRef,
  primary: InstanceRef,
  p: HerdPrepared & { decl: NonNullable<HerdPrepared['decl']>; ctx: NonNullable<HerdPrepared['ctx']> },
  params: Params,
  plan: Planned,
): ActionStep<State> {
  return {
    name: 'read every member again and judge the drift',
    does: { kind: 'objects.verify', herd: h.id },
    says: `read ${primary.label}'s objects${plan.hba ? ` and every member's pg_hba (${h.members.map((m) => m.label).join(', ')})` : ''} again: nothing the plan changed may still differ`,
    run: async (x) => {
      const reading = await recordObjects(x.deps.db, primary.id, p.decl.declaration);
      const hba = hbaLinesOf(p.decl.declaration, p.ctx, reading);
      const left = planned(changesOf(p.decl, p.ctx, reading).changes, hba?.lines ?? null, params).changes.filter((c) => c.kind !== 'hba');
      if (left.length)
        throw new Error(
          `${primary.label} still differs after the statements ran: ${left.map((c) => `${c.name} (${c.runs}, declared ${c.declared})`).join('; ')}`,
        );
      if (plan.hba) {
        const want = JSON.stringify(plan.hba.map(ruleKey));
        for (const m of h.members) {
          const rules = await readHbaRules(m);
          if (JSON.stringify(rules) !== want) throw new Error(`${m.label} does not run the new pg_hba after its reload`);
        }
        x.state.hbaKept = true;
      }
      await judgeObjects(x.deps.db, { herdIds: [h.id] });
      x.note({ stdout: `${h.name}: as declared` });
    },
  };
}

function facts(primary: InstanceRef, plan: Planned, all: ObjectChange[], params: Params, runBy: string | null): Fact[] {
  const left = all.filter((c) => c.drop && !params.dropUndeclared);
  const cannot = all.filter((c) => c.what === 'cannot');
  return [
    ...plan.changes.filter((c) => c.kind !== 'hba').map((c) => ({ label: c.name, value: `${c.what}: ${c.runs} -> ${c.declared}` })),
    ...(plan.statements.length ? [{ label: `SQL on ${primary.label}`, value: plan.statements.map(statementWords).join('; ') }] : []),
    ...(plan.hba
      ? [
          {
            label: 'pg_hba',
            value: `${plan.changes.find((c) => c.kind === 'hba')?.why ?? ''}; written by ${runBy ?? '?'}: ${plan.hba.map((l) => l.text).join(' | ')}`,
          },
        ]
      : []),
    ...(left.length
      ? [
          {
            label: 'Not declared, left as they are',
            value: `${left.map((c) => c.name).join(', ')} (tick "drop what is not declared" to drop them)`,
          },
        ]
      : []),
    ...(cannot.length ? [{ label: 'Apply cannot change', value: cannot.map((c) => `${c.name}: ${c.why ?? ''}`).join('; ') }] : []),
  ];
}

function planHerd(h: HerdRef, params: Params, prepared: Map<number, HerdPrepared> | undefined): ActionPlan<State> | Refusal {
  const p = prepared?.get(h.id);
  const primary = h.members.find((m) => m.role === 'primary');
  if (!primary) return refuse('topology', `${h.name} has no primary: its objects are written on its primary`);
  if (!p?.declared || !p.decl || !p.ctx)
    return refuse(
      'not-applicable',
      `${h.name} declares no objects: give it or its environment an object set (Settings > Object sets), or lines of its own`,
    );
  if (p.decl.errors.length) return refuse('params', `its declaration cannot be used: ${p.decl.errors.join('; ')}`);
  if (!p.reading)
    return refuse(
      'unreachable',
      `${primary.label}'s objects have not been read yet: the objects pass reads them within PGHERD_OBJECTS_EVERY_MS`,
    );
  const driver = driverOf(h);
  if (driver instanceof Refusal) return driver;
  // A control plane with no pg_hba file (RDS) gets the rest: its access rules are said to be left, and why.
  const hbaLeft = p.decl.declaration.hba.length && !driver.accessRules ? lacking(driver, 'access-rules').reason : null;
  const ctx = { ...p.ctx, hbaFile: p.ctx.hbaFile && !!driver.accessRules };
  const decl = { ...p, decl: p.decl, ctx };
  const runBy = driver.accessRules?.runBy ?? null;
  const { changes, errors } = changesOf(p.decl, ctx, p.reading);
  if (errors.length) return refuse('params', errors.join('; '));
  const hba = hbaLinesOf(p.decl.declaration, ctx, p.reading);
  if (hba) {
    const shut = shutOut(hba.lines, essentials(h, ctx, p.reading, [...p.decl.declaration.databases.keys()], !primary.rds));
    if (shut.length) return refuse('params', `${shut.join('; ')}. Nothing written`);
  }
  const missingGroup = changes.filter((c) => c.kind === 'membership' && c.what === 'cannot');
  if (missingGroup.length) return refuse('params', missingGroup.map((c) => `${c.name}: ${c.why ?? ''}`).join('; '));
  const plan = planned(changes, hba?.lines ?? null, params);
  if (!plan.changes.length) {
    const cannot = changes.filter((c) => c.what === 'cannot');
    const left = changes.filter((c) => c.what !== 'cannot');
    return refuse(
      'not-applicable',
      `${h.name} has what it declares${left.length ? ` (left as they are: ${left.map((c) => c.name).join(', ')})` : ''}${
        cannot.length ? `; what Apply cannot change: ${cannot.map((c) => `${c.name} (${c.why ?? ''})`).join('; ')}` : ''
      }`,
    );
  }
  const hbaSteps =
    plan.hba && driver.accessRules
      ? driver.accessRules.write<State>(h.members, primary, {
          text: hbaFileText(plan.hba),
          lines: plan.hba.map((l) => l.text),
          rules: plan.hba.map(ruleKey),
          hbaFile: p.reading.hbaFile,
          kept: (x) => x.state.hbaKept,
        })
      : [];
  const drops = plan.changes.filter((c) => c.drop);
  return {
    steps: [
      checkStep(h, primary, decl, params, plan),
      ...(plan.statements.length ? [sqlStep(primary, plan.statements)] : []),
      ...hbaSteps,
      verifyStep(h, primary, decl, params, plan),
    ],
    warnings: [
      ...productionWarning(h),
      ...(hbaLeft ? [`its access rules (pg_hba lines) are not written: ${hbaLeft}`] : []),
      ...(drops.length
        ? [
            {
              says: `drops what nothing declares: ${drops.map((c) => c.name).join(', ')}`,
              does: { kind: 'objects.drops', names: drops.map((c) => c.name) },
            },
          ]
        : []),
    ],
    facts: facts(primary, plan, changes, params, runBy),
  };
}

export const applyObjectsAction = defineHerdAction({
  name: 'apply-objects',
  control: asks(null),
  label: 'Apply fleet objects',
  permission: 'admin',
  dangerous: true,
  runsAsConfirmed: true,
  params: {
    schema: applyObjectsParams,
    // A person ticks it, seeing what goes: no rule carries it to a later fire, whose plan nobody reads.
    attestations: ['dropUndeclared'],
    fields: [
      {
        name: 'dropUndeclared',
        label: 'Drop what is not declared',
        kind: 'flag',
        emptyLabel: 'roles, databases, extensions and memberships nothing declares are left as they are',
        help: 'DROP ROLE, DROP DATABASE, DROP EXTENSION and REVOKE for what the primary has and nothing declares (the plan lists each). A database dropped is gone with its data.',
      },
    ],
  },
  state: (): State => ({ hbaKept: false }),
  prepare: (herds, _p, db) => prepare(herds, db),
  plan: (h, { params, prepared }) => planHerd(h, params, prepared),
});
