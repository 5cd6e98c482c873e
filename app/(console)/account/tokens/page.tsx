import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { ResultTable } from '@/components/tables/result-table';
import { NewTokenForm } from '@/components/auth/new-token-form';
import { formatValue } from '@/lib/features/admin/format';
import { listApiTokens } from '@/lib/features/auth/api-tokens';
import { requireUser } from '@/lib/features/auth/session';
import { createTokenAction, revokeTokenAction } from './actions';
import { IdButton } from '@/components/tables/id-button';

export const dynamic = 'force-dynamic';

function status(t: { revokedAt: Date | null; expiresAt: Date | null }): string {
  if (t.revokedAt) return 'revoked';
  if (t.expiresAt && t.expiresAt.getTime() <= Date.now()) return 'expired';
  return 'active';
}

/** The signed-in user's API tokens: each acts as this user, within its scope. */
export default async function TokensPage() {
  const user = await requireUser();
  const tokens = await listApiTokens(getDb(), user.id);
  return (
    <>
      <Breadcrumbs items={[{ label: 'API tokens' }]} />
      <h1>API tokens</h1>
      <p>A token acts as you, with your roles, and never beyond its scope. Revoke one as soon as it is not needed.</p>
      <NewTokenForm create={createTokenAction} />
      <ResultTable
        testId="tokens"
        rows={tokens}
        rowKey={(t) => t.id}
        rowData={(t) => ({ token: t.prefix })}
        empty="No tokens yet."
        columns={[
          { header: 'Name', cell: (t) => t.name },
          { header: 'Starts with', cell: (t) => <code>{t.prefix}…</code> },
          { header: 'Scope', cell: (t) => t.scope },
          { header: 'Status', cell: (t) => <span className={`badge badge-${status(t)}`}>{status(t)}</span> },
          { header: 'Created', cell: (t) => formatValue('datetime', t.createdAt) },
          { header: 'Expires', cell: (t) => (t.expiresAt ? formatValue('datetime', t.expiresAt) : 'never') },
          { header: 'Last used', cell: (t) => (t.lastUsedAt ? formatValue('datetime', t.lastUsedAt) : 'never') },
          {
            header: '',
            cell: (t) =>
              status(t) === 'active' && (
                <IdButton action={revokeTokenAction} id={t.id} quiet>
                  Revoke
                </IdButton>
              ),
          },
        ]}
      />
    </>
  );
}
