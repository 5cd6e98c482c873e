import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { NewTokenForm } from '@/components/auth/new-token-form';
import { formatValue } from '@/lib/features/admin/format';
import { listApiTokens } from '@/lib/features/auth/api-tokens';
import { requireUser } from '@/lib/features/auth/session';
import { createTokenAction, revokeTokenAction } from './actions';

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
      <table className="result-list" data-testid="tokens">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Starts with</th>
            <th scope="col">Scope</th>
            <th scope="col">Status</th>
            <th scope="col">Created</th>
            <th scope="col">Expires</th>
            <th scope="col">Last used</th>
            <th scope="col" />
          </tr>
        </thead>
        <tbody>
          {tokens.length === 0 && (
            <tr>
              <td colSpan={8}>No tokens yet.</td>
            </tr>
          )}
          {tokens.map((t) => (
            <tr key={t.id} data-token={t.prefix}>
              <td>{t.name}</td>
              <td>
                <code>{t.prefix}…</code>
              </td>
              <td>{t.scope}</td>
              <td>
                <span className={`badge badge-${status(t)}`}>{status(t)}</span>
              </td>
              <td>{formatValue('datetime', t.createdAt)}</td>
              <td>{t.expiresAt ? formatValue('datetime', t.expiresAt) : 'never'}</td>
              <td>{t.lastUsedAt ? formatValue('datetime', t.lastUsedAt) : 'never'}</td>
              <td>
                {status(t) === 'active' && (
                  <form action={revokeTokenAction}>
                    <input type="hidden" name="id" value={t.id} />
                    <button type="submit" className="button cancel-link">
                      Revoke
                    </button>
                  </form>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
