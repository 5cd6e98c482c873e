// An operation's approval on its page: who must approve and who has, and for a person the policies let
// decide, Approve and Deny with a comment. The server decides again whatever the page showed.
import type { ApprovalView } from '@/lib/features/operations/approvals';

const when = (iso: string) => `${iso.replace('T', ' ').slice(0, 16)} UTC`;

/** Why a decision just tried was refused, by the code the action sent back (never text from the URL). */
export const REFUSED: Record<string, string> = {
  stale: 'The plan changed since it was confirmed (the inventory moved): it cannot be approved, and its requester must plan again.',
  state: 'It is no longer awaiting approval, or you have decided on it already.',
  denied: 'You may not decide on it.',
  link: 'The link was refused (changed, for another plan, expired or used already).',
};

/** A link from chat this page was opened with: the decision it offers, or why it is refused. */
export type LinkState = { token: string; decision: 'approved' | 'denied' } | { refused: string } | null;

export function ApprovalPanel({
  id,
  approval,
  status,
  refused,
  decide,
  link = null,
}: {
  id: number;
  approval: ApprovalView;
  status: string;
  refused: string | null;
  decide?: (form: FormData) => Promise<void>;
  link?: LinkState;
}) {
  const offered = link && 'token' in link ? link : null;
  if (approval.breakGlassReason !== null)
    return (
      <section className="approval errornote" aria-label="Approval" data-testid="approval">
        <h2>Break glass</h2>
        <p data-testid="break-glass-reason">
          Run without the approval it needs, by its requester (an admin): “{approval.breakGlassReason}”. The audit log and the
          approval.break_glass webhook carry the reason.
        </p>
      </section>
    );
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
      {link && 'refused' in link && (
        <p className="errornote" role="alert" data-testid="link-refused">
          This link is refused: {link.refused}. Nothing has been decided; the page below is as anyone would see it.
        </p>
      )}
      {offered && waiting && (
        <p className="help" data-testid="link-opened">
          You opened the {offered.decision === 'approved' ? 'Approve' : 'Deny'} link from chat. Nothing is decided until you read the plan
          below and click {offered.decision === 'approved' ? 'Approve' : 'Deny'} yourself.
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
            {offered && <input type="hidden" name="link" value={offered.token} />}
            <p>
              <label>
                Comment (kept with your decision in the audit log):
                <br />
                <textarea name="comment" rows={2} maxLength={500} aria-label="Comment" />
              </label>
            </p>
            {offered?.decision !== 'denied' && (
              <button type="submit" name="decision" value="approved" className="button danger">
                Approve
              </button>
            )}{' '}
            {offered?.decision !== 'approved' && (
              <button type="submit" name="decision" value="denied" className="button">
                Deny
              </button>
            )}
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
