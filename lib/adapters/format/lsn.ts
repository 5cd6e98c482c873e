/** Postgres LSN text '16/B374D848' -> bytes (exact below 2^53, i.e. 8 PiB of WAL). */
export function lsnToNumber(lsn: string): number {
  const [hi = '', lo = ''] = lsn.split('/');
  return parseInt(hi, 16) * 2 ** 32 + parseInt(lo, 16);
}

/** Bytes between two LSNs as Postgres prints them (a - b); null when either is unknown. */
export function lsnDiff(a: string | null | undefined, b: string | null | undefined): number | null {
  return a && b ? lsnToNumber(a) - lsnToNumber(b) : null;
}
