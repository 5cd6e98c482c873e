// A fourth control plane, written as docs/extending.md says: a driver that only restarts. Registered,
// it is picked up by the Restart action with no edit to any action file; every other action is refused
// on its herds in its own words, by the engine, before anything is planned.
import { afterAll, describe, expect, it } from 'vitest';
import type { ActionDeps } from '@/lib/engine/define-action';
import { planTarget } from '@/lib/engine/plan';
import { runPipeline, type StepRecord } from '@/lib/engine/pipeline';
import { checkDriver } from '@/lib/engine/define-action';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { actions } from '@/lib/actions/registry';
import { restartAction } from '@/lib/actions/control/restart.action';
import { herd, member } from '@/lib/testing/refs';
import { driverOf, registerDriver, type HerdDriver } from '.';

/** What the toy's control plane was asked, in order. */
const asked: string[] = [];

const toy: HerdDriver = {
  name: 'toy',
  controls: ['toy'],
  capabilities: new Set(['restart']),
  lacks: (c) => `the toy runs this herd and only restarts: it cannot ${c}`,
  restart: (t, { params }) => ({
    steps: [
      {
        name: 'ask the toy to restart it',
        does: { kind: 'toy.restart', instance: t.id, pendingOnly: params.pendingOnly },
        says: `ask the toy to restart ${t.label}`,
        run: async (x) => {
          asked.push(`restart ${t.label}`);
          x.note({ stdout: 'the toy restarted it' });
          await Promise.resolve();
        },
      },
    ],
    warnings: [],
  }),
};
const unregister = registerDriver(toy);
afterAll(unregister);

const members = [member(1, 'primary', { controlDriver: 'toy' }), member(2, 'replica', { controlDriver: 'toy' })];
const [primary, replica] = members as [InstanceRef, InstanceRef];
const h = herd(members);

/** The plan the engine makes for one instance target: the driver asked first, as planOperation does. */
const planOf = (a: (typeof actions)[number], t: InstanceRef, params: Record<string, unknown> = {}) =>
  planTarget([{ name: t.hostname, ssh: t.ssh }], a, () => {
    checkDriver(a, t.controlDriver);
    return a.on === 'herd' ? a.plan(h, { params }) : a.plan(t, { members, params });
  });

describe('a driver added without touching an action', () => {
  it('is the driver of its herds', () => {
    expect(driverOf(replica)).toBe(toy);
    expect(driverOf(h)).toBe(toy);
  });

  it('Restart plans with its steps, and the worker runs them', async () => {
    const plan = planOf(restartAction, replica);
    expect(plan.refused).toBeUndefined();
    expect(plan.steps).toEqual([`ask the toy to restart ${replica.label}`]);
    const records: StepRecord[] = [];
    const result = await runPipeline(restartAction.steps(replica, {} as ActionDeps, { members, params: {} }), {
      start: async () => {},
      finish: async (_seq, rec) => void records.push(rec),
    });
    expect(result.ok).toBe(true);
    expect(asked).toEqual([`restart ${replica.label}`]);
    expect(records.map((r) => [r.name, r.status, r.stdout])).toEqual([['ask the toy to restart it', 'succeeded', 'the toy restarted it']]);
  });

  it('every other action is refused on its herds, in its words', () => {
    const others = actions.filter((a) => a !== restartAction);
    expect(others.length).toBeGreaterThan(30);
    for (const a of others) {
      const plan = planOf(a, primary);
      // Refresh DNS asks nothing of the control plane: any driver pgherd has will do.
      if (a.name === 'refresh-dns') continue;
      // Apply fleet objects and Rotate credentials run SQL on the primary whatever runs the herd (access rules alone ask the
      // driver); Rotate pgherd's credentials changes pgherd's own role and the hosts' authorized keys, whatever runs them.
      if (a.name === 'apply-objects' || a.name === 'rotate-credentials' || a.name === 'rotate-pgherd-credentials') continue;
      // Vacuum freeze, Drop replication slot and End session are SQL on a member, whatever runs the herd.
      if (a.name === 'vacuum-freeze' || a.name === 'drop-slot' || a.name === 'end-session') continue;
      // Grow data volume grows the host's disk (EBS, then the filesystem over SSH), whatever runs Postgres on it.
      if (a.name === 'grow-volume') continue;
      // Rotate certificate replaces files on the member's host and reloads, whatever runs Postgres there.
      if (a.name === 'rotate-certificate') continue;
      expect(plan.refused, a.name).toMatch(/^the toy runs this herd and only restarts: it cannot /);
      expect(plan.steps, a.name).toEqual([]);
    }
  });

  it('gone again, its herds are refused as a control driver pgherd does not have', () => {
    unregister();
    try {
      expect(planOf(restartAction, replica).refused).toMatch(/^control driver toy is not supported yet/);
    } finally {
      registerDriver(toy);
    }
  });
});
