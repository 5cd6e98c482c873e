import Link from 'next/link';
import { notFound } from 'next/navigation';
import { herdsOfTargets } from '@/lib/features/settings/herds-of-targets';
import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { OperationLive } from '@/components/ops/operation-live';
import { MAX_BIG_ID, parseId } from '@/lib/adapters/validation/ids';
import { valueText } from '@/lib/features/admin/text';
import { operationView } from '@/lib/engine/operation-view';
import { WITHHELD } from '@/lib/engine/operation-withheld';
import { getAction } from '@/lib/actions/registry';
import { loadInstanceRefs } from '@/lib/fleet/instance-ref';
import { redirect } from 'next/navigation';
import { getCurrentAccess, orDeny } from '@/lib/features/auth/session';
import { auditLinkRefusal, checkLink } from '@/lib/features/operations/approval-links';
import { canOnAll } from '@/lib/engine/access';
import { demandOnOperation, operationScope } from '@/lib/features/operations/operation-control';
import { OwedList } from '@/components/ops/owed-list';
import { owedNow } from '@/lib/engine/owed';
import { ApprovalPanel } from '@/components/ops/approval-panel';
import { PlanBody } from '@/components/ops/plan-body';
import { approvalView, requestedPlan } from '@/lib/features/operations/approvals';
import {
  cancelOperationAction,
  decideOperationAction,
  pauseOperationAction,
  resumeOperationAction,
  retryOperationAction,
} from '../actions';

export default async function OperationPage({
  params,
  searchParams,
}: {
  params: Promise<{ id: string }>;
  searchParams: Promise<{ refused?: string | string[]; link?: string | string[] }>;
}) {
  const query = await searchParams;
  const token = typeof query.link === 'string' ? query.link : null;
  const rawId = (await params).id;
  // A link from chat opened signed out: sign in, then back here with it (the link decides nothing by itself).
  const access =
    (await getCurrentAccess()) ??
    redirect(`/login?next=${encodeURIComponent(`/operations/${rawId}${token ? `?link=${encodeURIComponent(token)}` : ''}`)}`);
  const id = parseId(rawId, MAX_BIG_ID);
  const view = id === null ? null : await operationView(getDb(), id, access);
  if (!view) notFound();
  await orDeny(() => demandOnOperation(getDb(), access, view.id, 'view'));
  const action = getAction(view.action);
  // Pause, resume, abort and retry are offered only to whoever holds the action's role wherever it ran.
  const scope = await operationScope(getDb(), view.id);
  const control = canOnAll(access, action?.permission ?? 'admin', scope?.environmentIds ?? [null]);
  // Parameters in words: a chosen herd member by its label (it may have left the inventory since).
  const memberIds = (action?.params?.fields ?? [])
    .filter((f) => f.kind === 'herd-member')
    .map((f) => Number(view.params[f.name]))
    .filter(Number.isInteger);
  const labels = new Map((await loadInstanceRefs(getDb(), memberIds)).map((r) => [r.id, r.label]));
  const shown = (action?.params?.fields ?? []).map((f) => {
    const v = view.params[f.name];
    const text =
      v === undefined || v === false
        ? f.emptyLabel
        : v === WITHHELD
          ? WITHHELD
          : f.kind === 'flag'
            ? 'yes'
            : f.kind === 'herd-member'
              ? (labels.get(Number(v)) ?? `instance ${valueText(v)} (no longer in the inventory)`)
              : valueText(v);
    return { label: f.label, text };
  });
  const owed = await owedNow(getDb(), { operationId: view.id });
  // "What changed before it": each herd it touched, its settings' changes in the hour before it began.
  const herdsTouched = await herdsOfTargets(
    getDb(),
    view.targets.map((t) => ({ instanceId: t.instanceId, herdId: t.herdId })),
  );
  const viewer = { id: access.userId, username: access.username, access };
  const approval = await approvalView(getDb(), view.id, viewer);
  const requested = view.status === 'awaiting_approval' ? await requestedPlan(getDb(), view.id, access) : null;
  const refused = query.refused;
  const link = token === null || view.status !== 'awaiting_approval' ? null : await checkLink(getDb(), token, view.id);
  if (link && !link.ok) await auditLinkRefusal(getDb(), viewer, link);
  const began = new Date(view.startedAt ?? view.createdAt);
  const hourBefore = new Date(began.getTime() - 3_600_000);
  return (
    <>
      <Breadcrumbs items={[{ label: 'Operations', href: '/admin/operations' }, { label: `#${view.id}` }]} />
      <div className="content-head">
        <h1>
          {action?.label ?? view.action}: operation #{view.id}
        </h1>
      </div>
      <OwedList owed={owed} linkOperations={false} />
      {approval && (
        <ApprovalPanel
          id={view.id}
          approval={approval}
          status={view.status}
          refused={typeof refused === 'string' ? refused : null}
          decide={decideOperationAction}
          link={link === null ? null : link.ok ? { token: token ?? '', decision: link.claims.a } : { refused: link.why }}
        />
      )}
      {requested !== null &&
        (typeof requested === 'string' ? (
          <p className="help" data-testid="requested-plan-hidden">
            The plan is not shown: {requested}.
          </p>
        ) : (
          <section aria-label="The plan as confirmed" data-testid="requested-plan">
            <h2>The plan as {view.requestedBy} confirmed it</h2>
            {requested.stale && (
              <p className="errornote" role="alert" data-testid="requested-plan-stale">
                The inventory changed since it was confirmed: this is the plan now, and it is not the one confirmed. Approving it is
                refused; its requester must plan again.
              </p>
            )}
            <PlanBody view={requested.view} />
          </section>
        ))}
      {shown.map((p) => (
        <p key={p.label} className="op-param">
          <strong>{p.label}:</strong> {p.text}
        </p>
      ))}
      {herdsTouched.length > 0 && (
        <p className="op-changed-before" data-testid="changed-before">
          <strong>Settings changed in the hour before it:</strong>{' '}
          {herdsTouched.map((h, k) => (
            <span key={h.id}>
              {k > 0 && ', '}
              <Link
                prefetch={false}
                href={`/herds/${h.id}?changesFrom=${encodeURIComponent(hourBefore.toISOString())}&changesTo=${encodeURIComponent(began.toISOString())}#settings-history`}
              >
                {h.label}
              </Link>
            </span>
          ))}
        </p>
      )}
      <OperationLive
        key={`${view.status}-${view.finishedAt ?? 'open'}-${view.pausedAt ?? 'going'}-${view.cancelRequested}`}
        initial={view}
        cancel={control ? cancelOperationAction : undefined}
        pause={control ? pauseOperationAction : undefined}
        resume={control ? resumeOperationAction : undefined}
        retry={control ? retryOperationAction : undefined}
      />
    </>
  );
}
