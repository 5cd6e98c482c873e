// The capability Apply settings asks of a herd's driver: where a herd's settings live, who writes them,
// and how a member is restarted into them. The action plans the changes, the order and the checks; the
// driver says how each write and each restart is done on its control plane.
import type { ActionStep, RunContext } from '@/lib/engine/define-action';
import type { Does } from '@/lib/engine/plan-identity';
import type { InstanceRef } from '@/lib/fleet/instance-ref';

/** A setting the herd's one write changes, as the action planned it. */
export interface HerdChange {
  name: string;
  /** As pg_settings shows it before and after (its base unit; on/off). */
  from: string;
  to: string;
  /** As written in a configuration ('32MB'). */
  write: string;
  /** Postgres reads it only at start. */
  restart: boolean;
  /** pg_settings' type. */
  vartype: string;
}

interface PlaneBase {
  /** Who writes the settings and restarts the members, in words (the plan's "Run by"). */
  runBy: string;
  /** Settings the control plane sets itself, whatever it is given: a change of one is refused with these words. */
  keeps?: { names: ReadonlySet<string>; says: string };
  /** Why the herd's settings cannot be changed through it now (a member it cannot reach), or null. */
  unready?(members: InstanceRef[]): string | null;
  /**
   * Set where the control plane has no switchover to restart the primary through (why, in words): the
   * primary is restarted in place after the replicas, its writes stopping while it does.
   */
  primaryInPlace?: string;
  /**
   * Set where pgherd has no shell on the members (why the parse check is left to the plane, in words):
   * the plan's check of bounds, units and choices against pg_settings stands, and `postgres -C` is not run.
   */
  noShell?: string;
  /**
   * Read as the plan is made, for the confirmation page: where the values will be written, as facts, or
   * why they cannot be (refused at planning, nothing changed). The step reads it again as it runs.
   */
  whereWritten?(members: InstanceRef[]): Promise<
    | {
        facts: { label: string; value: string }[];
        /**
         * What the configuration holds now, where it lives outside the members (RDS's groups: each value
         * in the setting's base unit, a boolean 1 or 0): a value there that differs from the groups' is
         * written even when every member runs the groups' value (it would run at the next reboot).
         */
        held?: Record<string, string>;
      }
    | { refused: string }
  >;
  /** A member restarted into the values written (the action waits for its new start time). */
  restart<S>(m: InstanceRef): ActionStep<S>;
}

/**
 * member: each member's own settings (ALTER SYSTEM and a reload; a copy of its file kept to put back when
 * a member does not start with them). herd: one configuration for every member (why, in the driver's
 * words: `oneConfig`), written once by `writeHerd`, so every member must be given the same values.
 */
export type ParameterPlane = PlaneBase &
  (
    | { scope: 'member' }
    | {
        scope: 'herd';
        oneConfig: string;
        /** The one write of `set` (the action then waits until every member runs it). */
        writeHerd(
          primary: InstanceRef,
          changes: HerdChange[],
          /** Every member of the herd (a plane whose members may each name where the configuration lives). */
          members: InstanceRef[],
        ): { name: string; does: Does; says: string; write: (x: RunContext<unknown>) => Promise<void> };
        /**
         * Set where a static value waits for the restart outside Postgres (RDS: in the group, until the
         * reboot): after the write, only the values a reload applies are waited for.
         */
        pendsOutside?: string;
      }
  );

/** A plane whose herd keeps one configuration for every member. */
export type HerdPlane = Extract<ParameterPlane, { scope: 'herd' }>;
