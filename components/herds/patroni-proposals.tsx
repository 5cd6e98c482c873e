// What the herd's agents report of Patroni and nobody has accepted yet: an admin accepts it here, one
// member at a time, and pgherd then acts on the herd through Patroni's REST API at that address.
import type { PatroniProposal } from '@/lib/features/agents/patroni-proposal';

export function PatroniProposals({
  herdId,
  proposals,
  canAccept,
  accept,
}: {
  herdId: number;
  proposals: PatroniProposal[];
  canAccept: boolean;
  accept: (form: FormData) => Promise<void>;
}) {
  if (!proposals.length) return null;
  return (
    <ul className="messagelist" data-testid="patroni-proposals">
      {proposals.map((p) => (
        <li key={p.instanceId} className="info" data-member={p.hostname}>
          The agent on {p.hostname} reports Patroni at {p.url} (scope {p.scope}) for {p.label}.{' '}
          {p.problem ? (
            <span className="warn">It cannot be accepted: {p.problem}.</span>
          ) : canAccept ? (
            <form action={accept} style={{ display: 'inline' }}>
              <input type="hidden" name="herdId" value={herdId} />
              <input type="hidden" name="instanceId" value={p.instanceId} />
              <input type="hidden" name="url" value={p.url} />
              <button type="submit">Accept</button>
            </form>
          ) : (
            <span className="help">An admin of this environment may accept it.</span>
          )}
        </li>
      ))}
    </ul>
  );
}
