// The drivers pgherd has, and the one place that knows which runs a herd: driverOf.
import type { ActionPlan } from '@/lib/engine/define-action';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import type { Db } from '@/db/client';
import { Refusal, refuse } from '@/lib/fleet/refusal';
import { lacking, type Capability, type HerdDriver } from './driver';
import { patroniDriver } from './patroni';
import { pgCtlDriver } from './pg-ctl';
import { rdsDriver } from './rds';
import type { SwitchoverParams, SwitchoverState } from './switchover';
import type { DrState, Params as FailoverParams } from '@/lib/actions/drivers/failover';

export {
  lacking,
  type Capability,
  type HerdDriver,
  type MemberVerb,
  type PowerState,
  type RebuildState,
  type ReloadState,
  type RestartState,
} from './driver';

const byControl = new Map<string, HerdDriver>();

/** Makes `d` the driver of the herds whose members' control_driver is one of `d.controls` (a test adds its own). */
export function registerDriver(d: HerdDriver): () => void {
  for (const c of d.controls) byControl.set(c, d);
  return () => {
    for (const c of d.controls) if (byControl.get(c) === d) byControl.delete(c);
  };
}

for (const d of [pgCtlDriver, patroniDriver, rdsDriver]) registerDriver(d);

/** The driver of a member's control_driver, or a refusal saying pgherd has none for it. */
export function driverNamed(controlDriver: string): HerdDriver | Refusal {
  return (
    byControl.get(controlDriver) ??
    refuse(
      'not-applicable',
      `control driver ${controlDriver} is not supported yet (${[...new Set(byControl.values())].map((d) => d.controls.join(' and ')).join(', ')} are)`,
    )
  );
}

/** The driver that runs `x` (an instance, or a herd: one driver for all its members), or a refusal. */
export function driverOf(x: Pick<InstanceRef, 'controlDriver'> | Pick<HerdRef, 'members'>): HerdDriver | Refusal {
  if ('controlDriver' in x) return driverNamed(x.controlDriver);
  const names = [...new Set(x.members.map((m) => m.controlDriver))];
  if (names.length > 1) return refuse('not-applicable', `its members are run by different control drivers (${names.join(', ')})`);
  return driverNamed(names[0] ?? 'pg_ctl');
}

/**
 * What an action declares as `control`: the capability it asks of the driver of each member it
 * touches, checked by the engine before anything else, at planning and again at execution. `null`:
 * it asks nothing of the control plane (DNS only), so any driver pgherd has will do.
 */
export const asks =
  (capability: Capability | null) =>
  (controlDriver: string): Refusal | null => {
    const d = driverNamed(controlDriver);
    if (!('capabilities' in d)) return d;
    return capability === null || d.capabilities.has(capability) ? null : lacking(d, capability);
  };

/** What each driver's `prepare` read for `capability`, over its own targets (a driver without one reads nothing). */
export type DriversPrepared = Map<HerdDriver, unknown>;

/** What `d`'s prepare read (undefined where nothing was prepared: a plan made outside the engine, in a test). */
export const preparedBy = (p: DriversPrepared | undefined, d: HerdDriver): unknown => p?.get(d);

/** The herds each driver runs (a herd no driver runs is left out: the engine refuses it with its own words). */
export function herdsByDriver(herds: HerdRef[]): Map<HerdDriver, HerdRef[]> {
  const out = new Map<HerdDriver, HerdRef[]>();
  for (const h of herds) {
    const d = driverOf(h);
    if (!(d instanceof Refusal)) out.set(d, [...(out.get(d) ?? []), h]);
  }
  return out;
}

/** Runs each targets' driver's `prepare` for `capability` on its own targets: what an action that asks a driver to plan prepares. */
export async function prepareDrivers(capability: Capability, targets: InstanceRef[], db: Db): Promise<DriversPrepared> {
  const mine = new Map<HerdDriver, InstanceRef[]>();
  for (const t of targets) {
    const d = driverOf(t);
    if (d instanceof Refusal || !d.prepare) continue;
    mine.set(d, [...(mine.get(d) ?? []), t]);
  }
  const out: DriversPrepared = new Map();
  for (const [d, ts] of mine) out.set(d, await d.prepare?.(capability, ts, db));
  return out;
}

/** A switchover of `h` as its driver plans it (pg_ctl's, Patroni's), or the driver's refusal: what actions made of one ask. */
export function planSwitchoverOf(h: HerdRef, params: SwitchoverParams): ActionPlan<SwitchoverState> | Refusal {
  const d = driverOf(h);
  if (d instanceof Refusal) return d;
  return d.switchover ? d.switchover(h, params) : lacking(d, 'switchover');
}

/** A DR failover of `h` as its driver plans it (pg_ctl's fence and promote, Patroni's POST /failover, RDS's promotion), or its refusal. */
export function planFailoverOf(h: HerdRef, params: FailoverParams): ActionPlan<DrState> | Refusal {
  const d = driverOf(h);
  if (d instanceof Refusal) return d;
  return d.failover ? d.failover(h, params) : lacking(d, 'failover');
}
