import Link from 'next/link';
import type { OwedView } from '@/lib/engine/owed';

/**
 * What interrupted operations still owe clients (a PgBouncer left paused): each worker's reconcile
 * gives it back once no one holds the herd, and the pooler's own host resumes it at the bound at the latest.
 */
export function OwedList({ owed, linkOperations }: { owed: OwedView[]; linkOperations: boolean }) {
  if (!owed.length) return null;
  return (
    <div className="errornote" role="alert" data-testid="owed">
      <p>Owed to clients, not given back yet (pgherd gives it back as soon as no one holds the herd):</p>
      <ul>
        {owed.map((o) => (
          <li key={o.id}>
            {linkOperations && (
              <>
                <Link prefetch={false} href={`/operations/${o.operationId}`}>
                  operation #{o.operationId}
                </Link>
                :{' '}
              </>
            )}
            {o.says}; its host resumes it by {o.dueBy.toISOString()} at the latest
            {o.lastError ? `; the last attempt failed: ${o.lastError} (do it by hand if it keeps failing)` : ''}
          </li>
        ))}
      </ul>
    </div>
  );
}
