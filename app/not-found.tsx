import Link from 'next/link';

export default function NotFound() {
  return (
    <main className="content">
      <h1>Not found</h1>
      <p>There is nothing here: the object may have been deleted, or the address is wrong.</p>
      <p>
        <Link href="/">Back to the dashboard</Link>
      </p>
    </main>
  );
}
