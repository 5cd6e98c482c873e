function show(v: unknown): string {
  if (v === null || v === undefined || v === '') return '(empty)';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * { field: [old, new] } as "field: old -> new" lines; values are text, never HTML. A jsonb column
 * may hold a JSON null even when it is NOT NULL: that reads as no change.
 */
export function ChangeSet({ changes }: { changes: Record<string, [unknown, unknown]> | null }) {
  const entries = Object.entries(changes ?? {});
  if (!entries.length) return <span className="muted">No fields changed.</span>;
  return (
    <ul className="changes">
      {entries.map(([k, [before, after]]) => (
        <li key={k}>
          <code>{k}</code>: <span className="old">{show(before)}</span> {'\u2192'} <span className="new">{show(after)}</span>
        </li>
      ))}
    </ul>
  );
}
