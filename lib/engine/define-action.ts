// An action is its plan (pgsql-cluster-manager's Pipeline(Step(...).Defer(...))): one function looks at
// the target as the inventory has it and either refuses it or returns the list of steps that will run,
// each with what it does as data and the words the confirmation page shows. The page shows that list;
// the worker runs the same list, made again when the target starts. Values one step finds and later
// ones use (a candidate chosen when the failover runs) live in the action's typed state, made fresh for
// each run.
import type { DiagramChange } from '@/lib/fleet/herds/diagram-after';
import { z } from 'zod';
import type { Db } from '@/db/client';
import type { Role } from '@/db/types';
import type { SshPool } from '@/lib/adapters/ssh/ssh-client';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { step as pipelineStep, type Step, type StepContext } from '@/lib/engine/pipeline';
import { Refusal, refuse } from '@/lib/fleet/refusal';
import { SubmitError } from '@/lib/engine/submit-errors';
import { changedSince, type ConfirmedStep, type Does } from '@/lib/engine/plan-identity';

export type { Role };

export interface ActionDeps {
  db: Db;
  ssh: SshPool;
  /** The operation being run: what its steps write in the audit log (a DNS change, say). */
  operation?: { id: number; requestedBy: { id: number | null; username: string } };
  /** The target being run: what it owes clients is recorded against it (owed_cleanups). */
  targetId?: number;
  /** What the target came to, in one line (kept with the target, shown on the operation page and in the API). */
  outcome?: (text: string) => void;
}

/** What a step gets when it runs: its record, its stop signal, the worker's connections and the run's state. */
export interface RunContext<S> extends StepContext {
  deps: ActionDeps;
  state: S;
}

/** One step of an action: what it does, the words of the plan, and what the worker runs. */
export interface ActionStep<S = unknown> {
  /** Its name in the operation's record. */
  name: string;
  /** What will happen, as data (a kind and its arguments): what makes a confirmed plan the same plan. */
  does: Does;
  /** What will happen, in words, on the confirmation page. */
  says: string;
  timeoutMs?: number;
  run: (x: RunContext<S>) => Promise<void>;
  /** Registered before `run` runs and always run at the end, newest first, whatever happened. */
  always?: ActionStep<S>;
  /** The `always` steps registered so far run before this one (one part of a longer flow is finished first). */
  settles?: boolean;
  /** An `always` step that gives clients back what was taken, safe whoever holds the herd: it runs even after the lease is lost. */
  givesBack?: boolean;
  /** An `always` step that undoes the target's own change: after a lost lease it runs only while no one else may hold the herd yet. */
  whileHeld?: boolean;
  /**
   * Safe to abandon while it runs when an urgent operation preempts the target: what it leaves half done
   * is undone by an `always` registered before it (a restore into a folder the flow claimed).
   */
  preemptible?: boolean;
}

/** Says what `always` will do after the step, in the step's line. */
export function stepWords(s: ActionStep<never>): string {
  return s.always ? `${s.says}; ${s.always.says}` : s.says;
}

/** What the step does with what `always` does after it, as one value (`always` is no step's own argument). */
export function stepDoes(s: ActionStep<never>): Does {
  return s.always ? { ...s.does, always: s.always.does } : s.does;
}

/**
 * A warning on the confirmation page. With `does` when what it warns of is part of what the plan does
 * (the target is the herd's primary: its clients lose their connections), so a plan whose target
 * became the primary is another plan; a warning in words only repeats what the steps, the parameters
 * or the members' identity already say.
 */
export type Warning = string | { says: string; does: Does };

const warningWords = (w: Warning) => (typeof w === 'string' ? w : w.says);

export interface Fact {
  label: string;
  value: string;
}

/** What a target costs an hour before and after (a resize): the confirmation page adds them up. Null: no price known. */
export interface CostChange {
  nowPerHour: number | null;
  afterPerHour: number | null;
}

/** What an action decides for one target. */
export interface ActionPlan<S> {
  steps: ActionStep<S>[];
  warnings?: Warning[];
  /** What the confirmation page shows before the steps (a failover: old primary, candidate, lag, data loss). */
  facts?: Fact[];
  /** Refused, though the steps are shown (a switchover whose candidate lags too far: what it would do). */
  refused?: Refusal;
  cost?: CostChange;
  /** What the target is now, in what the action changes (a resize: its instance type): a rule's reverse puts it back. */
  before?: Record<string, string>;
  /** How it changes the herd's shape (a switchover, a failover, a remaster): the confirmation page draws the herd after it. */
  change?: DiagramChange;
  /** A fresh state for each run, when it starts from what the plan found (else the action's `state`). */
  state?: () => S;
}

