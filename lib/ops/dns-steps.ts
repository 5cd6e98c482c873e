// Moving a herd's DNS names: one step per record, recorded like any command (the UPDATE in words,
// never the key), verified by asking the zone's server until it answers the new value, audited.
import { ownershipProblem, zoneConfig } from '@/lib/dns/config';
import { recordTargets, recordValues } from '@/lib/dns/desired';
import { checkUpdateAccess, describeUpdate, lookup, replaceRecordSet, waitAnswers } from '@/lib/dns/rfc2136';
import { writeAudit } from '@/lib/audit/write-audit';
import type { ActionDeps } from './define-action';
import type { DnsRecordRef, HerdRef } from './herd-ref';
import type { InstanceRef } from './instance-ref';
import { step, type Step } from './pipeline';

export const DNS_VERIFY_MS = 10_000;

/** In words, for plans: where the record will point, or why it cannot. */
export function describeRecordMove(rec: DnsRecordRef, members: InstanceRef[]): string {
  const targets = recordTargets(rec, members);
  if (typeof targets === 'string') return `${rec.name}: cannot be pointed anywhere (${targets})`;
  return `point ${rec.name} (${rec.type}, TTL ${rec.ttl} s) at ${targets.map((t) => t.hostname).join(', ')}, then ask the zone\u2019s server until it answers so`;
}

/**
 * One step per record of the herd, pointing it where `members()` (the herd as it is when the step
 * runs: after a promote, say) says it should.
 */
export function dnsSteps(h: HerdRef, deps: ActionDeps, members: () => InstanceRef[], only?: (rec: DnsRecordRef) => boolean): Step[] {
  return h.dns.filter((r) => !only || only(r)).map((rec) => step(`DNS: ${rec.name}`, async (ctx) => {
    if (rec.provider !== 'rfc2136') throw new Error(`DNS provider ${rec.provider} is not supported yet (${rec.name})`);
    // Checked when the UPDATE is sent, against the configuration as it is now: never for a name the herd's environment does not own.
    const owner = ownershipProblem(rec.name, rec.zone, h.environment);
    if (owner) throw new Error(`refused: ${owner}; no update was sent`);
    const zone = zoneConfig(rec.zone);
    const targets = recordTargets(rec, members());
    if (typeof targets === 'string') throw new Error(`${rec.name}: ${targets}`);
    const rs = { name: rec.name, type: rec.type, ttl: rec.ttl, values: recordValues(rec, targets) };
    ctx.note({ command: describeUpdate(zone.server, zone.zone, rs) });
    const before = await lookup(zone.server, rec.name, rec.type).catch(() => [] as string[]);
    await replaceRecordSet(zone.server, zone.zone, zone.key, rs);
    const after = await waitAnswers(zone.server, rs, { timeoutMs: DNS_VERIFY_MS, signal: ctx.signal });
    ctx.note({ stdout: `was: ${before.join(', ') || 'nothing'}\nnow answers: ${after.join(', ')}` });
    await writeAudit(deps.db, {
      user: deps.operation?.requestedBy ?? { id: null, username: 'pgherd' },
      action: 'dns.update',
      objectType: 'dns-records',
      objectId: String(rec.id),
      objectLabel: `${rec.name} (${h.label}${deps.operation ? `, operation #${deps.operation.id}` : ''})`,
      environmentId: h.environmentId,
      changes: { values: [before.join(', '), after.join(', ')] },
    });
  }, { timeoutMs: DNS_VERIFY_MS + 10_000 }));
}

/**
 * Before a switch: every record's zone is configured, its server answers and takes our key (a
 * signed UPDATE that changes nothing). Returns a line per record with what it answers now; throws
 * with the server's answer otherwise.
 */
export async function dnsPreflight(h: HerdRef): Promise<string[]> {
  return Promise.all(h.dns.map(async (rec) => {
    if (rec.provider !== 'rfc2136') throw new Error(`refused: DNS provider ${rec.provider} is not supported yet (${rec.name}); nothing was changed`);
    const owner = ownershipProblem(rec.name, rec.zone, h.environment);
    if (owner) throw new Error(`refused: ${owner}; nothing was changed`);
    const zone = zoneConfig(rec.zone);
    const now = await lookup(zone.server, rec.name, rec.type).catch((err: Error) => {
      throw new Error(`refused: the DNS server of ${rec.zone} (${zone.server.host}:${zone.server.port}) does not answer: ${err.message}; nothing was changed`);
    });
    await checkUpdateAccess(zone.server, zone.zone, zone.key).catch((err: Error) => {
      throw new Error(`refused: ${err.message} (key ${zone.key.name}); nothing was changed`);
    });
    return `${rec.name}: answers ${now.join(', ') || 'nothing'} (${zone.server.host}:${zone.server.port})`;
  }));
}
