import Link from 'next/link';
import { notFound } from 'next/navigation';
import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { formatValue } from '@/lib/features/admin/format';
import { requireAccess } from '@/lib/features/auth/session';
import { parseId } from '@/lib/adapters/validation/ids';
import { fireTimeText } from '@/lib/features/rules/cron';
import { getRule, mayRead, ruleRunsView, scheduleOf } from '@/lib/features/rules/rules';
import { rules } from '@/db/schema';
import { eq } from 'drizzle-orm';
import { scheduleWords, scopeWords, zoneOf } from '@/lib/features/rules/words';
import { nextFires } from '@/lib/features/rules/cron';
import { approveRuleAction, deleteRuleAction, runRuleAction } from '../actions';
import { ruleApproval } from '@/lib/features/rules/rule-shape';
import { mayApproveRule } from '@/lib/features/rules/rule-approval';
import { IdButton } from '@/components/tables/id-button';
import { ResultTable } from '@/components/tables/result-table';

export const dynamic = 'force-dynamic';

type RunTarget = { id: number; label: string; skipped?: string; values?: Record<string, number | null> };

/** A rule: what it is, its next fires, Run now, and its history (each target's fate and the values measured). */
export default async function RulePage({ params }: { params: Promise<{ id: string }> }) {
  const access = await requireAccess();
  const id = parseId((await params).id);
  if (id === null) notFound();
  const db = getDb();
  const rule = await getRule(db, id).catch(() => null);
  // An approver the policies name reads the rule they are to approve.
  const approverRefusalNow = rule ? await mayApproveRule(db, { id: access.userId, access }, rule) : 'no rule';
  if (!rule || (!mayRead(access, rule) && approverRefusalNow !== null)) notFound();
  const s = scheduleOf(rule);
  const tz = zoneOf(s);
  const runs = await ruleRunsView(db, id, 100);
  const approval = await ruleApproval(db, rule);
  const mayApprove = approverRefusalNow;
  // Its reverse (the companion that puts back what it changes), or the rule it is the reverse of.
  const [linked] = await db
    .select({ id: rules.id, name: rules.name })
    .from(rules)
    .where(rule.reverseOf !== null ? eq(rules.id, rule.reverseOf) : eq(rules.reverseOf, rule.id));
  return (
    <>
      <Breadcrumbs items={[{ label: 'Rules', href: '/rules' }, { label: rule.name }]} />
      <h1>{rule.name}</h1>
      {rule.description && <p>{rule.description}</p>}
      <dl className="facts" data-testid="rule-facts">
        <dt>Action</dt>
        <dd>{rule.action}</dd>
        <dt>Runs on</dt>
        <dd>{scopeWords(rule.scope)}</dd>
        <dt>Schedule</dt>
        <dd>{scheduleWords(s)}</dd>
        <dt>Owner</dt>
        <dd>{rule.ownerName}</dd>
        <dt>Enabled</dt>
        <dd>{rule.enabled ? 'yes' : 'no'}</dd>
        <dt>Conditions</dt>
        <dd>
          {rule.conditions.length
            ? rule.conditions
                .map((c) => `${String(c.metric)} ${String(c.op)} ${String(c.value)}`)
                .join(rule.logic === 'all' ? ' and ' : ' or ')
            : 'none'}
        </dd>
        {linked && (
          <>
            <dt>{rule.reverseOf !== null ? 'Reverse of' : 'Put back by'}</dt>
            <dd>
              <Link href={`/rules/${String(linked.id)}`} data-testid="rule-reverse-link">
                {linked.name}
              </Link>
            </dd>
          </>
        )}
        <dt>Next fires</dt>
        <dd>
          <ol data-testid="rule-next-fires">
            {(rule.enabled && s ? nextFires(s, new Date(), 5) : []).map((d) => (
              <li key={d.getTime()}>{fireTimeText(d, tz)}</li>
            ))}
          </ol>
        </dd>
      </dl>
      {approval && (
        <div className="approval" data-testid="rule-approval">
          <p>
            <strong>Approval:</strong>{' '}
            {approval.approved
              ? `approved as it is saved, by ${approval.approvedBy ?? '?'} at ${(approval.approvedAt ?? '').replace('T', ' ').slice(0, 16)} UTC: its fires run without asking.`
              : approval.again
                ? 'needs approval again: it was changed since it was approved. Its fires are skipped until then.'
                : 'needs approval: an approval policy covers its action there. Its fires are skipped until an approver approves it.'}{' '}
            {!approval.approved && `(${String(approval.approvals)} of ${String(approval.required)} approvals)`}
          </p>
          {!approval.approved &&
            (mayApprove === null ? (
              <form action={approveRuleAction}>
                <input type="hidden" name="id" value={rule.id} />
                <button type="submit" className="button danger">
                  Approve this rule as it is
                </button>
              </form>
            ) : (
              <p className="help" data-testid="rule-approval-not-yours">
                You cannot approve it: {mayApprove}.
              </p>
            ))}
        </div>
      )}
      <form action={runRuleAction}>
        <input type="hidden" name="id" value={rule.id} />
        <button type="submit" className="button default">
          Run now
        </button>{' '}
        {rule.reverseOf === null && (
          <Link href={`/rules/${String(rule.id)}/edit`} className="button">
            Edit
          </Link>
        )}
      </form>
      <h2>History</h2>
      <ResultTable
        testId="rule-runs"
        rows={runs}
        rowKey={(r) => r.id}
        rowData={(r) => ({ run: r.id })}
        empty="It has not fired yet."
        columns={[
          { header: 'Run', cell: (r) => `#${String(r.id)}` },
          { header: 'Kind', cell: (r) => `${r.kind}${r.requestedBy ? ` (${r.requestedBy})` : ''}` },
          { header: 'Due', cell: (r) => formatValue('datetime', new Date(r.dueAt)) },
          { header: 'Outcome', cell: (r) => <span className={`badge badge-${r.outcome ?? r.status}`}>{r.outcome ?? r.status}</span> },
          { header: 'Why', cell: (r) => r.reason },
          {
            header: 'Operation',
            cell: (r) => (r.operationId ? <Link href={`/operations/${String(r.operationId)}`}>#{r.operationId}</Link> : '—'),
          },
          { header: 'Targets', cell: (r) => <RunTargets targets={r.targets as RunTarget[]} /> },
        ]}
      />
      <IdButton action={deleteRuleAction} id={rule.id} quiet>
        Delete this rule
      </IdButton>
    </>
  );
}

/** What a run did to each target: skipped and why, and the values its condition read. */
function RunTargets({ targets }: { targets: RunTarget[] }) {
  return (
    <ul>
      {targets.map((t) => (
        <li key={t.id}>
          {t.label}
          {t.skipped ? `: skipped, ${t.skipped}` : ''}
          {t.values
            ? ` [${Object.entries(t.values)
                .map(([k, v]) => `${k} ${v === null ? '?' : String(Math.round(v * 100) / 100)}`)
                .join(', ')}]`
            : ''}
        </li>
      ))}
    </ul>
  );
}
