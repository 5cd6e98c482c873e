import { redirect } from 'next/navigation';
import { SignInForm } from '@/components/auth/sign-in-form';
import { getCurrentUser } from '@/lib/features/auth/session';
import { safeNext } from '@/lib/features/auth/safe-next';

export const metadata = { title: 'Sign in | pgherd' };

export default async function LoginPage({ searchParams }: { searchParams: Promise<{ next?: string }> }) {
  // Only paths on this console: an open redirect after sign-in is a phishing aid.
  const next = safeNext((await searchParams).next);
  if (await getCurrentUser()) redirect(next);
  return (
    <div className="login">
      <h1>pgherd</h1>
      <p className="muted">Sign in to manage your PostgreSQL fleet.</p>
      <SignInForm next={next} />
    </div>
  );
}
