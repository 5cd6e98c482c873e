// What a herd's DNS records should answer, given its members' roles and states: the write name follows
// the primary, a read name the replicas, a fixed record its instance (a record matches a role or one
// instance) while it runs, and another member while it does not (drained). A CNAME points at the
// server's name, an A record holds its address. Whether a record answers that now is asked of the
// zone's provider (its own server, or Route 53: lib/adapters/dns).
import { zoneConfig } from '@/lib/adapters/dns/config';
import { dnsProvider } from '@/lib/adapters/dns/provider';
import { sameAnswers } from '@/lib/adapters/dns/rfc2136';
import type { DnsRecordRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';

/** The members a record should point at, in order; a string says why there is none. */
export function recordTargets(rec: DnsRecordRef, members: InstanceRef[]): InstanceRef[] | string {
  if (rec.match === 'instance') {
    const m = members.find((x) => x.id === rec.matchInstanceId);
    if (!m) return `its instance (${rec.matchInstanceId ?? 'none'}) is not a member of the herd`;
    // A name that pointed at a stopped, silent or fenced member would send its clients nowhere.
    return m.state === 'running' ? [m] : standIn(rec, members, m);
  }
  const role = rec.matchRole ?? 'primary';
  const matching = members.filter((m) => m.role === role && m.state === 'running').sort((a, b) => a.id - b.id);
  if (!matching.length) return `the herd has no running ${role}`;
  if (role === 'primary' && matching.length > 1)
    return `the herd has ${matching.length} running primaries (${matching.map((m) => m.label).join(', ')})`;
  return rec.type === 'CNAME' ? matching.slice(0, 1) : matching;
}

/**
 * Where a name matched to `away` points while `away` does not run (or is being drained): the first
 * running replica, else the running primary; a string says why nowhere.
 */
export function standIn(rec: DnsRecordRef, members: InstanceRef[], away: InstanceRef): InstanceRef[] | string {
  const others = members.filter((m) => m.id !== away.id && m.state === 'running');
  const to = others.filter((m) => m.role === 'replica').sort((a, b) => a.id - b.id)[0] ?? others.find((m) => m.role === 'primary');
  return to ? [to] : `no other running member of the herd to send ${rec.name} to`;
}

/** The record's values for these targets. */
export function recordValues(rec: DnsRecordRef, targets: InstanceRef[]): string[] {
  if (rec.type === 'CNAME') return targets.slice(0, 1).map((t) => t.hostname);
  const missing = targets.filter((t) => !t.address);
  if (missing.length) throw new Error(`an A record needs an address: ${missing.map((t) => t.hostname).join(', ')} has none`);
  // A set: two members on one address (an instance's address given to its successor once EC2 freed it,
  // while the inventory still holds the member) are one record.
  return [...new Set(targets.map((t) => t.address))];
}

export interface DnsNow {
  record: DnsRecordRef;
  /** What the server answered; null when it could not be asked. */
  answers: string[] | null;
  /** What it should answer for these members, or why nothing. */
  expected: string[] | string;
  ok: boolean;
  error?: string;
}

export async function checkRecord(record: DnsRecordRef, members: InstanceRef[], timeoutMs = 1500): Promise<DnsNow> {
  const targets = recordTargets(record, members);
  let expected: string[] | string;
  try {
    expected = typeof targets === 'string' ? targets : recordValues(record, targets);
  } catch (err) {
    expected = (err as Error).message;
  }
  try {
    const zone = zoneConfig(record.zone);
    const answers = await dnsProvider(zone).lookup(record.name, record.type, timeoutMs);
    return { record, answers, expected, ok: Array.isArray(expected) && sameAnswers(expected, answers) };
  } catch (err) {
    return { record, answers: null, expected, ok: false, error: (err as Error).message };
  }
}
