/** 403 outside the console's pages (the console's own, with what is missing, is app/(console)/forbidden.tsx). */
export default function Forbidden() {
  return (
    <main className="content">
      <h1>Permission denied</h1>
      <p>This page could not be accessed.</p>
    </main>
  );
}
