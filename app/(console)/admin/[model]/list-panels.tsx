// The panels a model declares above its changelist (lib/features/admin/define-admin.ts, ListPanel), drawn by kind.
import type { ReactNode } from 'react';
import { getDb } from '@/db/client';
import { DiscoveryPanel } from '@/components/admin/discovery-panel';
import type { ListPanel as Panel } from '@/lib/features/admin/define-admin';
import { can, type Access } from '@/lib/engine/access';
import { latestDiscoveryRuns, runView } from '@/lib/features/discovery/discovery-runs';
import { discoveryUnavailable } from '@/lib/features/discovery/status';
import { discoveryAction } from '../actions';

async function Ec2Discovery({ access }: { access: Access }) {
  const [unavailable, runs] = await Promise.all([discoveryUnavailable(), latestDiscoveryRuns(getDb(), 3)]);
  // Nothing to say where discovery was never configured nor run: the list is all there is.
  if (unavailable?.startsWith('EC2 discovery is not configured') && !runs.length) return null;
  return (
    <DiscoveryPanel
      unavailable={unavailable}
      canRequest={can(access, 'admin', null)}
      runs={runs.map((r) => {
        const { startedAt: _, ...v } = runView(r, access);
        return { ...v, requestedAt: v.requestedAt.toISOString(), finishedAt: v.finishedAt?.toISOString() ?? null };
      })}
      action={discoveryAction}
    />
  );
}

const panels: Record<Panel['kind'], (access: Access) => ReactNode> = {
  'ec2-discovery': (access) => <Ec2Discovery access={access} />,
};

export function ListPanel({ panel, access }: { panel: Panel; access: Access }) {
  return panels[panel.kind](access);
}
