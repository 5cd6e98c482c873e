import { defineHerdAction } from '../define-action';
import { describeRecordMove, dnsSteps } from '../dns-steps';
import { loadInstanceRefs, type InstanceRef } from '../instance-ref';
import { step } from '../pipeline';
import { refreshFleet } from '../refresher';

/** Points a herd's DNS names at what its members are now (observed first, not taken from the inventory). */
export const refreshDnsAction = defineHerdAction({
  name: 'refresh-dns',
  label: 'Refresh DNS',
  // Changing DNS is an admin's act, here as in a switchover or failover.
  permission: 'admin',
  dangerous: false,
  plan: (h) => ({
    steps: ['observe every member: role and state', ...h.dns.map((r) => describeRecordMove(r, h.members))],
    refused: h.dns.length ? undefined : 'the herd has no DNS records',
    warnings: /^prod/i.test(h.environment) ? [`production: ${h.environment}`] : [],
  }),
  steps: (h, deps) => {
    let members: InstanceRef[] = h.members;
    return [
      step('observe every member', async (ctx) => {
        await refreshFleet(deps.db, { ids: h.members.map((m) => m.id), timeoutMs: 2000 });
        members = await loadInstanceRefs(deps.db, [], { herdIds: [h.id] });
        ctx.note({ stdout: members.map((m) => `${m.label}: ${m.role}, ${m.state}`).join('\n') });
      }, { timeoutMs: 15_000 }),
      ...dnsSteps(h, deps, () => members),
    ];
  },
});
