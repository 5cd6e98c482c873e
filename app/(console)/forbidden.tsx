import Link from 'next/link';
import { DenialReason } from '@/components/auth/denial-reason';

/** 403: what the user lacks (see deny() in lib/features/auth/session.ts for how the message gets here). */
export default function Forbidden() {
  return (
    <>
      <h1>Permission denied</h1>
      <DenialReason />
      <p>Roles are bound to you or your directory groups by an administrator, per environment or everywhere.</p>
      <p>
        <Link href="/">Back to the dashboard</Link>
      </p>
    </>
  );
}
