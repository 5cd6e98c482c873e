// The panels a model declares for its objects' pages (lib/admin/define-admin.ts, Panel), drawn here
// by kind: the page asks nothing of the model's name.
import { getDb } from '@/db/client';
import { AgentTokenForm } from '@/components/admin/agent-token-form';
import type { Panel } from '@/lib/admin/define-admin';
import { formatValue } from '@/lib/admin/format';
import { can, type Access } from '@/lib/auth/access';
import { pgherdPublicKey } from '@/lib/ssh/public-key';
import { agentTokenAction } from '../../actions';

function SshPublicKey() {
  const key = pgherdPublicKey();
  return (
    <div className="module authorized-key">
      <h2>pgherd&rsquo;s SSH key</h2>
      {key ? (
        <>
          <p>
            Add this line to <code>~/.ssh/authorized_keys</code> of the SSH user on this server:
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
    case 'ssh-public-key':
      return <SshPublicKey />;
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
