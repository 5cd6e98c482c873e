import Link from 'next/link';

/** 401: not signed in. Next's own page would be carried, styles and all, in every page's data. */
export default function Unauthorized() {
  return (
    <main className="content">
      <h1>Sign in first</h1>
      <p>
        <Link href="/login">Sign in</Link>
      </p>
    </main>
  );
}
