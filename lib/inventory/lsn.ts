/** Postgres LSN text '16/B374D848' -> bytes (exact below 2^53, i.e. 8 PiB of WAL). */
export function lsnToNumber(lsn: string): number {
  const [hi = '', lo = ''] = lsn.split('/');
  return parseInt(hi, 16) * 2 ** 32 + parseInt(lo, 16);
}
