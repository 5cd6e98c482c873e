// Route 53 record sets: a change is one UPSERT in a ChangeResourceRecordSets batch (atomic: the whole
// record set or nothing), waited on until GetChange says INSYNC (every Route 53 name server has it),
// then read back with ListResourceRecordSets. Every wait has a deadline; AWS errors keep their code.
import {
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  GetHostedZoneCommand,
  ListResourceRecordSetsCommand,
  type Route53Client,
} from '@aws-sdk/client-route-53';

export interface Route53RecordSet {
  name: string;
  type: 'CNAME' | 'A';
  ttl: number;
  values: string[];
}

const fqdn = (n: string) => n.replace(/\.$/, '').toLowerCase();
/** Route 53 returns names with a trailing dot and some characters escaped (\052 for *): compared without. */
const unescape = (n: string) => n.replace(/\\(\d{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

/** The change in words, for the step's record (no credentials in it). */
export function describeChange(hostedZoneId: string, rs: Route53RecordSet): string {
  return `route53 change-resource-record-sets --hosted-zone-id ${hostedZoneId} UPSERT ${fqdn(rs.name)}. ${rs.ttl} ${rs.type} ${rs.values.map((v) => (rs.type === 'CNAME' ? `${fqdn(v)}.` : v)).join(' ')}`;
}

export class Route53WaitTimeout extends Error {
  constructor(
    readonly changeId: string,
    seconds: number,
  ) {
    super(`Route 53 change ${changeId} was not INSYNC within ${seconds} s (it is applied, or will be: the record is checked again)`);
    this.name = 'Route53WaitTimeout';
  }
}

/**
 * UPSERTs the record set and waits until Route 53 says the change is INSYNC (polling GetChange every
 * `pollMs`, at most `timeoutMs`). Returns the change id.
 */
export async function upsertRecordSet(
  client: Route53Client,
  hostedZoneId: string,
  rs: Route53RecordSet,
  /** `noWait`: the change is sent, not waited on (it changes nothing: an access check). */
  opts: { timeoutMs: number; pollMs: number; signal?: AbortSignal; comment?: string; noWait?: boolean },
): Promise<string> {
  const r = await client.send(
    new ChangeResourceRecordSetsCommand({
      HostedZoneId: hostedZoneId,
      ChangeBatch: {
        Comment: opts.comment,
        Changes: [
          {
            Action: 'UPSERT',
            ResourceRecordSet: {
              Name: `${fqdn(rs.name)}.`,
              Type: rs.type,
              TTL: rs.ttl,
              ResourceRecords: rs.values.map((v) => ({ Value: rs.type === 'CNAME' ? `${fqdn(v)}.` : v })),
            },
          },
        ],
      },
    }),
    { abortSignal: opts.signal },
  );
  const id = r.ChangeInfo?.Id ?? '';
  if (opts.noWait) return id;
  let status = r.ChangeInfo?.Status;
  const deadline = Date.now() + opts.timeoutMs;
  while (status !== 'INSYNC') {
    if (opts.signal?.aborted) throw new Error(`stopped waiting for Route 53 change ${id}`);
    if (Date.now() > deadline) throw new Route53WaitTimeout(id, Math.round(opts.timeoutMs / 1000));
    await new Promise((res) => setTimeout(res, opts.pollMs));
    status = (await client.send(new GetChangeCommand({ Id: id }), { abortSignal: opts.signal })).ChangeInfo?.Status;
  }
  return id;
}

/** The record set `name` has for `type` in the hosted zone: its values (sorted) and TTL; null when it has none. */
export async function listRecordSetWithTtl(
  client: Route53Client,
  hostedZoneId: string,
  name: string,
  type: 'CNAME' | 'A',
  signal?: AbortSignal,
): Promise<{ values: string[]; ttl: number } | null> {
  const r = await client.send(
    new ListResourceRecordSetsCommand({
      HostedZoneId: hostedZoneId,
      StartRecordName: `${fqdn(name)}.`,
      StartRecordType: type,
      MaxItems: 1,
    }),
    { abortSignal: signal },
  );
  const set = (r.ResourceRecordSets ?? []).find((s) => fqdn(unescape(s.Name ?? '')) === fqdn(name) && s.Type === type);
  if (!set) return null;
  return { values: (set.ResourceRecords ?? []).map((x) => fqdn(x.Value ?? '')).sort(), ttl: set.TTL ?? 0 };
}

/** The values `name` holds for `type` in the hosted zone (sorted; [] when it has no such record set). */
export async function listRecordSet(
  client: Route53Client,
  hostedZoneId: string,
  name: string,
  type: 'CNAME' | 'A',
  signal?: AbortSignal,
): Promise<string[]> {
  return (await listRecordSetWithTtl(client, hostedZoneId, name, type, signal))?.values ?? [];
}

/** The hosted zone's name, or the AWS error (NoSuchHostedZone, AccessDenied): whether pgherd may use it at all. */
export async function hostedZoneName(client: Route53Client, hostedZoneId: string, signal?: AbortSignal): Promise<string> {
  const r = await client.send(new GetHostedZoneCommand({ Id: hostedZoneId }), { abortSignal: signal });
  return fqdn(r.HostedZone?.Name ?? '');
}
