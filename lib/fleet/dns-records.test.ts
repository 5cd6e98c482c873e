// A name matched to an instance follows it while it runs, and stands in elsewhere while it does not:
// what refresh DNS, DR failover, the drift check and power off / on all read.
import { describe, expect, it } from 'vitest';
import { herd, member } from '@/lib/testing/refs';
import { powerOffAction, powerOnAction } from '@/lib/actions/cloud/power.action';
import { recordTargets } from '@/lib/fleet/dns-records';
import type { DnsRecordRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { resizePrepared } from '@/lib/testing/cloud';

const readName = (id: number): DnsRecordRef => ({
  id: 10 + id,
  name: `db-${id}.read.example.com`,
  type: 'CNAME',
  zone: 'read.example.com',
  provider: 'rfc2136',
  ttl: 5,
  match: 'instance',
  matchRole: null,
  matchInstanceId: id,
});
const three = (over: Record<number, Partial<InstanceRef>> = {}) => [
  member(1, 'primary', over[1]),
  member(2, 'replica', over[2]),
  member(3, 'replica', over[3]),
];
const hosts = (to: InstanceRef[] | string) => (typeof to === 'string' ? to : to.map((m) => m.hostname));

describe('a name matched to an instance', () => {
  it('answers its instance while it runs; the first running replica, else the primary, while it does not', () => {
    expect(hosts(recordTargets(readName(2), three()))).toEqual(['db-2.example.com']);
    for (const state of ['stopped', 'unreachable', 'fenced', 'needs_rebuild'])
      expect(hosts(recordTargets(readName(2), three({ 2: { state } })))).toEqual(['db-3.example.com']);
    expect(hosts(recordTargets(readName(2), three({ 2: { state: 'stopped' }, 3: { state: 'stopped' } })))).toEqual(['db-1.example.com']);
    expect(recordTargets(readName(2), three({ 1: { state: 'stopped' }, 2: { state: 'stopped' }, 3: { state: 'stopped' } }))).toMatch(
      /no other running member of the herd to send db-2\.read\.example\.com to/,
    );
  });

  it('power off of a second replica drains the first one\u2019s name with its own; power on takes back what stands in for it', () => {
    const members = three({ 2: { state: 'stopped' } });
    const h = herd(members, { dns: [readName(2), readName(3)] });
    const r3 = members[2]!;
    const off = powerOffAction.plan(r3, { members, params: {}, prepared: resizePrepared(h, [r3]) });
    expect(off.facts?.find((f) => f.label === 'DNS drained')?.value).toBe('db-2.read.example.com, db-3.read.example.com');
    // Both go to the primary: the one running member left.
    const stopped = three({ 2: { state: 'stopped' }, 3: { state: 'stopped' } });
    expect(hosts(recordTargets(readName(2), stopped))).toEqual(['db-1.example.com']);
    const r2 = stopped[1]!;
    const on = powerOnAction.plan(r2, { members: stopped, params: {}, prepared: resizePrepared(h, [r2], 'stopped') });
    expect(on.facts?.find((f) => f.label === 'DNS names')?.value).toBe('db-2.read.example.com, db-3.read.example.com');
  });
});