/** The plan as the confirmation page, the API and the digest see it. */
export interface TargetPlan {
  /** What will happen, in words, step by step. */
  steps: string[];
  /** What will happen, as data, step by step (one a step, beside `steps`): what the digest covers. */
  does: Does[];
  /** Set when this target is refused; nothing runs for it. */
  refused?: string;
  refusalCode?: Refusal['code'];
  warnings: string[];
  /** The warnings that are part of what it will do, as data: the digest covers these, not `warnings`' words. */
  warns: Does[];
  facts?: Fact[];
  cost?: CostChange;
  before?: Record<string, string>;
  change?: DiagramChange;
}

/** Parameters as the action's schema parsed them (an empty object for actions without any). */
export type ActionParams = Record<string, unknown>;

/**
 * One parameter on the confirmation page. `herd-member`: a member of the targets' herd, offered
 * when every target is in the same herd; left empty, the action does what `emptyLabel` says.
 * `flag`: a checkbox, off unless ticked (`emptyLabel` says what off means).
 * `text`: a line of text the schema checks (`emptyLabel` is its placeholder).
 */
export interface ActionParamField {
  name: string;
  label: string;
  kind: 'herd-member' | 'flag' | 'text';
  emptyLabel: string;
  help: string;
}

/** A flag parameter as forms send it ("1", "true") and the API ({ "x": true }); absent means off. */
export const flagParam = () =>
  z
    .union([z.boolean(), z.enum(['1', 'true', '0', 'false', 'on'])])
    .transform((v) => v === true || v === '1' || v === 'true' || v === 'on')
    .optional();

type ParamsSchema = z.ZodType<ActionParams>;
const NO_PARAMS = z.object({}).strict();

/** What every action declares, whatever it runs on. */
interface ActionMeta {
  name: string;
  label: string;
  /** The role needed on the target's environment. */
  permission: Role;
  /**
   * A higher role than `permission` for some parameters (a full backup, which can push older backups out
   * of retention, is an admin's): asked at planning and again when each target runs.
   */
  permissionFor?: (params: ActionParams) => Role;
  /** Needs the confirmation typed even for a single non-production target. */
  dangerous: boolean;
  /**
   * Parameters: validated by `schema` wherever they come in (page, form, API), shown as `fields`.
   * `attestations` names those that are a person's word about the world ("I have fenced it myself"):
   * true only when someone says so now, so no rule may carry one to a later fire.
   */
  params?: { schema: ParamsSchema; fields: ActionParamField[]; attestations?: readonly string[] };
  /**
   * False for an action a person must decide at the moment (a DR failover): no rule may run it. Absent:
   * it may be scheduled.
   */
  schedulable?: boolean;
  /**
   * It cannot wait (a spot evacuation on its two minutes' notice, a DR failover): its targets go before
   * the herd's queued ones and ask the one holding the herd to stop at its next safe point, which then
   * ends preempted (lib/engine/preempt.ts).
   */
  urgent?: boolean;
  /**
   * Started by pgherd itself only, saying on what (an evacuation: "on EC2's spot interruption notice"):
   * refused at planning to anyone else, API tokens and admins included (being urgent, it preempts others' work).
   */
  systemOnly?: string;
  /**
   * It establishes a server's host key itself, with a read-only command (Check SSH, Replace the pinned
   * key): the only actions offered on a server without one. Every other action, over SSH or over SQL,
   * is refused at planning and again at execution while any server it touches has no pinned key.
   */
  pinsHostKey?: boolean;
  /**
   * It runs only what was confirmed: a target whose plan, made again when it starts, reads otherwise
   * (another instance type now, another hook, another member to drain to) is refused, not run as the
   * new plan says. For actions whose confirmation page shows what the user agreed to pay or run.
   */
  runsAsConfirmed?: boolean;
  /**
   * What it asks of the control plane that runs each member it touches (pg_ctl over SSH, Patroni, RDS):
   * made with `asks(capability)` of the driver port (lib/actions/drivers). Asked before anything else,
   * at planning and again when a target runs: a Refusal (in the driver's own words) refuses the target.
   */
  control: (controlDriver: string) => Refusal | null;
}

