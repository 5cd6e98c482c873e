import Link from 'next/link';
import { SignOutButton } from '@/components/auth/sign-out-button';
import { TopNav } from '@/components/admin/top-nav';
import { appList } from '@/lib/features/admin/app-list';
import { requireAccess, requireUser } from '@/lib/features/auth/session';

export default async function ConsoleLayout({ children }: { children: React.ReactNode }) {
  const user = await requireUser();
  const access = await requireAccess();
  return (
    <div className="console">
      <header className="site-header">
        <Link href="/" className="brand">
          pgherd
        </Link>
        {/* What the bar draws and no more: the groups travel in the page's data on every page. */}
        <TopNav
          groups={appList(access).map((g) => ({
            name: g.name,
            label: g.label,
            links: g.links.map((l) => ({ label: l.label, href: l.href })),
          }))}
        />
        <div className="user-tools">
          Signed in as <strong data-testid="current-user">{user.username}</strong> <SignOutButton />
        </div>
      </header>
      <main className="content">{children}</main>
    </div>
  );
}
