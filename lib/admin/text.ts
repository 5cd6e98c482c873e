export function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** A value read from JSON (jsonb, an API body) as text: primitives as String() writes them, objects and arrays as JSON. */
export function valueText(v: unknown): string {
  return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
}
