// One way to change and read a zone's record sets, whichever provider serves it: RFC 2136 (a signed
// UPDATE to the zone's primary server, verified by asking it) or Route 53 (an UPSERT waited on until
// INSYNC, verified with ListResourceRecordSets). Switchover, DR failover, refresh DNS and a resize's
// drain call these and never know which.
import { route53Client } from '@/lib/adapters/aws/config';
import { awsErrorText } from '@/lib/adapters/aws/errors';
import { describeChange, hostedZoneName, listRecordSet, listRecordSetWithTtl, upsertRecordSet } from '@/lib/adapters/aws/route53';
import type { ZoneConfig } from './config';
import {
  checkUpdateAccess,
  describeUpdate,
  DnsUpdateError,
  lookup,
  replaceRecordSet,
  sameAnswers,
  waitAnswers,
  type RecordSet,
  type RecordType,
} from './rfc2136';
import { setting } from '@/lib/settings/settings';

export interface DnsProvider {
  /** Where the zone is served, in words ("127.0.0.1:53", "Route 53 hosted zone Z0123"). */
  where: string;
  /** The change in words, for the step's record (never a key). */
  describe(rs: RecordSet): string;
  /** What the name holds now, as the provider has it. */
  lookup(name: string, type: RecordType, timeoutMs?: number): Promise<string[]>;
  /**
   * Throws unless pgherd may change the zone, changing nothing to find out: RFC 2136, a signed UPDATE
   * with only a prerequisite; Route 53, the hosted zone read and `rec`'s record set UPSERT as it is.
   */
  checkAccess(rec?: { name: string; type: RecordType }): Promise<void>;
  /** Replaces the record set, waits until the provider serves it, and returns what the name answers then. */
  replace(rs: RecordSet, opts: { signal?: AbortSignal }): Promise<string[]>;
  /** How long `replace` may take, at most (a step's deadline is made from it). */
  replaceMs: number;
}

/** How long one Route 53 call (a read, the access check's each) may take. */
export const ROUTE53_CALL_MS = 5000;

/** How long an RFC 2136 server may take to answer what it was sent. */
export const RFC2136_VERIFY_MS = 10_000;

/** Route 53's wait for INSYNC: PGHERD_ROUTE53_WAIT_SECONDS (default 120), polled every PGHERD_ROUTE53_POLL_SECONDS (default 5). */
export function route53Bounds(env: Record<string, string | undefined> = process.env): { timeoutMs: number; pollMs: number } {
  return { timeoutMs: setting('PGHERD_ROUTE53_WAIT_SECONDS', env) * 1000, pollMs: setting('PGHERD_ROUTE53_POLL_SECONDS', env) * 1000 };
}

/** An AWS error as a DNS error that keeps its code ("AccessDenied: User ... is not authorized ..."). */
function asDnsError(what: string) {
  return (err: unknown): never => {
    throw new DnsUpdateError(`${what}: ${awsErrorText(err)}`, (err as { name?: string }).name);
  };
}

export function dnsProvider(zone: ZoneConfig): DnsProvider {
  if (zone.provider === 'rfc2136') {
    return {
      where: `${zone.server.host}:${zone.server.port}`,
      describe: (rs) => describeUpdate(zone.server, zone.zone, rs),
      lookup: (name, type, timeoutMs) => lookup(zone.server, name, type, timeoutMs),
      checkAccess: () => checkUpdateAccess(zone.server, zone.zone, zone.key),
      replace: async (rs, opts) => {
        await replaceRecordSet(zone.server, zone.zone, zone.key, rs);
        return waitAnswers(zone.server, rs, { timeoutMs: RFC2136_VERIFY_MS, signal: opts.signal });
      },
      replaceMs: RFC2136_VERIFY_MS + 5000,
    };
  }
  const id = zone.hostedZoneId;
  const bounds = route53Bounds();
  return {
    where: `Route 53 hosted zone ${id}`,
    describe: (rs) => describeChange(id, rs),
    // Every call has a deadline: the SDK sets none, and a herd's page asks while it renders.
    lookup: (name, type, timeoutMs) =>
      listRecordSet(route53Client(), id, name, type, AbortSignal.timeout(timeoutMs ?? ROUTE53_CALL_MS)).catch(
        asDnsError(`Route 53 (${id}) could not be read`),
      ),
    checkAccess: async (rec) => {
      const client = route53Client();
      const signal = AbortSignal.timeout(ROUTE53_CALL_MS * 3);
      const name = await hostedZoneName(client, id, signal).catch(asDnsError(`Route 53 hosted zone ${id}`));
      if (name !== zone.zone) throw new DnsUpdateError(`Route 53 hosted zone ${id} is ${name}, not ${zone.zone}`);
      if (!rec) return;
      // Route 53 has no dry run: the record set UPSERT with what it holds is a change that changes nothing.
      const set = await listRecordSetWithTtl(client, id, rec.name, rec.type, signal).catch(
        asDnsError(`Route 53 (${id}) could not be read`),
      );
      if (!set) return;
      await upsertRecordSet(
        client,
        id,
        { name: rec.name, type: rec.type, ttl: set.ttl, values: set.values },
        { timeoutMs: 0, pollMs: 0, noWait: true, signal },
      ).catch(asDnsError(`Route 53 refused a change of ${rec.name}`));
    },
    replace: async (rs, opts) => {
      const client = route53Client();
      await upsertRecordSet(client, id, rs, { ...bounds, signal: opts.signal, comment: 'pgherd' }).catch(
        asDnsError(`Route 53 refused the change of ${rs.name}`),
      );
      const now = await listRecordSet(client, id, rs.name, rs.type, opts.signal).catch(asDnsError(`Route 53 (${id}) could not be read`));
      if (!sameAnswers(rs.values, now))
        throw new DnsUpdateError(
          `${rs.name} holds ${now.join(', ') || 'nothing'} in Route 53 after the change, not ${rs.values.join(', ')}`,
        );
      return now;
    },
    replaceMs: bounds.timeoutMs + 15_000,
  };
}
