function show(v: unknown): string {
  if (v === null || v === undefined || v === '') return '(empty)';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** { field: [old, new] } as "field: old -> new" lines; values are text, never HTML. */
export function ChangeSet({ changes }: { changes: Record<string, [unknown, unknown]> }) {
  const keys = Object.keys(changes ?? {});
  if (!keys.length) return <span className="muted">No fields changed.</span>;
  return (
    <ul className="changes">
      {keys.map((k) => (
        <li key={k}>
          <code>{k}</code>: <span className="old">{show(changes[k][0])}</span> {'\u2192'} <span className="new">{show(changes[k][1])}</span>
        </li>
      ))}
    </ul>
  );
}
