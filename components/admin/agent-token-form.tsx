'use client';

import { useActionState } from 'react';

/** What the server action that creates the token answers (the page passes that action in). */
export interface AgentTokenState {
  token?: string;
  error?: string;
}

/** A server's agent token: created or rotated here, shown this once (pgherd keeps only its hash). */
export function AgentTokenForm({
  serverId,
  hasToken,
  lastSeen,
  action,
}: {
  serverId: number;
  hasToken: boolean;
  lastSeen: string;
  action: (prev: AgentTokenState, form: FormData) => Promise<AgentTokenState>;
}) {
  const [state, run, pending] = useActionState(action, {});
  return (
    <div className="module agent-token">
      <h2>Discovery agent</h2>
      <p>
        {hasToken || state.token ? 'This server has an agent token.' : 'This server has no agent token yet.'} Last report: {lastSeen}.
      </p>
      {state.token && (
        <div className="messagelist success" role="status">
          <p>
            Copy the token now into the agent&rsquo;s token file (mode 600): it will not be shown again. The previous token no longer works.
          </p>
          <pre className="output" data-testid="agent-token">
            {state.token}
          </pre>
        </div>
      )}
      {state.error && (
        <p className="errornote" role="alert">
          {state.error}
        </p>
      )}
      <form action={run}>
        <input type="hidden" name="serverId" value={serverId} />
        <button type="submit" className="button" disabled={pending}>
          {hasToken || state.token ? 'Rotate the agent token' : 'Create an agent token'}
        </button>
      </form>
    </div>
  );
}
