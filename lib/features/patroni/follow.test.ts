// When a Patroni herd's inventory is out of step with Patroni: what makes the follower observe the
// herd again (lib/features/patroni/follow.ts).
import { describe, expect, it } from 'vitest';
import { member } from '@/lib/testing/refs';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { disagreeing } from './follow';
import type { PatroniMemberNow, PatroniNow } from '@/lib/fleet/patroni-view';

const pm = (id: number, role: string, state: string): PatroniMemberNow => ({
  name: `pg${String(id)}`,
  role,
  state,
  timeline: 3,
  lag: role === 'leader' ? null : 0,
  pendingRestart: false,
  noFailover: false,
  instanceId: id,
  label: `db${String(id)}`,
});
const now = (...members: PatroniMemberNow[]): PatroniNow => ({
  askedOf: 'http://127.0.0.1:8008',
  leader: members.find((m) => m.role === 'leader')?.name ?? null,
  paused: false,
  scheduledSwitchover: null,
  members,
  unknownToPatroni: [],
  problems: [],
});
const ids = (ms: InstanceRef[]) => ms.map((m) => m.id);

describe('a Patroni herd whose inventory is out of step', () => {
  const inventory = (over: Record<number, Partial<InstanceRef>> = {}) => ({
    members: [member(1, 'primary', over[1]), member(2, 'replica', over[2]), member(3, 'replica', over[3])],
  });
  const patroni = now(pm(1, 'leader', 'running'), pm(2, 'replica', 'streaming'), pm(3, 'sync_standby', 'streaming'));

  it('is in step when Patroni and the inventory agree', () => {
    expect(disagreeing(inventory(), patroni)).toEqual([]);
  });

  it('names the members Patroni has elsewhere: a leader the inventory calls a replica, a replica it has stopped or as primary', () => {
    const h = inventory({ 1: { role: 'replica' }, 2: { state: 'stopped' }, 3: { role: 'primary' } });
    expect(ids(disagreeing(h, patroni))).toEqual([1, 2, 3]);
  });

  it('names a member Patroni has stopped that the inventory has running; waits on members starting or stopping', () => {
    expect(
      ids(disagreeing(inventory(), now(pm(1, 'leader', 'running'), pm(2, 'replica', 'stopped'), pm(3, 'replica', 'starting')))),
    ).toEqual([2]);
    expect(ids(disagreeing(inventory({ 3: { state: 'stopped' } }), now(pm(1, 'leader', 'running'), pm(3, 'replica', 'starting'))))).toEqual(
      [],
    );
  });

  it('keeps what pgherd set on purpose (only its role is compared), and members it does not know', () => {
    const h = inventory({ 2: { state: 'fenced' }, 3: { state: 'needs_rebuild' } });
    expect(disagreeing(h, now(pm(1, 'leader', 'running'), pm(2, 'replica', 'streaming'), pm(3, 'replica', 'streaming')))).toEqual([]);
    expect(ids(disagreeing(h, now(pm(1, 'replica', 'streaming'), pm(2, 'leader', 'running'), pm(3, 'replica', 'stopped'))))).toEqual([
      1, 2,
    ]);
    expect(disagreeing(inventory(), now(pm(1, 'leader', 'running'), { ...pm(9, 'replica', 'stopped'), instanceId: null }))).toEqual([]);
  });
});
