import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle, pathId } from '@/lib/features/api/respond';
import { visibleHerd } from '@/lib/features/api/fleet-config';
import { herdSettingsView } from '@/lib/features/settings/herd-settings-view';
import { recentRdsGroupsView } from '@/lib/features/settings/rds-groups-view';

/** GET /api/v1/herds/{id}/settings: each member's drift against its groups, what differs between members, an RDS herd's DB parameter groups. */
export const GET = handle(async (req, ctx) => {
  const user = await apiUser(req, 'read');
  const id = pathId((await ctx.params).id);
  const db = getDb();
  await visibleHerd(db, user.access, id);
  const v = await herdSettingsView(db, id);
  return NextResponse.json({
    members: v.members.map((m) => ({
      id: m.id,
      label: m.label,
      role: m.role,
      groups: m.groups,
      readAt: m.readAt ? m.readAt.toISOString() : null,
      drift: m.drift.map((d) => ({
        name: d.name,
        kind: d.kind,
        wanted: d.wanted,
        running: d.running,
        changedAt: d.changedAt ? d.changedAt.toISOString() : null,
        operationId: d.operationId,
      })),
    })),
    differing: v.differing,
    rdsGroups: await recentRdsGroupsView(db, id),
  });
});