/** The role `action` needs with these parameters. */
export const roleNeeded = (action: Pick<ActionMeta, 'permission' | 'permissionFor'>, params: ActionParams): Role =>
  action.permissionFor?.(params) ?? action.permission;

/** Refuses (throws the Refusal) a target one of whose control drivers `action` cannot act through. */
export function checkDriver(action: Pick<ActionMeta, 'control'>, controlDriver: string): void {
  const refused = action.control(controlDriver);
  if (refused) throw refused;
}

/** Why `action` may not run on these servers (one without a pinned SSH host key), or undefined. */
export function unpinnedRefusal(
  action: { pinsHostKey?: boolean },
  /** `shell: false`: a server pgherd never opens a shell on (an RDS DB instance): no host key to pin. */
  servers: { name: string; ssh: { hostKeyFingerprint: string | null }; shell?: boolean }[],
): Refusal | undefined {
  if (action.pinsHostKey) return undefined;
  const unpinned = [...new Set(servers.filter((x) => x.shell !== false && !x.ssh.hostKeyFingerprint).map((x) => x.name))];
  if (!unpinned.length) return undefined;
  return refuse(
    'unpinned-host-key',
    `no SSH host key is pinned for ${unpinned.join(', ')}: pgherd has not verified ${unpinned.length > 1 ? 'these servers' : 'this server'}, and changes nothing there (over SSH or SQL) until an admin runs Check SSH (pin the host key)`,
  );
}

/**
 * Why nothing may run on these servers (one EC2 discovery found in an environment that asks for an
 * admin's approval, not yet approved), or undefined. Before the host key: Check SSH waits for it too.
 */
export function pendingRefusal(servers: { name: string; approval?: string | null }[]): Refusal | undefined {
  const pending = [...new Set(servers.filter((x) => x.approval === 'pending').map((x) => x.name))];
  if (!pending.length) return undefined;
  return refuse(
    'pending-approval',
    `${pending.join(', ')} ${pending.length > 1 ? 'were' : 'was'} found by EC2 discovery in an environment that asks for approval: pgherd acts on ${pending.length > 1 ? 'them' : 'it'} once an admin sets its approval to approved`,
  );
}

/** The servers a herd action touches: each member's and each PgBouncer's. */
export const herdServers = (h: {
  members: { hostname: string; serverApproval?: string | null; ssh: { hostKeyFingerprint: string | null }; rds?: unknown }[];
  poolers: { label: string; ssh: { hostKeyFingerprint: string | null } }[];
}) => [
  ...h.members.map((m) => ({ name: m.hostname, ssh: m.ssh, approval: m.serverApproval, shell: !m.rds })),
  ...h.poolers.map((p) => ({ name: p.label.replace(/:\d+$/, ''), ssh: p.ssh })),
];

/** What an instance action looks at besides its target: the target's herd as the inventory has it. */
export interface InstancePlanContext<P, X = undefined> {
  members: InstanceRef[];
  params: P;
  /** What the action's `prepare` read for all the targets before planning (undefined without one). */
  prepared: X;
}

/** What a herd action looks at besides its herd. */
export interface HerdPlanContext<P, X = undefined> {
  params: P;
  prepared: X;
}

/** A plan context as the engine passes it: what `prepare` read, when the action has one. */
type EngineContext<C> = Omit<C, 'prepared'> & { prepared?: unknown };

/** An action as the engine sees it: plans for the page, steps for the worker, parameters untyped. */
interface EngineAction<T, C> extends ActionMeta {
  /**
   * Reads what the plans need beyond the inventory (EC2's view of the targets, a type catalogue),
   * once for all the targets, before any is planned: on the confirmation page and again when a target
   * starts. A Refusal refuses them all; anything else propagates (the API answers 503 for AWS missing).
   */
  prepare?: (targets: T[], params: ActionParams, db: Db) => Promise<unknown>;
  /** The confirmation page's plan for one target. A Refusal thrown while planning refuses it; anything else is a bug and propagates. */
  plan: (target: T, ctx: C) => TargetPlan;
  /**
   * The same plan's steps, bound to the worker's connections and a fresh state; throws Refusal when it
   * refuses now, or when `confirmed` (the steps as the user confirmed them) does otherwise.
   */
  steps: (target: T, deps: ActionDeps, ctx: C, confirmed?: readonly (ConfirmedStep | string)[] | null) => Step[];
}

