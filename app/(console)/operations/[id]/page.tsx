import { notFound } from 'next/navigation';
import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { OperationLive } from '@/components/ops/operation-live';
import { parseId } from '@/lib/admin/parse-id';
import { operationView } from '@/lib/ops/operation-view';
import { getAction } from '@/lib/ops/registry';
import { requireUser } from '@/lib/auth/session';
import { cancelOperationAction, retryOperationAction } from '../actions';

export default async function OperationPage({ params }: { params: Promise<{ id: string }> }) {
  await requireUser();
  const id = parseId((await params).id);
  const view = id === null ? null : await operationView(getDb(), id);
  if (!view) notFound();
  return (
    <>
      <Breadcrumbs items={[{ label: 'Operations', href: '/admin/operations' }, { label: `#${view.id}` }]} />
      <div className="content-head">
        <h1>{getAction(view.action)?.label ?? view.action}: operation #{view.id}</h1>
      </div>
      <OperationLive key={`${view.status}-${view.finishedAt}`} initial={view} cancel={cancelOperationAction} retry={retryOperationAction} />
    </>
  );
}
