import { defineHerdAction, productionWarning } from '@/lib/engine/define-action';
import { describeRecordMove, dnsSteps } from '@/lib/actions/steps/dns-steps';
import { loadInstanceRefs, type InstanceRef } from '@/lib/fleet/instance-ref';
import { refuse } from '@/lib/fleet/refusal';
import { recordTargets } from '@/lib/fleet/dns-records';
import { refreshFleet } from '@/lib/fleet/refresher';
import { asks } from '@/lib/actions/drivers';

interface RefreshDnsState {
  /** The members as observed by the first step: where the records point. */
  members?: InstanceRef[];
}

/** Points a herd's DNS names at what its members are now (observed first, not taken from the inventory). */
export const refreshDnsAction = defineHerdAction({
  name: 'refresh-dns',
  control: asks(null),
  label: 'Refresh DNS',
  // Changing DNS is an admin's act, here as in a switchover or failover.
  permission: 'admin',
  dangerous: false,
  state: (): RefreshDnsState => ({}),
  plan: (h) => {
    if (!h.dns.length) return refuse('not-applicable', 'the herd has no DNS records');
    return {
      steps: [
        {
          name: 'observe every member',
          does: { kind: 'inventory.refresh-herd', herd: h.id },
          says: 'observe every member: role and state',
          timeoutMs: 15_000,
          run: async (x) => {
            await refreshFleet(x.deps.db, { ids: h.members.map((m) => m.id), timeoutMs: 2000 });
            const members = await loadInstanceRefs(x.deps.db, [], { herdIds: [h.id] });
            x.state.members = members;
            x.note({ stdout: members.map((m) => `${m.label}: ${m.role}, ${m.state}`).join('\n') });
          },
        },
        ...dnsSteps(
          h,
          (s: RefreshDnsState) => s.members ?? h.members,
          (r) => recordTargets(r, h.members),
          (r) => describeRecordMove(r, h.members),
        ),
      ],
      warnings: productionWarning(h),
    };
  },
});
