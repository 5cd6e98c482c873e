// An operation's approval on its page: who must approve and who has, and for a person the policies let
// decide, Approve and Deny with a comment. The server decides again whatever the page showed.
import type { ApprovalView } from '@/lib/features/operations/approvals';

const when = (iso: string) => `${iso.replace('T', ' ').slice(0, 16)} UTC`;

/** Why a decision just tried was refused, by the code the action sent back (never text from the URL). */
export const REFUSED: Record<string, string> = {
  stale: 'The plan changed since it was confirmed (the inventory moved): it cannot be approved, and its requester must plan again.',
  state: 'It is no longer awaiting approval, or you have decided on it already.',
  denied: 'You may not decide on it.',
};

export function ApprovalPanel({
  id,
  approval,
  status,
  refused,
  decide,
}: {
  id: number;
  approval: ApprovalView;
  status: string;
  refused: string | null;
  decide?: (form: FormData) => Promise<void>;
}) {
  const waiting = status === 'awaiting_approval';
  const granted = approval.decisions.filter((d) => d.decision === 'approved').length;
  return (
    <section className="approval" aria-label="Approval" data-testid="approval">
      <h2>Approval</h2>
      {refused && REFUSED[refused] && (
        <p className="errornote" role="alert" data-testid="approval-refused">
          {REFUSED[refused]} Nothing has been run.
        </p>
      )}
      {waiting ? (
        <p data-testid="approval-needed">
          Awaiting approval: nothing is queued and no herd is held until {approval.approvers} approve{approval.required === 1 ? 's' : ''} it
          ({granted} of {approval.required} so far)
          {approval.expiresAt && <>, by {when(approval.expiresAt)}; after that it expires</>}.
        </p>
      ) : (
        approval.endedReason && (
          <p data-testid="approval-ended">
            <strong>Ended without running:</strong> {approval.endedReason}.
          </p>
        )
      )}
      {approval.decisions.length > 0 && (
        <ul data-testid="approval-decisions">
          {approval.decisions.map((d) => (
            <li key={d.username} data-decision={d.decision}>
              <strong>{d.username}</strong> {d.decision} it at {when(d.at)} ({d.via}){d.comment && <>: “{d.comment}”</>}
            </li>
          ))}
        </ul>
      )}
      {waiting &&
        (decide && approval.viewerRefusal === null ? (
          <form action={decide} className="approval-form">
            <input type="hidden" name="id" value={id} />
            <p>
              <label>
                Comment (kept with your decision in the audit log):
                <br />
                <textarea name="comment" rows={2} maxLength={500} aria-label="Comment" />
              </label>
            </p>
            <button type="submit" name="decision" value="approved" className="button danger">
              Approve
            </button>{' '}
            <button type="submit" name="decision" value="denied" className="button">
              Deny
            </button>
          </form>
        ) : (
          approval.viewerRefusal && (
            <p className="help" data-testid="approval-not-yours">
              You cannot decide on it: {approval.viewerRefusal}.
            </p>
          )
        ))}
    </section>
  );
}
