import Link from 'next/link';
import { SignOutButton } from '@/components/auth/sign-out-button';
import { adminModels } from '@/lib/features/admin/registry';
import { capitalize } from '@/lib/features/admin/text';
import { requireAccess, requireUser } from '@/lib/features/auth/session';
import { canSomewhere } from '@/lib/engine/access';
import { permissionFor } from '@/lib/features/admin/define-admin';

export default async function ConsoleLayout({ children }: { children: React.ReactNode }) {
  const user = await requireUser();
  const access = await requireAccess();
  const models = adminModels.filter((m) => canSomewhere(access, permissionFor(m, 'view')));
  return (
    <div className="console">
      <header className="site-header">
        <Link href="/" className="brand">
          pgherd
        </Link>
        <nav className="models" aria-label="Models">
          {models.map((m) => (
            <Link key={m.name} href={`/admin/${m.name}`}>
              {capitalize(m.labelPlural)}
            </Link>
          ))}
          <Link href="/rules">Rules</Link>
          <Link href="/dr">DR scorecard</Link>
          <Link href="/api-docs">API</Link>
        </nav>
        <div className="user-tools">
          Signed in as <strong data-testid="current-user">{user.username}</strong> <Link href="/account/tokens">API tokens</Link>{' '}
          <SignOutButton />
        </div>
      </header>
      <main className="content">{children}</main>
    </div>
  );
}
