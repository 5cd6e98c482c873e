// Moving a herd's DNS names: one step per record, recorded like any command (the UPDATE in words,
// never the key), verified by asking the zone's server until it answers the new value, audited.
import { ownershipProblem, zoneConfig, type ZoneConfig } from '@/lib/adapters/dns/config';
import { recordTargets, recordValues } from '@/lib/fleet/dns-records';
import { dnsProvider, RFC2136_VERIFY_MS } from '@/lib/adapters/dns/provider';
import { writeAudit } from '@/lib/engine/write-audit';
import type { ActionStep } from '@/lib/engine/define-action';
import { chosenWhenItRuns, type Arg } from '@/lib/engine/plan-identity';
import { errorText } from '@/lib/engine/errors';
import { refuse } from '@/lib/fleet/refusal';
import type { DnsRecordRef, HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';

export const DNS_VERIFY_MS = RFC2136_VERIFY_MS;

/** Why the record cannot be changed through its zone's configuration (recorded for one provider, configured for another). */
export function providerProblem(rec: DnsRecordRef, zone: ZoneConfig): string | null {
  return rec.provider === zone.provider
    ? null
    : `${rec.name} is recorded as a ${rec.provider} name, but zone ${zone.zone} is configured for ${zone.provider} (PGHERD_DNS_CONFIG)`;
}

/** How long a record's step may take: its provider's bound on a change and its check (Route 53 waits for INSYNC). */
function stepTimeoutMs(rec: DnsRecordRef): number {
  try {
    return dnsProvider(zoneConfig(rec.zone)).replaceMs + 10_000;
  } catch {
    return DNS_VERIFY_MS + 10_000; // not configured: the step says so when it runs
  }
}

/** A DNS record in a step's arguments: which name, of which type, in which zone, through whom. */
export const recordArg = (rec: DnsRecordRef) => ({
  id: rec.id,
  name: rec.name,
  type: rec.type,
  zone: rec.zone,
  provider: rec.provider,
  ttl: rec.ttl,
});

/**
 * Where a record's step will point it, as a plan knows it: the members (their names and addresses), or
 * why nowhere (words: the argument says only that it points nowhere), or the rule that picks the member
 * when it runs (a failover's new primary).
 */
export type RecordTarget = InstanceRef[] | string | { chosenWhenItRuns: string };

function targetArg(to: RecordTarget): Arg {
  if (typeof to === 'string') return null;
  if (!Array.isArray(to)) return chosenWhenItRuns(to.chosenWhenItRuns);
  return to.map((m) => ({ id: m.id, hostname: m.hostname, address: m.address }));
}

/** In words, for plans: where the record will point, or why it cannot. */
export function describeRecordMove(rec: DnsRecordRef, members: InstanceRef[]): string {
  const targets = recordTargets(rec, members);
  if (typeof targets === 'string') return `${rec.name}: cannot be pointed anywhere (${targets})`;
  return `point ${rec.name} (${rec.type}, TTL ${rec.ttl} s) at ${targets.map((t) => t.hostname).join(', ')}, then ask the zone\u2019s server until it answers so`;
}

/**
 * One step per record of the herd, pointing it where `members(state)` (the herd as it is when the step
 * runs: after a promote, say) says it should. `planned(rec)`: where the plan foresees it points (the
 * step's arguments); `says(rec)`: the plan's words for the move.
 */
export function dnsSteps<S>(
  h: HerdRef,
  members: (state: S) => InstanceRef[],
  planned: (rec: DnsRecordRef) => RecordTarget,
  says: (rec: DnsRecordRef) => string,
  only?: (rec: DnsRecordRef) => boolean,
  /** Where each record points instead of where its match says (a resize's drain); its step's name. */
  opts: { targetsOf?: (rec: DnsRecordRef, members: InstanceRef[]) => InstanceRef[] | string; name?: (rec: DnsRecordRef) => string } = {},
): ActionStep<S>[] {
  return h.dns
    .filter((r) => !only || only(r))
    .map((rec) => ({
      name: opts.name?.(rec) ?? `DNS: ${rec.name}`,
      does: { kind: 'dns.point', record: recordArg(rec), to: targetArg(planned(rec)) },
      says: says(rec),
      timeoutMs: stepTimeoutMs(rec),
      run: async (x) => {
        // Checked when the change is sent, against the configuration as it is now: never for a name the herd's environment does not own.
        const owner = ownershipProblem(rec.name, rec.zone, h.environment);
        if (owner) throw refuse('dns', `${owner}; no update was sent`);
        const zone = zoneConfig(rec.zone);
        const mismatch = providerProblem(rec, zone);
        if (mismatch) throw refuse('dns', `${mismatch}; no update was sent`);
        const dns = dnsProvider(zone);
        const targets = (opts.targetsOf ?? recordTargets)(rec, members(x.state));
        if (typeof targets === 'string') throw new Error(`${rec.name}: ${targets}`);
        const rs = { name: rec.name, type: rec.type, ttl: rec.ttl, values: recordValues(rec, targets) };
        x.note({ command: dns.describe(rs) });
        // What it answered before, for the record and the audit log: a failed lookup says so, it is not "nothing".
        const before = await dns.lookup(rec.name, rec.type).then(
          (a) => a.join(', ') || 'nothing',
          (err: unknown) => `unknown (${errorText(err)})`,
        );
        const after = await dns.replace(rs, { signal: x.signal });
        x.note({ stdout: `was: ${before}\nnow answers: ${after.join(', ')}` });
        await writeAudit(x.deps.db, {
          user: x.deps.operation?.requestedBy ?? { id: null, username: 'pgherd' },
          action: 'dns.update',
          objectType: 'dns-records',
          objectId: String(rec.id),
          objectLabel: `${rec.name} (${h.label}${x.deps.operation ? `, operation #${x.deps.operation.id}` : ''})`,
          environmentId: h.environmentId,
          changes: { values: [before, after.join(', ')] },
        });
      },
    }));
}

/**
 * Before a switch: every record's zone is configured, its server answers and takes our key (a
 * signed UPDATE that changes nothing). Returns a line per record with what it answers now; throws
 * with the server's answer otherwise.
 */
export async function dnsPreflight(h: HerdRef): Promise<string[]> {
  return Promise.all(
    h.dns.map(async (rec) => {
      const owner = ownershipProblem(rec.name, rec.zone, h.environment);
      if (owner) throw refuse('dns', `${owner}; nothing was changed`);
      const zone = zoneConfig(rec.zone);
      const mismatch = providerProblem(rec, zone);
      if (mismatch) throw refuse('dns', `${mismatch}; nothing was changed`);
      const dns = dnsProvider(zone);
      const now = await dns.lookup(rec.name, rec.type).catch((err: unknown) => {
        throw refuse('dns', `the DNS server of ${rec.zone} (${dns.where}) does not answer: ${errorText(err)}; nothing was changed`);
      });
      await dns.checkAccess({ name: rec.name, type: rec.type }).catch((err: unknown) => {
        throw refuse('dns', `${errorText(err)}${zone.provider === 'rfc2136' ? ` (key ${zone.key.name})` : ''}; nothing was changed`);
      });
      return `${rec.name}: answers ${now.join(', ') || 'nothing'} (${dns.where})`;
    }),
  );
}
