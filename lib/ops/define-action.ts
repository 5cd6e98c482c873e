// Actions are values with metadata: what they need, how they plan, which steps they run.
import { z } from 'zod';
import type { Db } from '@/db/client';
import type { SshPool } from '@/lib/ssh/ssh-client';
import type { HerdRef } from './herd-ref';
import type { InstanceRef } from './instance-ref';
import type { Step } from './pipeline';

export type Role = 'viewer' | 'operator' | 'admin';

export interface TargetPlan {
  /** What will happen, in words, step by step. */
  steps: string[];
  /** Set when this target is refused; nothing runs for it. */
  refused?: string;
  warnings: string[];
  /** What the confirmation page shows before the steps (a failover: old primary, candidate, lag, data loss). */
  facts?: { label: string; value: string }[];
}

export interface ActionDeps {
  db: Db;
  ssh: SshPool;
  /** The operation being run: what its steps write in the audit log (a DNS change, say). */
  operation?: { id: number; requestedBy: { id: number | null; username: string } };
  /** What the target came to, in one line (kept with the target, shown on the operation page and in the API). */
  outcome?: (text: string) => void;
}

/** Parameters as the action's schema parsed them (an empty object for actions without any). */
export type ActionParams = Record<string, unknown>;

/**
 * What an action may look at besides its target: the target's herd as the inventory has it, and the
 * parameters the user chose for the whole operation.
 */
export interface PlanContext {
  members: InstanceRef[];
  params: ActionParams;
}

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
export const flagParam = () => z.union([z.boolean(), z.enum(['1', 'true', '0', 'false', 'on'])])
  .transform((v) => v === true || v === '1' || v === 'true' || v === 'on').optional();

/** What every action declares, whatever it runs on. */
interface ActionMeta {
  name: string;
  label: string;
  /** The role needed on the target's environment. */
  permission: Role;
  /** Needs the confirmation typed even for a single non-production target. */
  dangerous: boolean;
  /** Parameters: validated by `schema` wherever they come in (page, form, API), shown as `fields`. */
  params?: { schema: z.ZodType<ActionParams>; fields: ActionParamField[] };
  /**
   * It establishes a server's host key itself, with a read-only command (Check SSH, Replace the pinned
   * key): the only actions offered on a server without one. Every other action, over SSH or over SQL,
   * is refused at planning and again at execution while any server it touches has no pinned key.
   */
  pinsHostKey?: boolean;
}

/** Why `action` may not run on these servers (one without a pinned SSH host key), or undefined. */
export function unpinnedRefusal(action: { pinsHostKey?: boolean }, servers: { name: string; ssh: { hostKeyFingerprint: string | null } }[]): string | undefined {
  if (action.pinsHostKey) return undefined;
  const unpinned = [...new Set(servers.filter((x) => !x.ssh.hostKeyFingerprint).map((x) => x.name))];
  if (!unpinned.length) return undefined;
  return `no SSH host key is pinned for ${unpinned.join(', ')}: pgherd has not verified ${unpinned.length > 1 ? 'these servers' : 'this server'}, and changes nothing there (over SSH or SQL) until an admin runs Check SSH (pin the host key)`;
}

/** The servers a herd action touches: each member's and each PgBouncer's. */
export const herdServers = (h: { members: { hostname: string; ssh: { hostKeyFingerprint: string | null } }[]; poolers: { label: string; ssh: { hostKeyFingerprint: string | null } }[] }) => [
  ...h.members.map((m) => ({ name: m.hostname, ssh: m.ssh })),
  ...h.poolers.map((p) => ({ name: p.label.replace(/:\d+$/, ''), ssh: p.ssh })),
];

/** An action on instances: each ticked instance is a target. */
export interface ActionDef extends ActionMeta {
  on?: 'instance';
  plan: (target: InstanceRef, ctx: PlanContext) => TargetPlan;
  steps: (target: InstanceRef, deps: ActionDeps, ctx: PlanContext) => Step[];
}

export function defineAction(def: ActionDef): ActionDef {
  return def;
}

/** What a herd action may look at besides its herd: the parameters chosen for the operation. */
export interface HerdPlanContext {
  params: ActionParams;
}

/** An action on herds (switchover, DR failover, refresh DNS): each ticked herd is a target. */
export interface HerdActionDef extends ActionMeta {
  on: 'herd';
  plan: (herd: HerdRef, ctx: HerdPlanContext) => TargetPlan;
  steps: (herd: HerdRef, deps: ActionDeps, ctx: HerdPlanContext) => Step[];
}

export function defineHerdAction(def: Omit<HerdActionDef, 'on'>): HerdActionDef {
  return { ...def, on: 'herd' };
}

export type AnyAction = ActionDef | HerdActionDef;

export const isHerdAction = (a: AnyAction): a is HerdActionDef => a.on === 'herd';

/** Warnings every instance action shares. */
export function commonWarnings(t: InstanceRef): string[] {
  const w: string[] = [];
  if (/^prod/i.test(t.environment)) w.push(`production: ${t.environment}`);
  if (t.role === 'primary') w.push('this is the herd\u2019s primary: clients lose their connections');
  return w;
}
