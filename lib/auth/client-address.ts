// Where a request came from, for the audit log: the first X-Forwarded-For hop (set by the proxy in
// front of pgherd), bounded in length. Empty when there is none.
export function clientAddress(forwardedFor: string | string[] | null | undefined): string {
  const first = Array.isArray(forwardedFor) ? forwardedFor[0] : forwardedFor;
  return (first ?? '').split(',')[0].trim().slice(0, 64);
}
