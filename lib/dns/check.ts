// Does a DNS record answer what a herd's members say it should? Asked at the zone's own server.
import type { DnsRecordRef } from '@/lib/ops/herd-ref';
import type { InstanceRef } from '@/lib/ops/instance-ref';
import { zoneConfig } from './config';
import { recordTargets, recordValues } from './desired';
import { lookup, sameAnswers } from './rfc2136';

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
    const answers = await lookup(zone.server, record.name, record.type, timeoutMs);
    return { record, answers, expected, ok: Array.isArray(expected) && sameAnswers(expected, answers) };
  } catch (err) {
    return { record, answers: null, expected, ok: false, error: (err as Error).message };
  }
}
