export function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/**
 * A value as text, whether node-postgres or JSON (jsonb, an API body) gave it: strings as they are,
 * numbers and booleans as String() writes them, none as '', arrays joined with commas, Dates as
 * Date#toString(), other objects as JSON.
 */
export function valueText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.map(valueText).join(',');
  if (v instanceof Date) return v.toString();
  return JSON.stringify(v);
}
