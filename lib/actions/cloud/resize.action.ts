// Resize: a replica's machine to another type or class, asked of its driver (pg_ctl's: the EC2
// instance's type, its clients drained first; RDS's: the DB instance's class). A primary is refused,
// with the way: resize its herd.
import { asks, driverOf, lacking } from '@/lib/actions/drivers';
import { newResizeState, resizeParams, type ResizeParams, type ResizeState } from '@/lib/actions/drivers/resize';
import { prepareCloud, type ResizePrepared } from '@/lib/actions/drivers/cloud-prepare';
import { defineAction, type ActionParamField, type ActionPlan, type InstancePlanContext } from '@/lib/engine/define-action';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { Refusal } from '@/lib/fleet/refusal';

/** The confirmation page's fields for what a resize wishes for. */
export const resizeWishForm: ActionParamField[] = [
  {
    name: 'instanceType',
    label: 'Instance type',
    kind: 'text',
    emptyLabel: 'm6i.xlarge',
    help: 'A named type; or leave it empty and give the least vCPU and memory below.',
  },
  {
    name: 'minVcpus',
    label: 'At least vCPU',
    kind: 'text',
    emptyLabel: '4',
    help: 'The cheapest type with at least this many vCPU (and the memory below) is the target.',
  },
  { name: 'minMemoryGiB', label: 'At least GiB', kind: 'text', emptyLabel: '16', help: 'Memory, in GiB.' },
  {
    name: 'burstable',
    label: 'Burstable types too',
    kind: 'flag',
    emptyLabel: 'T types are left out',
    help: 'Let burstable (T) types be chosen.',
  },
  {
    name: 'fallbackTypes',
    label: 'Fallback types, in order',
    kind: 'text',
    emptyLabel: 'the next cheapest two',
    help: 'Tried in this order when EC2 has no capacity for the target; the original type is the last resort.',
  },
  {
    name: 'maxLagSeconds',
    label: 'Most replay lag (s)',
    kind: 'text',
    emptyLabel: '30',
    help: 'Streaming with less lag than this before its DNS names come back.',
  },
];

export const resizeAction = defineAction({
  name: 'resize',
  control: asks('resize'),
  label: 'Resize (EC2 or RDS)',
  permission: 'operator',
  dangerous: true,
  runsAsConfirmed: true,
  params: {
    schema: resizeParams,
    fields: resizeWishForm,
  },
  prepare: (targets, params, db) => prepareCloud(targets, db, params),
  state: newResizeState,
  plan: planResize,
});

/**
 * One replica's resize, as the instance action plans it and as a herd resize plans each member, asked
 * of its driver: the steps, the facts, the cost now and after; or why it is refused.
 */
export function planResize(t: InstanceRef, ctx: InstancePlanContext<ResizeParams, ResizePrepared>): ActionPlan<ResizeState> | Refusal {
  const d = driverOf(t);
  if (d instanceof Refusal) return d;
  return d.resize ? d.resize(t, ctx) : lacking(d, 'resize');
}
