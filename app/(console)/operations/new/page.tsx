import Link from 'next/link';
import { notFound } from 'next/navigation';
import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { ParamsForm } from '@/components/ops/plan-forms';
import { PlanBody } from '@/components/ops/plan-body';
import type { RawParams } from '@/lib/features/admin/list-params';
import { orDeny, requireAccess } from '@/lib/features/auth/session';
import { confirmationView } from '@/lib/features/operations/confirmation-view';
import { confirmOperationAction } from '../actions';

/** The confirmation page: every target with its plan, refusals with reasons, warnings. Nothing runs here. */
export default async function PlanPage({ searchParams }: { searchParams: Promise<RawParams> }) {
  const access = await requireAccess();
  const view = await orDeny(async () => confirmationView(getDb(), access, await searchParams));
  if (view.kind === 'unknown-action') notFound();
  const head = (title: string) => (
    <>
      <Breadcrumbs items={view.crumbs} />
      <h1>{title}</h1>
    </>
  );
  const backLink = <Link href={view.back}>Back to the list</Link>;
  switch (view.kind) {
    case 'nothing':
      return (
        <>
          {head(view.title)}
          <p className="errornote">{view.message}</p>
          {backLink}
        </>
      );
    case 'params':
      return (
        <>
          {head(view.title)}
          {view.problem !== null ? (
            <p className="errornote" role="alert">
              Invalid parameters: {view.problem}. Nothing has been run.
            </p>
          ) : (
            <p className="help" data-testid="params-needed">
              {view.actionLabel} needs its parameters: fill them in, then update the plan. Nothing has been run.
            </p>
          )}
          <ParamsForm {...view.form} />
          {backLink}
        </>
      );
    case 'refused':
      return (
        <>
          {head(view.title)}
          <p className="errornote" role="alert">
            {view.message} Nothing has been run.
          </p>
          {backLink}
        </>
      );
    case 'plan':
      return (
        <>
          {head(view.title)}
          <PlanBody view={view} confirmAction={confirmOperationAction} />
        </>
      );
  }
}
