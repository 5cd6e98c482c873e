// One environment per server and what runs on it: an instance of a production herd cannot live on a
// staging server, nor the reverse, and a pooler sits in its herd's environment. The save path checks
// the row being saved (define-admin's sameEnvironment) and, here, what depends on it.
import { sql } from 'drizzle-orm';
import type { Queries } from '@/db/client';
import { dnsZones, ownershipProblem } from '@/lib/adapters/dns/config';
import { capitalize } from './text';
import { addressesOf, addressTakenElsewhere } from '@/lib/fleet/host-binding';

interface Mismatch extends Record<string, unknown> {
  label: string;
  environment: string;
}

async function mismatches(db: Queries, query: ReturnType<typeof sql>): Promise<Mismatch[]> {
  return (await db.execute<Mismatch>(query)).rows;
}

const described = (m: Mismatch[]) =>
  `${m
    .slice(0, 3)
    .map((x) => `${x.label} (${x.environment})`)
    .join(', ')}${m.length > 3 ? ` and ${m.length - 3} more` : ''}`;

/** A server moved to another environment must not leave instances or poolers of other environments' herds on it. */
export async function serverDependents(db: Queries, id: number): Promise<Record<string, string> | null> {
  const m = await mismatches(
    db,
    sql`
    SELECT e.name || '/' || h.name || ' on port ' || x.port AS label, e.name AS environment
    FROM (SELECT herd_id, port FROM instances WHERE server_id = ${id} UNION ALL SELECT herd_id, port FROM poolers WHERE server_id = ${id}) x
    JOIN herds h ON h.id = x.herd_id JOIN environments e ON e.id = h.environment_id
    WHERE h.environment_id <> (SELECT environment_id FROM servers WHERE id = ${id})`,
  );
  return m.length
    ? {
        environmentId: `This server runs members or poolers of herds in other environments: ${described(m)}. A server and what runs on it are in one environment: move them first.`,
      }
    : null;
}

/** Where the server is reached (its address, else its host name, resolved) must not be another environment's host. */
export async function serverAddressRules(db: Queries, id: number): Promise<Record<string, string> | null> {
  const [s] = (
    await db.execute<{ address: string; hostname: string; environment_id: number }>(
      sql`SELECT coalesce(address, '') AS address, hostname, environment_id FROM servers WHERE id = ${id}`,
    )
  ).rows;
  if (!s) throw new Error(`server ${id} not found: its rules are checked after it is saved`);
  // Both: where it connects (the address), and its host name, which other servers' checks match too (a
  // staging server named as production's address would otherwise shut production's out).
  for (const [field, value] of [
    ['address', s.address],
    ['hostname', s.hostname],
  ] as const) {
    if (!value) continue;
    const problem = await addressTakenElsewhere(db, s.environment_id, await addressesOf(value), id);
    if (problem) return { [field]: `${capitalize(problem)}.` };
  }
  return null;
}

/** A herd moved to another environment must not leave members or poolers on servers of the old one. */
export async function herdDependents(db: Queries, id: number): Promise<Record<string, string> | null> {
  const m = await mismatches(
    db,
    sql`
    SELECT s.hostname || ':' || x.port AS label, e.name AS environment
    FROM (SELECT server_id, port FROM instances WHERE herd_id = ${id} UNION ALL SELECT server_id, port FROM poolers WHERE herd_id = ${id}) x
    JOIN servers s ON s.id = x.server_id JOIN environments e ON e.id = s.environment_id
    WHERE s.environment_id <> (SELECT environment_id FROM herds WHERE id = ${id})`,
  );
  if (m.length)
    return {
      environmentId: `Members or poolers of this herd run on servers of other environments: ${described(m)}. A server and what runs on it are in one environment: move the servers first.`,
    };
  // A herd's own backup policy is its environment's (its backup host, its secrets): moved along, it would
  // send the herd's WAL where the old environment's admins decided.
  const policies = await db.execute<{ n: number }>(sql`
    SELECT count(*)::int AS n FROM backup_policies p
    WHERE p.herd_id = ${id} AND p.environment_id <> (SELECT environment_id FROM herds WHERE id = ${id})`);
  if ((policies.rows[0]?.n ?? 0) > 0)
    return {
      environmentId:
        'This herd has a backup policy of its own, which stays in its environment: an admin there deletes it before the herd can move.',
    };
  return null;
}

/**
 * A DNS record's name must be in a part of its zone that the herd's environment owns (PGHERD_DNS_CONFIG),
 * and must not be a name another herd already has.
 */
/** A replica streams from another member of its own herd: not from itself, not from another herd. */
export async function instanceRules(db: Queries, id: number): Promise<Record<string, string> | null> {
  const [r] = (
    await db.execute<{ upstream: number | null; same_herd: boolean | null }>(sql`
    SELECT i.upstream_instance_id AS upstream, u.herd_id = i.herd_id AS same_herd
    FROM instances i LEFT JOIN instances u ON u.id = i.upstream_instance_id WHERE i.id = ${id}`)
  ).rows;
  if (!r) throw new Error(`instance ${id} not found: its rules are checked after it is saved`);
  if (r.upstream === id) return { upstreamInstanceId: 'An instance cannot stream from itself.' };
  if (r.upstream !== null && !r.same_herd)
    return { upstreamInstanceId: `Instance ${r.upstream} is in another herd: a replica streams from a member of its own herd.` };
  return null;
}

export async function dnsRecordRules(db: Queries, id: number): Promise<Record<string, string> | null> {
  const [r] = (
    await db.execute<{
      name: string;
      zone: string;
      provider: string;
      environment: string;
      taken_by: string | null;
      follows_other_herd: boolean | null;
    }>(sql`
    SELECT d.name, d.zone, d.provider, e.name AS environment,
           (SELECT m.herd_id <> d.herd_id FROM instances m WHERE m.id = d.match_instance_id) AS follows_other_herd,
           (SELECT string_agg(DISTINCT oe.name || '/' || oh.name, ', ') FROM dns_records o JOIN herds oh ON oh.id = o.herd_id JOIN environments oe ON oe.id = oh.environment_id
             WHERE lower(rtrim(o.name, '.')) = lower(rtrim(d.name, '.')) AND o.herd_id <> d.herd_id) AS taken_by
    FROM dns_records d JOIN herds h ON h.id = d.herd_id JOIN environments e ON e.id = h.environment_id WHERE d.id = ${id}`)
  ).rows;
  if (!r) throw new Error(`DNS record ${id} not found: its rules are checked after it is saved`);
  if (r.taken_by) return { name: `${r.name} is already a name of ${r.taken_by}: one name, one herd.` };
  if (r.follows_other_herd) return { matchInstanceId: 'This instance is in another herd: a record follows a member of its own herd.' };
  const problem = ownershipProblem(r.name, r.zone, r.environment);
  if (problem) return { name: `${capitalize(problem)}.` };
  // Owned, so its zone is configured: the record's provider must be the one the zone is served by.
  const zone = dnsZones().find((z) => z.zone === r.zone.replace(/\.$/, '').toLowerCase());
  if (zone && zone.provider !== r.provider)
    return { provider: `Zone ${zone.zone} is served by ${zone.provider} (PGHERD_DNS_CONFIG), not ${r.provider}.` };
  return null;
}
