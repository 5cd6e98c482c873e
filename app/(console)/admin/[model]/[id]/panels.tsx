// The panels a model declares for its objects' pages (lib/features/admin/define-admin.ts, Panel), drawn here
// by kind: the page asks nothing of the model's name.
import { getDb } from '@/db/client';
import { AgentTokenForm } from '@/components/admin/agent-token-form';
import type { Panel } from '@/lib/features/admin/define-admin';
import { formatValue } from '@/lib/features/admin/format';
import { can, type Access } from '@/lib/engine/access';
import { pgherdPublicKeyFor } from '@/lib/adapters/ssh/public-key';
import { environments } from '@/db/schema';
import { eq } from 'drizzle-orm';
import { agentTokenAction } from '../../actions';
import { awsUnavailable } from '@/lib/adapters/aws/config';
import type { CloudIdentity as Identity } from '@/lib/features/admin/define-admin';
import { LagChart } from '@/components/charts/lag-chart';

async function CloudIdentity({ identity }: { identity: Identity | null }) {
  if (!identity?.provider) {
    return (
      <div className="module cloud-identity" data-testid="cloud-identity">
        <h2>Cloud</h2>
        <p className="muted">Not a cloud instance (no provider): EC2 actions do not apply to this server.</p>
      </div>
    );
  }
  const unavailable = identity.provider === 'aws' ? await awsUnavailable() : null;
  const rows: [string, string | null][] = [
    ['Provider', identity.provider],
    ['Region', identity.region],
    ['Availability zone', identity.availabilityZone],
    ['Instance id', identity.instanceId],
    ['Instance type', identity.instanceType],
    ['Architecture', identity.architecture],
    ['State', identity.state],
    ['Private address', identity.privateAddress],
    ['Herd (tag)', identity.herdTag],
    ['Seen by discovery', identity.seenAt ? formatValue('datetime', identity.seenAt) : 'never'],
    ['Gone from EC2 since', identity.goneAt ? formatValue('datetime', identity.goneAt) : null],
  ];
  const tags = Object.entries(identity.tags ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return (
    <div className="module cloud-identity" data-testid="cloud-identity">
      <h2>Cloud</h2>
      {unavailable && (
        <p className="errornote" role="status" data-testid="cloud-unavailable">
          {unavailable}. Resize, power off and power on are not possible from here until it is.
        </p>
      )}
      {identity.goneAt && (
        <p className="errornote" role="status">
          EC2 no longer runs this instance: the server is kept with its history, marked, never deleted.
        </p>
      )}
      <table className="facts">
        <tbody>
          {rows
            .filter(([, v]) => v !== null && v !== '')
            .map(([k, v]) => (
              <tr key={k}>
                <th scope="row">{k}</th>
                <td data-fact={k}>{v}</td>
              </tr>
            ))}
          {tags.length > 0 && (
            <tr>
              <th scope="row">Tags</th>
              <td>
                {tags.map(([k, v]) => (
                  <code key={k} className="tag">
                    {k}={v}{' '}
                  </code>
                ))}
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}

function SshPublicKey({ environment }: { environment: string | null }) {
  const key = pgherdPublicKeyFor(environment);
  return (
    <div className="module authorized-key">
      <h2>pgherd&rsquo;s SSH key</h2>
      {key ? (
        <>
          <p>
            Add this line to <code>~/.ssh/authorized_keys</code> of the SSH user on this server (the key pgherd uses for{' '}
            {environment ?? 'servers of no environment'}; each environment has its own where PGHERD_SSH_KEYS says so):
          </p>
          <pre className="output" data-testid="public-key">
            {key}
          </pre>
        </>
      ) : (
        <p className="muted">PGHERD_SSH_KEY is not set on the web process, so its public key cannot be shown.</p>
      )}
    </div>
  );
}

async function environmentName(id: number | null): Promise<string | null> {
  if (id === null) return null;
  const [e] = await getDb().select({ name: environments.name }).from(environments).where(eq(environments.id, id));
  return e?.name ?? null;
}

export async function ObjectPanel({
  panel,
  id,
  access,
  environmentId,
}: {
  panel: Panel;
  id: number;
  access: Access;
  environmentId: number | null;
}) {
  switch (panel.kind) {
    case 'lag-history':
      return <LagChart url={`${panel.path}/${id}/lag`} />;
    case 'ssh-public-key':
      return <SshPublicKey environment={await environmentName(environmentId)} />;
    case 'cloud-identity':
      return <CloudIdentity identity={await panel.load(getDb(), id)} />;
    case 'agent-token': {
      if (!can(access, panel.role, environmentId)) return null;
      const { hasToken, lastSeen } = await panel.load(getDb(), id);
      return (
        <AgentTokenForm
          serverId={id}
          hasToken={hasToken}
          lastSeen={lastSeen ? formatValue('datetime', lastSeen) : 'never'}
          action={agentTokenAction}
        />
      );
    }
  }
}
