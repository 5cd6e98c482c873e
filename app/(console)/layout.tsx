import Link from 'next/link';
import { SignOutButton } from '@/components/auth/sign-out-button';
import { adminModels } from '@/lib/admin/registry';
import { capitalize } from '@/lib/admin/text';
import { requireUser } from '@/lib/auth/session';

export default async function ConsoleLayout({ children }: { children: React.ReactNode }) {
  const user = await requireUser();
  return (
    <div className="console">
      <header className="site-header">
        <Link href="/" className="brand">pgherd</Link>
        <nav className="models" aria-label="Models">
          {adminModels.map((m) => <Link key={m.name} href={`/admin/${m.name}`}>{capitalize(m.labelPlural)}</Link>)}
        </nav>
        <div className="user-tools">
          Signed in as <strong data-testid="current-user">{user.username}</strong> <SignOutButton />
        </div>
      </header>
      <main className="content">{children}</main>
    </div>
  );
}
