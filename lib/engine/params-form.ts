// Action parameters travel in URLs and forms as `p.<name>` fields; empty ones mean "the default".
// The action's schema validates them; this only collects them.
export function paramsFromForm(entries: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(entries)) {
    if (k.startsWith('p.') && typeof v === 'string' && v !== '') out[k.slice(2)] = v;
  }
  return out;
}

/** The same parameters as a query string fragment (`&p.name=value...`), to come back to the plan. */
export function paramsQuery(params: Record<string, unknown>): string {
  return Object.entries(params)
    .map(([k, v]) => `&p.${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('');
}
