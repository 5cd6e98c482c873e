// Quantities as people read them (bytes, durations, WAL positions): pure, for the console and the
// engine alike.

/** 1536 -> "1.5 kB": bytes, in the largest unit under 1024 of it. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '';
  const abs = Math.abs(n);
  if (abs < 1024) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB', 'PB'];
  let v = abs / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${n < 0 ? '-' : ''}${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[u] ?? 'B'}`;
}

/** "45 s", "3 min", "2 h 5 min", "4 d 1 h": a duration, to the two largest units that matter. */
export function formatDuration(seconds: number): string {
  if (seconds < 120) return `${Math.max(0, Math.floor(seconds))} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h${m % 60 ? ` ${m % 60} min` : ''}`;
  return `${Math.floor(h / 24)} d${h % 24 ? ` ${h % 24} h` : ''}`;
}

/** bytes -> Postgres LSN text, '16/B374D848' */
export function formatLsn(n: number): string {
  const hi = Math.floor(n / 2 ** 32);
  const lo = n - hi * 2 ** 32;
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}
