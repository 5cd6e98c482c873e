// The port between the actions and the control planes pgherd acts through (pg_ctl over SSH,
// Patroni's REST API, the RDS API). A herd has one driver; an action asks it for a capability and
// never says which control plane runs the herd: the driver says whether it can, and if not why, in
// its own words. As a Kubernetes controller asks its cloud provider `Instances() (Instances, bool)`.
// docs/extending.md says how to add a control plane.
import type { Db } from '@/db/client';
import type { ActionParams, ActionPlan } from '@/lib/engine/define-action';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import type { Observed } from '@/lib/fleet/observe';
import { Refusal, refuse } from '@/lib/fleet/refusal';
import type { SwitchoverParams, SwitchoverState } from './switchover';
import type { ResizeParams, ResizeState } from './resize';
import type { ResizePrepared } from '@/lib/actions/drivers/cloud-prepare';
import type { DrState, Params as FailoverParams } from '@/lib/actions/drivers/failover';
import type { ArchivingAsk, ArchivingPlan } from './archiving';
import type { ParameterPlane } from './parameters';
import type { AccessRulesPlane } from './access-rules';
import type { AddReplicaAsk, ReplicaMaker } from './add-replica';

/**
 * What an action asks of the control plane that runs a herd. Each names a verb a person sees on the
 * console, so that a driver that lacks one can say so in words.
 */
export const CAPABILITIES = {
  start: 'start',
  stop: 'stop',
  restart: 'restart',
  reload: 'reload its configuration',
  promote: 'promote',
  remaster: 'follow another upstream',
  rebuild: 'rebuild from the primary',
  switchover: 'switch over',
  failover: 'DR failover',
  'failover-drill': 'DR drill',
  resize: 'resize',
  'resize-herd': 'resize a herd member by member',
  power: 'power off and on',
  'add-replica': 'add a replica',
  retire: 'retire a member',
  replace: 'replace a member',
  'set-parameters': 'apply settings',
  'access-rules': 'write its access rules (pg_hba)',
  backups: 'back up and restore with pgBackRest',
  'upgrade-minor': 'upgrade to a newer minor',
  'upgrade-major': 'upgrade to a newer major',
  'upgrade-in-place': 'upgrade to a newer major in place (pg_upgrade)',
  pause: 'pause automatic failover',
  shell: 'open a shell on its hosts',
} as const;

export type Capability = keyof typeof CAPABILITIES;

/** What a capability's plan for one member looks at: its herd as the inventory has it, the action's parameters, what the driver's `prepare` read. */
export interface MemberVerb<P> {
  members: InstanceRef[];
  params: P;
  prepared: unknown;
}

/** A restart: what the action asks, and what its steps share (each driver uses what it needs). */
export interface RestartParams {
  /** Only a member whose settings wait for a restart (whoever decides that on this control plane). */
  pendingOnly: boolean;
  /** With failover to a standby (RDS Multi-AZ's reboot). */
  failover: boolean;
}
export interface RestartState {
  before?: Date;
  /** What the instance said when the start time was read (the restart's own check reuses it). */
  seen?: Observed;
  /** Over SSH: the postmaster before the restart, and whether its file proved it serves the instance's address. */
  host?: { pid: number; startedAt: number; servesAddress: boolean };
  after?: Observed;
  /** Why it was left alone (only a pending restart was asked for, and none is). */
  leftAlone?: string;
}

export interface ReloadState {
  before?: Date;
  after?: Observed;
}

export interface PowerState {
  /** Postgres answered before the power off (else there is nothing to stop cleanly). */
  wasUp: boolean;
  /** The cloud was asked to stop the host: its names stay drained (power on puts them back). */
  hostStopped?: boolean;
}

export interface RebuildState {
  rewound: boolean;
  startedBefore?: Date;
}

/**
 * One control plane, as the actions see it. A capability with a plan (`restart`, ...) returns the steps
 * the driver takes for it, or a refusal in its own words; an action asks `driverOf(target)` for it and
 * never names a driver. A capability in `capabilities` without a plan here is one whose action plans
 * it the same way on every driver that has it (a backup over SSH, say).
 */
export interface HerdDriver {
  /** Its name in docs and messages. */
  readonly name: string;
  /** The inventory's `control_driver` values it runs (pg_ctl and pg_ctlcluster are one driver). */
  readonly controls: readonly string[];
  /** What it can do. */
  readonly capabilities: ReadonlySet<Capability>;
  /** Why it does not do `capability`, in its own words (never shown for one it has). */
  lacks(capability: Capability): string;
  /** Reads what its plans for `capability` need beyond the inventory (RDS's view of its instances), once for all its targets. */
  prepare?(capability: Capability, targets: InstanceRef[], db: Db): Promise<unknown>;
  restart?<S extends RestartState>(t: InstanceRef, v: MemberVerb<RestartParams>): ActionPlan<S> | Refusal;
  reload?<S extends ReloadState>(t: InstanceRef, v: MemberVerb<ActionParams>): ActionPlan<S> | Refusal;
  rebuild?<S extends RebuildState>(t: InstanceRef, v: MemberVerb<ActionParams>): ActionPlan<S> | Refusal;
  switchover?(h: HerdRef, params: SwitchoverParams): ActionPlan<SwitchoverState> | Refusal;
  failover?(h: HerdRef, params: FailoverParams): ActionPlan<DrState> | Refusal;
  /** A replica's machine to another type: `prepared` is the action's cloud preparation (the machine now, the ranking of types). */
  resize?(t: InstanceRef, v: { members: InstanceRef[]; params: ResizeParams; prepared: ResizePrepared }): ActionPlan<ResizeState> | Refusal;
  /** Power off and on: `prepared` is what the action's cloud preparation read (each server's machine now). */
  powerOff?(t: InstanceRef, v: MemberVerb<ActionParams>): ActionPlan<PowerState> | Refusal;
  powerOn?(t: InstanceRef, v: MemberVerb<ActionParams>): ActionPlan<unknown> | Refusal;
  /** archive_command and archive_timeout on every member of `h` (Configure backups writes the rest over SSH). */
  archiving?<S>(h: HerdRef, a: ArchivingAsk<S>): ArchivingPlan<S> | Refusal;
  /** Where a herd's settings live and how a member is restarted into them (Apply settings). */
  parameters?: ParameterPlane;
  /** Where a herd's pg_hba lives and who writes it (Apply fleet objects); absent: the driver says why in `lacks('access-rules')`. */
  accessRules?: AccessRulesPlane;
  /** A control plane that makes a herd's new replica itself (RDS's read replica); absent: Add replica lays one out over SSH. */
  addReplica?: ReplicaMaker<AddReplicaAsk>;
}

/** The refusal a driver gives for a capability it lacks. */
export const lacking = (d: HerdDriver, c: Capability): Refusal => refuse('not-applicable', d.lacks(c));

/** A driver's capabilities in words, in the order CAPABILITIES lists them. */
export const capabilityWords = (d: HerdDriver): string[] =>
  (Object.keys(CAPABILITIES) as Capability[]).filter((c) => d.capabilities.has(c)).map((c) => CAPABILITIES[c]);