/** An action on instances: each ticked instance is a target. */
export interface InstanceAction extends EngineAction<InstanceRef, EngineContext<InstancePlanContext<ActionParams>>> {
  on: 'instance';
}

/** An action on herds (switchover, DR failover, refresh DNS): each ticked herd is a target. */
export interface HerdAction extends EngineAction<HerdRef, EngineContext<HerdPlanContext<ActionParams>>> {
  on: 'herd';
}

export type AnyAction = InstanceAction | HerdAction;

/** Finds an action by name: the engine is handed the list of actions by its entry point (lib/actions/registry.ts). */
export type ActionLookup = (name: string) => AnyAction | undefined;

export const isHerdAction = (a: AnyAction): a is HerdAction => a.on === 'herd';

/** How an action is written: typed parameters, a typed state, one plan. */
export interface ActionSpec<T, C, Schema extends ParamsSchema, S, X = undefined> extends Omit<ActionMeta, 'params'> {
  params?: { schema: Schema; fields: ActionParamField[]; attestations?: readonly (keyof z.output<Schema> & string)[] };
  prepare?: (targets: T[], params: z.output<Schema>, db: Db) => Promise<X>;
  /** A fresh state for each run of the steps (omit when the steps share nothing). */
  state?: () => S;
  plan: (target: T, ctx: C) => ActionPlan<S> | Refusal;
}

/** A refused target's plan: nothing runs, nothing is done. */
export const refusedPlan = (r: Refusal): TargetPlan => ({
  steps: [],
  does: [],
  refused: r.reason,
  refusalCode: r.code,
  warnings: [],
  warns: [],
});

/** The steps as a confirmed plan keeps them: the words shown and the values compared. */
const confirmable = <S>(steps: ActionStep<S>[]): ConfirmedStep[] =>
  steps.map((s) => ({ says: stepWords(s as ActionStep<never>), does: stepDoes(s as ActionStep<never>) }));

function toTargetPlan<S>(p: ActionPlan<S> | Refusal): TargetPlan {
  if (p instanceof Refusal) return refusedPlan(p);
  const steps = confirmable(p.steps);
  const warnings = p.warnings ?? [];
  return {
    steps: steps.map((s) => s.says),
    does: steps.map((s) => s.does),
    warnings: warnings.map(warningWords),
    warns: warnings.flatMap((w) => (typeof w === 'string' ? [] : [w.does])),
    ...(p.facts ? { facts: p.facts } : {}),
    ...(p.cost ? { cost: p.cost } : {}),
    ...(p.before ? { before: p.before } : {}),
    ...(p.change ? { change: p.change } : {}),
    ...(p.refused ? { refused: p.refused.reason, refusalCode: p.refused.code } : {}),
  };
}

function bind<S>(s: ActionStep<S>, deps: ActionDeps, state: S): Step {
  return pipelineStep(s.name, (ctx) => s.run({ ...ctx, deps, state }), {
    timeoutMs: s.timeoutMs,
    defer: s.always && bind(s.always, deps, state),
    settles: s.settles,
    givesBack: s.givesBack,
    whileHeld: s.whileHeld,
    preemptible: s.preemptible,
  });
}

function toSteps<S>(
  p: ActionPlan<S> | Refusal,
  deps: ActionDeps,
  state: () => S,
  confirmed?: readonly (ConfirmedStep | string)[] | null,
): Step[] {
  if (p instanceof Refusal) throw p;
  if (p.refused) throw p.refused;
  const changed = confirmed && changedSince(confirmed, confirmable(p.steps));
  if (changed) throw changed;
  const s = (p.state ?? state)();
  return p.steps.map((x) => bind(x, deps, s));
}

/**
 * Why a rule may not run `action` with `params` (each problem with the body's path), or none: an action
 * that is not schedulable, and any attestation given, since a fire would replay a person's word.
 */
export function scheduleProblems(action: ActionMeta, params: ActionParams): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  if (action.schedulable === false)
    out.push({ path: 'action', message: `${action.label} cannot be scheduled: a person decides it at the moment, on the console` });
  for (const name of action.params?.attestations ?? [])
    if (params[name] !== undefined && params[name] !== false && params[name] !== null)
      out.push({
        path: `params.${name}`,
        message: `${name} is a person's attestation, true only when said at the moment: a rule may not say it for them at each fire`,
      });
  return out;
}

