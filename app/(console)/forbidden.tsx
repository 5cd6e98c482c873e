import Link from 'next/link';
import { forbiddenReason } from '@/lib/auth/session';

/** 403: what the user lacks, as the page that refused said it. */
export default function Forbidden() {
  const { message } = forbiddenReason();
  return (
    <main className="content">
      <h1>Permission denied</h1>
      <p className="errornote" role="alert" data-forbidden>{message || 'Your roles do not allow this.'} Nothing has been changed.</p>
      <p>Roles are bound to you or your directory groups by an administrator, per environment or everywhere.</p>
      <p><Link href="/">Back to the dashboard</Link></p>
    </main>
  );
}