/** Parameters that do not fit the action's schema: a 400 from the API, nothing planned. */
export class ParamsError extends SubmitError {
  constructor(message: string) {
    super('params', 400, message, { params: message }, 'invalid params');
    this.name = 'ParamsError';
  }
}

/** The one place parameters are parsed: wherever they come in (page, form, API), and again in the action. */
function parseWith<Schema extends ParamsSchema>(name: string, schema: Schema | undefined, raw: unknown): z.output<Schema> {
  if (!schema) {
    if (raw && typeof raw === 'object' && Object.keys(raw).length) throw new ParamsError(`${name} takes no parameters`);
    return NO_PARAMS.parse({}) as z.output<Schema>;
  }
  const r = schema.safeParse(raw ?? {});
  if (!r.success) throw new ParamsError(r.error.issues.map((i) => `${i.path.join('.') || 'params'}: ${i.message}`).join('; '));
  return r.data;
}

/** The action's parameters as its schema parses them; ParamsError when they do not fit. */
export const parseParams = (action: AnyAction, raw: unknown): ActionParams => parseWith(action.name, action.params?.schema, raw);

/** Inside a plan, parameters that do not fit (they were parsed on their way in: this is a stored operation) refuse the target. */
function parser<Schema extends ParamsSchema>(name: string, schema: Schema | undefined): (raw: ActionParams) => z.output<Schema> {
  return (raw) => {
    try {
      return parseWith(name, schema, raw);
    } catch (err) {
      if (err instanceof ParamsError) throw refuse('params', `${name}: ${err.message}`);
      throw err;
    }
  };
}

const noState = () => ({}) as never;

export function defineAction<Schema extends ParamsSchema = typeof NO_PARAMS, S = Record<string, never>, X = undefined>(
  spec: ActionSpec<InstanceRef, InstancePlanContext<z.output<Schema>, X>, Schema, S, X>,
): InstanceAction {
  const parse = parser(spec.name, spec.params?.schema);
  const decide = (t: InstanceRef, ctx: EngineContext<InstancePlanContext<ActionParams>>) =>
    spec.plan(t, { members: ctx.members, params: parse(ctx.params), prepared: ctx.prepared as X });
  const prepare = spec.prepare;
  return {
    ...spec,
    prepare: prepare && ((targets, params, db) => prepare(targets, parse(params), db)),
    on: 'instance',
    plan: (t, ctx) => toTargetPlan(decide(t, ctx)),
    steps: (t, deps, ctx, confirmed) => toSteps(decide(t, ctx), deps, spec.state ?? noState, confirmed),
  };
}

export function defineHerdAction<Schema extends ParamsSchema = typeof NO_PARAMS, S = Record<string, never>, X = undefined>(
  spec: ActionSpec<HerdRef, HerdPlanContext<z.output<Schema>, X>, Schema, S, X>,
): HerdAction {
  const parse = parser(spec.name, spec.params?.schema);
  const decide = (h: HerdRef, ctx: EngineContext<HerdPlanContext<ActionParams>>) =>
    spec.plan(h, { params: parse(ctx.params), prepared: ctx.prepared as X });
  const prepare = spec.prepare;
  return {
    ...spec,
    prepare: prepare && ((targets, params, db) => prepare(targets, parse(params), db)),
    on: 'herd',
    plan: (h, ctx) => toTargetPlan(decide(h, ctx)),
    steps: (h, deps, ctx, confirmed) => toSteps(decide(h, ctx), deps, spec.state ?? noState, confirmed),
  };
}

/** The production warning a herd action shows. */
export const productionWarning = (h: { environment: string }): Warning[] =>
  /^prod/i.test(h.environment)
    ? [{ says: `production: ${h.environment}`, does: { kind: 'warn.production', environment: h.environment } }]
    : [];

/** The warning that the target is the herd's primary: what it does costs its clients their connections. */
export const PRIMARY_WARNING = 'warn.primary';

/** Warnings every instance action shares. */
export function commonWarnings(t: InstanceRef): Warning[] {
  const w = productionWarning(t);
  // A fenced old primary (after a DR failover) or one to be rebuilt is no longer what clients use.
  if (t.role === 'primary' && t.state !== 'fenced' && t.state !== 'needs_rebuild')
    w.push({ says: 'this is the herd\u2019s primary: clients lose their connections', does: { kind: PRIMARY_WARNING, instance: t.id } });
  return w;
}
